// An MCP server built from the official TypeScript SDK (McpServer + StreamableHTTPServerTransport),
// stateful sessions, on 127.0.0.1:0. Prints `listening on 127.0.0.1:PORT` on stdout.
//
//   node sdk_server.mjs [--name NAME] [--tool-error-ratio R] [--delay-ms N]
//
// --tool-error-ratio R: that share of tools/call results (0..1, spread evenly: with 0.3, calls
// 3, 6, 10, 13, ... of each ten) carry `isError: true`, as a broken release would answer.
// --delay-ms N: every tools/call is answered N ms late (a slow release).
//
// Endpoints: /mcp (Streamable HTTP: POST, GET for the standalone SSE stream, DELETE),
// GET /health. Every response carries `X-Backend: NAME`.
//
// Tools: echo {text} → text; add {a, b} → a+b; whoami → the session id the server sees and the
// server name; progress {steps} → sends `steps` progress notifications on the request's SSE
// stream, then "done"; announce → registers a new tool, which makes the server send
// notifications/tools/list_changed on the session's standalone GET stream.

import http from 'node:http';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import { jsonRpcError, readBody, serveKnownSession, serveOnLoopback, sessionTransport } from './backend_common.mjs';

const nameArg = process.argv.indexOf('--name');
const serverName = nameArg > 0 ? process.argv[nameArg + 1] : 'sdk';

const sessions = new Map(); // session id -> transport
const argOf = (flag, fallback) => {
  const i = process.argv.indexOf(flag);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const toolErrorRatio = argOf('--tool-error-ratio', 0);
const delayMs = argOf('--delay-ms', 0);
let toolCalls = 0;

/** Wraps a tool handler with the release defects asked for on the command line. */
function released(handler) {
  return async (...args) => {
    toolCalls += 1;
    if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
    if (Math.floor(toolCalls * toolErrorRatio) > Math.floor((toolCalls - 1) * toolErrorRatio)) {
      return { content: [{ type: 'text', text: 'this release is broken' }], isError: true };
    }
    return handler(...args);
  };
}

function buildServer() {
  const server = new McpServer({ name: `turnout-test-${serverName}`, version: '1.0.0' });
  server.registerTool('echo', {
    description: 'Returns its text argument',
    inputSchema: { text: z.string() },
  }, released(async ({ text }) => ({ content: [{ type: 'text', text }] })));
  server.registerTool('add', {
    description: 'Adds two numbers',
    inputSchema: { a: z.number(), b: z.number() },
  }, async ({ a, b }) => ({ content: [{ type: 'text', text: String(a + b) }] }));
  server.registerTool('whoami', {
    description: 'The session id and server name as the server sees them',
  }, released(async (extra) => ({
    content: [{ type: 'text', text: JSON.stringify({ sessionId: extra.sessionId, server: serverName }) }],
  })));
  server.registerTool('progress', {
    description: 'Sends progress notifications, then answers',
    inputSchema: { steps: z.number().int().min(1).max(50) },
  }, async ({ steps }, extra) => {
    const token = extra._meta?.progressToken;
    for (let i = 1; i <= steps; i++) {
      if (token !== undefined) {
        await extra.sendNotification({
          method: 'notifications/progress',
          params: { progressToken: token, progress: i, total: steps },
        });
      }
      await new Promise((r) => setTimeout(r, 30));
    }
    return { content: [{ type: 'text', text: 'done' }] };
  });
  let announced = 0;
  server.registerTool('announce', {
    description: 'Registers a new tool (the server then sends tools/list_changed)',
  }, async () => {
    announced += 1;
    const name = `announced_${announced}`;
    server.registerTool(name, { description: 'added at run time' }, async () => ({
      content: [{ type: 'text', text: name }],
    }));
    return { content: [{ type: 'text', text: name }] };
  });
  return server;
}

async function readJson(req) {
  return JSON.parse(await readBody(req));
}

const httpServer = http.createServer(async (req, res) => {
  res.setHeader('X-Backend', serverName);
  try {
    const url = new URL(req.url, 'http://localhost');
    if (url.pathname === '/health') {
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.end('ok');
      return;
    }
    if (url.pathname !== '/mcp') {
      res.writeHead(404, { 'Content-Type': 'text/plain' });
      res.end('not found');
      return;
    }
    if (await serveKnownSession(sessions, req, res)) return;
    const body = await readJson(req);
    if (!isInitializeRequest(body)) return jsonRpcError(res, 400, -32000, 'Bad Request: No valid session ID provided');
    const transport = sessionTransport(sessions);
    await buildServer().connect(transport);
    await transport.handleRequest(req, res, body);
  } catch (err) {
    if (!res.headersSent) jsonRpcError(res, 500, -32603, `Internal error: ${err.message}`);
    else res.destroy();
  }
});

serveOnLoopback(httpServer);
