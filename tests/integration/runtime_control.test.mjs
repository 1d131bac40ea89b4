// Runtime control (SPEC.md "Admin socket", "Drain and connection accounting", "Binaries":
// turnoutctl; issue 4): the admin API's answers and errors, the read-only status address,
// exact live counts in status and /metrics with real SDK clients holding sessions and GET
// streams, and turnoutctl against the real socket.

import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { before } from 'node:test';
import { closedPort, fileScope, itest } from './support/harness.mjs';
import { initialize, sessionRequest } from './support/session_helpers.mjs';
import {
  admin, backendIn, ctl, endSession, liveSession, metricValue, openSessions, parseMetrics, poolIn,
  setBackends, socketOf, status, statusGet, switchTo, tally, upstreamIn, waitAdmin, waitStatus, weightsIn,
} from './support/control_helpers.mjs';

const shared = fileScope();
let mocks; // two C++ mocks
let sdk; // two SDK servers (support/sdk_server.mjs)

before(async () => {
  [mocks, sdk] = await Promise.all([
    Promise.all([0, 1].map((i) => shared.mock({ name: `rc-m${i}` }))),
    Promise.all([0, 1].map((i) => shared.sdkServer({ name: `rc-sdk${i}` }))),
  ]);
});

/** blue = mock 0 (weight 100), green = mock 1 (weight 0). */
function blueGreen(extra = {}) {
  return {
    upstreams: [{
      name: 'mcp',
      pools: [
        { name: 'blue', weight: 100, version: '1.4.2', backends: [mocks[0].addr] },
        { name: 'green', weight: 0, version: '1.5.0', backends: [mocks[1].addr] },
      ],
    }],
    ...extra,
  };
}

async function startBlueGreen(s, extra) {
  const tn = await s.turnout(blueGreen(extra));
  await waitAdmin(tn);
  return tn;
}

function assertError(r, code, what) {
  assert.equal(r.status, code, `${what}: expected ${code}, got ${r.status} ${r.text}`);
  assert.match(r.get('content-type') ?? '', /application\/json/i, `${what}: a JSON answer`);
  const body = JSON.parse(r.text);
  assert.equal(typeof body.error, 'string', `${what}: {"error": "..."}: ${r.text}`);
  assert.ok(body.error.length > 5, `${what}: the error says something: ${r.text}`);
}

// ---------------------------------------------------------------------------------------------
// The admin socket and the status document

itest('the admin socket is created mode 0600 and GET /v1/status answers the SPEC.md document', async (t, s) => {
  const tn = await startBlueGreen(s);
  const st = statSync(socketOf(tn));
  assert.ok(st.isSocket(), 'admin_socket is a Unix socket');
  assert.equal(st.mode & 0o777, 0o600, `mode ${(st.mode & 0o777).toString(8)}`);

  const doc = await status(tn);
  assert.equal(doc.version, '0.1.0');
  assert.equal(typeof doc.uptime_s, 'number');
  assert.equal(doc.draining, false);
  const up = upstreamIn(doc);
  assert.equal(up.affinity, 'table');
  assert.equal(up.sessions, 0);
  assert.deepEqual(up.pools.map((p) => [p.name, p.weight, p.draining, p.version]),
    [['blue', 100, false, '1.4.2'], ['green', 0, false, '1.5.0']]);
  for (const [pool, mock] of [['blue', mocks[0]], ['green', mocks[1]]]) {
    const b = poolIn(doc, pool).backends;
    assert.equal(b.length, 1);
    assert.deepEqual(b[0], {
      ...b[0],
      address: mock.addr, healthy: true, draining: false,
      sessions: 0, connections: 0, streams: 0, in_flight: 0, requests_total: 0, errors_total: 0,
    });
  }
  const health = await admin(tn, 'GET', '/healthz');
  assert.equal(health.status, 200);
  const ready = await admin(tn, 'GET', '/readyz');
  assert.equal(ready.status, 200);
});

itest('admin errors: bad JSON, unknown upstream or pool, bad weights and durations answer 4xx {"error"} and change nothing', async (t, s) => {
  const tn = await startBlueGreen(s);
  const before = await status(tn);
  const cases = [
    ['PUT', '/v1/upstreams/mcp/weights', '{"blue":', 400, 'truncated JSON'],
    ['PUT', '/v1/upstreams/mcp/weights', 'blue=5', 400, 'not JSON'],
    ['PUT', '/v1/upstreams/mcp/weights', '', 400, 'empty body'],
    ['PUT', '/v1/upstreams/mcp/weights', '[95, 5]', 400, 'an array instead of an object'],
    ['PUT', '/v1/upstreams/mcp/weights', { blue: -5, green: 105 }, 400, 'a negative weight'],
    ['PUT', '/v1/upstreams/mcp/weights', { blue: 0, green: 0 }, 400, 'all weights 0'],
    ['PUT', '/v1/upstreams/mcp/weights', { blue: 'ninety' }, 400, 'a string weight'],
    ['PUT', '/v1/upstreams/mcp/weights', { blue: 9.5 }, 400, 'a fractional weight'],
    ['PUT', '/v1/upstreams/nope/weights', { blue: 5 }, 404, 'unknown upstream'],
    ['PUT', '/v1/upstreams/mcp/weights', { blue: 50, purple: 50 }, 404, 'unknown pool in weights'],
    ['POST', '/v1/upstreams/nope/switch', { pool: 'green' }, 404, 'switch on an unknown upstream'],
    ['POST', '/v1/upstreams/mcp/switch', { pool: 'purple' }, 404, 'switch to an unknown pool'],
    ['POST', '/v1/upstreams/mcp/switch', '{pool: green}', 400, 'switch with bad JSON'],
    ['POST', '/v1/upstreams/nope/rollback', undefined, 404, 'rollback of an unknown upstream'],
    ['POST', '/v1/upstreams/mcp/rollback', undefined, 409, 'rollback with nothing to roll back'],
    ['POST', '/v1/upstreams/mcp/pools/blue/drain', { timeout: 'soon' }, 400, 'a bad duration'],
    ['POST', '/v1/upstreams/mcp/pools/blue/drain', { timeout: '10' }, 400, 'a duration without a unit'],
    ['POST', '/v1/upstreams/mcp/pools/blue/drain', { timeout: '-5s' }, 400, 'a negative duration'],
    ['POST', '/v1/upstreams/mcp/pools/purple/drain', { timeout: '5s' }, 404, 'drain of an unknown pool'],
    ['POST', '/v1/upstreams/nope/pools/blue/drain', { timeout: '5s' }, 404, 'drain on an unknown upstream'],
    ['POST', '/v1/upstreams/mcp/pools/purple/undrain', undefined, 404, 'undrain of an unknown pool'],
    ['PUT', '/v1/upstreams/mcp/pools/green/backends', '{"a":1}', 400, 'backends not an array'],
    ['PUT', '/v1/upstreams/mcp/pools/green/backends', ['not an address'], 400, 'backends with a bad address'],
    ['PUT', '/v1/upstreams/nope/pools/green/backends', ['127.0.0.1:1'], 404, 'backends on an unknown upstream'],
  ];
  for (const [method, p, body, code, what] of cases) {
    assertError(await admin(tn, method, p, body), code, what);
  }
  const r = await admin(tn, 'GET', '/v1/no-such-endpoint');
  assert.ok(r.status === 404 || r.status === 405, `unknown endpoint: ${r.status}`);

  const after = await status(tn);
  assert.deepEqual(after.upstreams, before.upstreams, 'refused changes left the state as it was');
});

itest('the status address is read-only: /healthz /readyz /metrics answer, every PUT or POST answers 405', async (t, s) => {
  const tn = await startBlueGreen(s, { status: true });
  assert.equal((await statusGet(tn, '/healthz')).status, 200);
  assert.equal((await statusGet(tn, '/readyz')).status, 200);
  const m = await statusGet(tn, '/metrics');
  assert.equal(m.status, 200);
  assert.match(m.text(), /^turnout_pool_weight\{/m);

  const attempts = [
    ['PUT', '/v1/upstreams/mcp/weights', { blue: 0, green: 100 }],
    ['POST', '/v1/upstreams/mcp/switch', { pool: 'green', force: true }],
    ['POST', '/v1/upstreams/mcp/rollback', undefined],
    ['POST', '/v1/upstreams/mcp/pools/blue/drain', { timeout: '1s' }],
    ['PUT', '/v1/upstreams/mcp/pools/green/backends', ['127.0.0.1:1']],
    ['POST', '/v1/reload', undefined],
    ['POST', '/metrics', undefined],
    ['PUT', '/healthz', undefined],
  ];
  for (const [method, p, body] of attempts) {
    const r = await admin(null, method, p, body, { port: tn.statusPort });
    assert.equal(r.status, 405, `${method} ${p} on the status address: ${r.status} ${r.text}`);
  }
  const st = await status(tn);
  assert.deepEqual(weightsIn(st), { blue: 100, green: 0 }, 'nothing changed');
  assert.equal(poolIn(st, 'blue').draining, false);
  assert.deepEqual(poolIn(st, 'green').backends.map((b) => b.address), [mocks[1].addr]);
});

// ---------------------------------------------------------------------------------------------
// Exact counts

itest('status counts exactly: N SDK sessions with N GET streams, then 0 after they end', async (t, s) => {
  const tn = await s.turnout({ upstreams: [{ name: 'mcp', pools: [{ name: 'blue', weight: 100, backends: sdk.map((b) => b.addr) }] }] });
  await waitAdmin(tn);
  const N = 8;
  const clients = await Promise.all(Array.from({ length: N }, () => liveSession(s, tn.port)));
  const owners = tally(clients);
  const addrOf = Object.fromEntries(sdk.map((b) => [b.name, b.addr]));

  // The SDK opens its GET stream right after initialization: wait for all of them.
  const st = await waitStatus(tn, (x) => upstreamIn(x).pools[0].backends.reduce((n, b) => n + b.streams, 0) === N,
    5000, `${N} open streams`);
  assert.equal(upstreamIn(st).sessions, N, 'upstream sessions');
  for (const b of sdk) {
    const e = backendIn(st, b.addr);
    const want = owners[b.name] ?? 0;
    assert.equal(e.sessions, want, `${b.name}: sessions`);
    assert.equal(e.streams, want, `${b.name}: streams`);
    assert.ok(e.connections >= e.streams, `${b.name}: connections (${e.connections}) include the streams' (${e.streams})`);
    assert.ok(e.requests_total >= 3 * want, `${b.name}: requests_total ${e.requests_total} (initialize, initialized, GET, whoami each)`);
    assert.equal(e.errors_total, 0);
  }
  // The metrics say the same.
  const m = parseMetrics((await admin(tn, 'GET', '/metrics')).text);
  for (const b of sdk) {
    const labels = { upstream: 'mcp', pool: 'blue', backend: b.addr };
    assert.equal(metricValue(m, 'turnout_backend_sessions', labels), owners[b.name] ?? 0);
    assert.equal(metricValue(m, 'turnout_backend_streams', labels), owners[b.name] ?? 0);
  }

  await Promise.all(clients.map(endSession));
  const done = await waitStatus(tn, (x) => upstreamIn(x).pools[0].backends.every((b) => b.streams === 0 && b.sessions === 0 && b.in_flight === 0),
    5000, 'sessions, streams and in-flight requests back to 0');
  assert.equal(upstreamIn(done).sessions, 0);
  for (const b of sdk) assert.ok(backendIn(done, b.addr).requests_total > 0);
});

itest('/metrics after known traffic: names, labels, types and exact values', async (t, s) => {
  const dead = `127.0.0.1:${await closedPort()}`;
  const tn = await s.turnout({
    status: true,
    upstreams: [{
      name: 'mcp',
      pools: [
        { name: 'blue', weight: 100, version: '1.4.2', backends: [mocks[0].addr] },
        { name: 'green', weight: 0, version: '1.5.0', backends: [dead] },
      ],
    }],
  });
  await waitAdmin(tn);
  // 7 plain requests and 3 initializes, one at a time: exactly 10 requests to blue.
  for (let i = 0; i < 7; i++) assert.equal((await sessionRequest(tn.port, undefined, { method: 'GET', path: '/health' })).status, 200);
  const sessions = await openSessions(tn.port, 3, { concurrency: 1 });
  assert.deepEqual(tally(sessions), { [mocks[0].name]: 3 });

  const forced = await admin(tn, 'POST', '/v1/upstreams/mcp/switch', { pool: 'green', force: true });
  assert.equal(forced.status, 200, forced.text);
  const failed = await initialize(tn.port);
  assert.ok(failed.status >= 500, `a new session on a dead backend fails: ${failed.status}`);

  for (const text of [(await admin(tn, 'GET', '/metrics')).text, (await statusGet(tn, '/metrics')).text()]) {
    const m = parseMetrics(text);
    const blue = { upstream: 'mcp', pool: 'blue', backend: mocks[0].addr, version: '1.4.2' };
    const green = { upstream: 'mcp', pool: 'green', backend: dead, version: '1.5.0' };
    assert.equal(metricValue(m, 'turnout_backend_requests_total', blue), 10);
    assert.equal(metricValue(m, 'turnout_backend_errors_total', blue), 0);
    assert.equal(metricValue(m, 'turnout_backend_sessions', blue), 3);
    assert.equal(metricValue(m, 'turnout_backend_streams', blue), 0);
    assert.equal(metricValue(m, 'turnout_backend_in_flight', blue), 0);
    assert.ok(metricValue(m, 'turnout_backend_connections', blue) >= 1, 'a pooled keep-alive connection to blue');
    assert.ok(metricValue(m, 'turnout_backend_errors_total', green) >= 1, 'the refused connect counts as an error');
    assert.equal(metricValue(m, 'turnout_backend_sessions', green), 0);
    assert.equal(metricValue(m, 'turnout_backend_connections', green), 0);
    assert.equal(metricValue(m, 'turnout_pool_weight', { upstream: 'mcp', pool: 'blue' }), 0);
    assert.equal(metricValue(m, 'turnout_pool_weight', { upstream: 'mcp', pool: 'green' }), 100);
    assert.equal(metricValue(m, 'turnout_pool_draining', { upstream: 'mcp', pool: 'blue' }), 0);
    for (const name of ['turnout_backend_requests_total', 'turnout_backend_errors_total']) assert.equal(m.types[name], 'counter', name);
    for (const name of ['turnout_backend_sessions', 'turnout_backend_connections', 'turnout_backend_streams',
      'turnout_backend_in_flight', 'turnout_pool_weight', 'turnout_pool_draining']) assert.equal(m.types[name], 'gauge', name);
  }
  // status agrees with the metrics
  const st = await status(tn);
  assert.equal(backendIn(st, mocks[0].addr).requests_total, 10);
  assert.equal(backendIn(st, mocks[0].addr).sessions, 3);
});

// ---------------------------------------------------------------------------------------------
// turnoutctl against the real socket

itest('turnoutctl status: a table with the pools, weights, versions and backends; --json is the status document', async (t, s) => {
  const tn = await startBlueGreen(s);
  await openSessions(tn.port, 2, { concurrency: 1 });
  const r = await ctl(tn, ['status']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, '');
  const lines = r.stdout.split('\n');
  assert.match(lines[0], /^turnout 0\.1\.0\b/);
  assert.ok(lines.some((l) => /^upstream mcp\b.*\bsessions 2\b/.test(l)), r.stdout);
  assert.ok(lines.some((l) => /^\s*blue\s+100\s+no\s+1\.4\.2\s*$/.test(l)), `blue row: ${r.stdout}`);
  assert.ok(lines.some((l) => /^\s*green\s+0\s+no\s+1\.5\.0\s*$/.test(l)), `green row: ${r.stdout}`);
  const blueRow = lines.find((l) => l.includes(mocks[0].addr));
  assert.ok(blueRow, r.stdout);
  assert.match(blueRow, /^\s*blue\s+\S+\s+yes\s+no\s+2\s+\d+\s+0\s+0\s+2\s+0\s*$/, `blue backend row: ${blueRow}`);
  assert.ok(lines.some((l) => l.includes(mocks[1].addr) && /^\s*green\b/.test(l)), r.stdout);

  for (const args of [['--json', 'status'], ['status', '--json']]) {
    const j = await ctl(tn, args);
    assert.equal(j.code, 0, j.stderr);
    const doc = JSON.parse(j.stdout);
    assert.deepEqual(weightsIn(doc), { blue: 100, green: 0 });
    assert.equal(upstreamIn(doc).sessions, 2);
    assert.equal(backendIn(doc, mocks[0].addr).sessions, 2);
  }
});

itest('turnoutctl changes weights, switches, rolls back, drains and sets backends on the real socket', async (t, s) => {
  const tn = await startBlueGreen(s);
  let r = await ctl(tn, ['weights', 'mcp', 'blue=90', 'green=10']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(weightsIn(await status(tn)), { blue: 90, green: 10 });

  r = await ctl(tn, ['weights', 'mcp', 'blue=90', 'green=0']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(weightsIn(await status(tn)), { blue: 90, green: 0 });

  r = await ctl(tn, ['--json', 'switch', 'mcp', 'green']);
  assert.equal(r.code, 0, r.stderr);
  assert.doesNotThrow(() => JSON.parse(r.stdout), `--json prints JSON: ${r.stdout}`);
  assert.deepEqual(weightsIn(await status(tn)), { blue: 0, green: 100 });

  r = await ctl(tn, ['rollback', 'mcp']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(weightsIn(await status(tn)), { blue: 90, green: 0 });

  r = await ctl(tn, ['drain', 'mcp', 'green', '--timeout', '1h']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(poolIn(await status(tn), 'green').draining, true);
  r = await ctl(tn, ['undrain', 'mcp', 'green']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(poolIn(await status(tn), 'green').draining, false);

  r = await ctl(tn, ['backends', 'mcp', 'canary', mocks[1].addr]);
  assert.equal(r.code, 0, r.stderr);
  const canary = poolIn(await status(tn), 'canary');
  assert.equal(canary.weight, 0, 'a pool created at run time takes no new sessions');
  assert.deepEqual(canary.backends.map((b) => b.address), [mocks[1].addr]);

  r = await ctl(tn, ['reload']);
  assert.equal(r.code, 0, r.stderr);
  const st = await status(tn);
  assert.deepEqual(weightsIn(st), { blue: 90, green: 0, canary: 0 }, 'reload keeps the runtime changes');
});

itest('turnoutctl weights U POOL=0 for one pool is accepted while another pool keeps a weight (not all 0)', async (t, s) => {
  // Stopping a canary: `weights mcp green=0`. The resulting weights (blue=90, green=0) are not
  // all 0, which is all SPEC.md asks; the admin API takes the same partial change.
  const tn = await startBlueGreen(s);
  assert.equal((await ctl(tn, ['weights', 'mcp', 'blue=90', 'green=10'])).code, 0);
  const viaApi = await admin(tn, 'PUT', '/v1/upstreams/mcp/weights', { green: 0 });
  assert.equal(viaApi.status, 200, `the admin API accepts {"green":0}: ${viaApi.text}`);
  assert.equal((await ctl(tn, ['weights', 'mcp', 'green=10'])).code, 0);
  const r = await ctl(tn, ['weights', 'mcp', 'green=0']);
  assert.equal(r.code, 0, `turnoutctl weights mcp green=0 with blue=90: exit ${r.code} ${r.stderr}`);
  assert.deepEqual(weightsIn(await status(tn)), { blue: 90, green: 0 });
});

itest('turnoutctl exit codes: 1 with one stderr line for a refused change, 2 for usage errors', async (t, s) => {
  const tn = await startBlueGreen(s);
  await setBackends(tn, 'empty', []);
  const refused = [
    ['switch', 'mcp', 'empty'], // no healthy backend
    ['rollback', 'mcp'], // nothing to roll back
    ['weights', 'nope', 'blue=1'], // unknown upstream
    ['weights', 'mcp', 'purple=1'], // unknown pool
    ['drain', 'mcp', 'purple'],
    ['undrain', 'nope', 'blue'],
  ];
  for (const args of refused) {
    const r = await ctl(tn, args);
    assert.equal(r.code, 1, `turnoutctl ${args.join(' ')}: exit ${r.code} ${r.stdout} ${r.stderr}`);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, `one clear line on stderr: ${JSON.stringify(r.stderr)}`);
    assert.ok(lines[0].length > 5);
  }
  const usage = [
    [],
    ['frobnicate'],
    ['weights', 'mcp'],
    ['weights', 'mcp', 'blue'],
    ['weights', 'mcp', 'blue=-5'],
    ['weights', 'mcp', 'blue=ten'],
    ['switch', 'mcp'],
    ['rollback'],
    ['status', '--force'],
    ['drain', 'mcp', 'blue', '--timeout'],
    ['backends', 'mcp', 'green'],
  ];
  for (const args of usage) {
    const r = await ctl(tn, args);
    assert.equal(r.code, 2, `turnoutctl ${args.join(' ')}: exit ${r.code} ${r.stdout} ${r.stderr}`);
    assert.ok(r.stderr.length > 0, 'a usage error says so on stderr');
  }
  // A bad duration: refused by the server (1) or caught on the command line (2), never applied.
  const bad = await ctl(tn, ['drain', 'mcp', 'blue', '--timeout', 'soon']);
  assert.ok(bad.code === 1 || bad.code === 2, `drain --timeout soon: exit ${bad.code} ${bad.stderr}`);
  // A socket nobody serves: exit 1.
  const r = await ctl(tn, ['status'], { socket: `${socketOf(tn)}.missing` });
  assert.equal(r.code, 1, `${r.stdout} ${r.stderr}`);

  // None of the refused or malformed commands changed anything.
  const st = await status(tn);
  assert.deepEqual(weightsIn(st), { blue: 100, green: 0, empty: 0 });
  assert.equal(poolIn(st, 'blue').draining, false);
  await switchTo(tn, 'empty', true); // forced: allowed
  assert.deepEqual(weightsIn(await status(tn)), { blue: 0, green: 0, empty: 100 });
});
