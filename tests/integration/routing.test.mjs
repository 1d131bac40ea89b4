// [[route]]: the longest path_prefix wins; a route with `host` only takes requests for that host.

import assert from 'node:assert/strict';
import { before } from 'node:test';
import { fileScope, itest } from './support/harness.mjs';

const shared = fileScope();
const mocks = {};

before(async () => {
  const names = ['root', 'api', 'apiv2', 'host'];
  const started = await Promise.all(names.map((name) => shared.mock({ name: `route-${name}` })));
  names.forEach((name, i) => {
    mocks[name] = started[i];
  });
});

const upstream = (name) => ({ name, pools: [{ name: 'p', weight: 100, backends: [mocks[name].addr] }] });

async function routedTurnout(s, routes) {
  return s.turnout({
    upstreams: ['root', 'api', 'apiv2', 'host'].map(upstream),
    routes,
  });
}

async function backendFor(s, tn, target, host = 'plain.test') {
  const conn = await s.conn(tn.port);
  await conn.write(`GET ${target} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
  const res = await conn.readResponse();
  conn.destroy();
  return res.get('x-backend');
}

itest('the longest matching path_prefix wins, whatever the order of the routes', async (t, s) => {
  const tn = await routedTurnout(s, [
    { path_prefix: '/', upstream: 'root' },
    { path_prefix: '/api/v2/', upstream: 'apiv2' },
    { path_prefix: '/api/', upstream: 'api' },
  ]);
  assert.equal(await backendFor(s, tn, '/health'), 'route-root');
  assert.equal(await backendFor(s, tn, '/api/v1/things'), 'route-api');
  assert.equal(await backendFor(s, tn, '/api/v2/things'), 'route-apiv2');
  assert.equal(await backendFor(s, tn, '/api/v2/'), 'route-apiv2');
  assert.equal(await backendFor(s, tn, '/api/'), 'route-api');
  assert.equal(await backendFor(s, tn, '/apix'), 'route-root');
});

itest('a path_prefix matches the path, not the query string', async (t, s) => {
  const tn = await routedTurnout(s, [
    { path_prefix: '/', upstream: 'root' },
    { path_prefix: '/api/', upstream: 'api' },
  ]);
  assert.equal(await backendFor(s, tn, '/api/x?next=/'), 'route-api');
  assert.equal(await backendFor(s, tn, '/x?path=/api/'), 'route-root');
});

itest('a route with host takes only requests for that host', async (t, s) => {
  const tn = await routedTurnout(s, [
    { path_prefix: '/', upstream: 'root' },
    { path_prefix: '/', upstream: 'host', host: 'tools.example.com' },
  ]);
  assert.equal(await backendFor(s, tn, '/health', 'tools.example.com'), 'route-host');
  assert.equal(await backendFor(s, tn, '/health', 'other.example.com'), 'route-root');
  assert.equal(await backendFor(s, tn, '/health', 'plain.test'), 'route-root');
});

itest('host matching ignores the port and letter case of the Host header', async (t, s) => {
  const tn = await routedTurnout(s, [
    { path_prefix: '/', upstream: 'root' },
    { path_prefix: '/', upstream: 'host', host: 'tools.example.com' },
  ]);
  assert.equal(await backendFor(s, tn, '/health', `tools.example.com:${tn.port}`), 'route-host');
  assert.equal(await backendFor(s, tn, '/health', 'Tools.Example.COM'), 'route-host');
});

itest('each upstream of a route set gets only its own traffic on one keep-alive connection', async (t, s) => {
  const tn = await routedTurnout(s, [
    { path_prefix: '/', upstream: 'root' },
    { path_prefix: '/api/', upstream: 'api' },
  ]);
  const conn = await s.conn(tn.port);
  for (const [target, want] of [['/api/a', 'route-api'], ['/b', 'route-root'], ['/api/c', 'route-api'], ['/d', 'route-root']]) {
    await conn.write(`GET ${target} HTTP/1.1\r\nHost: t\r\n\r\n`);
    const res = await conn.readResponse();
    assert.equal(res.get('x-backend'), want, target);
  }
});
