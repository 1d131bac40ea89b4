// The command line: --version, -t (configuration check) and -c with a bad config.

import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { buildConfig, itest, run, tempDir, TURNOUT_BIN, writeConfig } from './support/harness.mjs';

const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

itest('turnout --version prints "turnout 0.1.0"', async () => {
  const r = await run(TURNOUT_BIN, ['--version']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout + r.stderr, /^turnout 0\.1\.0$/m);
});

itest('turnout -t accepts a valid config: exit 0 and "configuration ok"', async (t, s) => {
  const file = writeConfig(s, buildConfig({ backends: ['127.0.0.1:3001', '127.0.0.1:3002'], status: true }));
  const r = await run(TURNOUT_BIN, ['-t', '-c', file]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout + r.stderr, /configuration ok/);
});

itest('turnout -t accepts the full SPEC.md example config', async (t, s) => {
  const text = `[proxy]
workers = 0
admin_socket = "run/turnout.sock"
status_address = "127.0.0.1:9901"
state_file = "run/turnout.state.json"
drain_timeout = "30s"
access_log = "stderr"
log_level = "info"
header_timeout = "10s"
idle_timeout = "60s"
connect_timeout = "2s"
response_timeout = "300s"
stream_idle_timeout = "0s"
max_header_bytes = 16384
max_uri_bytes = 8192
max_body_bytes = 8388608

[[listen]]
address = "127.0.0.1:8080"

[[upstream]]
name = "mcp"
affinity = "table"
session_idle_timeout = "30m"

  [[upstream.pool]]
  name = "blue"
  weight = 100
  version = "1.4.2"
  backends = ["127.0.0.1:3001", "127.0.0.1:3002"]

  [[upstream.pool]]
  name = "green"
  weight = 0
  backends = ["127.0.0.1:3011"]

  [upstream.health]
  kind = "mcp"
  path = "/mcp"
  interval = "2s"
  timeout = "1s"
  rise = 2
  fall = 3

[[route]]
path_prefix = "/"
upstream = "mcp"
`;
  const file = writeConfig(s, text);
  const r = await run(TURNOUT_BIN, ['-t', '-c', file]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout + r.stderr, /configuration ok/);
});

itest('turnout -t rejects an unknown key with PATH:LINE:COL and exit 1', async (t, s) => {
  const text = '[proxy]\nworkers = 1\nbogus_key = 1\n\n[[listen]]\naddress = "127.0.0.1:0"\n';
  const file = writeConfig(s, text);
  const r = await run(TURNOUT_BIN, ['-t', '-c', file]);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  const out = r.stdout + r.stderr;
  assert.match(out, new RegExp(`${escape(file)}:3:1: .*bogus_key`), out);
  assert.doesNotMatch(out, /configuration ok/);
});

itest('turnout -t reports an unknown key inside [[upstream.pool]] at its line and column', async (t, s) => {
  const text = [
    '[proxy]', // 1
    'workers = 1', // 2
    '', // 3
    '[[listen]]', // 4
    'address = "127.0.0.1:0"', // 5
    '', // 6
    '[[upstream]]', // 7
    'name = "mcp"', // 8
    '  [[upstream.pool]]', // 9
    '  name = "blue"', // 10
    '  wieght = 100', // 11
    '  backends = ["127.0.0.1:3001"]', // 12
    '', // 13
    '[[route]]', // 14
    'path_prefix = "/"', // 15
    'upstream = "mcp"', // 16
    '',
  ].join('\n');
  const file = writeConfig(s, text);
  const r = await run(TURNOUT_BIN, ['-t', '-c', file]);
  const out = r.stdout + r.stderr;
  assert.equal(r.code, 1, out);
  assert.match(out, new RegExp(`${escape(file)}:11:3: .*wieght`), out);
});

itest('turnout -t rejects a bad duration with PATH:LINE:COL', async (t, s) => {
  const text = '[proxy]\nworkers = 1\nheader_timeout = "ten seconds"\n\n[[listen]]\naddress = "127.0.0.1:0"\n';
  const file = writeConfig(s, text);
  const r = await run(TURNOUT_BIN, ['-t', '-c', file]);
  const out = r.stdout + r.stderr;
  assert.equal(r.code, 1, out);
  assert.match(out, new RegExp(`${escape(file)}:3:\\d+: `), out);
});

itest('turnout -t rejects a TOML syntax error with PATH:LINE:COL', async (t, s) => {
  const text = '[proxy]\nworkers = 1\n[[listen]\naddress = "127.0.0.1:0"\n';
  const file = writeConfig(s, text);
  const r = await run(TURNOUT_BIN, ['-t', '-c', file]);
  const out = r.stdout + r.stderr;
  assert.equal(r.code, 1, out);
  assert.match(out, new RegExp(`${escape(file)}:3:\\d+: `), out);
});

itest('turnout -t rejects a route to an unknown upstream', async (t, s) => {
  const text = buildConfig({ backends: ['127.0.0.1:3001'], routes: [{ path_prefix: '/', upstream: 'nope' }] });
  const file = writeConfig(s, text);
  const r = await run(TURNOUT_BIN, ['-t', '-c', file]);
  const out = r.stdout + r.stderr;
  assert.equal(r.code, 1, out);
  assert.match(out, new RegExp(`${escape(file)}(:\\d+:\\d+)?: `), out);
});

itest('turnout -t on a missing file exits 1 naming the file', async (t, s) => {
  const file = path.join(tempDir(s), 'missing.toml');
  const r = await run(TURNOUT_BIN, ['-t', '-c', file]);
  const out = r.stdout + r.stderr;
  assert.equal(r.code, 1, out);
  assert.match(out, new RegExp(`${escape(file)}`), out);
});

itest('turnout -c with an invalid config exits 1 with PATH:LINE:COL instead of running', async (t, s) => {
  const dir = tempDir(s);
  const file = path.join(dir, 'bad.toml');
  writeFileSync(file, '[proxy]\nworkers = "two"\n\n[[listen]]\naddress = "127.0.0.1:0"\n');
  const r = await run(TURNOUT_BIN, ['-c', file], { timeout: 10000 });
  const out = r.stdout + r.stderr;
  assert.equal(r.code, 1, out);
  assert.match(out, new RegExp(`${escape(file)}:2:\\d+: `), out);
});
