// turnoutctl against a fake admin server: every command's method, path and body, the exit codes
// (0 done, 1 refused or failed, 2 usage), --json passthrough, the status table, drain --wait,
// and how the socket is found (-s, -c, TURNOUT_SOCKET).
//
// The fake server is Node's HTTP/1.1 server on a Unix socket in a temp folder; it records each
// request and answers from a per-test route table, so these tests do not depend on the real
// admin server (tests elsewhere drive turnoutctl against the real turnout).

import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { itest, run, tempDir } from './support/harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const CTL_BIN = process.env.TURNOUTCTL_BIN || path.resolve(here, '..', '..', 'build', 'turnoutctl');

const STATUS = {
  version: '0.1.0',
  uptime_s: 3723,
  draining: false,
  upstreams: [
    {
      name: 'mcp',
      affinity: 'table',
      sessions: 12,
      pools: [
        {
          name: 'blue',
          weight: 100,
          draining: false,
          version: '1.4.2',
          backends: [
            { address: '127.0.0.1:3001', healthy: true, draining: false, sessions: 6, connections: 3,
              streams: 1, in_flight: 0, requests_total: 100, errors_total: 0 },
            { address: '127.0.0.1:3002', healthy: false, draining: false, sessions: 6, connections: 12,
              streams: 0, in_flight: 2, requests_total: 123456, errors_total: 7 },
          ],
        },
        { name: 'green', weight: 0, draining: true, backends: [] },
      ],
    },
  ],
};

/** Status whose mcp/green pool holds `load` ({sessions, streams, connections}) on one backend. */
function statusWithGreen(load) {
  const s = structuredClone(STATUS);
  s.upstreams[0].pools[1].backends = [
    { address: '127.0.0.1:3011', healthy: true, draining: true, in_flight: 0, requests_total: 5,
      errors_total: 0, ...load },
  ];
  return s;
}

/**
 * A fake admin server. routes: {'METHOD /path': answer | (req) => answer}, where an answer is
 * {status = 200, body} (an object is sent as JSON, a string as is). Unknown routes answer 404.
 */
async function fakeAdmin(scope, routes = {}) {
  const dir = tempDir(scope);
  const socket = path.join(dir, 'admin.sock');
  const requests = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      const record = { method: req.method, url: req.url, body, headers: req.headers };
      requests.push(record);
      const route = routes[`${req.method} ${req.url}`];
      const answer = typeof route === 'function' ? route(record) : route ?? { status: 404, body: { error: 'no such route' } };
      const text = typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body ?? {});
      res.writeHead(answer.status ?? 200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    });
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(socket, resolve);
  });
  scope.defer(() => new Promise((resolve) => {
    server.closeAllConnections();
    server.close(resolve);
  }));
  return { socket, requests, dir };
}

/** Runs turnoutctl with TURNOUT_SOCKET cleared unless given. */
function ctl(args, { env = {}, timeout = 15000, cwd } = {}) {
  return run(CTL_BIN, args, { env: { TURNOUT_SOCKET: '', ...env }, timeout, cwd });
}

const ok = (body = { ok: true }) => ({ status: 200, body });

itest('status prints the upstream line, a pool table and an aligned backend table', async (t, s) => {
  const admin = await fakeAdmin(s, { 'GET /v1/status': ok(STATUS) });
  const r = await ctl(['-s', admin.socket, 'status']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, '');
  assert.deepEqual(admin.requests.map((q) => `${q.method} ${q.url}`), ['GET /v1/status']);

  const lines = r.stdout.split('\n');
  assert.match(r.stdout, /turnout 0\.1\.0\s+up 1h 2m 3s/);
  assert.ok(lines.some((l) => /^upstream mcp\s+affinity table\s+sessions 12$/.test(l)), r.stdout);
  assert.ok(lines.some((l) => /^\s+blue\s+100\s+no\s+1\.4\.2$/.test(l)), r.stdout);
  assert.ok(lines.some((l) => /^\s+green\s+0\s+yes\s+-$/.test(l)), r.stdout);

  const header = lines.find((l) => /BACKEND/.test(l));
  const row1 = lines.find((l) => l.includes('127.0.0.1:3001'));
  const row2 = lines.find((l) => l.includes('127.0.0.1:3002'));
  assert.ok(header && row1 && row2, r.stdout);
  assert.deepEqual(row1.trim().split(/\s+/), ['blue', '127.0.0.1:3001', 'yes', 'no', '6', '3', '1', '0', '100', '0']);
  assert.deepEqual(row2.trim().split(/\s+/), ['blue', '127.0.0.1:3002', 'no', 'no', '6', '12', '0', '2', '123456', '7']);
  // Aligned: every column starts (left-aligned) or ends (right-aligned, numbers) at the same place.
  assert.equal(row1.indexOf('127.0.0.1'), header.indexOf('BACKEND'));
  assert.equal(row1.length, row2.length);
  assert.equal(row1.length, header.length);
  const headerEnd = (word) => header.indexOf(word) + word.length;
  assert.equal(row2.indexOf('123456') + 6, headerEnd('REQUESTS'));
  assert.equal(row1.lastIndexOf(' 100 ') + 4, headerEnd('REQUESTS'));
  for (const col of ['HEALTHY', 'DRAINING', 'SESSIONS', 'CONNECTIONS', 'STREAMS', 'IN_FLIGHT', 'ERRORS'])
    assert.ok(header.includes(col), header);
});

itest('status tolerates missing optional fields and extra ones', async (t, s) => {
  const doc = { version: '0.2.0', uptime_s: 5, extra: { x: 1 },
    upstreams: [{ name: 'api', pools: [{ name: 'only', weight: 1, new_field: [1], backends: [{ address: 'h:1' }] }] }] };
  const admin = await fakeAdmin(s, { 'GET /v1/status': ok(doc) });
  const r = await ctl(['-s', admin.socket, 'status']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /upstream api\s+affinity -\s+sessions -/);
  assert.match(r.stdout, /only\s+h:1\s+-\s+-/);
});

itest('--json status prints the server document as is, before or after the command', async (t, s) => {
  const admin = await fakeAdmin(s, { 'GET /v1/status': ok(STATUS) });
  for (const args of [['--json', '-s', admin.socket, 'status'], ['-s', admin.socket, 'status', '--json']]) {
    const r = await ctl(args);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), STATUS);
  }
});

itest('every change command sends its method, path and body and confirms in one line', async (t, s) => {
  const upstreamAfter = { name: 'mcp', pools: [{ name: 'blue', weight: 0 }, { name: 'green', weight: 100 }] };
  const admin = await fakeAdmin(s, {
    'PUT /v1/upstreams/mcp/weights': ok(upstreamAfter),
    'POST /v1/upstreams/mcp/switch': ok(upstreamAfter),
    'POST /v1/upstreams/mcp/rollback': ok({ name: 'mcp', pools: [{ name: 'blue', weight: 100 }, { name: 'green', weight: 0 }] }),
    'POST /v1/upstreams/mcp/pools/green/drain': ok(),
    'POST /v1/upstreams/mcp/pools/green/undrain': ok(),
    'POST /v1/upstreams/mcp/pools/green/backends/127.0.0.1%3A3011/drain': ok(),
    'POST /v1/upstreams/mcp/pools/green/backends/127.0.0.1%3A3011/undrain': ok(),
    'POST /v1/upstreams/mcp/pools/green/backends/%5B%3A%3A1%5D%3A3012/drain': ok(),
    'PUT /v1/upstreams/mcp/pools/green/backends': ok(),
    'POST /v1/reload': ok(),
  });
  const cases = [
    [['weights', 'mcp', 'blue=95', 'green=5'], 'PUT', '/v1/upstreams/mcp/weights', { blue: 95, green: 5 },
      /^mcp: weights blue=95 green=5$/],
    [['weights', 'mcp', 'blue=0', 'green=100'], 'PUT', '/v1/upstreams/mcp/weights', { blue: 0, green: 100 },
      /^mcp: weights blue=0 green=100$/],
    [['weights', 'mcp', 'blue=95', 'green=5', '--force'], 'PUT', '/v1/upstreams/mcp/weights',
      { weights: { blue: 95, green: 5 }, force: true }, /^mcp: weights blue=95 green=5 \(forced\)$/],
    [['switch', 'mcp', 'green'], 'POST', '/v1/upstreams/mcp/switch', { pool: 'green', force: false },
      /^mcp: switched to green, weights blue=0 green=100$/],
    [['switch', 'mcp', 'green', '--force'], 'POST', '/v1/upstreams/mcp/switch', { pool: 'green', force: true },
      /^mcp: switched to green \(forced\)/],
    [['rollback', 'mcp'], 'POST', '/v1/upstreams/mcp/rollback', '',
      /^mcp: rolled back, weights blue=100 green=0$/],
    [['drain', 'mcp', 'green', '--timeout', '60s'], 'POST', '/v1/upstreams/mcp/pools/green/drain', { timeout: '60s' },
      /^mcp\/green: draining \(timeout 60s\)$/],
    [['drain', 'mcp', 'green', '--timeout=250ms'], 'POST', '/v1/upstreams/mcp/pools/green/drain', { timeout: '250ms' },
      /^mcp\/green: draining/],
    [['drain', 'mcp', 'green'], 'POST', '/v1/upstreams/mcp/pools/green/drain', {}, /^mcp\/green: draining$/],
    [['undrain', 'mcp', 'green'], 'POST', '/v1/upstreams/mcp/pools/green/undrain', '', /^mcp\/green: undrained$/],
    [['drain', 'mcp', 'green', '127.0.0.1:3011', '--timeout', '60s'], 'POST',
      '/v1/upstreams/mcp/pools/green/backends/127.0.0.1%3A3011/drain', { timeout: '60s' },
      /^mcp\/green backend 127\.0\.0\.1:3011: draining \(timeout 60s\)$/],
    [['drain', 'mcp', 'green', '[::1]:3012'], 'POST', '/v1/upstreams/mcp/pools/green/backends/%5B%3A%3A1%5D%3A3012/drain',
      {}, /^mcp\/green backend \[::1\]:3012: draining$/],
    [['undrain', 'mcp', 'green', '127.0.0.1:3011'], 'POST', '/v1/upstreams/mcp/pools/green/backends/127.0.0.1%3A3011/undrain',
      '', /^mcp\/green backend 127\.0\.0\.1:3011: undrained$/],
    [['backends', 'mcp', 'green', '127.0.0.1:3021', '127.0.0.1:3022'], 'PUT', '/v1/upstreams/mcp/pools/green/backends',
      ['127.0.0.1:3021', '127.0.0.1:3022'], /^mcp\/green: backends 127\.0\.0\.1:3021 127\.0\.0\.1:3022$/],
    [['reload'], 'POST', '/v1/reload', '', /^reloaded$/],
  ];
  for (const [args, method, url, body, confirmation] of cases) {
    admin.requests.length = 0;
    const r = await ctl(['-s', admin.socket, ...args]);
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    assert.equal(admin.requests.length, 1, args.join(' '));
    const [req] = admin.requests;
    assert.equal(req.method, method, args.join(' '));
    assert.equal(req.url, url, args.join(' '));
    if (body === '') {
      assert.equal(req.body, '', args.join(' '));
    } else {
      assert.deepEqual(JSON.parse(req.body), body, args.join(' '));
      assert.match(req.headers['content-type'], /application\/json/);
    }
    assert.equal(r.stdout.trim().split('\n').length, 1, r.stdout);
    assert.match(r.stdout.trim(), confirmation);
  }
});

itest('names that are not URL-safe are percent-encoded into the path', async (t, s) => {
  const admin = await fakeAdmin(s, { 'POST /v1/upstreams/my%20api/pools/a%2Fb/undrain': ok() });
  const r = await ctl(['-s', admin.socket, 'undrain', 'my api', 'a/b']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(admin.requests[0].url, '/v1/upstreams/my%20api/pools/a%2Fb/undrain');
});

itest('--json on a change prints the server answer as is', async (t, s) => {
  const answer = { name: 'mcp', pools: [{ name: 'blue', weight: 95 }, { name: 'green', weight: 5 }] };
  const admin = await fakeAdmin(s, { 'PUT /v1/upstreams/mcp/weights': ok(answer) });
  const r = await ctl(['-s', admin.socket, '--json', 'weights', 'mcp', 'blue=95', 'green=5']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), answer);
});

itest('a refusal (4xx) exits 1 with the server\'s error sentence as the one stderr line', async (t, s) => {
  const admin = await fakeAdmin(s, {
    'POST /v1/upstreams/mcp/switch': { status: 409, body: { error: 'pool green has no healthy backend (use --force)' } },
    'PUT /v1/upstreams/nope/weights': { status: 404, body: { error: 'unknown upstream "nope"' } },
    'POST /v1/reload': { status: 500, body: 'internal trouble' },
  });
  let r = await ctl(['-s', admin.socket, 'switch', 'mcp', 'green']);
  assert.equal(r.code, 1);
  assert.equal(r.stderr, 'pool green has no healthy backend (use --force)\n');
  assert.equal(r.stdout, '');

  r = await ctl(['-s', admin.socket, 'weights', 'nope', 'blue=1']);
  assert.equal(r.code, 1);
  assert.equal(r.stderr, 'unknown upstream "nope"\n');

  r = await ctl(['-s', admin.socket, '--json', 'reload']);
  assert.equal(r.code, 1);
  assert.equal(r.stderr, 'server answered 500 Internal Server Error: internal trouble\n');
});

itest('no server: exit 1 "cannot connect to SOCKET: reason" (missing socket, refused connection)', async (t, s) => {
  const dir = tempDir(s);
  const missing = path.join(dir, 'missing.sock');
  let r = await ctl(['-s', missing, 'status']);
  assert.equal(r.code, 1);
  assert.equal(r.stderr, `cannot connect to ${missing}: No such file or directory\n`);

  // A path that exists but where nobody listens: connect() is refused.
  const dead = path.join(dir, 'dead.sock');
  writeFileSync(dead, '');
  r = await ctl(['-s', dead, 'reload']);
  assert.equal(r.code, 1);
  assert.equal(r.stderr, `cannot connect to ${dead}: Connection refused\n`);
});

itest('usage errors exit 2 with a short usage and send nothing', async (t, s) => {
  const admin = await fakeAdmin(s, {});
  const cases = [
    [[], /no command given/],
    [['frobnicate'], /unknown command 'frobnicate'/],
    [['weights', 'mcp'], /weights: missing arguments/],
    [['weights', 'mcp', 'blue'], /expected POOL=N, not 'blue'/],
    [['weights', 'mcp', '=5'], /expected POOL=N/],
    [['weights', 'mcp', 'blue=x'], /weight of blue must be an integer >= 0, not 'x'/],
    [['weights', 'mcp', 'blue=1.5'], /integer >= 0/],
    [['weights', 'mcp', 'blue=-3'], /integer >= 0/],
    [['weights', 'mcp', 'blue='], /integer >= 0/],
    [['weights', 'mcp', 'blue=99999999999999999999999'], /integer >= 0/],
    [['weights', 'mcp', 'blue=1', 'blue=2'], /pool blue given twice/],
    [['switch', 'mcp'], /switch: missing arguments/],
    [['switch', 'mcp', 'green', 'extra'], /switch: too many arguments/],
    [['switch', 'mcp', 'green', '--wait'], /switch does not take --wait/],
    [['rollback'], /missing arguments/],
    [['drain', 'mcp', 'green', '--timeout', '10'], /bad --timeout '10'/],
    [['drain', 'mcp', 'green', '--timeout', 'soon'], /bad --timeout/],
    [['drain', 'mcp', 'green', '--timeout'], /--timeout needs a value/],
    [['undrain', 'mcp'], /missing arguments/],
    [['undrain', 'mcp', 'green', '127.0.0.1:1', 'extra'], /undrain: too many arguments/],
    [['drain', 'mcp', 'green', '127.0.0.1:1', 'extra'], /drain: too many arguments/],
    [['backends', 'mcp', 'green'], /backends: missing arguments/],
    [['reload', 'now'], /too many arguments/],
    [['upgrade', '--force'], /upgrade does not take --force/],
    [['status', '--bogus'], /unknown option --bogus/],
    [['status', '--json=yes'], /--json does not take a value/],
  ];
  for (const [args, message] of cases) {
    const r = await ctl(['-s', admin.socket, ...args]);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, message, args.join(' '));
    assert.match(r.stderr, /^usage: turnoutctl /m, args.join(' '));
    assert.ok(r.stderr.split('\n').length <= 6, `usage should be short:\n${r.stderr}`);
    assert.equal(r.stdout, '');
  }
  assert.deepEqual(admin.requests, []);

  const help = await ctl(['--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /drain UPSTREAM POOL \[ADDR\] \[--timeout DUR\] \[--wait\]/);
  assert.match(help.stdout, /weights UPSTREAM POOL=N \[POOL=N \.\.\.\] \[--force\]/);
  // Summaries line up after the longest synopsis.
  const starts = help.stdout.split('\n').filter((l) => /^  [a-z]/.test(l)).map((l) => {
    const m = /^( {2}\S.*?\S)( {2,})\S/.exec(l);
    return m ? m[1].length + m[2].length : -1;
  });
  assert.ok(starts.length >= 9, help.stdout);
  assert.equal(new Set(starts).size, 1, `one column for every summary:\n${help.stdout}`);
});

itest('the socket: -s wins over TURNOUT_SOCKET; TURNOUT_SOCKET alone works; -c reads admin_socket', async (t, s) => {
  const admin = await fakeAdmin(s, { 'POST /v1/reload': ok() });
  const dead = path.join(tempDir(s), 'dead.sock');

  let r = await ctl(['reload'], { env: { TURNOUT_SOCKET: admin.socket } });
  assert.equal(r.code, 0, r.stderr);

  r = await ctl(['-s', admin.socket, 'reload'], { env: { TURNOUT_SOCKET: dead } });
  assert.equal(r.code, 0, r.stderr);
  r = await ctl([`--socket=${admin.socket}`, 'reload'], { env: { TURNOUT_SOCKET: dead } });
  assert.equal(r.code, 0, r.stderr);
  r = await ctl(['--socket', dead, 'reload'], { env: { TURNOUT_SOCKET: admin.socket } });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^cannot connect to .*dead\.sock: /);
  assert.equal(admin.requests.length, 3);

  // -c: admin_socket relative to the config file's folder, whatever the working folder.
  const config = path.join(admin.dir, 'turnout.toml');
  writeFileSync(config, '[proxy]\nadmin_socket = "admin.sock"\n');
  r = await ctl(['-c', config, 'reload'], { cwd: '/', env: { TURNOUT_SOCKET: dead } });
  assert.equal(r.code, 0, r.stderr);
  writeFileSync(config, '[proxy]\nworkers = 1\n');
  r = await ctl(['-c', config, 'reload']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /has no proxy\.admin_socket/);

  if (!existsSync('/etc/turnout/turnout.toml')) {
    r = await ctl(['reload']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /no admin socket: use -s or TURNOUT_SOCKET/);
  }
});

itest('drain --wait prints progress when the counts change and exits 0 once the pool is empty', async (t, s) => {
  const loads = [
    { sessions: 3, streams: 1, connections: 2 },
    { sessions: 2, streams: 1, connections: 2 },
    { sessions: 2, streams: 1, connections: 2 }, // unchanged: no new line
    { sessions: 1, streams: 0, connections: 1 },
    { sessions: 0, streams: 0, connections: 0 },
  ];
  let polls = 0;
  const admin = await fakeAdmin(s, {
    'POST /v1/upstreams/mcp/pools/green/drain': ok(),
    'GET /v1/status': () => ok(statusWithGreen(loads[Math.min(polls++, loads.length - 1)])),
  });
  const started = Date.now();
  const r = await ctl(['-s', admin.socket, 'drain', 'mcp', 'green', '--timeout', '60s', '--wait']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.stdout.trim().split('\n'), [
    'mcp/green: draining (timeout 60s)',
    'mcp/green: 3 sessions, 1 streams, 2 connections left',
    'mcp/green: 2 sessions, 1 streams, 2 connections left',
    'mcp/green: 1 sessions, 0 streams, 1 connections left',
    'mcp/green: drained',
  ]);
  assert.equal(polls, 5, 'it stopped polling once the pool was empty');
  // Four pauses of ~500 ms between five polls (a lower bound: a slow machine only adds to it).
  const elapsed = Date.now() - started;
  assert.ok(elapsed >= 1800, `took ${elapsed} ms`);
  assert.deepEqual(admin.requests.map((q) => `${q.method} ${q.url}`),
    ['POST /v1/upstreams/mcp/pools/green/drain', ...Array(5).fill('GET /v1/status')]);
});

itest('drain --wait of one backend counts that backend only', async (t, s) => {
  let polls = 0;
  const status = (sessions) => {
    const st = statusWithGreen({ sessions: 5, streams: 2, connections: 3 }); // 127.0.0.1:3011 keeps its load
    st.upstreams[0].pools[1].backends.push({ address: '127.0.0.1:3012', healthy: true, draining: true,
      sessions, streams: 0, connections: 0, in_flight: 0, requests_total: 1, errors_total: 0 });
    return st;
  };
  const admin = await fakeAdmin(s, {
    'POST /v1/upstreams/mcp/pools/green/backends/127.0.0.1%3A3012/drain': ok(),
    'GET /v1/status': () => ok(status(polls++ === 0 ? 1 : 0)),
  });
  const r = await ctl(['-s', admin.socket, 'drain', 'mcp', 'green', '127.0.0.1:3012', '--timeout', '60s', '--wait']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.stdout.trim().split('\n'), [
    'mcp/green backend 127.0.0.1:3012: draining (timeout 60s)',
    'mcp/green backend 127.0.0.1:3012: 1 sessions, 0 streams, 0 connections left',
    'mcp/green backend 127.0.0.1:3012: drained',
  ]);

  // A backend that is not (or no longer) in the pool ends the wait with exit 1.
  const gone = await fakeAdmin(s, {
    'POST /v1/upstreams/mcp/pools/green/backends/127.0.0.1%3A3099/drain': ok(),
    'GET /v1/status': () => ok(status(0)),
  });
  const g = await ctl(['-s', gone.socket, 'drain', 'mcp', 'green', '127.0.0.1:3099', '--wait']);
  assert.equal(g.code, 1);
  assert.equal(g.stderr, 'mcp/green backend 127.0.0.1:3099: no longer in the status, stopped waiting\n');
});

itest('drain --wait gives up after the timeout plus a short margin: exit 1 with what is left', { timeout: 30000 }, async (t, s) => {
  let polls = 0;
  const admin = await fakeAdmin(s, {
    'POST /v1/upstreams/mcp/pools/green/drain': ok(),
    'GET /v1/status': () => {
      polls += 1;
      return ok(statusWithGreen({ sessions: 1, streams: 0, connections: 1 }));
    },
  });
  const started = Date.now();
  const r = await ctl(['-s', admin.socket, 'drain', 'mcp', 'green', '--timeout', '1s', '--wait'], { timeout: 25000 });
  const elapsed = Date.now() - started;
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.equal(r.stderr, 'mcp/green: drain timed out with 1 sessions, 0 streams, 1 connections left\n');
  assert.equal(r.stdout.trim().split('\n').length, 2, r.stdout); // the confirmation and one progress line
  assert.ok(elapsed >= 1000, `gave up after ${elapsed} ms, before the timeout`);
  // It gave up rather than wait on: polls every 500 ms over the 1 s timeout and a margin of a
  // few seconds (a slow machine polls fewer times, never more).
  assert.ok(polls >= 2 && polls <= 20, `${polls} status polls`);
});

itest('drain --wait stops with exit 1 when the pool is no longer in the status', async (t, s) => {
  const admin = await fakeAdmin(s, {
    'POST /v1/upstreams/mcp/pools/gone/drain': ok(),
    'GET /v1/status': ok(STATUS),
  });
  const r = await ctl(['-s', admin.socket, 'drain', 'mcp', 'gone', '--wait']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /mcp\/gone: no longer in the status/);
});

itest('upgrade: a 404 from the server (an older turnout) says "not supported"; a served route is used and reported', async (t, s) => {
  const without = await fakeAdmin(s, {});
  let r = await ctl(['-s', without.socket, 'upgrade']);
  assert.equal(r.code, 1);
  assert.equal(r.stderr, 'upgrade: not supported by this turnout\n');
  assert.deepEqual(without.requests.map((q) => `${q.method} ${q.url}`), ['POST /v1/upgrade']);

  const served = await fakeAdmin(s, {
    'POST /v1/upgrade': (req) => (JSON.parse(req.body).binary === '/nope'
      ? { status: 400, body: { error: 'cannot execute /nope' } }
      : ok({ pid: 4242 })),
  });
  r = await ctl(['-s', served.socket, 'upgrade', '--binary', 'bin/turnout'], { cwd: '/usr' });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'upgraded: pid 4242 serves now; the old process drains and exits\n');
  // A relative path is the operator's: sent as an absolute one.
  assert.deepEqual(JSON.parse(served.requests[0].body), { binary: '/usr/bin/turnout' });

  r = await ctl(['-s', served.socket, 'upgrade']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(served.requests[1].body), {});

  r = await ctl(['-s', served.socket, 'upgrade', '--binary=/nope']);
  assert.equal(r.code, 1);
  assert.equal(r.stderr, 'cannot execute /nope\n');
});
