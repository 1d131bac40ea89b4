// The life of the process: listeners, the status server (/healthz, /readyz), and SIGTERM
// (stop accepting, let requests in flight finish, exit 0).

import assert from 'node:assert/strict';
import net from 'node:net';
import { before } from 'node:test';
import { fileScope, httpRequest, itest, onRequestHead, waitUntil } from './support/harness.mjs';

const shared = fileScope();
let mock;

before(async () => {
  mock = await shared.mock({ name: 'life-mock' });
});

/** Resolves true if a TCP connect to the port is refused (nothing listening). */
function refused(port) {
  return new Promise((resolve) => {
    const sock = net.connect({ port, host: '127.0.0.1' });
    sock.once('connect', () => {
      sock.destroy();
      resolve(false);
    });
    sock.once('error', (err) => resolve(err.code === 'ECONNREFUSED'));
  });
}

/** A raw backend that holds each request until `release()` is called. */
async function holdingBackend(s) {
  let arrived;
  const arrivedP = new Promise((resolve) => {
    arrived = resolve;
  });
  let release;
  const releasedP = new Promise((resolve) => {
    release = resolve;
  });
  const backend = await s.rawBackend(onRequestHead(async (req, socket) => {
    arrived(req);
    await releasedP;
    socket.write('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 8\r\n\r\nfinished');
  }));
  return { backend, arrived: arrivedP, release };
}

itest('every [[listen]] address serves requests', async (t, s) => {
  const tn = await s.turnout({ backends: [mock.addr], listens: 2 });
  assert.equal(tn.listens.length, 2);
  assert.notEqual(tn.listens[0].port, tn.listens[1].port);
  for (const { port } of tn.listens) {
    const res = await httpRequest(port, { path: '/health' });
    assert.equal(res.status, 200);
    assert.equal(res.get('x-backend'), 'life-mock');
  }
});

itest('the status server answers /healthz and /readyz with 200', async (t, s) => {
  const tn = await s.turnout({ backends: [mock.addr], status: true });
  const health = await httpRequest(tn.statusPort, { path: '/healthz' });
  assert.equal(health.status, 200);
  const ready = await httpRequest(tn.statusPort, { path: '/readyz' });
  assert.equal(ready.status, 200);
});

itest('SIGTERM while a slow request is in flight: the request completes and turnout exits 0', async (t, s) => {
  const { backend, arrived, release } = await holdingBackend(s);
  const tn = await s.turnout({ backends: [backend.addr], status: true, proxy: { drain_timeout: '10s' } });
  const conn = await s.conn(tn.port);
  await conn.write('POST /mcp HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}');
  await arrived;

  tn.child.signal('SIGTERM');
  // Draining: not ready any more, and the listener stops accepting.
  await waitUntil(async () => {
    const r = await httpRequest(tn.statusPort, { path: '/readyz', timeout: 2000 }).catch(() => null);
    return r && r.status === 503;
  }, 5000, '/readyz to answer 503 after SIGTERM');
  await waitUntil(() => refused(tn.port), 5000, 'the proxy listener to close after SIGTERM');
  assert.ok(tn.child.running, 'turnout waits for the request in flight');

  release();
  const res = await conn.readResponse({ timeout: 5000 });
  assert.equal(res.status, 200);
  assert.equal(res.text(), 'finished');
  const exit = await tn.child.waitExit(10000);
  assert.equal(exit.code, 0, `exit status: ${JSON.stringify(exit)}`);
  assert.equal(exit.signal, null);
});

itest('SIGTERM with only idle keep-alive connections exits 0 without waiting for drain_timeout', async (t, s) => {
  const tn = await s.turnout({ backends: [mock.addr], proxy: { drain_timeout: '60s' } });
  const conn = await s.conn(tn.port);
  await conn.write('GET /health HTTP/1.1\r\nHost: t\r\n\r\n');
  assert.equal((await conn.readResponse()).status, 200);
  tn.child.signal('SIGTERM');
  const exit = await tn.child.waitExit(10000);
  assert.equal(exit.code, 0);
  await conn.waitClosed(2000);
});

itest('SIGTERM with no connections exits 0', async (t, s) => {
  const tn = await s.turnout({ backends: [mock.addr], status: true });
  // One round trip first, so that turnout is surely past its start-up.
  assert.equal((await httpRequest(tn.statusPort, { path: '/healthz' })).status, 200);
  tn.child.signal('SIGTERM');
  const exit = await tn.child.waitExit(10000);
  assert.deepEqual(exit, { code: 0, signal: null });
});

itest('SIGTERM right after the listening line is handled: turnout exits 0', async (t, s) => {
  // Anything (systemd, a script) may signal turnout as soon as it says it listens.
  const tn = await s.turnout({ backends: [mock.addr], status: true });
  tn.child.signal('SIGTERM');
  const exit = await tn.child.waitExit(10000);
  assert.deepEqual(exit, { code: 0, signal: null });
});

itest('SIGINT drains and exits 0 like SIGTERM', async (t, s) => {
  const tn = await s.turnout({ backends: [mock.addr] });
  assert.equal((await httpRequest(tn.port, { path: '/health' })).status, 200);
  tn.child.signal('SIGINT');
  const exit = await tn.child.waitExit(10000);
  assert.deepEqual(exit, { code: 0, signal: null });
});

itest('each proxied request is logged to the access log', async (t, s) => {
  const tn = await s.turnout({ backends: [mock.addr] });
  const res = await httpRequest(tn.port, { path: '/headers?marker=access-log-check' });
  assert.equal(res.status, 200);
  await tn.child.waitForMatches(/\/headers\?marker=access-log-check|\/headers/, { stream: 'stderr', timeout: 5000 });
  const line = tn.child.stderr.split('\n').find((l) => l.includes('/headers'));
  assert.match(line, /GET/);
  assert.match(line, /\b200\b/);
});

/** turnout_read_buffers from /metrics on the status address: {client, backend}. */
async function readBuffers(tn) {
  const res = await httpRequest(tn.statusPort, { path: '/metrics' });
  assert.equal(res.status, 200);
  const held = (side) => Number(res.body.toString().match(new RegExp(`^turnout_read_buffers\\{side="${side}"\\} (\\d+)$`, 'm'))?.[1]);
  return { client: held('client'), backend: held('backend') };
}

itest('idle keep-alive connections hold no read buffer; a connection reading a request holds one', async (t, s) => {
  const tn = await s.turnout({ backends: [mock.addr], status: true });
  const idle = [];
  for (let i = 0; i < 20; i++) {
    const conn = await s.conn(tn.port);
    await conn.write('GET /health HTTP/1.1\r\nHost: t\r\n\r\n');
    assert.equal((await conn.readResponse()).status, 200);
    idle.push(conn);
  }
  await waitUntil(async () => {
    const b = await readBuffers(tn);
    return b.client === 0 && b.backend === 0 ? b : null;
  }, 5000, '20 idle keep-alive connections to hold no buffer');

  // Half a request head: the connection is reading, so it holds its client buffer.
  const partial = [];
  for (let i = 0; i < 5; i++) {
    const conn = await s.conn(tn.port);
    await conn.write('GET /health HTTP/1.1\r\nHost: t\r\n');
    partial.push(conn);
  }
  await waitUntil(async () => ((await readBuffers(tn)).client === 5 ? true : null), 5000, '5 client buffers held');
  for (const conn of partial) {
    await conn.write('\r\n');
    assert.equal((await conn.readResponse()).status, 200);
  }
  // The idle ones still work after waiting without a buffer.
  for (const conn of idle) {
    await conn.write('GET /health HTTP/1.1\r\nHost: t\r\n\r\n');
    assert.equal((await conn.readResponse()).status, 200);
  }
  await waitUntil(async () => {
    const b = await readBuffers(tn);
    return b.client === 0 && b.backend === 0 ? b : null;
  }, 5000, 'every buffer given back');
});

itest('exchanges waiting for the backend hold only a response buffer; silent streams none', async (t, s) => {
  const tn = await s.turnout({ backends: [mock.addr], status: true });
  // Ten POSTs the backend answers after 2 s: each request went out whole, so its client
  // buffer is back in the cache; only the read pending for the answer holds a buffer.
  const body = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}';
  const waiting = [];
  for (let i = 0; i < 10; i++) {
    const conn = await s.conn(tn.port);
    await conn.write(`POST /delay?ms=2000 HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    waiting.push(conn);
  }
  // Three streams that sent their first event and then stay silent for 3 s.
  const streams = [];
  for (let i = 0; i < 3; i++) {
    const conn = await s.conn(tn.port);
    await conn.write('GET /sse?n=2&interval_ms=3000 HTTP/1.1\r\nHost: t\r\n\r\n');
    await conn.waitForText('event 1');
    streams.push(conn);
  }
  const during = await readBuffers(tn);
  assert.deepEqual(during, { client: 0, backend: 10 }, 'one response buffer per exchange waiting, none per stream');
  for (const conn of waiting) {
    const res = await conn.readResponse({ timeout: 5000 });
    assert.equal(res.status, 200);
    assert.equal(res.text(), '{"delayed":2000}');
  }
  for (const conn of streams) await conn.waitForText('event 2');
});

itest('the backend keep-alive pool keeps as many idle connections as were busy at once', async (t, s) => {
  // One worker: each worker has its own pool, and one pool must hold all 300.
  const tn = await s.turnout({ backends: [mock.addr], status: true, proxy: { workers: 1 } });
  const backendConnections = async () => {
    const res = await httpRequest(tn.statusPort, { path: '/metrics' });
    return Number(res.body.toString().match(/^turnout_backend_connections\{[^}]*\} (\d+)$/m)?.[1]);
  };
  // 300 exchanges at once need 300 backend connections; afterwards all 300 stay open for
  // the next burst instead of being closed (and reopened) down to a small cap.
  const conns = [];
  for (let i = 0; i < 300; i++) conns.push(await s.conn(tn.port));
  for (const wave of [1, 2]) {
    await Promise.all(conns.map((c) => c.write('GET /delay?ms=300 HTTP/1.1\r\nHost: t\r\n\r\n')));
    for (const c of conns) assert.equal((await c.readResponse()).status, 200, `wave ${wave}`);
    assert.equal(await backendConnections(), 300, `idle backend connections after wave ${wave}`);
  }
});
