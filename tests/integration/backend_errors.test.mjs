// Backend failures: 502 (closed, garbage), 503 (no backend), 504 (slow head), and the retry of
// another backend when one refuses the connection or does not accept it within connect_timeout.

import assert from 'node:assert/strict';
import { before } from 'node:test';
import { RawConn, assertJsonError, closedPort, fileScope, itest, onRequestHead } from './support/harness.mjs';
import { backendIn, status, waitAdmin } from './support/control_helpers.mjs';

const shared = fileScope();
let mock;
let mock2;

before(async () => {
  [mock, mock2] = await Promise.all([shared.mock({ name: 'err-mock-1' }), shared.mock({ name: 'err-mock-2' })]);
});

const get = (target, extra = '') => `GET ${target} HTTP/1.1\r\nHost: t\r\n${extra}\r\n`;

async function assertStillServing(s, port) {
  const conn = await s.conn(port);
  await conn.write(get('/health'));
  const res = await conn.readResponse();
  assert.equal(res.status, 200, 'turnout keeps serving after the error');
}

itest('a backend response head slower than response_timeout answers 504', async (t, s) => {
  const tn = await s.turnout({ backends: [mock.addr], proxy: { response_timeout: '300ms' } });
  const conn = await s.conn(tn.port);
  await conn.write(get('/delay?ms=3000'));
  const res = await conn.readResponse({ timeout: 5000 });
  assertJsonError(assert, res, 504);
  await assertStillServing(s, tn.port);
});

itest('a slow POST (tool call) past response_timeout answers 504', async (t, s) => {
  const tn = await s.turnout({ backends: [mock.addr], proxy: { response_timeout: '300ms' } });
  const conn = await s.conn(tn.port);
  await conn.write('POST /delay?ms=3000 HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}');
  const res = await conn.readResponse({ timeout: 5000 });
  assertJsonError(assert, res, 504);
});

itest('response_timeout bounds the response head only: a longer SSE stream is not cut', async (t, s) => {
  const tn = await s.turnout({ backends: [mock.addr], proxy: { response_timeout: '300ms' } });
  const conn = await s.conn(tn.port);
  // 4 events 250 ms apart: the stream lasts well past response_timeout.
  await conn.write(get('/sse?n=4&interval_ms=250'));
  const res = await conn.readResponse({ timeout: 8000 });
  assert.equal(res.status, 200);
  assert.equal((res.text().match(/^data: /gm) || []).length, 4, `all events arrived: ${JSON.stringify(res.text())}`);
});

itest('a backend that closes without answering gives 502', async (t, s) => {
  const backend = await s.rawBackend(onRequestHead((req, socket) => socket.destroy()));
  const tn = await s.turnout({ backends: [backend.addr] });
  const conn = await s.conn(tn.port);
  await conn.write(get('/x'));
  const res = await conn.readResponse();
  assertJsonError(assert, res, 502);
});

itest('a backend that answers garbage gives 502', async (t, s) => {
  const backend = await s.rawBackend(onRequestHead((req, socket) => {
    socket.end('THIS IS NOT HTTP AT ALL\r\n\r\n');
  }));
  const tn = await s.turnout({ backends: [backend.addr] });
  const conn = await s.conn(tn.port);
  await conn.write(get('/x'));
  const res = await conn.readResponse();
  assertJsonError(assert, res, 502);
});

itest('a backend that closes in the middle of its response head gives 502', async (t, s) => {
  const backend = await s.rawBackend(onRequestHead((req, socket) => {
    socket.end('HTTP/1.1 200 OK\r\nContent-Type: text/pla');
  }));
  const tn = await s.turnout({ backends: [backend.addr] });
  const conn = await s.conn(tn.port);
  await conn.write(get('/x'));
  const res = await conn.readResponse();
  assertJsonError(assert, res, 502);
});

itest('a backend that dies mid-body: the client connection is closed, the response not completed', async (t, s) => {
  const backend = await s.rawBackend(onRequestHead((req, socket) => {
    socket.write('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\nonly part of it');
    setTimeout(() => socket.destroy(), 50);
  }));
  const tn = await s.turnout({ backends: [backend.addr] });
  const conn = await s.conn(tn.port);
  await conn.write(get('/x'));
  // Either the 200 head and fewer than 100 body bytes followed by a close, or (if the head
  // was still held back) a 502: never a complete-looking response on a live connection.
  const rest = await conn.waitClosed(5000);
  const text = rest.toString('latin1');
  if (/^HTTP\/1\.1 502/.test(text)) return;
  assert.match(text, /^HTTP\/1\.1 200/);
  const body = text.slice(text.indexOf('\r\n\r\n') + 4);
  const cl = /content-length:\s*(\d+)/i.exec(text);
  if (cl) assert.ok(body.length < Number(cl[1]), 'the body is visibly incomplete');
  else assert.ok(!body.endsWith('0\r\n\r\n'), 'a chunked body is not terminated as if complete');
});

itest('a backend that dies mid-chunked-body: the client does not get a terminating chunk', async (t, s) => {
  const backend = await s.rawBackend(onRequestHead((req, socket) => {
    socket.write('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n');
    setTimeout(() => socket.destroy(), 50);
  }));
  const tn = await s.turnout({ backends: [backend.addr] });
  const conn = await s.conn(tn.port);
  await conn.write(get('/x'));
  const text = (await conn.waitClosed(5000)).toString('latin1');
  if (/^HTTP\/1\.1 502/.test(text)) return;
  assert.match(text, /^HTTP\/1\.1 200/);
  assert.ok(text.includes('hello'));
  assert.ok(!/\r\n0\r\n\r\n$/.test(text), `no terminating chunk: ${JSON.stringify(text)}`);
});

itest('a pool with no backends answers 503', async (t, s) => {
  const tn = await s.turnout({ backends: [] });
  const conn = await s.conn(tn.port);
  await conn.write(get('/mcp'));
  const res = await conn.readResponse();
  assertJsonError(assert, res, 503);
  // The answer is framed so that the client can go on: on the same connection unless turnout
  // said Connection: close (then it must close it), else on a new one.
  let next = conn;
  if (/close/i.test(res.get('connection') ?? '')) {
    await conn.waitClosed(5000);
    next = await s.conn(tn.port);
  }
  await next.write(get('/mcp'));
  assertJsonError(assert, await next.readResponse(), 503);
});

itest('a pool whose only backend refuses connections answers 502', async (t, s) => {
  const dead = await closedPort();
  const tn = await s.turnout({ backends: [`127.0.0.1:${dead}`] });
  const conn = await s.conn(tn.port);
  await conn.write(get('/x'));
  const res = await conn.readResponse();
  assertJsonError(assert, res, 502);
});

itest('a refused connection is retried on another backend: every request succeeds', async (t, s) => {
  const dead = await closedPort();
  const tn = await s.turnout({ backends: [`127.0.0.1:${dead}`, mock.addr] });
  for (let i = 0; i < 12; i++) {
    const conn = await s.conn(tn.port);
    await conn.write(get(`/headers?i=${i}`, 'Connection: close\r\n'));
    const res = await conn.readResponse();
    assert.equal(res.status, 200, `request ${i}: ${res.status} ${res.text()}`);
    assert.equal(res.get('x-backend'), 'err-mock-1');
    conn.destroy();
  }
});

itest('a connect that does not complete within connect_timeout moves to another backend, which answers', async (t, s) => {
  // A backend whose accept queue is full: the kernel drops the SYNs of any further connect.
  const hole = await s.mock({ name: 'err-blackhole', noAccept: true });
  await s.conn(hole.port); // the one connection its backlog of 0 holds
  // The hang is real: a direct connect does not complete (it would take minutes to give up).
  await assert.rejects(RawConn.open(hole.port, { timeout: 1000 }), /timed out/,
    'a connect to the backend with a full accept queue hangs');

  const tn = await s.turnout({ backends: [hole.addr, mock.addr], proxy: { connect_timeout: '200ms' } });
  await waitAdmin(tn);
  // The pool's choice is per request: go on until one of them was sent to the hanging backend
  // first (its failed connect counts as an error there), every one answered by the other.
  let tried = false;
  for (let i = 0; i < 40 && !tried; i++) {
    const conn = await s.conn(tn.port);
    await conn.write(get(`/headers?i=${i}`, 'Connection: close\r\n'));
    const res = await conn.readResponse({ timeout: 8000 });
    assert.equal(res.status, 200, `request ${i}: ${res.status} ${res.text()}`);
    assert.equal(res.get('x-backend'), 'err-mock-1', `request ${i} answered by the backend that accepts`);
    conn.destroy();
    tried = backendIn(await status(tn), hole.addr).errors_total > 0;
  }
  assert.ok(tried, 'some request tried the hanging backend first (errors_total > 0 there)');
});

itest('a refused POST with a body is retried on another backend with its body intact', async (t, s) => {
  const dead = await closedPort();
  const tn = await s.turnout({ backends: [`127.0.0.1:${dead}`, mock.addr] });
  const conn = await s.conn(tn.port);
  for (let i = 0; i < 6; i++) {
    const body = `payload number ${i}`;
    await conn.write(`POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    const res = await conn.readResponse();
    assert.equal(res.status, 200);
    assert.equal(res.text(), body);
  }
});

itest('requests are spread over the backends of a pool', async (t, s) => {
  const tn = await s.turnout({ backends: [mock.addr, mock2.addr] });
  const seen = new Set();
  // Concurrent slow requests: power-of-two-choices on in-flight requests must use both.
  const one = async () => {
    const conn = await s.conn(tn.port);
    await conn.write(get('/delay?ms=200', 'Connection: close\r\n'));
    const res = await conn.readResponse();
    assert.equal(res.status, 200);
    seen.add(res.get('x-backend'));
  };
  await Promise.all(Array.from({ length: 8 }, one));
  assert.deepEqual([...seen].sort(), ['err-mock-1', 'err-mock-2']);
});
