// Edge protection (SPEC.md "Edge protection"): the Origin check (DNS rebinding) on by default,
// allowed_origins and "*", allowed_hosts → 421, the official MCP conformance scenario
// `dns-rebinding-protection` through turnout, rate limits (429 + Retry-After + JSON, then
// recovery), open streams per client, and the refusals counted in /metrics.

import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { before } from 'node:test';
import { Child, TURNOUT_BIN, closedPort, fileScope, httpRequest, itest, run, tempDir, waitUntil, writeConfig } from './support/harness.mjs';
import { admin, metricValue, parseMetrics } from './support/control_helpers.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const CONFORMANCE = path.join(here, 'node_modules/@modelcontextprotocol/conformance/dist/index.js');
const EVERYTHING = path.join(here, 'node_modules/@modelcontextprotocol/server-everything/dist/index.js');

const shared = fileScope();
let mock;

before(async () => {
  mock = await shared.mock({ name: 'edge' });
});

const get = (tn, headers = {}, p = '/health') => httpRequest(tn.port, { path: p, headers });

function assertRefused(res, status, error) {
  assert.equal(res.status, status, `expected ${status}, got ${res.status} ${res.text()}`);
  assert.match(res.get('content-type'), /application\/json/);
  assert.deepEqual(res.json(), { error });
}

async function edgeRefusals(tn) {
  const m = parseMetrics((await admin(tn, 'GET', '/metrics')).text);
  const value = (reason) => metricValue(m, 'turnout_edge_refused_total', { reason });
  return { host: value('host'), origin: value('origin'), rate_limit: value('rate_limit'), streams: value('streams') };
}

itest('Origin check is on by default: another site answers 403, the own origin and no Origin pass', async (t, s) => {
  const tn = await s.turnout({ backends: [mock.addr] });
  assertRefused(await get(tn, { Origin: 'https://evil.example' }), 403, 'origin not allowed');
  assertRefused(await get(tn, { Origin: 'null' }), 403, 'origin not allowed');
  // Same host, another port: another origin.
  assertRefused(await get(tn, { Origin: `http://127.0.0.1:${tn.port + 1}` }), 403, 'origin not allowed');
  // node:http sends Host: 127.0.0.1:PORT — its own origin is http://127.0.0.1:PORT.
  const own = await get(tn, { Origin: `http://127.0.0.1:${tn.port}` });
  assert.equal(own.status, 200);
  assert.equal(own.get('x-backend'), 'edge');
  const none = await get(tn);
  assert.equal(none.status, 200);
  assert.deepEqual(await edgeRefusals(tn), { host: 0, origin: 3, rate_limit: 0, streams: 0 });
});

itest('allowed_origins lets the listed sites in; ["*"] turns the Origin check off', async (t, s) => {
  const listed = await s.turnout({
    backends: [mock.addr],
    listen: { allowed_origins: ['https://app.example.com', 'http://localhost:3000'] },
  });
  assert.equal((await get(listed, { Origin: 'https://APP.example.com:443' })).status, 200);
  assert.equal((await get(listed, { Origin: 'http://localhost:3000' })).status, 200);
  assertRefused(await get(listed, { Origin: 'http://localhost:3001' }), 403, 'origin not allowed');

  const off = await s.turnout({ backends: [mock.addr], listen: { allowed_origins: ['*'] } });
  const res = await get(off, { Origin: 'https://evil.example' });
  assert.equal(res.status, 200);
  assert.equal(res.get('x-backend'), 'edge');
});

itest('allowed_hosts answers 421 to any other Host, by name or name:port', async (t, s) => {
  const tn = await s.turnout({ backends: [mock.addr], listen: { allowed_hosts: ['localhost', '127.0.0.1'] } });
  assert.equal((await get(tn, { Host: `localhost:${tn.port}` })).status, 200);
  assert.equal((await get(tn, { Host: `127.0.0.1:${tn.port}` })).status, 200);
  assertRefused(await get(tn, { Host: 'evil.example.com' }), 421, 'host not allowed');
  assertRefused(await get(tn, { Host: `evil.example.com:${tn.port}` }), 421, 'host not allowed');
  const pinned = await s.turnout({ backends: [mock.addr], listen: { allowed_hosts: ['127.0.0.1:1'] } });
  assertRefused(await get(pinned, { Host: `127.0.0.1:${pinned.port}` }), 421, 'host not allowed');
  assert.equal((await edgeRefusals(tn)).host, 2);
});

// The official conformance suite (pinned in package.json; 0.1.13, the last release that runs
// on Node 20), scenario dns-rebinding-protection: Host and Origin of evil.example.com must get
// a 4xx, Host and Origin of localhost:PORT a 2xx, on an `initialize` POST.
async function conformance(s, url) {
  const out = tempDir(s);
  const r = await run(process.execPath, [CONFORMANCE, 'server', '--url', url, '--scenario', 'dns-rebinding-protection', '-o', out],
    { timeout: 30000, cwd: here });
  const [dir] = readdirSync(out);
  assert.ok(dir, `the suite wrote its results (exit ${r.code}): ${r.stdout}\n${r.stderr}`);
  const checks = JSON.parse(readFileSync(path.join(out, dir, 'checks.json'), 'utf8'));
  return Object.fromEntries(checks.map((c) => [c.id, c.status]));
}

itest('the MCP conformance scenario dns-rebinding-protection passes through turnout in front of server-everything, which fails it alone',
  { timeout: 90000 }, async (t, s) => {
    const port = await closedPort();
    const everything = new Child('server-everything', process.execPath, [EVERYTHING, 'streamableHttp'],
      { cwd: here, env: { PORT: String(port) } });
    s.track(everything);
    await everything.waitForMatches(/listening on port/, { stream: 'stderr', timeout: 30000 });

    const direct = await conformance(s, `http://localhost:${port}/mcp`);
    assert.equal(direct['localhost-host-rebinding-rejected'], 'FAILURE', 'server-everything alone accepts the rebound Host');
    assert.equal(direct['localhost-host-valid-accepted'], 'SUCCESS');

    const tn = await s.turnout({
      backends: [`127.0.0.1:${port}`],
      listen: { allowed_hosts: ['localhost', '127.0.0.1', '[::1]'] },
    });
    const through = await conformance(s, `http://localhost:${tn.port}/mcp`);
    assert.deepEqual(through, {
      'localhost-host-rebinding-rejected': 'SUCCESS',
      'localhost-host-valid-accepted': 'SUCCESS',
    });
  });

itest('rate_limit: past the burst a client gets 429 with Retry-After and a JSON body; other clients are not limited', async (t, s) => {
  const tn = await s.turnout({
    backends: [mock.addr],
    listen: { rate_limit: { requests: 1, per: '1h', burst: 3, key: 'header:X-Client' } },
  });
  for (let i = 0; i < 3; i++) assert.equal((await get(tn, { 'X-Client': 'a' })).status, 200);
  const refused = await get(tn, { 'X-Client': 'a' });
  assertRefused(refused, 429, 'rate limit exceeded');
  const retryAfter = Number(refused.get('retry-after'));
  assert.ok(Number.isInteger(retryAfter) && retryAfter > 3000 && retryAfter <= 3600,
    `Retry-After is the wait for one token (up to an hour at 1 an hour): ${refused.get('retry-after')}`);
  assert.equal((await get(tn, { 'X-Client': 'b' })).status, 200, 'another key has its own bucket');
  // Without the header the address is the key: its own bucket, not a way around the limit.
  for (let i = 0; i < 3; i++) assert.equal((await get(tn)).status, 200);
  assert.equal((await get(tn)).status, 429);
  assert.equal((await edgeRefusals(tn)).rate_limit, 2);
});

itest('rate_limit: a limited client recovers once its bucket refills', async (t, s) => {
  const tn = await s.turnout({ backends: [mock.addr], listen: { rate_limit: { requests: 2, per: '1s', burst: 1 } } });
  // Requests back to back outrun 2 a second: one of them is refused...
  let refused = null;
  for (let i = 0; i < 100 && !refused; i++) {
    const res = await get(tn);
    if (res.status === 429) refused = res;
    else assert.equal(res.status, 200);
  }
  assert.ok(refused, 'requests back to back were limited');
  assert.equal(refused.get('retry-after'), '1');
  // ...and later ones pass again.
  await waitUntil(async () => (await get(tn)).status === 200, 10000, 'a request to pass after the refill');
});

itest('max_streams_per_client: a client past its open streams gets 429; closing one frees its place', async (t, s) => {
  const tn = await s.turnout({ backends: [mock.addr], listen: { max_streams_per_client: 2 } });
  const openStream = async () => {
    const conn = await s.conn(tn.port);
    await conn.write('GET /sse HTTP/1.1\r\nHost: t\r\nAccept: text/event-stream\r\n\r\n');
    return { conn, statusLine: await conn.readLine(Date.now() + 5000, 'a status line') };
  };
  const first = await openStream();
  const second = await openStream();
  assert.match(first.statusLine, / 200 /);
  assert.match(second.statusLine, / 200 /);
  const third = await httpRequest(tn.port, { path: '/sse', headers: { Accept: 'text/event-stream' } });
  assertRefused(third, 429, 'too many open streams for this client');
  // Ordinary requests of the same client are not streams: not limited.
  assert.equal((await get(tn)).status, 200);
  first.conn.destroy();
  await waitUntil(async () => {
    const again = await openStream();
    const ok = / 200 /.test(again.statusLine);
    again.conn.destroy();
    return ok;
  }, 10000, 'a stream to open once one closed');
  assert.equal((await edgeRefusals(tn)).streams >= 1, true);
});

itest('turnout -t refuses bad edge and MCP routing values with PATH:LINE:COL', async (t, s) => {
  const cases = [
    ['[[listen]]\naddress = "127.0.0.1:0"\nallowed_origins = ["https://a.example/x"]\n', /:3:20: listen\.allowed_origins: expected "\*" or an origin/],
    ['[[listen]]\naddress = "127.0.0.1:0"\nrate_limit = { requests = 10, key = "cookie" }\n', /:3:37: listen\.rate_limit\.key: expected "ip" or "header:NAME", got "cookie"/],
    ['[[listen]]\naddress = "127.0.0.1:0"\n[[upstream]]\nname = "m"\nclient_key = "ip:v6"\n  [[upstream.pool]]\n  name = "p"\n',
      /:5:14: upstream\.client_key: expected "none", "ip" or "header:NAME", got "ip:v6"/],
    ['[[listen]]\naddress = "127.0.0.1:0"\n[[upstream]]\nname = "m"\n  [[upstream.pool]]\n  name = "p"\n[[route]]\nmcp_name = "x"\nupstream = "m"\n',
      /:8:12: route\.mcp_name: needs mcp_method/],
  ];
  for (const [text, expected] of cases) {
    const file = writeConfig(s, text);
    const r = await run(TURNOUT_BIN, ['-t', '-c', file]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, new RegExp(file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&') + expected.source));
  }
});
