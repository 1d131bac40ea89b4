#!/usr/bin/env bash
# turnout vs nginx vs HAProxy in front of the same mock MCP backend: throughput, CPU per request,
# latency, memory per connection and per silent SSE stream, at one worker and at WORKERS.
# Interleaved rounds; medians; ratios. Talks only to 127.0.0.1. See bench/README.md.
#
#   bench/run.sh                                        # every scenario, about 8 minutes
#   SCENARIOS="latency streams" DURATION=2 ROUNDS=1 bench/run.sh
#   BASELINE_BIN=/tmp/turnout-old bench/run.sh          # also measure an older turnout
#
# Writes the summary (markdown) to stdout and to bench/results/latest.md, and every wrk output
# to bench/results/latest-wrk.log.
set -Eeuo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD

ALL_SCENARIOS="throughput busy latency streams tls-streams idle workers2"
SCENARIOS=${SCENARIOS:-$ALL_SCENARIOS}
DURATION=${DURATION:-10}             # seconds per measured wrk run
ROUNDS=${ROUNDS:-3}                  # interleaved rounds over the targets
CONNECTIONS=${CONNECTIONS:-64}       # wrk connections in the throughput and workers2 rounds
WARMUP=${WARMUP:-2}                  # seconds of warm-up before each measured run
MEM_CONNECTIONS=${MEM_CONNECTIONS:-1000}  # busy keep-alive connections for the RSS-under-load figure
MEM_DURATION=${MEM_DURATION:-5}      # seconds of that run (RSS read one second before its end)
LATENCY_DURATION=${LATENCY_DURATION:-5}   # seconds per measured wrk -c1 run
STREAMS=${STREAMS:-2000}             # silent SSE streams held open (plain and TLS)
IDLE_CONNECTIONS=${IDLE_CONNECTIONS:-10000}  # idle keep-alive connections held open
OPEN_CONCURRENCY=${OPEN_CONCURRENCY:-64}     # connections being set up at once by the opener
WORKERS=${WORKERS:-2}                # workers (turnout, nginx) / threads (HAProxy) in "workers2"
WRK_THREADS=${WRK_THREADS:-1}        # wrk threads at one worker; "workers2" uses WORKERS threads
QUIET_WAIT=${QUIET_WAIT:-120}        # before each run, wait up to this many seconds for other load to stop
QUIET_BUSY=${QUIET_BUSY:-10}         # ... i.e. for the machine to be less busy than this (% of all cores)
BUILD_DIR=${BUILD_DIR:-build-bench}
NICE=${NICE:-0}                      # niceness for wrk, the backend and the proxies (< 0 needs root)
BASELINE_BIN=${BASELINE_BIN:-}       # an older turnout binary, measured as "turnout-base" in the same rounds
# IO_BACKEND: turnout's [proxy] io_backend (default epoll; auto = io_uring where it runs): bench/lib.sh

for v in DURATION ROUNDS CONNECTIONS WARMUP MEM_CONNECTIONS MEM_DURATION LATENCY_DURATION STREAMS \
  IDLE_CONNECTIONS OPEN_CONCURRENCY WORKERS WRK_THREADS QUIET_BUSY; do
  # shellcheck disable=SC2015
  [[ ${!v} =~ ^[0-9]+$ ]] && ((${!v} > 0)) || { echo "run.sh: $v must be a positive integer" >&2; exit 2; }
done
[[ $QUIET_WAIT =~ ^[0-9]+$ ]] || { echo "run.sh: QUIET_WAIT must be an integer" >&2; exit 2; }
[[ $NICE =~ ^-?[0-9]+$ ]] || { echo "run.sh: NICE must be an integer" >&2; exit 2; }
((MEM_DURATION >= 2)) || { echo "run.sh: MEM_DURATION must be at least 2" >&2; exit 2; }
declare -A SELECTED
for s in $SCENARIOS; do
  [[ " $ALL_SCENARIOS " == *" $s "* ]] || { echo "run.sh: unknown scenario '$s' (known: $ALL_SCENARIOS)" >&2; exit 2; }
  SELECTED[$s]=1
done
selected() { [[ -n ${SELECTED[$1]:-} ]]; }
RUN=(nice -n "$NICE")

COMMAND=""
[[ $SCENARIOS == "$ALL_SCENARIOS" ]] || COMMAND+="SCENARIOS=\"$SCENARIOS\" "
COMMAND+="DURATION=$DURATION ROUNDS=$ROUNDS CONNECTIONS=$CONNECTIONS WARMUP=$WARMUP"
selected busy && COMMAND+=" MEM_CONNECTIONS=$MEM_CONNECTIONS"
selected latency && COMMAND+=" LATENCY_DURATION=$LATENCY_DURATION"
{ selected streams || selected tls-streams; } && COMMAND+=" STREAMS=$STREAMS"
selected idle && COMMAND+=" IDLE_CONNECTIONS=$IDLE_CONNECTIONS"
selected workers2 && COMMAND+=" WORKERS=$WORKERS"
((NICE == 0)) || COMMAND+=" NICE=$NICE"
[[ -z ${IO_BACKEND:-} ]] || COMMAND+=" IO_BACKEND=$IO_BACKEND"
[[ -z $BASELINE_BIN ]] || COMMAND+=" BASELINE_BIN=$BASELINE_BIN"
COMMAND+=" bench/run.sh"
LUA=$ROOT/bench/jsonrpc_post.lua
BODY='{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hello from wrk"}}}'
# Mozilla intermediate (TLS 1.2), as turnout and bench/tls.sh use.
TLS_CIPHERS=ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305
RESULTS=$ROOT/bench/results
mkdir -p "$RESULTS"

trap 'echo "run.sh: line $LINENO: \"$BASH_COMMAND\" failed" >&2' ERR

#------------------------------------------------------------------------------
# Dependencies and build

printf '[bench] %s\n' "checking dependencies (scripts/install-deps.sh)" >&2
scripts/install-deps.sh
NGINX=/usr/sbin/nginx
HAPROXY=/usr/sbin/haproxy
WRK=$(command -v wrk)
NODE=$(command -v node)
OPENSSL=$(command -v openssl)
for b in "$NGINX" "$HAPROXY" "$WRK" "$NODE" "$OPENSSL"; do
  [[ -x $b ]] || { echo "run.sh: $b not found" >&2; exit 1; }
done

build_log=$(mktemp /tmp/turnout-bench-build.XXXXXX)
if [[ ! -f $BUILD_DIR/build.ninja ]]; then
  printf '[bench] configuring %s (Release)\n' "$BUILD_DIR" >&2
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release >"$build_log" 2>&1 ||
    { tail -30 "$build_log" >&2; echo "run.sh: cmake configure failed" >&2; exit 1; }
fi
printf '[bench] building turnout and turnout-mock-backend in %s\n' "$BUILD_DIR" >&2
cmake --build "$BUILD_DIR" -j"$(nproc)" --target turnout turnout-mock-backend >"$build_log" 2>&1 ||
  { tail -40 "$build_log" >&2; echo "run.sh: build failed (full log: $build_log)" >&2; exit 1; }
rm -f "$build_log"
TURNOUT=$ROOT/$BUILD_DIR/turnout
MOCK=$ROOT/$BUILD_DIR/turnout-mock-backend
if [[ -n $BASELINE_BIN ]]; then
  [[ -x $BASELINE_BIN ]] || { echo "run.sh: BASELINE_BIN=$BASELINE_BIN is not an executable" >&2; exit 2; }
  BASELINE_BIN=$(realpath "$BASELINE_BIN")
fi

# The most client connections any selected scenario opens at once (the proxies' configurations
# allow for them), and the descriptors that takes: busy connections and streams hold an upstream
# connection each; idle ones do not (theirs go back to a pool of at most OPEN_CONCURRENCY).
MAX_CLIENT_CONNS=$CONNECTIONS
need=$((2 * CONNECTIONS))
if selected busy; then
  ((MEM_CONNECTIONS > MAX_CLIENT_CONNS)) && MAX_CLIENT_CONNS=$MEM_CONNECTIONS
  ((2 * MEM_CONNECTIONS > need)) && need=$((2 * MEM_CONNECTIONS))
fi
if selected streams || selected tls-streams; then
  ((STREAMS > MAX_CLIENT_CONNS)) && MAX_CLIENT_CONNS=$STREAMS
  ((2 * STREAMS > need)) && need=$((2 * STREAMS))
fi
if selected idle; then
  ((IDLE_CONNECTIONS > MAX_CLIENT_CONNS)) && MAX_CLIENT_CONNS=$IDLE_CONNECTIONS
  ((IDLE_CONNECTIONS + OPEN_CONCURRENCY > need)) && need=$((IDLE_CONNECTIONS + OPEN_CONCURRENCY))
fi
need=$((need + 256))
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if (($(ulimit -n) < need)); then
  echo "run.sh: open-file limit $(ulimit -n) too low: the selected scenarios need $need" >&2
  exit 1
fi

#------------------------------------------------------------------------------
# Processes: every pid we start is recorded and stopped on exit (bench/lib.sh).

TMP=$(mktemp -d /tmp/turnout-bench.XXXXXX)
BENCH_SCRIPT=run.sh
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
# shellcheck source=bench/targets.sh
source "$ROOT/bench/targets.sh"
# shellcheck source=bench/measure.sh
source "$ROOT/bench/measure.sh"
# nginx's keep-alive cache as large as turnout's pool, so that at MEM_CONNECTIONS neither closes
# and reopens backend connections the other keeps (HAProxy's pool-max-conn is unlimited).
POOL_CAP=$(turnout_pool_cap)

PROXIES=(turnout nginx haproxy)
[[ -z $BASELINE_BIN ]] || PROXIES=(turnout turnout-base nginx haproxy)
TARGETS=("${PROXIES[@]}" backend)
declare -A LABEL=([turnout]=turnout [turnout-base]="turnout-base (BASELINE_BIN)" [nginx]=nginx [haproxy]=HAProxy [backend]="backend (direct)")

# One certificate for every proxy (the handshake and the TLS state depend on the key type).
CERT=$TMP/cert.pem
KEY=$TMP/key.pem
"$OPENSSL" req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$KEY" \
  -out "$CERT" -subj /CN=localhost -days 2 -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" 2>/dev/null

# The mock backend: one thread (WORKERS threads for the workers2 scenario, see there), silent
# GET /mcp streams. It is a target too ("backend (direct)": the ceiling, and the latency floor).
start_backend() { # THREADS -> sets BACKEND_PORT and the backend target
  BACKEND_PORT=$(free_port)
  "${RUN[@]}" "$MOCK" --listen "127.0.0.1:$BACKEND_PORT" --name bench --threads "$1" --silent-streams \
    >"$TMP/backend-$1.log" 2>&1 &
  PID[backend]=$!
  PIDS+=("${PID[backend]}")
  CPU_PIDS[backend]=${PID[backend]}
  RSS_PIDS[backend]=${PID[backend]}
  URL[backend]=http://127.0.0.1:$BACKEND_PORT
  FAILED[backend]=""
  wait_ready "${URL[backend]}" "${PID[backend]}" || {
    echo "run.sh: mock backend did not start:" >&2; cat "$TMP/backend-$1.log" >&2; exit 1; }
  log "mock backend on 127.0.0.1:$BACKEND_PORT ($1 thread(s); $(head -1 "$TMP/backend-$1.log"))"
}
stop_backend() { stop_target backend; }

WRK_LOG=$RESULTS/latest-wrk.log
: >"$WRK_LOG"

# shellcheck source=bench/scenarios.sh
source "$ROOT/bench/scenarios.sh"

start_backend 1
if selected throughput || selected busy || selected latency; then
  configure_targets 1 0
  start_targets
  # Idle RSS right after start (after the one echo call of the readiness probe).
  sleep 0.5
  for t in "${PROXIES[@]}"; do [[ -n ${FAILED[$t]} ]] || MEM_IDLE[$t]=$(target_rss_kib "$t"); done
  selected throughput && run_rounds tp "$WRK_THREADS" "$CONNECTIONS" "$DURATION" "${TARGETS[@]}"
  selected busy && busy_memory
  selected latency && run_rounds lat 1 1 "$LATENCY_DURATION" "${TARGETS[@]}"
  stop_targets
fi
selected streams && hold_scenario streams stream 0 "$STREAMS"
selected tls-streams && hold_scenario tls-streams stream 1 "$STREAMS"
selected idle && hold_scenario idle idle 0 "$IDLE_CONNECTIONS"
if selected workers2; then
  # The backend gets as many threads as the proxies have workers, so that it is not what limits.
  stop_backend
  start_backend "$WORKERS"
  configure_targets "$WORKERS" 0
  start_targets
  run_rounds w2 "$WORKERS" "$CONNECTIONS" "$DURATION" "${PROXIES[@]}"
  stop_targets
fi

# shellcheck source=bench/report.sh
source "$ROOT/bench/report.sh"
write_report >"$TMP/report.md"
cp "$TMP/report.md" "$RESULTS/latest.md"
cat "$TMP/report.md"
log "written to bench/results/latest.md (wrk outputs: bench/results/latest-wrk.log)"
