// An MCP server from the official TypeScript SDK (McpServer + StreamableHTTPServerTransport,
// stateful sessions) that a health test can break on purpose. On 127.0.0.1:0; prints
// `listening on 127.0.0.1:PORT` on stdout.
//
//   node health_server.mjs [--name NAME] [--tools base|alt|added|removed] [--json]
//
// --tools base: echo {text} and whoami. alt: the same tool names, but echo takes an extra
// `times` argument (a different input schema, so a different tools hash). added: base plus
// search {query}. removed: echo alone (whoami is gone). --json: JSON answers instead of SSE
// (enableJsonResponse).
//
// Endpoints: /mcp (POST, GET, DELETE), GET /health, and the test's remote control:
//   PUT /admin/mode {"mode": M}   M = "ok" | "broken-init" | "draining" | "error500"
//     broken-init: initialize answers 500 with a JSON-RPC error; /health still answers 200.
//     draining:    like a draining MCP server: new sessions (initialize) and /health answer 503,
//                  existing sessions are served.
//     error500:    every /mcp request answers 500.
//   GET /admin/stats → {"initialize": n, "requests": n, "sessions": n}  (/mcp requests seen;
//                      sessions open now)
// A request carrying `X-Test-Status: NNN` is answered NNN with a JSON-RPC error body.
// Every response carries `X-Backend: NAME`.

import http from 'node:http';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import { jsonRpcError, readBody, serveKnownSession, serveOnLoopback, sessionTransport } from './backend_common.mjs';

function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : fallback;
}
const serverName = arg('--name', 'health-sdk');
const toolSet = arg('--tools', 'base');
const jsonResponses = process.argv.includes('--json');

const sessions = new Map(); // session id -> transport
let mode = 'ok';
const stats = { initialize: 0, requests: 0 };

function buildServer() {
  const server = new McpServer({ name: `turnout-health-${serverName}`, version: '1.0.0' });
  const echoSchema = toolSet === 'alt' ? { text: z.string(), times: z.number().int() } : { text: z.string() };
  server.registerTool('echo', {
    description: 'Returns its text argument',
    inputSchema: echoSchema,
  }, async ({ text, times }) => ({ content: [{ type: 'text', text: text.repeat(times ?? 1) }] }));
  if (toolSet !== 'removed') {
    server.registerTool('whoami', {
      description: 'The server name',
    }, async () => ({ content: [{ type: 'text', text: serverName }] }));
  }
  if (toolSet === 'added') {
    server.registerTool('search', {
      description: 'Finds nothing, politely',
      inputSchema: { query: z.string() },
    }, async ({ query }) => ({ content: [{ type: 'text', text: `no results for ${query}` }] }));
  }
  return server;
}

function sendJson(res, status, value) {
  res.writeHead(status, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify(value));
}

async function admin(req, res, pathname) {
  if (pathname === '/admin/mode' && req.method === 'PUT') {
    const next = JSON.parse(await readBody(req)).mode;
    if (!['ok', 'broken-init', 'draining', 'error500'].includes(next)) return sendJson(res, 400, { error: `unknown mode ${next}` });
    mode = next;
    return sendJson(res, 200, { mode });
  }
  if (pathname === '/admin/stats' && req.method === 'GET') return sendJson(res, 200, { ...stats, sessions: sessions.size });
  return sendJson(res, 404, { error: 'no such admin route' });
}

async function mcp(req, res) {
  stats.requests += 1;
  const forced = Number(req.headers['x-test-status']);
  if (forced) return jsonRpcError(res, forced, -32000, `status ${forced} on request`);
  if (mode === 'error500') return jsonRpcError(res, 500, -32603, 'Internal error: broken on purpose');
  if (await serveKnownSession(sessions, req, res)) return;
  let body;
  try {
    body = JSON.parse(await readBody(req));
  } catch {
    return jsonRpcError(res, 400, -32700, 'Parse error');
  }
  if (!isInitializeRequest(body)) return jsonRpcError(res, 400, -32000, 'Bad Request: No valid session ID provided');
  stats.initialize += 1;
  if (mode === 'broken-init') return jsonRpcError(res, 500, -32603, 'Internal error: initialize is broken');
  if (mode === 'draining') return jsonRpcError(res, 503, -32000, 'Server is draining: no new sessions');
  const transport = sessionTransport(sessions, { enableJsonResponse: jsonResponses });
  await buildServer().connect(transport);
  await transport.handleRequest(req, res, body);
}

const httpServer = http.createServer(async (req, res) => {
  res.setHeader('X-Backend', serverName);
  try {
    const url = new URL(req.url, 'http://localhost');
    if (url.pathname.startsWith('/admin/')) return await admin(req, res, url.pathname);
    if (url.pathname === '/health') {
      const up = mode !== 'draining' && mode !== 'error500';
      res.writeHead(up ? 200 : 503, { 'Content-Type': 'text/plain' });
      res.end(up ? 'ok' : 'unavailable');
      return;
    }
    if (url.pathname !== '/mcp') {
      res.writeHead(404, { 'Content-Type': 'text/plain' });
      res.end('not found');
      return;
    }
    await mcp(req, res);
  } catch (err) {
    if (!res.headersSent) jsonRpcError(res, 500, -32603, `Internal error: ${err.message}`);
    else res.destroy();
  }
});

serveOnLoopback(httpServer);
