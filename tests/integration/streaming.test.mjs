// Bodies through turnout: SSE event by event, chunked and Content-Length bodies both ways,
// large bodies intact, and streaming (nothing is buffered whole).

import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import { before } from 'node:test';
import { fileScope, httpRequest, itest, onRequestHead, sleep, withTimeout } from './support/harness.mjs';

const shared = fileScope();
let mock;

before(async () => {
  mock = await shared.mock({ name: 'stream-mock' });
});

const sha = (buf) => createHash('sha256').update(buf).digest('hex');

/** GET an SSE stream; records for every event the index of the socket read it arrived in. */
function readSse(port, path, timeout = 10000) {
  return withTimeout(new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false, headers: { Accept: 'text/event-stream' } }, (res) => {
      const events = [];
      let reads = 0;
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (d) => {
        reads += 1;
        buf += d;
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const data = block.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trim()).join('\n');
          events.push({ data, read: reads });
        }
      });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, events, endRead: reads + 1, rest: buf }));
      res.on('error', reject);
    });
    req.on('error', reject);
  }), timeout, `SSE stream ${path}`);
}

itest('SSE events are forwarded one by one: the first arrives before the stream ends', async (t, s) => {
  const tn = await s.turnout({ backends: [mock.addr] });
  const r = await readSse(tn.port, '/sse?n=5&interval_ms=300');
  assert.equal(r.status, 200);
  assert.match(r.headers['content-type'], /text\/event-stream/);
  assert.equal(r.events.length, 5, `5 events: ${JSON.stringify(r.events)}`);
  const numbers = r.events.map((e) => Number(/^event (\d+)$/.exec(e.data)?.[1]));
  assert.deepEqual(numbers, [...numbers].sort((a, b) => a - b), `events in order: ${JSON.stringify(r.events)}`);
  assert.equal(new Set(numbers).size, 5);
  // Event 1 came in an earlier read than event 5, which came before the end of the stream:
  // a proxy that buffered the stream would deliver them all in one go at the end.
  assert.ok(r.events[0].read < r.events[4].read, `first event arrived in its own read: ${JSON.stringify(r.events)}`);
  const reads = new Set(r.events.map((e) => e.read));
  assert.ok(reads.size >= 3, `events arrived as they were sent, not in one batch: ${JSON.stringify(r.events)}`);
});

itest('SSE events keep their order and content through turnout', async (t, s) => {
  const tn = await s.turnout({ backends: [mock.addr] });
  const [direct, proxied] = await Promise.all([
    readSse(mock.port, '/sse?n=4&interval_ms=20'),
    readSse(tn.port, '/sse?n=4&interval_ms=20'),
  ]);
  assert.equal(proxied.events.length, 4);
  assert.deepEqual(proxied.events.map((e) => e.data), direct.events.map((e) => e.data));
});

itest('an SSE event reaches the client while the backend still holds the stream open', async (t, s) => {
  let release;
  const released = new Promise((resolve) => {
    release = resolve;
  });
  const backend = await s.rawBackend(onRequestHead(async (req, socket) => {
    socket.write('HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n' +
      'Transfer-Encoding: chunked\r\n\r\n');
    const ev = (text) => {
      const payload = `data: ${text}\n\n`;
      socket.write(`${Buffer.byteLength(payload).toString(16)}\r\n${payload}\r\n`);
    };
    ev('first');
    await released;
    ev('second');
    socket.write('0\r\n\r\n');
  }));
  const tn = await s.turnout({ backends: [backend.addr] });
  const conn = await s.conn(tn.port);
  await conn.write('GET /events HTTP/1.1\r\nHost: t\r\nAccept: text/event-stream\r\n\r\n');
  // Nothing more is sent by the backend until the client has seen the first event.
  await conn.waitForText('data: first', 5000);
  release();
  const res = await conn.readResponse({ timeout: 5000 });
  assert.equal(res.status, 200);
  assert.equal(res.body.toString(), 'data: first\n\ndata: second\n\n');
});

// The benchmark's silent streams (bench/run.sh, scenario "streams"): the mock sends the head of
// a GET /mcp stream and nothing more; turnout must pass that head on at once (a proxy that held
// it back until a body came would never answer) and keep the stream open.
itest('a silent SSE stream from the mock (--silent-streams) gets its head through turnout and stays open', async (t, s) => {
  const silent = await s.mock({ name: 'silent-mock', silentStreams: true });
  const tn = await s.turnout({ backends: [silent.addr] });
  const conn = await s.conn(tn.port);
  await conn.write('GET /mcp HTTP/1.1\r\nHost: t\r\nAccept: text/event-stream\r\n\r\n');
  await conn.waitForText('\r\n\r\n', 5000);
  const head = conn.buf.toString('latin1');
  assert.match(head, /^HTTP\/1\.1 200 /);
  assert.match(head, /\r\ncontent-type: text\/event-stream/i);
  // A request answered by the same mock afterwards: a first event (the mock without the option
  // sends one right behind the head) would have arrived by now.
  const echo = await httpRequest(tn.port, {
    method: 'POST', path: '/mcp', headers: { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' },
    body: '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"x"}}}',
  });
  assert.equal(echo.status, 200);
  assert.ok(await conn.staysOpen(200), 'the silent stream stays open');
  assert.equal(conn.buf.toString('latin1'), head, 'nothing after the head');
});

itest('a chunked request body is streamed to the backend and echoed intact', async (t, s) => {
  const tn = await s.turnout({ backends: [mock.addr] });
  const conn = await s.conn(tn.port);
  await conn.write('POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n');
  const parts = ['hello ', 'chunked ', 'world', '!'.repeat(300)];
  for (const p of parts) {
    await conn.write(`${Buffer.byteLength(p).toString(16)}\r\n${p}\r\n`);
    await sleep(20);
  }
  await conn.write('0\r\n\r\n');
  const res = await conn.readResponse();
  assert.equal(res.status, 200);
  assert.equal(res.get('x-backend'), 'stream-mock');
  assert.match(res.get('content-type') ?? '', /text\/plain/);
  assert.equal(res.text(), parts.join(''));
});

itest('a chunked request with trailers is accepted and its body forwarded', async (t, s) => {
  const tn = await s.turnout({ backends: [mock.addr] });
  const conn = await s.conn(tn.port);
  await conn.write('POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n' +
    '5\r\nhello\r\n6\r\n world\r\n0\r\nX-Checksum: abc\r\n\r\n');
  const res = await conn.readResponse();
  assert.equal(res.status, 200);
  assert.equal(res.text(), 'hello world');
  // The connection is still in sync: a second request on it works.
  await conn.write('GET /health HTTP/1.1\r\nHost: t\r\n\r\n');
  assert.equal((await conn.readResponse()).status, 200);
});

itest('a chunked response is delivered intact and the connection stays usable', async (t, s) => {
  const tn = await s.turnout({ backends: [mock.addr] });
  const conn = await s.conn(tn.port);
  const body = 'x'.repeat(5000) + 'end';
  await conn.write(`POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: text/plain\r\nX-Chunked-Response: 1\r\n` +
    `Content-Length: ${body.length}\r\n\r\n${body}`);
  const res = await conn.readResponse();
  assert.equal(res.status, 200);
  assert.equal(res.text(), body);
  await conn.write('GET /health HTTP/1.1\r\nHost: t\r\n\r\n');
  const again = await conn.readResponse();
  assert.equal(again.status, 200);
});

itest('a chunked request and a chunked response on one connection, twice', async (t, s) => {
  const tn = await s.turnout({ backends: [mock.addr] });
  const conn = await s.conn(tn.port);
  for (const word of ['first', 'second']) {
    await conn.write('POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: text/plain\r\nX-Chunked-Response: 1\r\n' +
      `Transfer-Encoding: chunked\r\n\r\n${word.length.toString(16)}\r\n${word}\r\n0\r\n\r\n`);
    const res = await conn.readResponse();
    assert.equal(res.status, 200);
    assert.equal(res.text(), word);
  }
});

itest('Content-Length bodies travel both ways intact', async (t, s) => {
  const tn = await s.turnout({ backends: [mock.addr] });
  const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping', pad: 'p'.repeat(1000) });
  const conn = await s.conn(tn.port);
  await conn.write(`POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  const res = await conn.readResponse();
  assert.equal(res.status, 200);
  assert.equal(res.get('content-length'), String(Buffer.byteLength(body)));
  assert.match(res.get('content-type') ?? '', /application\/json/);
  assert.equal(res.text(), body);
});

itest('a 3 MB Content-Length body is streamed both ways intact', { timeout: 30000 }, async (t, s) => {
  const tn = await s.turnout({ backends: [mock.addr] });
  const body = randomBytes(3 * 1024 * 1024);
  const res = await httpRequest(tn.port, {
    method: 'POST',
    path: '/echo',
    headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': body.length },
    body,
    timeout: 20000,
  });
  assert.equal(res.status, 200);
  assert.equal(res.body.length, body.length);
  assert.equal(sha(res.body), sha(body));
});

itest('a 3 MB chunked body is streamed both ways intact', { timeout: 30000 }, async (t, s) => {
  const tn = await s.turnout({ backends: [mock.addr] });
  const body = randomBytes(3 * 1024 * 1024);
  const res = await withTimeout(new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1',
      port: tn.port,
      method: 'PUT',
      path: '/echo',
      agent: false,
      headers: { 'Content-Type': 'application/octet-stream', 'Transfer-Encoding': 'chunked', 'X-Chunked-Response': '1' },
    }, (r) => {
      const parts = [];
      r.on('data', (d) => parts.push(d));
      r.on('end', () => resolve({ status: r.statusCode, headers: r.headers, body: Buffer.concat(parts) }));
      r.on('error', reject);
    });
    req.on('error', reject);
    // Many writes of uneven size become many chunks.
    let off = 0;
    let i = 0;
    const sizes = [1, 4096, 65536, 1000, 300000];
    const pump = () => {
      while (off < body.length) {
        const n = Math.min(sizes[i++ % sizes.length], body.length - off);
        const ok = req.write(body.subarray(off, off + n));
        off += n;
        if (!ok) {
          req.once('drain', pump);
          return;
        }
      }
      req.end();
    };
    pump();
  }), 25000, 'the chunked 3 MB echo');
  assert.equal(res.status, 200);
  assert.equal(res.body.length, body.length);
  assert.equal(sha(res.body), sha(body));
});

itest('a request body reaches the backend before the client has sent all of it', async (t, s) => {
  const backend = await s.rawBackend(onRequestHead((req, socket, conn) => {
    const check = () => {
      if (conn.data.toString('latin1').includes('helloworld')) {
        socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
      }
    };
    socket.on('data', check);
    check();
  }));
  const tn = await s.turnout({ backends: [backend.addr] });
  const conn = await s.conn(tn.port);
  await conn.write('POST /upload HTTP/1.1\r\nHost: t\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n\r\nhello');
  await backend.waitFor(() => backend.received().toString('latin1').includes('hello'), 5000,
    'the first half of the body at the backend');
  await conn.write('world');
  const res = await conn.readResponse();
  assert.equal(res.status, 200);
  assert.equal(res.text(), 'ok');
});

itest('a response body reaches the client before the backend has sent all of it', async (t, s) => {
  let release;
  const released = new Promise((resolve) => {
    release = resolve;
  });
  const backend = await s.rawBackend(onRequestHead(async (req, socket) => {
    socket.write('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n\r\nhello');
    await released;
    socket.write('world');
  }));
  const tn = await s.turnout({ backends: [backend.addr] });
  const conn = await s.conn(tn.port);
  await conn.write('GET /download HTTP/1.1\r\nHost: t\r\n\r\n');
  await conn.waitForText('hello', 5000);
  release();
  const res = await conn.readResponse();
  assert.equal(res.status, 200);
  assert.equal(res.text(), 'helloworld');
});

itest('a close-delimited backend response reaches the client intact', async (t, s) => {
  const backend = await s.rawBackend(onRequestHead((req, socket) => {
    socket.end('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of this body, then close');
  }));
  const tn = await s.turnout({ backends: [backend.addr] });
  const conn = await s.conn(tn.port);
  await conn.write('GET /legacy HTTP/1.1\r\nHost: t\r\n\r\n');
  const res = await conn.readResponse();
  assert.equal(res.status, 200);
  assert.equal(res.text(), 'all of this body, then close');
});

itest('when the client goes away, turnout closes the backend side of its SSE stream', async (t, s) => {
  const backend = await s.rawBackend(onRequestHead((req, socket) => {
    socket.write('HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n');
    const payload = 'data: tick\n\n';
    const timer = setInterval(() => socket.write(`${payload.length.toString(16)}\r\n${payload}\r\n`), 50);
    socket.on('close', () => clearInterval(timer));
  }));
  const tn = await s.turnout({ backends: [backend.addr] });
  const conn = await s.conn(tn.port);
  await conn.write('GET /stream HTTP/1.1\r\nHost: t\r\nAccept: text/event-stream\r\n\r\n');
  await conn.waitForText('data: tick', 5000);
  conn.destroy();
  await backend.waitFor(() => backend.conns.length > 0 && backend.conns.every((c) => c.closed), 5000,
    'the backend stream to be closed after the client left');
  // And turnout is fine.
  const again = await s.conn(tn.port);
  await again.write('GET /stream HTTP/1.1\r\nHost: t\r\n\r\n');
  await again.waitForText('data: tick', 5000);
});

itest('a client that disconnects while its request is in flight does not disturb turnout', async (t, s) => {
  const tn = await s.turnout({ backends: [mock.addr] });
  for (let i = 0; i < 5; i++) {
    const c = await s.conn(tn.port);
    await c.write('GET /delay?ms=300 HTTP/1.1\r\nHost: t\r\n\r\n');
    c.destroy();
  }
  const conn = await s.conn(tn.port);
  await conn.write('GET /health HTTP/1.1\r\nHost: t\r\n\r\n');
  assert.equal((await conn.readResponse()).status, 200);
});
