// End-to-end MCP sessions through turnout with the official TypeScript SDK: the SDK client
// against the SDK server (McpServer + StreamableHTTPServerTransport), and against the mock.

import assert from 'node:assert/strict';
import { before } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { fileScope, httpRequest, itest, waitUntil, withTimeout } from './support/harness.mjs';

const shared = fileScope();
let sdk;
let mock;

before(async () => {
  [sdk, mock] = await Promise.all([shared.sdkServer({ name: 'sdk-a' }), shared.mock({ name: 'mock-a' })]);
});

async function connectClient(s, port, path = '/mcp') {
  const client = new Client({ name: 'turnout-it-client', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${port}${path}`));
  await withTimeout(client.connect(transport), 10000, 'MCP initialize through turnout');
  s.defer(() => client.close().catch(() => {}));
  return { client, transport };
}

const textOf = (result) => result.content.map((c) => c.text).join('');

itest('an SDK client runs a full MCP session through turnout against an SDK server', async (t, s) => {
  const tn = await s.turnout({ backends: [sdk.addr] });
  const { client, transport } = await connectClient(s, tn.port);

  assert.equal(client.getServerVersion().name, 'turnout-test-sdk-a');
  assert.ok(transport.sessionId, 'initialize through turnout returned an Mcp-Session-Id');

  const { tools } = await client.listTools();
  const names = tools.map((tool) => tool.name).sort();
  for (const want of ['add', 'echo', 'whoami']) assert.ok(names.includes(want), `tools/list has ${want}: ${names}`);

  assert.equal(textOf(await client.callTool({ name: 'echo', arguments: { text: 'through the proxy' } })), 'through the proxy');
  assert.equal(textOf(await client.callTool({ name: 'add', arguments: { a: 2, b: 40 } })), '42');

  // The session id the server sees is the one the client holds: turnout passes it unchanged.
  const who = JSON.parse(textOf(await client.callTool({ name: 'whoami', arguments: {} })));
  assert.equal(who.sessionId, transport.sessionId);

  await client.ping();
  await withTimeout(transport.terminateSession(), 5000, 'DELETE of the session');
  assert.equal(transport.sessionId, undefined, 'the client dropped its session after DELETE');
});

itest('a deleted session is gone at the server: a request with its id answers 404 through turnout', async (t, s) => {
  const tn = await s.turnout({ backends: [sdk.addr] });
  const { transport } = await connectClient(s, tn.port);
  const sid = transport.sessionId;
  await transport.terminateSession();

  const res = await httpRequest(tn.port, {
    method: 'POST',
    path: '/mcp',
    headers: {
      'Content-Type': 'application/json',
      Accept: 'application/json, text/event-stream',
      'Mcp-Session-Id': sid,
      'Mcp-Protocol-Version': '2025-06-18',
    },
    body: JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/list' }),
  });
  assert.equal(res.status, 404, res.text());
});

itest('tool progress notifications stream through turnout before the tool result', async (t, s) => {
  const tn = await s.turnout({ backends: [sdk.addr] });
  const { client } = await connectClient(s, tn.port);
  const progress = [];
  const result = await client.callTool({ name: 'progress', arguments: { steps: 4 } }, undefined, {
    onprogress: (p) => progress.push(p.progress),
    timeout: 10000,
  });
  assert.equal(textOf(result), 'done');
  assert.deepEqual(progress, [1, 2, 3, 4]);
});

itest('a server notification reaches the client over the standalone GET SSE stream through turnout', async (t, s) => {
  const tn = await s.turnout({ backends: [sdk.addr] });
  const { client } = await connectClient(s, tn.port);
  let notified = 0;
  client.setNotificationHandler(ToolListChangedNotificationSchema, () => {
    notified += 1;
  });
  // The client opens its GET stream on its own right after initialize; a notification sent
  // before the server has that stream is dropped by the server, so announce until one arrives.
  let name;
  for (let attempt = 0; attempt < 10 && notified === 0; attempt++) {
    name = textOf(await client.callTool({ name: 'announce', arguments: {} }));
    await waitUntil(() => notified > 0, 500, 'tools/list_changed').catch(() => {});
  }
  assert.ok(notified > 0, 'notifications/tools/list_changed arrived over the GET stream');
  const { tools } = await client.listTools();
  assert.ok(tools.some((tool) => tool.name === name));
});

itest('two concurrent SDK sessions through turnout stay apart', async (t, s) => {
  const tn = await s.turnout({ backends: [sdk.addr] });
  const [a, b] = await Promise.all([connectClient(s, tn.port), connectClient(s, tn.port)]);
  assert.notEqual(a.transport.sessionId, b.transport.sessionId);
  const [wa, wb] = await Promise.all([
    a.client.callTool({ name: 'whoami', arguments: {} }),
    b.client.callTool({ name: 'whoami', arguments: {} }),
  ]);
  assert.equal(JSON.parse(textOf(wa)).sessionId, a.transport.sessionId);
  assert.equal(JSON.parse(textOf(wb)).sessionId, b.transport.sessionId);
  await Promise.all([a.transport.terminateSession(), b.transport.terminateSession()]);
});

itest('an SDK client runs an MCP session through turnout against the mock backend', async (t, s) => {
  const tn = await s.turnout({ backends: [mock.addr] });
  const { client, transport } = await connectClient(s, tn.port);
  assert.ok(transport.sessionId, 'the mock handed out an Mcp-Session-Id through turnout');
  const { tools } = await client.listTools();
  const names = tools.map((tool) => tool.name);
  for (const want of ['echo', 'whoami', 'sleep']) assert.ok(names.includes(want), `tools/list has ${want}: ${names}`);
  const result = await client.callTool({ name: 'echo', arguments: { text: 'hello mock' } });
  assert.match(textOf(result), /hello mock/);
  await client.ping();
  await transport.terminateSession();
});

itest('initialize over plain HTTP through turnout returns the backend\'s Mcp-Session-Id header', async (t, s) => {
  const tn = await s.turnout({ backends: [mock.addr] });
  const res = await httpRequest(tn.port, {
    method: 'POST',
    path: '/mcp',
    headers: { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' },
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'curl', version: '1' } },
    }),
  });
  assert.equal(res.status, 200, res.text());
  assert.equal(res.get('x-backend'), 'mock-a');
  assert.ok(res.get('mcp-session-id'), `Mcp-Session-Id present: ${JSON.stringify(res.headers)}`);
  assert.match(res.text(), /"result"/);
});
