// Runtime traffic split (SPEC.md "Traffic split", "Admin socket"; issue 4): weights, switch,
// rollback and backend sets changed through the admin socket while real SDK clients hold
// sessions and GET streams. New sessions must land where the weights say; live sessions must
// stay on their owner with zero failed requests and working streams.
//
// The statistical check: with weights 90/10, the number of green sessions among n new ones is
// Binomial(n, 0.1) for any weighted-random balancer (a deterministic one does better). The
// accepted interval leaves at most 5e-7 in each tail, so a correct turnout fails it with
// probability < 1e-6; a balancer that ignores the weights (0 % or 50 %) fails it always.

import assert from 'node:assert/strict';
import { before } from 'node:test';
import { fileScope, itest } from './support/harness.mjs';
import { initialize, sessionRequest } from './support/session_helpers.mjs';
import {
  admin, assertStreamsDeliver, backendIn, binomialBounds, keepBusy, liveSession, openSessions, poolIn,
  rollback, setBackends, setWeights, status, switchTo, tally, upstreamIn, waitAdmin, waitStatus, weightsIn,
} from './support/control_helpers.mjs';

const shared = fileScope();
let mocks; // four C++ mocks
let sdk; // two SDK servers

before(async () => {
  [mocks, sdk] = await Promise.all([
    Promise.all([0, 1, 2, 3].map((i) => shared.mock({ name: `rct-m${i}` }))),
    Promise.all([0, 1].map((i) => shared.sdkServer({ name: `rct-sdk${i}` }))),
  ]);
});

function twoPools(blue, green, { blueWeight = 100, greenWeight = 0 } = {}) {
  const pools = [{ name: 'blue', weight: blueWeight, backends: blue.map((b) => b.addr) }];
  if (green) pools.push({ name: 'green', weight: greenWeight, backends: green.map((b) => b.addr) });
  return { upstreams: [{ name: 'mcp', pools }] };
}

async function start(s, opts) {
  const tn = await s.turnout(opts);
  await waitAdmin(tn);
  return tn;
}

/** `n` live SDK sessions whose GET streams are all open (status counts them). */
async function liveSessions(s, tn, n, owner) {
  const clients = await Promise.all(Array.from({ length: n }, () => liveSession(s, tn.port)));
  for (const c of clients) assert.equal(c.owner, owner.name, `live session ${c.sid} on ${owner.name}`);
  await waitStatus(tn, (st) => backendIn(st, owner.addr).streams === n, 5000, `${n} GET streams on ${owner.name}`);
  return clients;
}

function assertNoFailures(result, what) {
  assert.deepEqual(result.failures, [], `${what}: failed requests on live sessions`);
  assert.ok(result.calls > 0, `${what}: the live sessions made calls`);
}

itest('weights 90/10: new sessions split within the binomial bound; 100/0 and 0/100 are exact; old sessions stay', async (t, s) => {
  const [blue, green] = mocks;
  const tn = await start(s, twoPools([blue], [green]));
  const before = await openSessions(tn.port, 20);
  assert.deepEqual(tally(before), { [blue.name]: 20 }, 'weight 0: green takes no new session');

  const answer = await setWeights(tn, { blue: 90, green: 10 });
  assert.deepEqual(weightsIn({ upstreams: [answer] }), { blue: 90, green: 10 }, 'the answer shows the new weights');
  const n = 400;
  const { lo, hi } = binomialBounds(n, 0.1);
  const split = tally(await openSessions(tn.port, n));
  const greens = split[green.name] ?? 0;
  assert.equal((split[blue.name] ?? 0) + greens, n, `only blue and green: ${JSON.stringify(split)}`);
  assert.ok(greens >= lo && greens <= hi,
    `90/10 over ${n} new sessions: ${greens} on green, accepted ${lo}..${hi} (flake chance < 1e-6)`);

  await setWeights(tn, { blue: 0, green: 100 });
  assert.deepEqual(tally(await openSessions(tn.port, 50)), { [green.name]: 50 }, '0/100: every new session on green');
  await setWeights(tn, { blue: 100, green: 0 });
  assert.deepEqual(tally(await openSessions(tn.port, 50)), { [blue.name]: 50 }, '100/0: every new session on blue');

  // The sessions made before any change are still on their owner.
  for (const x of before) {
    const r = await sessionRequest(tn.port, x.sid);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.backend, x.owner);
  }
  const st = await status(tn);
  assert.equal(backendIn(st, green.addr).sessions, greens + 50, 'status: sessions pinned to green');
  assert.equal(backendIn(st, blue.addr).sessions, 20 + (n - greens) + 50, 'status: sessions pinned to blue');
});

itest('switch and rollback under live SDK sessions with GET streams: new sessions follow, live ones never fail', async (t, s) => {
  const [a, b] = sdk;
  const tn = await start(s, twoPools([a], [b]));
  const live = await liveSessions(s, tn, 6, a);
  const busy = keepBusy(live, { scope: s });

  const switched = await switchTo(tn, 'green');
  assert.deepEqual(weightsIn({ upstreams: [switched] }), { blue: 0, green: 100 });
  assert.deepEqual(tally(await openSessions(tn.port, 20)), { [b.name]: 20 }, 'after switch: every new session on green');
  await assertStreamsDeliver(live, assert);

  await rollback(tn);
  assert.deepEqual(weightsIn(await status(tn)), { blue: 100, green: 0 }, 'rollback restores the weights before the switch');
  assert.deepEqual(tally(await openSessions(tn.port, 10)), { [a.name]: 10 }, 'after rollback: new sessions on blue again');

  await rollback(tn);
  assert.deepEqual(weightsIn(await status(tn)), { blue: 0, green: 100 }, 'a second rollback undoes the first');
  assert.deepEqual(tally(await openSessions(tn.port, 10)), { [b.name]: 10 });

  // switch keeps a target's weight that is already > 0
  await setWeights(tn, { blue: 70, green: 30 });
  await switchTo(tn, 'blue');
  assert.deepEqual(weightsIn(await status(tn)), { blue: 70, green: 0 }, 'switch keeps the target pool\'s weight when > 0');

  await assertStreamsDeliver(live, assert);
  assertNoFailures(await busy.stop(), 'switch/rollback');
  const st = await status(tn);
  assert.equal(backendIn(st, a.addr).streams, 6, 'the live GET streams are all still open');
  for (const c of live) assert.deepEqual(c.errors.map(String), []);
});

itest('switch to a pool with no backend answers 409 and changes nothing; force switches; rollback recovers', async (t, s) => {
  const [a] = sdk;
  const tn = await start(s, twoPools([a]));
  const live = await liveSessions(s, tn, 2, a);
  const busy = keepBusy(live, { scope: s });

  const created = await setBackends(tn, 'empty', []);
  assert.equal(poolIn({ upstreams: [created] }, 'empty').weight, 0, 'a pool created at run time starts with weight 0');
  const refused = await admin(tn, 'POST', '/v1/upstreams/mcp/switch', { pool: 'empty', force: false });
  assert.equal(refused.status, 409, refused.text);
  assert.equal(typeof refused.json().error, 'string');
  const same = await admin(tn, 'POST', '/v1/upstreams/mcp/switch', { pool: 'empty' });
  assert.equal(same.status, 409, `force defaults to false: ${same.text}`);
  assert.deepEqual(weightsIn(await status(tn)), { blue: 100, empty: 0 }, 'a refused switch changes nothing');
  assert.deepEqual(tally(await openSessions(tn.port, 3)), { [a.name]: 3 });

  const forced = await admin(tn, 'POST', '/v1/upstreams/mcp/switch', { pool: 'empty', force: true });
  assert.equal(forced.status, 200, forced.text);
  assert.deepEqual(weightsIn(await status(tn)), { blue: 0, empty: 100 });
  const nothing = await initialize(tn.port);
  assert.equal(nothing.status, 503, `a new session with no backend at all: 503, got ${nothing.status} ${nothing.text}`);

  await rollback(tn);
  assert.deepEqual(weightsIn(await status(tn)), { blue: 100, empty: 0 });
  assert.deepEqual(tally(await openSessions(tn.port, 3)), { [a.name]: 3 }, 'after rollback new sessions work again');
  assertNoFailures(await busy.stop(), 'forced switch to an empty pool');
  await assertStreamsDeliver(live, assert);
});

itest('backends creates a green pool at run time, switch moves new sessions to it, live blue sessions keep working', async (t, s) => {
  const [a, b] = sdk;
  const tn = await start(s, twoPools([a]));
  const live = await liveSessions(s, tn, 4, a);
  const busy = keepBusy(live, { scope: s });

  const answer = await setBackends(tn, 'green', [b.addr]);
  const green = poolIn({ upstreams: [answer] }, 'green');
  assert.equal(green.weight, 0);
  assert.deepEqual(green.backends.map((x) => x.address), [b.addr]);
  assert.deepEqual(tally(await openSessions(tn.port, 10)), { [a.name]: 10 }, 'a new pool takes nothing before a switch');

  await switchTo(tn, 'green');
  assert.deepEqual(weightsIn(await status(tn)), { blue: 0, green: 100 });
  assert.deepEqual(tally(await openSessions(tn.port, 20)), { [b.name]: 20 }, 'after the switch every new session on green');
  // New SDK sessions on green work end to end, GET stream included.
  const fresh = await Promise.all([0, 1].map(() => liveSession(s, tn.port)));
  for (const c of fresh) assert.equal(c.owner, b.name);
  await assertStreamsDeliver([...live, ...fresh], assert);

  assertNoFailures(await busy.stop(), 'backends + switch');
  const st = await waitStatus(tn, (x) => backendIn(x, b.addr).streams === 2, 5000, 'the 2 green GET streams');
  assert.equal(backendIn(st, a.addr).streams, 4);
  assert.equal(backendIn(st, a.addr).sessions, 4 + 10);
  assert.equal(backendIn(st, b.addr).sessions, 20 + 2);
});

itest('backends replaces a pool\'s backend set: new sessions go only to the new set', async (t, s) => {
  const [m0, m1, m2, m3] = mocks;
  const tn = await start(s, twoPools([m0], [m1], { blueWeight: 0, greenWeight: 100 }));
  assert.deepEqual(tally(await openSessions(tn.port, 10)), { [m1.name]: 10 });

  await setBackends(tn, 'green', [m2.addr, m3.addr]);
  const st = await status(tn);
  assert.deepEqual(poolIn(st, 'green').backends.map((x) => x.address).sort(), [m2.addr, m3.addr].sort());
  assert.equal(poolIn(st, 'green').weight, 100, 'replacing the backends keeps the pool\'s weight');
  const split = tally(await openSessions(tn.port, 40));
  assert.deepEqual(Object.keys(split).sort(), [m2.name, m3.name].sort(), `only the new set, both used: ${JSON.stringify(split)}`);
  assert.equal(upstreamIn(st).pools.length, 2);
});
