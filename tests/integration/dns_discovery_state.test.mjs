// DNS discovery and runtime state (SPEC.md "Fleets", "Drain and connection accounting",
// "Runtime state"; issue 16): an operator drains one discovered address like any backend
// (`turnoutctl drain UPSTREAM POOL ADDR`), and it stays drained while DNS still lists it; an
// address that leaves its name ends its drain with it, so the same address handed later to
// another process starts undrained; and sessions pinned to discovered addresses survive a
// restart, because the names are resolved before the session table is restored — a silent
// resolver holds the start back by that bound (3 s) at most.
//
// Two backends share one port on 127.0.0.1 and 127.0.0.2 (an A record carries no port); the
// DNS server runs in this process (support/dns_server.mjs).

import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { itest, tempDir, waitUntil } from './support/harness.mjs';
import { startDnsServer } from './support/dns_server.mjs';
import { fastHealth, startHealthServer, sessionOn } from './support/health_helpers.mjs';
import { sessionRequest } from './support/session_helpers.mjs';
import { backendIn, ctl, openSessions, status, tally, waitStatus, discoveryOf, listedIn, startWithAdmin } from './support/control_helpers.mjs';

const NAME = 'mcp.test';

async function twoOnOnePort(s) {
  const a = await startHealthServer(s, { name: 'dst-a' });
  const b = await startHealthServer(s, { name: 'dst-b', listen: `127.0.0.2:${a.port}` });
  return { a, b, port: a.port };
}

function config(dns, backends, proxy = {}) {
  return {
    status: true,
    proxy: { resolver: dns.addr, dns_min_interval: '100ms', dns_max_interval: '500ms', ...proxy },
    upstreams: [{ name: 'mcp', pools: [{ name: 'blue', weight: 100, backends }], health: fastHealth() }],
  };
}

const start = startWithAdmin;
const listed = listedIn;
const bothHealthy = (a, b) => (st) => [a.addr, b.addr].every((x) => listed(st, x) && backendIn(st, x).healthy);

/** The drains the state file holds for mcp/blue (addresses). */
function drainsInStateFile(file) {
  const state = JSON.parse(readFileSync(file, 'utf8'));
  const pool = state.upstreams.find((u) => u.name === 'mcp').pools.find((p) => p.name === 'blue');
  return (pool.drained_backends ?? []).map((d) => d.address);
}

itest('an operator drains one discovered address: no new sessions, its session kept, DNS listing it keeps it drained; undrain', async (t, s) => {
  const dns = await startDnsServer(s);
  const { a, b, port } = await twoOnOnePort(s);
  dns.set(NAME, 'A', ['127.0.0.1', '127.0.0.2'], 1);
  const name = `dns:${NAME}:${port}`;
  const tn = await start(s, config(dns, [name], { drain_timeout: '1h' }));
  await waitStatus(tn, bothHealthy(a, b), 10000, 'both found and healthy');
  const onB = await sessionOn(tn.port, b.name);

  const r = await ctl(tn, ['drain', 'mcp', 'blue', b.addr, '--timeout', '1h']);
  assert.equal(r.code, 0, `drain of a discovered address: ${r.stderr}`);
  assert.deepEqual(drainsInStateFile(path.join(tn.dir, 'turnout.state.json')), [b.addr], 'committed to the state file');

  // DNS keeps listing it, answer after answer: it stays drained, it does not join again.
  const asked = discoveryOf(await status(tn), name).resolutions;
  const st = await waitStatus(tn, (x) => discoveryOf(x, name).resolutions >= asked + 3, 10000, 'three more answers');
  assert.deepEqual(discoveryOf(st, name).addresses, [a.addr, b.addr]);
  assert.equal(backendIn(st, b.addr).draining, true);
  assert.ok(backendIn(st, b.addr).drain_deadline_ms > Date.now() + 3_000_000, 'its own timeout (1h)');
  assert.equal(backendIn(st, a.addr).draining, false);
  assert.deepEqual(tally(await openSessions(tn.port, 10)), { [a.name]: 10 }, 'no new session on the drained address');
  const kept = await sessionRequest(tn.port, onB.sid);
  assert.equal(kept.status, 200, `its session keeps working: ${kept.status} ${kept.text}`);
  assert.equal(kept.backend, b.name);

  const u = await ctl(tn, ['undrain', 'mcp', 'blue', b.addr]);
  assert.equal(u.code, 0, u.stderr);
  assert.equal(backendIn(await status(tn), b.addr).draining, false);
  await sessionOn(tn.port, b.name);

  // An address the pool does not list is still refused.
  const bad = await ctl(tn, ['drain', 'mcp', 'blue', '127.0.0.3:1']);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /has no backend '127\.0\.0\.3:1'/);
});

itest('a drained discovered address past its timeout retires while DNS lists it; once it leaves DNS its drain ends', async (t, s) => {
  const dns = await startDnsServer(s);
  const { a, b, port } = await twoOnOnePort(s);
  dns.set(NAME, 'A', ['127.0.0.1', '127.0.0.2'], 1);
  const name = `dns:${NAME}:${port}`;
  const tn = await start(s, config(dns, [name], { drain_timeout: '300ms' }));
  const stateFile = path.join(tn.dir, 'turnout.state.json');
  await waitStatus(tn, bothHealthy(a, b), 10000, 'both found and healthy');
  const onB = await sessionOn(tn.port, b.name);

  assert.equal((await ctl(tn, ['drain', 'mcp', 'blue', b.addr, '--timeout', '300ms'])).code, 0);
  let st = await waitStatus(tn, (x) => backendIn(x, b.addr).drain_expired, 10000, 'its drain over');
  assert.equal(listed(st, b.addr), true, 'DNS still lists it: it stays in the pool, retired');
  const over = await sessionRequest(tn.port, onB.sid);
  assert.equal(over.status, 404, `its session is over: ${over.status} ${over.text}`);
  assert.deepEqual(tally(await openSessions(tn.port, 6)), { [a.name]: 6 });

  // It leaves DNS: gone from the pool after the name's own drain, and its drain with it.
  dns.set(NAME, 'A', ['127.0.0.1'], 1);
  await waitStatus(tn, (x) => !listed(x, b.addr), 10000, 'b gone from the pool');
  await waitUntil(() => drainsInStateFile(stateFile).length === 0, 10000, 'the drain ended in the state file');

  // The address comes back (a new process there): it joins like any new one, undrained.
  dns.set(NAME, 'A', ['127.0.0.1', '127.0.0.2'], 1);
  st = await waitStatus(tn, (x) => listed(x, b.addr) && backendIn(x, b.addr).healthy, 10000, 'b back and healthy');
  assert.equal(backendIn(st, b.addr).draining, false);
  await sessionOn(tn.port, b.name);
});

itest('sessions pinned to discovered addresses survive a restart: names are resolved before the table is restored', { timeout: 60000 }, async (t, s) => {
  const dns = await startDnsServer(s);
  const { a, b, port } = await twoOnOnePort(s);
  dns.set(NAME, 'A', ['127.0.0.1', '127.0.0.2'], 30);
  const name = `dns:${NAME}:${port}`;
  const stateFile = path.join(tempDir(s), 'turnout.state.json');
  const opts = config(dns, [name], { state_file: stateFile });
  const tn = await start(s, opts);
  await waitStatus(tn, bothHealthy(a, b), 10000, 'both found and healthy');
  const sessions = [];
  for (const owner of [a, b, a, b]) sessions.push({ sid: (await sessionOn(tn.port, owner.name)).sid, owner: owner.name });

  tn.child.signal('SIGTERM');
  assert.equal((await tn.child.waitExit(10000)).code, 0, `turnout exited 0 after SIGTERM\n${tn.logs()}`);
  assert.ok(existsSync(`${stateFile}.sessions`) || existsSync(path.dirname(stateFile)), 'the table was saved');

  const again = await start(s, opts);
  await waitUntil(() => /restored \d+ of \d+ saved session/.test(again.logs()), 5000, 'the restore line');
  assert.match(again.logs(), /1 of 1 name\(s\) resolved before serving, 0 failed, 0 without an answer/);
  // Every saved session (sessionOn opened some more on the way) found its discovered backend.
  const [, restored, saved] = again.logs().match(/restored (\d+) of (\d+) saved session/);
  assert.equal(restored, saved, 'every saved session restored onto its discovered backend');
  assert.ok(Number(saved) >= sessions.length);
  for (const x of sessions) {
    const r = await sessionRequest(again.port, x.sid);
    assert.equal(r.status, 200, `session ${x.sid}: ${r.status} ${r.text}`);
    assert.equal(r.backend, x.owner, `session ${x.sid} kept its discovered backend across the restart`);
  }
});

itest('a silent resolver holds the start back by the bound at most, and the log says so', async (t, s) => {
  // A UDP socket that never answers: every query waits for c-ares' own timeout.
  const silent = dgram.createSocket('udp4');
  await new Promise((resolve, reject) => {
    silent.once('error', reject);
    silent.bind(0, '127.0.0.1', resolve);
  });
  s.defer(() => new Promise((resolve) => silent.close(resolve)));
  const name = `dns:${NAME}:1`;
  const tn = await start(s, { ...config({ addr: `127.0.0.1:${silent.address().port}` }, [name]), startTimeout: 15000 });
  // c-ares gives up after 1 s + 2 s (its two tries): a failure at the bound, or no answer yet.
  assert.match(tn.logs(),
    /DNS discovery: dns:mcp\.test:1 (did not answer within 3s at start-up|failed \(A mcp\.test: Timeout)/);
  const [, ms] = tn.logs().match(/0 of 1 name\(s\) resolved before serving, [01] failed, [01] without an answer \((\d+) ms\)/);
  assert.ok(Number(ms) >= 2900 && Number(ms) < 6000, `waited ${ms} ms for the first answers (bound 3s)`);
  const st = await status(tn);
  assert.equal(discoveryOf(st, name).ok, false, 'serving, the name not resolved');
});
