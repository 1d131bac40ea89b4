#!/usr/bin/env bash
# A fleet on one etcd, measured (a simulation, not a test): N real turnout processes (default
# 100) with [runtime] store = "etcd" against one single-member etcd (Debian's etcd-server) and
# one mock MCP backend, all on loopback. Each instance keeps its lease alive (every third of
# etcd_lease_ttl), watches the leader and state keys, and — once a rollout runs — publishes
# its figures every half interval; the leader reads everyone's and commits each interval's
# verdict, which every watcher receives. The script starts the fleet, starts a rollout that
# stays running (no traffic: every interval is inconclusive, so it holds), lets it settle,
# then measures for DURATION seconds: etcd's CPU and memory, the gRPC requests it handled
# per second (the JSON gateway's requests are counted there), its watchers and keys, and the
# fleet's own memory.
#
#   bench/fleet_sim.sh [N] [DURATION]      (build/ must hold turnout and turnout-mock-backend)
#
# Environment: BUILD_DIR (default build), LEASE_TTL (default 10s), INTERVAL (the rollout's
# interval, default 10s).
set -euo pipefail

BENCH_SCRIPT=fleet_sim.sh
ROOT=$(cd "$(dirname "$0")/.." && pwd)
N=${1:-100}
DURATION=${2:-60}
BUILD_DIR=${BUILD_DIR:-build}
LEASE_TTL=${LEASE_TTL:-10s}
INTERVAL=${INTERVAL:-10s}
TURNOUT=$ROOT/$BUILD_DIR/turnout
MOCK=$ROOT/$BUILD_DIR/turnout-mock-backend
ETCD=${ETCD:-/usr/bin/etcd}
ETCDCTL=${ETCDCTL:-/usr/bin/etcdctl}
for bin in "$TURNOUT" "$MOCK" "$ETCD" "$ETCDCTL"; do
  [[ -x $bin ]] || { echo "$BENCH_SCRIPT: $bin is missing (scripts/build.sh release; scripts/install-deps.sh)" >&2; exit 1; }
done
command -v curl >/dev/null || { echo "$BENCH_SCRIPT: curl is missing" >&2; exit 1; }
TMP=$(mktemp -d /tmp/turnout-fleet-sim.XXXXXX)
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

log() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

# Waits (bounded) until file contains text.
wait_for_text() {
  local file=$1 text=$2 what=$3 i
  for ((i = 0; i < 300; i++)); do
    grep -q -- "$text" "$file" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "$BENCH_SCRIPT: $what did not happen; see $file" >&2
  exit 1
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
ctl() { ETCDCTL_API=3 "$ETCDCTL" --endpoints "$ENDPOINT" "$@"; }
metric_sum() { curl -s "$ENDPOINT/metrics" | awk -v m="$1" '$1 ~ "^"m"({|$)" {s += $2} END {printf "%d\n", s}'; }

CLIENT_PORT=$(free_port)
PEER_PORT=$(free_port)
ENDPOINT=http://127.0.0.1:$CLIENT_PORT
"$ETCD" --name sim --data-dir "$TMP/etcd" --listen-client-urls "$ENDPOINT" --advertise-client-urls "$ENDPOINT" \
  --listen-peer-urls "http://127.0.0.1:$PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$PEER_PORT" \
  --initial-cluster "sim=http://127.0.0.1:$PEER_PORT" >"$TMP/etcd.log" 2>&1 &
ETCD_PID=$!
PIDS+=("$ETCD_PID")
wait_for_text "$TMP/etcd.log" "ready to serve client requests" "etcd's start"
log "etcd $("$ETCD" --version | head -1 | awk '{print $3}') on $ENDPOINT (pid $ETCD_PID)"

BACKEND_PORT=$(free_port)
"$MOCK" --listen "127.0.0.1:$BACKEND_PORT" --name sim >"$TMP/backend.log" 2>&1 &
PIDS+=("$!")

TURNOUT_PIDS=()
for ((i = 1; i <= N; i++)); do
  dir=$TMP/t$i
  mkdir -p "$dir"
  cat >"$dir/turnout.toml" <<EOF
[proxy]
workers = 1
admin_socket = "$dir/turnout.sock"
state_file = "$dir/turnout.state.json"
log_level = "info"

[runtime]
store = "etcd"
etcd_endpoints = ["$ENDPOINT"]
instance_name = "sim-$i"
etcd_lease_ttl = "$LEASE_TTL"

[[listen]]
address = "127.0.0.1:0"

[[upstream]]
name = "mcp"
  [[upstream.pool]]
  name = "blue"
  weight = 100
  backends = ["127.0.0.1:$BACKEND_PORT"]
  [[upstream.pool]]
  name = "green"
  weight = 0
  backends = ["127.0.0.1:$BACKEND_PORT"]
  [upstream.rollout]
  steps = ["10:1h", "100"]
  interval = "$INTERVAL"

[[route]]
path_prefix = "/"
upstream = "mcp"
EOF
  "$TURNOUT" -c "$dir/turnout.toml" >"$dir/log" 2>&1 &
  TURNOUT_PIDS+=("$!")
  PIDS+=("$!")
done
for ((i = 1; i <= N; i++)); do wait_for_text "$TMP/t$i/log" "admin socket at" "turnout sim-$i's start"; done
log "$N turnouts running"
for ((i = 0; i < 300; i++)); do
  leader=$(ctl get /turnout/leader --print-value-only 2>/dev/null || true)
  [[ -n $leader ]] && break
  sleep 0.1
done
[[ -n $leader ]] || { echo "$BENCH_SCRIPT: no leader elected" >&2; exit 1; }
log "leader: $leader"
curl -sf --unix-socket "$TMP/t1/turnout.sock" -X POST -H 'content-type: application/json' \
  -d '{"pool":"green"}' http://turnout/v1/upstreams/mcp/rollout >/dev/null
log "rollout running; settling for 15 s (every instance publishes its figures from now on)"
sleep 15

requests_before=$(metric_sum grpc_server_handled_total)
puts_before=$(metric_sum etcd_mvcc_put_total)
ticks_before=$(cpu_ticks "$ETCD_PID")
fleet_ticks_before=0
for pid in "${TURNOUT_PIDS[@]}"; do fleet_ticks_before=$((fleet_ticks_before + $(cpu_ticks "$pid"))); done
log "measuring for $DURATION s"
sleep "$DURATION"
ticks_after=$(cpu_ticks "$ETCD_PID")
requests_after=$(metric_sum grpc_server_handled_total)
puts_after=$(metric_sum etcd_mvcc_put_total)
fleet_ticks_after=0
fleet_rss=0
for pid in "${TURNOUT_PIDS[@]}"; do
  fleet_ticks_after=$((fleet_ticks_after + $(cpu_ticks "$pid")))
  fleet_rss=$((fleet_rss + $(rss_kib "$pid")))
done
hz=$(getconf CLK_TCK)
watchers=$(metric_sum etcd_debugging_mvcc_watcher_total)
leases=$(curl -s -X POST -d '{}' "$ENDPOINT/v3/lease/leases" | grep -o '"ID"' | wc -l)
keys=$(ctl get /turnout/ --prefix --keys-only | grep -c . || true)
verdicts=$(curl -sf --unix-socket "$TMP/t1/turnout.sock" http://turnout/v1/status | grep -o '"verdict":"[a-z]*"' | head -1)

echo "fleet_sim.sh: $N turnouts, one etcd, lease TTL $LEASE_TTL, rollout interval $INTERVAL, measured over $DURATION s"
awk -v t=$((ticks_after - ticks_before)) -v hz="$hz" -v d="$DURATION" 'BEGIN {printf "  etcd CPU:            %.1f %% of one core\n", 100 * t / hz / d}'
echo "  etcd memory (RSS):   $(($(rss_kib "$ETCD_PID") / 1024)) MiB"
awk -v r=$((requests_after - requests_before)) -v d="$DURATION" 'BEGIN {printf "  etcd requests:       %.1f /s (gRPC calls handled: gateway range, put, txn, lease grant/keep-alive)\n", r / d}'
awk -v r=$((puts_after - puts_before)) -v d="$DURATION" 'BEGIN {printf "  etcd writes (puts):  %.1f /s\n", r / d}'
echo "  etcd watchers:       $watchers; leases: $leases; keys under /turnout/: $keys"
awk -v t=$((fleet_ticks_after - fleet_ticks_before)) -v hz="$hz" -v d="$DURATION" -v n="$N" \
  'BEGIN {printf "  turnout CPU:         %.2f %% of one core per instance\n", 100 * t / hz / d / n}'
echo "  turnout memory:      $((fleet_rss / N / 1024)) MiB RSS per instance (1 worker)"
echo "  leader: $leader; last verdict seen through sim-1: ${verdicts:-none}"
