// Session affinity (SPEC.md "Sessions", issue 3), affinity = "table": every MCP session stays
// on the backend that created it. Real SDK clients against real SDK servers where MCP
// behaviour is the point (support/session_server.mjs), the C++ mock where volume matters.
//
// Many checks need to tell "still pinned to its owner" from "routed as an unknown id". A
// second turnout process with the same backends that never saw the sessions (the rendezvous
// oracle) shows where an unknown id goes; a session whose owner differs from that choice is
// the witness. With three backends a random owner equals the rendezvous choice with
// probability 1/3, so 20 sessions leave no witness with probability 3^-20 < 1e-9.

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { before } from 'node:test';
import {
  assertJsonError, buildConfig, fileScope, itest, sleep, tempDir, waitUntil, withTimeout,
} from './support/harness.mjs';
import {
  SESSION_NOT_FOUND, createSessions, initialize, openLegacyStream, openStream,
  reloadTurnout, rendezvousOracle, sessionRequest, sseClient, startSessionServer,
  streamableClient, upstreamOf, whoami,
} from './support/session_helpers.mjs';
import { ctl, status, upstreamIn } from './support/control_helpers.mjs';

const shared = fileScope();
let mocks; // three C++ mock backends
let sdk; // three SDK session servers

before(async () => {
  [mocks, sdk] = await Promise.all([
    Promise.all([0, 1, 2].map((i) => shared.mock({ name: `sess-m${i}` }))),
    Promise.all([0, 1, 2].map((i) => startSessionServer(shared, { name: `sess-sdk${i}` }))),
  ]);
});

const WITNESSES = 20; // sessions created where a witness (owner != rendezvous choice) is needed

/** turnout over the three mocks in one pool, plus an oracle over the same backends. */
async function turnoutWithOracle(s, { upstream = upstreamOf({ blue: mocks }), proxy } = {}) {
  const [tn, oracleTn] = await Promise.all([
    s.turnout({ upstreams: [upstream], proxy }),
    s.turnout({ upstreams: [{ ...upstream, session_idle_timeout: '30m' }] }),
  ]);
  return { tn, oracle: rendezvousOracle(oracleTn), oracleTn };
}

/** Adds `.rendezvous` to each session and asserts that at least one is a witness. */
async function markWitnesses(sessions, oracle) {
  for (const x of sessions) x.rendezvous = await oracle(x.sid);
  const witnesses = sessions.filter((x) => x.rendezvous !== x.owner);
  assert.ok(witnesses.length > 0,
    `no session whose owner differs from its rendezvous backend: ${JSON.stringify(sessions)}`);
  return witnesses;
}

function assertSessionNotFound(r, what) {
  assert.equal(r.status, 404, `${what}: expected 404, got ${r.status} ${r.text}`);
  assert.deepEqual(JSON.parse(r.text), SESSION_NOT_FOUND, `${what}: the JSON-RPC "Session not found" body`);
}

// ---------------------------------------------------------------------------------------------
// Real SDK clients and servers

itest('30 concurrent Streamable HTTP sessions over three SDK servers: every call on its owner, no errors', { timeout: 40000 }, async (t, s) => {
  const tn = await s.turnout({ upstreams: [upstreamOf({ blue: sdk })] });
  const initial = await Promise.all(sdk.map((b) => b.stats()));

  const clients = await Promise.all(Array.from({ length: 30 }, () => streamableClient(s, tn.port)));
  const answers = await Promise.all(clients.map(async ({ client, transport }) => {
    const seen = [];
    for (let i = 0; i < 5; i++) {
      seen.push(await whoami(client));
      if (i === 2) {
        await client.listTools();
        await client.ping();
      }
    }
    return { sid: transport.sessionId, seen };
  }));

  const stats = await Promise.all(sdk.map((b) => b.stats()));
  const ownerOf = new Map();
  for (const st of stats) for (const id of st.sessions.streamable) ownerOf.set(id, st.name);

  for (const { sid, seen } of answers) {
    assert.ok(sid, 'every client got an Mcp-Session-Id');
    const owner = ownerOf.get(sid);
    assert.ok(owner, `session ${sid} is held by one of the servers`);
    for (const w of seen) {
      assert.equal(w.server, owner, `session ${sid}: a call was answered by ${w.server}, not its owner ${owner}`);
      assert.equal(w.sessionId, sid, 'the server saw the session id the client holds');
    }
  }
  const owners = new Set(answers.map((a) => ownerOf.get(a.sid)));
  assert.equal(owners.size, 3, `the 30 sessions spread over all three backends: ${[...owners]}`);
  stats.forEach((st, i) => assert.equal(st.notFound - initial[i].notFound, 0,
    `${st.name} got requests for sessions it does not hold`));
  for (const { errors } of clients) assert.deepEqual(errors.map(String), [], 'no client error');

  // A graceful end: DELETE of every session reaches its owner.
  await Promise.all(clients.map(({ transport }) => withTimeout(transport.terminateSession(), 5000, 'DELETE')));
  const after = await Promise.all(sdk.map((b) => b.stats()));
  for (const st of after) {
    for (const { sid } of answers) assert.ok(!st.sessions.streamable.includes(sid), `${sid} ended at ${st.name}`);
  }
  after.forEach((st, i) => assert.equal(st.notFound - initial[i].notFound, 0, `${st.name}: no stray requests`));
});

itest('30 concurrent legacy HTTP+SSE sessions over three SDK servers: every call on its owner, no errors', { timeout: 40000 }, async (t, s) => {
  const tn = await s.turnout({ upstreams: [upstreamOf({ blue: sdk })] });
  const initial = await Promise.all(sdk.map((b) => b.stats()));

  const clients = await Promise.all(Array.from({ length: 30 }, () => sseClient(s, tn.port)));
  const answers = await Promise.all(clients.map(async ({ client, transport }) => {
    const seen = [];
    for (let i = 0; i < 5; i++) {
      seen.push(await whoami(client));
      if (i === 2) await client.listTools();
    }
    // The id the client posts with, from the endpoint event it received through turnout.
    const sid = transport._endpoint?.searchParams.get('sessionId');
    return { sid, seen };
  }));

  const stats = await Promise.all(sdk.map((b) => b.stats()));
  const ownerOf = new Map();
  for (const st of stats) for (const id of st.sessions.legacy) ownerOf.set(id, st.name);
  for (const { sid, seen } of answers) {
    assert.ok(sid, 'the endpoint event carried a sessionId');
    const owner = ownerOf.get(sid);
    assert.ok(owner, `legacy session ${sid} is open at one of the servers`);
    for (const w of seen) {
      assert.equal(w.server, owner, `legacy session ${sid}: a call was answered by ${w.server}, not ${owner}`);
      assert.equal(w.sessionId, sid);
      assert.equal(w.transport, 'sse');
    }
  }
  const owners = new Set(answers.map((a) => ownerOf.get(a.sid)));
  assert.equal(owners.size, 3, `the 30 sessions spread over all three backends: ${[...owners]}`);
  stats.forEach((st, i) => assert.equal(st.notFound - initial[i].notFound, 0,
    `${st.name} got POSTs for sessions it does not hold`));
  for (const { errors } of clients) assert.deepEqual(errors.map(String), [], 'no client error');
});

itest('a Python-SDK-style endpoint (session_id=) pins its session too', async (t, s) => {
  const tn = await s.turnout({ upstreams: [upstreamOf({ blue: sdk })] });
  const streams = await Promise.all(Array.from({ length: 12 }, () => openLegacyStream(tn.port, { path: '/pysse', scope: s })));
  await Promise.all(streams.map(async ({ stream, endpoint, sid, param }, i) => {
    assert.equal(param, 'session_id', endpoint);
    for (let k = 0; k < 3; k++) {
      const r = await sessionRequest(tn.port, undefined, {
        path: endpoint,
        body: JSON.stringify({ jsonrpc: '2.0', id: 100 + i * 10 + k, method: 'ping' }),
      });
      assert.equal(r.status, 202, `POST ${endpoint}: ${r.status} ${r.text}`);
      assert.equal(r.backend, stream.backend, `POST ${endpoint} reached the stream's backend`);
    }
    await stream.waitFor(new RegExp(`"id":${100 + i * 10 + 2},"result":\\{"server":"${stream.backend}","sessionId":"${sid}"`));
  }));
  assert.ok(new Set(streams.map((x) => x.stream.backend)).size >= 2, 'streams spread over the backends');
});

itest('a late endpoint event, split over several writes, still pins its session, and nothing before it is held back', async (t, s) => {
  const tn = await s.turnout({ upstreams: [upstreamOf({ blue: sdk })] });
  const opened = await Promise.all(Array.from({ length: 12 }, async () => {
    const stream = await openStream(tn.port, { path: '/slowsse', scope: s });
    assert.equal(stream.status, 200);
    await stream.waitFor(/: hello\n\n/, 3000);
    const early = stream.text();
    const [, endpoint] = await stream.waitFor(/event: endpoint\ndata: ([^\n]+)\n\n/);
    return { stream, early, endpoint };
  }));
  await Promise.all(opened.map(async ({ stream, early, endpoint }, i) => {
    assert.ok(!early.includes('event'), `the bytes before the endpoint event were passed on at once: ${JSON.stringify(early)}`);
    for (let k = 0; k < 3; k++) {
      const r = await sessionRequest(tn.port, undefined, {
        path: endpoint,
        body: JSON.stringify({ jsonrpc: '2.0', id: 300 + i * 10 + k, method: 'ping' }),
      });
      assert.equal(r.status, 202, `POST ${endpoint}: ${r.status} ${r.text}`);
      assert.equal(r.backend, stream.backend, `POST ${endpoint} reached the stream's backend`);
    }
  }));
});

itest('the owner process is killed: its session answers 404 Session not found and the SDK client re-initializes through turnout', async (t, s) => {
  const [a, b] = await Promise.all([startSessionServer(s, { name: 'kill-a' }), startSessionServer(s, { name: 'kill-b' })]);
  const tn = await s.turnout({ upstreams: [upstreamOf({ blue: [a, b] })] });
  // Sessions on both servers; the one we follow lives on the server we kill.
  const clients = await Promise.all(Array.from({ length: 6 }, () => streamableClient(s, tn.port)));
  const who = await Promise.all(clients.map(({ client }) => whoami(client)));
  const victim = who[0].server;
  const victimServer = victim === 'kill-a' ? a : b;
  const survivor = victim === 'kill-a' ? 'kill-b' : 'kill-a';
  await victimServer.stop('SIGKILL');

  const { client, transport } = clients[0];
  const sid = transport.sessionId;
  await assert.rejects(whoami(client), (err) => {
    assert.equal(err.code, 404, `the SDK client saw HTTP 404: ${err}`);
    assert.match(String(err.message), /Session not found/);
    return true;
  });

  // The exact answer, as a client without the SDK sees it (every time, not just once).
  for (let i = 0; i < 3; i++) assertSessionNotFound(await sessionRequest(tn.port, sid), `request ${i} of the dead session`);

  // Sessions on the survivor are untouched.
  for (let i = 0; i < clients.length; i++) {
    if (who[i].server === survivor) assert.equal((await whoami(clients[i].client)).server, survivor);
  }
  // What an SDK client does on 404: a new session, through the same turnout.
  const again = await streamableClient(s, tn.port);
  assert.notEqual(again.transport.sessionId, sid);
  const w = await whoami(again.client);
  assert.equal(w.server, survivor, 'the new session was placed on the live backend');
  assert.equal(w.sessionId, again.transport.sessionId);
});

itest('Mcp-Session-Id is learned from a response header in any letter case', async (t, s) => {
  const tn = await s.turnout({ upstreams: [upstreamOf({ blue: sdk })] });
  for (const hname of ['mcp-session-id', 'MCP-SESSION-ID', 'mCp-SeSsIoN-iD']) {
    const made = await Promise.all(Array.from({ length: 9 }, () => initialize(tn.port, { path: `/raw?hname=${hname}` })));
    for (const r of made) {
      const sid = r.sid;
      assert.equal(r.status, 200);
      assert.ok(sid, `a session id came back under ${hname}: ${JSON.stringify(r.rawHeaders)}`);
      assert.ok(r.rawHeaders.includes(hname), `the header name is passed on as the backend spelled it: ${r.rawHeaders}`);
      const owner = r.backend;
      for (let i = 0; i < 3; i++) {
        const again = await sessionRequest(tn.port, sid, { path: '/raw' });
        assert.equal(again.status, 200, `session minted under ${hname}: ${again.status} ${again.text}`);
        assert.equal(again.backend, owner);
      }
    }
  }
});

// ---------------------------------------------------------------------------------------------
// The mock backend: volume, and what the table does

itest('every request of a session reaches its owner: POST, the GET stream and DELETE, in any header case', async (t, s) => {
  const tn = await s.turnout({ upstreams: [upstreamOf({ blue: mocks })] });
  // 36 random placements miss one of three backends with probability 3·(2/3)^36 < 1e-5.
  const sessions = await createSessions(tn.port, 36);
  assert.equal(new Set(sessions.map((x) => x.owner)).size, 3, 'sessions spread over the three mocks');
  await Promise.all(sessions.map(async ({ sid, owner }) => {
    for (const headerName of ['Mcp-Session-Id', 'mcp-session-id', 'MCP-SESSION-ID']) {
      const r = await sessionRequest(tn.port, sid, { headerName });
      assert.equal(r.status, 200, `${headerName}: ${r.status} ${r.text}`);
      assert.equal(r.backend, owner, `POST with ${headerName} reached the owner`);
    }
    const stream = await openStream(tn.port, { headers: { 'mcp-session-id': sid }, scope: s });
    assert.equal(stream.status, 200);
    assert.equal(stream.backend, owner, 'the GET stream opened at the owner');
    await stream.waitFor(new RegExp(`tick 1 from ${owner}`));
    stream.close();
    const del = await sessionRequest(tn.port, sid, { method: 'DELETE' });
    assert.equal(del.status, 200, `DELETE: ${del.status} ${del.text}`);
    assert.equal(del.backend, owner, 'DELETE reached the owner');
  }));
});

itest('legacy transport on the mock: the endpoint event pins the session, its POSTs (sessionId= or session_id=) go to the owner', async (t, s) => {
  const tn = await s.turnout({ upstreams: [upstreamOf({ blue: mocks })] });
  const streams = await Promise.all(Array.from({ length: 15 }, () => openLegacyStream(tn.port, { scope: s })));
  assert.ok(new Set(streams.map((x) => x.stream.backend)).size >= 2, 'legacy streams spread over the mocks');
  await Promise.all(streams.map(async ({ stream, sid }, i) => {
    for (const [k, target] of [`/messages?sessionId=${sid}`, `/messages?session_id=${sid}`, `/messages?x=1&sessionId=${sid}`].entries()) {
      const id = 500 + i * 10 + k;
      const r = await sessionRequest(tn.port, undefined, {
        path: target,
        body: JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'whoami', arguments: {} } }),
      });
      assert.equal(r.status, 202, `POST ${target}: ${r.status} ${r.text}`);
      assert.equal(r.backend, stream.backend, `POST ${target} reached the stream's owner`);
      await stream.waitFor(new RegExp(`"id":${id},"result":\\{"content":\\[\\{"type":"text","text":"${stream.backend}"`));
    }
  }));
});

itest('unknown session ids go by a consistent hash: same backend every time, in every turnout process', async (t, s) => {
  const upstream = upstreamOf({ blue: mocks });
  const reversed = upstreamOf({ blue: [...mocks].reverse() });
  const [a, b, c] = await Promise.all([
    s.turnout({ upstreams: [upstream] }),
    s.turnout({ upstreams: [upstream] }),
    s.turnout({ upstreams: [reversed] }),
  ]);
  const ids = Array.from({ length: 60 }, () => randomUUID());
  const chosen = await Promise.all(ids.map(async (id) => {
    const rs = [
      await sessionRequest(a.port, id),
      await sessionRequest(a.port, id),
      await sessionRequest(b.port, id, { headerName: 'mcp-session-id' }),
      await sessionRequest(c.port, id),
    ];
    for (const r of rs) assertSessionNotFound(r, `unknown id ${id}`);
    const names = rs.map((r) => r.backend);
    assert.ok(names[0], 'the mock answered (X-Backend)');
    assert.deepEqual(names, Array(4).fill(names[0]),
      `id ${id}: turnout A twice, B, and C (backends listed in reverse order) chose ${names}`);
    return names[0];
  }));
  assert.equal(new Set(chosen).size, 3, 'the hash spreads unknown ids over all the backends');
});

itest('a successful DELETE forgets the session: the next request with its id is routed as unknown', async (t, s) => {
  const { tn, oracle } = await turnoutWithOracle(s);
  const sessions = await createSessions(tn.port, WITNESSES);
  await markWitnesses(sessions, oracle);
  await Promise.all(sessions.map(async (x) => {
    const del = await sessionRequest(tn.port, x.sid, { method: 'DELETE' });
    assert.equal(del.status, 200);
    assert.equal(del.backend, x.owner);
    const next = await sessionRequest(tn.port, x.sid);
    assertSessionNotFound(next, 'after DELETE');
    assert.equal(next.backend, x.rendezvous, `after DELETE ${x.sid} (owner ${x.owner}) went to its rendezvous backend`);
  }));
});

itest('a failed DELETE keeps the session pinned; a successful one forgets it', async (t, s) => {
  const { tn, oracle } = await turnoutWithOracle(s, { upstream: upstreamOf({ blue: sdk }) });
  const sessions = await createSessions(tn.port, WITNESSES, { path: '/raw' });
  await markWitnesses(sessions, oracle);
  await Promise.all(sessions.map(async (x) => {
    const failed = await sessionRequest(tn.port, x.sid, { method: 'DELETE', path: '/raw', headers: { 'X-Fail-Delete': '1' } });
    assert.equal(failed.status, 500);
    assert.equal(failed.backend, x.owner);
    const still = await sessionRequest(tn.port, x.sid, { path: '/raw' });
    assert.equal(still.status, 200, `after a failed DELETE: ${still.status} ${still.text}`);
    assert.equal(still.backend, x.owner, 'a DELETE the owner refused does not unpin the session');
    const del = await sessionRequest(tn.port, x.sid, { method: 'DELETE', path: '/raw' });
    assert.equal(del.status, 200);
    assert.equal(del.backend, x.owner);
    const next = await sessionRequest(tn.port, x.sid, { path: '/raw' });
    assertSessionNotFound(next, 'after DELETE');
    assert.equal(next.backend, x.rendezvous, 'after a successful DELETE the id is routed as unknown');
  }));
});

itest('a 404 from the owner forgets the session', async (t, s) => {
  const { tn, oracle } = await turnoutWithOracle(s);
  const sessions = await createSessions(tn.port, WITNESSES);
  await markWitnesses(sessions, oracle);
  const port = Object.fromEntries(mocks.map((m) => [m.name, m.port]));
  await Promise.all(sessions.map(async (x) => {
    // The owner loses the session behind turnout's back (DELETE straight at the backend).
    const direct = await sessionRequest(port[x.owner], x.sid, { method: 'DELETE' });
    assert.equal(direct.status, 200);
    const first = await sessionRequest(tn.port, x.sid);
    assertSessionNotFound(first, 'the owner no longer has it');
    assert.equal(first.backend, x.owner, 'still pinned: the owner answered');
    const second = await sessionRequest(tn.port, x.sid);
    assertSessionNotFound(second, 'forgotten');
    assert.equal(second.backend, x.rendezvous, `after the owner's 404, ${x.sid} is routed as unknown`);
  }));
});

itest('idle expiry: an idle session is forgotten after session_idle_timeout, a busy one or one with an open stream is not, across a SIGHUP', { timeout: 60000 }, async (t, s) => {
  const upstream = upstreamOf({ blue: mocks }, { session_idle_timeout: '2s' });
  const { tn, oracle } = await turnoutWithOracle(s, { upstream });
  const sessionCount = async () => upstreamIn(await status(tn)).sessions;

  // Busy sessions: a request every second (idle, but for less than the timeout), always on the
  // owner, from their creation until the idle ones are gone. A request is only required to
  // find its session when the one before it was sent at most 2 s before its answer came: on a
  // machine slow enough to leave a longer gap, the session may rightly have expired.
  const busyStart = Date.now();
  const busy = await createSessions(tn.port, 6);
  let busyDone = false;
  s.defer(() => {
    busyDone = true;
  });
  let busyChecked = 0;
  let busyGap = false; // some busy session went more than 2 s without a request
  const busyLoops = Promise.all(busy.map(async (x) => {
    let previous = busyStart;
    while (!busyDone) {
      const sent = Date.now();
      const r = await sessionRequest(tn.port, x.sid);
      if (Date.now() - previous <= 2000) {
        assert.equal(r.status, 200, `busy session: ${r.status} ${r.text}`);
        assert.equal(r.backend, x.owner, 'a session used every second stays on its owner');
        busyChecked += 1;
      } else {
        busyGap = true;
      }
      previous = sent;
      await sleep(1000);
    }
  }));
  busyLoops.catch(() => {}); // awaited below; a failure must not go unhandled meanwhile
  const [idle, streaming] = await Promise.all([createSessions(tn.port, WITNESSES), createSessions(tn.port, WITNESSES)]);
  await markWitnesses(idle, oracle);
  await markWitnesses(streaming, oracle);

  // Open streams: the standalone GET stream (Streamable HTTP) and legacy SSE streams.
  const streams = await Promise.all(streaming.map(async (x) => {
    const st = await openStream(tn.port, { headers: { 'Mcp-Session-Id': x.sid }, scope: s });
    assert.equal(st.backend, x.owner);
    await st.waitFor(/tick 1 /);
    return st;
  }));
  const legacy = await Promise.all(Array.from({ length: 6 }, () => openLegacyStream(tn.port, { scope: s })));
  const all = await sessionCount();
  // A reload on the way changes none of this (the table and its stream counts survive SIGHUP).
  await reloadTurnout(tn, buildConfig({ upstreams: [upstream] }));

  // The idle ones expire: wait for the table to lose them (status counts; a request with
  // their ids would use them and keep them alive). Nothing else can expire meanwhile: the busy
  // sessions are used, the others have streams open.
  const left = await waitUntil(async () => {
    const n = await sessionCount();
    return n <= all - idle.length ? { n } : null;
  }, 20000, `the ${idle.length} idle sessions to expire`);
  busyDone = true;
  await withTimeout(busyLoops, 10000, 'the busy sessions\' last requests');
  assert.ok(busyChecked > 0, 'the busy sessions were checked');
  if (!busyGap) {
    assert.equal(left.n, all - idle.length, 'exactly the idle sessions expired');
  } else {
    // A busy session may have expired too, so the count does not prove every idle one has:
    // wait until all those without a stream are gone.
    t.diagnostic('a busy session went more than 2 s without a request (slow machine)');
    await waitUntil(async () => (await sessionCount()) <= all - idle.length - busy.length, 20000, 'every session without a stream to expire');
  }

  // Idle ones: forgotten, so routed like an unknown id; the witnesses now get 404 elsewhere.
  for (const x of idle) {
    const r = await sessionRequest(tn.port, x.sid);
    assert.equal(r.backend, x.rendezvous, `idle session ${x.sid} (owner ${x.owner}) expired and went to its rendezvous backend`);
    assert.equal(r.status, x.rendezvous === x.owner ? 200 : 404);
  }
  // Streaming ones: kept while the stream is open.
  for (const x of streaming) {
    const r = await sessionRequest(tn.port, x.sid);
    assert.equal(r.status, 200, `a session with an open GET stream is kept: ${r.status} ${r.text}`);
    assert.equal(r.backend, x.owner);
  }
  for (const { stream, sid } of legacy) {
    const r = await sessionRequest(tn.port, undefined, {
      path: `/messages?sessionId=${sid}`,
      body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'ping' }),
    });
    assert.equal(r.status, 202, `a legacy session with its stream open is kept: ${r.status} ${r.text}`);
    assert.equal(r.backend, stream.backend);
  }

  // Once the streams close, those sessions expire too (and the busy ones, unused now), while
  // the legacy ones, streams still open, stay.
  for (const st of streams) st.close();
  const legacyOnly = all - idle.length - busy.length - streaming.length;
  await waitUntil(async () => (await sessionCount()) === legacyOnly, 20000, 'the closed streams\' sessions to expire');
  for (const x of streaming) {
    const r = await sessionRequest(tn.port, x.sid);
    assert.equal(r.backend, x.rendezvous, `after its stream closed, ${x.sid} expired`);
  }
});

/**
 * Sessions over the three mocks; `remove(tn, kept)` takes the owner of the first one out.
 * Then its sessions answer 404 "Session not found" from turnout itself, the others keep their
 * owner, and new sessions go only to the remaining backends.
 */
async function assertRemovedOwnerForgotten(s, remove) {
  const tn = await s.turnout({ upstreams: [upstreamOf({ blue: mocks })] });
  const sessions = await createSessions(tn.port, 18);
  const removed = sessions[0].owner;
  await remove(tn, mocks.filter((m) => m.name !== removed));

  for (const x of sessions) {
    const r = await sessionRequest(tn.port, x.sid);
    if (x.owner === removed) {
      assertSessionNotFound(r, `session of removed backend ${removed}`);
      assert.notEqual(r.backend, removed, 'nothing is sent to a removed backend');
    } else {
      assert.equal(r.status, 200, `a session of a remaining backend keeps working: ${r.status} ${r.text}`);
      assert.equal(r.backend, x.owner);
    }
  }
  for (const x of await createSessions(tn.port, 10)) assert.notEqual(x.owner, removed);
}

itest('the owner is removed from the config and turnout reloads (SIGHUP): its sessions answer 404 Session not found', async (t, s) => {
  await assertRemovedOwnerForgotten(s, (tn, kept) => reloadTurnout(tn, buildConfig({ upstreams: [upstreamOf({ blue: kept })] })));
});

itest('the owner is removed at run time (turnoutctl backends): its sessions answer 404 Session not found', async (t, s) => {
  await assertRemovedOwnerForgotten(s, async (tn, kept) => {
    const r = await ctl(tn, ['backends', 'mcp', 'blue', ...kept.map((m) => m.addr)]);
    assert.equal(r.code, 0, `turnoutctl backends: ${r.stderr}`);
  });
});

itest('session ids outside visible ASCII or longer than 256 bytes answer 400', async (t, s) => {
  const tn = await s.turnout({ upstreams: [upstreamOf({ blue: mocks })] });
  const send = async (target, sidHeader) => {
    const conn = await s.conn(tn.port);
    const body = '{"jsonrpc":"2.0","id":1,"method":"ping"}';
    const head = `POST ${target} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n` +
      `Accept: application/json, text/event-stream\r\n` +
      (sidHeader === undefined ? '' : `Mcp-Session-Id: ${sidHeader}\r\n`) +
      `Content-Length: ${body.length}\r\nConnection: close\r\n\r\n`;
    await conn.write(Buffer.concat([Buffer.from(head, 'latin1'), Buffer.from(body)]));
    const res = await conn.readResponse({ method: 'POST' });
    conn.destroy();
    return res;
  };
  const bad = {
    'a space': 'abc def',
    'a tab': 'abc\tdef',
    '257 bytes': 'x'.repeat(257),
    'UTF-8 (é)': Buffer.from('caf\u00e9', 'utf8').toString('latin1'),
    'a DEL byte': 'abc\x7fdef',
  };
  for (const [what, value] of Object.entries(bad)) {
    assertJsonError(assert, await send('/mcp', value), 400);
    t.diagnostic(`Mcp-Session-Id with ${what}: 400`);
  }
  assertJsonError(assert, await send(`/messages?sessionId=${'y'.repeat(257)}`), 400);
  assertJsonError(assert, await send('/messages?sessionId=caf\xe9'), 400);

  // The limits themselves are fine: 256 visible ASCII bytes are routed (the mock: 404).
  const edge = '!~'.repeat(128);
  const ok = await send('/mcp', edge);
  assert.equal(ok.status, 404, `a 256-byte id is valid: ${ok.status} ${ok.text()}`);
  assert.ok(ok.get('x-backend'), 'it reached a backend');
  const q = await send('/messages?sessionId=a%20b');
  assert.equal(q.status, 404, `percent-encoded bytes are visible ASCII: ${q.status} ${q.text()}`);
});

// ---------------------------------------------------------------------------------------------
// Restarts

itest('the session table survives SIGHUP, and a pinned session ignores weight changes', async (t, s) => {
  const [m0, m1, m2] = mocks;
  const config = (blue, green) => ({ upstreams: [{ ...upstreamOf({ blue: [m0, m1], green: [m2] }), pools: [
    { name: 'blue', weight: blue, backends: [m0.addr, m1.addr] },
    { name: 'green', weight: green, backends: [m2.addr] },
  ] }] });
  const [tn, oracleTn] = await Promise.all([s.turnout(config(100, 0)), s.turnout(config(100, 0))]);
  const sessions = await createSessions(tn.port, WITNESSES);
  for (const x of sessions) assert.notEqual(x.owner, m2.name, 'weight 0: green gets no new session');
  await markWitnesses(sessions, rendezvousOracle(oracleTn));

  await reloadTurnout(tn, buildConfig(config(0, 100)));
  for (const x of await createSessions(tn.port, 5)) assert.equal(x.owner, m2.name, 'after the reload new sessions go to green');
  await Promise.all(sessions.map(async (x) => {
    for (let i = 0; i < 2; i++) {
      const r = await sessionRequest(tn.port, x.sid);
      assert.equal(r.status, 200, `${r.status} ${r.text}`);
      assert.equal(r.backend, x.owner, `session ${x.sid} kept its owner across SIGHUP and the weight change`);
    }
  }));
});

itest('with state_file, the session table survives SIGTERM and a restart', { timeout: 30000 }, async (t, s) => {
  const dir = tempDir(s);
  const stateFile = path.join(dir, 'turnout.state.json');
  const upstream = upstreamOf({ blue: mocks });
  const { tn, oracle } = await turnoutWithOracle(s, { upstream, proxy: { state_file: stateFile } });
  const sessions = await createSessions(tn.port, WITNESSES);
  await markWitnesses(sessions, oracle);
  // One of them ended before the restart: it must not come back.
  const ended = sessions.pop();
  assert.equal((await sessionRequest(tn.port, ended.sid, { method: 'DELETE' })).status, 200);

  tn.child.signal('SIGTERM');
  const exit = await tn.child.waitExit(10000);
  assert.equal(exit.code, 0, `turnout exited 0 after SIGTERM\n${tn.logs()}`);
  assert.ok(readdirSync(dir).length > 0, 'the table was saved next to state_file');

  const again = await s.turnout({ upstreams: [upstream], proxy: { state_file: stateFile } });
  await Promise.all(sessions.map(async (x) => {
    const r = await sessionRequest(again.port, x.sid);
    assert.equal(r.status, 200, `${r.status} ${r.text}`);
    assert.equal(r.backend, x.owner, `session ${x.sid} (rendezvous ${x.rendezvous}) kept its owner across the restart`);
  }));
  const r = await sessionRequest(again.port, ended.sid);
  assert.equal(r.backend, ended.rendezvous, 'the session deleted before the restart is not restored');

  // Restarted again without one backend: its sessions are gone (404), the others kept.
  again.child.signal('SIGTERM');
  assert.equal((await again.child.waitExit(10000)).code, 0, `second SIGTERM\n${again.logs()}`);
  const [, , gone] = mocks;
  const third = await s.turnout({ upstreams: [upstreamOf({ blue: mocks.slice(0, 2) })], proxy: { state_file: stateFile } });
  for (const x of sessions) {
    const res = await sessionRequest(third.port, x.sid);
    if (x.owner === gone.name) {
      assertSessionNotFound(res, 'a session of a backend removed while turnout was down');
      assert.notEqual(res.backend, gone.name);
    } else {
      assert.equal(res.status, 200, `${res.status} ${res.text}`);
      assert.equal(res.backend, x.owner, `session ${x.sid} kept its owner across the second restart`);
    }
  }
});
