// A real etcd (Debian's etcd-server) on loopback for the fleet tests: free ports, a temporary
// data folder, stopped by its pid. And a TCP relay the tests put between one turnout and etcd,
// to hold back what etcd sends on the watch streams (a deterministic "this instance has not
// heard of the change yet") or to cut that turnout off from a running etcd.

import net from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Child, closedPort, run } from './harness.mjs';

export const ETCD_BIN = process.env.TURNOUT_ETCD_BIN || '/usr/bin/etcd';
export const ETCDCTL_BIN = process.env.TURNOUT_ETCDCTL_BIN || '/usr/bin/etcdctl';

/**
 * A single-member etcd; start() again after stop() reuses its ports and data.
 * tls: {ca, server: {cert, key}, client: {cert, key}} — https on the client port, clients
 * must show a certificate signed by ca (--client-cert-auth); etcdctl then uses tls.client.
 * user: "name:password" etcdctl authenticates as (once the test enabled etcd's auth).
 */
export class Etcd {
  constructor(scope, { tls } = {}) {
    this.scope = scope;
    this.tls = tls;
    this.user = null;
    this.dir = mkdtempSync(path.join(os.tmpdir(), 'turnout-etcd-'));
    scope.defer(() => rmSync(this.dir, { recursive: true, force: true }));
    this.child = null;
  }

  get endpoint() {
    return `${this.tls ? 'https' : 'http'}://127.0.0.1:${this.clientPort}`;
  }

  async start() {
    if (!this.clientPort) {
      this.clientPort = await closedPort();
      this.peerPort = await closedPort();
    }
    const peer = `http://127.0.0.1:${this.peerPort}`;
    this.child = new Child('etcd', ETCD_BIN, [
      '--name', 'turnout-test', '--data-dir', path.join(this.dir, 'data'),
      '--listen-client-urls', this.endpoint, '--advertise-client-urls', this.endpoint,
      '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer,
      '--initial-cluster', `turnout-test=${peer}`,
      ...(this.tls ? ['--cert-file', this.tls.server.cert, '--key-file', this.tls.server.key,
        '--trusted-ca-file', this.tls.ca.cert, '--client-cert-auth'] : []),
    ]);
    this.scope.track(this.child);
    await this.child.waitForMatches(/ready to serve client requests/, { timeout: 20000 });
  }

  async stop() {
    await this.child.stop('SIGTERM', 5000);
  }

  /** etcdctl against this member; resolves with stdout. */
  async ctl(...args) {
    const tls = this.tls ? ['--cacert', this.tls.ca.cert, '--cert', this.tls.client.cert, '--key', this.tls.client.key] : [];
    const user = this.user ? ['--user', this.user] : [];
    const r = await run(ETCDCTL_BIN, ['--endpoints', this.endpoint, ...tls, ...user, ...args], { env: { ETCDCTL_API: '3' } });
    if (r.code !== 0) throw new Error(`etcdctl ${args.join(' ')}: ${r.code} ${r.stderr}`);
    return r.stdout;
  }
}

/**
 * A relay on 127.0.0.1 in front of etcd. hold(): what etcd sends on watch streams is kept back
 * until release() (requests and the other answers pass). cut(): every connection is closed and
 * new ones refused until mend().
 */
export async function etcdRelay(scope, etcdPort) {
  const conns = new Set();
  let held = false;
  let cut = false;
  const server = net.createServer((client) => {
    if (cut) return client.destroy();
    const upstream = net.connect(etcdPort, '127.0.0.1');
    const c = { client, upstream, watch: false, pending: [] };
    conns.add(c);
    const close = () => {
      conns.delete(c);
      client.destroy();
      upstream.destroy();
    };
    client.on('data', (d) => {
      if (d.toString('latin1').startsWith('POST /v3/watch')) c.watch = true;
      upstream.write(d);
    });
    upstream.on('data', (d) => {
      if (c.watch && held) c.pending.push(d);
      else client.write(d);
    });
    client.on('close', close);
    upstream.on('close', close);
    client.on('error', close);
    upstream.on('error', close);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const relay = {
    port: server.address().port,
    get endpoint() {
      return `http://127.0.0.1:${this.port}`;
    },
    hold() {
      held = true;
    },
    release() {
      held = false;
      for (const c of conns) {
        for (const d of c.pending) c.client.write(d);
        c.pending = [];
      }
    },
    cut() {
      cut = true;
      for (const c of [...conns]) {
        c.client.destroy();
        c.upstream.destroy();
      }
    },
    mend() {
      cut = false;
    },
    close() {
      relay.cut();
      return new Promise((resolve) => server.close(resolve));
    },
  };
  scope.defer(() => relay.close());
  return relay;
}
