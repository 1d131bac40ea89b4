// DNS discovery and runtime state (SPEC.md "Fleets", "Drain and connection accounting",
// "Runtime state"; issue 16): an operator drains one discovered address like any backend
// (`turnoutctl drain UPSTREAM POOL ADDR`), and it stays drained while DNS still lists it; an
// address that leaves its name ends its drain with it, so the same address handed later to
// another process starts undrained.
//
// Two backends share one port on 127.0.0.1 and 127.0.0.2 (an A record carries no port); the
// DNS server runs in this process (support/dns_server.mjs).

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { itest, waitUntil } from './support/harness.mjs';
import { startDnsServer } from './support/dns_server.mjs';
import { fastHealth, startHealthServer, sessionOn } from './support/health_helpers.mjs';
import { sessionRequest } from './support/session_helpers.mjs';
import { backendIn, ctl, openSessions, poolIn, status, tally, waitAdmin, waitStatus } from './support/control_helpers.mjs';

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

async function start(s, opts) {
  const tn = await s.turnout(opts);
  await waitAdmin(tn);
  return tn;
}

const discoveryOf = (st, name) => st.discovery.names.find((n) => n.name === name);
const listed = (st, addr) => poolIn(st, 'blue').backends.some((b) => b.address === addr);
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

