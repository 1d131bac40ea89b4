// Helpers for the session-affinity tests (sessions*.test.mjs): the session server
// (support/session_server.mjs), plain-HTTP MCP exchanges that show which backend answered,
// open event streams, a "rendezvous oracle" and config reloads.
//
// Everything here builds on support/harness.mjs: processes are Child objects tracked by the
// test's Scope (stopped by pid), every wait is bounded.

import { writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { httpRequest, startNodeBackend, withTimeout } from './harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
export const SESSION_SERVER_SCRIPT = path.join(here, 'session_server.mjs');

export const SESSION_NOT_FOUND = { jsonrpc: '2.0', error: { code: -32001, message: 'Session not found' }, id: null };

/** Starts support/session_server.mjs; resolves with {name, port, addr, child, stop, stats()}. */
export async function startSessionServer(scope, { name = 'session-sdk' } = {}) {
  const { port, addr, child } = await startNodeBackend(scope, `session server ${name}`, SESSION_SERVER_SCRIPT, ['--name', name]);
  return {
    name,
    port,
    addr,
    child,
    stop: (sig = 'SIGTERM') => child.stop(sig),
    stats: async () => (await httpRequest(port, { path: '/stats', timeout: 5000 })).json(),
  };
}

/** One upstream "mcp" whose pools are given as {name: [backend, ...]} (weights default 100). */
export function upstreamOf(pools, extra = {}) {
  return {
    name: 'mcp',
    session_idle_timeout: '30m',
    ...extra,
    pools: Object.entries(pools).map(([name, backends]) => ({
      name,
      weight: 100,
      backends: backends.map((b) => (typeof b === 'string' ? b : b.addr)),
    })),
  };
}

// ---------------------------------------------------------------------------------------------
// Plain-HTTP MCP exchanges (the mock backend and session_server's /raw answer X-Backend)

const MCP_HEADERS = {
  'Content-Type': 'application/json',
  Accept: 'application/json, text/event-stream',
  'Mcp-Protocol-Version': '2025-06-18',
};

let rpcId = 1000;

export function initializeBody() {
  return JSON.stringify({
    jsonrpc: '2.0',
    id: rpcId++,
    method: 'initialize',
    params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'turnout-sessions-it', version: '1' } },
  });
}

export const pingBody = () => JSON.stringify({ jsonrpc: '2.0', id: rpcId++, method: 'ping' });

function summarize(res) {
  return {
    status: res.status,
    backend: res.get('x-backend'),
    sid: res.get('mcp-session-id'),
    text: res.text(),
    headers: res.headers,
    rawHeaders: res.rawHeaders,
  };
}

/** POST initialize; resolves with {status, backend, sid, text}. */
export async function initialize(port, { path: p = '/mcp' } = {}) {
  const res = await httpRequest(port, { method: 'POST', path: p, headers: MCP_HEADERS, body: initializeBody() });
  return summarize(res);
}

/** A request of session `sid` (POST ping by default); resolves with {status, backend, sid, text}. */
export async function sessionRequest(port, sid, { method = 'POST', headerName = 'Mcp-Session-Id', path: p = '/mcp', body, headers = {} } = {}) {
  const h = { ...MCP_HEADERS, ...headers };
  if (sid !== undefined) h[headerName] = sid;
  if (method !== 'POST') delete h['Content-Type'];
  const res = await httpRequest(port, {
    method,
    path: p,
    headers: h,
    body: method === 'POST' ? (body ?? pingBody()) : undefined,
  });
  return summarize(res);
}

/** Creates `n` sessions through turnout (initialize), resolves with [{sid, owner}]. */
export async function createSessions(port, n, opts = {}) {
  const out = await Promise.all(Array.from({ length: n }, () => initialize(port, opts)));
  return out.map((r) => {
    if (r.status !== 200 || !r.sid || !r.backend) {
      throw new Error(`initialize through turnout failed: ${r.status} ${JSON.stringify(r.headers)} ${r.text}`);
    }
    return { sid: r.sid, owner: r.backend };
  });
}

/**
 * A rendezvous oracle: a second turnout process with the same backends, which has never seen
 * any of the sessions, so it routes every id as unknown — by the consistent hash SPEC.md
 * requires every instance to share. Returns async (sid) => name of the backend it chose.
 */
export function rendezvousOracle(oracle) {
  return async (sid) => {
    const r = await sessionRequest(oracle.port, sid);
    if (!r.backend) throw new Error(`oracle: no X-Backend for ${sid}: ${r.status} ${r.text}`);
    return r.backend;
  };
}

// ---------------------------------------------------------------------------------------------
// Open streams

/**
 * Opens a GET that answers with a long-lived body (an SSE stream) on a connection of its own.
 * Resolves once the response head is in: {status, headers, backend, text(), waitFor(re), close()}.
 */
export function openStream(port, { path: p = '/mcp', headers = {}, timeout = 5000, scope } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1',
      port,
      method: 'GET',
      path: p,
      headers: { Accept: 'text/event-stream', ...headers },
      agent: false,
    });
    const timer = setTimeout(() => req.destroy(new Error(`GET ${p} stream head timed out after ${timeout} ms`)), timeout);
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.on('response', (res) => {
      clearTimeout(timer);
      let body = '';
      let ended = false;
      const waiters = new Set();
      const wake = () => {
        for (const fn of [...waiters]) fn();
      };
      res.setEncoding('utf8');
      res.on('data', (d) => {
        body += d;
        wake();
      });
      res.on('end', () => {
        ended = true;
        wake();
      });
      res.on('error', () => {
        ended = true;
        wake();
      });
      res.on('close', () => {
        ended = true;
        wake();
      });
      const stream = {
        status: res.statusCode,
        headers: res.headers,
        backend: res.headers['x-backend'],
        text: () => body,
        get ended() {
          return ended;
        },
        /** Resolves with the first match of `re` in the body so far; bounded. */
        waitFor(re, ms = 5000) {
          return withTimeout(new Promise((ok, fail) => {
            const check = () => {
              const m = re.exec(body);
              if (m) {
                waiters.delete(check);
                ok(m);
              } else if (ended) {
                waiters.delete(check);
                fail(new Error(`stream ended before ${re}; got ${JSON.stringify(body.slice(0, 1000))}`));
              }
            };
            waiters.add(check);
            check();
          }), ms, `${re} on the stream of GET ${p}`);
        },
        close() {
          req.destroy();
          res.destroy();
        },
      };
      scope?.defer(() => stream.close());
      resolve(stream);
    });
    req.end();
  });
}

/** Opens a legacy (2024-11-05) SSE stream and waits for its endpoint event: {stream, endpoint, sid, param}. */
export async function openLegacyStream(port, { path: p = '/sse', scope } = {}) {
  const stream = await openStream(port, { path: p, scope });
  if (stream.status !== 200) throw new Error(`GET ${p}: ${stream.status} ${stream.text()}`);
  const [, endpoint] = await stream.waitFor(/event: endpoint\r?\ndata: ([^\r\n]+)\r?\n/);
  const url = new URL(endpoint, 'http://x');
  const param = url.searchParams.has('sessionId') ? 'sessionId' : 'session_id';
  return { stream, endpoint, sid: url.searchParams.get(param), param };
}

// ---------------------------------------------------------------------------------------------
// SDK clients

export const textOf = (result) => result.content.map((c) => c.text).join('');

/** An SDK client over Streamable HTTP (optionally resuming `sessionId` without initialize). */
export async function streamableClient(scope, port, { path: p = '/mcp', sessionId, name = 'turnout-sessions-it' } = {}) {
  const client = new Client({ name, version: '1.0.0' });
  const errors = [];
  const transport = new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${port}${p}`), sessionId ? { sessionId } : undefined);
  client.onerror = (err) => errors.push(err);
  await withTimeout(client.connect(transport), 10000, `MCP connect through turnout (port ${port})`);
  scope?.defer(() => client.close().catch(() => {}));
  return { client, transport, errors };
}

/** An SDK client over the deprecated HTTP+SSE transport. */
export async function sseClient(scope, port, { path: p = '/sse', name = 'turnout-sessions-it' } = {}) {
  const client = new Client({ name, version: '1.0.0' });
  const errors = [];
  const transport = new SSEClientTransport(new URL(`http://127.0.0.1:${port}${p}`));
  client.onerror = (err) => errors.push(err);
  await withTimeout(client.connect(transport), 10000, `MCP connect over SSE through turnout (port ${port})`);
  scope?.defer(() => client.close().catch(() => {}));
  return { client, transport, errors };
}

export async function whoami(client) {
  return JSON.parse(textOf(await client.callTool({ name: 'whoami', arguments: {} }, undefined, { timeout: 10000 })));
}

// ---------------------------------------------------------------------------------------------
// turnout control

/** Rewrites turnout's config file and sends SIGHUP; resolves once turnout logged the result. */
export async function reloadTurnout(tn, configText) {
  if (configText !== undefined) writeFileSync(tn.configPath, configText);
  const before = (tn.child.stderr.match(/reload (done|failed)/g) ?? []).length;
  tn.child.signal('SIGHUP');
  const matches = await tn.child.waitForMatches(/reload (done|failed)/, { count: before + 1, timeout: 10000 });
  const last = matches[matches.length - 1][0];
  if (last !== 'reload done') throw new Error(`turnout reload failed\n${tn.logs()}`);
}
