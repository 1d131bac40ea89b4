// The life of the process: listeners, worker threads, the access log, the status server
// (/healthz, /readyz), and SIGTERM (stop accepting, let requests in flight finish, exit 0).

import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
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

itest('access_log = a path: each request is one line in that file, with its method, target and status', async (t, s) => {
  const tn = await s.turnout({ backends: [mock.addr], proxy: { access_log: 'access.log' } });
  const file = path.join(tn.dir, 'access.log'); // relative to the config file's folder
  const requests = [
    { method: 'GET', target: '/headers?marker=file-log-1', status: 200 },
    { method: 'POST', target: '/echo?marker=file-log-2', status: 200, body: 'hello' },
    { method: 'GET', target: '/status/404?marker=file-log-3', status: 404 },
    { method: 'DELETE', target: '/mcp?marker=file-log-4', status: 400 },
  ];
  for (const r of requests) {
    const res = await httpRequest(tn.port, { method: r.method, path: r.target, body: r.body });
    assert.equal(res.status, r.status, `${r.method} ${r.target}`);
  }
  const lines = () => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter((l) => l.includes('file-log-')) : []);
  await waitUntil(() => lines().length >= requests.length, 10000, `${requests.length} lines in ${file}`);
  const logged = lines();
  assert.equal(logged.length, requests.length, `one line per request: ${JSON.stringify(logged)}`);
  requests.forEach((r, i) => {
    const line = logged[i];
    assert.ok(line.includes(`${r.method} ${r.target}`), `line ${i} names ${r.method} ${r.target}: ${line}`);
    assert.match(line.slice(line.indexOf(r.target) + r.target.length), new RegExp(`\\b${r.status}\\b`),
      `line ${i} has the status ${r.status}: ${line}`);
  });
  assert.doesNotMatch(tn.child.stderr, /file-log-/, 'the access log goes to the file, not to stderr');
});

/**
 * Voluntary context switches of each thread of `pid` except the main one (turnout's control
 * thread: signals, admin socket, timers): {tid: count}. An event loop blocks in epoll_wait when
 * it has nothing to do, so each connection it serves costs it at least one such switch.
 */
function loopThreadSwitches(pid) {
  const out = {};
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    if (Number(tid) === pid) continue;
    try {
      const st = readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
      out[tid] = Number(/^voluntary_ctxt_switches:\s+(\d+)$/m.exec(st)[1]);
    } catch {
      // the thread ended meanwhile
    }
  }
  return out;
}

itest('workers = N: N event loops serve the connections (1 thread takes all the traffic with 1, 2 share it with 2)', async (t, s) => {
  const servingThreads = async (workers) => {
    const tn = await s.turnout({ backends: [mock.addr], proxy: { workers } });
    const before = loopThreadSwitches(tn.pid);
    // 240 connections, 4 at a time, one request each: the kernel spreads new connections
    // over the workers' SO_REUSEPORT acceptors.
    let next = 0;
    await Promise.all(Array.from({ length: 4 }, async () => {
      while (next < 240) {
        next += 1;
        const res = await httpRequest(tn.port, { path: '/health' });
        assert.equal(res.status, 200);
      }
    }));
    const after = loopThreadSwitches(tn.pid);
    const gained = Object.entries(after).map(([tid, n]) => ({ tid, n: n - (before[tid] ?? 0) }));
    const total = gained.reduce((sum, g) => sum + g.n, 0);
    // A thread that served a fair share of the connections, not one that woke for a timer.
    const serving = gained.filter((g) => g.n >= total * 0.2);
    await tn.stop();
    return { count: serving.length, gained };
  };
  const one = await servingThreads(1);
  assert.equal(one.count, 1, `workers = 1: one thread serves: ${JSON.stringify(one.gained)}`);
  const two = await servingThreads(2);
  assert.equal(two.count, 2, `workers = 2: two threads serve: ${JSON.stringify(two.gained)}`);
});

itest('workers = 0: one event loop per core', async (t, s) => {
  const tn = await s.turnout({ backends: [mock.addr], proxy: { workers: 0 } });
  assert.equal((await httpRequest(tn.port, { path: '/health' })).status, 200);
  const loops = Object.keys(loopThreadSwitches(tn.pid)).length;
  assert.equal(loops, os.cpus().length, `event-loop threads besides the control thread, on ${os.cpus().length} cores`);
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
