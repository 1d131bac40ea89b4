#!/usr/bin/env bash
# Two turnout binaries side by side, behind one mock backend, loaded in alternation: CPU time
# per request (user+system of the proxy, from /proc) and requests served, per round. A quick
# before/after check of a data-path change; bench/run.sh (BASELINE_BIN) is the full comparison.
#   bench/ab.sh OLD_TURNOUT NEW_TURNOUT [ROUNDS=4] [SECONDS=8]
# AB_ROLLOUT=1: both get a second pool (its own mock backend), and NEW runs a rollout of it
# (50 % of new sessions, analysis every second) for the whole run — the cost of a running
# rollout, with the same binary given twice: AB_ROLLOUT=1 bench/ab.sh build/turnout build/turnout
# AB_CONFIG_A / AB_CONFIG_B: a configuration file for that side instead of the generated one,
# with @PORT@ (its listener) and @BACKEND@ (the mock's address) filled in; AB_SCRIPT: the wrk
# script (default bench/jsonrpc_post.lua). With the same binary given twice, this measures what
# a configuration costs, e.g. routes on MCP method and tool (bench/README.md):
#   AB_CONFIG_A=bench/configs/path_route.toml AB_CONFIG_B=bench/configs/mcp_routes.toml \
#     AB_SCRIPT=bench/jsonrpc_post_2026.lua bench/ab.sh build/turnout build/turnout 6 8
# AB_CONNECTIONS: wrk's connections (default 50; 1 measures the latency a proxy adds, with
# each round's p50 printed).
# Talks only to 127.0.0.1; needs wrk and build/turnout-mock-backend (scripts/build.sh release).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BENCH_SCRIPT=ab.sh
TMP=$(mktemp -d /tmp/turnout-ab.XXXXXX)
source bench/lib.sh
A=${1:?usage: bench/ab.sh OLD_TURNOUT NEW_TURNOUT [ROUNDS] [SECONDS]}
B=${2:?usage: bench/ab.sh OLD_TURNOUT NEW_TURNOUT [ROUNDS] [SECONDS]}
ROUNDS=${3:-4}
DUR=${4:-8}
WRK=(wrk -t1 -c"${AB_CONNECTIONS:-50}" --latency -s "$(realpath "${AB_SCRIPT:-$ROOT/bench/jsonrpc_post.lua}")")
NAMES=(old new)
[[ -n ${AB_CONFIG_A:-}${AB_CONFIG_B:-} ]] && NAMES=(A B)

backend_port=$(free_port)
"$ROOT/build/turnout-mock-backend" --listen "127.0.0.1:$backend_port" --name ab >/dev/null 2>&1 &
PIDS+=($!)
if [[ -n ${AB_ROLLOUT:-} ]]; then
  canary_port=$(free_port)
  "$ROOT/build/turnout-mock-backend" --listen "127.0.0.1:$canary_port" --name ab-canary >/dev/null 2>&1 &
  CANARY_PID=$!
fi
ports=()
configs=("${AB_CONFIG_A:-}" "${AB_CONFIG_B:-}")
for side in 0 1; do
  bin=$([[ $side == 0 ]] && echo "$A" || echo "$B")
  port=$(free_port)
  if [[ -n ${configs[side]} ]]; then
    sed "s|@PORT@|$port|g; s|@BACKEND@|127.0.0.1:$backend_port|g" "${configs[side]}" >"$TMP/$port.toml"
  else
    write_turnout_config "$TMP/$port.toml" "$port" "$backend_port"
  fi
  if [[ -n ${AB_ROLLOUT:-} ]]; then
    sed -i "s|^\[proxy\]|[proxy]\nadmin_socket = \"$TMP/$port.sock\"|" "$TMP/$port.toml"
    sed -i "s|^\[\[route\]\]|  [[upstream.pool]]\n  name = \"canary\"\n  weight = 0\n  backends = [\"127.0.0.1:$canary_port\"]\n\n[[route]]|" "$TMP/$port.toml"
  fi
  "$bin" -c "$TMP/$port.toml" >/dev/null 2>&1 &
  PIDS+=($!)
  ports+=("$port")
done
sleep 1
if [[ -n ${AB_ROLLOUT:-} ]]; then
  PIDS+=("$CANARY_PID")
  curl -fsS --unix-socket "$TMP/${ports[1]}.sock" -X POST http://turnout/v1/upstreams/bench/rollout \
    -d '{"pool":"canary","steps":[{"weight":50,"hold":"1h"},{"weight":100}],"interval":"1s"}' >/dev/null
  echo "new: a rollout of pool canary runs (50 %, analysis every second)"
fi

SERVED=("" "") CPU=("" "") P50=("" "") MED_SERVED=() MED_CPU=() MED_P50=()
# wrk's latency percentile as microseconds ("50%  84.00us", "1.20ms").
p50_us() { awk '$1 == "50%" { v = $2; u = 1; if (v ~ /ms$/) u = 1000; else if (v ~ /[^m]s$/ && v !~ /us$/) u = 1e6;
  sub(/[a-z]+$/, "", v); printf "%.1f", v * u }' <<<"$1"; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
for round in $(seq 1 "$ROUNDS"); do
  for i in 0 1; do
    pid=${PIDS[i + 1]} port=${ports[i]} name=${NAMES[i]}
    "${WRK[@]}" -d2s "http://127.0.0.1:$port/mcp" >/dev/null # warm-up
    before=$(cpu_ticks "$pid")
    out=$("${WRK[@]}" -d"${DUR}s" "http://127.0.0.1:$port/mcp")
    served=$(awk '/requests in/ { print $1 }' <<<"$out")
    if grep -q 'Non-2xx' <<<"$out"; then
      echo "$BENCH_SCRIPT: $name answered errors: $(grep 'Non-2xx' <<<"$out")" >&2
      exit 1
    fi
    after=$(cpu_ticks "$pid")
    p50=$(p50_us "$out")
    awk -v n="$name" -v r="$round" -v s="$served" -v t=$((after - before)) -v hz="$hz" -v p="$p50" \
      'BEGIN { printf "round %d %s: %d requests, %.2f CPU us/request, p50 %s us\n", r, n, s, t * 1e6 / hz / s, p }'
    P50[i]+=" $p50"
    SERVED[i]+=" $served"
    CPU[i]+=" $(awk -v s="$served" -v t=$((after - before)) -v hz="$hz" 'BEGIN { printf "%.3f", t * 1e6 / hz / s }')"
  done
done
# Medians over the rounds, and B against A (throughput: higher is better; CPU: lower).
for i in 0 1; do
  MED_SERVED[i]=$(median <<<"${SERVED[i]}")
  MED_CPU[i]=$(median <<<"${CPU[i]}")
  MED_P50[i]=$(median <<<"${P50[i]}")
  printf 'median %s: %s requests per %ss, %s CPU us/request, p50 %s us\n' "${NAMES[i]}" "${MED_SERVED[i]}" "$DUR" "${MED_CPU[i]}" "${MED_P50[i]}"
done
awk -v a="${NAMES[0]}" -v b="${NAMES[1]}" -v sa="${MED_SERVED[0]}" -v sb="${MED_SERVED[1]}" \
  -v ca="${MED_CPU[0]}" -v cb="${MED_CPU[1]}" -v pa="${MED_P50[0]}" -v pb="${MED_P50[1]}" 'BEGIN {
    printf "%s against %s: throughput %+.1f %%, CPU per request %+.1f %%, p50 %+.1f %%\n", b, a, (sb / sa - 1) * 100, (cb / ca - 1) * 100, (pb / pa - 1) * 100 }'
