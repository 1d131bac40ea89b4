// HTTP/1.1 framing through turnout: HEAD, 1xx, 204, 304, pipelining, Expect: 100-continue,
// keep-alive, Connection: close, and the headers a proxy adds and removes.

import assert from 'node:assert/strict';
import { before } from 'node:test';
import { fileScope, itest, onRequestHead } from './support/harness.mjs';

const shared = fileScope();
let mock;

before(async () => {
  mock = await shared.mock({ name: 'framing-mock' });
});

const get = (target, extra = '') => `GET ${target} HTTP/1.1\r\nHost: t\r\n${extra}\r\n`;

/** The request as the mock received it (GET /headers), as {method, target, version, get(name), all(name)}. */
function receivedRequest(res) {
  const j = res.json();
  const lower = (n) => n.toLowerCase();
  return {
    ...j,
    names: j.headers.map(([n]) => lower(n)),
    all: (name) => j.headers.filter(([n]) => lower(n) === lower(name)).map(([, v]) => v),
    get: (name) => {
      const v = j.headers.filter(([n]) => lower(n) === lower(name)).map(([, v2]) => v2);
      return v.length ? v.join(', ') : undefined;
    },
  };
}

itest('HEAD gets headers and no body, and the keep-alive connection stays in sync', async (t, s) => {
  const tn = await s.turnout({ backends: [mock.addr] });
  const conn = await s.conn(tn.port);
  await conn.write('HEAD /health HTTP/1.1\r\nHost: t\r\n\r\n');
  const head = await conn.readResponse({ method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(head.get('x-backend'), 'framing-mock');
  await conn.write(get('/health'));
  const res = await conn.readResponse();
  assert.equal(res.status, 200);
  assert.ok(res.body.length > 0, 'GET /health has a body');
});

itest('HEAD of a chunked response has no body, and the next request still works', async (t, s) => {
  const tn = await s.turnout({ backends: [mock.addr] });
  const conn = await s.conn(tn.port);
  await conn.write('HEAD /sse?n=2&interval_ms=10 HTTP/1.1\r\nHost: t\r\n\r\n');
  const head = await conn.readResponse({ method: 'HEAD' });
  assert.ok(head.status < 500, `HEAD answered: ${head.status}`);
  await conn.write(get('/health'));
  const res = await conn.readResponse();
  assert.equal(res.status, 200);
  assert.equal(res.get('x-backend'), 'framing-mock');
});

for (const code of [204, 304]) {
  itest(`a ${code} response has no body and the next request on the connection works`, async (t, s) => {
    const tn = await s.turnout({ backends: [mock.addr] });
    const conn = await s.conn(tn.port);
    await conn.write(get(`/status/${code}`));
    const res = await conn.readResponse();
    assert.equal(res.status, code);
    assert.equal(res.body.length, 0);
    assert.equal(res.get('transfer-encoding'), undefined, `${code} carries no Transfer-Encoding`);
    await conn.write(get('/health'));
    const next = await conn.readResponse();
    assert.equal(next.status, 200);
    assert.ok(next.body.length > 0);
  });
}

itest('a 1xx interim response from the backend is framed correctly before the final one', async (t, s) => {
  const backend = await s.rawBackend(onRequestHead((req, socket) => {
    if (req.target === '/hints') {
      socket.write('HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n' +
        'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nfinal');
    } else {
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext');
    }
  }));
  const tn = await s.turnout({ backends: [backend.addr] });
  const conn = await s.conn(tn.port);
  await conn.write(get('/hints'));
  const res = await conn.readResponse();
  assert.equal(res.status, 200);
  assert.equal(res.text(), 'final');
  for (const i of res.interim) assert.equal(i.status, 103, 'only the backend\'s 103 may come before the final answer');
  await conn.write(get('/after'));
  const next = await conn.readResponse();
  assert.equal(next.status, 200);
  assert.equal(next.text(), 'next');
});

itest('pipelined requests sent in one write are answered in order', async (t, s) => {
  const tn = await s.turnout({ backends: [mock.addr] });
  const conn = await s.conn(tn.port);
  await conn.write(get('/headers?i=1') + get('/headers?i=2') + get('/headers?i=3'));
  for (const i of [1, 2, 3]) {
    const res = await conn.readResponse();
    assert.equal(res.status, 200);
    assert.equal(receivedRequest(res).target, `/headers?i=${i}`);
  }
});

itest('pipelined requests are answered in order even when the first is the slowest', async (t, s) => {
  const tn = await s.turnout({ backends: [mock.addr] });
  const conn = await s.conn(tn.port);
  await conn.write(get('/delay?ms=300') + get('/headers?i=2'));
  const first = await conn.readResponse();
  assert.equal(first.status, 200);
  assert.ok(!first.text().includes('/headers?i=2'), `first answer belongs to /delay: ${first.text()}`);
  const second = await conn.readResponse();
  assert.equal(second.status, 200);
  assert.equal(receivedRequest(second).target, '/headers?i=2');
});

itest('pipelined requests with bodies between them are answered in order', async (t, s) => {
  const tn = await s.turnout({ backends: [mock.addr] });
  const conn = await s.conn(tn.port);
  await conn.write(get('/headers?i=1') +
    'POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: text/plain\r\nContent-Length: 9\r\n\r\npipelined' +
    'POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nmore\r\n0\r\n\r\n' +
    get('/headers?i=4'));
  const r1 = await conn.readResponse();
  assert.equal(receivedRequest(r1).target, '/headers?i=1');
  const r2 = await conn.readResponse();
  assert.equal(r2.text(), 'pipelined');
  const r3 = await conn.readResponse();
  assert.equal(r3.text(), 'more');
  const r4 = await conn.readResponse();
  assert.equal(receivedRequest(r4).target, '/headers?i=4');
});

itest('Expect: 100-continue is answered with 100 Continue, then the body is forwarded', async (t, s) => {
  const tn = await s.turnout({ backends: [mock.addr] });
  const conn = await s.conn(tn.port);
  await conn.write('POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: text/plain\r\nContent-Length: 11\r\nExpect: 100-continue\r\n\r\n');
  const interim = await conn.readResponse({ interim: true });
  assert.equal(interim.status, 100);
  await conn.write('hello world');
  const res = await conn.readResponse();
  assert.equal(res.status, 200);
  assert.equal(res.text(), 'hello world');
  await conn.write(get('/health'));
  assert.equal((await conn.readResponse()).status, 200, 'the connection stays in sync after 100-continue');
});

itest('keep-alive: several requests are answered on one client connection', async (t, s) => {
  const tn = await s.turnout({ backends: [mock.addr] });
  const conn = await s.conn(tn.port);
  for (let i = 0; i < 5; i++) {
    await conn.write(get(`/headers?n=${i}`));
    const res = await conn.readResponse();
    assert.equal(res.status, 200);
    assert.equal(receivedRequest(res).target, `/headers?n=${i}`);
    assert.doesNotMatch(res.get('connection') ?? '', /close/i);
    assert.ok(!conn.ended, 'the connection is still open');
  }
});

itest('Connection: close from the client: turnout answers, then closes the connection', async (t, s) => {
  const tn = await s.turnout({ backends: [mock.addr] });
  const conn = await s.conn(tn.port);
  await conn.write(get('/health', 'Connection: close\r\n'));
  const res = await conn.readResponse();
  assert.equal(res.status, 200);
  await conn.waitClosed(5000);
});

itest('an HTTP/1.0 request without keep-alive is answered and the connection closed', async (t, s) => {
  const tn = await s.turnout({ backends: [mock.addr] });
  const conn = await s.conn(tn.port);
  await conn.write('GET /health HTTP/1.0\r\nHost: t\r\n\r\n');
  const res = await conn.readResponse();
  assert.equal(res.status, 200);
  assert.ok(res.body.length > 0);
  await conn.waitClosed(5000);
});

itest('a backend that answers with Connection: close does not close the client connection', async (t, s) => {
  const tn = await s.turnout({ backends: [mock.addr] });
  const conn = await s.conn(tn.port);
  await conn.write(get('/close'));
  const res = await conn.readResponse();
  assert.equal(res.status, 200);
  await conn.write(get('/health'));
  const next = await conn.readResponse();
  assert.equal(next.status, 200);
  assert.equal(next.get('x-backend'), 'framing-mock');
});

itest('X-Forwarded-For is appended, X-Forwarded-Proto and X-Forwarded-Host are set', async (t, s) => {
  const tn = await s.turnout({ backends: [mock.addr] });
  const conn = await s.conn(tn.port);
  await conn.write('GET /headers HTTP/1.1\r\nHost: app.example:8443\r\nX-Forwarded-For: 203.0.113.9\r\n\r\n');
  const seen = receivedRequest(await conn.readResponse());
  const xff = seen.all('x-forwarded-for').join(', ').split(/\s*,\s*/);
  assert.deepEqual(xff, ['203.0.113.9', '127.0.0.1'], `X-Forwarded-For as the backend saw it: ${seen.get('x-forwarded-for')}`);
  assert.equal(seen.get('x-forwarded-proto'), 'http');
  assert.equal(seen.get('x-forwarded-host'), 'app.example:8443');

  await conn.write(get('/headers'));
  const plain = receivedRequest(await conn.readResponse());
  assert.equal(plain.get('x-forwarded-for'), '127.0.0.1');
  assert.equal(plain.get('x-forwarded-host'), 't');

  // Several X-Forwarded-For fields (any case, an empty one among them) become one list in
  // order; the client's own X-Forwarded-Proto and -Host are replaced, not passed on.
  await conn.write('GET /headers HTTP/1.1\r\nx-forwarded-for: 198.51.100.1, 198.51.100.2\r\nHost: h\r\n' +
    'X-FORWARDED-PROTO: https\r\nX-Forwarded-For:\r\nX-Forwarded-Host: evil.example\r\nX-Forwarded-for: 10.9.9.9\r\n\r\n');
  const chained = receivedRequest(await conn.readResponse());
  assert.deepEqual(chained.all('x-forwarded-for'), ['198.51.100.1, 198.51.100.2, 10.9.9.9, 127.0.0.1']);
  assert.deepEqual(chained.all('x-forwarded-proto'), ['http']);
  assert.deepEqual(chained.all('x-forwarded-host'), ['h']);
});

itest('hop-by-hop request headers are removed before the backend, end-to-end ones kept', async (t, s) => {
  const tn = await s.turnout({ backends: [mock.addr] });
  const conn = await s.conn(tn.port);
  await conn.write('GET /headers HTTP/1.1\r\nHost: t\r\n' +
    'Connection: keep-alive, X-Hop-Secret\r\n' +
    'X-Hop-Secret: do-not-forward\r\n' +
    'Keep-Alive: timeout=5\r\n' +
    'Proxy-Connection: keep-alive\r\n' +
    'TE: trailers\r\n' +
    'Trailer: X-Checksum\r\n' +
    'Upgrade: websocket\r\n' +
    'X-End-To-End: kept\r\n' +
    'X-Multi: one\r\n' +
    'X-Multi: two\r\n' +
    'Mcp-Session-Id: abc-123\r\n' +
    '\r\n');
  const res = await conn.readResponse();
  assert.equal(res.status, 200);
  const seen = receivedRequest(res);
  assert.equal(seen.version, 'HTTP/1.1', 'proxied as HTTP/1.1');
  for (const name of ['x-hop-secret', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'upgrade', 'transfer-encoding']) {
    assert.ok(!seen.names.includes(name), `${name} must not reach the backend: ${JSON.stringify(seen.headers)}`);
  }
  assert.doesNotMatch(seen.get('connection') ?? '', /x-hop-secret/i);
  assert.equal(seen.get('x-end-to-end'), 'kept');
  assert.deepEqual(seen.all('x-multi').join(',').split(/\s*,\s*/), ['one', 'two'], 'repeated headers keep their order');
  assert.equal(seen.get('mcp-session-id'), 'abc-123');
});

itest('a chunked request reaches the backend re-framed, without the client\'s Transfer-Encoding line duplicated', async (t, s) => {
  let head;
  const backend = await s.rawBackend(onRequestHead((req, socket, conn) => {
    head = req;
    const check = () => {
      const text = conn.data.toString('latin1');
      const bodyStart = text.indexOf('\r\n\r\n') + 4;
      const body = text.slice(bodyStart);
      const done = req.get('transfer-encoding') ? body.endsWith('0\r\n\r\n') : body.length >= Number(req.get('content-length') ?? 0);
      if (done) socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    };
    socket.on('data', check);
    check();
  }));
  const tn = await s.turnout({ backends: [backend.addr] });
  const conn = await s.conn(tn.port);
  await conn.write('POST /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n');
  const res = await conn.readResponse();
  assert.equal(res.status, 200);
  assert.ok(head, 'the backend saw the request');
  const te = head.headers.filter(([n]) => n.toLowerCase() === 'transfer-encoding');
  const cl = head.headers.filter(([n]) => n.toLowerCase() === 'content-length');
  assert.ok(te.length + cl.length === 1, `exactly one framing header toward the backend: ${JSON.stringify(head.headers)}`);
  if (te.length) assert.match(te[0][1], /^chunked$/i);
});

itest('hop-by-hop response headers are removed before the client', async (t, s) => {
  const backend = await s.rawBackend(onRequestHead((req, socket) => {
    socket.write('HTTP/1.1 200 OK\r\n' +
      'Connection: keep-alive, X-Resp-Hop\r\n' +
      'X-Resp-Hop: secret\r\n' +
      'Keep-Alive: timeout=5, max=100\r\n' +
      'Proxy-Connection: keep-alive\r\n' +
      'X-End: kept\r\n' +
      'Content-Length: 2\r\n\r\nok');
  }));
  const tn = await s.turnout({ backends: [backend.addr] });
  const conn = await s.conn(tn.port);
  await conn.write(get('/x'));
  const res = await conn.readResponse();
  assert.equal(res.status, 200);
  assert.equal(res.text(), 'ok');
  const names = res.headers.map(([n]) => n.toLowerCase());
  for (const name of ['x-resp-hop', 'keep-alive', 'proxy-connection']) {
    assert.ok(!names.includes(name), `${name} must not reach the client: ${JSON.stringify(res.headers)}`);
  }
  assert.doesNotMatch(res.get('connection') ?? '', /x-resp-hop/i);
  assert.equal(res.get('x-end'), 'kept');
});

itest('backend connections are reused across requests (keep-alive pool)', async (t, s) => {
  const backend = await s.rawBackend(onRequestHead((req, socket) => {
    socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
  }));
  const tn = await s.turnout({ backends: [backend.addr] });
  const conn = await s.conn(tn.port);
  for (let i = 0; i < 10; i++) {
    await conn.write(get(`/r${i}`));
    assert.equal((await conn.readResponse()).status, 200);
  }
  assert.ok(backend.conns.length <= 2, `10 sequential requests used ${backend.conns.length} backend connections`);
});

itest('a pooled backend connection that the backend closed while idle is not used again', async (t, s) => {
  // The backend answers with keep-alive, then closes the idle connection soon after.
  const backend = await s.rawBackend(onRequestHead((req, socket) => {
    socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok', () => setTimeout(() => socket.destroy(), 30));
  }));
  const tn = await s.turnout({ backends: [backend.addr] });
  const conn = await s.conn(tn.port);
  await conn.write(get('/first'));
  assert.equal((await conn.readResponse()).status, 200);
  await backend.waitFor(() => backend.conns.every((c) => c.closed), 5000, 'the backend to close its idle connection');
  await conn.write(get('/second'));
  const res = await conn.readResponse();
  assert.equal(res.status, 200, `the second request got ${res.status} ${res.text()}`);
});

itest('50 concurrent clients each get their own answer', async (t, s) => {
  const tn = await s.turnout({ backends: [mock.addr] });
  const one = async (i) => {
    const conn = await s.conn(tn.port);
    for (let j = 0; j < 4; j++) {
      const body = `client ${i} request ${j} ${'#'.repeat((i * 37 + j * 101) % 3000)}`;
      await conn.write(`POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
      const res = await conn.readResponse({ timeout: 10000 });
      assert.equal(res.status, 200);
      assert.equal(res.text(), body);
    }
    conn.destroy();
  };
  await Promise.all(Array.from({ length: 50 }, (_, i) => one(i)));
});
