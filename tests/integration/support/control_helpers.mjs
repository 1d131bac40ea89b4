// Helpers for the runtime-control tests (runtime_control*.test.mjs, issue 4): the admin API
// over turnout's Unix socket, turnoutctl, status and /metrics readers, live SDK sessions that
// keep calling tools while the traffic split changes under them, and the binomial bounds that
// keep the statistical checks from flaking.
//
// Built on support/harness.mjs and support/session_helpers.mjs: every process is a Child tracked
// by the test's Scope (stopped by pid), every wait is bounded.

import { existsSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { httpRequest, run, sleep, waitUntil, withTimeout } from './harness.mjs';
import { initialize, streamableClient, textOf } from './session_helpers.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '..', '..', '..');

export const TURNOUTCTL_BIN = process.env.TURNOUTCTL_BIN ||
  (existsSync(path.join(repoRoot, 'build', 'turnoutctl')) ? path.join(repoRoot, 'build', 'turnoutctl') : null);

export function requireCtl() {
  if (!TURNOUTCTL_BIN) throw new Error('TURNOUTCTL_BIN is not set and no default build was found');
  return TURNOUTCTL_BIN;
}

export const SESSION_NOT_FOUND_BODY = { jsonrpc: '2.0', error: { code: -32001, message: 'Session not found' }, id: null };

// ---------------------------------------------------------------------------------------------
// The admin socket

/** The admin socket of a started turnout (the harness default `admin_socket` is relative). */
export function socketOf(tn) {
  if (!tn) return undefined;
  const configured = tn.adminSocket ?? 'turnout.sock';
  return path.isAbsolute(configured) ? configured : path.join(tn.dir, configured);
}

/**
 * One HTTP/1.1 request on a Unix socket (or a TCP port with `port`); resolves with
 * {status, headers, text, json(), get(name)}. `body` may be an object (sent as JSON) or a string
 * (sent as is, to send malformed JSON).
 */
export function adminRaw(socketPath, method, p, body, { timeout = 10000, port, headers = {} } = {}) {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    const h = { Host: 'localhost', Connection: 'close', ...headers };
    if (payload !== undefined) {
      h['Content-Type'] = 'application/json';
      h['Content-Length'] = Buffer.byteLength(payload);
    }
    const target = port ? { host: '127.0.0.1', port } : { socketPath };
    const req = http.request({ ...target, method, path: p, headers: h, agent: false }, (res) => {
      const parts = [];
      res.on('data', (d) => parts.push(d));
      res.on('end', () => {
        clearTimeout(timer);
        const text = Buffer.concat(parts).toString('utf8');
        resolve({
          status: res.statusCode,
          headers: res.headers,
          text,
          json: () => JSON.parse(text),
          get: (n) => res.headers[n.toLowerCase()],
        });
      });
      res.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
    const timer = setTimeout(() => req.destroy(new Error(`admin ${method} ${p} timed out after ${timeout} ms`)), timeout);
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    if (payload !== undefined) req.end(payload);
    else req.end();
  });
}

/** An admin request to a started turnout. */
export function admin(tn, method, p, body, opts) {
  return adminRaw(socketOf(tn), method, p, body, opts);
}

/** Like admin(), but throws unless the answer is 2xx; resolves with the parsed JSON. */
export async function adminOk(tn, method, p, body) {
  const r = await admin(tn, method, p, body);
  if (r.status < 200 || r.status > 299) throw new Error(`admin ${method} ${p} ${JSON.stringify(body)}: ${r.status} ${r.text}`);
  return r.text ? r.json() : {};
}

/** Waits until the admin socket answers GET /v1/status (the socket may come up after the listeners). */
export async function waitAdmin(tn, ms = 5000) {
  return waitUntil(async () => {
    const r = await admin(tn, 'GET', '/v1/status', undefined, { timeout: 1000 }).catch(() => null);
    return r && r.status === 200 ? r.json() : null;
  }, ms, `the admin socket ${socketOf(tn)} to answer`, 25);
}

export const status = (tn) => adminOk(tn, 'GET', '/v1/status');
export const setWeights = (tn, weights, u = 'mcp') => adminOk(tn, 'PUT', `/v1/upstreams/${u}/weights`, weights);
export const switchTo = (tn, pool, force = false, u = 'mcp') => adminOk(tn, 'POST', `/v1/upstreams/${u}/switch`, { pool, force });
export const rollback = (tn, u = 'mcp') => adminOk(tn, 'POST', `/v1/upstreams/${u}/rollback`);
export const drain = (tn, pool, timeout, u = 'mcp') =>
  adminOk(tn, 'POST', `/v1/upstreams/${u}/pools/${pool}/drain`, timeout === undefined ? undefined : { timeout });
export const undrain = (tn, pool, u = 'mcp') => adminOk(tn, 'POST', `/v1/upstreams/${u}/pools/${pool}/undrain`);
export const setBackends = (tn, pool, addrs, u = 'mcp') => adminOk(tn, 'PUT', `/v1/upstreams/${u}/pools/${pool}/backends`, addrs);

// ---------------------------------------------------------------------------------------------
// Reading the status document

export function upstreamIn(st, u = 'mcp') {
  const up = st.upstreams.find((x) => x.name === u);
  if (!up) throw new Error(`status has no upstream ${u}: ${JSON.stringify(st)}`);
  return up;
}

export function poolIn(st, p, u = 'mcp') {
  const pool = upstreamIn(st, u).pools.find((x) => x.name === p);
  if (!pool) throw new Error(`status has no pool ${u}/${p}: ${JSON.stringify(upstreamIn(st, u))}`);
  return pool;
}

/** {pool: weight} of an upstream. */
export function weightsIn(st, u = 'mcp') {
  return Object.fromEntries(upstreamIn(st, u).pools.map((p) => [p.name, p.weight]));
}

/** The backend entry for `addr` (in any pool of the upstream). */
export function backendIn(st, addr, u = 'mcp') {
  for (const p of upstreamIn(st, u).pools) {
    const b = p.backends.find((x) => x.address === addr);
    if (b) return b;
  }
  throw new Error(`status has no backend ${addr} in ${u}: ${JSON.stringify(upstreamIn(st, u))}`);
}

/** Polls the status until `pred(status)` holds; returns that status. The error shows the last one. */
export async function waitStatus(tn, pred, ms, what) {
  let last;
  try {
    return await waitUntil(async () => {
      last = await status(tn);
      return pred(last) ? last : null;
    }, ms, what, 30);
  } catch (err) {
    err.message += `\nlast status: ${JSON.stringify(last)}`;
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------
// /metrics (Prometheus text format)

/** Parses exposition text into [{name, labels, value}] and the TYPE of each family. */
export function parseMetrics(text) {
  const samples = [];
  const types = {};
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const tm = /^# TYPE (\S+) (\S+)/.exec(line);
    if (tm) {
      types[tm[1]] = tm[2];
      continue;
    }
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: \d+)?$/.exec(line);
    if (!m) throw new Error(`not a Prometheus sample line: ${JSON.stringify(line)}`);
    const labels = {};
    if (m[2]) {
      const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?/g;
      let lm;
      let consumed = 0;
      while ((lm = re.exec(m[2])) !== null) {
        labels[lm[1]] = lm[2].replace(/\\n/g, '\n').replace(/\\(["\\])/g, '$1');
        consumed = re.lastIndex;
      }
      if (consumed !== m[2].length) throw new Error(`bad labels in ${JSON.stringify(line)}`);
    }
    samples.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return { samples, types };
}

/** The value of the one sample of `name` whose labels include `labels`; throws unless exactly one. */
export function metricValue(parsed, name, labels = {}) {
  const found = parsed.samples.filter((s) => s.name === name &&
    Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  if (found.length !== 1) {
    throw new Error(`expected one ${name}${JSON.stringify(labels)}, found ${found.length}: ` +
      JSON.stringify(parsed.samples.filter((s) => s.name === name)));
  }
  return found[0].value;
}

// ---------------------------------------------------------------------------------------------
// turnoutctl

/** Runs turnoutctl against turnout's socket (unless `socket: null`); resolves {code, stdout, stderr}. */
export function ctl(tn, args, { socket, timeout = 15000, env } = {}) {
  const s = socket === null ? [] : ['-s', socket ?? socketOf(tn)];
  return run(requireCtl(), [...s, ...args], { timeout, env });
}

// ---------------------------------------------------------------------------------------------
// Statistics

function logChoose(n, k) {
  let s = 0;
  for (let i = 1; i <= k; i++) s += Math.log(n - k + i) - Math.log(i);
  return s;
}

/** P(X = k) for X ~ Binomial(n, p). */
export function binomialPmf(n, p, k) {
  if (p === 0) return k === 0 ? 1 : 0;
  if (p === 1) return k === n ? 1 : 0;
  return Math.exp(logChoose(n, k) + k * Math.log(p) + (n - k) * Math.log(1 - p));
}

/**
 * The acceptance interval [lo, hi] for X ~ Binomial(n, p) such that P(X < lo) and P(X > hi) are
 * each at most `tail` (so a correct implementation fails with probability < 2 * tail).
 */
export function binomialBounds(n, p, tail = 5e-7) {
  let lo = 0;
  let below = 0; // P(X < lo)
  while (lo < n && below + binomialPmf(n, p, lo) <= tail) below += binomialPmf(n, p, lo++);
  let hi = n;
  let above = 0; // P(X > hi)
  while (hi > 0 && above + binomialPmf(n, p, hi) <= tail) above += binomialPmf(n, p, hi--);
  return { lo, hi, below, above };
}

// ---------------------------------------------------------------------------------------------
// New sessions (plain HTTP initialize; the mock and the SDK servers name themselves in X-Backend)

/** Opens `n` sessions through turnout, `concurrency` at a time; resolves with [{sid, owner}]. */
export async function openSessions(port, n, { concurrency = 16 } = {}) {
  const out = [];
  let next = 0;
  const worker = async () => {
    while (next < n) {
      next += 1;
      const r = await initialize(port);
      if (r.status !== 200 || !r.sid || !r.backend) {
        throw new Error(`initialize through turnout failed: ${r.status} ${JSON.stringify(r.headers)} ${r.text}`);
      }
      out.push({ sid: r.sid, owner: r.backend });
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
  return out;
}

/** Counts owners: {backendName: n}. */
export function tally(sessions) {
  const t = {};
  for (const x of sessions) t[x.owner] = (t[x.owner] ?? 0) + 1;
  return t;
}

// ---------------------------------------------------------------------------------------------
// Live SDK sessions (against support/sdk_server.mjs, which answers whoami and announce)

/**
 * An SDK client through turnout with its standalone GET SSE stream open (the SDK opens it after
 * initialization); `owner` is the server that holds the session. `listChanged` counts
 * notifications/tools/list_changed that arrived over the GET stream.
 */
export async function liveSession(scope, port, name = 'rc-live') {
  const c = await streamableClient(scope, port, { name });
  c.listChanged = 0;
  c.client.setNotificationHandler(ToolListChangedNotificationSchema, () => {
    c.listChanged += 1;
  });
  const who = JSON.parse(textOf(await c.client.callTool({ name: 'whoami', arguments: {} }, undefined, { timeout: 10000 })));
  c.owner = who.server;
  c.sid = c.transport.sessionId;
  if (who.sessionId !== c.sid) throw new Error(`whoami saw ${who.sessionId}, the client holds ${c.sid}`);
  return c;
}

/**
 * Keeps every live session busy (whoami calls, back to back) until stop() is called. Each call
 * must be answered by the session's owner; resolves stop() with {calls, failures: [..],
 * failedAt: [..]} (failedAt[i]: the Date.now() at which failures[i] happened).
 */
export function keepBusy(sessions, { pauseMs = 5, scope } = {}) {
  let running = true;
  // A test that fails before stop() must not leave the loops running (they would keep the
  // test file from ever exiting).
  scope?.defer(() => {
    running = false;
  });
  const result = { calls: 0, failures: [], failedAt: [] };
  const fail = (why) => {
    result.failures.push(why);
    result.failedAt.push(Date.now());
  };
  const loops = sessions.map(async (c) => {
    while (running) {
      try {
        const who = JSON.parse(textOf(await c.client.callTool({ name: 'whoami', arguments: {} }, undefined, { timeout: 5000 })));
        result.calls += 1;
        if (who.server !== c.owner || who.sessionId !== c.sid) {
          fail(`session ${c.sid} (owner ${c.owner}) answered by ${who.server} as ${who.sessionId}`);
        }
      } catch (err) {
        fail(`session ${c.sid} (owner ${c.owner}): ${err.message}`);
      }
      await sleep(pauseMs);
    }
  });
  return {
    result,
    async stop() {
      running = false;
      await withTimeout(Promise.all(loops), 10000, 'the busy sessions to finish their last call');
      return result;
    },
  };
}

/**
 * Runs a check that must hold until `deadline` (a Date.now() value: a drain's deadline, say)
 * and may legitimately fail after it. A failure counts if it came before the deadline; one that
 * came after it is no evidence either way, so it is reported to `t.diagnostic` and ignored, and
 * a slow machine cannot turn a correct turnout red. Resolves true if the check passed.
 */
export async function checkBefore(t, deadline, what, fn) {
  try {
    await fn();
    return true;
  } catch (err) {
    if (Date.now() < deadline) throw err;
    t.diagnostic(`${what}: not checked, it ended ${Date.now() - deadline} ms after the deadline (${err.message.split('\n')[0]})`);
    return false;
  }
}

/**
 * Proves the standalone GET stream of each session still delivers: the `announce` tool makes
 * the server send notifications/tools/list_changed on it.
 */
export async function assertStreamsDeliver(sessions, assert) {
  await Promise.all(sessions.map(async (c) => {
    const before = c.listChanged;
    await c.client.callTool({ name: 'announce', arguments: {} }, undefined, { timeout: 5000 });
    await waitUntil(() => c.listChanged > before, 5000, `tools/list_changed over the GET stream of ${c.sid} (${c.owner})`);
  }));
  for (const c of sessions) assert.deepEqual(c.errors.map(String), [], `no transport error on session ${c.sid}`);
}

/** Ends a live session: DELETE (the session is forgotten) and close (its GET stream ends). */
export async function endSession(c) {
  await withTimeout(c.transport.terminateSession(), 5000, `DELETE of ${c.sid}`);
  await withTimeout(c.client.close(), 5000, `close of ${c.sid}`);
}

// ---------------------------------------------------------------------------------------------
// Misc

/** GET on the status server's TCP port. */
export const statusGet = (tn, p) => httpRequest(tn.statusPort, { path: p, timeout: 5000 });

/** Starts turnout (harness `s.turnout`) and waits until its admin socket answers. */
export async function startWithAdmin(s, opts) {
  const tn = await s.turnout(opts);
  await waitAdmin(tn);
  return tn;
}

/** DNS discovery: one name's entry in status, and whether a pool lists an address. */
export const discoveryOf = (st, name) => st.discovery.names.find((n) => n.name === name);
export const listedIn = (st, addr, pool = 'blue') => poolIn(st, pool).backends.some((b) => b.address === addr);
