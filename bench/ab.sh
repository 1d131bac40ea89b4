#!/usr/bin/env bash
# Two turnout binaries side by side, behind one mock backend, loaded in alternation: CPU time
# per request (user+system of the proxy, from /proc) and requests served, per round. A quick
# before/after check of a data-path change; bench/run.sh (BASELINE_BIN) is the full comparison.
#   bench/ab.sh OLD_TURNOUT NEW_TURNOUT [ROUNDS=4] [SECONDS=8]
# AB_ROLLOUT=1: both get a second pool (its own mock backend), and NEW runs a rollout of it
# (50 % of new sessions, analysis every second) for the whole run — the cost of a running
# rollout, with the same binary given twice: AB_ROLLOUT=1 bench/ab.sh build/turnout build/turnout
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
WRK=(wrk -t1 -c50 -s "$ROOT/bench/jsonrpc_post.lua")

backend_port=$(free_port)
"$ROOT/build/turnout-mock-backend" --listen "127.0.0.1:$backend_port" --name ab >/dev/null 2>&1 &
PIDS+=($!)
if [[ -n ${AB_ROLLOUT:-} ]]; then
  canary_port=$(free_port)
  "$ROOT/build/turnout-mock-backend" --listen "127.0.0.1:$canary_port" --name ab-canary >/dev/null 2>&1 &
  CANARY_PID=$!
fi
ports=()
for bin in "$A" "$B"; do
  port=$(free_port)
  write_turnout_config "$TMP/$port.toml" "$port" "$backend_port"
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

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
for round in $(seq 1 "$ROUNDS"); do
  for i in 0 1; do
    pid=${PIDS[i + 1]} port=${ports[i]} name=$([[ $i == 0 ]] && echo old || echo new)
    "${WRK[@]}" -d2s "http://127.0.0.1:$port/mcp" >/dev/null # warm-up
    before=$(cpu_ticks "$pid")
    served=$("${WRK[@]}" -d"${DUR}s" "http://127.0.0.1:$port/mcp" | awk '/requests in/ { print $1 }')
    after=$(cpu_ticks "$pid")
    awk -v n="$name" -v r="$round" -v s="$served" -v t=$((after - before)) -v hz="$hz" \
      'BEGIN { printf "round %d %s: %d requests, %.2f CPU us/request\n", r, n, s, t * 1e6 / hz / s }'
  done
done
