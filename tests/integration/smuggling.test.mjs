// Strict parsing against request smuggling: ambiguous or malformed requests answer 400, the
// connection is closed, and the request never reaches a backend.

import assert from 'node:assert/strict';
import { assertJsonError, itest, onRequestHead } from './support/harness.mjs';

/** A raw backend that records every request head it gets and answers each with 200 "ok". */
async function recordingBackend(s) {
  const heads = [];
  const backend = await s.rawBackend(onRequestHead((req, socket) => {
    heads.push(req);
    socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
  }));
  backend.heads = heads;
  return backend;
}

/**
 * Sends `bytes` on a fresh connection and expects turnout's 400 and a closed connection; then a
 * valid request on a new connection must be the only one the backend ever saw.
 */
async function expectRejected(s, bytes, { status = 400, reachedBackend = false } = {}) {
  const backend = await recordingBackend(s);
  const tn = await s.turnout({ backends: [backend.addr] });
  const conn = await s.conn(tn.port);
  await conn.write(bytes);
  const res = await conn.readResponse({ timeout: 5000 });
  assertJsonError(assert, res, status);
  // Nothing after the bad request can be trusted: turnout closes the connection.
  await conn.waitClosed(5000);

  const sync = await s.conn(tn.port);
  await sync.write('GET /sync HTTP/1.1\r\nHost: t\r\n\r\n');
  const ok = await sync.readResponse();
  assert.equal(ok.status, 200, 'turnout keeps serving');
  if (!reachedBackend) {
    assert.deepEqual(backend.heads.map((h) => h.target), ['/sync'],
      `the rejected request must not reach the backend; it received ${JSON.stringify(backend.received().toString('latin1'))}`);
  }
}

itest('Content-Length together with Transfer-Encoding answers 400 and never reaches the backend', async (t, s) => {
  await expectRejected(s, 'POST /smuggle HTTP/1.1\r\nHost: t\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n' +
    '0\r\n\r\nGET /admin HTTP/1.1\r\nHost: t\r\n\r\n');
});

itest('Transfer-Encoding before Content-Length answers 400 and never reaches the backend', async (t, s) => {
  await expectRejected(s, 'POST /smuggle HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n' +
    '8\r\nSMUGGLED\r\n0\r\n\r\n');
});

itest('a Transfer-Encoding whose final coding is not chunked answers 400', async (t, s) => {
  await expectRejected(s, 'POST /smuggle HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, identity\r\n\r\n3\r\nabc\r\n0\r\n\r\n');
});

itest('an unknown Transfer-Encoding answers 400', async (t, s) => {
  await expectRejected(s, 'POST /smuggle HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: xchunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n');
});

itest('two different Content-Length headers answer 400 and never reach the backend', async (t, s) => {
  await expectRejected(s, 'POST /smuggle HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nContent-Length: 8\r\n\r\nabcdefgh');
});

itest('a Content-Length list with different values answers 400', async (t, s) => {
  await expectRejected(s, 'POST /smuggle HTTP/1.1\r\nHost: t\r\nContent-Length: 3, 8\r\n\r\nabcdefgh');
});

itest('a non-numeric Content-Length answers 400', async (t, s) => {
  await expectRejected(s, 'POST /smuggle HTTP/1.1\r\nHost: t\r\nContent-Length: -3\r\n\r\nabc');
});

itest('a bad chunk size answers 400', async (t, s) => {
  // Whether the head was already forwarded is turnout's business; the answer must be 400.
  await expectRejected(s, 'POST /smuggle HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n',
    { reachedBackend: true });
});

itest('a chunk size that overflows answers 400', async (t, s) => {
  await expectRejected(s, 'POST /smuggle HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n' +
    'fffffffffffffffffffff1\r\nhello\r\n0\r\n\r\n', { reachedBackend: true });
});

itest('obs-fold (a header continued on the next line) answers 400 and never reaches the backend', async (t, s) => {
  await expectRejected(s, 'GET /fold HTTP/1.1\r\nHost: t\r\nX-Folded: first\r\n  second\r\n\r\n');
});

itest('obs-fold of Transfer-Encoding answers 400 and never reaches the backend', async (t, s) => {
  await expectRejected(s, 'POST /fold HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nX-A: b\r\n Transfer-Encoding: chunked\r\n\r\nhello');
});

itest('whitespace between a header name and the colon answers 400', async (t, s) => {
  await expectRejected(s, 'POST /ws HTTP/1.1\r\nHost: t\r\nContent-Length : 5\r\n\r\nhello');
});

itest('a control character in a header value answers 400', async (t, s) => {
  await expectRejected(s, 'GET /ctl HTTP/1.1\r\nHost: t\r\nX-Bad: a\x01b\r\n\r\n');
});

itest('an invalid character in a header name answers 400', async (t, s) => {
  await expectRejected(s, 'GET /name HTTP/1.1\r\nHost: t\r\nX(Bad): 1\r\n\r\n');
});

itest('a malformed request line answers 400', async (t, s) => {
  await expectRejected(s, 'GET /no-version\r\nHost: t\r\n\r\n');
});

itest('a request line with garbage instead of a method answers 400', async (t, s) => {
  await expectRejected(s, '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http\r\n\r\n');
});

itest('an unsupported HTTP version answers 400 or 505', async (t, s) => {
  const backend = await recordingBackend(s);
  const tn = await s.turnout({ backends: [backend.addr] });
  const conn = await s.conn(tn.port);
  await conn.write('GET / HTTP/3.7\r\nHost: t\r\n\r\n');
  const res = await conn.readResponse();
  assert.ok([400, 505].includes(res.status), `got ${res.status}`);
  assert.equal(backend.heads.length, 0);
});

itest('an HTTP/1.1 request without Host answers 400', async (t, s) => {
  await expectRejected(s, 'GET /nohost HTTP/1.1\r\nX-A: b\r\n\r\n');
});

itest('an HTTP/1.1 request with two Host headers answers 400', async (t, s) => {
  await expectRejected(s, 'GET /twohosts HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n');
});

itest('a smuggled request after a rejected one is never answered or forwarded', async (t, s) => {
  const backend = await recordingBackend(s);
  const tn = await s.turnout({ backends: [backend.addr] });
  const conn = await s.conn(tn.port);
  await conn.write('POST /a HTTP/1.1\r\nHost: t\r\nContent-Length: 44\r\nTransfer-Encoding: chunked\r\n\r\n' +
    '0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n');
  const res = await conn.readResponse();
  assertJsonError(assert, res, 400);
  const rest = await conn.waitClosed(5000);
  assert.equal(rest.length, 0, `nothing after the 400: ${JSON.stringify(rest.toString('latin1'))}`);
  assert.ok(!backend.heads.some((h) => h.target === '/smuggled'));
});
