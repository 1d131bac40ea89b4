// The event loop (README "Architecture", net/io_backend.hpp): turnout runs on io_uring where
// the kernel lets it, and becomes turnout-epoll (exec: same pid, same arguments) where it
// cannot or where [proxy] io_backend = "epoll" says so. Status and /metrics say which one runs,
// and the process's own descriptors must agree: an io_uring ring, or an epoll instance.

import assert from 'node:assert/strict';
import { existsSync, readdirSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { before } from 'node:test';
import { TURNOUT_BIN, buildConfig, fileScope, httpRequest, itest, run, writeConfig } from './support/harness.mjs';
import { status, statusGet, waitAdmin } from './support/control_helpers.mjs';

const shared = fileScope();
let mock;
// A build with io_uring has turnout-epoll beside turnout; a build without (the sanitized one) not.
const epollProgram = path.join(path.dirname(TURNOUT_BIN ?? ''), 'turnout-epoll');
const builtOnUring = existsSync(epollProgram);

before(async () => {
  mock = await shared.mock({ name: 'io-m' });
});

/** The kinds of the process's anonymous descriptors: "[io_uring]", "[eventpoll]", ... */
function anonKinds(pid) {
  const kinds = new Set();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const target = readlinkSync(`/proc/${pid}/fd/${fd}`);
      if (target.startsWith('anon_inode:')) kinds.add(target.slice('anon_inode:'.length));
    } catch { /* closed meanwhile */ }
  }
  return kinds;
}

async function proxiesOne(tn) {
  const r = await httpRequest(tn.port, { method: 'POST', path: '/mcp', headers: { 'content-type': 'application/json' },
    body: '{"jsonrpc":"2.0","id":1,"method":"ping"}' });
  assert.equal(r.status, 200, r.text());
}

itest('io_backend = "auto": io_uring where the kernel allows it; status, /metrics and its descriptors agree', async (t, s) => {
  const tn = await s.turnout({ backends: [mock.addr], status: true, proxy: { io_backend: 'auto' } });
  await waitAdmin(tn);
  await proxiesOne(tn);
  const st = await status(tn);
  const kinds = anonKinds(tn.pid);
  assert.ok(['io_uring', 'epoll'].includes(st.io_backend), JSON.stringify(st.io_backend));
  if (st.io_backend === 'io_uring') {
    assert.ok(builtOnUring, 'only a build with io_uring runs on it');
    assert.ok(kinds.has('[io_uring]'), `an io_uring ring among ${[...kinds]}`);
    assert.ok(!kinds.has('[eventpoll]'), `no epoll instance among ${[...kinds]}`);
    assert.equal(st.io_backend_note, '');
    assert.match(readlinkSync(`/proc/${tn.pid}/exe`), /\/turnout$/);
  } else {
    assert.ok(kinds.has('[eventpoll]'), `an epoll instance among ${[...kinds]}`);
    assert.ok(!kinds.has('[io_uring]'), `no io_uring ring among ${[...kinds]}`);
    // On an io_uring build, epoll by default means io_uring could not run here: it says why.
    if (builtOnUring) assert.match(st.io_backend_note, /^io_uring unavailable: /);
  }
  const metrics = (await statusGet(tn, '/metrics')).text();
  assert.match(metrics, new RegExp(`^turnout_info\\{version="[^"]+",io_backend="${st.io_backend}"\\} 1$`, 'm'));
  assert.match(tn.logs(), new RegExp(`running with 2 worker\\(s\\) as pid ${tn.pid} on ${st.io_backend}`));
});

for (const [what, proxy] of [['unset (the default)', {}], ['"epoll"', { io_backend: 'epoll' }]]) {
itest(`io_backend ${what}: turnout becomes turnout-epoll (same pid), proxies, and says why`, async (t, s) => {
  const tn = await s.turnout({ backends: [mock.addr], proxy });
  await waitAdmin(tn);
  await proxiesOne(tn);
  const st = await status(tn);
  assert.equal(st.io_backend, 'epoll');
  const kinds = anonKinds(tn.pid);
  assert.ok(kinds.has('[eventpoll]') && !kinds.has('[io_uring]'), `descriptors: ${[...kinds]}`);
  if (builtOnUring) {
    assert.equal(readlinkSync(`/proc/${tn.pid}/exe`), epollProgram, 'the same process now runs turnout-epoll');
    assert.equal(st.io_backend_note, '[proxy] io_backend = "epoll"');
    assert.match(tn.logs(), /running on epoll \(turnout-epoll\): \[proxy\] io_backend = "epoll"/);
  } else {
    assert.equal(st.io_backend_note, '');
  }
});
}

itest('io_backend = "io_uring" is a requirement: met on an io_uring build, refused at start where it cannot be', async (t, s) => {
  const text = buildConfig({ backends: [mock.addr], proxy: { io_backend: 'io_uring' } });
  if (!builtOnUring) {
    const configPath = writeConfig(s, text);
    const r = await run(TURNOUT_BIN, ['-c', configPath]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /turnout: \[proxy\] io_backend = "io_uring", but this build of turnout has no io_uring/);
    return;
  }
  const tn = await s.turnout({ configText: text });
  await waitAdmin(tn);
  await proxiesOne(tn);
  assert.equal((await status(tn)).io_backend, 'io_uring');
  assert.ok(anonKinds(tn.pid).has('[io_uring]'));
});
