// TLS test material made at test time with the openssl CLI (nothing secret is committed), and
// small clients: an https fetch for the MCP SDK, raw node:tls connections.

import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { Readable } from 'node:stream';
import tls from 'node:tls';
import { withTimeout } from './harness.mjs';

function openssl(dir, args) {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'], timeout: 20000 });
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/** A self-signed CA in dir: {cert, key} paths. */
export function makeCa(dir, name) {
  const key = path.join(dir, `${name}.key`);
  const cert = path.join(dir, `${name}.pem`);
  openssl(dir, ['req', '-x509', ...EC, '-keyout', key, '-out', cert, '-subj', `/CN=${name}`, '-days', '2',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  return { cert, key };
}

/**
 * A leaf certificate signed by ca, with subject CN cn and subjectAltName san ("DNS:a,IP:b");
 * usage: its extendedKeyUsage ("serverAuth", "clientAuth" or both, comma-separated).
 */
export function makeLeaf(dir, ca, name, cn, san, usage = 'serverAuth') {
  const key = path.join(dir, `${name}.key`);
  const csr = path.join(dir, `${name}.csr`);
  const cert = path.join(dir, `${name}.pem`);
  const ext = path.join(dir, `${name}.ext`);
  writeFileSync(ext, `subjectAltName=${san}\nextendedKeyUsage=${usage}\n`);
  openssl(dir, ['req', ...EC, '-keyout', key, '-out', csr, '-subj', `/CN=${cn}`]);
  openssl(dir, ['x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial', '-out', cert,
    '-days', '2', '-extfile', ext]);
  return { cert, key };
}

/** The usual set: a CA, the default server cert, an SNI cert, a renewed default, another CA. */
export function makeTlsMaterial(dir) {
  const ca = makeCa(dir, 'test-ca');
  const otherCa = makeCa(dir, 'other-ca');
  return {
    dir,
    ca,
    otherCa,
    caPem: readFileSync(ca.cert),
    server: makeLeaf(dir, ca, 'server', 'default-cert', 'DNS:localhost,IP:127.0.0.1'),
    sni: makeLeaf(dir, ca, 'sni', 'sni-cert', 'DNS:second.test,DNS:*.wild.test'),
    renewed: makeLeaf(dir, ca, 'renewed', 'renewed-cert', 'DNS:localhost,IP:127.0.0.1'),
    backend: makeLeaf(dir, ca, 'backend', 'backend-cert', 'DNS:backend.test,IP:127.0.0.1'),
  };
}

/** A fetch over node:https trusting ca (the SDK takes a custom fetch; streams stay streams). */
export function httpsFetch(ca) {
  return (url, init = {}) => new Promise((resolve, reject) => {
    const u = new URL(url);
    const headers = {};
    new Headers(init.headers ?? {}).forEach((v, k) => {
      headers[k] = v;
    });
    const method = init.method ?? 'GET';
    const req = https.request({ host: u.hostname, port: u.port, path: u.pathname + u.search, method, headers, ca, agent: false },
      (res) => {
        const h = new Headers();
        for (const [k, v] of Object.entries(res.headers)) h.set(k, Array.isArray(v) ? v.join(', ') : String(v));
        const noBody = method === 'HEAD' || res.statusCode === 204 || res.statusCode === 304;
        if (noBody) res.resume();
        resolve(new Response(noBody ? null : Readable.toWeb(res), { status: res.statusCode, statusText: res.statusMessage, headers: h }));
      });
    req.on('error', reject);
    init.signal?.addEventListener('abort', () => req.destroy(new Error('aborted')));
    req.end(init.body ?? undefined);
  });
}

/** node:tls connection to 127.0.0.1:port; resolves once secure (or rejects with the TLS error). */
export function tlsConnect(port, opts = {}) {
  return withTimeout(new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ...opts }, () => resolve(socket));
    socket.once('error', reject);
  }), 5000, `TLS connection to port ${port}`);
}

/** One GET over a fresh TLS connection; resolves {status, body, socket info}. */
export function tlsGet(port, p, opts = {}) {
  return withTimeout(new Promise((resolve, reject) => {
    const sessions = [];
    let info = {};
    const socket = tls.connect({ host: '127.0.0.1', port, ...opts }, () => {
      info = { reused: socket.isSessionReused(), alpn: socket.alpnProtocol, subject: socket.getPeerCertificate()?.subject?.CN };
      socket.write(`GET ${p} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`);
    });
    socket.on('session', (s) => sessions.push(s));
    let data = '';
    socket.setEncoding('utf8');
    socket.on('data', (d) => {
      data += d;
    });
    socket.once('error', reject);
    socket.on('close', () => {
      const [head, ...rest] = data.split('\r\n\r\n');
      resolve({
        status: Number(head.split(' ')[1]),
        head,
        body: rest.join('\r\n\r\n'),
        ...info,
        sessions,
      });
    });
  }), 5000, `GET ${p} over TLS on port ${port}`);
}
