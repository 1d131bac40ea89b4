// Draining one backend (SPEC.md "Drain and connection accounting", `turnoutctl drain|undrain
// UPSTREAM POOL ADDR`; issue 13): a drained backend takes no new sessions while its pinned
// sessions and streams keep working; after its timeout its streams close and its sessions
// answer 404, the rest of its pool untouched; undrain restores it; the drain is runtime state
// (state file, SIGHUP, reload, restart); bad input answers 4xx with one sentence.
// Against MCP SDK servers (support/sdk_server.mjs) on loopback.

import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { before } from 'node:test';
import { fileScope, itest, tempDir, waitUntil } from './support/harness.mjs';
import { initialize, openStream, reloadTurnout, sessionRequest } from './support/session_helpers.mjs';
import {
  SESSION_NOT_FOUND_BODY, admin, adminOk, backendIn, ctl, openSessions, poolIn, status, tally, waitAdmin, waitStatus,
} from './support/control_helpers.mjs';

const shared = fileScope();
let a; // the backend drained in every test
let b; // its sibling in pool blue

before(async () => {
  [a, b] = await Promise.all([shared.sdkServer({ name: 'bd-a' }), shared.sdkServer({ name: 'bd-b' })]);
});

const MCP_STREAM_HEADERS = { 'Mcp-Protocol-Version': '2025-06-18' };

function onePool(extraProxy) {
  return {
    proxy: extraProxy,
    upstreams: [{ name: 'mcp', pools: [{ name: 'blue', weight: 100, backends: [a.addr, b.addr] }] }],
  };
}

async function start(s, opts = onePool()) {
  const tn = await s.turnout(opts);
  await waitAdmin(tn);
  return tn;
}

const backendPath = (addr, pool = 'blue', u = 'mcp') => `/v1/upstreams/${u}/pools/${pool}/backends/${addr}`;
const drainBackend = (tn, addr, timeout) => adminOk(tn, 'POST', `${backendPath(addr)}/drain`, timeout ? { timeout } : undefined);
const undrainBackend = (tn, addr) => adminOk(tn, 'POST', `${backendPath(addr)}/undrain`);

/** A session on `owner` (new sessions until one lands there; bounded) with a GET stream of its own. */
async function streamSession(s, port, owner) {
  let init;
  for (let i = 0; i < 60 && init?.backend !== owner.name; i++) init = await initialize(port);
  assert.equal(init?.backend, owner.name, `no new session reached ${owner.name}`);
  const stream = await openStream(port, { headers: { 'Mcp-Session-Id': init.sid, ...MCP_STREAM_HEADERS }, scope: s });
  assert.equal(stream.status, 200, `GET stream of ${init.sid}: ${stream.status} ${stream.text()}`);
  assert.equal(stream.backend, owner.name);
  return { sid: init.sid, stream };
}

itest('a drained backend gets no new sessions; its session and stream keep working; undrain restores it', async (t, s) => {
  const tn = await start(s);
  const onA = await streamSession(s, tn.port, a);

  const r = await ctl(tn, ['drain', 'mcp', 'blue', a.addr, '--timeout', '1h']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), `mcp/blue backend ${a.addr}: draining (timeout 1h)`);

  const st = await status(tn);
  assert.equal(backendIn(st, a.addr).draining, true, 'status shows the backend draining');
  assert.equal(backendIn(st, a.addr).drain_expired, false);
  assert.ok(backendIn(st, a.addr).drain_deadline_ms > Date.now() + 3_000_000, 'an hour from now');
  assert.equal(backendIn(st, b.addr).draining, false, 'its sibling is not');
  assert.equal(poolIn(st, 'blue').draining, false, 'nor its pool');

  assert.deepEqual(tally(await openSessions(tn.port, 20)), { [b.name]: 20 }, 'no new session on the drained backend');
  const again = await sessionRequest(tn.port, onA.sid);
  assert.equal(again.status, 200, `its pinned session keeps working: ${again.status} ${again.text}`);
  assert.equal(again.backend, a.name);
  assert.equal(onA.stream.ended, false, 'its stream stays open');
  assert.equal(backendIn(await status(tn), a.addr).streams, 1);

  const u = await ctl(tn, ['undrain', 'mcp', 'blue', a.addr]);
  assert.equal(u.code, 0, u.stderr);
  assert.equal(u.stdout.trim(), `mcp/blue backend ${a.addr}: undrained`);
  const after = await status(tn);
  assert.equal(backendIn(after, a.addr).draining, false);
  assert.equal(backendIn(after, a.addr).drain_deadline_ms, undefined);
  // With the backend back, new sessions reach it again (P2C over two: 40 in a row elsewhere is 1e-12).
  const split = tally(await openSessions(tn.port, 40));
  assert.ok((split[a.name] ?? 0) > 0, `new sessions reach the undrained backend: ${JSON.stringify(split)}`);
  assert.equal(onA.stream.ended, false);
});

itest('past a backend drain\'s timeout its stream closes and its sessions answer 404; its sibling is untouched', async (t, s) => {
  const tn = await start(s);
  const onA = await streamSession(s, tn.port, a);
  const onB = await streamSession(s, tn.port, b);

  await drainBackend(tn, a.addr, '300ms');
  await waitUntil(() => onA.stream.ended, 10000, 'the drained backend\'s stream to be closed after the timeout');
  const gone = await sessionRequest(tn.port, onA.sid);
  assert.equal(gone.status, 404, `a session of the drained backend after the timeout: ${gone.status} ${gone.text}`);
  assert.deepEqual(JSON.parse(gone.text), SESSION_NOT_FOUND_BODY);

  const kept = await sessionRequest(tn.port, onB.sid);
  assert.equal(kept.status, 200, `the sibling's session: ${kept.status} ${kept.text}`);
  assert.equal(kept.backend, b.name);
  assert.equal(onB.stream.ended, false, 'the sibling\'s stream stays open');

  const st = await waitStatus(tn, (x) => backendIn(x, a.addr).sessions === 0 && backendIn(x, a.addr).streams === 0,
    10000, 'the drained backend holds nothing');
  assert.equal(backendIn(st, a.addr).draining, true);
  assert.equal(backendIn(st, a.addr).drain_expired, true);
  assert.equal(backendIn(st, b.addr).streams, 1);
  assert.deepEqual(tally(await openSessions(tn.port, 10)), { [b.name]: 10 }, 'still no new session on it');

  await undrainBackend(tn, a.addr);
  const split = tally(await openSessions(tn.port, 40));
  assert.ok((split[a.name] ?? 0) > 0, `undrain after the timeout restores it: ${JSON.stringify(split)}`);
  const fresh = await streamSession(s, tn.port, a);
  assert.equal((await sessionRequest(tn.port, fresh.sid)).status, 200);
});

itest('token affinity: past a backend drain\'s timeout its sessions answer 404 though their token still names it', async (t, s) => {
  const key = path.join(tempDir(s), 'token.key');
  writeFileSync(key, 'backend-drain-secret-0123456789\n');
  const tn = await start(s, {
    upstreams: [{
      name: 'mcp', affinity: 'token', affinity_key_file: key,
      pools: [{ name: 'blue', weight: 100, backends: [a.addr, b.addr] }],
    }],
  });
  const onA = await streamSession(s, tn.port, a);
  const onB = await streamSession(s, tn.port, b);
  await drainBackend(tn, a.addr, '1h');
  const during = await sessionRequest(tn.port, onA.sid);
  assert.equal(during.status, 200, `during the grace the token's session works: ${during.status} ${during.text}`);
  assert.equal(during.backend, a.name);

  await drainBackend(tn, a.addr, '200ms'); // drained again: the new grace counts from now
  await waitUntil(() => onA.stream.ended, 10000, 'the drained backend\'s stream to be closed');
  const gone = await sessionRequest(tn.port, onA.sid);
  assert.equal(gone.status, 404, `${gone.status} ${gone.text}`);
  assert.deepEqual(JSON.parse(gone.text), SESSION_NOT_FOUND_BODY);
  assert.equal((await sessionRequest(tn.port, onB.sid)).status, 200, 'the sibling\'s token session');
});

itest('a backend drain is runtime state: in the state file, kept by SIGHUP, reload and a restart', { timeout: 30000 }, async (t, s) => {
  const stateFile = path.join(tempDir(s), 'state.json');
  const opts = onePool({ state_file: stateFile });
  let tn = await start(s, opts);
  await drainBackend(tn, a.addr, '1h');
  assert.ok(existsSync(stateFile), 'written before acknowledged');
  const saved = JSON.parse(readFileSync(stateFile, 'utf8'));
  const drains = saved.upstreams[0].pools[0].drained_backends;
  assert.deepEqual(drains.map((d) => d.address), [a.addr]);

  const check = async (x, what) => {
    const st = await status(x);
    assert.equal(backendIn(st, a.addr).draining, true, `${what}: still draining`);
    assert.equal(backendIn(st, a.addr).drain_deadline_ms, drains[0].deadline_ms, `${what}: the same deadline`);
    assert.deepEqual(tally(await openSessions(x.port, 10)), { [b.name]: 10 }, `${what}: no new session on it`);
  };
  await reloadTurnout(tn);
  await check(tn, 'after SIGHUP');
  assert.equal((await admin(tn, 'POST', '/v1/reload')).status, 200);
  await check(tn, 'after POST /v1/reload');

  await tn.stop('SIGKILL', 100);
  tn = await start(s, opts);
  await check(tn, 'after SIGKILL and a restart');

  await undrainBackend(tn, a.addr);
  assert.equal(JSON.parse(readFileSync(stateFile, 'utf8')).upstreams[0].pools[0].drained_backends, undefined,
    'undrained: nothing left in the state file');
  const split = tally(await openSessions(tn.port, 40));
  assert.ok((split[a.name] ?? 0) > 0, `after undrain: ${JSON.stringify(split)}`);
});

itest('bad input: unknown backend, pool or upstream, or no address, answers 4xx with one sentence and changes nothing', async (t, s) => {
  const tn = await start(s);
  const cases = [
    [`${backendPath('127.0.0.1:1')}/drain`, 404, "pool 'blue' of upstream 'mcp' has no backend '127.0.0.1:1'"],
    [`${backendPath('127.0.0.1:1')}/undrain`, 404, "pool 'blue' of upstream 'mcp' has no backend '127.0.0.1:1'"],
    [`${backendPath(a.addr, 'red')}/drain`, 404, "upstream 'mcp' has no pool named 'red'"],
    [`${backendPath(a.addr, 'blue', 'nope')}/drain`, 404, "no upstream named 'nope'"],
    [`${backendPath('localhost')}/drain`, 400, 'backend "localhost" is not an address such as "127.0.0.1:3021" or "[::1]:3021"'],
  ];
  for (const [p, code, sentence] of cases) {
    const r = await admin(tn, 'POST', p);
    assert.equal(r.status, code, `${p}: ${r.status} ${r.text}`);
    assert.deepEqual(JSON.parse(r.text), { error: sentence }, p);
  }
  const bad = await admin(tn, 'POST', `${backendPath(a.addr)}/drain`, { timeout: 'soon' });
  assert.equal(bad.status, 400);
  assert.deepEqual(JSON.parse(bad.text), { error: 'timeout: expected a duration such as "60s"' });

  const r = await ctl(tn, ['drain', 'mcp', 'blue', '127.0.0.1:1']);
  assert.equal(r.code, 1);
  assert.equal(r.stderr, "pool 'blue' of upstream 'mcp' has no backend '127.0.0.1:1'\n");
  const st = await status(tn);
  assert.equal(backendIn(st, a.addr).draining, false, 'nothing changed');
  assert.equal(backendIn(st, b.addr).draining, false);
});
