// Session affinity with affinity = "token" (SPEC.md "Sessions", issue 3): the session id a
// client sees is an authenticated token naming the owner; the backend sees its own id; any
// turnout process with the same key routes it, with no shared state; a forged or altered token
// answers 404 "Session not found"; keys rotate without breaking live sessions.

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { before } from 'node:test';
import { buildConfig, fileScope, itest, tempDir } from './support/harness.mjs';
import {
  SESSION_NOT_FOUND, createSessions, openLegacyStream, openStream, reloadTurnout, sessionRequest,
  sseClient, startSessionServer, streamableClient, upstreamOf, whoami,
} from './support/session_helpers.mjs';

const shared = fileScope();
let mocks;
let sdk;

before(async () => {
  [mocks, sdk] = await Promise.all([
    Promise.all([0, 1, 2].map((i) => shared.mock({ name: `tok-m${i}` }))),
    Promise.all([0, 1, 2].map((i) => startSessionServer(shared, { name: `tok-sdk${i}` }))),
  ]);
});

const KEY_OLD = 'old-secret-0123456789abcdef';
const KEY_NEW = 'new-secret-fedcba9876543210';
const KEY_OTHER = 'another-fleet-secret-000000';

/** Writes a key file (one secret a line, the first one signs); returns its absolute path. */
function keyFile(s, keys, file) {
  const p = file ?? path.join(tempDir(s), 'token.key');
  writeFileSync(p, `${keys.join('\n')}\n`);
  return p;
}

const tokenUpstream = (backends, key) => upstreamOf({ blue: backends }, { affinity: 'token', affinity_key_file: key });

function assertSessionNotFound(r, what) {
  assert.equal(r.status, 404, `${what}: expected 404, got ${r.status} ${r.text}`);
  assert.deepEqual(JSON.parse(r.text), SESSION_NOT_FOUND, `${what}: the JSON-RPC "Session not found" body`);
}

/** The same token with the character at `i` replaced by another base64url character. */
function alterAt(token, i) {
  const c = token[i];
  const other = c === 'A' ? 'B' : 'A';
  return token.slice(0, i) + other + token.slice(i + 1);
}

itest('token mode: two turnout processes with the same key route each other\'s sessions (SDK clients and servers)', { timeout: 30000 }, async (t, s) => {
  const key = keyFile(s, [KEY_OLD]);
  const upstream = tokenUpstream(sdk, key);
  const [a, b] = await Promise.all([s.turnout({ upstreams: [upstream] }), s.turnout({ upstreams: [upstream] })]);
  const initial = await Promise.all(sdk.map((x) => x.stats()));

  const viaA = await Promise.all(Array.from({ length: 12 }, () => streamableClient(s, a.port)));
  const sessions = await Promise.all(viaA.map(async ({ client, transport }) => {
    const token = transport.sessionId;
    const w = await whoami(client);
    return { token, backendId: w.sessionId, owner: w.server, client };
  }));
  assert.ok(new Set(sessions.map((x) => x.owner)).size >= 2, 'sessions spread over the servers');

  for (const x of sessions) {
    assert.ok(x.token, 'the client got a session id');
    assert.notEqual(x.token, x.backendId, 'the client holds a token, not the backend\'s own id');
    assert.ok(!x.token.includes(x.backendId), 'the token does not show the backend id in clear');
    for (const server of sdk) {
      assert.ok(!x.token.includes(server.addr) && !x.token.includes(String(server.port)),
        `the token does not reveal a backend address: ${x.token}`);
    }
  }

  // Each session continues through the other turnout process, on the same backend session.
  await Promise.all(sessions.map(async (x) => {
    const { client } = await streamableClient(s, b.port, { sessionId: x.token });
    for (let i = 0; i < 3; i++) {
      const w = await whoami(client);
      assert.equal(w.server, x.owner, `token of a session on ${x.owner} answered by ${w.server} through B`);
      assert.equal(w.sessionId, x.backendId, 'B restored the backend\'s own id');
    }
    const again = await whoami(x.client);
    assert.equal(again.server, x.owner, 'and it still works through A');
  }));

  const stats = await Promise.all(sdk.map((x) => x.stats()));
  stats.forEach((st, i) => assert.equal(st.notFound - initial[i].notFound, 0, `${st.name}: no request for a session it does not hold`));

  // DELETE through B ends the backend session; a later request with the token gets 404.
  const x = sessions[0];
  const { transport } = await streamableClient(s, b.port, { sessionId: x.token });
  await transport.terminateSession();
  const owner = sdk.find((server) => server.name === x.owner);
  assert.ok(!(await owner.stats()).sessions.streamable.includes(x.backendId), 'the DELETE reached the owner');
  assertSessionNotFound(await sessionRequest(a.port, x.token), 'a deleted session');
});

itest('token mode: POST, the GET stream and DELETE carry the token, the backend gets its own id', async (t, s) => {
  const tn = await s.turnout({ upstreams: [tokenUpstream(mocks, keyFile(s, [KEY_OLD]))] });
  const sessions = await createSessions(tn.port, 9);
  await Promise.all(sessions.map(async ({ sid, owner }) => {
    // The mock mints 32 lowercase hex digits; what the client holds is something else.
    assert.doesNotMatch(sid, /^[0-9a-f]{32}$/, 'the client was handed a token');
    for (const headerName of ['Mcp-Session-Id', 'mcp-session-id', 'MCP-SESSION-ID']) {
      const r = await sessionRequest(tn.port, sid, { headerName });
      // The mock answers 200 only for ids it minted: turnout restored the original.
      assert.equal(r.status, 200, `${headerName}: ${r.status} ${r.text}`);
      assert.equal(r.backend, owner);
    }
    const stream = await openStream(tn.port, { headers: { 'Mcp-Session-Id': sid }, scope: s });
    assert.equal(stream.status, 200);
    assert.equal(stream.backend, owner);
    await stream.waitFor(new RegExp(`tick 1 from ${owner}`));
    stream.close();
    const del = await sessionRequest(tn.port, sid, { method: 'DELETE' });
    assert.equal(del.status, 200);
    assert.equal(del.backend, owner, 'DELETE reached the owner');
    const after = await sessionRequest(tn.port, sid);
    assertSessionNotFound(after, 'after DELETE');
    assert.equal(after.backend, owner, 'the owner itself says the session is gone');
  }));
});

itest('token mode: a tampered, truncated, forged or foreign token answers 404 Session not found', async (t, s) => {
  const [tn, foreign] = await Promise.all([
    s.turnout({ upstreams: [tokenUpstream(mocks, keyFile(s, [KEY_OLD]))] }),
    s.turnout({ upstreams: [tokenUpstream(mocks, keyFile(s, [KEY_OTHER]))] }),
  ]);
  const [{ sid: token, owner }] = await createSessions(tn.port, 1);
  const [{ sid: foreignToken }] = await createSessions(foreign.port, 1);

  const bad = {
    'one character changed in the middle': alterAt(token, Math.floor(token.length / 2)),
    'the first character changed': alterAt(token, 0),
    'the last character changed': alterAt(token, token.length - 1),
    'truncated by 4 characters': token.slice(0, -4),
    'one character appended': `${token}A`,
    'a token of another key': foreignToken,
    'a random id': randomUUID(),
  };
  for (const [what, value] of Object.entries(bad)) {
    assert.notEqual(value, token);
    const r = await sessionRequest(tn.port, value);
    assertSessionNotFound(r, what);
    assert.equal(r.backend, undefined, `${what}: turnout answered itself, nothing went to a backend (got ${r.backend})`);
  }
  // A token that is not even a valid session id is refused before anything else.
  const spaced = await sessionRequest(tn.port, undefined, { headers: { 'Mcp-Session-Id': `${token.slice(0, 10)} ${token.slice(10)}` } });
  assert.equal(spaced.status, 400, `a token with a space: ${spaced.status} ${spaced.text}`);

  const ok = await sessionRequest(tn.port, token);
  assert.equal(ok.status, 200, 'the genuine token still works');
  assert.equal(ok.backend, owner);
});

itest('token mode: key rotation — reload or restart with keys {new, old} still opens old tokens', { timeout: 30000 }, async (t, s) => {
  const keyPath = keyFile(s, [KEY_OLD]);
  const upstream = tokenUpstream(mocks, keyPath);
  const a = await s.turnout({ upstreams: [upstream] });
  const oldSessions = await createSessions(a.port, 3);

  // Rotate: the new key signs, the old one still opens.
  keyFile(s, [KEY_NEW, KEY_OLD], keyPath);
  await reloadTurnout(a, buildConfig({ upstreams: [upstream] }));
  for (const x of oldSessions) {
    const r = await sessionRequest(a.port, x.sid);
    assert.equal(r.status, 200, `an old token after the reload: ${r.status} ${r.text}`);
    assert.equal(r.backend, x.owner);
  }
  const newSessions = await createSessions(a.port, 3);

  // New tokens are signed with the new key: a process with only the new key opens them,
  // one with only the old key does not.
  const [onlyNew, onlyOld] = await Promise.all([
    s.turnout({ upstreams: [tokenUpstream(mocks, keyFile(s, [KEY_NEW]))] }),
    s.turnout({ upstreams: [tokenUpstream(mocks, keyFile(s, [KEY_OLD]))] }),
  ]);
  for (const x of newSessions) {
    const r = await sessionRequest(onlyNew.port, x.sid);
    assert.equal(r.status, 200, `a token minted after the rotation, new key only: ${r.status} ${r.text}`);
    assert.equal(r.backend, x.owner);
    assertSessionNotFound(await sessionRequest(onlyOld.port, x.sid), 'a new token where only the old key is known');
  }

  // A restart with {new, old} opens both generations.
  a.child.signal('SIGTERM');
  assert.equal((await a.child.waitExit(10000)).code, 0);
  const restarted = await s.turnout({ upstreams: [upstream] });
  for (const x of [...oldSessions, ...newSessions]) {
    const r = await sessionRequest(restarted.port, x.sid);
    assert.equal(r.status, 200, `after the restart: ${r.status} ${r.text}`);
    assert.equal(r.backend, x.owner);
  }
});

itest('token mode: sessions of a killed or removed backend answer 404 Session not found', async (t, s) => {
  const own = await Promise.all([0, 1, 2].map((i) => s.mock({ name: `tok-own${i}` })));
  const key = keyFile(s, [KEY_OLD]);
  const tn = await s.turnout({ upstreams: [tokenUpstream(own, key)] });
  const sessions = await createSessions(tn.port, 36);
  assert.equal(new Set(sessions.map((x) => x.owner)).size, 3, 'sessions on all three mocks');
  const [killed, removed] = [own[0], own[1]];
  await killed.child.stop('SIGKILL');
  await reloadTurnout(tn, buildConfig({ upstreams: [tokenUpstream([own[0], own[2]], key)] }));
  for (const x of sessions) {
    const r = await sessionRequest(tn.port, x.sid);
    if (x.owner === killed.name || x.owner === removed.name) {
      assertSessionNotFound(r, `a session of ${x.owner}`);
      assert.notEqual(r.backend, removed.name, 'nothing goes to a removed backend');
    } else {
      assert.equal(r.status, 200);
      assert.equal(r.backend, x.owner);
    }
  }
});

itest('token mode, legacy transport: the endpoint URL carries a token that any turnout with the key routes', async (t, s) => {
  const key = keyFile(s, [KEY_OLD]);
  const [a, b] = await Promise.all([
    s.turnout({ upstreams: [tokenUpstream(mocks, key)] }),
    s.turnout({ upstreams: [tokenUpstream(mocks, key)] }),
  ]);
  const streams = await Promise.all(Array.from({ length: 6 }, () => openLegacyStream(a.port, { scope: s })));
  for (const [i, { stream, sid }] of streams.entries()) {
    assert.doesNotMatch(sid, /^[0-9a-f]{32}$/, `the endpoint event handed the client a token, not the mock's id: ${sid}`);
    for (const [k, tn] of [a, b].entries()) {
      const id = 700 + i * 10 + k;
      const r = await sessionRequest(tn.port, undefined, {
        path: `/messages?sessionId=${sid}`,
        body: JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'whoami', arguments: {} } }),
      });
      assert.equal(r.status, 202, `POST via turnout ${k === 0 ? 'A' : 'B'}: ${r.status} ${r.text}`);
      assert.equal(r.backend, stream.backend);
      await stream.waitFor(new RegExp(`"id":${id},"result"`));
    }
  }

  // The SDK's SSE client through token mode, against the SDK's SSE server.
  const tn = await s.turnout({ upstreams: [tokenUpstream(sdk, key)] });
  const { client, transport } = await sseClient(s, tn.port);
  const w = await whoami(client);
  const posted = transport._endpoint?.searchParams.get('sessionId');
  assert.equal(w.transport, 'sse');
  assert.notEqual(posted, w.sessionId, 'the SSE client holds a token, the server its own id');
});
