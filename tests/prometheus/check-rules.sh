#!/usr/bin/env bash
# The `prometheus_rules` CTest: conf/prometheus/turnout-rules.yml passes `promtool check rules`
# and its unit cases (`promtool test rules`), and conf/grafana/turnout-dashboard.json is a
# dashboard with the panels the issue asks for, on metrics turnout exports. promtool comes from
# Debian's `prometheus` package, installed here when missing (its service is not left running).
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! command -v promtool >/dev/null; then
  # The package would start a Prometheus on :9090; tests only want its promtool.
  policy=/usr/sbin/policy-rc.d
  added_policy=false
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && added_policy=true
  fi
  scripts/apt-ensure.sh prometheus_rules prometheus
  $added_policy && rm -f "$policy"
fi

promtool check rules conf/prometheus/turnout-rules.yml
(cd tests/prometheus && promtool test rules turnout-rules.test.yml)

# The dashboard: valid JSON, the panels asked for, and every metric it names exists in turnout.
node - <<'JS'
const fs = require('fs');
const d = JSON.parse(fs.readFileSync('conf/grafana/turnout-dashboard.json', 'utf8'));
const titles = d.panels.map((p) => p.title);
const wanted = ['Request rate by version', 'Error rate by version', 'p99 by version', 'Weights', 'Sessions',
  'Streams', 'Rollout step'];
for (const w of wanted) if (!titles.includes(w)) throw new Error(`dashboard lacks panel "${w}" (has ${titles})`);
const exported = fs.readFileSync('proxy/metrics/proxy_metrics.cpp', 'utf8');
for (const p of d.panels) for (const t of p.targets ?? []) {
  for (const m of t.expr.match(/turnout_[a-z_]+/g) ?? []) {
    const family = m.replace(/_(bucket|sum|count)$/, '');
    if (!exported.includes(`"${family}"`)) throw new Error(`panel "${p.title}" uses ${m}, which turnout does not export`);
  }
}
console.log(`dashboard: ${titles.length} panels, every metric exported`);
JS
