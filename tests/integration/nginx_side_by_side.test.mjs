// Side by side: Debian's nginx and turnout each run the same nginx configuration (turnout
// through `turnout -c nginx.conf`) in front of the same backends; the same requests (paths,
// hosts, methods, bodies over client_max_body_size, exact and ^~ locations, return, servers
// on different listeners, a backup server) must reach the same backends with the same
// statuses (and Location), and TLS clients get the certificate their SNI name asks for. Skipped where nginx is not installed (bench/ installs nginx-light).

import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { before } from 'node:test';
import tls from 'node:tls';
import { Child, closedPort, fileScope, httpRequest, itest, tempDir, waitUntil, withTimeout, writeConfig } from './support/harness.mjs';
import { makeCa, makeLeaf } from './support/tls_helpers.mjs';

const NGINX = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((p) => existsSync(p));
const shared = fileScope();
let a;
let b;

before(async () => {
  [a, b] = await Promise.all([shared.mock({ name: 'side-a' }), shared.mock({ name: 'side-b' })]);
});

// Only the ports and the scratch paths differ between the two runs.
const config = ({ port, tlsPort, otherPort, deadPort, dir, certs }) => `
daemon off;
master_process off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log info; # info: turnout announces its listeners at info
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path ${dir}/body;
    proxy_temp_path ${dir}/proxy;
    client_max_body_size 2k;
    upstream app_a { server ${a.addr}; keepalive 8; }
    upstream app_b { server ${b.addr}; }
    upstream app_backup { server 127.0.0.1:${deadPort}; server ${b.addr} backup; }
    server {
        listen 127.0.0.1:${port};
        server_name a.test;
        location / { proxy_pass http://app_a; proxy_http_version 1.1; proxy_set_header Connection ""; }
        location /b/ { proxy_pass http://app_b; proxy_http_version 1.1; proxy_set_header Connection ""; }
        location ^~ /health/b { proxy_pass http://app_b; }
        location = /health/exact { proxy_pass http://app_b; }
        location /old/ { return 301 https://$host$request_uri; }
        location = /ping { return 200 "pong"; }
        location /gone { return 410; }
        location /backup/ { proxy_pass http://app_backup; }
    }
    server {
        listen 127.0.0.1:${otherPort};
        location / { proxy_pass http://app_b; }
    }
    server {
        listen 127.0.0.1:${otherPort};
        server_name moved.test;
        return 308 https://$host$request_uri;
        location / { proxy_pass http://app_a; }
    }
    server {
        listen 127.0.0.1:${port};
        server_name b.test;
        location / { proxy_pass http://app_b; proxy_buffering off; }
    }
    server {
        listen 127.0.0.1:${tlsPort} ssl;
        server_name a.test;
        ssl_certificate ${certs.a.cert};
        ssl_certificate_key ${certs.a.key};
        location / { proxy_pass http://app_a; }
    }
    server {
        listen 127.0.0.1:${tlsPort} ssl;
        server_name b.test;
        ssl_certificate ${certs.b.cert};
        ssl_certificate_key ${certs.b.key};
        location / { proxy_pass http://app_b; }
    }
}
`;

/** GET over TLS with SNI name: the status, the backend and the certificate's CN. */
function tlsAnswer(port, name, p = '/health') {
  return withTimeout(new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername: name, rejectUnauthorized: false }, () => {
      socket.write(`GET ${p} HTTP/1.1\r\nHost: ${name}\r\nConnection: close\r\n\r\n`);
    });
    let data = '';
    let cn = null;
    socket.once('secureConnect', () => { cn = socket.getPeerCertificate()?.subject?.CN ?? null; });
    socket.setEncoding('utf8');
    socket.on('data', (d) => { data += d; });
    socket.once('error', reject);
    socket.on('close', () => {
      const head = data.split('\r\n\r\n')[0];
      const backend = /\r\nx-backend: *([^\r]*)/i.exec(head)?.[1] ?? null;
      resolve({ request: `TLS ${name}${p}`, status: Number(head.split(' ')[1]), backend, cn });
    });
  }), 5000, `TLS GET ${name}`);
}

const requests = [
  { path: '/health', host: 'a.test' },
  { path: '/health/exact', host: 'a.test' }, // location =: app_b
  { path: '/health/exact/x', host: 'a.test' }, // not exact: ^~ /health/b does not match either, / does
  { path: '/old/page?x=1', host: 'a.test' }, // return 301 with $host$request_uri
  { path: '/ping', host: 'a.test' },
  { path: '/gone/now', host: 'a.test' },
  { path: '/backup/health', host: 'a.test' }, // the primary refuses: the backup server answers
  { path: '/health', host: 'a.test', other: true }, // the other listener's server, whatever the host
  { path: '/health', host: 'b.test', other: true },
  { path: '/any', host: 'moved.test', other: true }, // server-level return
  { path: '/health', host: 'b.test' },
  { path: '/health', host: 'unknown.test' }, // the default server: the first one
  { path: '/health/b', host: 'a.test' },
  { path: '/b/health', host: 'a.test' },
  { path: '/health?x=1', host: 'B.TEST' },
  { method: 'POST', path: '/health', host: 'a.test', body: 'x'.repeat(100) },
  { method: 'POST', path: '/health', host: 'a.test', body: 'x'.repeat(4096) }, // over 2k: 413
  { method: 'DELETE', path: '/health', host: 'b.test' },
];

async function answers(port, tlsPort, otherPort) {
  const out = [];
  for (const name of ['a.test', 'b.test']) out.push(await tlsAnswer(tlsPort, name));
  for (const r of requests) {
    const res = await httpRequest(r.other ? otherPort : port, {
      method: r.method ?? 'GET', path: r.path, body: r.body, headers: { Host: r.host, 'Content-Type': 'text/plain' },
    });
    out.push({
      request: `${r.method ?? 'GET'} ${r.host}${r.path}${r.other ? ' (other listener)' : ''}`,
      status: res.status,
      backend: res.get('x-backend') ?? null,
      location: res.get('location') ?? null,
      ...(r.path === '/ping' ? { body: res.text() } : {}),
    });
  }
  return out;
}

function connectable(port) {
  return new Promise((resolve) => {
    const sock = net.connect({ port, host: '127.0.0.1' });
    sock.once('connect', () => { sock.destroy(); resolve(true); });
    sock.once('error', () => resolve(false));
  });
}

itest('nginx and turnout -c nginx.conf send the same requests to the same backends with the same statuses',
  { skip: NGINX ? false : 'nginx is not installed' }, async (t, s) => {
    const cdir = tempDir(s);
    const ca = makeCa(cdir, 'ca');
    const certs = { a: makeLeaf(cdir, ca, 'a', 'a.test', 'DNS:a.test'), b: makeLeaf(cdir, ca, 'b', 'b.test', 'DNS:b.test') };
    const ndir = tempDir(s);
    for (const d of ['body', 'proxy']) mkdirSync(path.join(ndir, d));
    const ports = [];
    for (let i = 0; i < 7; i++) ports.push(await closedPort());
    const [nport, ntls, nother, tport, ttls, tother, deadPort] = ports;
    const nfile = writeConfig(s, config({ port: nport, tlsPort: ntls, otherPort: nother, deadPort, dir: ndir, certs }),
      'nginx.conf');
    const nginx = new Child('nginx', NGINX, ['-p', ndir, '-e', path.join(ndir, 'error.log'), '-c', nfile]);
    s.track(nginx, 'nginx');
    await waitUntil(() => connectable(nport), 10000, 'nginx to listen');

    const tdir = tempDir(s);
    const tn = await s.turnout({
      configText: config({ port: tport, tlsPort: ttls, otherPort: tother, deadPort, dir: tdir, certs }),
      configName: 'nginx.conf', listens: 3,
    });

    const fromNginx = await answers(nport, ntls, nother);
    const fromTurnout = await answers(tport, ttls, tother);
    assert.deepEqual(fromTurnout, fromNginx);
    // and the comparison means something: both backends and the size limit were exercised
    assert.ok(fromNginx.some((r) => r.backend === 'side-a') && fromNginx.some((r) => r.backend === 'side-b'));
    assert.ok(fromNginx.some((r) => r.status === 413));
    const by = (what) => fromNginx.find((r) => r.request === what);
    assert.equal(by('GET a.test/health/exact').backend, 'side-b');
    assert.equal(by('GET a.test/old/page?x=1').location, 'https://a.test/old/page?x=1');
    assert.equal(by('GET a.test/ping').body, 'pong');
    assert.equal(by('GET a.test/gone/now').status, 410);
    assert.equal(by('GET a.test/backup/health').backend, 'side-b');
    assert.equal(by('GET a.test/health (other listener)').backend, 'side-b');
    assert.equal(by('GET moved.test/any (other listener)').status, 308);
    assert.deepEqual(fromNginx.slice(0, 2).map((r) => r.cn), ['a.test', 'b.test']); // SNI chose each certificate
  });
