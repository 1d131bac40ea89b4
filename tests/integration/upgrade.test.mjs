// Zero-downtime upgrade (SPEC.md "Binaries": `turnoutctl upgrade [--binary PATH]`; issue 6):
// a new turnout process takes over the listening sockets and the session table; the old one
// stops accepting, serves its open streams to their end, forwards the sessions it still
// learns, and exits 0. Real SDK clients and servers on both transports, continuous load.

import assert from 'node:assert/strict';
import { writeFileSync, readFileSync } from 'node:fs';
import { before } from 'node:test';
import path from 'node:path';
import {
  RawConn, TURNOUT_BIN, fileScope, httpRequest, itest, sleep, tempDir, waitUntil, withTimeout,
} from './support/harness.mjs';
import { initialize, initializeBody, pingBody, sessionRequest, sseClient, whoami } from './support/session_helpers.mjs';
import { startSessionServer } from './support/session_helpers.mjs';
import {
  assertStreamsDeliver, ctl, keepBusy, liveSession, status, upstreamIn, waitAdmin, waitStatus,
} from './support/control_helpers.mjs';
import { startNotifySink } from './support/notify_sink.mjs';

const shared = fileScope();
let sdk; // three SDK servers (Streamable HTTP; whoami, announce)
let legacy; // one session server (the 2024-11-05 HTTP+SSE transport on /sse + /messages)

before(async () => {
  [sdk, legacy] = await Promise.all([
    Promise.all([0, 1, 2].map((i) => shared.sdkServer({ name: `up-sdk${i}` }))),
    startSessionServer(shared, { name: 'up-legacy' }),
  ]);
});

function config(extra = {}, mcp = {}) {
  return {
    status: true,
    proxy: { drain_timeout: '30s', idle_timeout: '30s', access_log: 'off', ...extra },
    upstreams: [
      { name: 'mcp', ...mcp, pools: [{ name: 'blue', weight: 100, backends: sdk.map((b) => b.addr) }] },
      { name: 'legacy', pools: [{ name: 'blue', weight: 100, backends: [legacy.addr] }] },
    ],
    routes: [{ path_prefix: '/mcp', upstream: 'mcp' }, { path_prefix: '/', upstream: 'legacy' }],
  };
}

const alive = (pid) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** The successor is a child of the old process, not of the test: stop it by its pid. */
function stopLater(s, pid) {
  s.defer(async () => {
    if (!alive(pid)) return;
    process.kill(pid, 'SIGTERM');
    await waitUntil(() => !alive(pid), 5000, `pid ${pid} to exit`).catch(() => process.kill(pid, 'SIGKILL'));
  });
}

/**
 * Resolves with {code, signal} when turnout's process exits. Not Child.waitExit(): that waits
 * for the output pipes to close too, and the successor inherits them.
 */
function exitOf(tn) {
  return new Promise((resolve) => {
    if (tn.child.proc.exitCode !== null || tn.child.proc.signalCode !== null) {
      resolve({ code: tn.child.proc.exitCode, signal: tn.child.proc.signalCode });
      return;
    }
    tn.child.proc.once('exit', (code, signal) => resolve({ code, signal }));
  });
}

const totalStreams = (st) => upstreamIn(st).pools.flatMap((p) => p.backends).reduce((n, b) => n + b.streams, 0);

/** A keep-alive connection that the old process accepted (one exchange done on it). */
async function oldConnection(port) {
  const c = await RawConn.open(port);
  c.write('GET /health HTTP/1.1\r\nHost: t\r\n\r\n');
  const res = await c.readResponse();
  assert.equal(res.get('connection'), undefined, 'keep-alive before the upgrade');
  return c;
}

/** A ping of session sid on a raw connection; {status, backend, text, closing}. */
async function rawPing(c, sid) {
  const body = pingBody();
  c.write(`POST /mcp HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nMcp-Session-Id: ${sid}\r\n` +
    `Accept: application/json, text/event-stream\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  const res = await c.readResponse({ method: 'POST' });
  return { status: res.status, backend: res.get('x-backend'), text: res.text(), closing: res.get('connection') };
}

/** initialize on a raw connection; {sid, owner, closing}. */
async function rawInitialize(c) {
  const body = initializeBody();
  c.write(`POST /mcp HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n` +
    `Accept: application/json, text/event-stream\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  const res = await c.readResponse({ method: 'POST' });
  assert.equal(res.status, 200, res.text());
  return { sid: res.get('mcp-session-id'), owner: res.get('x-backend'), closing: res.get('connection') };
}

itest('upgrade under load: no failed request, old streams end on the old process, sessions follow', { timeout: 90000 }, async (t, s) => {
  const tn = await s.turnout(config());
  const oldExit = exitOf(tn);
  const oldPid = tn.pid;
  assert.equal((await status(tn)).pid, oldPid, 'status names the serving pid');

  // Load: SDK sessions calling tools back to back, each with its GET stream open; a legacy
  // SSE session; and raw keep-alive connections accepted by the old process.
  const live = [];
  for (let i = 0; i < 4; i++) live.push(await liveSession(s, tn.port, `up-load-${i}`));
  const old = await sseClient(s, tn.port, { name: 'up-legacy-client' });
  const oldLegacy = await whoami(old.client);
  const held = [];
  for (let i = 0; i < 6; i++) held.push(await oldConnection(tn.port));
  const busy = keepBusy(live, { pauseMs: 2, scope: s });
  await sleep(300);

  // New sessions keep arriving, each on a connection of its own, while the hand-over runs:
  // whichever process accepted them, they must route to their owners afterwards.
  let bursting = true;
  const burst = [];
  const burstLoop = Promise.all([0, 1, 2].map(async () => {
    while (bursting) burst.push(await initialize(tn.port));
  }));
  const up = await ctl(tn, ['upgrade']);
  await sleep(100);
  bursting = false;
  await withTimeout(burstLoop, 10000, 'the initialize burst to finish');
  assert.equal(up.code, 0, up.stderr);
  const m = /^upgraded: pid (\d+) serves now/.exec(up.stdout);
  assert.ok(m, up.stdout);
  const newPid = Number(m[1]);
  stopLater(s, newPid);
  assert.notEqual(newPid, oldPid);
  assert.ok(alive(oldPid), 'the old process keeps running while its streams are open');

  // The admin socket is the new process's now.
  const st = await status(tn);
  assert.equal(st.pid, newPid);
  assert.equal(st.draining, false);

  // Sessions the old process learns after the hand-over (initialize on connections it had
  // accepted before) reach the new one: requests on fresh connections go to their owners.
  // Unknown ids would be hashed over three backends: six right by chance is (1/3)^6.
  const learned = [];
  for (const c of held) learned.push(await rawInitialize(c));
  for (const l of learned) assert.equal(l.closing, 'close', 'the old process ends keep-alive after the hand-over');
  assert.ok(burst.length >= 3, `only ${burst.length} sessions initialized during the upgrade`);
  for (const b of burst) assert.equal(b.status, 200, `initialize during the upgrade: ${b.status} ${b.text}`);
  for (const b of burst) {
    const r = await sessionRequest(tn.port, b.sid);
    assert.equal(r.status, 200, `session ${b.sid} of ${b.backend}, created during the upgrade: ${r.text}`);
    assert.equal(r.backend, b.backend);
  }
  for (const l of learned) {
    const r = await sessionRequest(tn.port, l.sid);
    assert.equal(r.status, 200, `session ${l.sid} of ${l.owner} through the new process: ${r.text}`);
    assert.equal(r.backend, l.owner);
  }

  // Old streams keep delivering: the SDK servers' notifications arrive over the GET streams
  // the old process holds, and the legacy session's answers over its SSE stream.
  await assertStreamsDeliver(live, assert);
  assert.deepEqual(await whoami(old.client), oldLegacy);

  await waitUntil(() => busy.result.calls > 20, 10000, 'more than 20 tool calls of the busy sessions');
  const { calls, failures } = await busy.stop();
  assert.deepEqual(failures, []);
  assert.ok(calls > 20, `only ${calls} calls`);
  assert.deepEqual(old.errors.map(String), []);
  for (const c of live) assert.deepEqual(c.errors.map(String), []);

  // With the load stopped (tool answers are short SSE streams too), the new process holds no
  // stream: the GET streams and the legacy stream are all still on the old one.
  await waitStatus(tn, (x) => totalStreams(x) === 0, 5000, 'no stream on the new process');
  assert.ok(alive(oldPid));
  // A new session lands on the new process (its GET stream is counted there).
  const fresh = await liveSession(s, tn.port, 'up-fresh');
  await waitStatus(tn, (x) => totalStreams(x) === 1, 5000, 'the new session\'s GET stream on the new process');

  // The old process exits 0 once its last stream ended (the clients close them).
  assert.ok(alive(oldPid));
  for (const c of [...live, old]) await c.client.close();
  for (const c of held) c.destroy();
  const exit = await withTimeout(oldExit, 15000, 'the old process to exit after its last stream');
  assert.equal(exit.code, 0, JSON.stringify(exit));

  // Everything still works through the new process, sessions from before included.
  assert.equal((await whoami(fresh.client)).server, fresh.owner);
  for (const l of learned) assert.equal((await sessionRequest(tn.port, l.sid)).backend, l.owner);
  assert.equal((await status(tn)).pid, newPid);
});

/**
 * One hand-over with sessions initialized all through it, each used at once over a keep-alive
 * connection the old process accepted before the upgrade (which still reaches the old
 * process: one more exchange each) and over a fresh connection (the new process, once the old
 * one stopped accepting). Returns the new process's pid once the old one has exited.
 */
async function handOverWithNewSessions(s, tn, oldExited) {
  const oldPid = (await status(tn)).pid;
  const held = [];
  for (let i = 0; i < 40; i++) held.push(await oldConnection(tn.port));
  let next = 0;
  const failures = [];
  let sessions = 0;
  const expect = (where, init, r, closing) => {
    if (r.status !== 200 || r.backend !== init.backend) {
      failures.push(`${where}: session ${init.sid} of ${init.backend}: ${r.status} from ${r.backend}: ${r.text}`);
    } else if (closing && r.closing !== 'close') {
      failures.push(`${where}: session ${init.sid}: keep-alive after the upgrade began`);
    }
  };
  const useSession = async (c, { closing = false } = {}) => {
    const init = await initialize(tn.port);
    if (init.status !== 200) {
      failures.push(`initialize: ${init.status} ${init.text}`);
      return;
    }
    sessions += 1;
    if (c) expect('old connection', init, await rawPing(c, init.sid), closing);
    expect('fresh connection', init, await sessionRequest(tn.port, init.sid), false);
  };

  // During the hand-over: three clients back to back, the first ten on old connections too.
  let upgrading = true;
  const during = Promise.all([0, 1, 2].map(async () => {
    while (upgrading) await useSession(next < 10 ? held[next++] : null);
  }));
  const up = await ctl(tn, ['upgrade']);
  upgrading = false;
  await withTimeout(during, 20000, 'the sessions initialized during the upgrade');
  assert.equal(up.code, 0, up.stderr);
  const newPid = Number(/^upgraded: pid (\d+) serves now/.exec(up.stdout)[1]);
  stopLater(s, newPid);
  // Right after it: the new process learns them, the old connections (idle since before the
  // upgrade, so answered with Connection: close) carry their next request at once.
  await withTimeout(Promise.all(held.slice(next).map((c) => useSession(c, { closing: true }))), 20000,
    'the sessions initialized after the upgrade');
  assert.deepEqual(failures, [], `${failures.length} of ${sessions} sessions broken`);

  for (const c of held) c.destroy();
  // The old process exits 0 (the first one is the test's child; later ones are not).
  if (oldExited) {
    const exit = await withTimeout(oldExited, 15000, 'the old process to exit once its connections closed');
    assert.equal(exit.code, 0, JSON.stringify(exit));
  } else {
    await waitUntil(() => !alive(oldPid), 15000, `pid ${oldPid} to exit once its connections closed`);
  }
  assert.equal((await status(tn)).pid, newPid);
  return newPid;
}

itest('sessions initialized during the hand-over work over connections to both processes, upgrade after upgrade', { timeout: 120000 }, async (t, s) => {
  const tn = await s.turnout(config());
  const oldExit = exitOf(tn);
  for (let round = 0; round < 4; round++) {
    const newPid = await handOverWithNewSessions(s, tn, round === 0 ? oldExit : null);
    if (round === 0) assert.match(tn.logs(), /hand-over protocol version 4/);
    // The new process holds every session made so far.
    assert.ok(upstreamIn(await status(tn)).sessions >= 30 * (round + 1), `round ${round} (pid ${newPid})`);
  }
});

itest('a failed upgrade leaves the old process serving; turnoutctl exits 1 with one line', { timeout: 40000 }, async (t, s) => {
  const tn = await s.turnout(config());
  const c = await liveSession(s, tn.port, 'up-fail');

  let r = await ctl(tn, ['upgrade', '--binary', '/bin/false']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^upgrade failed: the new process \(pid \d+\) exited with status 1 before taking over/);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);

  r = await ctl(tn, ['upgrade', '--binary', '/nonexistent/turnout']);
  assert.equal(r.code, 1);
  assert.equal(r.stderr, "'/nonexistent/turnout' is not an executable file\n");

  // A configuration made invalid before the upgrade: the new process refuses to start.
  const good = readFileSync(tn.configPath, 'utf8');
  writeFileSync(tn.configPath, `${good}\n[proxy.bogus]\n`);
  r = await ctl(tn, ['upgrade']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^upgrade failed: .* exited with status 1 before taking over/);
  writeFileSync(tn.configPath, good);

  // Still the same process, still serving the same session, still accepting.
  assert.equal((await status(tn)).pid, tn.pid);
  assert.equal((await whoami(c.client)).server, c.owner);
  const other = await liveSession(s, tn.port, 'up-fail-2');
  assert.equal((await whoami(other.client)).server, other.owner);

  // And a later upgrade works.
  r = await ctl(tn, ['upgrade']);
  assert.equal(r.code, 0, r.stderr);
  const newPid = Number(/pid (\d+)/.exec(r.stdout)[1]);
  stopLater(s, newPid);
  assert.equal((await status(tn)).pid, newPid);
  assert.equal((await whoami(c.client)).server, c.owner);
});

itest('SIGUSR2 upgrades the same way; a second upgrade goes to the new process', { timeout: 40000 }, async (t, s) => {
  const tn = await s.turnout(config());
  const oldExit = exitOf(tn);
  const c = await liveSession(s, tn.port, 'up-usr2');
  tn.child.signal('SIGUSR2');
  // Polls may meet the old admin socket as it is given up: only an answer counts.
  const st = await waitUntil(async () => {
    const x = await status(tn).catch(() => null);
    return x && x.pid !== tn.pid ? x : null;
  }, 10000, 'the new process to answer the admin socket');
  stopLater(s, st.pid);
  assert.equal((await whoami(c.client)).server, c.owner);
  // The old process, still serving this client's stream, refuses a second hand-over.
  tn.child.signal('SIGUSR2');
  await tn.child.waitForMatches(/upgrade \(SIGUSR2\) refused: this process already handed over to pid (\d+)/, { timeout: 5000 });
  await c.client.close();
  const exit = await withTimeout(oldExit, 15000, 'the old process to exit');
  assert.equal(exit.code, 0, JSON.stringify(exit));

  // The successor can itself be upgraded; the session table goes along again.
  const again = await ctl(tn, ['upgrade']);
  assert.equal(again.code, 0, again.stderr);
  const third = Number(/pid (\d+)/.exec(again.stdout)[1]);
  stopLater(s, third);
  assert.notEqual(third, st.pid);
  await waitUntil(() => !alive(st.pid), 10000, `the second process (pid ${st.pid}) to exit`);
  const st3 = await waitAdmin(tn);
  assert.equal(st3.pid, third);
  assert.ok(upstreamIn(st3).sessions >= 1, JSON.stringify(st3));
});

itest('rate limits go along: a client that spent its burst before an upgrade is still refused after it', { timeout: 40000 }, async (t, s) => {
  const tn = await s.turnout({ ...config(), listen: { rate_limit: { requests: 1, per: '1h', burst: 2, key: 'header:X-Client' } } });
  const oldExit = exitOf(tn);
  const get = (client) => httpRequest(tn.port, { path: '/health', headers: { 'X-Client': client } });
  for (let i = 0; i < 2; i++) assert.notEqual((await get('spent')).status, 429);
  assert.equal((await get('spent')).status, 429);
  assert.notEqual((await get('half')).status, 429); // one token left of two

  const up = await ctl(tn, ['upgrade']);
  assert.equal(up.code, 0, up.stderr);
  const successor = Number(/pid (\d+)/.exec(up.stdout)[1]);
  stopLater(s, successor);
  // Once the old process is gone, every connection is the new one's.
  const exit = await withTimeout(oldExit, 15000, 'the old process to exit');
  assert.equal(exit.code, 0, JSON.stringify(exit));
  assert.equal((await status(tn)).pid, successor);
  assert.match(tn.logs(), /upgrade: took over 2 of 2 rate limit bucket\(s\)/);

  const refused = await get('spent');
  assert.equal(refused.status, 429, 'the spent bucket came along, not a full one');
  assert.ok(Number(refused.get('retry-after')) > 3000, refused.get('retry-after'));
  assert.notEqual((await get('half')).status, 429);
  assert.equal((await get('half')).status, 429, 'the half-spent bucket came along too');
  assert.notEqual((await get('fresh')).status, 429, 'a client the old process never saw starts full');
});

itest('sessions still in use on the old process do not expire in the new one; idle ones do', { timeout: 60000 }, async (t, s) => {
  // session_idle_timeout 2 s: without word from the old process, the new one would forget every
  // session below after 3 s at most, and route their next requests by hash (1 in 3 right).
  const tn = await s.turnout(config({}, { session_idle_timeout: '2s' }));
  const oldExit = exitOf(tn);
  const mcpSessions = async () => upstreamIn(await status(tn)).sessions;

  // In use on the old process after the upgrade: three SDK sessions whose only activity is
  // their GET stream (held by the old process), and one whose requests keep arriving on
  // keep-alive connections the old process accepted.
  const streaming = [];
  for (let i = 0; i < 3; i++) streaming.push(await liveSession(s, tn.port, `up-idle-stream-${i}`));
  const viaOld = await initialize(tn.port);
  assert.equal(viaOld.status, 200, viaOld.text);
  const held = [];
  for (let i = 0; i < 24; i++) held.push(await oldConnection(tn.port));
  // Not in use anywhere: no stream, no request after the upgrade.
  const idle = [];
  for (let i = 0; i < 3; i++) {
    const r = await initialize(tn.port);
    assert.equal(r.status, 200, r.text);
    idle.push(r);
  }

  const up = await ctl(tn, ['upgrade']);
  assert.equal(up.code, 0, up.stderr);
  const newPid = Number(/^upgraded: pid (\d+)/.exec(up.stdout)[1]);
  stopLater(s, newPid);
  assert.match(tn.logs(), /received \d+ listening socket\(s\) and \d+ session\(s\) .*\(hand-over protocol version 4\)/);

  // The streams stay open on the old process all along, and a request of viaOld arrives on an
  // old connection every 0.7 s (each old connection takes one more), until the new process
  // has let the idle sessions expire. All of them were last used before the upgrade, the ones
  // in use earliest: only word from the old process keeps those.
  let pinging = true;
  const pings = [];
  const pinger = (async () => {
    for (const c of held) {
      if (!pinging) break;
      pings.push(await rawPing(c, viaOld.sid));
      c.destroy();
      await sleep(700);
    }
  })();
  const st = await waitStatus(tn, (x) => upstreamIn(x).sessions <= streaming.length + 1, 15000,
    'the idle sessions to expire in the new process');
  pinging = false;
  await pinger;
  for (const c of held) c.destroy();
  for (const r of pings) {
    assert.equal(r.status, 200, r.text);
    assert.equal(r.backend, viaOld.backend);
  }
  assert.ok(alive(tn.pid), 'the old process still serves the streams');
  assert.equal(st.pid, newPid);
  // Exactly the sessions in use are left: the idle ones expired in the new process.
  assert.equal(upstreamIn(st).sessions, streaming.length + 1, JSON.stringify(upstreamIn(st)));

  // Requests through the new process (fresh connections) reach the owners, not a hash choice.
  for (const c of streaming) {
    const r = await sessionRequest(tn.port, c.sid);
    assert.equal(r.status, 200, `session ${c.sid} of ${c.owner} through the new process: ${r.text}`);
    assert.equal(r.backend, c.owner);
  }
  const r = await sessionRequest(tn.port, viaOld.sid);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.backend, viaOld.backend);
  await assertStreamsDeliver(streaming, assert);

  // Once the old process is gone, nothing keeps the streaming sessions' entries alive any more
  // but their own use; the idle ones stay forgotten (the old process never revived them).
  for (const c of streaming) await c.client.close();
  const exit = await withTimeout(oldExit, 15000, 'the old process to exit after its last stream');
  assert.equal(exit.code, 0, JSON.stringify(exit));
  await waitUntil(async () => (await mcpSessions()) === 0, 10000, 'every session to expire in the new process');
});

itest('an upgrade under a service watchdog: the new process announces itself and pings, the old one goes quiet', { timeout: 40000 }, async (t, s) => {
  const sink = await startNotifySink(s);
  // As systemd starts it: WATCHDOG_PID names the process it started. A shell that sets it to
  // its own pid, then becomes turnout (exec keeps the pid; argv[0] is the real binary, which
  // the upgrade starts again).
  const wrapper = path.join(tempDir(s), 'turnout-watched.sh');
  writeFileSync(wrapper, `#!/bin/sh\nexport WATCHDOG_PID=$$\nexec '${TURNOUT_BIN}' "$@"\n`, { mode: 0o755 });
  const tn = await s.turnout({ ...config(), bin: wrapper, env: { NOTIFY_SOCKET: sink.name, WATCHDOG_USEC: '400000' } });
  const oldExit = exitOf(tn);
  const ready = await sink.waitFor((f) => f.READY === '1', { what: 'READY=1' });
  const c = await liveSession(s, tn.port, 'up-watchdog'); // keeps the old process draining a while

  const up = await ctl(tn, ['upgrade']);
  assert.equal(up.code, 0, up.stderr);
  const newPid = Number(/^upgraded: pid (\d+)/.exec(up.stdout)[1]);
  stopLater(s, newPid);

  const takeOver = await sink.waitFor((f) => f.READY === '1' && f.MAINPID === String(newPid),
    { from: ready.index + 1, what: `READY=1 with MAINPID=${newPid}` });
  // The new process's own pings: the sink cannot tell senders apart, so count those after the
  // take-over; the old process stops pinging at the hand-over, so they keep coming only if the
  // new one sends them.
  const pingsAfter = (from) => sink.messages().slice(from).filter((m) => m.fields.WATCHDOG === '1').length;
  await sink.waitFor(() => pingsAfter(takeOver.index + 1) >= 4, { what: '4 WATCHDOG=1 pings after the take-over' });
  assert.match(tn.logs(), /service manager watchdog: pinging every 200 ms[\s\S]*service manager watchdog: pinging every 200 ms/,
    'both processes pinged (the new one logs it too)');

  await c.client.close();
  const exit = await withTimeout(oldExit, 15000, 'the old process to exit');
  assert.equal(exit.code, 0, JSON.stringify(exit));
  // Pings go on after the old process is gone, and nobody said STOPPING=1.
  const gone = sink.messages().length;
  await sink.waitFor(() => pingsAfter(gone) >= 2, { what: 'WATCHDOG=1 pings after the old process exited' });
  assert.ok(!sink.messages().some((m) => m.fields.STOPPING === '1'), JSON.stringify(sink.messages().map((m) => m.text)));
});
