// Client-side limits and timeouts: 408 header_timeout, idle_timeout, stream_idle_timeout, 431,
// 414, 413 (by Content-Length and mid-chunked). Rejected requests never reach a backend, and turnout keeps
// serving afterwards.

import assert from 'node:assert/strict';
import { before } from 'node:test';
import { assertJsonError, fileScope, itest, onRequestHead, sleep } from './support/harness.mjs';

const shared = fileScope();
let mock;

before(async () => {
  mock = await shared.mock({ name: 'limits-mock' });
});

const LIMITS = {
  header_timeout: '300ms',
  max_header_bytes: 4096,
  max_uri_bytes: 1024,
  max_body_bytes: 65536,
};

/** A raw backend that records request heads and answers each with 200 "ok". */
async function recordingBackend(s) {
  const heads = [];
  const backend = await s.rawBackend(onRequestHead((req, socket) => {
    heads.push(req);
    socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
  }));
  backend.heads = heads;
  return backend;
}

/** turnout still serves: a fresh connection gets a normal answer. */
async function assertStillServing(s, tn) {
  const conn = await s.conn(tn.port);
  await conn.write('GET /health HTTP/1.1\r\nHost: t\r\n\r\n');
  const res = await conn.readResponse();
  assert.equal(res.status, 200, 'turnout keeps serving after the error');
}

itest('a request head not complete within header_timeout answers 408 and closes', async (t, s) => {
  const backend = await recordingBackend(s);
  const tn = await s.turnout({ backends: [backend.addr], proxy: LIMITS });
  const conn = await s.conn(tn.port);
  await conn.write('GET /slow HTTP/1.1\r\nHost: t\r\nX-Partial: ');
  const res = await conn.readResponse({ timeout: 5000 });
  assertJsonError(assert, res, 408);
  await conn.waitClosed(5000);
  assert.equal(backend.heads.length, 0, 'the backend saw nothing');
  assert.equal(backend.received().length, 0);
});

itest('a request head trickled byte by byte still times out with 408', async (t, s) => {
  const tn = await s.turnout({ backends: [mock.addr], proxy: LIMITS });
  const conn = await s.conn(tn.port);
  const head = `GET /health HTTP/1.1\r\nHost: t\r\nX-Slow: ${'z'.repeat(100)}\r\n\r\n`;
  let i = 0;
  // One byte every 50 ms: each read is quick, but the head as a whole takes > 5 s.
  while (!conn.ended && i < head.length) {
    await conn.write(head[i++]).catch(() => {});
    await sleep(50);
    if (conn.buf.length > 0) break;
  }
  assert.ok(i < head.length, 'turnout answered before the trickled head was complete');
  const res = await conn.readResponse({ timeout: 5000 });
  assertJsonError(assert, res, 408);
  await assertStillServing(s, tn);
});

itest('an idle keep-alive connection is closed after idle_timeout', async (t, s) => {
  const tn = await s.turnout({ backends: [mock.addr], proxy: { ...LIMITS, idle_timeout: '300ms' } });
  const conn = await s.conn(tn.port);
  await conn.write('GET /health HTTP/1.1\r\nHost: t\r\n\r\n');
  assert.equal((await conn.readResponse()).status, 200);
  await conn.waitClosed(5000);
});

itest('a keep-alive connection in use is not closed by idle_timeout', async (t, s) => {
  const tn = await s.turnout({ backends: [mock.addr], proxy: { ...LIMITS, idle_timeout: '400ms' } });
  const conn = await s.conn(tn.port);
  // A request that takes longer than idle_timeout is in flight, not idle.
  await conn.write('GET /delay?ms=800 HTTP/1.1\r\nHost: t\r\n\r\n');
  const res = await conn.readResponse({ timeout: 5000 });
  assert.equal(res.status, 200);
});

itest('stream_idle_timeout: a silent SSE stream is closed after it; with 0s it stays open', async (t, s) => {
  // One event, then silence: the backend holds the stream open and sends nothing more.
  const backend = await s.rawBackend(onRequestHead((req, socket) => {
    socket.write('HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n' +
      'Transfer-Encoding: chunked\r\n\r\n');
    const payload = 'data: hello\n\n';
    socket.write(`${Buffer.byteLength(payload).toString(16)}\r\n${payload}\r\n`);
  }));
  const [cut, never] = await Promise.all([
    s.turnout({ backends: [backend.addr], proxy: { stream_idle_timeout: '300ms' } }),
    s.turnout({ backends: [backend.addr], proxy: { stream_idle_timeout: '0s' } }),
  ]);
  const openStream = async (tn) => {
    const conn = await s.conn(tn.port);
    await conn.write('GET /events HTTP/1.1\r\nHost: t\r\nAccept: text/event-stream\r\n\r\n');
    await conn.waitForText('data: hello', 5000);
    return conn;
  };
  const [a, b] = await Promise.all([openStream(cut), openStream(never)]);
  await a.waitClosed(10000);
  // Well beyond the other's 300 ms (and after it was closed), the 0s stream is still open.
  assert.ok(await b.staysOpen(2000), 'with stream_idle_timeout = "0s" a silent stream may stay open');
  assert.doesNotMatch(b.buf.toString('latin1'), /\r\n0\r\n\r\n/, 'nor was its response ended');
});

itest('stream_idle_timeout counts silence only: a stream with an event every 100 ms outlives a 1 s timeout', async (t, s) => {
  const tn = await s.turnout({ backends: [mock.addr], proxy: { stream_idle_timeout: '1s' } });
  const conn = await s.conn(tn.port);
  // 20 events 100 ms apart: two seconds of stream, never a second of silence.
  await conn.write('GET /sse?n=20&interval_ms=100 HTTP/1.1\r\nHost: t\r\nAccept: text/event-stream\r\n\r\n');
  const res = await conn.readResponse({ timeout: 15000 });
  assert.equal(res.status, 200);
  const events = res.body.toString().match(/^data: event \d+$/gm) ?? [];
  assert.equal(events.length, 20, `every event arrived and the stream ended normally: ${JSON.stringify(res.body.toString())}`);
});

itest('a request head larger than max_header_bytes answers 431', async (t, s) => {
  const backend = await recordingBackend(s);
  const tn = await s.turnout({ backends: [backend.addr], proxy: LIMITS });
  const conn = await s.conn(tn.port);
  const big = Array.from({ length: 16 }, (_, i) => `X-Big-${i}: ${'b'.repeat(500)}\r\n`).join('');
  await conn.write(`GET /x HTTP/1.1\r\nHost: t\r\n${big}\r\n`);
  const res = await conn.readResponse();
  assertJsonError(assert, res, 431);
  assert.equal(backend.heads.length, 0, 'the backend saw nothing');
  await assertStillServing(s, tn);
});

itest('a request head just under max_header_bytes is accepted', async (t, s) => {
  const tn = await s.turnout({ backends: [mock.addr], proxy: LIMITS });
  const conn = await s.conn(tn.port);
  await conn.write(`GET /health HTTP/1.1\r\nHost: t\r\nX-Fill: ${'f'.repeat(3000)}\r\n\r\n`);
  assert.equal((await conn.readResponse()).status, 200);
});

itest('a request target longer than max_uri_bytes answers 414', async (t, s) => {
  const backend = await recordingBackend(s);
  const tn = await s.turnout({ backends: [backend.addr], proxy: LIMITS });
  const conn = await s.conn(tn.port);
  await conn.write(`GET /${'u'.repeat(2000)} HTTP/1.1\r\nHost: t\r\n\r\n`);
  const res = await conn.readResponse();
  assertJsonError(assert, res, 414);
  assert.equal(backend.heads.length, 0, 'the backend saw nothing');
  await assertStillServing(s, tn);
});

itest('a request target within max_uri_bytes is accepted', async (t, s) => {
  const tn = await s.turnout({ backends: [mock.addr], proxy: LIMITS });
  const conn = await s.conn(tn.port);
  await conn.write(`GET /headers?q=${'u'.repeat(900)} HTTP/1.1\r\nHost: t\r\n\r\n`);
  const res = await conn.readResponse();
  assert.equal(res.status, 200);
  assert.equal(res.json().target, `/headers?q=${'u'.repeat(900)}`);
});

itest('a Content-Length above max_body_bytes answers 413 up front, before any body is sent', async (t, s) => {
  const backend = await recordingBackend(s);
  const tn = await s.turnout({ backends: [backend.addr], proxy: LIMITS });
  const conn = await s.conn(tn.port);
  await conn.write('POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: text/plain\r\nContent-Length: 100000\r\n\r\n');
  const res = await conn.readResponse();
  assertJsonError(assert, res, 413);
  assert.equal(backend.heads.length, 0, 'the backend saw nothing');
  await assertStillServing(s, tn);
});

itest('Expect: 100-continue with a Content-Length above max_body_bytes answers 413 without 100 Continue', async (t, s) => {
  const backend = await recordingBackend(s);
  const tn = await s.turnout({ backends: [backend.addr], proxy: LIMITS });
  const conn = await s.conn(tn.port);
  await conn.write('PUT /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\nExpect: 100-continue\r\n\r\n');
  const res = await conn.readResponse({ interim: true });
  assertJsonError(assert, res, 413);
  assert.equal(backend.heads.length, 0, 'the backend saw nothing');
});

itest('a chunked body growing past max_body_bytes answers 413', async (t, s) => {
  // The backend reads bodies but never answers, so the only possible answer is turnout's own.
  const backend = await s.rawBackend(() => {});
  const tn = await s.turnout({ backends: [backend.addr], proxy: LIMITS });
  const conn = await s.conn(tn.port);
  await conn.write('POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n');
  const chunk = 'c'.repeat(16384);
  for (let i = 0; i < 6 && !conn.ended && conn.buf.length === 0; i++) {
    await conn.write(`${chunk.length.toString(16)}\r\n${chunk}\r\n`).catch(() => {});
  }
  await conn.write('0\r\n\r\n').catch(() => {});
  const res = await conn.readResponse({ timeout: 5000 });
  assertJsonError(assert, res, 413);
});

itest('a body of exactly max_body_bytes is accepted', async (t, s) => {
  const tn = await s.turnout({ backends: [mock.addr], proxy: LIMITS });
  const conn = await s.conn(tn.port);
  const body = 'e'.repeat(65536);
  await conn.write(`POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
  const res = await conn.readResponse();
  assert.equal(res.status, 200);
  assert.equal(res.body.length, body.length);
});

itest('a chunked body of exactly max_body_bytes is accepted', async (t, s) => {
  const tn = await s.turnout({ backends: [mock.addr], proxy: LIMITS });
  const conn = await s.conn(tn.port);
  const chunk = 'k'.repeat(16384);
  let req = 'POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n';
  for (let i = 0; i < 4; i++) req += `4000\r\n${chunk}\r\n`;
  await conn.write(`${req}0\r\n\r\n`);
  const res = await conn.readResponse();
  assert.equal(res.status, 200);
  assert.equal(res.body.length, 65536);
});
