// The TCP status address (status_address) is the admin API's own handler restricted to reads:
// /healthz, /readyz and /metrics answer exactly as on the admin socket; nothing there can
// change anything, and the rest of the admin API is not reachable through it.

import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { before } from 'node:test';
import { fileScope, httpRequest, itest } from './support/harness.mjs';
import { admin, status, statusGet, waitAdmin, weightsIn } from './support/control_helpers.mjs';

const shared = fileScope();
let mocks;

before(async () => {
  mocks = await Promise.all([0, 1].map((i) => shared.mock({ name: `sa-m${i}` })));
});

function blueGreen() {
  return {
    status: true,
    upstreams: [{
      name: 'mcp',
      pools: [
        { name: 'blue', weight: 100, backends: [mocks[0].addr] },
        { name: 'green', weight: 0, backends: [mocks[1].addr] },
      ],
    }],
  };
}

itest('POST /v1/reload on the status address is refused and reloads nothing', async (t, s) => {
  const tn = await s.turnout(blueGreen());
  await waitAdmin(tn);
  // A config on disk that a reload would pick up: green takes everything.
  const text = readFileSync(tn.configPath, 'utf8');
  writeFileSync(tn.configPath, text.replace('weight = 100', 'weight = 1').replace('weight = 0', 'weight = 99'));

  const r = await admin(null, 'POST', '/v1/reload', undefined, { port: tn.statusPort });
  assert.equal(r.status, 405, r.text);
  assert.equal(r.get('allow'), 'GET, HEAD');
  assert.deepEqual(weightsIn(await status(tn)), { blue: 100, green: 0 }, 'the file was not reloaded');
  assert.doesNotMatch(tn.logs(), /reloading/);

  // The admin socket does reload it: the file was worth reloading.
  assert.equal((await admin(tn, 'POST', '/v1/reload')).status, 200);
  assert.deepEqual(weightsIn(await status(tn)), { blue: 1, green: 99 });
});

itest('the status address serves only /healthz /readyz /metrics: GET /v1/status there is 404', async (t, s) => {
  const tn = await s.turnout(blueGreen());
  await waitAdmin(tn);
  const hidden = await statusGet(tn, '/v1/status');
  assert.equal(hidden.status, 404);
  assert.match(hidden.text(), /try \/healthz, \/readyz or \/metrics/);
  assert.equal((await admin(tn, 'GET', '/v1/status')).status, 200, 'the admin socket still serves it');

  // Same handler, same answers.
  for (const p of ['/healthz', '/readyz']) {
    const [a, b] = await Promise.all([statusGet(tn, p), admin(tn, 'GET', p)]);
    assert.equal(a.status, 200);
    assert.equal(a.status, b.status);
    assert.deepEqual(a.json(), b.json());
  }
  const head = await httpRequest(tn.statusPort, { method: 'HEAD', path: '/healthz' });
  assert.equal(head.status, 200);
  assert.equal(head.get('content-length'), String('{"status":"ok"}'.length));
  assert.equal(head.body.length, 0);
});
