#!/usr/bin/env bash
# TLS termination: turnout vs nginx, one worker each, same certificate (ECDSA P-256, made here
# with openssl), same mock MCP backend behind them over plain keep-alive. Interleaved rounds,
# medians, ratios. Talks only to 127.0.0.1. Three figures per proxy:
#
#   full handshakes/s    `openssl s_time -new`: one client process opening a new connection,
#                        doing a full TLS 1.3 handshake (ECDHE + ECDSA), one HTTP/1.0 GET of
#                        /health through the proxy, close — as fast as it can for DURATION s.
#                        The client does its half of the key exchange on the same two cores,
#                        so this is a rate of whole connections, not the server's crypto alone.
#   resumed handshakes/s `openssl s_time -reuse`: the same, resuming one session (tickets).
#   keep-alive req/s     wrk -c CONNECTIONS over https, the JSON-RPC POST of bench/run.sh,
#                        p50/p99 too: the cost of record encryption on the data path.
#
#   bench/tls.sh                        # DURATION=10 ROUNDS=3 CONNECTIONS=50
#   DURATION=2 ROUNDS=1 bench/tls.sh    # does it run at all
#
# Writes the summary (markdown) to stdout and to bench/results/tls-latest.md.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD

DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-50}
WARMUP=${WARMUP:-2}
WRK_THREADS=${WRK_THREADS:-1}
BUILD_DIR=${BUILD_DIR:-build-bench}
NICE=${NICE:-0}
for v in DURATION ROUNDS CONNECTIONS WARMUP WRK_THREADS; do
  [[ ${!v} =~ ^[0-9]+$ ]] && ((${!v} > 0)) || { echo "tls.sh: $v must be a positive integer" >&2; exit 2; }
done
[[ $NICE =~ ^-?[0-9]+$ ]] || { echo "tls.sh: NICE must be an integer" >&2; exit 2; }
RUN=(nice -n "$NICE")
COMMAND="DURATION=$DURATION ROUNDS=$ROUNDS CONNECTIONS=$CONNECTIONS bench/tls.sh"
LUA=$ROOT/bench/jsonrpc_post.lua
RESULTS=$ROOT/bench/results
mkdir -p "$RESULTS"
log() { printf '[bench-tls] %s\n' "$*" >&2; }

# Only the tools it needs (scripts/install-deps.sh installs them). It does not run install-deps
# itself: that would also run `npm ci`, which empties a node_modules shared through a symlink.
NGINX=/usr/sbin/nginx
WRK=$(command -v wrk || true)
OPENSSL=$(command -v openssl || true)
for b in "$NGINX" "$WRK" "$OPENSSL" "$(command -v curl || true)"; do
  [[ -n $b && -x $b ]] || { echo "tls.sh: nginx, wrk, openssl or curl missing: run scripts/install-deps.sh" >&2; exit 1; }
done

if [[ ! -f $BUILD_DIR/build.ninja ]]; then
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
log "building turnout and turnout-mock-backend in $BUILD_DIR"
cmake --build "$BUILD_DIR" -j"$(nproc)" --target turnout turnout-mock-backend >/dev/null
TURNOUT=$ROOT/$BUILD_DIR/turnout
MOCK=$ROOT/$BUILD_DIR/turnout-mock-backend

TMP=$(mktemp -d /tmp/turnout-bench-tls.XXXXXX)
BENCH_SCRIPT=tls.sh
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

# One certificate for both proxies (the handshake cost depends on the key type).
"$OPENSSL" req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$TMP/key.pem" \
  -out "$TMP/cert.pem" -subj /CN=localhost -days 2 -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" 2>/dev/null

BACKEND_PORT=$(free_port)
"${RUN[@]}" "$MOCK" --listen "127.0.0.1:$BACKEND_PORT" --name bench >"$TMP/backend.log" 2>&1 &
PIDS+=($!)

TURNOUT_PORT=$(free_port)
write_turnout_config "$TMP/turnout.toml" "$TURNOUT_PORT" "$BACKEND_PORT" \
  "tls_cert = \"$TMP/cert.pem\"" "tls_key = \"$TMP/key.pem\""

# nginx with the settings turnout uses: Mozilla intermediate, client cipher order, tickets and
# a shared session cache.
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
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $TMP/nginx/client_body;
    proxy_temp_path $TMP/nginx/proxy;
    fastcgi_temp_path $TMP/nginx/fastcgi;
    uwsgi_temp_path $TMP/nginx/uwsgi;
    scgi_temp_path $TMP/nginx/scgi;
    keepalive_timeout 60s;
    keepalive_requests 1000000;
    upstream backend {
        server 127.0.0.1:$BACKEND_PORT;
        keepalive $(turnout_pool_cap);               # turnout's idle-pool cap per backend and worker
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:$NGINX_PORT ssl;
        ssl_certificate $TMP/cert.pem;
        ssl_certificate_key $TMP/key.pem;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305;
        ssl_prefer_server_ciphers off;
        ssl_session_cache shared:SSL:10m;
        ssl_session_timeout 1d;
        ssl_session_tickets on;
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

"$TURNOUT" -t -c "$TMP/turnout.toml" >/dev/null
"$NGINX" -t -c "$TMP/nginx/nginx.conf" -p "$TMP/nginx" >/dev/null 2>&1 || { "$NGINX" -t -c "$TMP/nginx/nginx.conf" -p "$TMP/nginx"; exit 1; }
"${RUN[@]}" "$TURNOUT" -c "$TMP/turnout.toml" >"$TMP/turnout.log" 2>&1 &
PIDS+=($!)
"${RUN[@]}" "$NGINX" -c "$TMP/nginx/nginx.conf" -p "$TMP/nginx" >"$TMP/nginx.log" 2>&1 &
PIDS+=($!)

declare -A PORT=([turnout]=$TURNOUT_PORT [nginx]=$NGINX_PORT)
for t in turnout nginx; do
  ok=0
  for ((i = 0; i < 100; i++)); do
    if curl -sk --max-time 2 -o /dev/null -w '%{http_code}' "https://127.0.0.1:${PORT[$t]}/health" 2>/dev/null | grep -q 200; then ok=1; break; fi
    sleep 0.1
  done
  ((ok)) || { echo "tls.sh: $t does not answer over https" >&2; cat "$TMP/$t.log" >&2; exit 1; }
done
log "turnout on $TURNOUT_PORT, nginx on $NGINX_PORT, backend on $BACKEND_PORT"

# connections/s of `openssl s_time`: its count ("N connections in T real seconds") over the
# wall time measured here (s_time reports whole seconds only).
s_time() { # PORT MODE(-new|-reuse) SECONDS
  local t0 t1
  t0=$(date +%s.%N)
  timeout $(($3 + 30)) "${RUN[@]}" "$OPENSSL" s_time -connect "127.0.0.1:$1" "$2" -time "$3" -www /health \
    >"$TMP/s_time.txt" 2>&1 || true
  t1=$(date +%s.%N)
  awk -v el="$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" \
    '/connections in [0-9.]+ real seconds/ { n = $1 } END { if (n != "" && el > 0) printf "%.1f\n", n / el }' "$TMP/s_time.txt"
}
wrk_https() { # PORT SECONDS -> "req/s p50_us p99_us errors"
  timeout $(($2 + 30)) "${RUN[@]}" "$WRK" -t"$WRK_THREADS" -c"$CONNECTIONS" -d"$2"s --latency -s "$LUA" \
    "https://127.0.0.1:$1/mcp" >"$TMP/wrk.txt" 2>&1 || true
  sed -n 's/^BENCH //p' "$TMP/wrk.txt" | awk '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] } }
    END { if (v["duration_us"] > 0) printf "%.1f %d %d %d\n", v["requests"] * 1e6 / v["duration_us"], v["p50_us"], v["p99_us"],
          v["connect"] + v["read"] + v["write"] + v["status"] + v["timeout"] }'
}

declare -A NEW REUSE RPS P50 P99 ERRS
for ((r = 1; r <= ROUNDS; r++)); do
  for t in turnout nginx; do
    wrk_https "${PORT[$t]}" "$WARMUP" >/dev/null
    n=$(s_time "${PORT[$t]}" -new "$DURATION"); NEW[$t]+="${n:-0} "
    u=$(s_time "${PORT[$t]}" -reuse "$DURATION"); REUSE[$t]+="${u:-0} "
    read -r rps p50 p99 errs <<<"$(wrk_https "${PORT[$t]}" "$DURATION")"
    RPS[$t]+="${rps:-0} "; P50[$t]+="${p50:-0} "; P99[$t]+="${p99:-0} "; ERRS[$t]=$((${ERRS[$t]:-0} + ${errs:-0}))
    log "round $r $t: ${n:-?} new handshakes/s, ${u:-?} resumed/s, ${rps:-?} req/s keep-alive (p99 ${p99:-?}us, errors ${errs:-?})"
  done
done

declare -A M
for t in turnout nginx; do
  M[$t,new]=$(median <<<"${NEW[$t]}"); M[$t,reuse]=$(median <<<"${REUSE[$t]}"); M[$t,rps]=$(median <<<"${RPS[$t]}")
  M[$t,p50]=$(median <<<"${P50[$t]}"); M[$t,p99]=$(median <<<"${P99[$t]}")
done
{
  echo "### TLS: turnout vs nginx ($(date -u +%F), \`$COMMAND\`)"
  echo
  echo "| | full handshakes/s | resumed handshakes/s | keep-alive req/s | p50 | p99 | errors |"
  echo "|---|---:|---:|---:|---:|---:|---:|"
  for t in turnout nginx; do
    awk -v n="$t" -v a="${M[$t,new]}" -v b="${M[$t,reuse]}" -v c="${M[$t,rps]}" -v d="${M[$t,p50]}" -v e="${M[$t,p99]}" -v f="${ERRS[$t]}" \
      'BEGIN { printf "| %s | %.0f | %.0f | %.0f | %.2f ms | %.2f ms | %d |\n", n, a, b, c, d / 1000, e / 1000, f }'
  done
  echo
  echo "turnout / nginx: full handshakes $(ratio "${M[turnout,new]}" "${M[nginx,new]}"), resumed $(ratio "${M[turnout,reuse]}" "${M[nginx,reuse]}"), keep-alive throughput $(ratio "${M[turnout,rps]}" "${M[nginx,rps]}"), p99 $(ratio "${M[turnout,p99]}" "${M[nginx,p99]}")"
  echo
  echo "Medians of $ROUNDS interleaved rounds; handshakes: one \`openssl s_time\` client, TLS 1.3, ECDSA P-256, one GET /health per connection; keep-alive: \`wrk -t$WRK_THREADS -c$CONNECTIONS -d${DURATION}s\` https POSTs (bench/jsonrpc_post.lua)."
} | tee "$RESULTS/tls-latest.md"
