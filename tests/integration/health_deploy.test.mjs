// Deploy verification (issue 5): guarded switches (no healthy backend, tool-schema drift) and
// their --force, drift flags in status, passive ejection on 5xx answers and refused
// connections, and per-pool metrics checked value by value after known traffic — against real
// MCP SDK servers (support/health_server.mjs).

import assert from 'node:assert/strict';
import { closedPort, itest, waitUntil } from './support/harness.mjs';
import { initialize, sessionRequest } from './support/session_helpers.mjs';
import {
  admin, backendIn, ctl, metricValue, parseMetrics, poolIn, status, waitAdmin, weightsIn,
} from './support/control_helpers.mjs';
import {
  fastHealth, healthConfig, initializeMany, sessionOn, startHealthServer, waitAllProbed, waitBackend,
} from './support/health_helpers.mjs';

function assertRefused(r, pattern, what) {
  assert.equal(r.status, 409, `${what}: expected 409, got ${r.status} ${r.text}`);
  const body = JSON.parse(r.text);
  assert.match(body.error, pattern, `${what}: the reason: ${body.error}`);
}

const post = (tn, p, body) => admin(tn, 'POST', p, body);
const put = (tn, p, body) => admin(tn, 'PUT', p, body);

// ---------------------------------------------------------------------------------------------
// Tool-schema drift and guarded switches

itest('a pool whose echo takes another input schema: hashes differ, drift is flagged, switch and first weights are refused (409) unless forced', async (t, s) => {
  const [a, g] = await Promise.all([
    startHealthServer(s, { name: 'drift-blue' }),
    startHealthServer(s, { name: 'drift-green', tools: 'alt' }),
  ]);
  const tn = await s.turnout(healthConfig([
    { name: 'blue', weight: 100, version: '1.0.0', backends: [a.addr] },
    { name: 'green', weight: 0, version: '2.0.0', backends: [g.addr] },
    { name: 'mixed', weight: 0, backends: [a.addr, g.addr] },
  ], fastHealth()));
  await waitAdmin(tn);
  await waitAllProbed(tn, [a.addr, g.addr]);

  const st = await status(tn);
  const hashBlue = backendIn(st, a.addr).health.tools_hash;
  const hashGreen = backendIn(st, g.addr).health.tools_hash;
  assert.match(hashBlue, /^[0-9a-f]{16}$/);
  assert.match(hashGreen, /^[0-9a-f]{16}$/);
  assert.notEqual(hashBlue, hashGreen, 'another input schema, another hash');
  assert.equal(backendIn(st, a.addr).health.drift_from_primary, false);
  assert.equal(backendIn(st, g.addr).health.drift_from_primary, true, 'the backend with other tools is flagged');
  const blue = poolIn(st, 'blue');
  const green = poolIn(st, 'green');
  const mixed = poolIn(st, 'mixed');
  assert.deepEqual([blue.tools_hash, blue.tools_drift, blue.drift_from_primary], [hashBlue, false, false]);
  assert.deepEqual([green.tools_hash, green.tools_drift, green.drift_from_primary], [hashGreen, false, true]);
  assert.equal(mixed.tools_drift, true, 'the backends of mixed disagree');
  assert.equal(mixed.tools_hash, undefined, 'a pool whose backends disagree has no one hash');

  // Refused through the admin API and turnoutctl, with the reason.
  const differ = /tools of pool 'green' break those of pool 'blue' \(input schema changed: echo\)/;
  assertRefused(await post(tn, '/v1/upstreams/mcp/switch', { pool: 'green', force: false }), differ, 'switch green');
  assertRefused(await post(tn, '/v1/upstreams/mcp/switch', { pool: 'mixed' }), /backends of pool 'mixed' disagree/, 'switch mixed');
  assertRefused(await put(tn, '/v1/upstreams/mcp/weights', { blue: 90, green: 10 }), differ, 'weights giving green its first traffic');
  const cli = await ctl(tn, ['switch', 'mcp', 'green']);
  assert.equal(cli.code, 1, `turnoutctl switch refused: ${cli.stdout}${cli.stderr}`);
  assert.match(cli.stderr, differ);
  const cliWeights = await ctl(tn, ['weights', 'mcp', 'blue=90', 'green=10']);
  assert.equal(cliWeights.code, 1, `turnoutctl weights refused: ${cliWeights.stdout}${cliWeights.stderr}`);
  assert.match(cliWeights.stderr, differ);
  assert.deepEqual(weightsIn(await status(tn)), { blue: 100, green: 0, mixed: 0 }, 'nothing changed');
  const stillBlue = await initializeMany(tn.port, 4);
  assert.deepEqual(stillBlue.map((x) => x.backend), Array(4).fill('drift-blue'));

  // --force: green takes every new session.
  const forced = await ctl(tn, ['switch', 'mcp', 'green', '--force']);
  assert.equal(forced.code, 0, `turnoutctl switch --force: ${forced.stdout}${forced.stderr}`);
  assert.deepEqual(weightsIn(await status(tn)), { blue: 0, green: 100, mixed: 0 });
  const onGreen = await initializeMany(tn.port, 4);
  assert.deepEqual(onGreen.map((x) => x.backend), Array(4).fill('drift-green'));
  // Now green is the primary: blue differs from it.
  const after = await status(tn);
  assert.equal(poolIn(after, 'blue').drift_from_primary, true);
  assert.equal(poolIn(after, 'green').drift_from_primary, false);

  // Back to blue is refused the same way; the admin API's force works too.
  assertRefused(await post(tn, '/v1/upstreams/mcp/switch', { pool: 'blue' }),
    /tools of pool 'blue' break those of pool 'green' \(input schema changed: echo\)/, 'switch back to blue');
  const apiForced = await post(tn, '/v1/upstreams/mcp/switch', { pool: 'blue', force: true });
  assert.equal(apiForced.status, 200, apiForced.text);
  assert.deepEqual(weightsIn(await status(tn)), { blue: 100, green: 0, mixed: 0 });
});

itest('switch to a pool with no healthy backend answers 409 unless forced; weights giving it first traffic too', async (t, s) => {
  const a = await startHealthServer(s, { name: 'nohealthy-blue' });
  const dead = await closedPort();
  const tn = await s.turnout(healthConfig([
    { name: 'blue', weight: 100, backends: [a.addr] },
    { name: 'green', weight: 0, backends: [`127.0.0.1:${dead}`] },
  ], fastHealth({ fall: 1 })));
  await waitAdmin(tn);
  await waitAllProbed(tn, [a.addr]);
  await waitBackend(tn, `127.0.0.1:${dead}`, (x) => !x.healthy, 'the dead backend marked down');

  const none = /pool 'green' has no healthy backend/;
  assertRefused(await post(tn, '/v1/upstreams/mcp/switch', { pool: 'green' }), none, 'switch');
  assertRefused(await put(tn, '/v1/upstreams/mcp/weights', { green: 5 }), none, 'weights');
  const cli = await ctl(tn, ['switch', 'mcp', 'green']);
  assert.equal(cli.code, 1);
  assert.match(cli.stderr, none);

  // A backend added at run time starts unhealthy: a pool given only never-probed backends is
  // refused at once, before any probe could have run.
  const fresh = await startHealthServer(s, { name: 'nohealthy-new' });
  const set = await put(tn, '/v1/upstreams/mcp/pools/canary/backends', [fresh.addr]);
  assert.equal(set.status, 200, set.text);
  assertRefused(await post(tn, '/v1/upstreams/mcp/switch', { pool: 'canary' }), /pool 'canary' has no healthy backend/, 'switch to an unverified pool');
  // Once its first probes pass, the same switch goes through.
  await waitBackend(tn, fresh.addr, (x) => x.healthy, 'the new backend verified');
  const ok = await post(tn, '/v1/upstreams/mcp/switch', { pool: 'canary' });
  assert.equal(ok.status, 200, ok.text);
  const r = await initializeMany(tn.port, 2);
  assert.deepEqual(r.map((x) => x.backend), ['nohealthy-new', 'nohealthy-new']);

  const forced = await ctl(tn, ['switch', 'mcp', 'green', '--force']);
  assert.equal(forced.code, 0, forced.stderr);
  assert.equal(weightsIn(await status(tn)).green, 100);
});

// ---------------------------------------------------------------------------------------------
// Passive checks

itest('passive: a backend answering 5xx is ejected from new sessions and takes them again after the backoff', async (t, s) => {
  const [a, b] = await Promise.all([
    startHealthServer(s, { name: 'passive-a' }),
    startHealthServer(s, { name: 'passive-b' }),
  ]);
  await b.setMode('error500');
  const tn = await s.turnout(healthConfig([{ name: 'blue', weight: 100, backends: [a.addr, b.addr] }],
    { kind: 'none', passive_failures: 3, passive_backoff: '3s', passive_backoff_max: '10s' }));
  await waitAdmin(tn);

  // New sessions until passive checks eject b (bounded: b is drawn about every other time).
  const seen = [];
  for (let i = 0; i < 60 && !backendIn(await status(tn), b.addr).health.ejected; i++) {
    const r = await initialize(tn.port);
    seen.push(`${r.status} ${r.backend}`);
  }
  const ejected = backendIn(await status(tn), b.addr);
  assert.equal(ejected.health.ejected, true, `ejected after 5xx answers: ${seen.join(', ')}`);
  assert.equal(ejected.health.ejections, 1);
  assert.equal(ejected.healthy, true, 'passive ejection is not the active health flag');
  assert.equal(seen.filter((x) => x === '500 passive-b').length, 3, `exactly passive_failures 5xx answers: ${seen.join(', ')}`);
  const m = parseMetrics((await admin(tn, 'GET', '/metrics')).text);
  assert.equal(metricValue(m, 'turnout_backend_ejected', { backend: b.addr }), 1);
  assert.equal(metricValue(m, 'turnout_backend_ejected', { backend: a.addr }), 0);

  const during = await initializeMany(tn.port, 8);
  assert.deepEqual(during.map((x) => `${x.status} ${x.backend}`), Array(8).fill('200 passive-a'),
    'no new session goes to the ejected backend');

  // Fixed, and the backoff over: new sessions reach it again, and a good answer ends probation.
  await b.setMode('ok');
  const lifted = await waitBackend(tn, b.addr, (x) => !x.health.ejected, 'the backoff over', 15000);
  assert.equal(lifted.health.ejections, 1, 'on probation until a good answer');
  const back = await sessionOn(tn.port, 'passive-b');
  assert.equal(back.status, 200);
  const healed = await waitBackend(tn, b.addr, (x) => !x.health.ejected && x.health.ejections === 0, 'probation over');
  assert.equal(healed.healthy, true);
});

itest('passive: a backend refusing connections is ejected with no [upstream.health] table; new sessions go elsewhere', async (t, s) => {
  const a = await startHealthServer(s, { name: 'refused-a' });
  const deadAddr = `127.0.0.1:${await closedPort()}`;
  const tn = await s.turnout(healthConfig([{ name: 'blue', weight: 100, backends: [a.addr, deadAddr] }], undefined));
  await waitAdmin(tn);
  const answers = [];
  for (let i = 0; i < 80 && !backendIn(await status(tn), deadAddr).health.ejected; i++) {
    answers.push(await initialize(tn.port));
  }
  const dead = backendIn(await status(tn), deadAddr);
  assert.equal(dead.health.ejected, true, 'ejected after 5 refused connects (the default)');
  assert.ok(dead.errors_total >= 5, `errors counted: ${dead.errors_total}`);
  assert.ok(answers.every((r) => r.status === 200 && r.backend === 'refused-a'),
    'each refused connect was retried on the other backend');
});

itest('passive: passive_failures = 0 turns passive checks off', async (t, s) => {
  const a = await startHealthServer(s, { name: 'off-a' });
  const deadAddr = `127.0.0.1:${await closedPort()}`;
  const tn = await s.turnout(healthConfig([{ name: 'blue', weight: 100, backends: [a.addr, deadAddr] }],
    { kind: 'none', passive_failures: 0 }));
  await waitAdmin(tn);
  const answers = await initializeMany(tn.port, 60);
  assert.ok(answers.every((r) => r.status === 200 && r.backend === 'off-a'));
  // Drawn about every other time: at least 10 of 60 but for a chance below 1e-8; the default
  // (5 failures) would have ejected it by then.
  const dead = backendIn(await status(tn), deadAddr);
  assert.ok(dead.errors_total >= 10, `the dead backend kept being tried: ${dead.errors_total} errors`);
  assert.equal(dead.health.ejected, false);
});

// ---------------------------------------------------------------------------------------------
// Metrics

itest('metrics: after known traffic, answers by class, JSON-RPC errors, histogram, health and probe latency per backend', async (t, s) => {
  const [j, idle] = await Promise.all([
    startHealthServer(s, { name: 'metrics-j', json: true }),
    startHealthServer(s, { name: 'metrics-idle' }),
  ]);
  const tn = await s.turnout(healthConfig([
    { name: 'blue', weight: 100, version: '1.4.2', backends: [j.addr] },
    { name: 'green', weight: 0, version: '1.5.0', backends: [idle.addr] },
  ], fastHealth({ passive_failures: 0 })));
  await waitAdmin(tn);
  await waitAllProbed(tn, [j.addr, idle.addr]);

  const rpc = (method, id) => JSON.stringify({ jsonrpc: '2.0', id, method });
  const init = await initialize(tn.port);
  assert.equal(init.status, 200, init.text);
  assert.match(init.headers['content-type'], /application\/json/);
  const sid = init.sid;
  const expect = (r, code) => assert.equal(r.status, code, `${r.status} ${r.text}`);
  expect(await sessionRequest(tn.port, sid, { body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }) }), 202);
  for (let i = 0; i < 3; i++) expect(await sessionRequest(tn.port, sid, { body: rpc('ping', 10 + i) }), 200);
  for (let i = 0; i < 2; i++) {
    const r = await sessionRequest(tn.port, sid, { body: rpc('no/such/method', 20 + i) });
    expect(r, 200);
    assert.match(r.text, /"error"/);
  }
  expect(await sessionRequest(tn.port, undefined, { body: rpc('ping', 30) }), 400);
  for (let i = 0; i < 2; i++) expect(await sessionRequest(tn.port, sid, { headers: { 'X-Test-Status': '503' } }), 503);
  expect(await sessionRequest(tn.port, sid, { method: 'DELETE' }), 200);
  // 1 initialize + 1 notification + 3 pings + 2 errors + 1 400 + 2 503 + 1 DELETE
  const total = 11;

  const labels = { upstream: 'mcp', pool: 'blue', backend: j.addr, version: '1.4.2' };
  // Every exchange is counted before its last byte leaves turnout, so the metrics read right
  // after the last answer already hold all of them.
  const r = await admin(tn, 'GET', '/metrics');
  assert.equal(r.status, 200);
  const m = parseMetrics(r.text);
  const v = (name, extra = {}) => metricValue(m, name, { ...labels, ...extra });
  assert.equal(m.types.turnout_backend_responses_total, 'counter');
  assert.equal(v('turnout_backend_responses_total', { code_class: '1xx' }), 0);
  assert.equal(v('turnout_backend_responses_total', { code_class: '2xx' }), 8);
  assert.equal(v('turnout_backend_responses_total', { code_class: '3xx' }), 0);
  assert.equal(v('turnout_backend_responses_total', { code_class: '4xx' }), 1);
  assert.equal(v('turnout_backend_responses_total', { code_class: '5xx' }), 2);
  assert.equal(v('turnout_backend_jsonrpc_errors_total'), 5, '2 method errors + the 400 + the two 503s');
  assert.equal(v('turnout_backend_requests_total'), total);
  assert.equal(m.types.turnout_backend_request_duration_seconds, 'histogram');
  assert.equal(v('turnout_backend_request_duration_seconds_count'), total);
  assert.equal(v('turnout_backend_request_duration_seconds_bucket', { le: '+Inf' }), total);
  const buckets = m.samples.filter((x) => x.name === 'turnout_backend_request_duration_seconds_bucket' && x.labels.backend === j.addr);
  assert.ok(buckets.length >= 3, 'buckets fine enough for p50 and p99');
  for (let i = 1; i < buckets.length; i++) assert.ok(buckets[i].value >= buckets[i - 1].value, 'cumulative buckets');
  assert.ok(v('turnout_backend_request_duration_seconds_sum') > 0);
  assert.equal(v('turnout_backend_healthy'), 1);
  assert.equal(v('turnout_backend_sessions'), 0, 'the DELETE ended the session');
  assert.equal(v('turnout_backend_streams'), 0);
  assert.equal(v('turnout_backend_in_flight'), 0);
  assert.equal(v('turnout_backend_ejected'), 0, 'passive checks are off: 503s eject nothing');
  assert.ok(v('turnout_backend_probe_latency_seconds') > 0, 'probe latency of the last probe');

  // The other pool's backend: its own labels, nothing counted.
  const green = { upstream: 'mcp', pool: 'green', backend: idle.addr, version: '1.5.0' };
  assert.equal(metricValue(m, 'turnout_backend_requests_total', green), 0);
  assert.equal(metricValue(m, 'turnout_backend_responses_total', { ...green, code_class: '2xx' }), 0);
  assert.equal(metricValue(m, 'turnout_backend_request_duration_seconds_count', green), 0);
  assert.equal(metricValue(m, 'turnout_backend_healthy', green), 1);
  assert.ok(metricValue(m, 'turnout_backend_probe_latency_seconds', green) > 0);
  assert.equal(metricValue(m, 'turnout_pool_weight', { upstream: 'mcp', pool: 'green', version: '1.5.0' }), 0);

  // The probes went straight to the backends, never through turnout's counters.
  const stats = await waitUntil(async () => {
    const x = await j.stats();
    return x.initialize >= 6 ? x : null;
  }, 10000, 'five probes of the backend');
  // Each probe deletes its session: at most the one of a probe running right now is open.
  assert.ok(stats.sessions <= 1, `probe sessions are deleted: ${JSON.stringify(stats)}`);
  const again = parseMetrics((await admin(tn, 'GET', '/metrics')).text);
  assert.equal(metricValue(again, 'turnout_backend_requests_total', labels), total);
});
