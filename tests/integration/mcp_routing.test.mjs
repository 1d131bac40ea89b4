// Routes on MCP method and tool (SPEC.md "Both MCP generations, and routing by method and
// tool"): 2026-style requests (Mcp-Method / Mcp-Name, no session) routed by method and tool,
// the same calls without headers routed by their JSON-RPC body, bodies over max_inspect_bytes
// routed by path and forwarded byte for byte, header/body mismatch → 400, pinned 2025
// sessions (the official SDK client and server) unaffected by method routes, and client_key
// stickiness through a weight change.

import assert from 'node:assert/strict';
import http from 'node:http';
import { before } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { fileScope, httpRequest, itest } from './support/harness.mjs';
import { setWeights } from './support/control_helpers.mjs';

const shared = fileScope();
const mocks = {};

before(async () => {
  for (const name of ['main', 'search', 'lists', 'blue', 'green'])
    mocks[name] = await shared.mock({ name: `mcp-${name}` });
});

const upstream = (name, extra = {}) => ({ name, pools: [{ name: 'p', weight: 100, backends: [mocks[name].addr] }], ...extra });

const ROUTES = [
  { path_prefix: '/', upstream: 'main' },
  { path_prefix: '/', mcp_method: 'tools/call', mcp_name: 'search_*', upstream: 'search' },
  { path_prefix: '/', mcp_method: 'tools/*', upstream: 'lists' },
];

function routedTurnout(s, proxy = {}) {
  return s.turnout({ upstreams: ['main', 'search', 'lists'].map((n) => upstream(n)), routes: ROUTES, proxy });
}

const rpc = (method, params, id = 1) => JSON.stringify({ jsonrpc: '2.0', id, method, ...(params ? { params } : {}) });

// POST /echo: the mock answers with the body it received, and X-Backend names it.
function post(tn, body, headers = {}) {
  return httpRequest(tn.port, {
    method: 'POST',
    path: '/echo',
    headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), ...headers },
    body,
  });
}

const CALLS = [
  { method: 'tools/call', params: { name: 'search_web', arguments: { q: 'x' } }, name: 'search_web', backend: 'mcp-search' },
  { method: 'tools/call', params: { name: 'add', arguments: { a: 1, b: 2 } }, name: 'add', backend: 'mcp-lists' },
  { method: 'tools/list', params: undefined, name: undefined, backend: 'mcp-lists' },
  { method: 'resources/read', params: { uri: 'file:///search_me' }, name: 'file:///search_me', backend: 'mcp-main' },
  { method: 'initialize', params: { protocolVersion: '2025-06-18' }, name: undefined, backend: 'mcp-main' },
];

itest('2026-style requests (Mcp-Method, Mcp-Name, no session) are routed by method and tool; most specific wins', async (t, s) => {
  const tn = await routedTurnout(s);
  for (const c of CALLS) {
    const headers = { 'Mcp-Method': c.method, ...(c.name ? { 'Mcp-Name': c.name } : {}) };
    const res = await post(tn, rpc(c.method, c.params), headers);
    assert.equal(res.status, 200, res.text());
    assert.equal(res.get('x-backend'), c.backend, `${c.method} ${c.name ?? ''}`);
  }
  // Headers alone route too (a body that is not JSON-RPC leaves the headers to decide).
  const res = await post(tn, 'not json', { 'Mcp-Method': 'tools/call', 'Mcp-Name': 'search_news' });
  assert.equal(res.get('x-backend'), 'mcp-search');
});

itest('the same calls without the headers (2025 clients) are routed by their JSON-RPC body, which arrives intact', async (t, s) => {
  const tn = await routedTurnout(s);
  for (const c of CALLS) {
    const body = rpc(c.method, c.params);
    const res = await post(tn, body);
    assert.equal(res.get('x-backend'), c.backend, `${c.method} ${c.name ?? ''}`);
    assert.equal(res.text(), body);
  }
  // A notification routes by its method like a request.
  assert.equal((await post(tn, JSON.stringify({ jsonrpc: '2.0', method: 'tools/notify' }))).get('x-backend'), 'mcp-lists');
  // A body larger than one read buffer (held whole before routing), forwarded byte for byte.
  const big = rpc('tools/call', { name: 'search_deep', arguments: { pad: 'é'.repeat(20000) } }, 'big');
  const res = await post(tn, big);
  assert.equal(res.get('x-backend'), 'mcp-search');
  assert.ok(res.body.equals(Buffer.from(big)), 'the inspected body arrived byte for byte');
  // A batch has no single method: the path decides.
  const batch = JSON.stringify([JSON.parse(rpc('tools/list')), JSON.parse(rpc('tools/call', { name: 'search_x' }, 2))]);
  assert.equal((await post(tn, batch)).get('x-backend'), 'mcp-main');
});

itest('a request with Expect: 100-continue gets its 100 before turnout reads its body for routing', async (t, s) => {
  const tn = await routedTurnout(s);
  const body = rpc('tools/call', { name: 'search_web' });
  const conn = await s.conn(tn.port);
  await conn.write(`POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n` +
    'Expect: 100-continue\r\n\r\n');
  const interim = await conn.readResponse({ interim: true });
  assert.equal(interim.status, 100);
  await conn.write(body);
  const res = await conn.readResponse();
  assert.equal(res.status, 200);
  assert.equal(res.get('x-backend'), 'mcp-search');
  assert.equal(res.body.toString(), body);
});

itest('a body over max_inspect_bytes is routed by headers and path, and forwarded byte for byte', async (t, s) => {
  const tn = await routedTurnout(s, { max_inspect_bytes: 512 });
  const body = rpc('tools/call', { name: 'search_web', arguments: { pad: 'x'.repeat(4000) } });
  const byPath = await post(tn, body);
  assert.equal(byPath.get('x-backend'), 'mcp-main', 'too large to read: the path route');
  assert.ok(byPath.body.equals(Buffer.from(body)));
  const byHeaders = await post(tn, body, { 'Mcp-Method': 'tools/call', 'Mcp-Name': 'search_web' });
  assert.equal(byHeaders.get('x-backend'), 'mcp-search', 'the headers still route it');
  assert.ok(byHeaders.body.equals(Buffer.from(body)));
  // Small bodies are still read.
  assert.equal((await post(tn, rpc('tools/call', { name: 'search_web' }))).get('x-backend'), 'mcp-search');
});

/** A chunked POST /echo on a raw connection, its body cut into the given pieces (one chunk each). */
async function postChunked(s, tn, pieces, headers = '') {
  const conn = await s.conn(tn.port);
  await conn.write(`POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n${headers}` +
    'Transfer-Encoding: chunked\r\n\r\n');
  for (const piece of pieces) await conn.write(`${Buffer.byteLength(piece).toString(16)}\r\n${piece}\r\n`);
  await conn.write('0\r\n\r\n');
  return conn.readResponse({ method: 'POST' });
}

/** body cut into n pieces of about the same length (cuts may fall inside a JSON string). */
const cut = (body, n) => Array.from({ length: n }, (_, i) => body.slice(Math.floor((i * body.length) / n), Math.floor(((i + 1) * body.length) / n)));

itest('chunked requests without the headers are routed by their JSON-RPC body, which arrives intact', async (t, s) => {
  const tn = await routedTurnout(s);
  for (const c of CALLS) {
    const body = rpc(c.method, c.params);
    const res = await postChunked(s, tn, cut(body, 3));
    assert.equal(res.status, 200, res.text());
    assert.equal(res.get('x-backend'), c.backend, `${c.method} ${c.name ?? ''}`);
    assert.equal(res.body.toString(), body);
  }
  // Node's own client sends a body written in several calls as chunks.
  const body = rpc('tools/call', { name: 'search_news', arguments: { q: 'y'.repeat(3000) } });
  const res = await new Promise((resolve, reject) => {
    const req = http.request({ port: tn.port, host: '127.0.0.1', method: 'POST', path: '/echo', headers: { 'Content-Type': 'application/json' } }, (r) => {
      const parts = [];
      r.on('data', (d) => parts.push(d));
      r.on('end', () => resolve({ status: r.statusCode, backend: r.headers['x-backend'], body: Buffer.concat(parts).toString() }));
    });
    req.on('error', reject);
    for (const piece of cut(body, 5)) req.write(piece);
    req.end();
  });
  assert.equal(res.status, 200);
  assert.equal(res.backend, 'mcp-search');
  assert.equal(res.body, body);
  // A chunked body whose Mcp-Method disagrees is refused like any other.
  const mismatch = await postChunked(s, tn, cut(rpc('tools/call', { name: 'add' }, 5), 2), 'Mcp-Method: tools/list\r\n');
  assert.equal(mismatch.status, 400);
  assert.match(mismatch.text(), /Header mismatch/);
});

itest('a chunked body over max_inspect_bytes is routed by path and forwarded byte for byte', async (t, s) => {
  const tn = await routedTurnout(s, { max_inspect_bytes: 512 });
  const body = rpc('tools/call', { name: 'search_web', arguments: { pad: 'x'.repeat(4000) } });
  const byPath = await postChunked(s, tn, cut(body, 4));
  assert.equal(byPath.status, 200);
  assert.equal(byPath.get('x-backend'), 'mcp-main', 'too large to read: the path route');
  assert.equal(byPath.body.toString(), body);
  // Small chunked bodies are still read.
  const small = rpc('tools/call', { name: 'search_web' });
  const res = await postChunked(s, tn, cut(small, 2));
  assert.equal(res.get('x-backend'), 'mcp-search');
  assert.equal(res.body.toString(), small);
});

itest('headers and body that disagree answer 400 with JSON-RPC -32001 "Header mismatch" and the request id', async (t, s) => {
  const tn = await routedTurnout(s);
  const res = await post(tn, rpc('tools/call', { name: 'delete_all' }, 42), { 'Mcp-Method': 'tools/call', 'Mcp-Name': 'search_web' });
  assert.equal(res.status, 400);
  assert.match(res.get('content-type'), /application\/json/);
  assert.deepEqual(res.json(), {
    jsonrpc: '2.0',
    error: { code: -32001, message: 'Header mismatch: Mcp-Name is "search_web" but the body names "delete_all"' },
    id: 42,
  });
  const method = await post(tn, rpc('tools/list', undefined, 'a'), { 'Mcp-Method': 'tools/call' });
  assert.equal(method.status, 400);
  assert.equal(method.json().id, 'a');
  assert.match(method.json().error.message, /^Header mismatch: Mcp-Method is "tools\/call" but the body's method is "tools\/list"$/);
  const batch = await post(tn, `[${rpc('tools/list')}]`, { 'Mcp-Method': 'tools/list' });
  assert.equal(batch.status, 400);
  assert.equal(batch.json().id, null);
});

// The official SDK (a 2025 client: no Mcp-Method headers, sessions) against two SDK servers.
async function sdkClient(port) {
  const client = new Client({ name: 'turnout-it-routing', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${port}/mcp`));
  await client.connect(transport);
  return { client, transport, close: () => client.close() };
}

const whoami = async (client) => JSON.parse((await client.callTool({ name: 'whoami', arguments: {} })).content[0].text).server;

itest('a pinned 2025 session goes to its owner whatever the method routes say (official SDK client and servers)', async (t, s) => {
  const [one, two] = await Promise.all([s.sdkServer({ name: 'one' }), s.sdkServer({ name: 'two' })]);
  const up = (name, b) => ({ name, pools: [{ name: 'p', weight: 100, backends: [b.addr] }] });
  const tn = await s.turnout({
    upstreams: [up('one', one), up('two', two)],
    routes: [
      { path_prefix: '/', upstream: 'one' },
      // initialize (read from the body: the SDK sends no Mcp-Method) creates the session on "two"...
      { path_prefix: '/', mcp_method: 'initialize', upstream: 'two' },
      // ...and no rule on the session's later requests moves them.
      { path_prefix: '/', mcp_method: 'tools/*', upstream: 'one' },
      { path_prefix: '/', mcp_method: 'tools/call', mcp_name: 'who*', upstream: 'one' },
    ],
  });
  const c = await sdkClient(tn.port);
  s.defer(() => c.close());
  assert.equal(await whoami(c.client), 'two');
  const tools = await c.client.listTools();
  assert.ok(tools.tools.some((tool) => tool.name === 'whoami'));
  for (let i = 0; i < 5; i++) assert.equal(await whoami(c.client), 'two');
});

itest('client_key: each client stays on one pool at 50/50; raising the canary moves only clients to it', async (t, s) => {
  const tn = await s.turnout({
    upstreams: [{
      name: 'mcp',
      client_key: 'header:X-Client',
      pools: [
        { name: 'blue', weight: 50, backends: [mocks.blue.addr] },
        { name: 'green', weight: 50, backends: [mocks.green.addr] },
      ],
    }],
  });
  const backendOf = async (key) => (await httpRequest(tn.port, { path: '/health', headers: { 'X-Client': key } })).get('x-backend');
  const placed = new Map();
  for (let round = 0; round < 20; round++) {
    for (let k = 0; k < 50; k++) { // 1 000 requests from 50 keys
      const key = `client-${k}`;
      const b = await backendOf(key);
      if (!placed.has(key)) placed.set(key, b);
      assert.equal(b, placed.get(key), `${key} stays on one pool`);
    }
  }
  const counts = [...placed.values()].reduce((m, b) => m.set(b, (m.get(b) ?? 0) + 1), new Map());
  assert.ok(counts.get('mcp-blue') > 0 && counts.get('mcp-green') > 0, `both pools used: ${JSON.stringify([...counts])}`);

  // A canary at 10 %, then 25 %: its clients stay, and only clients of blue move — to green.
  await setWeights(tn, { blue: 90, green: 10 });
  const keys = Array.from({ length: 400 }, (_, k) => `user-${k}`);
  const before10 = new Map();
  for (const key of keys) before10.set(key, await backendOf(key));
  await setWeights(tn, { blue: 75, green: 25 });
  let canary = 0;
  let moved = 0;
  for (const key of keys) {
    const now = await backendOf(key);
    if (before10.get(key) === 'mcp-green') {
      canary += 1;
      assert.equal(now, 'mcp-green', `${key} was on the canary and stays there`);
    } else if (now !== before10.get(key)) {
      moved += 1;
    }
  }
  const share = moved / keys.length;
  assert.ok(canary > 0, 'some clients were on the canary at 10 %');
  assert.ok(share > 0.07 && share < 0.25, `about 15 % of the clients move to the canary: ${moved} of ${keys.length}`);
  // Without the key header, a request is placed by weight alone (still served).
  assert.equal((await httpRequest(tn.port, { path: '/health' })).status, 200);
});
