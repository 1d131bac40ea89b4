#!/usr/bin/env node
// Opens many client connections to one proxy and keeps them open, for bench/run.sh's memory
// figures. Talks only to the address it is given (the bench uses 127.0.0.1).
//
//   node bench/hold_connections.mjs --url http://127.0.0.1:PORT/mcp --count N --mode stream
//        [--concurrency C] [--timeout-ms T] [--max-hold-s S]
//
// --mode stream  each connection sends `GET /mcp` with `Accept: text/event-stream` and must get
//                a 200 text/event-stream head; the stream then stays open (silent from the mock
//                backend run with --silent-streams).
// --mode idle    each connection sends the bench's JSON-RPC POST (the body of
//                bench/jsonrpc_post.lua), must get a complete 200 answer echoing its text, and
//                then stays open, idle, on keep-alive.
// https:// URLs connect with TLS (the bench's self-signed certificate is not verified).
//
// At most C connections are being set up at any time. Once every connection has been tried it
// prints one line, `OPEN requested=N open=K failed=F first_error=...`, and holds the open ones
// until SIGTERM or SIGINT (or --max-hold-s, so that it never outlives a parent that forgot
// it); then it prints `HELD open=K closed_early=M` (M: connections that the
// other side closed while they were held) and `with_data=D` (streams that received bytes after
// their head: a silent stream receives none), and exits 0. Exit 2 on bad arguments.

import net from 'node:net';
import tls from 'node:tls';

const body = '{"jsonrpc":"2.0","id":1,"method":"tools/call",' +
  '"params":{"name":"echo","arguments":{"text":"hello from wrk"}}}';

function usage(why) {
  process.stderr.write(`hold_connections.mjs: ${why}\n` +
    'usage: node bench/hold_connections.mjs --url URL --count N --mode stream|idle ' +
    '[--concurrency C] [--timeout-ms T] [--max-hold-s S]\n');
  process.exit(2);
}

function parseArgs(argv) {
  const opts = { concurrency: 64, timeoutMs: 10000, maxHoldS: 900 };
  for (let i = 0; i < argv.length; i += 2) {
    const [key, value] = [argv[i], argv[i + 1]];
    if (value === undefined) usage(`${key} wants a value`);
    const positive = () => {
      const n = Number(value);
      if (!Number.isInteger(n) || n <= 0) usage(`${key} wants a positive integer`);
      return n;
    };
    if (key === '--url') opts.url = new URL(value);
    else if (key === '--count') opts.count = positive();
    else if (key === '--mode') opts.mode = value;
    else if (key === '--concurrency') opts.concurrency = positive();
    else if (key === '--timeout-ms') opts.timeoutMs = positive();
    else if (key === '--max-hold-s') opts.maxHoldS = positive();
    else usage(`unknown option ${key}`);
  }
  if (!opts.url || !opts.count) usage('--url and --count are required');
  if (opts.mode !== 'stream' && opts.mode !== 'idle') usage('--mode is stream or idle');
  if (opts.url.protocol !== 'http:' && opts.url.protocol !== 'https:') usage('--url is http:// or https://');
  return opts;
}

function requestBytes(opts) {
  const host = opts.url.host;
  const path = opts.url.pathname + opts.url.search;
  if (opts.mode === 'stream')
    return `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nAccept: text/event-stream\r\n\r\n`;
  return `POST ${path} HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\n` +
    `Accept: application/json, text/event-stream\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

// What the connection has received so far: null while incomplete, else { ok, why }.
function judge(mode, data) {
  const end = data.indexOf('\r\n\r\n');
  if (end < 0) return data.length > 65536 ? { ok: false, why: 'response head too large' } : null;
  const head = data.subarray(0, end).toString('latin1');
  const status = /^HTTP\/1\.[01] (\d{3})/.exec(head);
  if (!status) return { ok: false, why: `not an HTTP response: ${JSON.stringify(head.slice(0, 40))}` };
  if (status[1] !== '200') return { ok: false, why: `status ${status[1]}` };
  const field = (name) => {
    const m = new RegExp(`\\r\\n${name}:[ \\t]*([^\\r]*)`, 'i').exec(head);
    return m ? m[1] : undefined;
  };
  if (mode === 'stream') {
    const type = field('content-type') ?? '';
    return type.includes('text/event-stream') ? { ok: true } : { ok: false, why: `content-type ${type || 'missing'}` };
  }
  // idle: the whole answer must be in before the connection counts as idle.
  const rest = data.subarray(end + 4);
  const length = field('content-length');
  let complete;
  if (length !== undefined) complete = rest.length >= Number(length);
  else if (/chunked/i.test(field('transfer-encoding') ?? '')) complete = rest.toString('latin1').endsWith('0\r\n\r\n');
  else return { ok: false, why: 'answer without Content-Length or chunked coding (not keep-alive)' };
  if (!complete) return null;
  if (/^connection:[ \t]*close/im.test(head)) return { ok: false, why: 'the proxy closes the connection after the answer' };
  return rest.includes('hello from wrk') ? { ok: true } : { ok: false, why: 'answer does not echo the text' };
}

function openOne(opts, request) {
  return new Promise((resolve) => {
    const port = Number(opts.url.port || (opts.url.protocol === 'https:' ? 443 : 80));
    const host = opts.url.hostname;
    let settled = false;
    let data = Buffer.alloc(0);
    const socket = opts.url.protocol === 'https:'
      ? tls.connect({ host, port, rejectUnauthorized: false })
      : net.connect({ host, port });
    const finish = (ok, why) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.removeListener('data', onData);
      if (!ok) socket.destroy();
      // Bytes after the head in the same read are data the stream already carried.
      const end = data.indexOf('\r\n\r\n');
      resolve(ok ? { socket, extra: opts.mode === 'stream' && data.length > end + 4 } : { why });
    };
    const timer = setTimeout(() => finish(false, `no answer within ${opts.timeoutMs} ms`), opts.timeoutMs);
    const onData = (chunk) => {
      data = Buffer.concat([data, chunk]);
      const verdict = judge(opts.mode, data);
      if (verdict) finish(verdict.ok, verdict.why);
    };
    socket.once(opts.url.protocol === 'https:' ? 'secureConnect' : 'connect', () => socket.write(request));
    socket.on('data', onData);
    socket.on('error', (err) => finish(false, err.code || err.message));
    socket.on('close', () => finish(false, 'closed before the answer'));
  });
}

const opts = parseArgs(process.argv.slice(2));
const request = requestBytes(opts);
const held = [];
let failed = 0;
let firstError = '';
let closedEarly = 0;
let withData = 0;
let stopping = false;

let next = 0;
async function opener() {
  while (next < opts.count) {
    next += 1;
    const r = await openOne(opts, request);
    if (r.socket) {
      held.push(r.socket);
      r.socket.on('error', () => {});
      r.socket.on('close', () => { if (!stopping) closedEarly += 1; });
      let counted = r.extra;
      if (counted) withData += 1;
      r.socket.on('data', () => { if (!counted) { counted = true; withData += 1; } });
    } else {
      failed += 1;
      if (!firstError) firstError = r.why;
    }
  }
}
await Promise.all(Array.from({ length: Math.min(opts.concurrency, opts.count) }, opener));
process.stdout.write(`OPEN requested=${opts.count} open=${held.length} failed=${failed} ` +
  `first_error=${JSON.stringify(firstError)}\n`);

function stop() {
  if (stopping) return;
  stopping = true;
  process.stdout.write(`HELD open=${held.length - closedEarly} closed_early=${closedEarly} with_data=${withData}\n`);
  for (const s of held) s.destroy();
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
setTimeout(stop, opts.maxHoldS * 1000); // also what keeps it alive when nothing is held
