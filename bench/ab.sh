#!/usr/bin/env bash
# Two turnout binaries side by side, behind one mock backend, loaded in alternation: CPU time
# per request (user+system of the proxy, from /proc) and requests served, per round. A quick
# before/after check of a data-path change; bench/run.sh (BASELINE_BIN) is the full comparison.
#   bench/ab.sh OLD_TURNOUT NEW_TURNOUT [ROUNDS=4] [SECONDS=8]
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
ports=()
for bin in "$A" "$B"; do
  port=$(free_port)
  write_turnout_config "$TMP/$port.toml" "$port" "$backend_port"
  "$bin" -c "$TMP/$port.toml" >/dev/null 2>&1 &
  PIDS+=($!)
  ports+=("$port")
done
sleep 1

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
