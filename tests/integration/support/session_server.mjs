// An MCP server for the session-affinity tests, built from the official TypeScript SDK, on
// 127.0.0.1:0. Prints `listening on 127.0.0.1:PORT` on stdout.
//
//   node session_server.mjs [--name NAME]
//
// It differs from sdk_server.mjs in what the affinity tests need to observe:
//  - both MCP transports: Streamable HTTP on /mcp (McpServer + StreamableHTTPServerTransport,
//    stateful) and the deprecated 2024-11-05 HTTP+SSE transport (SSEServerTransport: GET /sse,
//    POST /messages?sessionId=);
//  - a Python-SDK-style legacy stream on GET /pysse that announces
//    `/pymessages/?session_id=ID` (only POST routing is played: 202 for a known id, else 404);
//    GET /slowsse is the same with `sessionId=`, but sends a comment first and then the endpoint
//    event in pieces, 100-150 ms apart (the proxy must neither wait for it nor miss it);
//  - /raw: a minimal JSON-RPC endpoint whose minted session header is spelled as the query
//    parameter `hname` asks (e.g. MCP-SESSION-ID), to check that turnout learns any header case;
//    a DELETE with `X-Fail-Delete: 1` answers 500 and keeps the session;
//  - the `whoami` tool answers {sessionId, server, transport}: which process, and which of its
//    sessions, answered the call;
//  - GET /stats (direct to the backend, never through turnout) reports what arrived here:
//    request counts, how many requests named a session this process does not know (404s), and
//    the ids of the sessions it holds, so a test can tell each session's owner.
// Every response carries `X-Backend: NAME`.

import { randomUUID } from 'node:crypto';
import http from 'node:http';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { SSEServerTransport } from '@modelcontextprotocol/sdk/server/sse.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import { jsonRpcError, readBody, serveKnownSession, serveOnLoopback, sessionTransport } from './backend_common.mjs';

const nameArg = process.argv.indexOf('--name');
const serverName = nameArg > 0 ? process.argv[nameArg + 1] : 'session-sdk';

const streamable = new Map(); // session id -> StreamableHTTPServerTransport
const legacy = new Map(); // session id -> SSEServerTransport
const py = new Map(); // session id -> response of the open /pysse stream
const raw = new Set(); // /raw session ids

const stats = {
  name: serverName,
  requests: 0,
  byRoute: {},
  notFound: 0, // requests naming a session id this process does not hold
  whoami: 0,
  created: { streamable: 0, legacy: 0, py: 0, raw: 0 },
};

function count(route) {
  stats.requests += 1;
  stats.byRoute[route] = (stats.byRoute[route] ?? 0) + 1;
}

function buildServer(transportName) {
  const server = new McpServer({ name: `turnout-session-${serverName}`, version: '1.0.0' });
  server.registerTool('whoami', {
    description: 'The session id, server name and transport as the server sees them',
  }, async (extra) => {
    stats.whoami += 1;
    return {
      content: [{ type: 'text', text: JSON.stringify({ sessionId: extra.sessionId, server: serverName, transport: transportName }) }],
    };
  });
  server.registerTool('echo', {
    description: 'Returns its text argument',
    inputSchema: { text: z.string() },
  }, async ({ text }) => ({ content: [{ type: 'text', text }] }));
  return server;
}

function sessionNotFound(res) {
  stats.notFound += 1;
  jsonRpcError(res, 404, -32001, 'Session not found');
}

async function handleStreamable(req, res) {
  if (await serveKnownSession(streamable, req, res, sessionNotFound)) return;
  const body = JSON.parse(await readBody(req));
  if (!isInitializeRequest(body)) return jsonRpcError(res, 400, -32000, 'Bad Request: No valid session ID provided');
  const transport = sessionTransport(streamable, {
    onCreated: () => {
      stats.created.streamable += 1;
    },
  });
  await buildServer('streamable').connect(transport);
  await transport.handleRequest(req, res, body);
}

async function handleLegacyStream(req, res) {
  if (req.method !== 'GET') return jsonRpcError(res, 405, -32000, 'Method not allowed');
  const transport = new SSEServerTransport('/messages', res);
  legacy.set(transport.sessionId, transport);
  stats.created.legacy += 1;
  transport.onclose = () => legacy.delete(transport.sessionId);
  await buildServer('sse').connect(transport);
}

async function handleLegacyMessage(req, res, url) {
  const sid = url.searchParams.get('sessionId');
  const transport = sid ? legacy.get(sid) : undefined;
  if (!transport) return sessionNotFound(res);
  await transport.handlePostMessage(req, res);
}

// The Python SDK's flavour of the legacy transport, reduced to what routing needs.
function handlePyStream(req, res) {
  if (req.method !== 'GET') return jsonRpcError(res, 405, -32000, 'Method not allowed');
  const id = randomUUID().replace(/-/g, '');
  res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
  res.write(`event: endpoint\r\ndata: /pymessages/?session_id=${id}\r\n\r\n`);
  py.set(id, res);
  stats.created.py += 1;
  const timer = setInterval(() => res.write(': ping\r\n\r\n'), 1000);
  res.on('close', () => {
    clearInterval(timer);
    py.delete(id);
  });
}

// The endpoint event arrives late and in pieces.
function handleSlowStream(req, res) {
  if (req.method !== 'GET') return jsonRpcError(res, 405, -32000, 'Method not allowed');
  const id = randomUUID().replace(/-/g, '');
  res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
  res.write(': hello\n\n');
  const pieces = ['event: endp', 'oint\ndata: /pymessages/?sessionId=', `${id}\n\n`];
  const timers = [];
  let closed = false;
  pieces.forEach((piece, i) => timers.push(setTimeout(() => {
    if (closed) return;
    if (i === pieces.length - 1) py.set(id, res);
    res.write(piece);
  }, 150 + 100 * i)));
  stats.created.py += 1;
  res.on('close', () => {
    closed = true;
    timers.forEach(clearTimeout);
    py.delete(id);
  });
}

async function handlePyMessage(req, res, url) {
  const id = url.searchParams.get('session_id') ?? url.searchParams.get('sessionId');
  const body = await readBody(req);
  const stream = id ? py.get(id) : undefined;
  if (!stream) return sessionNotFound(res);
  try {
    const msg = JSON.parse(body);
    if (msg.id !== undefined) {
      stream.write(`event: message\r\ndata: ${JSON.stringify({ jsonrpc: '2.0', id: msg.id, result: { server: serverName, sessionId: id } })}\r\n\r\n`);
    }
  } catch {
    return jsonRpcError(res, 400, -32700, 'Parse error');
  }
  res.writeHead(202, { 'Content-Type': 'text/plain' });
  res.end('Accepted');
}

async function handleRaw(req, res, url) {
  const sid = req.headers['mcp-session-id'];
  await readBody(req);
  if (sid) {
    res.setHeader('X-Backend', serverName);
    if (!raw.has(sid)) return sessionNotFound(res);
    if (req.method === 'DELETE') {
      if (req.headers['x-fail-delete'] === '1') {
        res.writeHead(500, { 'Content-Type': 'application/json' });
        res.end('{"error":"delete failed"}');
        return;
      }
      raw.delete(sid);
      res.writeHead(200);
      res.end();
      return;
    }
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ jsonrpc: '2.0', id: 1, result: { server: serverName, sessionId: sid } }));
    return;
  }
  const id = randomUUID();
  raw.add(id);
  stats.created.raw += 1;
  const headerName = url.searchParams.get('hname') || 'Mcp-Session-Id';
  // writeHead with an array of pairs keeps the name exactly as spelled.
  res.writeHead(200, [['Content-Type', 'application/json'], [headerName, id], ['X-Backend', serverName]]);
  res.end(JSON.stringify({ jsonrpc: '2.0', id: 1, result: { server: serverName, sessionId: id } }));
}

const httpServer = http.createServer(async (req, res) => {
  const url = new URL(req.url, 'http://localhost');
  try {
    if (url.pathname === '/stats') {
      res.writeHead(200, { 'Content-Type': 'application/json', 'X-Backend': serverName });
      res.end(JSON.stringify({
        ...stats,
        sessions: {
          streamable: [...streamable.keys()],
          legacy: [...legacy.keys()],
          py: [...py.keys()],
          raw: [...raw],
        },
      }));
      return;
    }
    if (url.pathname !== '/raw') res.setHeader('X-Backend', serverName);
    count(url.pathname);
    if (url.pathname === '/mcp') return await handleStreamable(req, res);
    if (url.pathname === '/sse') return await handleLegacyStream(req, res);
    if (url.pathname === '/messages') return await handleLegacyMessage(req, res, url);
    if (url.pathname === '/pysse') return handlePyStream(req, res);
    if (url.pathname === '/slowsse') return handleSlowStream(req, res);
    if (url.pathname === '/pymessages/') return await handlePyMessage(req, res, url);
    if (url.pathname === '/raw') return await handleRaw(req, res, url);
    if (url.pathname === '/health') {
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.end('ok');
      return;
    }
    res.writeHead(404, { 'Content-Type': 'text/plain' });
    res.end('not found');
  } catch (err) {
    if (!res.headersSent) jsonRpcError(res, 500, -32603, `Internal error: ${err.message}`);
    else res.destroy();
  }
});

serveOnLoopback(httpServer);
