// Routes as nginx's server and location blocks make them: an exact path (`path`, nginx's
// `location =`), a fixed answer (`answer`, nginx's `return`), routes limited to a listener
// (`listen`, nginx's server blocks each with their own `listen`), and a backup pool
// (`backup = true`, nginx's `server ... backup`) that takes new sessions only while the
// primary pool has no available backend — a session it took stays there.

import assert from 'node:assert/strict';
import { before } from 'node:test';
import { closedPort, fileScope, FAST_PROXY_DEFAULTS, httpRequest, itest } from './support/harness.mjs';
import { initialize, sessionRequest } from './support/session_helpers.mjs';
import { adminOk, poolIn, status, waitAdmin } from './support/control_helpers.mjs';

const shared = fileScope();
let root;
let exact;
let internal;

before(async () => {
  [root, exact, internal] = await Promise.all(
    ['rk-root', 'rk-exact', 'rk-internal'].map((name) => shared.mock({ name })));
});

const proxyTable = () => Object.entries(FAST_PROXY_DEFAULTS).map(([k, v]) => `${k} = ${JSON.stringify(v)}`).join('\n');

async function routesTurnout(s) {
  const [publicPort, internalPort] = [await closedPort(), await closedPort()];
  const one = (name, backend) => `[[upstream]]\nname = "${name}"\n  [[upstream.pool]]\n  name = "p"\n  weight = 100\n` +
    `  backends = ["${backend.addr}"]\n`;
  const configText = `[proxy]
${proxyTable()}

[[listen]]
address = "127.0.0.1:${publicPort}"
name = "public"

[[listen]]
address = "127.0.0.1:${internalPort}"
name = "internal"

${one('root', root)}
${one('exact', exact)}
${one('internal', internal)}
[[route]]
path_prefix = "/"
listen = "public"
upstream = "root"

[[route]]
path = "/mcp"
listen = "public"
upstream = "exact"

[[route]]
path_prefix = "/old/"
listen = "public"
answer = { status = 301, location = "https://$host$request_uri" }

[[route]]
path = "/ping"
listen = "public"
answer = { status = 200, body = "pong from $host\\n" }

[[route]]
path_prefix = "/gone"
listen = "public"
answer = { status = 410 }

[[route]]
path_prefix = "/"
listen = "internal"
upstream = "internal"
`;
  const tn = await s.turnout({ configText, listens: 2 });
  return { tn, publicPort, internalPort };
}

const get = (port, p, { method = 'GET', host = 'example.test' } = {}) =>
  httpRequest(port, { method, path: p, headers: { Host: host } });

itest('path takes that path only, before any prefix; other paths go by prefix', async (t, s) => {
  const { publicPort } = await routesTurnout(s);
  assert.equal((await get(publicPort, '/mcp')).get('x-backend'), 'rk-exact');
  assert.equal((await get(publicPort, '/mcp?x=1')).get('x-backend'), 'rk-exact'); // the path, not the query
  assert.equal((await get(publicPort, '/mcp/')).get('x-backend'), 'rk-root');
  assert.equal((await get(publicPort, '/mcpx')).get('x-backend'), 'rk-root');
});

itest('answer: a redirect with its Location expanded, a text body, a bare error status', async (t, s) => {
  const { publicPort } = await routesTurnout(s);
  const moved = await get(publicPort, '/old/page?a=1', { host: 'Example.TEST:8443' });
  assert.equal(moved.status, 301);
  assert.equal(moved.get('location'), 'https://example.test/old/page?a=1');
  assert.equal(moved.get('x-backend'), undefined); // turnout answered: no backend saw it

  const ping = await get(publicPort, '/ping');
  assert.equal(ping.status, 200);
  assert.equal(ping.get('content-type'), 'text/plain');
  assert.equal(ping.text(), 'pong from example.test\n');
  const head = await get(publicPort, '/ping', { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(head.get('content-length'), String('pong from example.test\n'.length));
  assert.equal(head.text(), '');

  const gone = await get(publicPort, '/gone/x');
  assert.equal(gone.status, 410);
  assert.deepEqual(JSON.parse(gone.text()), { error: 'Gone' });
  // A POST with a body gets the same answer; its body is not forwarded anywhere.
  const posted = await httpRequest(publicPort, { method: 'POST', path: '/gone', headers: { Host: 'h' }, body: 'x'.repeat(5000) });
  assert.equal(posted.status, 410);
});

itest('routes limited to a listener: each listener has its own routes for the same paths', async (t, s) => {
  const { publicPort, internalPort } = await routesTurnout(s);
  assert.equal((await get(publicPort, '/x')).get('x-backend'), 'rk-root');
  assert.equal((await get(internalPort, '/x')).get('x-backend'), 'rk-internal');
  // The public listener's exact path and fixed answers do not apply on the internal one.
  assert.equal((await get(internalPort, '/mcp')).get('x-backend'), 'rk-internal');
  assert.equal((await get(internalPort, '/gone')).get('x-backend'), 'rk-internal');
});

itest('a backup pool takes new sessions while the primary has no available backend; sessions stay put', async (t, s) => {
  const [primary, spare] = await Promise.all([s.sdkServer({ name: 'rk-primary' }), s.sdkServer({ name: 'rk-spare' })]);
  const tn = await s.turnout({
    upstreams: [{
      name: 'mcp',
      pools: [
        { name: 'main', weight: 100, backends: [primary.addr] },
        { name: 'main-backup', weight: 0, backup: true, backends: [spare.addr] },
      ],
    }],
  });
  await waitAdmin(tn);
  assert.equal(poolIn(await status(tn), 'main-backup').backup, true);
  assert.equal(poolIn(await status(tn), 'main').backup, false);
  for (let i = 0; i < 5; i++) assert.equal((await initialize(tn.port)).backend, 'rk-primary');

  // The primary's only backend drained: no primary can take a new session, the backup does.
  await adminOk(tn, 'POST', `/v1/upstreams/mcp/pools/main/backends/${primary.addr}/drain`, { timeout: '1h' });
  const onSpare = await initialize(tn.port);
  assert.equal(onSpare.status, 200);
  assert.equal(onSpare.backend, 'rk-spare');

  // Back in service: new sessions return to the primary; the backup's session stays on it.
  await adminOk(tn, 'POST', `/v1/upstreams/mcp/pools/main/backends/${primary.addr}/undrain`);
  for (let i = 0; i < 5; i++) assert.equal((await initialize(tn.port)).backend, 'rk-primary');
  const again = await sessionRequest(tn.port, onSpare.sid);
  assert.equal(again.status, 200);
  assert.equal(again.backend, 'rk-spare');
});
