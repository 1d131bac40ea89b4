// Fleets (SPEC.md "Fleets", issue 16, first slice): [runtime] store = "etcd". Three turnout
// instances on one real etcd (Debian's etcd-server, started here on loopback): a change
// through one is in force on all; concurrent changes — one wins, the other gets 409; etcd
// away — every instance keeps serving, admin changes 503, status and metrics say so; etcd
// back — caught up; a start while etcd is down serves from the cached state.

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { before } from 'node:test';
import { buildConfig, fileScope, itest, tempDir } from './support/harness.mjs';
import { Etcd, ETCD_BIN, etcdRelay } from './support/etcd.mjs';
import {
  admin, metricValue, openSessions, parseMetrics, status, statusGet, tally, waitAdmin, waitStatus, weightsIn,
} from './support/control_helpers.mjs';

const shared = fileScope();
let mocks; // blue, green
const haveEtcd = existsSync(ETCD_BIN);
const skip = haveEtcd ? false : `no etcd at ${ETCD_BIN} (Debian package etcd-server; scripts/install-deps.sh)`;

before(async () => {
  mocks = await Promise.all(['fleet-blue', 'fleet-green'].map((name) => shared.mock({ name })));
});

function fleetConfig(endpoint, { prefix = '/turnout-test/', stateFile, rollout } = {}) {
  return buildConfig({
    status: true,
    proxy: stateFile ? { state_file: stateFile } : {},
    upstreams: [{
      name: 'mcp',
      pools: [
        { name: 'blue', weight: 100, backends: [mocks[0].addr] },
        { name: 'green', weight: 0, backends: [mocks[1].addr] },
      ],
      rollout,
    }],
  }) + `[runtime]\nstore = "etcd"\netcd_endpoints = ["${endpoint}"]\netcd_prefix = "${prefix}"\n`;
}

async function startInstance(s, endpoint, opts) {
  const tn = await s.turnout({ configText: fleetConfig(endpoint, opts), status: true });
  await waitAdmin(tn);
  return tn;
}

const storeIs = (connected) => (st) => st.store?.kind === 'etcd' && st.store.connected === connected;
const weightsAre = (w) => (st) => JSON.stringify(weightsIn(st)) === JSON.stringify(w);

async function waitConnected(tns, connected = true) {
  await Promise.all(tns.map((tn) => waitStatus(tn, storeIs(connected), 10000, `store.connected = ${connected}`)));
}

async function storeMetric(tn) {
  const r = await statusGet(tn, '/metrics');
  return metricValue(parseMetrics(r.text()), 'turnout_store_connected');
}

const putWeights = (tn, w) => admin(tn, 'PUT', '/v1/upstreams/mcp/weights', w);

itest('a file store says so in status and metrics', { skip: false }, async (t, s) => {
  const tn = await s.turnout({ status: true, backends: [mocks[0].addr] });
  await waitAdmin(tn);
  assert.deepEqual((await status(tn)).store, { kind: 'file', connected: true });
  assert.equal(await storeMetric(tn), 1);
});

itest('three instances on one etcd: a change through one is in force on all within a second', { skip, timeout: 60000 }, async (t, s) => {
  const etcd = new Etcd(s);
  await etcd.start();
  const fleet = await Promise.all([0, 1, 2].map(() => startInstance(s, etcd.endpoint)));
  await waitConnected(fleet);
  assert.deepEqual((await status(fleet[0])).store, { kind: 'etcd', connected: true });
  assert.equal(await storeMetric(fleet[1]), 1);

  const r = await putWeights(fleet[0], { blue: 70, green: 30 });
  assert.equal(r.status, 200, r.text);
  // SPEC: "every instance ... applies committed changes within one second" (the watch pushes
  // them; this waits for the state, the bound is the SPEC's).
  await Promise.all(fleet.map((tn) => waitStatus(tn, weightsAre({ blue: 70, green: 30 }), 1000, 'the weights of the change')));

  // A switch through the third: new sessions through the first go to green.
  const sw = await admin(fleet[2], 'POST', '/v1/upstreams/mcp/switch', { pool: 'green', force: true });
  assert.equal(sw.status, 200, sw.text);
  // (switch keeps green's weight and sets the others to 0)
  await Promise.all(fleet.map((tn) => waitStatus(tn, weightsAre({ blue: 0, green: 30 }), 1000, 'the switch')));
  assert.deepEqual(tally(await openSessions(fleet[0].port, 4)), { 'fleet-green': 4 });

  // The state in etcd is the state file's JSON under PREFIX "state".
  const stored = JSON.parse(await etcd.ctl('get', '/turnout-test/state', '--print-value-only'));
  assert.deepEqual(stored.upstreams[0].pools.map((p) => [p.name, p.weight]), [['blue', 0], ['green', 30]]);
});

itest('concurrent changes through two instances: one wins, the other gets 409, none is lost', { skip, timeout: 60000 }, async (t, s) => {
  const etcd = new Etcd(s);
  await etcd.start();
  // The first two reach etcd through relays that hold their watch streams back: each decides
  // from the same revision, so their compare-and-swaps meet for certain.
  const relays = await Promise.all([0, 1].map(() => etcdRelay(s, etcd.clientPort)));
  const fleet = [
    await startInstance(s, relays[0].endpoint),
    await startInstance(s, relays[1].endpoint),
    await startInstance(s, etcd.endpoint),
  ];
  await waitConnected(fleet);
  for (const r of relays) r.hold();

  const changes = [{ blue: 60, green: 40 }, { blue: 20, green: 80 }];
  const answers = await Promise.all([putWeights(fleet[0], changes[0]), putWeights(fleet[1], changes[1])]);
  const codes = answers.map((a) => a.status).sort();
  assert.deepEqual(codes, [200, 409], `one wins, one conflicts: ${answers.map((a) => `${a.status} ${a.text}`).join(' | ')}`);
  const winner = answers.findIndex((a) => a.status === 200);
  const loser = 1 - winner;
  assert.match(answers[loser].json().error, /changed by another instance; retry/);
  for (const r of relays) r.release();

  // The winner's change is in force everywhere; the refused one changed nothing anywhere.
  await Promise.all(fleet.map((tn) => waitStatus(tn, weightsAre(changes[winner]), 2000, 'the winning change')));
  // The caller retries; the retry is computed from the winner's state and goes through.
  const retry = await putWeights(fleet[loser], changes[loser]);
  assert.equal(retry.status, 200, retry.text);
  await Promise.all(fleet.map((tn) => waitStatus(tn, weightsAre(changes[loser]), 1000, 'the retried change')));
  // Both are in the history: the retry's rollback point is the winner's weights.
  const rb = await admin(fleet[2], 'POST', '/v1/upstreams/mcp/rollback');
  assert.equal(rb.status, 200, rb.text);
  await Promise.all(fleet.map((tn) => waitStatus(tn, weightsAre(changes[winner]), 1000, 'the rollback to the winner')));
});

itest('etcd stopped: all keep serving the last state, changes answer 503; restarted: caught up', { skip, timeout: 90000 }, async (t, s) => {
  const etcd = new Etcd(s);
  await etcd.start();
  const relay = await etcdRelay(s, etcd.clientPort); // the third instance's way to etcd
  const fleet = [
    await startInstance(s, etcd.endpoint),
    await startInstance(s, etcd.endpoint),
    await startInstance(s, relay.endpoint),
  ];
  await waitConnected(fleet);
  assert.equal((await putWeights(fleet[0], { blue: 0, green: 100 })).status, 200);
  await Promise.all(fleet.map((tn) => waitStatus(tn, weightsAre({ blue: 0, green: 100 }), 1000, 'the change')));

  await etcd.stop();
  await waitConnected(fleet, false);
  for (const tn of fleet) {
    assert.equal(await storeMetric(tn), 0);
    const r = await putWeights(tn, { blue: 50, green: 50 });
    assert.equal(r.status, 503, r.text);
    assert.match(r.json().error, /etcd/);
    // Serving with the last state: new sessions go to green.
    assert.deepEqual(tally(await openSessions(tn.port, 2)), { 'fleet-green': 2 });
    assert.deepEqual(weightsIn(await status(tn)), { blue: 0, green: 100 });
  }

  await etcd.start();
  await waitConnected(fleet);
  assert.equal(await storeMetric(fleet[0]), 1);

  // Caught up: the third is cut off from a running etcd while the others change the state
  // several times, and the revisions it missed are compacted away.
  relay.cut();
  await waitConnected([fleet[2]], false);
  for (const w of [{ blue: 10, green: 90 }, { blue: 30, green: 70 }, { blue: 40, green: 60 }])
    assert.equal((await putWeights(fleet[1], w)).status, 200);
  const rev = JSON.parse(await etcd.ctl('get', '/turnout-test/state', '-w', 'json')).header.revision;
  await etcd.ctl('compact', String(rev));
  assert.deepEqual(weightsIn(await status(fleet[2])), { blue: 0, green: 100 }, 'cut off, it still serves what it had');
  relay.mend();
  await waitConnected([fleet[2]]);
  await waitStatus(fleet[2], weightsAre({ blue: 40, green: 60 }), 1000, 'caught up on reconnect');
  // And it commits from the caught-up revision.
  assert.equal((await putWeights(fleet[2], { blue: 100, green: 0 })).status, 200);
  await Promise.all(fleet.map((tn) => waitStatus(tn, weightsAre({ blue: 100, green: 0 }), 1000, 'a change after catching up')));
});

itest('an instance started while etcd is down serves from its cached state', { skip, timeout: 60000 }, async (t, s) => {
  const etcd = new Etcd(s);
  await etcd.start();
  const stateFile = path.join(tempDir(s), 'cache.state.json');
  const first = await startInstance(s, etcd.endpoint, { stateFile });
  await waitConnected([first]);
  assert.equal((await putWeights(first, { blue: 0, green: 100 })).status, 200);
  await first.stop();
  await etcd.stop();

  const again = await startInstance(s, etcd.endpoint, { stateFile });
  const st = await status(again);
  assert.deepEqual(st.store, { kind: 'etcd', connected: false });
  assert.deepEqual(weightsIn(st), { blue: 0, green: 100 });
  assert.deepEqual(tally(await openSessions(again.port, 2)), { 'fleet-green': 2 });
  assert.equal((await putWeights(again, { blue: 100, green: 0 })).status, 503);

  await etcd.start();
  await waitConnected([again]);
  assert.equal((await putWeights(again, { blue: 100, green: 0 })).status, 200);
});

itest('a rollout in a fleet: the leader drives it, every instance follows it, each step is taken once', { skip, timeout: 90000 }, async (t, s) => {
  const etcd = new Etcd(s);
  await etcd.start();
  const rollout = { steps: ['10:600ms', '50:600ms', '100'], interval: '200ms', min_requests: 2, failure_limit: 2 };
  const fleet = [await startInstance(s, etcd.endpoint, { rollout }), await startInstance(s, etcd.endpoint, { rollout })];
  await waitConnected(fleet);
  let running = true;
  const traffic = (async () => {
    while (running) await openSessions(fleet[0].port, 4).catch(() => null);
  })();
  try {
    const r = await admin(fleet[0], 'POST', '/v1/upstreams/mcp/rollout', { pool: 'green' });
    assert.equal(r.status, 200, r.text);
    for (const tn of fleet) {
      const done = await waitStatus(tn, (st) => st.upstreams[0].rollout?.state !== 'running', 60000, 'the rollout to end');
      const ro = done.upstreams[0].rollout;
      assert.equal(ro.state, 'succeeded', JSON.stringify(ro.history, null, 1));
      const steps = ro.history.filter((e) => e.event === 'step').map((e) => e.detail.match(/(\d+)%$/)[1]);
      assert.deepEqual(steps, ['10', '50', '100'], 'every step once, in order');
      assert.deepEqual(weightsIn(done), { blue: 0, green: 100 });
    }
  } finally {
    running = false;
    await traffic;
  }
});
