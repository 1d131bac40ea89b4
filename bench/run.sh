#!/usr/bin/env bash
# turnout vs nginx vs HAProxy: one worker each, in front of the same mock MCP backend, with wrk
# sending small JSON-RPC POSTs over keep-alive. Interleaved rounds; medians; ratios; RSS idle and
# with MEM_CONNECTIONS open connections. Talks only to 127.0.0.1. See bench/README.md.
#
#   bench/run.sh                          # DURATION=10 ROUNDS=3 CONNECTIONS=50 MEM_CONNECTIONS=1000
#   DURATION=30 ROUNDS=5 bench/run.sh
#   BASELINE_BIN=/tmp/turnout-old bench/run.sh   # also measure an older turnout, same rounds
#
# Writes the summary (markdown) to stdout and to bench/results/latest.md, and every wrk output
# to bench/results/latest-wrk.log.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD

DURATION=${DURATION:-10}             # seconds per measured wrk run
ROUNDS=${ROUNDS:-3}                  # interleaved rounds (turnout, nginx, haproxy, backend) x ROUNDS
CONNECTIONS=${CONNECTIONS:-50}       # wrk connections in the throughput rounds
WARMUP=${WARMUP:-2}                  # seconds of warm-up before each measured run
MEM_CONNECTIONS=${MEM_CONNECTIONS:-1000}  # open keep-alive connections for the RSS figure
MEM_DURATION=${MEM_DURATION:-5}      # seconds of the RSS run (RSS read one second before its end)
WRK_THREADS=${WRK_THREADS:-1}
QUIET_WAIT=${QUIET_WAIT:-120}         # before each run, wait up to this many seconds for other load to stop
QUIET_BUSY=${QUIET_BUSY:-10}         # ... i.e. for the machine to be less busy than this (% of all cores)
BUILD_DIR=${BUILD_DIR:-build-bench}
NICE=${NICE:-0}                      # niceness for wrk, the backend and the proxies (< 0 needs root)
BASELINE_BIN=${BASELINE_BIN:-}       # an older turnout binary, measured as "turnout-base" in the same rounds

for v in DURATION ROUNDS CONNECTIONS WARMUP MEM_CONNECTIONS MEM_DURATION WRK_THREADS QUIET_BUSY; do
  # shellcheck disable=SC2015
  [[ ${!v} =~ ^[0-9]+$ ]] && ((${!v} > 0)) || { echo "run.sh: $v must be a positive integer" >&2; exit 2; }
done
[[ $QUIET_WAIT =~ ^[0-9]+$ ]] || { echo "run.sh: QUIET_WAIT must be an integer" >&2; exit 2; }
[[ $NICE =~ ^-?[0-9]+$ ]] || { echo "run.sh: NICE must be an integer" >&2; exit 2; }
RUN=(nice -n "$NICE")
((MEM_DURATION >= 2)) || { echo "run.sh: MEM_DURATION must be at least 2" >&2; exit 2; }

COMMAND="DURATION=$DURATION ROUNDS=$ROUNDS CONNECTIONS=$CONNECTIONS WARMUP=$WARMUP MEM_CONNECTIONS=$MEM_CONNECTIONS"
((NICE == 0)) || COMMAND+=" NICE=$NICE"
[[ -z $BASELINE_BIN ]] || COMMAND+=" BASELINE_BIN=$BASELINE_BIN"
COMMAND+=" bench/run.sh"
LUA=$ROOT/bench/jsonrpc_post.lua
BODY='{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hello from wrk"}}}'
RESULTS=$ROOT/bench/results
mkdir -p "$RESULTS"

log() { printf '[bench] %s\n' "$*" >&2; }
trap 'echo "run.sh: line $LINENO: \"$BASH_COMMAND\" failed" >&2' ERR

#------------------------------------------------------------------------------
# Dependencies and build

log "checking dependencies (scripts/install-deps.sh)"
scripts/install-deps.sh
NGINX=/usr/sbin/nginx
HAPROXY=/usr/sbin/haproxy
WRK=$(command -v wrk)
for b in "$NGINX" "$HAPROXY" "$WRK"; do
  [[ -x $b ]] || { echo "run.sh: $b not found" >&2; exit 1; }
done

build_log=$(mktemp /tmp/turnout-bench-build.XXXXXX)
if [[ ! -f $BUILD_DIR/build.ninja ]]; then
  log "configuring $BUILD_DIR (Release)"
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release >"$build_log" 2>&1 ||
    { tail -30 "$build_log" >&2; echo "run.sh: cmake configure failed" >&2; exit 1; }
fi
log "building turnout and turnout-mock-backend in $BUILD_DIR"
cmake --build "$BUILD_DIR" -j"$(nproc)" --target turnout turnout-mock-backend >"$build_log" 2>&1 ||
  { tail -40 "$build_log" >&2; echo "run.sh: build failed (full log: $build_log)" >&2; exit 1; }
rm -f "$build_log"
TURNOUT=$ROOT/$BUILD_DIR/turnout
MOCK=$ROOT/$BUILD_DIR/turnout-mock-backend
if [[ -n $BASELINE_BIN ]]; then
  [[ -x $BASELINE_BIN ]] || { echo "run.sh: BASELINE_BIN=$BASELINE_BIN is not an executable" >&2; exit 2; }
  BASELINE_BIN=$(realpath "$BASELINE_BIN")
fi

# wrk, the proxies and the backend all need descriptors for MEM_CONNECTIONS (twice for proxies).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if (($(ulimit -n) < 2 * MEM_CONNECTIONS + 256)); then
  echo "run.sh: open-file limit $(ulimit -n) too low for MEM_CONNECTIONS=$MEM_CONNECTIONS" >&2
  exit 1
fi

#------------------------------------------------------------------------------
# Process bookkeeping: every pid we start is recorded and stopped on exit.

TMP=$(mktemp -d /tmp/turnout-bench.XXXXXX)
BENCH_SCRIPT=run.sh
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
# nginx's keep-alive cache as large as turnout's pool, so that at MEM_CONNECTIONS neither closes
# and reopens backend connections the other keeps (HAProxy's pool-max-conn is unlimited).
POOL_CAP=$(turnout_pool_cap)

# An echo tools/call through URL must answer 200 with the echoed text.
probe() {
  local out
  out=$(curl -s --max-time 2 -o - -w '\n%{http_code}' -X POST \
    -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
    --data "$BODY" "$1/mcp" 2>/dev/null) || return 1
  [[ ${out##*$'\n'} == 200 && $out == *'"text":"hello from wrk"'* ]]
}

wait_ready() { # NAME URL PID
  local i
  for ((i = 0; i < 100; i++)); do
    kill -0 "$3" 2>/dev/null || return 1
    probe "$2" && return 0
    sleep 0.1
  done
  return 1
}

# Stop tracking a pid we have reaped (so that cleanup never signals a reused pid).
forget_pid() {
  local -a keep=() p
  for p in "${PIDS[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
  PIDS=("${keep[@]}")
}

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
hwm_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
# shellcheck disable=SC2012
fd_count() { local n; n=$(ls "/proc/$1/fd" 2>/dev/null | wc -l) || true; echo "${n:-0}"; }

# Other load on the machine. /proc/stat: "total busy" jiffies of all cores.
cpu_sample() { awk '/^cpu / { t = 0; for (i = 2; i <= 9; i++) t += $i; print t, t - $5 - $6; exit }' /proc/stat; }
# utime+stime (jiffies) of the processes we run: backend, proxies (nginx: master and worker).
our_proc_ticks() {
  local pid sum=0 v
  for pid in "${OURS[@]}"; do
    v=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$pid/stat" 2>/dev/null) || v=0
    sum=$((sum + ${v:-0}))
  done
  echo "$sum"
}
# utime+stime (jiffies) of this shell's reaped children (wrk, via timeout), from `times`.
child_ticks() {
  times >"$TMP/times"
  awk -v hz="$(getconf CLK_TCK)" 'NR == 2 { s = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); s += a[1] * 60 + a[2] } printf "%.0f\n", s * hz }' "$TMP/times"
}
# Busy % (of all cores) over one second while our processes are idle.
busy_now() {
  local t0 b0 t1 b1
  read -r t0 b0 < <(cpu_sample); sleep 1; read -r t1 b1 < <(cpu_sample)
  awk -v t="$((t1 - t0))" -v b="$((b1 - b0))" 'BEGIN { printf "%.0f\n", (t > 0 ? 100 * b / t : 0) }'
}
wait_quiet() {
  local i busy=0
  ((QUIET_WAIT > 0)) || return 0
  for ((i = 0; i < QUIET_WAIT; i++)); do
    busy=$(busy_now)
    ((busy < QUIET_BUSY)) && return 0
    ((i == 0)) && log "machine busy (${busy}% of all cores used by other processes); waiting up to ${QUIET_WAIT}s"
  done
  log "still busy (${busy}%) after ${QUIET_WAIT}s; measuring anyway (see the 'other load' column)"
}
OURS=()
# utime+stime (jiffies) of one target's serving process (nginx: its worker).
proc_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/${RSSPID[$1]}/stat" 2>/dev/null || echo 0; }
measure_start() { read -r M_T0 M_B0 < <(cpu_sample); M_O0=$(($(our_proc_ticks) + $(child_ticks))); }
# Share of all cores used by processes other than ours during the run, in %.
measure_end() {
  local t1 b1 o1
  read -r t1 b1 < <(cpu_sample)
  o1=$(($(our_proc_ticks) + $(child_ticks)))
  awk -v t="$((t1 - M_T0))" -v b="$((b1 - M_B0))" -v o="$((o1 - M_O0))" \
    'BEGIN { f = t > 0 ? 100 * (b - o) / t : 0; if (f < 0) f = 0; printf "%.0f\n", f }'
}

declare -A URL PID RSSPID FAILED RPS P50 P99 CPU ERRS FOREIGN MEM_IDLE MEM_LOAD MEM_FDS MEM_RPS MEM_ERRS MEM_HWM
declare -A ROUND_RPS ROUND_P99 RUNS_FAILED FAIL_NOTES MEM_FAILED
TARGETS=(turnout nginx haproxy backend)
PROXIES=(turnout nginx haproxy)
if [[ -n $BASELINE_BIN ]]; then
  TARGETS=(turnout turnout-base nginx haproxy backend)
  PROXIES=(turnout turnout-base nginx haproxy)
fi
declare -A LABEL=([turnout]=turnout [turnout-base]="turnout-base (BASELINE_BIN)" [nginx]=nginx [haproxy]=HAProxy [backend]="backend (direct)")

#------------------------------------------------------------------------------
# The backend

BACKEND_PORT=$(free_port)
"${RUN[@]}" "$MOCK" --listen "127.0.0.1:$BACKEND_PORT" --name bench >"$TMP/backend.log" 2>&1 &
PID[backend]=$!
PIDS+=("${PID[backend]}")
OURS+=("${PID[backend]}")
RSSPID[backend]=${PID[backend]}
URL[backend]=http://127.0.0.1:$BACKEND_PORT
wait_ready backend "${URL[backend]}" "${PID[backend]}" || {
  echo "run.sh: mock backend did not start:" >&2; cat "$TMP/backend.log" >&2; exit 1; }
log "mock backend on 127.0.0.1:$BACKEND_PORT ($(head -1 "$TMP/backend.log"))"

#------------------------------------------------------------------------------
# The proxies: one worker each, upstream keep-alive, no access log.

TURNOUT_PORT=$(free_port)
write_turnout_config "$TMP/turnout.toml" "$TURNOUT_PORT" "$BACKEND_PORT"
if [[ -n $BASELINE_BIN ]]; then
  BASE_PORT=$(free_port)
  write_turnout_config "$TMP/turnout-base.toml" "$BASE_PORT" "$BACKEND_PORT"
fi

NGINX_PORT=$(free_port)
mkdir -p "$TMP/nginx"
nginx_user=""
((EUID == 0)) && nginx_user="user root;"
cat >"$TMP/nginx/nginx.conf" <<EOF
$nginx_user
worker_processes 1;
daemon off;
master_process on;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log warn;
worker_rlimit_nofile $((4 * MEM_CONNECTIONS + 1024));
events {
    worker_connections $((2 * MEM_CONNECTIONS + 512));
}
http {
    access_log off;
    client_body_temp_path $TMP/nginx/client_body;
    proxy_temp_path $TMP/nginx/proxy;
    fastcgi_temp_path $TMP/nginx/fastcgi;
    uwsgi_temp_path $TMP/nginx/uwsgi;
    scgi_temp_path $TMP/nginx/scgi;
    keepalive_timeout 60s;
    keepalive_requests 1000000;          # default 1000 would make wrk reconnect
    upstream backend {
        server 127.0.0.1:$BACKEND_PORT;
        keepalive $POOL_CAP;                 # turnout's idle-pool cap per backend and worker
        keepalive_requests 1000000;
        keepalive_timeout 60s;
    }
    server {
        listen 127.0.0.1:$NGINX_PORT;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            # The same work as turnout, which always forwards the client's Host and adds these.
            proxy_set_header Host \$http_host;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto \$scheme;
            proxy_set_header X-Forwarded-Host \$http_host;
        }
    }
}
EOF

HAPROXY_PORT=$(free_port)
cat >"$TMP/haproxy.cfg" <<EOF
global
    nbthread 1
    maxconn $((2 * MEM_CONNECTIONS + 512))
    # no "log" line: no logging

defaults
    mode http
    option http-keep-alive
    http-reuse always
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout http-request 10s
    timeout http-keep-alive 60s
    maxconn $((2 * MEM_CONNECTIONS + 512))

frontend bench
    bind 127.0.0.1:$HAPROXY_PORT
    # The same work as turnout, which always adds these.
    option forwardfor
    http-request set-header X-Forwarded-Proto http
    http-request set-header X-Forwarded-Host %[req.hdr(host)]
    default_backend mock

backend mock
    server mock1 127.0.0.1:$BACKEND_PORT
EOF

# Config checks first: a config error is reported as such, not as a failure to listen.
"$TURNOUT" -t -c "$TMP/turnout.toml" >"$TMP/turnout-check.log" 2>&1 || FAILED[turnout]="config rejected: $(tr '\n' ' ' <"$TMP/turnout-check.log")"
if [[ -n $BASELINE_BIN ]]; then
  "$BASELINE_BIN" -t -c "$TMP/turnout-base.toml" >"$TMP/turnout-base-check.log" 2>&1 ||
    FAILED[turnout-base]="config rejected: $(tr '\n' ' ' <"$TMP/turnout-base-check.log")"
fi
"$NGINX" -t -c "$TMP/nginx/nginx.conf" -p "$TMP/nginx" >"$TMP/nginx-check.log" 2>&1 || { cat "$TMP/nginx-check.log" >&2; exit 1; }
"$HAPROXY" -c -f "$TMP/haproxy.cfg" >"$TMP/haproxy-check.log" 2>&1 || { cat "$TMP/haproxy-check.log" >&2; exit 1; }

start_target() { # NAME PORT CMD...
  local name=$1 port=$2 i child
  shift 2
  "${RUN[@]}" "$@" >"$TMP/$name.log" 2>&1 &
  PID[$name]=$!
  PIDS+=("${PID[$name]}")
  OURS+=("${PID[$name]}")
  RSSPID[$name]=${PID[$name]}
  URL[$name]=http://127.0.0.1:$port
  if ! wait_ready "$name" "${URL[$name]}" "${PID[$name]}"; then
    FAILED[$name]="did not start or does not answer the echo call: $(tail -3 "$TMP/$name.log" | tr '\n' ' ')"
    log "$name: ${FAILED[$name]}"
    return 0
  fi
  if [[ $name == nginx ]]; then # the master forks the one worker that serves
    for ((i = 0; i < 50; i++)); do
      child=$(pgrep -P "${PID[nginx]}" | head -1 || true)
      [[ -n $child ]] && break
      sleep 0.1
    done
    [[ -n $child ]] || { FAILED[nginx]="no worker process"; return 0; }
    RSSPID[nginx]=$child
    PIDS+=("$child")
    OURS+=("$child")
  fi
  log "$name on 127.0.0.1:$port (pid ${RSSPID[$name]})"
}

[[ -n ${FAILED[turnout]:-} ]] || start_target turnout "$TURNOUT_PORT" "$TURNOUT" -c "$TMP/turnout.toml"
if [[ -n $BASELINE_BIN && -z ${FAILED[turnout-base]:-} ]]; then
  start_target turnout-base "$BASE_PORT" "$BASELINE_BIN" -c "$TMP/turnout-base.toml"
fi
start_target nginx "$NGINX_PORT" "$NGINX" -c "$TMP/nginx/nginx.conf" -p "$TMP/nginx"
start_target haproxy "$HAPROXY_PORT" "$HAPROXY" -db -f "$TMP/haproxy.cfg"

# Equal work: the backend must see the same forwarded fields from every proxy.
for t in "${PROXIES[@]}"; do
  [[ -z ${FAILED[$t]:-} ]] || continue
  seen=$(curl -s --max-time 2 "${URL[$t]}/headers" | tr 'A-Z' 'a-z') || seen=""
  for f in x-forwarded-for x-forwarded-proto x-forwarded-host; do
    [[ $seen == *"[\"$f\","* ]] || FAILED[$t]="does not forward $f (the backend saw: ${seen:-nothing})"
  done
  [[ -z ${FAILED[$t]:-} ]] || log "$t: ${FAILED[$t]}"
done

# Idle RSS right after start (after the one echo call of the readiness probe).
sleep 0.5
for t in "${TARGETS[@]}"; do
  [[ -n ${FAILED[$t]:-} ]] || MEM_IDLE[$t]=$(rss_kib "${RSSPID[$t]}")
done

#------------------------------------------------------------------------------
# wrk runs

WRK_LOG=$RESULTS/latest-wrk.log
: >"$WRK_LOG"

field() { sed -n "s/.*\\b$2=\\([0-9.]*\\).*/\\1/p" "$1" | head -1; }

alive() { # NAME: still running? records why not
  local name=$1 rc=0
  [[ -n ${FAILED[$name]:-} ]] && return 1
  if ! kill -0 "${PID[$name]}" 2>/dev/null; then
    wait "${PID[$name]}" 2>/dev/null || rc=$?
    forget_pid "${PID[$name]}"
    FAILED[$name]="exited during the benchmark (status $rc): $(tail -3 "$TMP/$name.log" | tr '\n' ' ')"
    log "$name: ${FAILED[$name]}"
    return 1
  fi
  [[ $name != nginx ]] || kill -0 "${RSSPID[nginx]}" 2>/dev/null || { FAILED[nginx]="worker died"; return 1; }
}

run_wrk() { # OUTFILE CONNECTIONS SECONDS URL
  local rc=0
  timeout $(($3 + 30)) "${RUN[@]}" "$WRK" -t"$WRK_THREADS" -c"$2" -d"$3"s --latency -s "$LUA" "$4/mcp" >"$1" 2>&1 || rc=$?
  return $rc
}

# "req/s p50_us p99_us non2xx connect read write timeout" from a wrk output, or nothing.
parse_wrk() {
  local f=$1 req dur
  req=$(field "$f" requests)
  dur=$(field "$f" duration_us)
  [[ -n $req && -n $dur && $dur != 0 ]] || return 1
  awk -v r="$req" -v d="$dur" -v p50="$(field "$f" p50_us)" -v p99="$(field "$f" p99_us)" \
    -v s="$(field "$f" status)" -v c="$(field "$f" connect)" -v rd="$(field "$f" read)" \
    -v w="$(field "$f" write)" -v t="$(field "$f" timeout)" \
    'BEGIN { printf "%.1f %d %d %d %d %d %d %d\n", r * 1e6 / d, p50, p99, s, c, rd, w, t }'
}

add_errors() { # KEY(name) "non2xx connect read write timeout"
  local -a cur new
  read -r -a cur <<<"${ERRS[$1]:-0 0 0 0 0}"
  read -r -a new <<<"$2"
  ERRS[$1]="$((cur[0] + new[0])) $((cur[1] + new[1])) $((cur[2] + new[2])) $((cur[3] + new[3])) $((cur[4] + new[4]))"
}

# Why a run cannot be counted ("" when it can): wrk failed or printed no result, served
# nothing, or met errors (a non-2xx answer or a socket error). Such a run is reported as
# failed and left out of the medians; it is never counted as 0 req/s, nor, worse, counted
# with fast error answers as if they were served requests.
run_failure() { # RC PARSED("req/s p50 p99 non2xx connect read write timeout" or "")
  local -a v
  [[ -n $2 ]] || { echo "wrk printed no result (exit $1)"; return; }
  read -r -a v <<<"$2"
  ((v[3] + v[4] + v[5] + v[6] + v[7] == 0)) || { echo "errors: $(errors_text "${v[3]} ${v[4]} ${v[5]} ${v[6]} ${v[7]}")"; return; }
  awk -v r="${v[0]}" 'BEGIN { exit !(r > 0) }' || { echo "no request served"; return; }
  (($1 == 0)) || echo "wrk exit $1"
}
fmt_int() { awk -v x="$1" 'BEGIN { if (x == "") print "–"; else printf "%.0f\n", x }'; }
fmt_ms() { awk -v x="$1" 'BEGIN { if (x == "") print "–"; else printf "%.2f ms\n", x / 1000 }'; }
fmt_mib() { awk -v x="$1" 'BEGIN { if (x == "" || x == 0) print "–"; else printf "%.1f MiB\n", x / 1024 }'; }
errors_text() { # "non2xx connect read write timeout"
  local -a e
  read -r -a e <<<"${1:-0 0 0 0 0}"
  if ((e[0] + e[1] + e[2] + e[3] + e[4] == 0)); then echo "0"; return; fi
  echo "non-2xx ${e[0]}; socket: connect ${e[1]}, read ${e[2]}, write ${e[3]}, timeout ${e[4]}"
}

log "throughput: $ROUNDS interleaved rounds of ${WARMUP}s warm-up + ${DURATION}s, wrk -t$WRK_THREADS -c$CONNECTIONS"
for ((r = 1; r <= ROUNDS; r++)); do
  # Round r starts at target (r-1) mod n: no target always runs first (after the quiet wait)
  # or right after the same neighbour.
  for t in $(rotated $((r - 1)) "${TARGETS[@]}"); do
    alive "$t" || continue
    wait_quiet
    run_wrk "$TMP/warmup.txt" "$CONNECTIONS" "$WARMUP" "${URL[$t]}" || true
    out=$TMP/wrk-$t-$r.txt
    rc=0
    measure_start
    ticks0=$(proc_ticks "$t")
    run_wrk "$out" "$CONNECTIONS" "$DURATION" "${URL[$t]}" || rc=$?
    ticks1=$(proc_ticks "$t")
    foreign=$(measure_end)
    FOREIGN[$t]+="$foreign "
    { echo "=== $t round $r: wrk -t$WRK_THREADS -c$CONNECTIONS -d${DURATION}s --latency -s bench/jsonrpc_post.lua ${URL[$t]}/mcp (exit $rc)"
      cat "$out"; echo; } >>"$WRK_LOG"
    parsed=$(parse_wrk "$out") || parsed=""
    if [[ -n $parsed ]]; then
      read -r rps p50 p99 s c rd w to <<<"$parsed"
      add_errors "$t" "$s $c $rd $w $to"
    fi
    why=$(run_failure "$rc" "$parsed")
    if [[ -n $why ]]; then
      RUNS_FAILED[$t]=$((${RUNS_FAILED[$t]:-0} + 1))
      FAIL_NOTES[$t]+="round $r: $why. "
      ROUND_RPS[$t]+="failed "; ROUND_P99[$t]+="failed "
      log "round $r $t: FAILED ($why), left out of the medians; see $WRK_LOG"
    else
      RPS[$t]+="$rps "; P50[$t]+="$p50 "; P99[$t]+="$p99 "
      ROUND_RPS[$t]+="$(fmt_int "$rps") "; ROUND_P99[$t]+="$(awk -v x="$p99" 'BEGIN { printf "%.2f", x / 1000 }') "
      # CPU time the target spent per request: steadier than req/s on a shared machine,
      # since it does not depend on how the cores were shared with wrk and the backend.
      CPU[$t]+="$(awk -v d="$((ticks1 - ticks0))" -v hz="$(getconf CLK_TCK)" -v n="$rps" -v s="$DURATION" \
        'BEGIN { printf "%.2f", (n > 0 ? d * 1e6 / hz / (n * s) : 0) }') "
      log "round $r $t: $rps req/s, p50 ${p50}us, p99 ${p99}us; other load ${foreign}%"
    fi
    alive "$t" || true
  done
done

#------------------------------------------------------------------------------
# Memory: RSS with MEM_CONNECTIONS keep-alive connections open, read one second before the end.

log "memory: wrk -t$WRK_THREADS -c$MEM_CONNECTIONS -d${MEM_DURATION}s per proxy, RSS read at $((MEM_DURATION - 1))s"
for t in "${PROXIES[@]}"; do
  alive "$t" || continue
  wait_quiet
  out=$TMP/wrk-$t-mem.txt
  run_wrk "$out" "$MEM_CONNECTIONS" "$MEM_DURATION" "${URL[$t]}" &
  wrk_pid=$!
  PIDS+=("$wrk_pid")
  sleep $((MEM_DURATION - 1))
  MEM_LOAD[$t]=$(rss_kib "${RSSPID[$t]}")
  MEM_FDS[$t]=$(fd_count "${RSSPID[$t]}")
  rc=0
  wait "$wrk_pid" || rc=$?
  forget_pid "$wrk_pid"
  { echo "=== $t memory: wrk -t$WRK_THREADS -c$MEM_CONNECTIONS -d${MEM_DURATION}s --latency -s bench/jsonrpc_post.lua ${URL[$t]}/mcp (exit $rc)"
    cat "$out"; echo; } >>"$WRK_LOG"
  parsed=$(parse_wrk "$out") || parsed=""
  if [[ -n $parsed ]]; then
    read -r rps p50 p99 s c rd w to <<<"$parsed"
    MEM_ERRS[$t]="$s $c $rd $w $to"
  fi
  MEM_HWM[$t]=$(hwm_kib "${RSSPID[$t]}")
  why=$(run_failure "$rc" "$parsed")
  if [[ -n $why ]]; then
    # Connections that failed hold no memory: the RSS of this run is not comparable either.
    MEM_FAILED[$t]=$why
    log "memory $t: FAILED ($why); its figures are left out; see $WRK_LOG"
  else
    MEM_RPS[$t]=$rps
    log "memory $t: idle ${MEM_IDLE[$t]} KiB, ${MEM_LOAD[$t]} KiB with $MEM_CONNECTIONS connections (${MEM_FDS[$t]} fds open), $rps req/s"
  fi
  alive "$t" || true
done

#------------------------------------------------------------------------------
# Report


ALL_FOREIGN=""
for t in "${TARGETS[@]}"; do ALL_FOREIGN+="${FOREIGN[$t]:-}"; done
FOREIGN_MED=$(median <<<"$ALL_FOREIGN")
FOREIGN_MAX=$(tr ' ' '\n' <<<"$ALL_FOREIGN" | awk 'NF && $1 > m { m = $1 } END { print m + 0 }')
for t in "${TARGETS[@]}"; do f=${FOREIGN[$t]:-–}; FOREIGN[$t]=${f% }; done

declare -A MED_RPS MED_P50 MED_P99 MED_CPU PER_CONN
for t in "${TARGETS[@]}"; do
  MED_CPU[$t]=$(median <<<"${CPU[$t]:-}")
  MED_RPS[$t]=$(median <<<"${RPS[$t]:-}")
  MED_P50[$t]=$(median <<<"${P50[$t]:-}")
  MED_P99[$t]=$(median <<<"${P99[$t]:-}")
  if [[ -z ${MEM_FAILED[$t]:-} && -n ${MEM_LOAD[$t]:-} && -n ${MEM_IDLE[$t]:-} ]]; then
    PER_CONN[$t]=$(awk -v a="${MEM_LOAD[$t]}" -v b="${MEM_IDLE[$t]}" -v n="$MEM_CONNECTIONS" 'BEGIN { printf "%.2f\n", (a - b) / n }')
  fi
done

cpu_model=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
turnout_rev=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD -- proxy include CMakeLists.txt 2>/dev/null || turnout_rev+=" + uncommitted changes"
nginx_ver=$("$NGINX" -v 2>&1 | sed 's/.*nginx\///')
haproxy_ver=$("$HAPROXY" -v | awk 'NR == 1 { print $3 }')
wrk_ver=$("$WRK" -v 2>&1 | awk 'NR == 1 { print $2 }' || true)
turnout_ver=$("$TURNOUT" --version 2>&1 | head -1 || true)
[[ -z $BASELINE_BIN ]] || base_ver=$("$BASELINE_BIN" --version 2>&1 | head -1 || true)
body_bytes=${#BODY}

# One row of the ratio table: A against B, or why they cannot be compared.
ratio_row() { # A B
  local a=$1 b=$2 t name
  name="${LABEL[$a]%% *} / ${LABEL[$b]%% *}"
  for t in "$a" "$b"; do
    if [[ -z ${RPS[$t]:-} ]]; then
      echo "| $name | not compared: ${LABEL[$t]} has no successful run (${FAILED[$t]:-all $ROUNDS runs failed}) | | | | |"
      return
    fi
  done
  echo "| $name | $(ratio "${MED_RPS[$a]}" "${MED_RPS[$b]}") | $(ratio "${MED_P99[$a]}" "${MED_P99[$b]}") | $(ratio "${MED_CPU[$a]}" "${MED_CPU[$b]}") | $(ratio "${MEM_RPS[$a]:-}" "${MEM_RPS[$b]:-}") | $(ratio "${PER_CONN[$a]:-}" "${PER_CONN[$b]:-}") |"
}

REPORT=$TMP/report.md
{
  echo "### turnout vs nginx vs HAProxy ($(date -u +%Y-%m-%d))"
  echo
  echo "Machine: $(nproc) × $cpu_model ($(uname -sr)); wrk, the proxy under test and the mock"
  echo "backend share these $(nproc) cores, the same for every proxy. CPU used by other processes during"
  echo "the measured runs: median ${FOREIGN_MED:-0}%, max ${FOREIGN_MAX}% of all cores."
  ((NICE == 0)) || echo "wrk, the backend and the proxies ran at niceness $NICE."
  echo "Versions: $turnout_ver (git $turnout_rev, $BUILD_DIR Release), nginx $nginx_ver (nginx-light),"
  echo "HAProxy $haproxy_ver, wrk $wrk_ver."
  [[ -z $BASELINE_BIN ]] || echo "Baseline (turnout-base): $BASELINE_BIN, ${base_ver:-unknown version}, same configuration."
  if ((FOREIGN_MAX > 2 * QUIET_BUSY)); then
    echo
    echo "**Warning: other processes used up to ${FOREIGN_MAX}% of the machine during the runs; treat the"
    echo "figures as noisy and rerun on a quiet machine.**"
  fi
  echo
  echo "Command: \`$COMMAND\`"
  echo
  echo "Each proxy runs one worker in front of the same \`turnout-mock-backend\` (one thread), with"
  echo "upstream keep-alive (nginx \`keepalive $POOL_CAP\`, turnout's idle-pool cap per backend and worker;"
  echo "HAProxy \`http-reuse always\`, unlimited), **access logs off for all**, and the same fields toward"
  echo "the backend (the client's Host passed on; X-Forwarded-For, -Proto and -Host added, as turnout"
  echo "always does; checked through the backend's \`/headers\` before the runs). Load: \`wrk -t$WRK_THREADS"
  echo "-c$CONNECTIONS -d${DURATION}s --latency -s bench/jsonrpc_post.lua URL/mcp\`, a $body_bytes-byte JSON-RPC"
  echo "\`tools/call\` (\`echo\`) POST on keep-alive connections; $ROUNDS interleaved rounds over"
  echo "${TARGETS[*]} (round r starts at the r-th of them, so the order rotates), each run after a"
  echo "${WARMUP}s warm-up; figures are medians across the runs that succeeded (a run with any error, or"
  echo "no result, is reported as failed and left out, never counted as 0), errors are totals. RSS"
  echo "(VmRSS; nginx: its worker) idle after start, and with $MEM_CONNECTIONS keep-alive connections busy"
  echo "(\`wrk -c$MEM_CONNECTIONS -d${MEM_DURATION}s\`, read at $((MEM_DURATION - 1))s)."
  echo
  echo "| target | req/s | p50 | p99 | CPU µs/req | runs counted | errors | RSS idle | RSS @ $MEM_CONNECTIONS conns | per conn |"
  echo "|---|---:|---:|---:|---:|---:|---|---:|---:|---:|"
  for t in "${TARGETS[@]}"; do
    if [[ -z ${RPS[$t]:-} ]]; then
      echo "| ${LABEL[$t]} | FAILED: ${FAILED[$t]:-all ${RUNS_FAILED[$t]:-0} runs failed} | | | | 0/$ROUNDS | $(errors_text "${ERRS[$t]:-}") | | | |"
      continue
    fi
    if [[ $t == backend ]]; then
      mem="| – | – | –"
    elif [[ -n ${MEM_FAILED[$t]:-} ]]; then
      mem="| $(fmt_mib "${MEM_IDLE[$t]:-}") | failed | failed"
    else
      per="–"
      [[ -z ${PER_CONN[$t]:-} ]] || per=$(awk -v x="${PER_CONN[$t]}" 'BEGIN { printf "%.1f KiB\n", x }')
      mem="| $(fmt_mib "${MEM_IDLE[$t]:-}") | $(fmt_mib "${MEM_LOAD[$t]:-}") | $per"
    fi
    counted=$(wc -w <<<"${RPS[$t]}")
    echo "| ${LABEL[$t]} | $(fmt_int "${MED_RPS[$t]}") | $(fmt_ms "${MED_P50[$t]}") | $(fmt_ms "${MED_P99[$t]}") | ${MED_CPU[$t]:-–} | $counted/$ROUNDS | $(errors_text "${ERRS[$t]:-}") $mem |"
  done
  echo
  echo "| ratio | throughput (higher is better) | p99 (lower is better) | CPU per request (lower is better) | throughput at $MEM_CONNECTIONS conns | memory per busy conn |"
  echo "|---|---:|---:|---:|---:|---:|"
  [[ -z $BASELINE_BIN ]] || ratio_row turnout turnout-base
  ratio_row turnout nginx
  ratio_row turnout haproxy
  echo
  echo "<details><summary>Per round, and the $MEM_CONNECTIONS-connection run</summary>"
  echo
  echo "| target | req/s per round | p99 per round (ms) | other load per round (%) | $MEM_CONNECTIONS conns: req/s | errors | fds open | peak RSS |"
  echo "|---|---|---|---|---:|---|---:|---:|"
  for t in "${TARGETS[@]}"; do
    rpss=${ROUND_RPS[$t]:-–}; p99s=${ROUND_P99[$t]:-–}
    if [[ $t == backend ]]; then
      echo "| ${LABEL[$t]} | ${rpss% } | ${p99s% } | ${FOREIGN[$t]} | – | – | – | – |"
    else
      mem_rps=$(fmt_int "${MEM_RPS[$t]:-}")
      [[ -z ${MEM_FAILED[$t]:-} ]] || mem_rps=failed
      echo "| ${LABEL[$t]} | ${rpss% } | ${p99s% } | ${FOREIGN[$t]} | $mem_rps | $(errors_text "${MEM_ERRS[$t]:-}") | ${MEM_FDS[$t]:-–} | $(fmt_mib "${MEM_HWM[$t]:-}") |"
    fi
  done
  echo
  echo "</details>"
  for t in "${TARGETS[@]}"; do
    [[ -z ${FAILED[$t]:-} ]] || { echo; echo "**$t problem:** ${FAILED[$t]}"; }
    [[ -z ${FAIL_NOTES[$t]:-} ]] ||
      { echo; echo "**$t: ${RUNS_FAILED[$t]} of $ROUNDS runs failed and are left out of the medians:** ${FAIL_NOTES[$t]% }"; }
    [[ -z ${MEM_FAILED[$t]:-} ]] ||
      { echo; echo "**$t: the $MEM_CONNECTIONS-connection run failed (${MEM_FAILED[$t]}); its RSS and rate are left out.**"; }
  done
} >"$REPORT"

cp "$REPORT" "$RESULTS/latest.md"
cat "$REPORT"
log "written to bench/results/latest.md (wrk outputs: bench/results/latest-wrk.log)"
