// systemd Type=notify (issue 6): what turnout tells the service manager through NOTIFY_SOCKET,
// checked with a fake notify socket (support/notify_sink.mjs): READY=1 once everything
// listens, RELOADING=1 ... READY=1 around reloads (a failed one too, with a STATUS= that
// says so), STOPPING=1 when the drain starts, STATUS= with live counts, WATCHDOG=1 pings,
// abstract socket names, and nothing at all without NOTIFY_SOCKET.

import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { before } from 'node:test';
import { fileScope, httpRequest, itest } from './support/harness.mjs';
import { admin, statusGet } from './support/control_helpers.mjs';
import { openStream } from './support/session_helpers.mjs';
import { startNotifySink } from './support/notify_sink.mjs';

const shared = fileScope();
let mock;

before(async () => {
  mock = await shared.mock({ name: 'sysd-mock' });
});

const isReady = (f) => f.READY === '1';
const isReloading = (f) => f.RELOADING === '1';

async function notifiedTurnout(s, { abstract = false, env = {}, ...opts } = {}) {
  const sink = await startNotifySink(s, { abstract });
  const tn = await s.turnout({ backends: [mock.addr], env: { NOTIFY_SOCKET: sink.name, ...env }, ...opts });
  const ready = await sink.waitFor(isReady, { what: 'READY=1' });
  return { sink, tn, ready };
}

itest('READY=1 is the first message, and by then the proxy, status and admin listeners all answer', async (t, s) => {
  const sink = await startNotifySink(s);
  const started = s.turnout({ backends: [mock.addr], status: true, env: { NOTIFY_SOCKET: sink.name } });
  const ready = await sink.waitFor(isReady, { what: 'READY=1' });
  // Read at the moment READY=1 arrived: everything it promises must already be there.
  const tn = await started;
  const [proxy, health, st] = await Promise.all([
    httpRequest(tn.port, { path: '/health' }),
    statusGet(tn, '/healthz'),
    admin(tn, 'GET', '/v1/status'),
  ]);
  assert.equal(ready.index, 0, 'nothing before READY=1');
  assert.match(ready.fields.STATUS, /^serving: \d+ connections?, 0 streams, 0 sessions, 0 in flight$/);
  assert.equal(proxy.status, 200);
  assert.equal(health.status, 200);
  assert.equal(st.status, 200);
  assert.ok(tn.logs().indexOf('admin socket at') >= 0);
});

itest('SIGHUP: RELOADING=1 with MONOTONIC_USEC, then READY=1 with the serving status', async (t, s) => {
  const { sink, tn, ready } = await notifiedTurnout(s);
  tn.child.signal('SIGHUP');
  const reloading = await sink.waitFor(isReloading, { from: ready.index + 1, what: 'RELOADING=1' });
  assert.match(reloading.fields.MONOTONIC_USEC, /^[1-9]\d*$/);
  const again = await sink.waitFor(isReady, { from: reloading.index + 1, what: 'READY=1 after the reload' });
  assert.match(again.fields.STATUS, /^serving: /);
  assert.doesNotMatch(again.fields.STATUS, /failed/);
});

itest('POST /v1/reload: RELOADING=1 then READY=1', async (t, s) => {
  const { sink, tn, ready } = await notifiedTurnout(s);
  const r = await admin(tn, 'POST', '/v1/reload');
  assert.equal(r.status, 200, r.text);
  const reloading = await sink.waitFor(isReloading, { from: ready.index + 1, timeout: 2000, what: 'RELOADING=1' });
  await sink.waitFor(isReady, { from: reloading.index + 1, timeout: 2000, what: 'READY=1 after the reload' });
});

itest('a reload of a broken config: READY=1 again, and STATUS= says the reload failed until one succeeds', async (t, s) => {
  const { sink, tn, ready } = await notifiedTurnout(s);
  const good = readFileSync(tn.configPath, 'utf8');
  writeFileSync(tn.configPath, `${good}\n[proxy\nbroken = \n`);
  const r = await admin(tn, 'POST', '/v1/reload');
  assert.equal(r.status, 400, r.text);
  const reloading = await sink.waitFor(isReloading, { from: ready.index + 1, what: 'RELOADING=1' });
  const after = await sink.waitFor(isReady, { from: reloading.index + 1, what: 'READY=1 after the failed reload' });
  assert.match(after.fields.STATUS, /last reload failed: .*turnout\.toml/);
  // Still serving on the old configuration.
  assert.equal((await httpRequest(tn.port, { path: '/health' })).status, 200);

  writeFileSync(tn.configPath, good);
  tn.child.signal('SIGHUP');
  const fixed = await sink.waitFor((f) => isReady(f) && !/failed/.test(f.STATUS ?? ''),
    { from: after.index + 1, what: 'READY=1 without the failure' });
  assert.match(fixed.fields.STATUS, /^serving: /);
});

itest('SIGTERM: STOPPING=1 when the drain starts, then a clean exit', async (t, s) => {
  const { sink, tn, ready } = await notifiedTurnout(s);
  tn.child.signal('SIGTERM');
  const stopping = await sink.waitFor((f) => f.STOPPING === '1', { from: ready.index + 1, what: 'STOPPING=1' });
  assert.match(stopping.fields.STATUS, /^draining: 0 connections/);
  const exit = await tn.child.waitExit(10000);
  assert.equal(exit.code, 0);
});

itest('a SIGHUP during the drain reloads but announces no RELOADING=1 or READY=1 after STOPPING=1', async (t, s) => {
  const { sink, tn, ready } = await notifiedTurnout(s, { proxy: { drain_timeout: '5s' } });
  const stream = await openStream(tn.port, { path: '/sse?n=1000&interval_ms=200', scope: s });
  assert.equal(stream.status, 200);
  tn.child.signal('SIGTERM');
  const stopping = await sink.waitFor((f) => f.STOPPING === '1', { from: ready.index + 1, what: 'STOPPING=1' });
  assert.match(stopping.fields.STATUS, /^draining: 1 connection, 1 stream, /);
  tn.child.signal('SIGHUP');
  await tn.child.waitForMatches(/reload done/, { timeout: 5000 });
  stream.close();
  assert.equal((await tn.child.waitExit(10000)).code, 0);
  const after = sink.messages().slice(stopping.index + 1);
  assert.ok(!after.some((m) => isReady(m.fields) || isReloading(m.fields)), JSON.stringify(after.map((m) => m.text)));
});

itest('STATUS= follows the live counts: an open stream shows up, and goes when it closes', async (t, s) => {
  const { sink, tn, ready } = await notifiedTurnout(s);
  const stream = await openStream(tn.port, { path: '/sse?n=1000&interval_ms=200', scope: s });
  assert.equal(stream.status, 200);
  const open = await sink.waitFor((f) => /^serving: 1 connection, 1 stream, /.test(f.STATUS ?? ''),
    { from: ready.index + 1, what: 'STATUS= with 1 stream' });
  assert.deepEqual(Object.keys(open.fields), ['STATUS'], 'a status update is STATUS= alone');
  stream.close();
  await sink.waitFor((f) => /^serving: 0 connections, 0 streams, /.test(f.STATUS ?? ''),
    { from: open.index + 1, what: 'STATUS= with 0 streams again' });
});

itest('an abstract NOTIFY_SOCKET (@name) works the same', async (t, s) => {
  const { sink, tn, ready } = await notifiedTurnout(s, { abstract: true });
  assert.ok(sink.name.startsWith('@'));
  tn.child.signal('SIGHUP');
  const reloading = await sink.waitFor(isReloading, { from: ready.index + 1, what: 'RELOADING=1' });
  await sink.waitFor(isReady, { from: reloading.index + 1, what: 'READY=1 after the reload' });
});

itest('WATCHDOG_USEC set for this process: WATCHDOG=1 pings keep coming', async (t, s) => {
  const { sink } = await notifiedTurnout(s, { env: { WATCHDOG_USEC: '200000' } });
  const pings = () => sink.messages().filter((m) => m.fields.WATCHDOG === '1').length;
  await sink.waitFor(() => pings() >= 4, { what: '4 WATCHDOG=1 pings' });
});

itest('without NOTIFY_SOCKET, or with one that is not a socket name, turnout serves, reloads and stops', async (t, s) => {
  for (const value of [undefined, 'relative/notify.sock']) {
    const tn = await s.turnout({ backends: [mock.addr], env: { NOTIFY_SOCKET: value, WATCHDOG_USEC: '100000' } });
    assert.equal((await httpRequest(tn.port, { path: '/health' })).status, 200);
    const r = await admin(tn, 'POST', '/v1/reload');
    assert.equal(r.status, 200, r.text);
    assert.equal((await httpRequest(tn.port, { path: '/health' })).status, 200);
    tn.child.signal('SIGTERM');
    assert.equal((await tn.child.waitExit(10000)).code, 0);
    if (value) assert.match(tn.logs(), /NOTIFY_SOCKET "relative\/notify\.sock" is not a path/);
    assert.doesNotMatch(tn.logs(), /watchdog/i, 'no watchdog without a notify socket');
  }
});
