// Active health checks (SPEC.md "Health", [upstream.health]; issue 5) against real MCP SDK
// servers that fail on purpose (support/health_server.mjs): a backend that dies, one whose
// initialize fails while /health still answers 200, one that answers 503 (as a draining MCP
// server does) and recovers. Unhealthy backends get no new sessions; their pinned sessions keep
// being forwarded; status shows the last probe's result and error. Unknown session ids are
// hashed over the healthy backends only. Backends of the config start healthy, backends added
// at run time start unhealthy.

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { itest, onRequestHead } from './support/harness.mjs';
import { SESSION_NOT_FOUND, rendezvousOracle, sessionRequest } from './support/session_helpers.mjs';
import { admin, backendIn, ctl, metricValue, parseMetrics, status, waitAdmin } from './support/control_helpers.mjs';
import {
  fastHealth, healthConfig, initializeMany, sessionOn, startHealthServer, waitAllProbed, waitBackend,
} from './support/health_helpers.mjs';

async function metrics(tn) {
  const r = await admin(tn, 'GET', '/metrics');
  assert.equal(r.status, 200, r.text);
  return parseMetrics(r.text);
}

itest('a backend that dies is marked unhealthy after fall probes, gets no new sessions, and status shows the last error', async (t, s) => {
  const [a, b] = await Promise.all([
    startHealthServer(s, { name: 'die-a' }),
    startHealthServer(s, { name: 'die-b' }),
  ]);
  const tn = await s.turnout(healthConfig([{ name: 'blue', weight: 100, version: '1.0.0', backends: [a.addr, b.addr] }],
    fastHealth({ fall: 3 })));
  await waitAdmin(tn);
  await waitAllProbed(tn, [a.addr, b.addr]);
  const before = backendIn(await status(tn), b.addr);
  assert.equal(before.health.last_ok, true);
  assert.match(before.health.tools_hash, /^[0-9a-f]{16}$/, 'an mcp probe records the tools hash');
  assert.equal(before.health.last_error, undefined, 'no error before any probe failed');

  await b.kill();
  const down = await waitBackend(tn, b.addr, (x) => !x.healthy, 'marked unhealthy');
  assert.equal(down.health.last_ok, false);
  assert.match(down.health.last_error, /refused/i, `the last error says why: ${down.health.last_error}`);
  assert.equal(backendIn(await status(tn), a.addr).healthy, true, 'the other backend stays healthy');

  const answers = await initializeMany(tn.port, 12);
  assert.deepEqual(answers.map((x) => `${x.status} ${x.backend}`), Array(12).fill('200 die-a'),
    'every new session goes to the healthy backend');

  const m = await metrics(tn);
  const labels = { upstream: 'mcp', pool: 'blue', version: '1.0.0' };
  assert.equal(metricValue(m, 'turnout_backend_healthy', { ...labels, backend: b.addr }), 0);
  assert.equal(metricValue(m, 'turnout_backend_healthy', { ...labels, backend: a.addr }), 1);
});

itest('kind = "mcp" catches a broken initialize while kind = "http" on /health says the backend is fine', async (t, s) => {
  const broken = await startHealthServer(s, { name: 'broken-init' });
  await broken.setMode('broken-init');
  const pools = [{ name: 'blue', weight: 100, backends: [broken.addr] }];
  const [mcpChecked, httpChecked] = await Promise.all([
    s.turnout(healthConfig(pools, fastHealth({ kind: 'mcp', path: '/mcp' }))),
    s.turnout(healthConfig(pools, fastHealth({ kind: 'http', path: '/health' }))),
  ]);
  await Promise.all([waitAdmin(mcpChecked), waitAdmin(httpChecked)]);

  const down = await waitBackend(mcpChecked, broken.addr, (x) => !x.healthy, 'marked unhealthy by the mcp probe');
  assert.match(down.health.last_error, /initialize answered 500/, down.health.last_error);
  assert.equal(down.health.tools_hash, undefined, 'no tools were listed');

  // The HTTP check has run at least as long and still calls it fine.
  const fine = await waitBackend(httpChecked, broken.addr, (x) => x.health.probed, 'probed over http');
  assert.equal(fine.healthy, true);
  assert.equal(fine.health.last_ok, true);
  assert.equal(fine.health.last_error, undefined);

  // With its only backend unhealthy, the mcp-checked turnout has nowhere to send a new session.
  const r = await initializeMany(mcpChecked.port, 1);
  assert.equal(r[0].status, 503, `no healthy backend: ${JSON.stringify(r[0])}`);

  // Fixed: the mcp probe passes `rise` times and the backend is healthy again.
  await broken.setMode('ok');
  const up = await waitBackend(mcpChecked, broken.addr, (x) => x.healthy, 'healthy again');
  assert.equal(up.health.last_ok, true);
  assert.match(up.health.tools_hash, /^[0-9a-f]{16}$/);
  const again = await initializeMany(mcpChecked.port, 1);
  assert.equal(again[0].status, 200);
});

itest('a backend answering 503 is unready: no new sessions, its pinned session is still served, healthy again after rise', async (t, s) => {
  const [a, b] = await Promise.all([
    startHealthServer(s, { name: 'ready-a' }),
    startHealthServer(s, { name: 'ready-b' }),
  ]);
  const tn = await s.turnout(healthConfig([{ name: 'blue', weight: 100, backends: [a.addr, b.addr] }],
    fastHealth({ rise: 3, fall: 2 })));
  await waitAdmin(tn);
  await waitAllProbed(tn, [a.addr, b.addr]);
  const pinned = await sessionOn(tn.port, 'ready-b');

  await b.setMode('draining');
  const down = await waitBackend(tn, b.addr, (x) => !x.healthy, 'unready after 503 answers');
  assert.match(down.health.last_error, /503/, down.health.last_error);
  assert.equal(down.sessions, 1, 'its pinned session is still counted');

  const answers = await initializeMany(tn.port, 12);
  assert.deepEqual(answers.map((x) => `${x.status} ${x.backend}`), Array(12).fill('200 ready-a'),
    'no new session goes to the unready backend');

  // The pinned session is forwarded to its backend and answered there.
  const ping = await sessionRequest(tn.port, pinned.sid);
  assert.equal(ping.status, 200, ping.text);
  assert.equal(ping.backend, 'ready-b');
  assert.match(ping.text, /"result"/);

  await b.setMode('ok');
  const up = await waitBackend(tn, b.addr, (x) => x.healthy, 'healthy again after rise probes');
  assert.equal(up.health.last_ok, true);
  const back = await sessionOn(tn.port, 'ready-b');
  assert.equal(back.status, 200);
});

itest('kind = "http": a /health answering 503 makes the backend unready until it answers 2xx again', async (t, s) => {
  const [a, b] = await Promise.all([
    startHealthServer(s, { name: 'http-a' }),
    startHealthServer(s, { name: 'http-b' }),
  ]);
  const tn = await s.turnout(healthConfig([{ name: 'blue', weight: 100, backends: [a.addr, b.addr] }],
    fastHealth({ kind: 'http', path: '/health', rise: 1, fall: 1 })));
  await waitAdmin(tn);
  await waitAllProbed(tn, [a.addr, b.addr]);
  await b.setMode('draining');
  const down = await waitBackend(tn, b.addr, (x) => !x.healthy, 'unready');
  assert.match(down.health.last_error, /answered 503/, down.health.last_error);
  const answers = await initializeMany(tn.port, 8);
  assert.deepEqual(answers.map((x) => x.backend), Array(8).fill('http-a'));
  await b.setMode('ok');
  await waitBackend(tn, b.addr, (x) => x.healthy, 'healthy again');
  await sessionOn(tn.port, 'http-b');
});

itest('unknown session ids are hashed over the healthy backends only: none lands on an unhealthy one', async (t, s) => {
  const [m0, m1] = await Promise.all([s.mock({ name: 'hash-m0' }), s.mock({ name: 'hash-m1' })]);
  // A backend that is up but fails its health check; it answers every other request as the
  // mocks do for an unknown id, and counts them.
  let served = 0;
  const sick = await s.rawBackend(onRequestHead((req, socket) => {
    const probe = req.target.startsWith('/health');
    if (!probe) served += 1;
    const body = probe ? '{"status":"unready"}' : JSON.stringify(SESSION_NOT_FOUND);
    socket.write(`HTTP/1.1 ${probe ? '503 Service Unavailable' : '404 Not Found'}\r\nX-Backend: hash-sick\r\n` +
      `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  }));
  const backends = [m0.addr, sick.addr, m1.addr];
  const [tn, oracleTn] = await Promise.all([
    s.turnout(healthConfig([{ name: 'blue', weight: 100, backends }],
      fastHealth({ kind: 'http', path: '/health', rise: 1, fall: 1 }))),
    // The same backends without health checks: where each id goes when all three count.
    s.turnout(healthConfig([{ name: 'blue', weight: 100, backends }], undefined)),
  ]);
  await waitBackend(tn, sick.addr, (x) => !x.healthy, 'the failing backend marked unhealthy');

  const ids = Array.from({ length: 60 }, () => randomUUID());
  const oracle = rendezvousOracle(oracleTn);
  const everywhere = {};
  for (const id of ids) everywhere[id] = await oracle(id);
  const wouldBeSick = ids.filter((id) => everywhere[id] === 'hash-sick');
  assert.ok(wouldBeSick.length > 0, `with all three backends some ids hash to the unhealthy one: ${JSON.stringify(everywhere)}`);

  const servedBefore = served;
  for (const id of ids) {
    const r = await sessionRequest(tn.port, id);
    assert.equal(r.status, 404, `unknown id ${id}: ${r.status} ${r.text}`);
    assert.ok(['hash-m0', 'hash-m1'].includes(r.backend), `unknown id ${id} went to a healthy backend, not ${r.backend}`);
    // A consistent hash: only the ids of the backend that left the healthy set move.
    if (everywhere[id] !== 'hash-sick') assert.equal(r.backend, everywhere[id], `id ${id} stays where it hashed with all three`);
  }
  assert.equal(served - servedBefore, 0, 'the unhealthy backend was sent no request with an unknown id');
});

itest('with [upstream.health], config backends start healthy before any probe passed; one added by `backends` starts unhealthy and gets nothing', async (t, s) => {
  const [m0, m1] = await Promise.all([s.mock({ name: 'start-m0' }), s.mock({ name: 'start-m1' })]);
  // A check no backend can pass (the mock answers /status/503 with 503), rarely run, with fall
  // above the number of probes it can make during the test.
  const tn = await s.turnout(healthConfig([{ name: 'blue', weight: 100, backends: [m0.addr] }],
    { kind: 'http', path: '/status/503', interval: '1h', timeout: '1s', rise: 2, fall: 3 }));
  await waitAdmin(tn);
  let st = await status(tn);
  assert.equal(backendIn(st, m0.addr).healthy, true, 'a backend listed in the config starts healthy');
  assert.notEqual(backendIn(st, m0.addr).health?.last_ok, true, 'no probe has passed');
  assert.deepEqual((await initializeMany(tn.port, 3)).map((x) => `${x.status} ${x.backend}`), Array(3).fill('200 start-m0'),
    'traffic flows to it');

  const r = await ctl(tn, ['backends', 'mcp', 'blue', m0.addr, m1.addr]);
  assert.equal(r.code, 0, r.stderr);
  st = await status(tn);
  assert.equal(backendIn(st, m1.addr).healthy, false, 'a backend added at run time starts unhealthy');
  assert.equal(backendIn(st, m0.addr).healthy, true, 'the backend that stayed keeps its state');
  assert.deepEqual((await initializeMany(tn.port, 20)).map((x) => `${x.status} ${x.backend}`), Array(20).fill('200 start-m0'),
    'no new session goes to the never-verified backend');
});
