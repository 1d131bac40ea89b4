// What the test MCP backends (sdk_server, session_server, health_server) share: reading a
// body, JSON-RPC error answers, and serving on a loopback port announced on stdout (the
// harness waits for that line) with a quick exit on SIGTERM/SIGINT.

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

/** Listens on 127.0.0.1 port 0, prints `listening on HOST:PORT`, exits 0 on SIGTERM/SIGINT. */
export function serveOnLoopback(httpServer) {
  httpServer.listen(0, '127.0.0.1', () => {
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
