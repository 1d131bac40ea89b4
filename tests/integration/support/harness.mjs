// Integration-test harness: starts the real turnout binary with a generated config on port 0,
// real backends (the C++ mock, an SDK MCP server, tiny raw TCP backends written here), and gives
// raw-socket helpers for framing and smuggling tests.
//
// Rules this file keeps:
//  - every wait is bounded (a timeout that names what was awaited and shows the process output);
//  - only processes started here are stopped, by their pid (ChildProcess.kill), never by name;
//  - everything a test starts is registered in a Scope and torn down in t.after, and a
//    file-level `after` sweeps whatever is left, so a failing or timed-out test cannot leave a
//    process or socket behind that would keep the test file from exiting.

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, test } from 'node:test';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '..', '..', '..');

function findBinary(envName, name) {
  const fromEnv = process.env[envName];
  if (fromEnv) return fromEnv;
  // Convenience for running `node --test` by hand: the default build folder.
  const guess = path.join(repoRoot, 'build', name);
  if (existsSync(guess)) return guess;
  return null;
}

export const TURNOUT_BIN = findBinary('TURNOUT_BIN', 'turnout');
export const MOCK_BIN = findBinary('TURNOUT_MOCK_BIN', 'turnout-mock-backend');
export const SDK_SERVER_SCRIPT = path.join(here, 'sdk_server.mjs');

function requireBinary(bin, envName) {
  if (!bin) throw new Error(`${envName} is not set and no default build was found`);
  return bin;
}

// ---------------------------------------------------------------------------------------------
// Small utilities

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Races a promise against a timer; the error names what was awaited. */
export function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Resolves with the promise's value, or with null after `ms` (the timer is cleared either way). */
export function raceTimer(promise, ms) {
  let timer;
  const t = new Promise((resolve) => {
    timer = setTimeout(() => resolve(null), ms);
  });
  return Promise.race([promise, t]).finally(() => clearTimeout(timer));
}

/** Polls `fn` until it returns a truthy value; throws after `ms`. */
export async function waitUntil(fn, ms, what, everyMs = 20) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await fn();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** A TCP port on 127.0.0.1 that nothing listens on: bound, then closed. */
export async function closedPort() {
  const server = net.createServer();
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function tail(text, n = 6000) {
  return text.length > n ? `...${text.slice(-n)}` : text;
}

// ---------------------------------------------------------------------------------------------
// Child processes

const liveChildren = new Set();
process.on('exit', () => {
  for (const child of liveChildren) {
    try {
      child.proc.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
});

/** A process we started; keeps its output, waits for lines in it, stops it by pid. */
export class Child {
  constructor(label, command, args, options = {}) {
    this.label = label;
    this.command = command;
    this.args = args;
    this.stdout = '';
    this.stderr = '';
    this.exitInfo = null;
    this.listeners = new Set();
    this.proc = spawn(command, args, {
      cwd: options.cwd,
      env: { ...process.env, ...(options.env || {}) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    liveChildren.add(this);
    this.proc.stdout.setEncoding('utf8');
    this.proc.stderr.setEncoding('utf8');
    this.proc.stdout.on('data', (d) => {
      this.stdout += d;
      this.notify();
    });
    this.proc.stderr.on('data', (d) => {
      this.stderr += d;
      this.notify();
    });
    this.exited = new Promise((resolve) => {
      this.proc.once('error', (err) => {
        this.spawnError = err;
        this.exitInfo = { code: null, signal: null, error: err };
        liveChildren.delete(this);
        this.notify();
        resolve(this.exitInfo);
      });
      this.proc.once('close', (code, signal) => {
        if (!this.exitInfo) this.exitInfo = { code, signal };
        liveChildren.delete(this);
        this.notify();
        resolve(this.exitInfo);
      });
    });
  }

  get pid() {
    return this.proc.pid;
  }

  get running() {
    return this.exitInfo === null;
  }

  notify() {
    for (const fn of [...this.listeners]) fn();
  }

  output() {
    return `--- ${this.label} (pid ${this.pid}) stdout ---\n${tail(this.stdout)}\n` +
      `--- ${this.label} stderr ---\n${tail(this.stderr)}\n`;
  }

  /**
   * Waits until `regex` (global) has matched `count` times in the given stream.
   * Rejects on timeout or when the process exits first, with its output in the message.
   */
  waitForMatches(regex, { stream = 'stderr', count = 1, timeout = 10000 } = {}) {
    const flags = regex.flags.includes('g') ? regex.flags : `${regex.flags}g`;
    const re = new RegExp(regex.source, flags);
    const text = () => (stream === 'stdout' ? this.stdout : stream === 'both' ? this.stdout + this.stderr : this.stderr);
    return new Promise((resolve, reject) => {
      let timer = null;
      const check = () => {
        const matches = [...text().matchAll(re)];
        if (matches.length >= count) {
          finish();
          resolve(matches.slice(0, count));
        } else if (!this.running) {
          finish();
          const why = this.spawnError ? `failed to start: ${this.spawnError.message}` :
            `exited (code ${this.exitInfo.code}, signal ${this.exitInfo.signal})`;
          reject(new Error(`${this.label} ${why} before printing ${count}x ${regex}\n${this.output()}`));
        }
      };
      const finish = () => {
        clearTimeout(timer);
        this.listeners.delete(check);
      };
      timer = setTimeout(() => {
        finish();
        reject(new Error(`${this.label} did not print ${count}x ${regex} within ${timeout} ms\n${this.output()}`));
      }, timeout);
      this.listeners.add(check);
      check();
    });
  }

  signal(sig) {
    if (this.running) this.proc.kill(sig);
  }

  /** Waits for the process to exit by itself; rejects after `timeout`. */
  waitExit(timeout = 10000) {
    return withTimeout(this.exited, timeout, `${this.label} (pid ${this.pid}) to exit\n${this.output()}`);
  }

  /** Sends `sig`, waits up to `grace` ms, then SIGKILL. Never throws. */
  async stop(sig = 'SIGTERM', grace = 3000) {
    if (!this.running) return this.exitInfo;
    this.proc.kill(sig);
    const done = await raceTimer(this.exited, grace);
    if (done) return done;
    this.proc.kill('SIGKILL');
    return (await raceTimer(this.exited, 2000)) ?? this.exitInfo;
  }
}

/** Runs a command to completion (bounded) and returns {code, signal, stdout, stderr}. */
export async function run(command, args, { timeout = 10000, cwd, env } = {}) {
  const child = new Child(path.basename(command), command, args, { cwd, env });
  try {
    const info = await child.waitExit(timeout);
    if (info.error) throw info.error;
    return { code: info.code, signal: info.signal, stdout: child.stdout, stderr: child.stderr };
  } finally {
    await child.stop('SIGKILL', 100);
  }
}

// ---------------------------------------------------------------------------------------------
// turnout configuration

function tomlValue(v) {
  if (typeof v === 'string') return JSON.stringify(v); // a TOML basic string for plain text
  if (typeof v === 'number' || typeof v === 'bigint') return String(v);
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (Array.isArray(v)) return `[${v.map(tomlValue).join(', ')}]`;
  if (typeof v === 'object' && v !== null)
    return `{ ${Object.entries(v).map(([k, x]) => `${k} = ${tomlValue(x)}`).join(', ')} }`; // inline table
  throw new Error(`cannot write ${typeof v} as TOML`);
}

function tomlTable(obj, indent = '') {
  return Object.entries(obj)
    .filter(([, v]) => v !== undefined && v !== null)
    .map(([k, v]) => `${indent}${k} = ${tomlValue(v)}\n`)
    .join('');
}

/** Defaults that keep the suite fast; each test overrides what it checks. */
export const FAST_PROXY_DEFAULTS = {
  workers: 2,
  admin_socket: 'turnout.sock',
  state_file: 'turnout.state.json',
  drain_timeout: '1s',
  access_log: 'stderr',
  log_level: 'info',
  header_timeout: '5s',
  idle_timeout: '30s',
  connect_timeout: '1s',
  response_timeout: '10s',
};

/**
 * Builds SPEC.md TOML.
 *   proxy: keys of [proxy] (merged over FAST_PROXY_DEFAULTS; set a key to null to omit it)
 *   status: true → status_address = "127.0.0.1:0"
 *   listens: number of [[listen]] sections on 127.0.0.1:0 (default 1)
 *   listen: more keys for every [[listen]] (allowed_origins, rate_limit = {...}, ...)
 *   backends: shorthand for one upstream "mcp" / pool "blue" / route "/"
 *   upstreams: [{name, affinity?, pools: [{name, weight, version?, backends}]}]
 *   routes: [{path_prefix, upstream, host?}]
 */
export function buildConfig(opts = {}) {
  const proxy = { ...FAST_PROXY_DEFAULTS, ...(opts.proxy || {}) };
  if (opts.status) proxy.status_address = '127.0.0.1:0';
  let toml = `[proxy]\n${tomlTable(proxy)}\n`;
  const listens = opts.listens ?? 1;
  for (let i = 0; i < listens; i++) toml += `[[listen]]\naddress = "127.0.0.1:0"\n${tomlTable(opts.listen ?? {})}\n`;
  const upstreams = opts.upstreams ??
    [{ name: 'mcp', pools: [{ name: 'blue', weight: 100, backends: opts.backends ?? [] }] }];
  for (const u of upstreams) {
    const { pools, health, rollout, ...rest } = u;
    toml += `[[upstream]]\n${tomlTable(rest)}\n`;
    for (const p of pools) toml += `  [[upstream.pool]]\n${tomlTable(p, '  ')}\n`;
    if (health) toml += `  [upstream.health]\n${tomlTable(health, '  ')}\n`;
    if (rollout) toml += `  [upstream.rollout]\n${tomlTable(rollout, '  ')}\n`;
  }
  const routes = opts.routes ?? [{ path_prefix: '/', upstream: upstreams[0].name }];
  for (const r of routes) toml += `[[route]]\n${tomlTable(r)}\n`;
  return toml;
}

/** A fresh temporary folder, removed at the end of the scope that asked for it. */
export function tempDir(scope) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'turnout-it-'));
  scope?.defer(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Writes `text` as a config file in a new temp folder; returns its path. */
export function writeConfig(scope, text, name = 'turnout.toml') {
  const dir = tempDir(scope);
  const file = path.join(dir, name);
  writeFileSync(file, text);
  return file;
}

// ---------------------------------------------------------------------------------------------
// turnout

const LISTEN_RE = /proxy listening on (\d+\.\d+\.\d+\.\d+|\[[^\]]+\]|[^\s:]+):(\d+)/;
const STATUS_RE = /status listening on (\d+\.\d+\.\d+\.\d+|\[[^\]]+\]|[^\s:]+):(\d+)/;

export class Turnout {
  constructor(child, configPath, listens, status) {
    this.child = child;
    this.configPath = configPath;
    this.dir = path.dirname(configPath);
    this.listens = listens; // [{host, port}]
    this.status = status; // {host, port} | null
  }

  get port() {
    return this.listens[0].port;
  }

  get host() {
    return this.listens[0].host;
  }

  get pid() {
    return this.child.pid;
  }

  get statusPort() {
    return this.status?.port;
  }

  url(p = '/') {
    return `http://127.0.0.1:${this.port}${p}`;
  }

  logs() {
    return this.child.output();
  }

  stop(sig = 'SIGTERM', grace = 5000) {
    return this.child.stop(sig, grace);
  }
}

/**
 * Starts turnout on a generated config (see buildConfig) or on `opts.configText`.
 * Resolves once every listener (and the status server and admin socket, if configured) logged its address.
 * `opts.env`: variables added to (or, set to undefined, removed from) the environment.
 * `opts.configName`: the config file's name (default turnout.toml; nginx.conf runs an nginx one).
 */
export async function startTurnout(scope, opts = {}) {
  const bin = opts.bin ?? requireBinary(TURNOUT_BIN, 'TURNOUT_BIN'); // opts.bin: a wrapper that execs it
  const text = opts.configText ?? buildConfig(opts);
  const configPath = writeConfig(scope, text, opts.configName); // configName: e.g. nginx.conf
  const child = new Child('turnout', bin, ['-c', configPath], { cwd: path.dirname(configPath), env: opts.env });
  scope?.track(child, 'turnout');
  const listenCount = opts.listens ?? 1;
  const wantStatus = Boolean(opts.status);
  try {
    const listenMatches = await child.waitForMatches(LISTEN_RE, { count: listenCount, timeout: opts.startTimeout ?? 10000 });
    const listens = listenMatches.map((m) => ({ host: m[1], port: Number(m[2]) }));
    let status = null;
    if (wantStatus) {
      const [m] = await child.waitForMatches(STATUS_RE, { count: 1, timeout: opts.startTimeout ?? 10000 });
      status = { host: m[1], port: Number(m[2]) };
    }
    // The admin socket comes up after the listeners: a test's first admin call must not race it.
    if (/^\s*admin_socket\s*=/m.test(text))
      await child.waitForMatches(/admin socket at /, { count: 1, timeout: opts.startTimeout ?? 10000 });
    return new Turnout(child, configPath, listens, status);
  } catch (err) {
    err.message += `\n--- config ${configPath} ---\n${text}`;
    await child.stop('SIGKILL', 100);
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------
// Backends

/**
 * Starts turnout-mock-backend; resolves with {name, port, addr, child}.
 * `noAccept`: the mock listens with a backlog of 0 and never accepts, so once one connection
 * waits in its queue the kernel drops further SYNs and a connect there hangs.
 * `silentStreams`: GET /mcp streams send their head and then nothing (the benchmark's streams).
 */
export async function startMock(scope, { name = 'mock', sseIntervalMs, noAccept = false, silentStreams = false } = {}) {
  const bin = requireBinary(MOCK_BIN, 'TURNOUT_MOCK_BIN');
  const args = ['--listen', '127.0.0.1:0', '--name', name];
  if (sseIntervalMs !== undefined) args.push('--sse-interval-ms', String(sseIntervalMs));
  if (noAccept) args.push('--no-accept');
  if (silentStreams) args.push('--silent-streams');
  const child = new Child(`mock backend ${name}`, bin, args);
  scope?.track(child, `mock backend ${name}`);
  const [m] = await child.waitForMatches(/listening on ([^\s:]+):(\d+)/, { stream: 'stdout', timeout: 10000 });
  const port = Number(m[2]);
  return { name, port, addr: `127.0.0.1:${port}`, child, stop: () => child.stop() };
}

/**
 * Starts a Node test backend (a script of support/ that serves with serveOnLoopback) and waits
 * for its `listening on` line; resolves with {port, addr, child}.
 */
export async function startNodeBackend(scope, label, script, args = []) {
  const child = new Child(label, process.execPath, [script, ...args], { cwd: here });
  scope?.track(child, label);
  const [m] = await child.waitForMatches(/listening on ([^\s:]+):(\d+)/, { stream: 'stdout', timeout: 15000 });
  const port = Number(m[2]);
  return { port, addr: `${m[1]}:${port}`, child };
}

/** Starts support/sdk_server.mjs (the official SDK's McpServer over Streamable HTTP). */
export async function startSdkServer(scope, { name = 'sdk', toolErrorRatio, delayMs, listen } = {}) {
  const args = ['--name', name];
  if (listen) args.push('--listen', listen);
  if (toolErrorRatio !== undefined) args.push('--tool-error-ratio', String(toolErrorRatio));
  if (delayMs !== undefined) args.push('--delay-ms', String(delayMs));
  const b = await startNodeBackend(scope, `sdk server ${name}`, SDK_SERVER_SCRIPT, args);
  return { name, ...b, stop: () => b.child.stop() };
}

/**
 * A raw TCP backend on 127.0.0.1:0 for cases the mock cannot play (garbage, closing mid-way,
 * recording exactly what arrived). `onConnection(socket, conn)` is called per connection;
 * `conn.data` accumulates every byte received, `backend.received()` concatenates them all.
 */
export async function startRawBackend(scope, onConnection = () => {}) {
  const conns = [];
  const sockets = new Set();
  const changed = new Set();
  const notify = () => {
    for (const fn of [...changed]) fn();
  };
  const server = net.createServer((socket) => {
    sockets.add(socket);
    const conn = { socket, data: Buffer.alloc(0), closed: false };
    conns.push(conn);
    socket.on('data', (d) => {
      conn.data = Buffer.concat([conn.data, d]);
      notify();
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      conn.closed = true;
      sockets.delete(socket);
      notify();
    });
    notify();
    try {
      onConnection(socket, conn);
    } catch (err) {
      socket.destroy(err);
    }
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address();
  const backend = {
    port,
    addr: `127.0.0.1:${port}`,
    conns,
    received: () => Buffer.concat(conns.map((c) => c.data)),
    /** Resolves once `pred()` holds; rejects after `ms`. */
    waitFor(pred, ms, what) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (pred()) {
            clearTimeout(timer);
            changed.delete(check);
            resolve();
          }
        };
        const timer = setTimeout(() => {
          changed.delete(check);
          reject(new Error(`raw backend: timed out after ${ms} ms waiting for ${what}; ` +
            `received ${JSON.stringify(backend.received().toString('latin1').slice(0, 2000))}`));
        }, ms);
        changed.add(check);
        check();
      });
    },
    close() {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
  scope?.defer(() => backend.close());
  return backend;
}

/**
 * Calls `cb(head, socket, conn)` for each request head that arrives on a raw backend
 * connection (reads up to the blank line; bodies are left in conn.data).
 */
export function onRequestHead(cb) {
  return (socket, conn) => {
    let pos = 0; // parse position in conn.data
    let state = 'head'; // 'head' | 'length' | 'chunk-size' | 'chunk-data' | 'trailers' | 'broken'
    let remaining = 0;
    const line = () => {
      const i = conn.data.indexOf('\r\n', pos);
      if (i < 0) return null;
      const l = conn.data.subarray(pos, i).toString('latin1');
      pos = i + 2;
      return l;
    };
    socket.on('data', () => {
      for (;;) {
        if (state === 'head') {
          const end = conn.data.indexOf('\r\n\r\n', pos);
          if (end < 0) return;
          const req = parseRequestHead(conn.data.subarray(pos, end + 4).toString('latin1'));
          pos = end + 4;
          const te = req.get('transfer-encoding');
          const cl = req.get('content-length');
          if (te && /chunked\s*$/i.test(te)) state = 'chunk-size';
          else if (cl && Number(cl) > 0) {
            state = 'length';
            remaining = Number(cl);
          }
          cb(req, socket, conn);
        } else if (state === 'length') {
          const n = Math.min(remaining, conn.data.length - pos);
          pos += n;
          remaining -= n;
          if (remaining > 0) return;
          state = 'head';
        } else if (state === 'chunk-size') {
          const l = line();
          if (l === null) return;
          const m = /^([0-9a-fA-F]{1,12})(;.*)?$/.exec(l);
          if (!m) {
            state = 'broken'; // not HTTP we can follow; record bytes only
            return;
          }
          remaining = parseInt(m[1], 16);
          state = remaining === 0 ? 'trailers' : 'chunk-data';
          remaining += 2; // the CRLF after the data
        } else if (state === 'chunk-data') {
          const n = Math.min(remaining, conn.data.length - pos);
          pos += n;
          remaining -= n;
          if (remaining > 0) return;
          state = 'chunk-size';
        } else if (state === 'trailers') {
          const l = line();
          if (l === null) return;
          if (l === '') state = 'head';
        } else {
          return;
        }
      }
    });
  };
}

/** Parses a request head into {method, target, version, headers: [[name, value]], get(name)}. */
export function parseRequestHead(head) {
  const lines = head.split('\r\n').filter((l) => l.length > 0);
  const [method, target, version] = lines[0].split(' ');
  const headers = lines.slice(1).map((l) => {
    const i = l.indexOf(':');
    return [l.slice(0, i), l.slice(i + 1).trim()];
  });
  return { method, target, version, headers, get: (name) => headerValue(headers, name) };
}

function headerValue(headers, name) {
  const values = headers.filter(([n]) => n.toLowerCase() === name.toLowerCase()).map(([, v]) => v);
  return values.length ? values.join(', ') : undefined;
}

// ---------------------------------------------------------------------------------------------
// Raw client connections: exact bytes out, strictly parsed responses back

/** A raw HTTP/1.1 client connection that parses responses strictly (to check turnout's framing). */
export class RawConn {
  static open(port, { host = '127.0.0.1', timeout = 5000 } = {}) {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ port, host });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`connect to ${host}:${port} timed out`));
      }, timeout);
      socket.once('connect', () => {
        clearTimeout(timer);
        resolve(new RawConn(socket));
      });
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  }

  constructor(socket) {
    this.socket = socket;
    this.buf = Buffer.alloc(0);
    this.ended = false; // peer closed (FIN, reset or error)
    this.error = null;
    this.waiters = new Set();
    socket.setNoDelay(true);
    socket.on('data', (d) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.wake();
    });
    socket.on('end', () => {
      this.ended = true;
      this.wake();
    });
    socket.on('error', (err) => {
      this.error = err;
      this.ended = true;
      this.wake();
    });
    socket.on('close', () => {
      this.ended = true;
      this.wake();
    });
    liveSockets.add(socket);
    socket.once('close', () => liveSockets.delete(socket));
  }

  wake() {
    for (const fn of [...this.waiters]) fn();
  }

  /** Resolves when more data or the end arrives; rejects at `deadline`. */
  more(deadline, what) {
    return new Promise((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(() => {
        this.waiters.delete(done);
        reject(new Error(`timed out waiting for ${what}; so far received ` +
          `${JSON.stringify(this.buf.toString('latin1').slice(0, 3000))}`));
      }, Math.max(0, deadline - Date.now()));
      this.waiters.add(done);
    });
  }

  write(data) {
    return new Promise((resolve, reject) => {
      this.socket.write(data, (err) => (err ? reject(err) : resolve()));
    });
  }

  /** Half-closes our side (sends FIN). */
  end() {
    this.socket.end();
  }

  destroy() {
    this.socket.destroy();
  }

  async readLine(deadline, what) {
    for (;;) {
      const i = this.buf.indexOf('\r\n');
      if (i >= 0) {
        const line = this.buf.subarray(0, i).toString('latin1');
        this.buf = this.buf.subarray(i + 2);
        return line;
      }
      if (this.ended) throw new Error(`connection closed while reading ${what}; left: ${JSON.stringify(this.buf.toString('latin1'))}`);
      await this.more(deadline, what);
    }
  }

  async readBytes(n, deadline, what) {
    while (this.buf.length < n) {
      if (this.ended) throw new Error(`connection closed after ${this.buf.length} of ${n} bytes of ${what}`);
      await this.more(deadline, what);
    }
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }

  /**
   * Reads one response. `method` is the request's (HEAD has no body). Interim (1xx) responses
   * are collected in `res.interim` and skipped unless `interim: true`, which returns the first
   * response whatever its status. Framing is checked strictly; bad framing throws.
   */
  async readResponse({ method = 'GET', timeout = 5000, interim = false } = {}) {
    const deadline = Date.now() + timeout;
    const interims = [];
    for (;;) {
      const res = await this.readOne(method, deadline);
      if (res.status >= 100 && res.status < 200 && res.status !== 101 && !interim) {
        interims.push(res);
        continue;
      }
      res.interim = interims;
      return res;
    }
  }

  async readOne(method, deadline) {
    const statusLine = await this.readLine(deadline, 'a status line');
    const m = /^HTTP\/(\d\.\d) (\d{3})(?: (.*))?$/.exec(statusLine);
    if (!m) throw new Error(`bad status line ${JSON.stringify(statusLine)}; rest ${JSON.stringify(this.buf.toString('latin1').slice(0, 500))}`);
    const headers = [];
    for (;;) {
      const line = await this.readLine(deadline, 'response headers');
      if (line === '') break;
      const i = line.indexOf(':');
      if (i <= 0 || /^[ \t]/.test(line)) throw new Error(`bad response header line ${JSON.stringify(line)}`);
      headers.push([line.slice(0, i), line.slice(i + 1).trim()]);
    }
    const status = Number(m[2]);
    const res = {
      version: m[1],
      status,
      reason: m[3] ?? '',
      headers,
      get: (name) => headerValue(headers, name),
      body: Buffer.alloc(0),
      chunked: false,
      trailers: [],
    };
    const te = res.get('transfer-encoding');
    const cl = res.get('content-length');
    const noBody = method === 'HEAD' || (status >= 100 && status < 200) || status === 204 || status === 304;
    if (te && cl) throw new Error(`response has both Transfer-Encoding and Content-Length: ${JSON.stringify(headers)}`);
    if (noBody) {
      // nothing
    } else if (te) {
      if (!/(^|,)\s*chunked\s*$/i.test(te)) throw new Error(`unexpected response Transfer-Encoding ${te}`);
      res.chunked = true;
      const parts = [];
      for (;;) {
        const sizeLine = await this.readLine(deadline, 'a chunk size');
        const sm = /^([0-9a-fA-F]+)(;.*)?$/.exec(sizeLine);
        if (!sm) throw new Error(`bad chunk size line ${JSON.stringify(sizeLine)}`);
        const size = parseInt(sm[1], 16);
        if (size === 0) break;
        parts.push(await this.readBytes(size, deadline, 'chunk data'));
        const crlf = await this.readLine(deadline, 'chunk end');
        if (crlf !== '') throw new Error(`chunk not followed by CRLF: ${JSON.stringify(crlf)}`);
      }
      for (;;) {
        const line = await this.readLine(deadline, 'trailers');
        if (line === '') break;
        res.trailers.push(line);
      }
      res.body = Buffer.concat(parts);
    } else if (cl !== undefined) {
      if (!/^\d+$/.test(cl)) throw new Error(`bad response Content-Length ${JSON.stringify(cl)}`);
      res.body = Buffer.from(await this.readBytes(Number(cl), deadline, 'the body'));
    } else {
      // Delimited by close.
      while (!this.ended) await this.more(deadline, 'a close-delimited body');
      res.body = this.buf;
      this.buf = Buffer.alloc(0);
      res.closeDelimited = true;
    }
    res.text = () => res.body.toString('utf8');
    res.json = () => JSON.parse(res.body.toString('utf8'));
    return res;
  }

  /**
   * Waits until the peer closes the connection. Resolves with the bytes that arrived meanwhile;
   * rejects if it is still open after `timeout`.
   */
  async waitClosed(timeout = 5000) {
    const deadline = Date.now() + timeout;
    while (!this.ended) await this.more(deadline, 'the connection to be closed');
    const rest = this.buf;
    this.buf = Buffer.alloc(0);
    return rest;
  }

  /** Waits (without consuming) until the received bytes contain `text`. */
  async waitForText(text, timeout = 5000) {
    const deadline = Date.now() + timeout;
    while (!this.buf.toString('latin1').includes(text)) {
      if (this.ended) throw new Error(`connection closed before ${JSON.stringify(text)} arrived; got ${JSON.stringify(this.buf.toString('latin1').slice(0, 2000))}`);
      await this.more(deadline, JSON.stringify(text));
    }
  }

  /** True if the connection is still open after `ms` (nothing closed it meanwhile). */
  async staysOpen(ms) {
    const deadline = Date.now() + ms;
    while (!this.ended && Date.now() < deadline) {
      await this.more(deadline, 'nothing').catch(() => {});
    }
    return !this.ended;
  }
}

const liveSockets = new Set();

/** Opens a connection, writes `bytes`, reads one response; returns {res, conn}. */
export async function rawExchange(port, bytes, opts = {}) {
  const conn = await RawConn.open(port);
  await conn.write(bytes);
  const res = await conn.readResponse(opts);
  return { res, conn };
}

/** Asserts the shape of turnout's own error answers: status, JSON content type, {"error": "..."} */
export function assertJsonError(assert, res, status) {
  const body = res.body.toString('utf8');
  assert.equal(res.status, status, `expected ${status}, got ${res.status} ${JSON.stringify(body.slice(0, 300))}`);
  assert.match(res.get('content-type') ?? '', /application\/json/i, 'error answers are JSON');
  let parsed;
  assert.doesNotThrow(() => {
    parsed = JSON.parse(body);
  }, `error body is JSON: ${JSON.stringify(body)}`);
  assert.equal(typeof parsed.error, 'string', `error body has an "error" string: ${body}`);
  assert.ok(parsed.error.length > 0);
}

// ---------------------------------------------------------------------------------------------
// node:http client (a separate connection per request unless an agent is given)

export function httpRequest(port, { method = 'GET', path: p = '/', headers = {}, body, timeout = 10000, agent = false, host = '127.0.0.1' } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host, port, method, path: p, headers, agent }, (res) => {
      const parts = [];
      res.on('data', (d) => parts.push(d));
      res.on('end', () => {
        clearTimeout(timer);
        const buf = Buffer.concat(parts);
        resolve({
          status: res.statusCode,
          headers: res.headers,
          rawHeaders: res.rawHeaders,
          body: buf,
          text: () => buf.toString('utf8'),
          json: () => JSON.parse(buf.toString('utf8')),
          get: (n) => {
            const v = res.headers[n.toLowerCase()];
            return Array.isArray(v) ? v.join(', ') : v;
          },
        });
      });
      res.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
    const timer = setTimeout(() => req.destroy(new Error(`${method} ${p} timed out after ${timeout} ms`)), timeout);
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    if (body !== undefined) req.end(body);
    else req.end();
  });
}

// ---------------------------------------------------------------------------------------------
// Scopes and the test wrapper

/**
 * Owns what a test (or a file, via fileScope) started; cleanup stops children by pid and closes
 * servers, newest first. Diagnostics collect the output of the processes it tracks.
 */
export class Scope {
  constructor() {
    this.cleanups = [];
    this.children = [];
  }

  defer(fn) {
    this.cleanups.push(fn);
  }

  track(child) {
    this.children.push(child);
    // drain_timeout is 1s in generated configs: a turnout that is still draining after 2s
    // is stopped with SIGKILL (the lifecycle tests check graceful exits themselves).
    this.defer(() => child.stop('SIGTERM', 2000));
  }

  /** The output of the turnout processes (and of any other process that died) not yet in `text`. */
  diagnostics(text = '') {
    return this.children
      .filter((c) => c.label === 'turnout' || !c.running)
      .filter((c) => !text.includes(`--- ${c.label} (pid ${c.pid}) stdout ---`))
      .map((c) => `\n${c.output()}`)
      .join('');
  }

  /** AddressSanitizer / UndefinedBehaviorSanitizer reports printed by the processes we ran. */
  sanitizerReports() {
    return this.children
      .filter((c) => /ERROR: (Address|Leak|Thread)Sanitizer|runtime error:/.test(c.stderr))
      .map((c) => c.output());
  }

  async cleanup() {
    const fns = this.cleanups.reverse();
    this.cleanups = [];
    for (const fn of fns) {
      try {
        await fn();
      } catch {
        // best effort
      }
    }
  }

  // Shorthands
  turnout(opts) {
    return startTurnout(this, opts);
  }

  mock(opts) {
    return startMock(this, opts);
  }

  sdkServer(opts) {
    return startSdkServer(this, opts);
  }

  rawBackend(onConnection) {
    return startRawBackend(this, onConnection);
  }

  async conn(port) {
    const c = await RawConn.open(port);
    this.defer(() => c.destroy());
    return c;
  }
}

/** A scope for things shared by the tests of one file (started in `before`, stopped in `after`). */
export function fileScope() {
  const scope = new Scope();
  after(() => scope.cleanup());
  return scope;
}

/**
 * test() with a default timeout and a Scope: `itest(name, [options], async (t, s) => ...)`.
 * On failure the output of the turnout processes the test started is appended to the error.
 */
export function itest(name, optsOrFn, maybeFn) {
  const opts = typeof optsOrFn === 'function' ? {} : optsOrFn;
  const fn = typeof optsOrFn === 'function' ? optsOrFn : maybeFn;
  return test(name, { timeout: 20000, ...opts }, async (t) => {
    const scope = new Scope();
    t.after(() => scope.cleanup());
    try {
      await fn(t, scope);
    } catch (err) {
      const diag = scope.diagnostics(String(err?.message ?? ''));
      if (diag && err && typeof err === 'object') {
        try {
          err.message = `${err.message}\n${diag}`;
        } catch {
          // non-writable message
        }
      }
      throw err;
    } finally {
      await scope.cleanup();
    }
    // Sanitizer builds (CI runs the suite under ASan+UBSan): a report is a failure even when
    // the behaviour looked right. Checked after cleanup, so reports printed at exit count too.
    const reports = scope.sanitizerReports();
    if (reports.length) throw new Error(`sanitizer report(s):\n${reports.join('\n')}`);
  });
}

// Last line of defence: whatever is still running when the file's tests end is stopped.
after(async () => {
  for (const child of [...liveChildren]) await child.stop('SIGKILL', 1000);
  for (const socket of [...liveSockets]) socket.destroy();
});
