// Helpers for the health tests (health*.test.mjs, issue 5): SDK servers that can be broken on
// purpose (support/health_server.mjs), their remote control, and configs with [upstream.health].
//
// Every process is a Child tracked by the test's Scope (stopped by pid), every wait is bounded.

import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { httpRequest, startNodeBackend, waitUntil } from './harness.mjs';
import { initialize } from './session_helpers.mjs';
import { waitStatus, backendIn } from './control_helpers.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
export const HEALTH_SERVER_SCRIPT = path.join(here, 'health_server.mjs');

/**
 * Starts support/health_server.mjs; resolves with {name, port, addr, child, setMode, stats, kill}.
 *   tools: 'base' | 'alt' (echo has another input schema) | 'added' (base + search) | 'removed'
 *          (no whoami)   json: JSON answers, not SSE
 */
export async function startHealthServer(scope, { name = 'health-sdk', tools = 'base', json = false, listen } = {}) {
  const args = ['--name', name, '--tools', tools];
  if (listen) args.push('--listen', listen);
  if (json) args.push('--json');
  const { port, addr, child } = await startNodeBackend(scope, `health server ${name}`, HEALTH_SERVER_SCRIPT, args);
  // Its own address: two servers may share a port on different loopback addresses.
  const host = addr.slice(0, addr.lastIndexOf(':')).replace(/^\[|\]$/g, '');
  return {
    name,
    port,
    addr,
    child,
    /** 'ok' | 'broken-init' | 'draining' | 'error500' (see health_server.mjs). */
    async setMode(mode) {
      const r = await httpRequest(port, {
        host,
        method: 'PUT',
        path: '/admin/mode',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ mode }),
        timeout: 5000,
      });
      if (r.status !== 200) throw new Error(`${name}: PUT /admin/mode ${mode}: ${r.status} ${r.text()}`);
    },
    async stats() {
      return (await httpRequest(port, { host, path: '/admin/stats', timeout: 5000 })).json();
    },
    /** SIGKILL: the process and its sessions are gone at once. */
    kill() {
      return child.stop('SIGKILL', 2000);
    },
  };
}

/** [upstream.health] with short intervals; `extra` overrides. */
export function fastHealth(extra = {}) {
  return { kind: 'mcp', path: '/mcp', interval: '100ms', timeout: '1s', rise: 2, fall: 2, ...extra };
}

/** One upstream "mcp" with the given pools ([{name, weight, backends, version?}]) and health table. */
export function healthConfig(pools, health, extra = {}) {
  return { upstreams: [{ name: 'mcp', pools, health }], ...extra };
}

/** Waits until status shows `addr` with the predicate true of its entry; returns the entry. */
export async function waitBackend(tn, addr, pred, what, ms = 10000) {
  const st = await waitStatus(tn, (s) => pred(backendIn(s, addr)), ms, `${addr}: ${what}`);
  return backendIn(st, addr);
}

/** Waits until every given backend passed a probe and is healthy. */
export async function waitAllProbed(tn, addrs, ms = 10000) {
  await waitStatus(tn, (s) => addrs.every((a) => {
    const b = backendIn(s, a);
    return b.healthy && b.health.probed && b.health.last_ok;
  }), ms, `${addrs.join(', ')} probed and healthy`);
}

/** New sessions through turnout until one is answered by `backendName`; bounded in count and time. */
export async function sessionOn(port, backendName, { tries = 60, ms = 10000 } = {}) {
  let n = 0;
  return waitUntil(async () => {
    if (++n > tries) throw new Error(`no new session reached ${backendName} in ${tries} tries`);
    const r = await initialize(port);
    return r.status === 200 && r.backend === backendName ? r : null;
  }, ms, `a new session on ${backendName}`, 0);
}

/** `n` new sessions through turnout, one after the other; resolves with the answering backends. */
export async function initializeMany(port, n) {
  const out = [];
  for (let i = 0; i < n; i++) {
    const r = await initialize(port);
    out.push({ status: r.status, backend: r.backend, sid: r.sid, text: r.text });
  }
  return out;
}
