#!/usr/bin/env bash
# TLS A/B of two turnout binaries (and nginx for scale), side by side on one machine, one worker
# each, same certificate, same mock backend behind them over plain keep-alive. Talks only to
# 127.0.0.1. Two figures:
#
#   memory per silent TLS stream   VmRSS of the proxy (nginx: its worker) before and with
#                                  STREAMS TLS connections open, each a GET /sse?n=2&
#                                  interval_ms=600000 (bench/tls_streams.mjs), divided by STREAMS.
#   CPU per keep-alive request     user + system CPU of the proxy (/proc/PID/stat) over a
#                                  `wrk -c CONNECTIONS` https run of JSON-RPC POSTs, divided by
#                                  the requests wrk completed. Rounds alternate A and B, so load
#                                  from elsewhere on the machine falls on both alike.
#
#   TURNOUT_A=/path/to/old/turnout TURNOUT_B=build/turnout MOCK=build/turnout-mock-backend bench/tls_ab.sh
#   STREAMS=2000 ROUNDS=5 DURATION=5 CONNECTIONS=50 (defaults)
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD

STREAMS=${STREAMS:-2000}
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-5}
CONNECTIONS=${CONNECTIONS:-50}
TURNOUT_A=${TURNOUT_A:?TURNOUT_A: the turnout binary before}
TURNOUT_B=${TURNOUT_B:-$ROOT/build/turnout}
MOCK=${MOCK:-$ROOT/build/turnout-mock-backend}
for v in STREAMS ROUNDS DURATION CONNECTIONS; do
  [[ ${!v} =~ ^[0-9]+$ ]] && ((${!v} > 0)) || { echo "tls_ab.sh: $v must be a positive integer" >&2; exit 2; }
done
NGINX=/usr/sbin/nginx
WRK=$(command -v wrk || true)
for b in "$TURNOUT_A" "$TURNOUT_B" "$MOCK" "$NGINX" "$WRK" "$(command -v node || true)" "$(command -v openssl || true)"; do
  [[ -n $b && -x $b ]] || { echo "tls_ab.sh: missing $b (build turnout, turnout-mock-backend; scripts/install-deps.sh)" >&2; exit 1; }
done
LUA=$ROOT/bench/jsonrpc_post.lua
TMP=$(mktemp -d /tmp/turnout-bench-tls-ab.XXXXXX)
BENCH_SCRIPT=tls_ab.sh
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
log() { printf '[bench-tls-ab] %s\n' "$*" >&2; }
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$TMP/key.pem" \
  -out "$TMP/cert.pem" -subj /CN=localhost -days 2 -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" 2>/dev/null

BACKEND_PORT=$(free_port)
"$MOCK" --listen "127.0.0.1:$BACKEND_PORT" --name bench >"$TMP/backend.log" 2>&1 &
PIDS+=($!)

declare -A PORT PID
for t in A B; do
  PORT[$t]=$(free_port)
  write_turnout_config "$TMP/turnout-$t.toml" "${PORT[$t]}" "$BACKEND_PORT" \
    "tls_cert = \"$TMP/cert.pem\"" "tls_key = \"$TMP/key.pem\""
  bin_var=TURNOUT_$t
  "${!bin_var}" -c "$TMP/turnout-$t.toml" >"$TMP/turnout-$t.log" 2>&1 &
  PID[$t]=$!
  PIDS+=($!)
done

PORT[nginx]=$(free_port)
mkdir -p "$TMP/nginx"
nginx_user=""
((EUID == 0)) && nginx_user="user root;"
cat >"$TMP/nginx/nginx.conf" <<EOF
$nginx_user
worker_processes 1;
worker_rlimit_nofile 65536;
daemon off;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log warn;
events { worker_connections 16384; }
http {
    access_log off;
    client_body_temp_path $TMP/nginx/client_body;
    proxy_temp_path $TMP/nginx/proxy;
    fastcgi_temp_path $TMP/nginx/fastcgi;
    uwsgi_temp_path $TMP/nginx/uwsgi;
    scgi_temp_path $TMP/nginx/scgi;
    upstream backend { server 127.0.0.1:$BACKEND_PORT; keepalive 64; }
    server {
        listen 127.0.0.1:${PORT[nginx]} ssl;
        ssl_certificate $TMP/cert.pem;
        ssl_certificate_key $TMP/key.pem;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_cache shared:SSL:10m;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
        }
    }
}
EOF
"$NGINX" -c "$TMP/nginx/nginx.conf" -p "$TMP/nginx" >"$TMP/nginx.log" 2>&1 &
PIDS+=($!)
nginx_master=$!

for t in A B nginx; do
  ok=0
  for ((i = 0; i < 100; i++)); do
    if curl -sk --max-time 2 -o /dev/null -w '%{http_code}' "https://127.0.0.1:${PORT[$t]}/health" 2>/dev/null | grep -q 200; then ok=1; break; fi
    sleep 0.2
  done
  ((ok)) || { echo "tls_ab.sh: $t does not answer over https" >&2; exit 1; }
done
PID[nginx]=$(pgrep -P "$nginx_master" | head -1)
log "A on ${PORT[A]} (pid ${PID[A]}), B on ${PORT[B]} (pid ${PID[B]}), nginx on ${PORT[nginx]} (worker ${PID[nginx]})"

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# ---- memory per silent TLS stream -----------------------------------------------------------
declare -A PER_STREAM
for t in A B nginx; do
  before=$(rss_kib "${PID[$t]}")
  coproc STREAMS_HOLDER { exec node "$ROOT/bench/tls_streams.mjs" "${PORT[$t]}" "$STREAMS"; }
  holder=$STREAMS_HOLDER_PID
  read -r line <&"${STREAMS_HOLDER[0]}" || line=""
  [[ $line == "open $STREAMS" ]] || { echo "tls_ab.sh: $t: could not open $STREAMS streams ($line)" >&2; exit 1; }
  sleep 1
  with=$(rss_kib "${PID[$t]}")
  kill -TERM "$holder" 2>/dev/null || true
  wait "$holder" 2>/dev/null || true
  PER_STREAM[$t]=$(awk -v a="$before" -v b="$with" -v n="$STREAMS" 'BEGIN { printf "%.1f", (b - a) / n }')
  log "$t: VmRSS $before KiB -> $with KiB with $STREAMS TLS streams: ${PER_STREAM[$t]} KiB each"
  sleep 2
done

# ---- CPU per keep-alive request -------------------------------------------------------------
wrk_requests() { # PORT SECONDS -> requests completed
  timeout $(($2 + 30)) "$WRK" -t1 -c"$CONNECTIONS" -d"$2"s -s "$LUA" "https://127.0.0.1:$1/mcp" >"$TMP/wrk.txt" 2>&1 || true
  sed -n 's/^BENCH //p' "$TMP/wrk.txt" | tr ' ' '\n' | sed -n 's/^requests=//p'
}
hz=$(getconf CLK_TCK)
declare -A CPU RPS
for ((r = 1; r <= ROUNDS; r++)); do
  for t in $(rotated $((r % 2)) A B); do
    wrk_requests "${PORT[$t]}" 1 >/dev/null
    c0=$(cpu_ticks "${PID[$t]}")
    n=$(wrk_requests "${PORT[$t]}" "$DURATION")
    c1=$(cpu_ticks "${PID[$t]}")
    us=$(awk -v c=$((c1 - c0)) -v hz="$hz" -v n="${n:-0}" 'BEGIN { if (n > 0) printf "%.2f", c * 1e6 / hz / n; else print 0 }')
    CPU[$t]+="$us "
    RPS[$t]+="$(awk -v n="${n:-0}" -v d="$DURATION" 'BEGIN { printf "%.0f", n / d }') "
    log "round $r $t: ${n:-0} requests, ${us} µs CPU each"
  done
done

echo "### TLS A/B ($(date -u +%F), \`STREAMS=$STREAMS ROUNDS=$ROUNDS DURATION=$DURATION CONNECTIONS=$CONNECTIONS bench/tls_ab.sh\`)"
echo
echo "| | KiB per silent TLS stream ($STREAMS) | CPU µs per keep-alive request (median of $ROUNDS) | req/s (median) |"
echo "|---|---:|---:|---:|"
for t in A B; do
  echo "| turnout $t | ${PER_STREAM[$t]} | $(median <<<"${CPU[$t]}") | $(median <<<"${RPS[$t]}") |"
done
echo "| nginx | ${PER_STREAM[nginx]} | | |"
echo
echo "B / A: memory per stream $(ratio "${PER_STREAM[B]}" "${PER_STREAM[A]}"), CPU per request $(ratio "$(median <<<"${CPU[B]}")" "$(median <<<"${CPU[A]}")")"
