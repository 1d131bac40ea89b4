// nginx compatibility: `turnout -c nginx.conf` runs an nginx configuration through the
// translation (and refuses one with untranslated directives), `turnout import nginx` writes
// TOML turnout loads, and the operator habits: pid_file with `turnout -s reload|reopen|quit|stop`,
// SIGQUIT drains like SIGTERM, SIGUSR1 reopens the access log after logrotate renamed it,
// access_log_format = "combined" (nginx's) and "json".

import assert from 'node:assert/strict';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { before } from 'node:test';
import { ctl } from './support/control_helpers.mjs';
import {
  buildConfig, fileScope, httpRequest, itest, onRequestHead, run, tempDir, TURNOUT_BIN, waitUntil, writeConfig,
} from './support/harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const corpus = path.resolve(here, '..', 'nginx');
const shared = fileScope();
let mock;

before(async () => {
  mock = await shared.mock({ name: 'nginx-mock' });
});

const nginxConf = (backend, extra = '') => `
worker_processes 2;
events { worker_connections 64; }
http {
    upstream mcp { server ${backend}; keepalive 16; }
    server {
        listen 127.0.0.1:0;
        location / {
            proxy_pass http://mcp;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
            ${extra}
        }
    }
}
`;

itest('turnout -c nginx.conf serves traffic to the backend the nginx configuration names', async (t, s) => {
  const tn = await s.turnout({ configText: nginxConf(mock.addr), configName: 'nginx.conf' });
  const res = await httpRequest(tn.port, { path: '/health' });
  assert.equal(res.status, 200);
  assert.equal(res.get('x-backend'), 'nginx-mock');
  // nginx's default client_max_body_size (1m) came along: a bigger body answers 413
  const big = await httpRequest(tn.port, { method: 'POST', path: '/mcp', body: 'x'.repeat(1024 * 1024 + 1) });
  assert.equal(big.status, 413);
});

itest('turnout -c nginx.conf: -s reload translates the edited file again; a bad edit keeps the running one', async (t, s) => {
  const other = await s.mock({ name: 'nginx-mock-2' });
  const withPid = (backend) => nginxConf(backend).replace('worker_processes 2;', 'worker_processes 2;\npid nginx.pid;');
  const tn = await s.turnout({ configText: withPid(mock.addr), configName: 'nginx.conf' });
  assert.equal((await httpRequest(tn.port, { path: '/health' })).get('x-backend'), 'nginx-mock');
  await waitUntil(() => existsSync(path.join(tn.dir, 'nginx.pid')), 5000, 'the pid file');
  writeFileSync(tn.configPath, withPid(other.addr));
  const r = await run(TURNOUT_BIN, ['-s', 'reload', '-c', tn.configPath]);
  assert.equal(r.code, 0, r.stderr);
  await tn.child.waitForMatches(/reload done/);
  assert.equal((await httpRequest(tn.port, { path: '/health' })).get('x-backend'), 'nginx-mock-2');
  writeFileSync(tn.configPath, withPid(mock.addr).replace('proxy_buffering off;', 'proxy_buffering off; rewrite ^ /x;'));
  assert.equal((await run(TURNOUT_BIN, ['-s', 'reload', '-c', tn.configPath])).code, 0);
  await tn.child.waitForMatches(/reload failed, keeping the running configuration: .*cannot translate/);
  assert.equal((await httpRequest(tn.port, { path: '/health' })).get('x-backend'), 'nginx-mock-2');
});

itest('turnout -c nginx.conf refuses to start on an untranslated directive', async (t, s) => {
  const file = writeConfig(s, nginxConf(mock.addr, 'rewrite ^/a$ /b break;'), 'nginx.conf');
  const r = await run(TURNOUT_BIN, ['-c', file]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /1 nginx directive\(s\) turnout cannot translate, first .*nginx\.conf:\d+: untranslated: rewrite/);
  assert.doesNotMatch(r.stderr, /listening/);
});

itest('turnout -t -c nginx.conf prints the report, then "configuration ok"', async (t, s) => {
  const file = writeConfig(s, nginxConf(mock.addr), 'nginx.conf');
  const r = await run(TURNOUT_BIN, ['-t', '-c', file]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /nginx\.conf:\d+: translated: proxy_buffering off — nothing needed/);
  assert.match(r.stderr, /nginx\.conf:\d+: translated: keepalive 16 — /);
  assert.match(r.stdout, /configuration ok/);
  const bad = writeConfig(s, 'events {\n', 'nginx.conf');
  const e = await run(TURNOUT_BIN, ['-t', '-c', bad]);
  assert.equal(e.code, 1);
  assert.match(e.stderr, /nginx\.conf:2: unexpected end of file, expecting "}"/);
});

itest('turnout import nginx: exit 0 and loadable TOML for the canary recipe; 1 with gaps as comments', async (t, s) => {
  const dir = tempDir(s);
  const out = path.join(dir, 'canary.toml');
  const ok = await run(TURNOUT_BIN, ['import', 'nginx', path.join(corpus, 'canary', 'nginx.conf'), '-o', out]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stderr, /split_clients .* — pools by weight \(mcp_canary 5%, mcp_stable 95%\)/);
  const check = await run(TURNOUT_BIN, ['-t', '-c', out]);
  assert.equal(check.code, 0, check.stderr);

  const gaps = path.join(dir, 'unsupported.toml');
  const bad = await run(TURNOUT_BIN, ['import', 'nginx', path.join(corpus, 'unsupported', 'nginx.conf'), '-o', gaps]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /nginx\.conf:10: untranslated: rewrite/);
  const text = readFileSync(gaps, 'utf8');
  assert.match(text, /^#   .*nginx\.conf:3: untranslated: gzip on — turnout does not compress answers$/m);
  const stdout = await run(TURNOUT_BIN, ['import', 'nginx', path.join(corpus, 'canary', 'nginx.conf')]);
  assert.match(stdout.stdout, /^\[\[upstream\]\]$/m);
});

// ---- pid_file and -s ------------------------------------------------------------------------

async function withPidFile(s, proxy = {}) {
  const tn = await s.turnout({ backends: [mock.addr], proxy: { pid_file: 'turnout.pid', ...proxy } });
  const pidFile = path.join(tn.dir, 'turnout.pid');
  await waitUntil(() => existsSync(pidFile), 5000, 'the pid file');
  assert.equal(Number(readFileSync(pidFile, 'utf8').trim()), tn.pid);
  return { tn, pidFile };
}

itest('-s reload and -s reopen signal the process named in pid_file', async (t, s) => {
  const { tn } = await withPidFile(s);
  const r = await run(TURNOUT_BIN, ['-s', 'reload', '-c', tn.configPath]);
  assert.equal(r.code, 0, r.stderr);
  await tn.child.waitForMatches(/reload done/);
  const o = await run(TURNOUT_BIN, ['-s', 'reopen', '-c', tn.configPath]);
  assert.equal(o.code, 0, o.stderr);
  await tn.child.waitForMatches(/SIGUSR1: reopened/);
  assert.equal((await httpRequest(tn.port, { path: '/health' })).status, 200);
});

for (const verb of ['quit', 'stop']) {
  itest(`-s ${verb}: the process drains, exits 0 and removes its pid file; then -s answers 1`, async (t, s) => {
    const { tn, pidFile } = await withPidFile(s);
    const r = await run(TURNOUT_BIN, ['-s', verb, '-c', tn.configPath]);
    assert.equal(r.code, 0, r.stderr);
    const info = await tn.child.waitExit(10000);
    assert.equal(info.code, 0);
    assert.match(tn.child.stderr, /draining/);
    assert.equal(existsSync(pidFile), false);
    const again = await run(TURNOUT_BIN, ['-s', verb, '-c', tn.configPath]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /^turnout: cannot open pid file .*turnout\.pid.*is turnout running\?/m);
  });
}

itest('upgrade: the successor takes the pid file over; the old process leaves it; -s quit reaches the successor', async (t, s) => {
  const { tn, pidFile } = await withPidFile(s);
  const exited = new Promise((resolve) => tn.child.proc.once('exit', (code) => resolve(code)));
  const up = await ctl(tn, ['upgrade']);
  assert.equal(up.code, 0, up.stderr);
  const newPid = Number(/^upgraded: pid (\d+) serves now/m.exec(up.stdout)[1]);
  const alive = (pid) => { try { process.kill(pid, 0); return true; } catch { return false; } };
  s.defer(async () => { if (alive(newPid)) process.kill(newPid, 'SIGKILL'); });
  await waitUntil(() => Number(readFileSync(pidFile, 'utf8').trim()) === newPid, 5000, 'the pid file to name the successor');
  assert.equal(await exited, 0);
  assert.equal(Number(readFileSync(pidFile, 'utf8').trim()), newPid, 'the old process left the file alone');
  assert.equal((await httpRequest(tn.port, { path: '/health' })).status, 200);
  const q = await run(TURNOUT_BIN, ['-s', 'quit', '-c', tn.configPath]);
  assert.equal(q.code, 0, q.stderr);
  assert.match(q.stderr, new RegExp(`sent quit to pid ${newPid}`));
  await waitUntil(() => !alive(newPid) && !existsSync(pidFile), 10000, 'the successor to exit and remove the pid file');
});

itest('-s with a stale pid file answers 1 with a clear line; without pid_file too', async (t, s) => {
  const file = writeConfig(s, buildConfig({ backends: [mock.addr], proxy: { pid_file: 'stale.pid' } }));
  writeFileSync(path.join(path.dirname(file), 'stale.pid'), '4194303\n');
  const r = await run(TURNOUT_BIN, ['-s', 'reload', '-c', file]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /no process with pid 4194303 .*turnout is not running/);
  const none = writeConfig(s, buildConfig({ backends: [mock.addr] }));
  const n = await run(TURNOUT_BIN, ['-s', 'reload', '-c', none]);
  assert.equal(n.code, 1);
  assert.match(n.stderr, /sets no pid_file/);
  const bad = await run(TURNOUT_BIN, ['-s', 'restart', '-c', none]);
  assert.equal(bad.code, 2);
});

itest('SIGQUIT drains like SIGTERM: the request in flight finishes, then exit 0', async (t, s) => {
  let arrived;
  const arrivedP = new Promise((resolve) => { arrived = resolve; });
  let release;
  const releasedP = new Promise((resolve) => { release = resolve; });
  const backend = await s.rawBackend(onRequestHead(async (req, socket) => {
    arrived();
    await releasedP;
    socket.write('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 8\r\n\r\nfinished');
  }));
  const tn = await s.turnout({ backends: [backend.addr], proxy: { drain_timeout: '10s' } });
  const pending = httpRequest(tn.port, { path: '/slow' });
  await arrivedP;
  tn.child.signal('SIGQUIT');
  await tn.child.waitForMatches(/draining/);
  release();
  const res = await pending;
  assert.equal(res.status, 200);
  assert.equal(res.text(), 'finished');
  const info = await tn.child.waitExit(10000);
  assert.equal(info.code, 0);
});

// ---- access log: reopen and formats ---------------------------------------------------------

itest('SIGUSR1 reopens the access log: after a rename (logrotate), new lines go to a new file', async (t, s) => {
  const tn = await s.turnout({ backends: [mock.addr], proxy: { access_log: 'access.log' } });
  const log = path.join(tn.dir, 'access.log');
  await httpRequest(tn.port, { path: '/before' });
  await waitUntil(() => existsSync(log) && readFileSync(log, 'utf8').includes('/before'), 5000, 'the first line');
  renameSync(log, `${log}.1`);
  tn.child.signal('SIGUSR1');
  await tn.child.waitForMatches(/SIGUSR1: reopened 1 access log file/);
  await httpRequest(tn.port, { path: '/after' });
  await waitUntil(() => existsSync(log) && readFileSync(log, 'utf8').includes('/after'), 5000, 'a line in the new file');
  assert.doesNotMatch(readFileSync(`${log}.1`, 'utf8'), /\/after/);
  assert.doesNotMatch(readFileSync(log, 'utf8'), /\/before/);
});

itest('access_log_format = "combined" writes nginx\'s combined lines', async (t, s) => {
  const tn = await s.turnout({ backends: [mock.addr], proxy: { access_log: 'access.log', access_log_format: 'combined' } });
  const log = path.join(tn.dir, 'access.log');
  await httpRequest(tn.port, { path: '/health?y=1', headers: { 'User-Agent': 'it/1', Referer: 'http://r/' } });
  const line = await waitUntil(() => existsSync(log) && readFileSync(log, 'utf8').split('\n').find((l) => l.includes('/health?y=1')),
    5000, 'the combined line');
  const m = line.match(/^(\S+) - (\S+) \[(\d{2}\/\w{3}\/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4})\] "([^"]*)" (\d{3}) (\d+) "([^"]*)" "([^"]*)"$/);
  assert.ok(m, line);
  assert.equal(m[1], '127.0.0.1');
  assert.equal(m[2], '-');
  assert.equal(m[4], 'GET /health?y=1 HTTP/1.1');
  assert.equal(m[5], '200');
  assert.equal(m[7], 'http://r/');
  assert.equal(m[8], 'it/1');
});

itest('access_log_format = "json": one object per line, the session hashed, never in clear', async (t, s) => {
  const tn = await s.turnout({ backends: [mock.addr], proxy: { access_log: 'access.log', access_log_format: 'json' } });
  const log = path.join(tn.dir, 'access.log');
  const sessionId = 'session-in-clear-0123456789';
  await httpRequest(tn.port, { path: '/health?j', headers: { 'Mcp-Session-Id': sessionId } });
  await httpRequest(tn.port, { path: '/health?k' });
  const lines = await waitUntil(() => {
    if (!existsSync(log)) return null;
    const all = readFileSync(log, 'utf8').trim().split('\n').filter(Boolean);
    return all.length >= 2 ? all : null;
  }, 5000, 'two json lines');
  assert.doesNotMatch(lines.join('\n'), new RegExp(sessionId));
  // lines are written as exchanges end, not necessarily in the order the client saw answers
  const parsed = lines.map((l) => JSON.parse(l));
  const j = parsed.find((o) => o.uri === '/health?j');
  const k = parsed.find((o) => o.uri === '/health?k');
  assert.ok(j && k, lines.join('\n'));
  assert.equal(j.uri, '/health?j');
  assert.equal(j.upstream, 'mcp');
  assert.equal(j.pool, 'blue');
  assert.equal(j.backend, mock.addr);
  assert.match(j.session, /^[0-9a-f]{16}$/);
  assert.equal(typeof j.request_time, 'number');
  assert.equal(typeof j.upstream_time, 'number');
  assert.ok(j.bytes > 0);
  assert.equal(k.session, null);
  assert.equal(k.status, 200);
});
