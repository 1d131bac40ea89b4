// Tool compatibility (SPEC.md "Health", issue 13): per pool, the tools added, removed and
// changed against the baseline pool, and whether the pool's backends agree; only a breaking
// change (a tool removed, an input schema changed) or disagreeing backends refuse switch and a
// pool's first weights (409) unless forced — a version that only adds tools goes through.
// Against real MCP SDK servers (support/health_server.mjs) probed by turnout's MCP health check.

import assert from 'node:assert/strict';
import { itest } from './support/harness.mjs';
import { admin, ctl, metricValue, parseMetrics, poolIn, status, waitAdmin, weightsIn } from './support/control_helpers.mjs';
import { streamableClient } from './support/session_helpers.mjs';
import { fastHealth, healthConfig, sessionOn, startHealthServer, waitAllProbed } from './support/health_helpers.mjs';

const post = (tn, p, body) => admin(tn, 'POST', p, body);
const put = (tn, p, body) => admin(tn, 'PUT', p, body);

function assertRefused(r, pattern, what) {
  assert.equal(r.status, 409, `${what}: expected 409, got ${r.status} ${r.text}`);
  const body = JSON.parse(r.text);
  assert.deepEqual(Object.keys(body), ['error'], `${what}: one sentence`);
  assert.match(body.error, pattern, `${what}: the reason: ${body.error}`);
}

/** blue (base tools, weight 100) and one zero-weight pool per other tool set; mixed: base + added. */
async function startPools(s, prefix) {
  const [base, added, removed, alt] = await Promise.all([
    startHealthServer(s, { name: `${prefix}-base` }),
    startHealthServer(s, { name: `${prefix}-added`, tools: 'added' }),
    startHealthServer(s, { name: `${prefix}-removed`, tools: 'removed' }),
    startHealthServer(s, { name: `${prefix}-alt`, tools: 'alt' }),
  ]);
  const tn = await s.turnout(healthConfig([
    { name: 'blue', weight: 100, version: '1.0.0', backends: [base.addr] },
    { name: 'green', weight: 0, version: '1.1.0', backends: [added.addr] },
    { name: 'red', weight: 0, version: '2.0.0', backends: [removed.addr] },
    { name: 'alt', weight: 0, version: '2.1.0', backends: [alt.addr] },
    { name: 'mixed', weight: 0, backends: [base.addr, added.addr] },
  ], fastHealth()));
  await waitAdmin(tn);
  await waitAllProbed(tn, [base.addr, added.addr, removed.addr, alt.addr]);
  return { tn, base, added, removed, alt };
}

itest('status reports each pool\'s tools against the baseline: added, removed, changed, consistent', async (t, s) => {
  const { tn } = await startPools(s, 'tc-status');
  const st = await status(tn);
  const tools = (p) => poolIn(st, p).tools;

  assert.deepEqual({ ...tools('blue'), hash: undefined },
    { hash: undefined, baseline: 'blue', added: [], removed: [], changed: [], consistent: true },
    'the baseline (highest weight) has nothing added, removed or changed');
  assert.match(tools('blue').hash, /^[0-9a-f]{16}$/);
  assert.deepEqual([tools('green').added, tools('green').removed, tools('green').changed, tools('green').consistent],
    [['search'], [], [], true], 'green adds search');
  assert.deepEqual([tools('red').added, tools('red').removed, tools('red').changed], [[], ['whoami'], []], 'red removes whoami');
  assert.deepEqual([tools('alt').added, tools('alt').removed, tools('alt').changed], [[], [], ['echo']], 'alt changes echo');
  assert.equal(tools('mixed').consistent, false, 'the backends of mixed disagree');
  assert.equal(tools('mixed').hash, null, 'a pool whose backends disagree has no one hash');
  assert.deepEqual(tools('mixed').added, ['search'], 'what the odd backend adds is still shown');
  for (const p of ['green', 'red', 'alt']) assert.notEqual(tools(p).hash, tools('blue').hash, `${p}: another hash`);

  // turnoutctl's table shows the same briefly.
  const r = await ctl(tn, ['status']);
  assert.equal(r.code, 0, r.stderr);
  const row = (name) => r.stdout.split('\n').find((l) => new RegExp(`^\\s+${name}\\s+\\d+\\s+(yes|no)\\b`).test(l));
  assert.match(r.stdout, /POOL\s+WEIGHT\s+DRAINING\s+VERSION\s+TOOLS/);
  assert.match(row('blue'), /\bbaseline$/);
  assert.match(row('green'), /\+search$/);
  assert.match(row('red'), /-whoami$/);
  assert.match(row('alt'), /~echo$/);
  assert.match(row('mixed'), /\+search \(backends disagree\)$/);

  // The baseline follows the weights: with alt the heaviest, blue is the one that changed echo.
  assert.equal((await post(tn, '/v1/upstreams/mcp/switch', { pool: 'alt', force: true })).status, 200);
  const after = await status(tn);
  assert.equal(poolIn(after, 'alt').tools.baseline, 'alt');
  assert.deepEqual(poolIn(after, 'alt').tools.changed, []);
  assert.deepEqual(poolIn(after, 'blue').tools.changed, ['echo']);
});

itest('a pool that only adds tools passes the guard: first weights and switch are accepted', async (t, s) => {
  const { tn, added } = await startPools(s, 'tc-add');
  const w = await put(tn, '/v1/upstreams/mcp/weights', { blue: 50, green: 50 });
  assert.equal(w.status, 200, `weights giving green (search added) its first traffic: ${w.text}`);
  assert.deepEqual(weightsIn(await status(tn)), { blue: 50, green: 50, red: 0, alt: 0, mixed: 0 });
  // New sessions really reach the new version (60 misses at 50 % would be a 1e-18 fluke).
  const onGreen = await sessionOn(tn.port, added.name);
  assert.equal(onGreen.status, 200);

  const cli = await ctl(tn, ['switch', 'mcp', 'green']);
  assert.equal(cli.code, 0, `turnoutctl switch to an additive pool: ${cli.stdout}${cli.stderr}`);
  // (A switch keeps the weight the pool already had.)
  assert.deepEqual(weightsIn(await status(tn)), { blue: 0, green: 50, red: 0, alt: 0, mixed: 0 });
});

itest('a removed tool or a changed input schema is refused (409) for switch and first weights; --force overrides', async (t, s) => {
  const { tn, removed, alt } = await startPools(s, 'tc-break');
  const removedWhy = /^the tools of pool 'red' break those of pool 'blue' \(removed: whoami\); use force to/;
  const changedWhy = /^the tools of pool 'alt' break those of pool 'blue' \(input schema changed: echo\); use force to/;
  assertRefused(await put(tn, '/v1/upstreams/mcp/weights', { blue: 95, red: 5 }), removedWhy, 'weights red');
  assertRefused(await put(tn, '/v1/upstreams/mcp/weights', { weights: { blue: 95, red: 5 } }), removedWhy, 'wrapped weights red');
  assertRefused(await post(tn, '/v1/upstreams/mcp/switch', { pool: 'red' }), removedWhy, 'switch red');
  assertRefused(await put(tn, '/v1/upstreams/mcp/weights', { alt: 5 }), changedWhy, 'weights alt');
  assertRefused(await post(tn, '/v1/upstreams/mcp/switch', { pool: 'alt' }), changedWhy, 'switch alt');
  assertRefused(await post(tn, '/v1/upstreams/mcp/switch', { pool: 'mixed' }),
    /^the backends of pool 'mixed' disagree on their tools; use force to switch anyway$/, 'switch mixed');
  assertRefused(await put(tn, '/v1/upstreams/mcp/weights', { mixed: 5 }),
    /^the backends of pool 'mixed' disagree on their tools/, 'weights mixed');

  let r = await ctl(tn, ['weights', 'mcp', 'blue=95', 'red=5']);
  assert.equal(r.code, 1, `turnoutctl weights refused: ${r.stdout}${r.stderr}`);
  assert.equal(r.stderr.trim().split('\n').length, 1);
  assert.match(r.stderr, removedWhy);
  assert.deepEqual(weightsIn(await status(tn)), { blue: 100, green: 0, red: 0, alt: 0, mixed: 0 }, 'nothing changed');

  // --force: the canary of a breaking version is possible without switching everything.
  r = await ctl(tn, ['weights', 'mcp', 'blue=50', 'red=50', '--force']);
  assert.equal(r.code, 0, `turnoutctl weights --force: ${r.stdout}${r.stderr}`);
  assert.match(r.stdout, /^mcp: weights blue=50 red=50 \(forced\)$/m);
  assert.deepEqual(weightsIn(await status(tn)), { blue: 50, green: 0, red: 50, alt: 0, mixed: 0 });
  // At 50 %, 60 new sessions all elsewhere would be a 1e-18 fluke.
  assert.equal((await sessionOn(tn.port, removed.name)).status, 200, 'new sessions reach the forced pool');

  const forced = await put(tn, '/v1/upstreams/mcp/weights', { weights: { alt: 50 }, force: true });
  assert.equal(forced.status, 200, forced.text);
  r = await ctl(tn, ['switch', 'mcp', 'alt', '--force']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal((await sessionOn(tn.port, alt.name)).status, 200);
  assert.deepEqual(weightsIn(await status(tn)), { blue: 0, green: 0, red: 0, alt: 50, mixed: 0 });
});

itest('rollout start: a breaking pool is refused unless forced, judged against the rollout\'s baseline; status uses that baseline while it runs', async (t, s) => {
  const { tn } = await startPools(s, 'tc-rollout');
  const steps = [{ weight: 5, hold: '1h' }, { weight: 100 }];
  const refused = await post(tn, '/v1/upstreams/mcp/rollout', { pool: 'red', steps });
  assertRefused(refused,
    /^the tools of pool 'red' break those of pool 'blue' \(removed: whoami\); use --force to start the rollout anyway$/,
    'rollout of red');
  assertRefused(await post(tn, '/v1/upstreams/mcp/rollout', { pool: 'alt', steps }), /input schema changed: echo/, 'rollout of alt');

  // An additive pool starts.
  const started = await post(tn, '/v1/upstreams/mcp/rollout', { pool: 'green', steps });
  assert.equal(started.status, 200, `rollout of an additive pool: ${started.text}`);
  assert.equal((await post(tn, '/v1/upstreams/mcp/rollout/abort')).status, 200);

  // The rollout's baseline decides: blue against red only adds whoami (red lacks it).
  const r = await post(tn, '/v1/upstreams/mcp/rollout', { pool: 'blue', baseline: 'red', steps });
  assert.equal(r.status, 200, `blue only adds whoami to red: ${r.text}`);
  const st = await status(tn);
  assert.equal(poolIn(st, 'blue').tools.baseline, 'red', 'status compares with the rollout\'s baseline');
  assert.deepEqual(poolIn(st, 'blue').tools.added, ['whoami']);
  assert.deepEqual(poolIn(st, 'red').tools.added, []);
  assert.equal((await post(tn, '/v1/upstreams/mcp/rollout/abort')).status, 200);

  // --force starts a breaking one.
  const forced = await post(tn, '/v1/upstreams/mcp/rollout', { pool: 'red', steps, force: true });
  assert.equal(forced.status, 200, forced.text);
});

itest('turnout_tool_calls_total labels a call with the tool name only when the pool announced it, else other', async (t, s) => {
  const base = await startHealthServer(s, { name: 'tc-metrics' });
  const tn = await s.turnout(healthConfig([{ name: 'blue', weight: 100, version: '1.0.0', backends: [base.addr] }], fastHealth()));
  await waitAdmin(tn);
  await waitAllProbed(tn, [base.addr]);
  const { client } = await streamableClient(s, tn.port, { name: 'tc-metrics-client' });
  await client.callTool({ name: 'echo', arguments: { text: 'x' } }, undefined, { timeout: 10000 });
  await client.callTool({ name: 'echo', arguments: { text: 'y' } }, undefined, { timeout: 10000 });
  // Names clients invent (here one the pool never announced) fold into `other`.
  await client.callTool({ name: 'made-up-tool-1', arguments: {} }, undefined, { timeout: 10000 }).catch(() => {});
  await client.callTool({ name: 'made-up-tool-2', arguments: {} }, undefined, { timeout: 10000 }).catch(() => {});

  const m = parseMetrics((await admin(tn, 'GET', '/metrics')).text);
  const total = (tool) => ['ok', 'error', 'tool_error'].reduce((sum, outcome) =>
    sum + metricValue(m, 'turnout_tool_calls_total', { upstream: 'mcp', pool: 'blue', tool, outcome }), 0);
  assert.equal(metricValue(m, 'turnout_tool_calls_total', { pool: 'blue', tool: 'echo', outcome: 'ok' }), 2);
  assert.equal(total('other'), 2, 'the two made-up names are one `other` label');
  const tools = new Set(m.samples.filter((x) => x.name === 'turnout_tool_calls_total').map((x) => x.labels.tool));
  assert.deepEqual([...tools].sort(), ['echo', 'other']);
});
