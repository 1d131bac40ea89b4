// DNS discovery (SPEC.md "Fleets", issue 16): backends written dns:NAME:PORT (A/AAAA) or
// srv:_service._proto.NAME, asked of a DNS server in this process (support/dns_server.mjs,
// UDP on loopback, [proxy] resolver) whose answers the tests change: a new address joins
// unhealthy until its probes pass; a vanished one drains (its sessions keep working) and
// leaves at drain_timeout; names are asked again at their TTL, bounded by dns_min_interval and
// dns_max_interval; SRV records' ports are used, and only the targets of the lowest priority
// value that yields an address (RFC 2782); a failing resolver keeps the last good set and says
// so (status "discovery", metrics). Operator drains and restarts: dns_discovery_state.test.mjs.
//
// Several backends share one port on different loopback addresses (127.0.0.1, 127.0.0.2):
// an A record carries no port.

import assert from 'node:assert/strict';
import { itest, waitUntil } from './support/harness.mjs';
import { startDnsServer } from './support/dns_server.mjs';
import { fastHealth, startHealthServer, sessionOn } from './support/health_helpers.mjs';
import { initialize, sessionRequest } from './support/session_helpers.mjs';
import {
  backendIn, metricValue, openSessions, parseMetrics, status, statusGet, tally, waitStatus, discoveryOf, listedIn, startWithAdmin,
} from './support/control_helpers.mjs';

const NAME = 'mcp.test';

/** Two health servers on one port: a on 127.0.0.1, b on 127.0.0.2; b starts in `bMode`. */
async function twoOnOnePort(s, bMode = 'ok') {
  const a = await startHealthServer(s, { name: 'dns-a' });
  const b = await startHealthServer(s, { name: 'dns-b', listen: `127.0.0.2:${a.port}` });
  if (bMode !== 'ok') await b.setMode(bMode);
  return { a, b, port: a.port };
}

function config(dns, backends, { proxy = {}, health = fastHealth() } = {}) {
  return {
    status: true,
    proxy: { resolver: dns.addr, dns_min_interval: '100ms', dns_max_interval: '500ms', ...proxy },
    upstreams: [{ name: 'mcp', pools: [{ name: 'blue', weight: 100, backends }], health }],
  };
}

const start = startWithAdmin;
const listed = listedIn;

itest('a new address joins unhealthy and takes sessions only once its probes pass', async (t, s) => {
  const dns = await startDnsServer(s);
  const { a, b, port } = await twoOnOnePort(s, 'broken-init');
  dns.set(NAME, 'A', ['127.0.0.1'], 1);
  const name = `dns:${NAME}:${port}`;
  const tn = await start(s, config(dns, [name]));
  await waitStatus(tn, (st) => listed(st, a.addr) && backendIn(st, a.addr).healthy, 10000, 'a found and healthy');

  dns.set(NAME, 'A', ['127.0.0.1', '127.0.0.2'], 1);
  const st = await waitStatus(tn, (x) => listed(x, b.addr), 10000, 'b found');
  assert.deepEqual(discoveryOf(st, name).addresses, [a.addr, b.addr]);
  // b fails its probes (initialize answers 500): it must never have been healthy.
  await waitStatus(tn, (x) => backendIn(x, b.addr).health.probed && !backendIn(x, b.addr).health.last_ok, 10000,
    'b probed and failing');
  assert.equal(backendIn(await status(tn), b.addr).healthy, false);
  assert.deepEqual(tally(await openSessions(tn.port, 10)), { [a.name]: 10 }, 'no session on an unverified backend');

  await b.setMode('ok');
  await waitStatus(tn, (x) => backendIn(x, b.addr).healthy, 10000, 'b healthy once its probes pass');
  await sessionOn(tn.port, b.name);
});

itest('a vanished address drains: no new sessions, its session keeps working', async (t, s) => {
  const dns = await startDnsServer(s);
  const { a, b, port } = await twoOnOnePort(s);
  dns.set(NAME, 'A', ['127.0.0.1', '127.0.0.2'], 1);
  const name = `dns:${NAME}:${port}`;
  const tn = await start(s, config(dns, [name], { proxy: { drain_timeout: '1h' } }));
  await waitStatus(tn, (st) => [a.addr, b.addr].every((x) => listed(st, x) && backendIn(st, x).healthy), 10000,
    'both found and healthy');
  const onB = await sessionOn(tn.port, b.name);

  dns.set(NAME, 'A', ['127.0.0.1'], 1);
  const st = await waitStatus(tn, (x) => backendIn(x, b.addr).draining, 10000, 'b draining');
  const entry = discoveryOf(st, name);
  assert.deepEqual(entry.addresses, [a.addr]);
  assert.equal(entry.leaving.length, 1);
  assert.equal(entry.leaving[0].address, b.addr);
  assert.ok(entry.leaving[0].deadline_unix_ms > Date.now() + 3_000_000, 'drained for drain_timeout (1h)');

  assert.deepEqual(tally(await openSessions(tn.port, 10)), { [a.name]: 10 }, 'no new session on the vanished backend');
  const again = await sessionRequest(tn.port, onB.sid);
  assert.equal(again.status, 200, `its session keeps working: ${again.status} ${again.text}`);
  assert.equal(again.backend, b.name);

  // It comes back before its drain ends: it takes new sessions again.
  dns.set(NAME, 'A', ['127.0.0.1', '127.0.0.2'], 1);
  await waitStatus(tn, (x) => !backendIn(x, b.addr).draining, 10000, 'b back');
  await sessionOn(tn.port, b.name);
});

itest('a vanished address leaves at drain_timeout: its sessions then answer 404', async (t, s) => {
  const dns = await startDnsServer(s);
  const { a, b, port } = await twoOnOnePort(s);
  dns.set(NAME, 'A', ['127.0.0.1', '127.0.0.2'], 1);
  const tn = await start(s, config(dns, [`dns:${NAME}:${port}`], { proxy: { drain_timeout: '300ms' } }));
  await waitStatus(tn, (st) => listed(st, b.addr) && backendIn(st, b.addr).healthy, 10000, 'b found and healthy');
  const onB = await sessionOn(tn.port, b.name);

  dns.set(NAME, 'A', ['127.0.0.1'], 1);
  await waitStatus(tn, (x) => !listed(x, b.addr), 10000, 'b gone from the pool after its drain');
  const after = await sessionRequest(tn.port, onB.sid);
  assert.equal(after.status, 404, `its session is over: ${after.status} ${after.text}`);
  assert.equal((await initialize(tn.port)).backend, a.name);
});

itest('SRV records: each target on its own port', async (t, s) => {
  const dns = await startDnsServer(s);
  const [a, b] = await Promise.all([s.sdkServer({ name: 'srv-a' }), s.sdkServer({ name: 'srv-b' })]);
  dns.set('_mcp._tcp.mcp.test', 'SRV', [{ port: a.port, target: 'b1.mcp.test' }, { port: b.port, target: 'b2.mcp.test' }], 30);
  dns.set('b1.mcp.test', 'A', ['127.0.0.1'], 30);
  dns.set('b2.mcp.test', 'A', ['127.0.0.1'], 30);
  const name = 'srv:_mcp._tcp.mcp.test';
  const tn = await start(s, config(dns, [name], { health: { kind: 'none' } }));
  const st = await waitStatus(tn, (x) => listed(x, a.addr) && listed(x, b.addr), 10000, 'both targets found');
  assert.deepEqual(discoveryOf(st, name).addresses, [a, b].sort((x, y) => x.port - y.port).map((x) => x.addr));
  assert.equal(discoveryOf(st, name).ok, true);
  await sessionOn(tn.port, a.name);
  await sessionOn(tn.port, b.name);
});

itest('SRV priorities: only the lowest priority that yields an address; the next one when it yields none', async (t, s) => {
  const dns = await startDnsServer(s);
  const [a, b] = await Promise.all([s.sdkServer({ name: 'prio-a' }), s.sdkServer({ name: 'prio-b' })]);
  const SRV = '_mcp._tcp.prio.test';
  const primary = { port: a.port, target: 'p1.prio.test', priority: 10, weight: 1 };
  const standby = { port: b.port, target: 'p2.prio.test', priority: 20, weight: 100 };
  dns.set(SRV, 'SRV', [standby, primary], 1);
  dns.set('p1.prio.test', 'A', ['127.0.0.1'], 1);
  dns.set('p2.prio.test', 'A', ['127.0.0.1'], 1);
  const name = `srv:${SRV}`;
  const tn = await start(s, config(dns, [name], { proxy: { drain_timeout: '1h' }, health: { kind: 'none' } }));
  let st = await waitStatus(tn, (x) => discoveryOf(x, name).ok && listed(x, a.addr), 10000, 'the priority 10 target');
  const asked = discoveryOf(st, name).resolutions;
  st = await waitStatus(tn, (x) => discoveryOf(x, name).resolutions >= asked + 2, 10000, 'two more resolutions');
  assert.deepEqual(discoveryOf(st, name).addresses, [a.addr], 'the priority 20 target is a fallback only');
  assert.equal(listed(st, b.addr), false);
  assert.deepEqual(tally(await openSessions(tn.port, 10)), { [a.name]: 10 });

  // The priority 10 target resolves to nothing: the priority 20 one takes over, a drains.
  dns.set('p1.prio.test', 'A', [], 1);
  st = await waitStatus(tn, (x) => discoveryOf(x, name).addresses.includes(b.addr), 10000, 'the fallback used');
  assert.deepEqual(discoveryOf(st, name).addresses, [b.addr]);
  assert.deepEqual(discoveryOf(st, name).leaving.map((l) => l.address), [a.addr]);
  assert.deepEqual(tally(await openSessions(tn.port, 10)), { [b.name]: 10 });

  // It resolves again: back to priority 10 alone, b drains.
  dns.set('p1.prio.test', 'A', ['127.0.0.1'], 1);
  st = await waitStatus(tn, (x) => discoveryOf(x, name).addresses.includes(a.addr), 10000, 'priority 10 again');
  assert.deepEqual(discoveryOf(st, name).addresses, [a.addr]);
  assert.deepEqual(discoveryOf(st, name).leaving.map((l) => l.address), [b.addr]);

  // Its record withdrawn: priority 20 is now the lowest there is.
  dns.set(SRV, 'SRV', [standby], 1);
  st = await waitStatus(tn, (x) => discoveryOf(x, name).addresses.includes(b.addr), 10000, 'priority 10 withdrawn');
  assert.deepEqual(discoveryOf(st, name).addresses, [b.addr]);
});

itest('TTLs pace the queries: no sooner than the TTL, no later than dns_max_interval', async (t, s) => {
  const dns = await startDnsServer(s);
  const a = await s.sdkServer({ name: 'ttl-a' });
  const port = a.port;
  dns.set('slow.test', 'A', ['127.0.0.1'], 1);       // asked about every second
  dns.set('long.test', 'A', ['127.0.0.1'], 3600);    // bounded by dns_max_interval (1.5s)
  dns.set('zero.test', 'A', ['127.0.0.1'], 0);       // bounded by dns_min_interval (400ms)
  const opts = config(dns, [`dns:slow.test:${port}`, `dns:long.test:${port}`, `dns:zero.test:${port}`],
    { proxy: { dns_min_interval: '400ms', dns_max_interval: '1500ms' }, health: { kind: 'none' } });
  await start(s, opts);
  await waitUntil(() => dns.queries('slow.test', 'A').length >= 3 && dns.queries('zero.test', 'A').length >= 4 &&
    dns.queries('long.test', 'A').length >= 3, 15000, 'several rounds of queries');
  const gaps = (qs) => qs.slice(1).map((q, i) => q.at - qs[i].at);
  // Lower bounds only: a busy machine may be late, never early.
  for (const gap of gaps(dns.queries('slow.test', 'A'))) assert.ok(gap >= 900, `TTL 1s re-asked after ${gap} ms`);
  for (const gap of gaps(dns.queries('zero.test', 'A'))) assert.ok(gap >= 350, `TTL 0 re-asked after ${gap} ms (min 400ms)`);
  for (const gap of gaps(dns.queries('long.test', 'A'))) assert.ok(gap >= 1400, `TTL 3600 re-asked after ${gap} ms (max 1.5s)`);
});

itest('a failing resolver keeps the last good set and says so; it recovers', async (t, s) => {
  const dns = await startDnsServer(s);
  const a = await s.sdkServer({ name: 'fail-a' });
  dns.set(NAME, 'A', ['127.0.0.1'], 1);
  const name = `dns:${NAME}:${a.port}`;
  const tn = await start(s, config(dns, [name], { health: { kind: 'none' } }));
  await waitStatus(tn, (st) => discoveryOf(st, name).ok && listed(st, a.addr), 10000, 'a found');

  dns.failWith('servfail');
  let st = await waitStatus(tn, (x) => discoveryOf(x, name).error !== null, 10000, 'the failure in status');
  // c-ares (Debian 12's 1.18) reports a SERVFAIL from every server as "could not contact".
  assert.match(discoveryOf(st, name).error, /A mcp\.test: (DNS server returned general failure|Could not contact DNS servers)/);
  assert.equal(discoveryOf(st, name).ok, false);
  assert.deepEqual(discoveryOf(st, name).addresses, [a.addr], 'the last good set is kept');
  assert.equal(listed(st, a.addr), true);
  assert.equal(backendIn(st, a.addr).draining, false);
  assert.equal((await initialize(tn.port)).backend, a.name, 'and serves');
  const metrics = parseMetrics((await statusGet(tn, '/metrics')).text());
  assert.equal(metricValue(metrics, 'turnout_dns_resolution_ok', { name }), 0);
  assert.ok(metricValue(metrics, 'turnout_dns_failures_total', { name }) >= 1);

  // The server gone altogether: the same.
  dns.failWith(null);
  await waitStatus(tn, (x) => discoveryOf(x, name).ok, 10000, 'answers again');
  await dns.stop();
  st = await waitStatus(tn, (x) => !discoveryOf(x, name).ok, 15000, 'the server gone, in status');
  assert.deepEqual(discoveryOf(st, name).addresses, [a.addr]);
  assert.equal((await initialize(tn.port)).backend, a.name);

  await dns.start();
  st = await waitStatus(tn, (x) => discoveryOf(x, name).ok, 15000, 'back');
  assert.equal(discoveryOf(st, name).error, null);
  const back = parseMetrics((await statusGet(tn, '/metrics')).text());
  assert.equal(metricValue(back, 'turnout_dns_resolution_ok', { name }), 1);
});
