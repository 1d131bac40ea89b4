// Fleets, second part (SPEC.md "Fleets", issue 16): rollouts led by one instance (an etcd
// lease elects it), judged on the whole fleet's figures (each instance publishes its counts,
// the leader sums them); a new leader when the leader dies, resuming the step; the store's
// state in the systemd STATUS line; TLS and etcd's authentication toward etcd. A real etcd
// (Debian's etcd-server) on loopback, real SDK servers and clients. Leases of 4 s: etcd's
// raft writes (a grant, a campaign) take up to seconds on a busy machine's disk.

import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { before } from 'node:test';
import { buildConfig, fileScope, itest, sleep, tempDir } from './support/harness.mjs';
import { Etcd, ETCD_BIN } from './support/etcd.mjs';
import { startNotifySink } from './support/notify_sink.mjs';
import { streamableClient } from './support/session_helpers.mjs';
import { makeCa, makeLeaf } from './support/tls_helpers.mjs';
import {
  admin, parseMetrics, status, statusGet, upstreamIn, waitAdmin, waitStatus, weightsIn,
} from './support/control_helpers.mjs';

const shared = fileScope();
let stable; // the baseline: answers well
let broken; // tool calls fail 30 % of the time
let good; // a healthy canary
const haveEtcd = existsSync(ETCD_BIN);
const skip = haveEtcd ? false : `no etcd at ${ETCD_BIN} (Debian package etcd-server; scripts/install-deps.sh)`;

before(async () => {
  [stable, broken, good] = await Promise.all([
    shared.sdkServer({ name: 'fr-stable' }),
    shared.sdkServer({ name: 'fr-broken', toolErrorRatio: 0.3 }),
    shared.sdkServer({ name: 'fr-good' }),
  ]);
});

function runtimeToml(endpoint, { name, ttl = '4s', extra = '' } = {}) {
  return `[runtime]\nstore = "etcd"\netcd_endpoints = ["${endpoint}"]\netcd_prefix = "/turnout-fleet/"\n` +
    `etcd_lease_ttl = "${ttl}"\n${name ? `instance_name = "${name}"\n` : ''}${extra}`;
}

function fleetConfig(endpoint, { canary = good, rollout, name, extra } = {}) {
  return buildConfig({
    status: true,
    upstreams: [{
      name: 'mcp',
      pools: [
        { name: 'blue', weight: 100, backends: [stable.addr] },
        { name: 'green', weight: 0, backends: [canary.addr] },
      ],
      rollout,
    }],
  }) + runtimeToml(endpoint, { name, extra });
}

async function startInstance(s, endpoint, opts = {}) {
  const tn = await s.turnout({ configText: fleetConfig(endpoint, opts), status: true, env: opts.env });
  await waitAdmin(tn);
  tn.name = opts.name;
  return tn;
}

const connected = (st) => st.store?.kind === 'etcd' && st.store.connected === true;

/** Waits until every instance is connected and all name the same leader; resolves with its index. */
async function electedLeader(fleet, what = 'one leader') {
  const seen = await Promise.all(fleet.map((tn) =>
    waitStatus(tn, (st) => connected(st) && Boolean(st.fleet?.leader), 15000, `${what}: a leader known`)));
  const leaders = new Set(seen.map((st) => st.fleet.leader));
  assert.equal(leaders.size, 1, `all name the same leader: ${[...leaders]}`);
  const [leader] = leaders;
  const index = fleet.findIndex((tn) => tn.name === leader);
  assert.ok(index >= 0, `the leader ${leader} is one of the fleet`);
  // Its own answer to the election may come a moment after the others saw its key.
  await waitStatus(fleet[index], (st) => st.fleet.leading, 5000, `${leader} says it leads`);
  for (const [i, tn] of fleet.entries())
    if (i !== index) assert.equal((await status(tn)).fleet.leading, false, `${tn.name} does not lead`);
  return index;
}

/** New SDK sessions, back to back, each making three tool calls, through each of ports. */
function trafficThrough(s, ports) {
  let running = true;
  s.defer(() => {
    running = false;
  });
  const loops = ports.map(async (port) => {
    while (running) {
      try {
        const c = await streamableClient(null, port, { name: 'fr-traffic' });
        for (let i = 0; i < 3; i++) await c.client.callTool({ name: 'echo', arguments: { text: 'x' } }, undefined, { timeout: 5000 });
        await c.client.close();
      } catch {
        await sleep(20); // an instance killed by the test, a canary drained: carry on
      }
    }
  });
  return {
    async stop() {
      running = false;
      await Promise.all(loops);
    },
  };
}

async function backendRequests(tn, backend) {
  const r = await statusGet(tn, '/metrics');
  return parseMetrics(r.text()).samples
    .filter((m) => m.name === 'turnout_backend_requests_total' && m.labels.backend === backend.addr)
    .reduce((sum, m) => sum + m.value, 0);
}

const rolloutOf = (st) => upstreamIn(st).rollout;
const stepsIn = (r) => r.history.filter((e) => e.event === 'step').map((e) => e.detail.match(/(\d+)%$/)[1]);

itest('one leader: a rollout judged on the figures of the instances that carry the load rolls back a failing canary', { skip, timeout: 90000 }, async (t, s) => {
  const etcd = new Etcd(s);
  await etcd.start();
  const rollout = { steps: ['20:5s', '100'], interval: '300ms', min_requests: 5, failure_limit: 2, rollback_drain: '500ms' };
  const names = ['fleet-a', 'fleet-b', 'fleet-c'];
  const fleet = await Promise.all(names.map((name) => startInstance(s, etcd.endpoint, { canary: broken, rollout, name })));
  const leaderIndex = await electedLeader(fleet);
  const leader = fleet[leaderIndex];
  const others = fleet.filter((_, i) => i !== leaderIndex);
  // The leader key in etcd names it, attached to a lease.
  assert.equal((await etcd.ctl('get', '/turnout-fleet/leader', '--print-value-only')).trim(), leader.name);

  // All the load through the two that do not lead: the leader forwards nothing itself, so only
  // the figures the others publish can fail the canary.
  const traffic = trafficThrough(s, others.map((tn) => tn.port));
  try {
    const started = await admin(others[0], 'POST', '/v1/upstreams/mcp/rollout', { pool: 'green' });
    assert.equal(started.status, 200, started.text);
    for (const tn of fleet) {
      const ended = await waitStatus(tn, (st) => rolloutOf(st)?.state !== 'running', 60000, 'the rollout to end');
      const r = rolloutOf(ended);
      assert.equal(r.state, 'rolled_back', JSON.stringify(r.history, null, 1));
      assert.match(r.reason, /failed intervals in a row/);
      assert.ok(r.last.canary.requests >= 5 && r.last.canary.error_rate > 0.01, JSON.stringify(r.last));
      assert.deepEqual(weightsIn(ended), { blue: 100, green: 0 });
    }
  } finally {
    await traffic.stop();
  }
  assert.equal(await backendRequests(leader, broken), 0, 'the leader forwarded nothing to the canary itself');
  assert.ok(await backendRequests(others[0], broken) + await backendRequests(others[1], broken) > 0);
  // Every instance published its figures under the prefix, each with its lease.
  const published = await etcd.ctl('get', '/turnout-fleet/figures/', '--prefix', '--keys-only');
  for (const name of names) assert.match(published, new RegExp(`/turnout-fleet/figures/${name}`));
});

itest('the leader killed mid-rollout: another takes over within the lease TTL and resumes the step', { skip, timeout: 90000 }, async (t, s) => {
  const etcd = new Etcd(s);
  await etcd.start();
  const rollout = { steps: ['20:1s', '60:8s', '100'], interval: '250ms', min_requests: 2, failure_limit: 3 };
  const names = ['fleet-x', 'fleet-y', 'fleet-z'];
  const fleet = await Promise.all(names.map((name) => startInstance(s, etcd.endpoint, { rollout, name })));
  const leaderIndex = await electedLeader(fleet);
  const leader = fleet[leaderIndex];
  const survivors = fleet.filter((_, i) => i !== leaderIndex);
  const traffic = trafficThrough(s, fleet.map((tn) => tn.port));
  try {
    assert.equal((await admin(survivors[0], 'POST', '/v1/upstreams/mcp/rollout', { pool: 'green' })).status, 200);
    // Step 2 reached under the first leader; then it dies without a word (no revoke).
    await waitStatus(survivors[0], (st) => rolloutOf(st) && stepsIn(rolloutOf(st)).includes('60'), 30000, 'step 2');
    await leader.stop('SIGKILL', 100);

    await Promise.all(survivors.map((tn) =>
      waitStatus(tn, (st) => st.fleet.leader !== leader.name, 15000, 'the dead leader forgotten')));
    const nextIndex = await electedLeader(survivors, 'a new leader');
    assert.notEqual(survivors[nextIndex].name, leader.name);
    const r = rolloutOf(await status(survivors[nextIndex]));
    assert.equal(r.state, 'running', 'the rollout was still at step 2 when the leader changed');
    assert.deepEqual(stepsIn(r), ['20', '60'], 'at step 2, not back at step 1');

    for (const tn of survivors) {
      const ended = await waitStatus(tn, (st) => rolloutOf(st)?.state !== 'running', 30000, 'the rollout to end');
      const r = rolloutOf(ended);
      assert.equal(r.state, 'succeeded', JSON.stringify(r.history, null, 1));
      assert.deepEqual(stepsIn(r), ['20', '60', '100'], 'each step once: the new leader resumed step 2, it did not restart it');
      assert.deepEqual(weightsIn(ended), { blue: 0, green: 100 });
    }
  } finally {
    await traffic.stop();
  }
  // The dead leader's lease ended: its figures went with it.
  const published = await etcd.ctl('get', '/turnout-fleet/figures/', '--prefix', '--keys-only');
  assert.doesNotMatch(published, new RegExp(`figures/${leader.name}\\b`));
});

itest('the systemd STATUS line says the store state: connected (and leading), then disconnected', { skip, timeout: 60000 }, async (t, s) => {
  const etcd = new Etcd(s);
  await etcd.start();
  const sink = await startNotifySink(s);
  await startInstance(s, etcd.endpoint, { name: 'fleet-notify', env: { NOTIFY_SOCKET: sink.name } });
  const up = await sink.waitFor((f) => /; store etcd connected, leading the rollouts$/.test(f.STATUS ?? ''),
    { timeout: 15000, what: 'STATUS= with the store connected' });
  assert.match(up.fields.STATUS, /^serving: /);
  await etcd.stop();
  await sink.waitFor((f) => /; store etcd disconnected \(serving cached state\)$/.test(f.STATUS ?? ''),
    { from: up.index + 1, timeout: 15000, what: 'STATUS= with the store disconnected' });
});

itest('TLS toward etcd: https endpoint, the CA and a client certificate; without the certificate etcd refuses', { skip, timeout: 60000 }, async (t, s) => {
  const dir = tempDir(s);
  const ca = makeCa(dir, 'etcd-ca');
  // etcd's gateway also dials etcd itself with the server certificate: it must do client auth too.
  const server = makeLeaf(dir, ca, 'etcd-server', 'etcd', 'DNS:localhost,IP:127.0.0.1', 'serverAuth,clientAuth');
  const client = makeLeaf(dir, ca, 'etcd-client', 'turnout', 'DNS:turnout', 'clientAuth');
  const etcd = new Etcd(s, { tls: { ca, server, client } });
  await etcd.start();
  const files = `etcd_ca_file = "${ca.cert}"\netcd_cert_file = "${client.cert}"\netcd_key_file = "${client.key}"\n`;
  const tn = await startInstance(s, etcd.endpoint, { name: 'fleet-tls', extra: files });
  await waitStatus(tn, connected, 15000, 'connected over TLS');
  const r = await admin(tn, 'PUT', '/v1/upstreams/mcp/weights', { blue: 30, green: 70 });
  assert.equal(r.status, 200, r.text);
  const stored = JSON.parse(await etcd.ctl('get', '/turnout-fleet/state', '--print-value-only'));
  assert.deepEqual(stored.upstreams[0].pools.map((p) => [p.name, p.weight]), [['blue', 30], ['green', 70]]);
  await waitStatus(tn, (st) => st.fleet?.leading, 15000, 'leading over TLS (lease and election)');

  const without = await startInstance(s, etcd.endpoint, { name: 'fleet-nocert', extra: `etcd_ca_file = "${ca.cert}"\n` });
  await without.child.waitForMatches(/etcd: etcd at 127\.0\.0\.1:\d+: /, { timeout: 10000 });
  const st = await status(without);
  assert.deepEqual(st.store, { kind: 'etcd', connected: false });
  assert.equal((await admin(without, 'PUT', '/v1/upstreams/mcp/weights', { blue: 100, green: 0 })).status, 503);
});

itest('etcd authentication: a user and a password file; a wrong password is refused', { skip, timeout: 60000 }, async (t, s) => {
  const etcd = new Etcd(s);
  await etcd.start();
  await etcd.ctl('user', 'add', 'root:rootpw');
  await etcd.ctl('auth', 'enable');
  etcd.user = 'root:rootpw';
  const dir = tempDir(s);
  const password = path.join(dir, 'etcd.password');
  writeFileSync(password, 'rootpw\n');
  const wrong = path.join(dir, 'wrong.password');
  writeFileSync(wrong, 'nope\n');

  const tn = await startInstance(s, etcd.endpoint, {
    name: 'fleet-auth', extra: `etcd_username = "root"\netcd_password_file = "${password}"\n`,
  });
  await waitStatus(tn, connected, 15000, 'connected with a token');
  const r = await admin(tn, 'PUT', '/v1/upstreams/mcp/weights', { blue: 10, green: 90 });
  assert.equal(r.status, 200, r.text);
  const stored = JSON.parse(await etcd.ctl('get', '/turnout-fleet/state', '--print-value-only'));
  assert.deepEqual(stored.upstreams[0].pools.map((p) => [p.name, p.weight]), [['blue', 10], ['green', 90]]);
  await waitStatus(tn, (st) => st.fleet?.leading, 15000, 'leading with a token');

  const refused = await startInstance(s, etcd.endpoint, {
    name: 'fleet-wrong', extra: `etcd_username = "root"\netcd_password_file = "${wrong}"\n`,
  });
  await refused.child.waitForMatches(/etcd authentication as root: /, { timeout: 10000 });
  assert.deepEqual((await status(refused)).store, { kind: 'etcd', connected: false });
});
