// Rollouts (SPEC.md "Rollouts"; issue 13): turnout moves new sessions to a canary pool step by
// step, judges each interval from what it forwarded (errors, tool errors, p99) against the
// baseline, and promotes or rolls back by itself. Real SDK servers and clients; time is driven
// by short holds and intervals, and every wait is for a state, never a guess.

import assert from 'node:assert/strict';
import http from 'node:http';
import path from 'node:path';
import { readFileSync } from 'node:fs';
import { before } from 'node:test';
import { fileScope, itest, sleep, tempDir, waitUntil } from './support/harness.mjs';
import { streamableClient, textOf } from './support/session_helpers.mjs';
import {
  admin, adminOk, binomialBounds, ctl, keepBusy, openSessions, liveSession, poolIn, setWeights, status, upstreamIn, waitAdmin, waitStatus, weightsIn,
} from './support/control_helpers.mjs';

const shared = fileScope();
let stable; // the baseline release: always answers well
let broken; // a release whose tool calls fail 30 % of the time

before(async () => {
  [stable, broken] = await Promise.all([
    shared.sdkServer({ name: 'ro-stable' }),
    shared.sdkServer({ name: 'ro-broken', toolErrorRatio: 0.3 }),
  ]);
});

const FAST_ROLLOUT = {
  steps: ['10:400ms', '50:400ms', '100'],
  interval: '150ms',
  min_requests: 5,
  failure_limit: 2,
  rollback_drain: '500ms',
};

function pools(blue, green, rollout = FAST_ROLLOUT) {
  return {
    upstreams: [{
      name: 'mcp',
      pools: [
        { name: 'blue', weight: 100, version: '1.0.0', backends: [blue.addr] },
        { name: 'green', weight: 0, version: '1.1.0', backends: [green.addr] },
      ],
      rollout,
    }],
  };
}

async function start(s, opts) {
  const tn = await s.turnout(opts);
  await waitAdmin(tn);
  return tn;
}

const rolloutOf = async (tn) => upstreamIn(await status(tn)).rollout;

/**
 * New SDK sessions, back to back (a few at once), each making tool calls then ending: the
 * traffic a canary is judged on. Tool errors are the backend's business, not a test failure.
 */
function newSessions(s, port, { concurrency = 3 } = {}) {
  let running = true;
  s.defer(() => {
    running = false;
  });
  const owners = {};
  const loops = Array.from({ length: concurrency }, async () => {
    while (running) {
      try {
        const c = await streamableClient(null, port, { name: 'ro-traffic' });
        for (let i = 0; i < 3; i++) {
          const r = await c.client.callTool({ name: 'echo', arguments: { text: 'x' } }, undefined, { timeout: 5000 });
          if (!r.isError) owners.calls = (owners.calls ?? 0) + 1;
        }
        await c.client.close();
      } catch {
        await sleep(20);
      }
    }
  });
  return {
    owners,
    async stop() {
      running = false;
      await Promise.all(loops);
    },
  };
}

itest('a healthy canary is promoted through every step to 100 %, and the baseline stays ready for rollback', async (t, s) => {
  const tn = await start(s, pools(stable, await s.sdkServer({ name: 'ro-good' })));
  const traffic = newSessions(s, tn.port);
  const answer = await adminOk(tn, 'POST', '/v1/upstreams/mcp/rollout', { pool: 'green' });
  assert.equal(answer.rollout.state, 'running');
  assert.deepEqual(weightsIn({ upstreams: [answer] }), { blue: 90, green: 10 }, 'step 1: green 10 %');

  const done = await waitStatus(tn, (st) => upstreamIn(st).rollout?.state !== 'running', 30000, 'the rollout to end');
  await traffic.stop();
  const r = upstreamIn(done).rollout;
  assert.equal(r.state, 'succeeded', JSON.stringify(r.history, null, 1));
  assert.deepEqual(weightsIn(done), { blue: 0, green: 100 });
  const steps = r.history.filter((e) => e.event === 'step').map((e) => e.detail);
  assert.deepEqual(steps.map((d) => d.match(/(\d+)%$/)[1]), ['10', '50', '100'], 'every step, in order');
  assert.equal(r.last.verdict, 'pass');
  assert.ok(r.last.canary.requests > 0 && r.last.baseline.requests >= 0);

  // The baseline kept its weight to go back to.
  await adminOk(tn, 'POST', '/v1/upstreams/mcp/rollback');
  assert.deepEqual(weightsIn(await status(tn)), { blue: 100, green: 0 });
});

itest('a canary whose tool calls fail 30 % is rolled back; baseline sessions see no error; canary sessions end with 404', { timeout: 60000 }, async (t, s) => {
  const tn = await start(s, pools(stable, broken));
  const baselineSessions = await Promise.all([0, 1].map(() => liveSession(s, tn.port)));
  const busy = keepBusy(baselineSessions, { scope: s });
  await adminOk(tn, 'POST', '/v1/upstreams/mcp/rollout', { pool: 'green' });

  // A session on the canary, made while it takes new sessions.
  let canaryClient;
  await waitUntil(async () => {
    const c = await streamableClient(s, tn.port, { name: 'ro-canary' });
    {
      // Which pool holds this one: ask the server that answers.
      const res = await fetch(`http://127.0.0.1:${tn.port}/mcp`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': c.transport.sessionId, 'mcp-protocol-version': '2025-06-18' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 99, method: 'ping' }),
      });
      await res.text();
      if (res.headers.get('x-backend') === broken.name) {
        canaryClient = c;
        return true;
      }
    }
    await c.client.close();
    return false;
  }, 20000, 'a session on the canary');
  const traffic = newSessions(s, tn.port); // now the canary's errors may show

  const ended = await waitStatus(tn, (st) => upstreamIn(st).rollout?.state !== 'running', 30000, 'the rollout to end');
  const r = upstreamIn(ended).rollout;
  assert.equal(r.state, 'rolled_back', JSON.stringify(r.history, null, 1));
  assert.match(r.reason, /failed intervals in a row/);
  assert.equal(r.last.verdict, 'fail');
  assert.ok(r.last.canary.error_rate > 0.01, `canary error rate ${r.last.canary.error_rate}`);
  assert.deepEqual(weightsIn(ended), { blue: 100, green: 0 }, 'weights back as before the rollout');
  assert.equal(poolIn(ended, 'green').draining, true, 'the canary drains');
  assert.ok(r.history.filter((e) => e.event === 'interval_failed').length >= 2);

  await traffic.stop();
  const result = await busy.stop();
  assert.deepEqual(result.failures, [], 'baseline sessions: no failed request');
  assert.ok(result.calls > 0);

  // After rollback_drain the canary's sessions answer 404; their clients start over on blue.
  await waitUntil(async () => {
    const res = await fetch(`http://127.0.0.1:${tn.port}/mcp`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': canaryClient.transport.sessionId, 'mcp-protocol-version': '2025-06-18' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 100, method: 'ping' }),
    });
    await res.text();
    return res.status === 404;
  }, 10000, 'the canary session to answer 404 after the drain');
  const again = await streamableClient(s, tn.port, { name: 'ro-reinit' });
  const who = JSON.parse(textOf(await again.client.callTool({ name: 'whoami', arguments: {} }, undefined, { timeout: 5000 })));
  assert.equal(who.server, stable.name, 're-initialized on the baseline');
});

itest('too little traffic stays inconclusive and does not advance; pause, resume, promote and abort', async (t, s) => {
  const quiet = await s.sdkServer({ name: 'ro-quiet' });
  const tn = await start(s, pools(stable, quiet, { ...FAST_ROLLOUT, min_requests: 1000 }));
  await adminOk(tn, 'POST', '/v1/upstreams/mcp/rollout', { pool: 'green' });
  await waitStatus(tn, (st) => upstreamIn(st).rollout?.last?.verdict === 'inconclusive', 5000, 'an inconclusive interval');
  await sleep(600); // longer than the step's hold: still it must not advance
  let r = await rolloutOf(tn);
  assert.equal(r.step, 1);
  assert.equal(r.state, 'running');
  assert.ok(r.step_elapsed_s >= 0.4, `hold time counted: ${r.step_elapsed_s}`);

  r = (await adminOk(tn, 'POST', '/v1/upstreams/mcp/rollout/pause')).rollout;
  assert.equal(r.state, 'paused');
  assert.equal((await admin(tn, 'POST', '/v1/upstreams/mcp/rollout/pause')).status, 409, 'paused twice');
  r = (await adminOk(tn, 'POST', '/v1/upstreams/mcp/rollout/resume')).rollout;
  assert.equal(r.state, 'running');
  // Step 1 sends 10 % of new sessions to green: Binomial(n, 0.1), accepted with < 1e-6 flake chance.
  const n = 200;
  const split = (sessions) => sessions.filter((x) => x.owner === quiet.name).length;
  let { lo, hi } = binomialBounds(n, 0.1);
  let greens = split(await openSessions(tn.port, n));
  assert.ok(greens >= lo && greens <= hi, `step 1: ${greens} of ${n} new sessions on green, accepted ${lo}..${hi}`);

  r = (await adminOk(tn, 'POST', '/v1/upstreams/mcp/rollout/promote')).rollout;
  assert.equal(r.step, 2);
  assert.deepEqual(weightsIn(await status(tn)), { blue: 50, green: 50 });
  ({ lo, hi } = binomialBounds(n, 0.5));
  greens = split(await openSessions(tn.port, n));
  assert.ok(greens >= lo && greens <= hi, `step 2: ${greens} of ${n} new sessions on green, accepted ${lo}..${hi}`);

  // A manual weights change pauses it.
  await setWeights(tn, { blue: 70, green: 30 });
  r = await rolloutOf(tn);
  assert.equal(r.state, 'paused');
  assert.match(r.reason, /manual weights change/);

  r = (await adminOk(tn, 'POST', '/v1/upstreams/mcp/rollout/abort')).rollout;
  assert.equal(r.state, 'aborted');
  const st = await status(tn);
  assert.deepEqual(weightsIn(st), { blue: 100, green: 0 });
  assert.equal(poolIn(st, 'green').draining, true);
  const events = r.history.map((e) => e.event);
  for (const e of ['started', 'step', 'paused', 'resumed', 'promoted', 'aborted']) assert.ok(events.includes(e), `${e} in ${events}`);
});

itest('bad rollout requests answer 4xx with one sentence and change nothing', async (t, s) => {
  const tn = await start(s, pools(stable, await s.sdkServer({ name: 'ro-bad' })));
  const before = await status(tn);
  const cases = [
    [{ pool: 'nope' }, 404, /no pool named 'nope'/],
    [{ pool: 'green', baseline: 'green' }, 400, /another pool/],
    [{ pool: 'green', steps: [{ weight: 50, hold: '1s' }, { weight: 20 }] }, 400, /rise/],
    [{ pool: 'green', steps: [{ weight: 150 }] }, 400, /1 to 100|between 1 and 100/],
    [{ pool: 'green', steps: [{ weight: 5, hold: '0s' }, { weight: 100 }] }, 400, /hold time above zero/],
    [{ pool: 'green', interval: '0s' }, 400, /interval/],
    [{ pool: 'green', bogus: 1 }, 400, /unknown field "bogus"/],
    [{}, 400, /"pool"/],
  ];
  for (const [body, code, re] of cases) {
    const a = await admin(tn, 'POST', '/v1/upstreams/mcp/rollout', body);
    assert.equal(a.status, code, `${JSON.stringify(body)}: ${a.text}`);
    assert.match(JSON.parse(a.text).error, re);
  }
  assert.equal((await admin(tn, 'POST', '/v1/upstreams/nope/rollout', { pool: 'green' })).status, 404);
  assert.equal((await admin(tn, 'POST', '/v1/upstreams/mcp/rollout/promote')).status, 409, 'promote with none');
  assert.equal((await admin(tn, 'POST', '/v1/upstreams/mcp/rollout/jump')).status, 404, 'unknown command');
  assert.deepEqual(weightsIn(await status(tn)), weightsIn(before), 'nothing changed');
  assert.equal(upstreamIn(await status(tn)).rollout, null, 'no rollout recorded');

  await adminOk(tn, 'POST', '/v1/upstreams/mcp/rollout', { pool: 'green', steps: [{ weight: 5, hold: '1h' }, { weight: 100 }] });
  const second = await admin(tn, 'POST', '/v1/upstreams/mcp/rollout', { pool: 'green' });
  assert.equal(second.status, 409, 'a second rollout while one runs');
});

itest('a slow canary (p99 over the ratio and the floor) is rolled back', { timeout: 60000 }, async (t, s) => {
  const tn = await start(s, pools(stable, await s.sdkServer({ name: 'ro-slow', delayMs: 120 })));
  const traffic = newSessions(s, tn.port);
  await adminOk(tn, 'POST', '/v1/upstreams/mcp/rollout', { pool: 'green', steps: [{ weight: 50, hold: '1h' }, { weight: 100 }] });
  const ended = await waitStatus(tn, (st) => upstreamIn(st).rollout?.state !== 'running', 30000, 'the rollout to end');
  await traffic.stop();
  const r = upstreamIn(ended).rollout;
  assert.equal(r.state, 'rolled_back', JSON.stringify(r.history, null, 1));
  assert.ok(r.last.canary.p99_ms > 100, `canary p99 ${r.last.canary.p99_ms} ms`);
  assert.ok(r.last.canary.error_rate === 0, 'no errors: latency alone failed it');
  assert.deepEqual(weightsIn(ended), { blue: 100, green: 0 });
});

itest('a canary backend that dies mid-rollout rolls it back at once', async (t, s) => {
  const victim = await s.sdkServer({ name: 'ro-victim' });
  const tn = await start(s, pools(stable, victim, { ...FAST_ROLLOUT, steps: ['50:1h', '100'], interval: '1h' }));
  const traffic = newSessions(s, tn.port);
  await adminOk(tn, 'POST', '/v1/upstreams/mcp/rollout', { pool: 'green' });
  await waitStatus(tn, (st) => poolIn(st, 'green').backends[0].requests_total > 0, 10000, 'traffic on the canary');
  await victim.stop();
  const ended = await waitStatus(tn, (st) => upstreamIn(st).rollout?.state !== 'running', 10000,
    'the rollout to end (the interval is an hour: only the crash check can end it)');
  await traffic.stop();
  const r = upstreamIn(ended).rollout;
  assert.equal(r.state, 'rolled_back');
  assert.match(r.reason, /canary crashed/);
  assert.deepEqual(weightsIn(ended), { blue: 100, green: 0 });
});

itest('a rollout survives a restart and resumes its step with the hold time left', async (t, s) => {
  const stateFile = path.join(tempDir(s), 'state.json');
  const opts = {
    ...pools(stable, await s.sdkServer({ name: 'ro-restart' }),
      { ...FAST_ROLLOUT, steps: ['20:1h', '100'], interval: '100ms', min_requests: 1000 }),
    proxy: { state_file: stateFile },
  };
  const tn = await start(s, opts);
  await adminOk(tn, 'POST', '/v1/upstreams/mcp/rollout', { pool: 'green' });
  await waitStatus(tn, (st) => upstreamIn(st).rollout?.step_elapsed_s >= 0.3, 5000, 'hold time to pass');
  const held = (await rolloutOf(tn)).step_elapsed_s;
  tn.child.signal('SIGTERM');
  assert.equal((await tn.child.waitExit(10000)).code, 0);

  const again = await start(s, opts);
  const r = await rolloutOf(again);
  assert.equal(r.state, 'running');
  assert.equal(r.step, 1);
  assert.ok(r.step_elapsed_s >= held - 0.2, `resumed with ${r.step_elapsed_s}s held (had ${held}s)`);
  assert.deepEqual(weightsIn(await status(again)), { blue: 80, green: 20 });
});

itest('switch --watch switches back when the new pool fails; the webhook hears every event', async (t, s) => {
  const events = [];
  const hook = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      events.push(JSON.parse(body));
      res.end('ok');
    });
  });
  await new Promise((r) => hook.listen(0, '127.0.0.1', r));
  s.defer(() => hook.close());
  const tn = await start(s, pools(stable, broken, {
    ...FAST_ROLLOUT, webhook: `http://127.0.0.1:${hook.address().port}/hook`,
  }));
  // The old pool's figures from before the switch: clean.
  const warm = newSessions(s, tn.port);
  await waitStatus(tn, (st) => poolIn(st, 'blue').backends[0].requests_total > 20, 10000, 'traffic on blue');
  const answer = await adminOk(tn, 'POST', '/v1/upstreams/mcp/switch', { pool: 'green', watch: '1h' });
  assert.deepEqual(weightsIn({ upstreams: [answer] }), { blue: 0, green: 100 });
  const ended = await waitStatus(tn, (st) => upstreamIn(st).rollout?.state !== 'running', 30000, 'the watch to end');
  await warm.stop();
  const r = upstreamIn(ended).rollout;
  assert.equal(r.kind, 'switch_watch');
  assert.equal(r.state, 'rolled_back', JSON.stringify(r.history));
  assert.deepEqual(weightsIn(ended), { blue: 100, green: 0 }, 'switched back');
  await waitUntil(() => events.some((e) => e.event === 'rolled_back'), 5000, 'the webhook to hear the rollback');
  const heard = events.map((e) => e.event);
  for (const e of ['started', 'interval_failed', 'rolled_back']) assert.ok(heard.includes(e), `${e} in ${heard}`);
  assert.ok(events.every((e) => e.upstream === 'mcp' && e.pool === 'green'));
});

itest('turnoutctl rollout start --wait prints progress and exits 0 on success, 1 on rollback; status reads as a timeline', { timeout: 60000 }, async (t, s) => {
  const tn = await start(s, pools(stable, await s.sdkServer({ name: 'ro-cli' })));
  const traffic = newSessions(s, tn.port);
  const ok = await ctl(tn, ['rollout', 'start', 'mcp', 'green', '--steps', '10:300ms,100', '--interval', '100ms', '--wait'],
    { timeout: 30000 });
  assert.equal(ok.code, 0, ok.stdout + ok.stderr);
  assert.match(ok.stdout, /started\s+pool 'green' against 'blue'/);
  assert.match(ok.stdout, /step\s+step 2\/2: green 100%/);
  assert.match(ok.stdout, /succeeded/);

  const shown = await ctl(tn, ['rollout', 'status', 'mcp']);
  assert.equal(shown.code, 0, shown.stderr);
  assert.match(shown.stdout, /^mcp: rollout of green against blue — succeeded/);
  assert.match(shown.stdout, /steps: 10% 300ms done {2}· 100% <- now/);
  assert.match(shown.stdout, /last interval \(.*\): pass — canary \d+ req/);
  const table = await ctl(tn, ['status']);
  assert.match(table.stdout, /rollout: green 100% against blue, step 2\/2, succeeded \(turnoutctl rollout status mcp\)/);
  const json = JSON.parse((await ctl(tn, ['--json', 'rollout', 'status', 'mcp'])).stdout);
  assert.equal(json.rollout.state, 'succeeded');

  // Back to blue, then a broken canary: rolled back, exit 1.
  await adminOk(tn, 'POST', '/v1/upstreams/mcp/rollback');
  await adminOk(tn, 'PUT', '/v1/upstreams/mcp/pools/green/backends', [broken.addr]);
  await waitStatus(tn, (st) => poolIn(st, 'green').backends[0]?.address === broken.addr, 5000, 'green on the broken release');
  const bad = await ctl(tn, ['rollout', 'start', 'mcp', 'green', '--steps', '50:1h,100', '--interval', '150ms',
    '--failure-limit', '2', '--wait'], { timeout: 30000 });
  await traffic.stop();
  assert.equal(bad.code, 1, bad.stdout + bad.stderr);
  assert.match(bad.stdout, /interval_failed/);
  assert.match(bad.stdout, /rolled_back/);

  const refused = await ctl(tn, ['rollout', 'start', 'mcp', 'nope', '--wait']);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /no pool named 'nope'/);
  const usage = await ctl(tn, ['rollout', 'pause', 'mcp', 'green']);
  assert.equal(usage.code, 2);
});

itest('an upgrade mid-rollout: the new process resumes it with the hold time left, the old one stops deciding', { timeout: 60000 }, async (t, s) => {
  const tn = await start(s, {
    ...pools(stable, await s.sdkServer({ name: 'ro-upgrade' }),
      { ...FAST_ROLLOUT, steps: ['20:1h', '100'], interval: '100ms', min_requests: 1000 }),
    proxy: { drain_timeout: '2s' },
  });
  await adminOk(tn, 'POST', '/v1/upstreams/mcp/rollout', { pool: 'green' });
  await waitStatus(tn, (st) => upstreamIn(st).rollout?.step_elapsed_s >= 0.3, 5000, 'hold time to pass');
  const held = (await rolloutOf(tn)).step_elapsed_s;
  const keepsOldAlive = await liveSession(s, tn.port); // its GET stream holds the old process open
  const up = await ctl(tn, ['upgrade']);
  assert.equal(up.code, 0, up.stderr);
  const newPid = Number(/^upgraded: pid (\d+) serves now/.exec(up.stdout)[1]);
  s.defer(() => {
    try {
      process.kill(newPid, 'SIGTERM');
    } catch {
      // gone already
    }
  });
  const st = await status(tn);
  assert.equal(st.pid, newPid);
  const r = upstreamIn(st).rollout;
  assert.equal(r.state, 'running');
  assert.ok(r.step_elapsed_s >= held - 0.2, `resumed with ${r.step_elapsed_s}s held (had ${held}s)`);
  // The successor goes on counting: its analysis runs.
  await waitStatus(tn, (x) => upstreamIn(x).rollout.step_elapsed_s > r.step_elapsed_s + 0.2, 5000, 'the successor to hold on');
  await adminOk(tn, 'POST', '/v1/upstreams/mcp/rollout/promote');
  assert.equal((await rolloutOf(tn)).state, 'succeeded');
  // The old process, still draining (a stream holds it), no longer drives the rollout: were it
  // to, its next interval would write its own (running) rollout over the successor's.
  await sleep(500);
  assert.ok(alive(tn.pid), 'the old process still drains');
  const saved = JSON.parse(readFileSync(path.join(path.dirname(tn.configPath), 'turnout.state.json'), 'utf8'));
  assert.equal(saved.upstreams[0].rollout.phase, 'succeeded');
  await keepsOldAlive.client.close();
});

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
