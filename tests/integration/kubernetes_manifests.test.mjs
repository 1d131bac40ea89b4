// deploy/kubernetes/ (SPEC.md "Fleets", issue 16), checked offline: every object validates
// against the Kubernetes OpenAPI schemas (npm kubernetes-models), the pieces fit each other
// (selectors, ports, the headless Service behind each dns: backend, the etcd the config
// names, the Secret the config reads), the Deployment keeps what the fleet needs (3 replicas,
// /readyz and /healthz on the status address, a preStop drain, a grace period above
// drain_timeout), and the ConfigMap's turnout.toml passes `turnout -t`.

import assert from 'node:assert/strict';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Service } from 'kubernetes-models/v1/Service';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { StatefulSet } from 'kubernetes-models/apps/v1/StatefulSet';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { Scope, TURNOUT_BIN, run, tempDir } from './support/harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const DIR = path.resolve(here, '../../deploy/kubernetes');
const MODELS = {
  'v1/Namespace': Namespace,
  'v1/ConfigMap': ConfigMap,
  'v1/Secret': Secret,
  'v1/Service': Service,
  'apps/v1/Deployment': Deployment,
  'apps/v1/StatefulSet': StatefulSet,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
};

function loadAll() {
  const objects = [];
  for (const file of readdirSync(DIR).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml')) {
    for (const doc of parseAllDocuments(readFileSync(path.join(DIR, file), 'utf8'))) {
      assert.deepEqual(doc.errors, [], `${file}: YAML errors`);
      objects.push({ file, object: doc.toJS() });
    }
  }
  return objects;
}

const objects = loadAll();
const find = (kind, name) => {
  const o = objects.find((x) => x.object.kind === kind && x.object.metadata.name === name);
  assert.ok(o, `no ${kind} ${name} in deploy/kubernetes`);
  return o.object;
};
const matches = (selector, labels) => Object.entries(selector).every(([k, v]) => labels?.[k] === v);
const durationS = (text) => {
  const m = /^(\d+)(ms|s|m|h)$/.exec(text);
  return Number(m[1]) * { ms: 0.001, s: 1, m: 60, h: 3600 }[m[2]];
};

test('every manifest validates against the Kubernetes schemas', () => {
  assert.ok(objects.length >= 9);
  for (const { file, object } of objects) {
    const Model = MODELS[`${object.apiVersion}/${object.kind}`];
    assert.ok(Model, `${file}: ${object.apiVersion} ${object.kind} is not one this test knows`);
    assert.doesNotThrow(() => new Model(object).validate(), `${file}: ${object.kind} ${object.metadata?.name}`);
    assert.equal(object.metadata.namespace ?? 'turnout', 'turnout', `${file}: everything lives in namespace turnout`);
  }
  // The schema check itself bites: a wrong type is refused.
  const broken = structuredClone(find('Deployment', 'turnout'));
  broken.spec.replicas = 'three';
  assert.throws(() => new Deployment(broken).validate(), /replicas/);
  // kustomization.yaml lists every file.
  const listed = readFileSync(path.join(DIR, 'kustomization.yaml'), 'utf8');
  for (const file of new Set(objects.map((o) => o.file))) assert.ok(listed.includes(`- ${file}`), `kustomization lists ${file}`);
});

const config = find('ConfigMap', 'turnout-config').data['turnout.toml'];

test('the Deployment: 3 replicas, probes on the status address, a preStop drain, grace above drain_timeout', () => {
  const d = find('Deployment', 'turnout');
  assert.equal(d.spec.replicas, 3);
  assert.ok(matches(d.spec.selector.matchLabels, d.spec.template.metadata.labels));
  const c = d.spec.template.spec.containers[0];
  const statusPort = Number(/status_address = "[^"]*:(\d+)"/.exec(config)[1]);
  const port = (name) => c.ports.find((p) => p.name === name)?.containerPort;
  assert.equal(port('status'), statusPort);
  assert.equal(port('mcp'), Number(/\[\[listen\]\]\naddress = "[^"]*:(\d+)"/.exec(config)[1]));
  assert.equal(c.readinessProbe.httpGet.path, '/readyz');
  assert.equal(c.livenessProbe.httpGet.path, '/healthz');
  assert.equal(c.readinessProbe.httpGet.port, 'status');
  assert.equal(c.livenessProbe.httpGet.port, 'status');
  const preStop = c.lifecycle.preStop.exec.command.join(' ');
  assert.match(preStop, /turnout -s quit -c \/etc\/turnout\/turnout\.toml/);
  assert.match(config, /pid_file = "\/run\/turnout\/turnout\.pid"/, '-s needs the pid file');
  const sleep = Number(/sleep (\d+)/.exec(preStop)?.[1] ?? 0);
  const drain = durationS(/drain_timeout = "([^"]+)"/.exec(config)[1]);
  assert.ok(d.spec.template.spec.terminationGracePeriodSeconds > drain + sleep,
    `grace ${d.spec.template.spec.terminationGracePeriodSeconds}s must exceed drain_timeout ${drain}s + preStop wait ${sleep}s`);
  const mounts = Object.fromEntries(c.volumeMounts.map((m) => [m.name, m]));
  assert.equal(mounts.config.mountPath, '/etc/turnout/turnout.toml');
  const keyFile = /affinity_key_file = "([^"]+)"/.exec(config)[1];
  assert.equal(path.dirname(keyFile), mounts['token-key'].mountPath);
  const volumes = Object.fromEntries(d.spec.template.spec.volumes.map((v) => [v.name, v]));
  assert.equal(volumes.config.configMap.name, 'turnout-config');
  const secret = find('Secret', volumes['token-key'].secret.secretName);
  assert.ok(secret.stringData[path.basename(keyFile)], 'the Secret holds the key file the config names');

  const svc = find('Service', 'turnout');
  assert.ok(matches(svc.spec.selector, d.spec.template.metadata.labels));
  const pdb = find('PodDisruptionBudget', 'turnout');
  assert.ok(matches(pdb.spec.selector.matchLabels, d.spec.template.metadata.labels));
  assert.ok(pdb.spec.minAvailable < d.spec.replicas);
});

test('the config: etcd store, token affinity, each pool a dns: name of a headless Service', () => {
  assert.match(config, /store = "etcd"/);
  assert.match(config, /affinity = "token"/);
  const endpoint = /etcd_endpoints = \["http:\/\/([^.]+)\.([^.]+)\.turnout\.svc\.cluster\.local:(\d+)"\]/.exec(config);
  assert.ok(endpoint, 'etcd_endpoints names the StatefulSet member');
  const etcd = find('StatefulSet', 'etcd');
  assert.equal(`${etcd.metadata.name}-0`, endpoint[1]);
  assert.equal(etcd.spec.serviceName, endpoint[2]);
  assert.ok(find('Service', endpoint[2]).spec.ports.some((p) => p.port === Number(endpoint[3])));

  const names = [...config.matchAll(/"dns:([^.]+)\.turnout\.svc\.cluster\.local:(\d+)"/g)];
  assert.equal(names.length, 2, 'one dns: backend per pool');
  for (const [, service, port] of names) {
    const svc = find('Service', service);
    assert.equal(svc.spec.clusterIP, 'None', `${service} is headless: its name answers with every pod`);
    assert.ok(svc.spec.ports.some((p) => p.port === Number(port)), `${service} serves port ${port}`);
  }
});

test('the ConfigMap turnout.toml passes turnout -t', async () => {
  const s = new Scope();
  try {
    const dir = tempDir(s);
    const key = path.join(dir, 'token.key');
    writeFileSync(key, 'a'.repeat(64) + '\n', { mode: 0o600 });
    // Paths of the pod's volumes, moved into a temporary folder.
    const local = config.replaceAll('/etc/turnout/keys/token.key', key)
      .replaceAll('/run/turnout/', `${dir}/`).replaceAll('/var/lib/turnout/', `${dir}/`);
    const file = path.join(dir, 'turnout.toml');
    writeFileSync(file, local);
    const r = await run(TURNOUT_BIN, ['-t', '-c', file]);
    assert.equal(r.code, 0, `turnout -t: ${r.stderr}${r.stdout}`);
    // And it is not a check that passes anything.
    writeFileSync(file, local.replace('dns:mcp-blue.turnout.svc.cluster.local:3000', 'dns:mcp-blue.turnout.svc.cluster.local'));
    const bad = await run(TURNOUT_BIN, ['-t', '-c', file]);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /turnout\.toml:\d+:\d+: .*expected dns:NAME:PORT/);
  } finally {
    await s.cleanup();
  }
});
