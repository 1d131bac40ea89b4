// TLS: termination on [[listen]] (tls_cert/tls_key, SNI certificates, ALPN, TLS 1.2+, session
// resumption), certificate reload on SIGHUP without dropping a connection, `turnout -t` on bad
// files, and TLS toward backends (tls = true on a pool, verified). Certificates are made at
// test time with the openssl CLI (support/tls_helpers.mjs).

import assert from 'node:assert/strict';
import { copyFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { before } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import {
  FAST_PROXY_DEFAULTS, fileScope, itest, run, TURNOUT_BIN, tempDir, waitUntil, withTimeout,
} from './support/harness.mjs';
import { backendIn, waitStatus } from './support/control_helpers.mjs';
import { reloadTurnout } from './support/session_helpers.mjs';
import { httpsFetch, makeTlsMaterial, tlsConnect, tlsGet } from './support/tls_helpers.mjs';

const shared = fileScope();
let material;
let sdk;
let mock;

before(async () => {
  material = makeTlsMaterial(tempDir(shared));
  [sdk, mock] = await Promise.all([shared.sdkServer({ name: 'tls-sdk' }), shared.mock({ name: 'tls-mock' })]);
});

const q = (v) => JSON.stringify(v);

/** A config with one TLS listener (cert/key paths as given, relative to the config folder). */
function tlsConfig({ cert = 'server.pem', key = 'server.key', sni = [], backends, pool = {}, proxy = {}, health }) {
  let toml = '[proxy]\n';
  for (const [k, v] of Object.entries({ ...FAST_PROXY_DEFAULTS, ...proxy })) toml += `${k} = ${q(v)}\n`;
  toml += `\n[[listen]]\naddress = "127.0.0.1:0"\ntls_cert = ${q(cert)}\ntls_key = ${q(key)}\n`;
  for (const c of sni) toml += `  [[listen.certificate]]\n  cert = ${q(c.cert)}\n  key = ${q(c.key)}\n`;
  toml += `\n[[upstream]]\nname = "mcp"\n  [[upstream.pool]]\n  name = "blue"\n  weight = 100\n  backends = ${q(backends)}\n`;
  for (const [k, v] of Object.entries(pool)) toml += `  ${k} = ${typeof v === 'boolean' ? v : q(v)}\n`;
  if (health) {
    toml += '  [upstream.health]\n';
    for (const [k, v] of Object.entries(health)) toml += `  ${k} = ${q(v)}\n`;
  }
  toml += '\n[[route]]\npath_prefix = "/"\nupstream = "mcp"\n';
  return toml;
}

/** Copies the material's files next to a config, so that relative paths and rewrites work. */
function stageFiles(dir, names = ['server', 'sni', 'renewed']) {
  for (const n of names) {
    copyFileSync(material[n].cert, path.join(dir, `${n}.pem`));
    copyFileSync(material[n].key, path.join(dir, `${n}.key`));
  }
  copyFileSync(material.ca.cert, path.join(dir, 'ca.pem'));
  copyFileSync(material.otherCa.cert, path.join(dir, 'other-ca.pem'));
}

// startTurnout writes the config into a fresh temp folder; the certificates are referenced by
// absolute paths into a staged folder instead.
function staged(s) {
  const dir = tempDir(s);
  stageFiles(dir);
  const p = (n) => path.join(dir, n);
  return { dir, p };
}

itest('an SDK client runs an MCP session over https through turnout', async (t, s) => {
  const { p } = staged(s);
  const tn = await s.turnout({ configText: tlsConfig({ cert: p('server.pem'), key: p('server.key'), backends: [sdk.addr] }) });
  const client = new Client({ name: 'tls-it', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(`https://127.0.0.1:${tn.port}/mcp`),
    { fetch: httpsFetch(material.caPem) });
  await withTimeout(client.connect(transport), 10000, 'MCP initialize over TLS');
  s.defer(() => client.close().catch(() => {}));
  assert.ok(transport.sessionId, 'the session id came back over TLS');
  const echoed = await client.callTool({ name: 'echo', arguments: { text: 'over tls' } });
  assert.equal(echoed.content[0].text, 'over tls');
  await withTimeout(transport.terminateSession(), 5000, 'DELETE over TLS');
});

itest('the backend is told the client came over https (X-Forwarded-Proto)', async (t, s) => {
  const { p } = staged(s);
  const tn = await s.turnout({ configText: tlsConfig({ cert: p('server.pem'), key: p('server.key'), backends: [mock.addr] }) });
  const res = await tlsGet(tn.port, '/headers', { ca: material.caPem, servername: 'localhost' });
  assert.equal(res.status, 200);
  const seen = JSON.parse(res.body);
  const proto = seen.headers.find(([name]) => name.toLowerCase() === 'x-forwarded-proto');
  assert.deepEqual(proto?.[1], 'https');
});

itest('ALPN selects http/1.1, and a client offering only h2 is refused', async (t, s) => {
  const { p } = staged(s);
  const tn = await s.turnout({ configText: tlsConfig({ cert: p('server.pem'), key: p('server.key'), backends: [mock.addr] }) });
  const res = await tlsGet(tn.port, '/health', { ca: material.caPem, ALPNProtocols: ['h2', 'http/1.1'] });
  assert.equal(res.alpn, 'http/1.1');
  assert.equal(res.status, 200);
  await assert.rejects(tlsConnect(tn.port, { ca: material.caPem, ALPNProtocols: ['h2'] }), /no.application.protocol|alert/i);
});

itest('TLS 1.2 is accepted and older versions are refused', async (t, s) => {
  const { p } = staged(s);
  const tn = await s.turnout({ configText: tlsConfig({ cert: p('server.pem'), key: p('server.key'), backends: [mock.addr] }) });
  const v12 = await tlsConnect(tn.port, { ca: material.caPem, maxVersion: 'TLSv1.2' });
  assert.equal(v12.getProtocol(), 'TLSv1.2');
  v12.destroy();
  const v13 = await tlsConnect(tn.port, { ca: material.caPem });
  assert.equal(v13.getProtocol(), 'TLSv1.3');
  v13.destroy();
  // The client would speak TLS 1.1 (security level 0 lifts the client-side ban): turnout must not.
  await assert.rejects(tlsConnect(tn.port, {
    ca: material.caPem, minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0',
  }), /protocol|version|alert|ssl/i);
});

itest('SNI picks the certificate whose names match, the default one otherwise', async (t, s) => {
  const { p } = staged(s);
  const tn = await s.turnout({ configText: tlsConfig({
    cert: p('server.pem'), key: p('server.key'), sni: [{ cert: p('sni.pem'), key: p('sni.key') }], backends: [mock.addr],
  }) });
  const named = await tlsGet(tn.port, '/health', { ca: material.caPem, servername: 'second.test' });
  assert.equal(named.subject, 'sni-cert');
  assert.equal(named.status, 200);
  const wild = await tlsGet(tn.port, '/health', { ca: material.caPem, servername: 'api.wild.test' });
  assert.equal(wild.subject, 'sni-cert');
  const other = await tlsGet(tn.port, '/health', { ca: material.caPem, servername: 'localhost' });
  assert.equal(other.subject, 'default-cert');
  const deeper = await tlsGet(tn.port, '/health', { ca: material.caPem, servername: 'a.b.wild.test', checkServerIdentity: () => undefined });
  assert.equal(deeper.subject, 'default-cert', 'a wildcard covers one label only');
});

for (const version of ['TLSv1.2', 'TLSv1.3']) {
  itest(`a ${version} session resumes on a new connection`, async (t, s) => {
    const { p } = staged(s);
    const tn = await s.turnout({ configText: tlsConfig({ cert: p('server.pem'), key: p('server.key'), backends: [mock.addr] }) });
    const opts = { ca: material.caPem, servername: 'localhost', maxVersion: version, minVersion: version };
    const first = await tlsGet(tn.port, '/health', opts);
    assert.equal(first.reused, false);
    assert.ok(first.sessions.length > 0, 'turnout issued a session (ticket)');
    // Several tries: with two workers the second connection may land on either; both share the context.
    for (let i = 0; i < 3; i++) {
      const again = await tlsGet(tn.port, '/health', { ...opts, session: first.sessions[first.sessions.length - 1] });
      assert.equal(again.reused, true, `try ${i}: the session was resumed`);
      assert.equal(again.status, 200);
    }
  });
}

itest('SIGHUP with a new certificate: an open TLS stream keeps flowing, new connections get the new one', async (t, s) => {
  const { dir, p } = staged(s);
  copyFileSync(p('server.pem'), p('live.pem'));
  copyFileSync(p('server.key'), p('live.key'));
  const config = tlsConfig({ cert: p('live.pem'), key: p('live.key'), backends: [mock.addr] });
  const tn = await s.turnout({ configText: config });

  const received = [];
  const req = https.request({ host: '127.0.0.1', port: tn.port, path: '/sse?n=400&interval_ms=25', ca: material.caPem, agent: false });
  s.defer(() => req.destroy());
  const res = await withTimeout(new Promise((resolve, reject) => {
    req.on('response', resolve);
    req.on('error', reject);
    req.end();
  }), 5000, 'the SSE stream head');
  assert.equal(res.statusCode, 200);
  let ended = false;
  res.setEncoding('utf8');
  res.on('data', (d) => received.push(d));
  res.on('close', () => {
    ended = true;
  });
  await waitUntil(() => received.join('').includes('event 3'), 5000, 'events before the reload');

  copyFileSync(p('renewed.pem'), p('live.pem'));
  copyFileSync(p('renewed.key'), p('live.key'));
  await reloadTurnout(tn, config);
  const countAtReload = (received.join('').match(/event \d+/g) ?? []).length;

  const fresh = await tlsGet(tn.port, '/health', { ca: material.caPem, servername: 'localhost' });
  assert.equal(fresh.subject, 'renewed-cert', 'a new connection sees the new certificate');
  await waitUntil(() => (received.join('').match(/event \d+/g) ?? []).length >= countAtReload + 5, 5000,
    'events after the reload on the stream opened before it');
  assert.equal(ended, false, 'the stream is still open');
  assert.equal(res.socket.getPeerCertificate().subject.CN, 'default-cert', 'the open stream kept its handshake');
  void dir;
});

itest('SIGHUP with a broken certificate keeps serving with the old one', async (t, s) => {
  const { p } = staged(s);
  copyFileSync(p('server.pem'), p('live.pem'));
  copyFileSync(p('server.key'), p('live.key'));
  const config = tlsConfig({ cert: p('live.pem'), key: p('live.key'), backends: [mock.addr] });
  const tn = await s.turnout({ configText: config });
  writeFileSync(p('live.pem'), 'this is not a certificate\n');
  const failures = (tn.logs().match(/reload failed/g) ?? []).length;
  tn.child.signal('SIGHUP');
  await tn.child.waitForMatches(/reload failed/, { count: failures + 1, timeout: 10000 });
  assert.match(tn.logs(), new RegExp(`${p('live.pem').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: not a PEM certificate`));
  const res = await tlsGet(tn.port, '/health', { ca: material.caPem, servername: 'localhost' });
  assert.equal(res.status, 200);
  assert.equal(res.subject, 'default-cert');
});

itest('plain HTTP on a TLS port fails the handshake and turnout keeps serving TLS', async (t, s) => {
  const { p } = staged(s);
  const tn = await s.turnout({ configText: tlsConfig({ cert: p('server.pem'), key: p('server.key'), backends: [mock.addr] }) });
  const conn = await s.conn(tn.port);
  await conn.write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n');
  await conn.waitClosed(5000);
  assert.doesNotMatch(conn.buf.toString('latin1'), /HTTP\/1\.1/, 'no HTTP answer on a TLS port');
  const res = await tlsGet(tn.port, '/health', { ca: material.caPem, servername: 'localhost' });
  assert.equal(res.status, 200);
});

itest('a client that never completes its handshake is closed after header_timeout', async (t, s) => {
  const { p } = staged(s);
  const tn = await s.turnout({ configText: tlsConfig({ cert: p('server.pem'), key: p('server.key'), backends: [mock.addr],
    proxy: { header_timeout: '300ms' } }) });
  const conn = await s.conn(tn.port);
  await conn.write(Buffer.from([0x16, 0x03, 0x01])); // the start of a ClientHello record, then silence
  await conn.waitClosed(5000);
  const res = await tlsGet(tn.port, '/health', { ca: material.caPem, servername: 'localhost' });
  assert.equal(res.status, 200);
});

for (const [name, mutate, pathOf, message] of [
  ['a missing certificate file', (d) => ({ cert: path.join(d, 'missing.pem'), key: path.join(d, 'server.key') }),
    (d) => path.join(d, 'missing.pem'), /cannot read: No such file or directory/],
  ['a certificate file that is not PEM', (d) => {
    writeFileSync(path.join(d, 'junk.pem'), 'junk\n');
    return { cert: path.join(d, 'junk.pem'), key: path.join(d, 'server.key') };
  }, (d) => path.join(d, 'junk.pem'), /not a PEM certificate/],
  ['a key file that is not PEM', (d) => {
    writeFileSync(path.join(d, 'junk.key'), 'junk\n');
    return { cert: path.join(d, 'server.pem'), key: path.join(d, 'junk.key') };
  }, (d) => path.join(d, 'junk.key'), /not a PEM private key/],
  ['a key that does not match its certificate', (d) => ({ cert: path.join(d, 'server.pem'), key: path.join(d, 'sni.key') }),
    (d) => path.join(d, 'sni.key'), /does not match the certificate/],
  ['a bad SNI certificate', (d) => ({ cert: path.join(d, 'server.pem'), key: path.join(d, 'server.key'),
    sni: [{ cert: path.join(d, 'sni.pem'), key: path.join(d, 'renewed.key') }] }),
  (d) => path.join(d, 'renewed.key'), /does not match the certificate/],
  ['a missing backend CA file', (d) => ({ cert: path.join(d, 'server.pem'), key: path.join(d, 'server.key'),
    pool: { tls: true, tls_ca_file: path.join(d, 'no-ca.pem') } }), (d) => path.join(d, 'no-ca.pem'), /cannot read/],
]) {
  itest(`turnout -t reports ${name} with its path and exits 1`, async (t, s) => {
    const { dir } = staged(s);
    const configPath = path.join(dir, 'turnout.toml');
    writeFileSync(configPath, tlsConfig({ ...mutate(dir), backends: ['127.0.0.1:9'] }));
    const r = await run(TURNOUT_BIN, ['-t', '-c', configPath]);
    assert.equal(r.code, 1, r.stderr);
    assert.ok(r.stderr.startsWith(`${pathOf(dir)}: `), r.stderr);
    assert.match(r.stderr, message);
    // The same check stops a start-up.
    const started = await run(TURNOUT_BIN, ['-c', configPath]);
    assert.equal(started.code, 1);
    assert.ok(started.stderr.includes(`${pathOf(dir)}: `), started.stderr);
  });
}

itest('turnout -t accepts a valid TLS configuration', async (t, s) => {
  const { dir, p } = staged(s);
  const configPath = path.join(dir, 'turnout.toml');
  writeFileSync(configPath, tlsConfig({ cert: 'server.pem', key: 'server.key', sni: [{ cert: 'sni.pem', key: 'sni.key' }],
    backends: ['127.0.0.1:9'], pool: { tls: true, tls_ca_file: 'ca.pem' } }));
  const r = await run(TURNOUT_BIN, ['-t', '-c', configPath]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /configuration ok/);
  void p;
});

// ---- TLS to backends ------------------------------------------------------------------------

/** An https backend with the backend certificate (SAN backend.test, 127.0.0.1). */
async function httpsBackend(s) {
  const { readFileSync } = await import('node:fs');
  const seen = [];
  let connections = 0;
  const server = https.createServer({ cert: readFileSync(material.backend.cert), key: readFileSync(material.backend.key) },
    (req, res) => {
      seen.push({ url: req.url, servername: req.socket.servername ?? null });
      res.setHeader('Content-Type', 'application/json');
      res.setHeader('X-Backend', 'tls-backend');
      res.end(JSON.stringify({ ok: true, url: req.url }));
    });
  server.on('secureConnection', () => {
    connections += 1;
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  s.defer(() => new Promise((resolve) => {
    server.closeAllConnections();
    server.close(resolve);
  }));
  return { addr: `127.0.0.1:${server.address().port}`, seen, connections: () => connections };
}

itest('TLS to a backend verified against tls_ca_file (IP SAN), connections kept alive', async (t, s) => {
  const { p } = staged(s);
  const be = await httpsBackend(s);
  const tn = await s.turnout({ configText: tlsConfig({ cert: p('server.pem'), key: p('server.key'), backends: [be.addr],
    pool: { tls: true, tls_ca_file: p('ca.pem') } }) });
  for (let i = 0; i < 3; i++) {
    const res = await tlsGet(tn.port, `/hello${i}`, { ca: material.caPem, servername: 'localhost' });
    assert.equal(res.status, 200, res.head);
    assert.deepEqual(JSON.parse(res.body), { ok: true, url: `/hello${i}` });
  }
  assert.equal(be.seen.length, 3);
  assert.ok(!be.seen[0].servername, 'no SNI for an IP address');
  // Two workers: each opens at most one TLS connection and then reuses it from its pool.
  assert.ok(be.connections() <= 2, `${be.connections()} TLS connections for 3 sequential requests`);
});

itest('TLS to a backend with tls_server_name: SNI sent and the name verified', async (t, s) => {
  const { p } = staged(s);
  const be = await httpsBackend(s);
  const tn = await s.turnout({ configText: tlsConfig({ cert: p('server.pem'), key: p('server.key'), backends: [be.addr],
    pool: { tls: true, tls_ca_file: p('ca.pem'), tls_server_name: 'backend.test' } }) });
  const res = await tlsGet(tn.port, '/named', { ca: material.caPem, servername: 'localhost' });
  assert.equal(res.status, 200, res.head);
  assert.equal(be.seen.at(-1).servername, 'backend.test');
});

for (const [name, pool] of [
  ['a CA that did not sign it', (p) => ({ tls: true, tls_ca_file: p('other-ca.pem') })],
  ['a server name it does not carry', (p) => ({ tls: true, tls_ca_file: p('ca.pem'), tls_server_name: 'wrong.test' })],
]) {
  itest(`TLS to a backend fails verification with ${name}: 502, nothing reaches it`, async (t, s) => {
    const { p } = staged(s);
    const be = await httpsBackend(s);
    const tn = await s.turnout({ configText: tlsConfig({ cert: p('server.pem'), key: p('server.key'), backends: [be.addr], pool: pool(p) }) });
    const res = await tlsGet(tn.port, '/x', { ca: material.caPem, servername: 'localhost' });
    assert.equal(res.status, 502, res.head);
    assert.equal(be.seen.length, 0);
    assert.match(tn.logs(), /certificate verify failed/);
  });
}

itest('health probes of a TLS pool speak TLS and fail on a certificate that does not verify', async (t, s) => {
  const { p } = staged(s);
  const be = await httpsBackend(s);
  const health = { kind: 'http', path: '/probe', interval: '100ms', timeout: '1s', rise: 1, fall: 1 };
  const config = (ca) => tlsConfig({ cert: p('server.pem'), key: p('server.key'), backends: [be.addr],
    pool: { tls: true, tls_ca_file: p(ca) }, health });
  const tn = await s.turnout({ configText: config('ca.pem') });
  await waitUntil(() => be.seen.some((r) => r.url === '/probe'), 5000, 'a probe over TLS at the backend');
  await waitStatus(tn, (st) => backendIn(st, be.addr).health?.last_ok === true, 5000, 'a passed probe');

  await reloadTurnout(tn, config('other-ca.pem'));
  const st = await waitStatus(tn, (x) => backendIn(x, be.addr).healthy === false, 5000, 'the backend marked down');
  assert.match(backendIn(st, be.addr).health.last_error, /certificate|TLS/i);
});
