// A small authoritative DNS server for the DNS discovery tests: UDP on 127.0.0.1 (port 0),
// answering A, AAAA and SRV from records the test sets and changes, with the TTLs it sets.
// A name it knows with no record of the asked type gets an empty NOERROR answer (NODATA), a
// name it does not know NXDOMAIN; `failWith('servfail')` answers SERVFAIL to everything;
// `stop()` closes the socket (queries then meet a closed port) and `start()` opens it again on
// the same port. Every query is recorded (name, type, time) so tests count re-queries.
//
// Runs inside the test process (no child), so the test changes answers synchronously.

import dgram from 'node:dgram';

const TYPES = { A: 1, AAAA: 28, SRV: 33 };
const TYPE_NAMES = Object.fromEntries(Object.entries(TYPES).map(([k, v]) => [v, k]));
const RCODE = { noerror: 0, servfail: 2, nxdomain: 3 };

const norm = (name) => name.toLowerCase().replace(/\.$/, '');

/** The name starting at `at` (labels, no compression: queries do not use it) and where it ends. */
function readName(buf, at) {
  const labels = [];
  for (let guard = 0; guard < 128; guard++) {
    const len = buf[at];
    if (len === undefined) throw new Error('truncated name');
    if (len === 0) return { name: labels.join('.'), end: at + 1 };
    if (len >= 0xc0) throw new Error('compressed name in a query');
    labels.push(buf.toString('latin1', at + 1, at + 1 + len));
    at += 1 + len;
  }
  throw new Error('name too long');
}

function encodeName(name) {
  const parts = norm(name).split('.').filter(Boolean);
  const out = [];
  for (const p of parts) out.push(Buffer.from([p.length]), Buffer.from(p, 'latin1'));
  out.push(Buffer.from([0]));
  return Buffer.concat(out);
}

function rdataOf(type, value) {
  if (type === 'A') return Buffer.from(value.split('.').map(Number));
  if (type === 'AAAA') {
    // Expand "::" and write eight 16-bit groups.
    const [head, tail = ''] = value.split('::');
    const h = head ? head.split(':') : [];
    const t = tail ? tail.split(':') : [];
    const groups = value.includes('::') ? [...h, ...Array(8 - h.length - t.length).fill('0'), ...t] : h;
    const b = Buffer.alloc(16);
    groups.forEach((g, i) => b.writeUInt16BE(parseInt(g || '0', 16), i * 2));
    return b;
  }
  const head = Buffer.alloc(6);
  head.writeUInt16BE(value.priority ?? 10, 0);
  head.writeUInt16BE(value.weight ?? 10, 2);
  head.writeUInt16BE(value.port, 4);
  return Buffer.concat([head, encodeName(value.target)]);
}

export class DnsServer {
  constructor() {
    this.records = new Map(); // name → {A?: {ttl, values}, AAAA?: …, SRV?: …}
    this.log = [];            // {name, type, at}
    this.failure = null;      // null | 'servfail'
    this.socket = null;
    this.port = 0;
  }

  get addr() {
    return `127.0.0.1:${this.port}`;
  }

  /** Sets the records of one type of a name: A/AAAA values are addresses, SRV values {port, target, priority?, weight?}. */
  set(name, type, values, ttl) {
    const key = norm(name);
    const entry = this.records.get(key) ?? {};
    entry[type] = { ttl, values };
    this.records.set(key, entry);
  }

  /** Forgets a name (it answers NXDOMAIN from now on). */
  remove(name) {
    this.records.delete(norm(name));
  }

  failWith(failure) {
    this.failure = failure;
  }

  /** Queries received for name (and type, if given). */
  queries(name, type) {
    return this.log.filter((q) => q.name === norm(name) && (!type || q.type === type));
  }

  async start() {
    const socket = dgram.createSocket('udp4');
    socket.on('message', (msg, rinfo) => {
      const answer = this.answer(msg);
      if (answer) socket.send(answer, rinfo.port, rinfo.address);
    });
    await new Promise((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(this.port, '127.0.0.1', resolve);
    });
    this.port = socket.address().port;
    this.socket = socket;
    return this;
  }

  async stop() {
    const s = this.socket;
    this.socket = null;
    if (s) await new Promise((resolve) => s.close(resolve));
  }

  answer(msg) {
    if (msg.length < 12 || msg.readUInt16BE(4) !== 1) return null;
    let q;
    try {
      q = readName(msg, 12);
    } catch {
      return null;
    }
    if (q.end + 4 > msg.length) return null;
    const qtype = msg.readUInt16BE(q.end);
    const name = norm(q.name);
    const type = TYPE_NAMES[qtype] ?? String(qtype);
    this.log.push({ name, type, at: Date.now() });
    const question = msg.subarray(12, q.end + 4);
    const entry = this.records.get(name);
    let rcode = RCODE.noerror;
    let answers = [];
    if (this.failure === 'servfail') rcode = RCODE.servfail;
    else if (!entry) rcode = RCODE.nxdomain;
    else if (entry[type]) answers = entry[type].values.map((v) => ({ ttl: entry[type].ttl, rdata: rdataOf(type, v) }));
    const header = Buffer.alloc(12);
    header.writeUInt16BE(msg.readUInt16BE(0), 0); // id
    header.writeUInt16BE(0x8400 | (msg.readUInt16BE(2) & 0x0100) | rcode, 2); // QR, AA, RD echoed
    header.writeUInt16BE(1, 4);
    header.writeUInt16BE(answers.length, 6);
    const rrs = answers.map(({ ttl, rdata }) => {
      const fixed = Buffer.alloc(12);
      fixed.writeUInt16BE(0xc00c, 0); // the question's name
      fixed.writeUInt16BE(qtype, 2);
      fixed.writeUInt16BE(1, 4); // IN
      fixed.writeUInt32BE(ttl, 6);
      fixed.writeUInt16BE(rdata.length, 10);
      return Buffer.concat([fixed, rdata]);
    });
    return Buffer.concat([header, question, ...rrs]);
  }
}

/** A DnsServer on 127.0.0.1:0, stopped at the end of scope. */
export async function startDnsServer(scope) {
  const server = await new DnsServer().start();
  scope?.defer(() => server.stop());
  return server;
}
