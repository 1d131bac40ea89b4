// What the test MCP backends (sdk_server, session_server, health_server) share: reading a
// body, JSON-RPC error answers, routing a request of a known session, the Streamable HTTP
// transport of a new session, and serving on
// a loopback port announced on stdout (the harness waits for that line) with a quick exit on
// SIGTERM/SIGINT.

import { randomUUID } from 'node:crypto';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';

export function readBody(req) {
  return new Promise((resolve, reject) => {
    const parts = [];
    req.on('data', (d) => parts.push(d));
    req.on('end', () => resolve(Buffer.concat(parts).toString('utf8')));
    req.on('error', reject);
  });
}

export function jsonRpcError(res, status, code, message) {
  res.writeHead(status, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify({ jsonrpc: '2.0', error: { code, message }, id: null }));
}

/**
 * Listens on 127.0.0.1 port 0 (or `--listen HOST:PORT`: DNS discovery tests give several
 * backends one port on different loopback addresses), prints `listening on HOST:PORT`, exits
 * 0 on SIGTERM/SIGINT.
 */
export function serveOnLoopback(httpServer) {
  const i = process.argv.indexOf('--listen');
  const [host, port] = i > 0 ? process.argv[i + 1].split(':') : ['127.0.0.1', '0'];
  httpServer.listen(Number(port), host, () => {
    const { address, port } = httpServer.address();
    process.stdout.write(`listening on ${address}:${port}\n`);
  });
  for (const sig of ['SIGTERM', 'SIGINT']) {
    process.on(sig, () => {
      httpServer.closeAllConnections?.();
      httpServer.close(() => process.exit(0));
      setTimeout(() => process.exit(0), 500).unref();
    });
  }
}

/**
 * The SDK's Streamable HTTP transport for a session being initialized: it enters `sessions`
 * (id → transport) once its id is minted, calling `onCreated(id)`, and leaves it when the
 * session is deleted or the transport closes.
 */
export function sessionTransport(sessions, { enableJsonResponse = false, onCreated = () => {} } = {}) {
  const transport = new StreamableHTTPServerTransport({
    sessionIdGenerator: () => randomUUID(),
    enableJsonResponse,
    onsessioninitialized: (id) => {
      sessions.set(id, transport);
      onCreated(id);
    },
    onsessionclosed: (id) => {
      sessions.delete(id);
    },
  });
  transport.onclose = () => {
    if (transport.sessionId) sessions.delete(transport.sessionId);
  };
  return transport;
}

/**
 * What every Streamable HTTP backend does before it may start a session: a request naming a
 * session (Mcp-Session-Id) goes to that session's transport in `sessions`, or gets
 * `notFound(res)` when there is none; any other request must be a POST (400 otherwise).
 * Returns true when it answered, false when the caller goes on with a new session's POST.
 */
export async function serveKnownSession(sessions, req, res, notFound = sessionNotFound) {
  const sid = req.headers['mcp-session-id'];
  if (sid) {
    const transport = sessions.get(sid);
    if (!transport) notFound(res);
    else await transport.handleRequest(req, res);
    return true;
  }
  if (req.method === 'POST') return false;
  jsonRpcError(res, 400, -32000, 'Bad Request: No valid session ID provided');
  return true;
}

export function sessionNotFound(res) {
  jsonRpcError(res, 404, -32001, 'Session not found');
}
