# shellcheck shell=bash disable=SC2034  # arrays shared between the sourced files
# The three proxies of bench/run.sh (sourced, not run): their configurations, start and stop.
# The caller sets ROOT, TMP, RUN (the nice prefix), TURNOUT, NGINX, HAPROXY, BACKEND_PORT,
# POOL_CAP, MAX_CLIENT_CONNS (the most client connections any scenario opens), BASELINE_BIN
# (may be empty), CERT/KEY (TLS scenarios), and has sourced bench/lib.sh.
#
# A "setup" is one way of running all of them: `configure_targets WORKERS TLS` (TLS 0 or 1)
# writes a config per proxy; start_target NAME then runs it, and fills, for that name:
#   URL[NAME]       http(s)://127.0.0.1:PORT
#   PID[NAME]       the process started (nginx: its master)
#   CPU_PIDS[NAME]  every process of the proxy (its CPU is summed over them; threads are
#                   counted in their process's /proc/PID/stat)
#   RSS_PIDS[NAME]  the processes that serve (nginx: its workers, not the master)
#   FAILED[NAME]    why it cannot be measured in this setup, if so
# stop_target NAME stops it and forgets its pids.

declare -A URL PID CPU_PIDS RSS_PIDS FAILED PORT CONFIG
SETUP_WORKERS=1
SETUP_TLS=0
SETUP_STREAMING=0

# An echo tools/call through URL must answer 200 with the echoed text.
probe() {
  local out
  out=$(curl -sk --max-time 2 -o - -w '\n%{http_code}' -X POST \
    -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
    --data "$BODY" "$1/mcp" 2>/dev/null) || return 1
  [[ ${out##*$'\n'} == 200 && $out == *'"text":"hello from wrk"'* ]]
}

wait_ready() { # URL PID
  local i
  for ((i = 0; i < 100; i++)); do
    kill -0 "$2" 2>/dev/null || return 1
    probe "$1" && return 0
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

write_nginx_config() { # FILE PORT
  local user="" listen="listen 127.0.0.1:$2;" tls="" buffering=""
  # With proxy_buffering on (the default), nginx holds a response head back until a body
  # follows (postpone_output), so a silent stream's client never sees its head: SSE behind
  # nginx is configured with buffering off (as turnout's nginx import example does).
  ((SETUP_STREAMING == 0)) || buffering="proxy_buffering off;"
  ((EUID == 0)) && user="user root;"
  if ((SETUP_TLS)); then
    listen="listen 127.0.0.1:$2 ssl;"
    # The settings turnout uses: Mozilla intermediate, client cipher order, tickets, shared cache.
    tls="ssl_certificate $CERT;
        ssl_certificate_key $KEY;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_ciphers $TLS_CIPHERS;
        ssl_prefer_server_ciphers off;
        ssl_session_cache shared:SSL:10m;
        ssl_session_timeout 1d;
        ssl_session_tickets on;"
  fi
  mkdir -p "$TMP/nginx"
  cat >"$1" <<EOF
$user
worker_processes $SETUP_WORKERS;
daemon off;
master_process on;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log warn;
worker_rlimit_nofile $(fd_budget);
events {
    worker_connections $(fd_budget);   # client and upstream connections
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
        $listen
        $tls
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_read_timeout 1h;           # silent SSE streams stay open (turnout: stream_idle_timeout 0)
            $buffering
            # The same work as turnout, which always forwards the client's Host and adds these.
            proxy_set_header Host \$http_host;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto \$scheme;
            proxy_set_header X-Forwarded-Host \$http_host;
        }
    }
}
EOF
}

write_haproxy_config() { # FILE PORT
  local bind="bind 127.0.0.1:$2" proto=http
  if ((SETUP_TLS)); then
    cat "$CERT" "$KEY" >"$TMP/haproxy.pem"
    bind+=" ssl crt $TMP/haproxy.pem ssl-min-ver TLSv1.2 ciphers $TLS_CIPHERS"
    proto=https
  fi
  cat >"$1" <<EOF
global
    nbthread $SETUP_WORKERS
    maxconn $((MAX_CLIENT_CONNS + 512))
    # It would want 2 descriptors per connection (maxsock) and refuse to start when the hard
    # limit is lower; idle connections need one each, so run on what the limit allows.
    no strict-limits
    # no "log" line: no logging

defaults
    mode http
    option http-keep-alive
    http-reuse always
    timeout connect 2s
    timeout client 1h                    # silent SSE streams stay open
    timeout server 1h
    timeout http-request 10s
    timeout http-keep-alive 60s
    maxconn $((MAX_CLIENT_CONNS + 512))

frontend bench
    $bind
    # The same work as turnout, which always adds these.
    option forwardfor
    http-request set-header X-Forwarded-Proto $proto
    http-request set-header X-Forwarded-Host %[req.hdr(host)]
    default_backend mock

backend mock
    server mock1 127.0.0.1:$BACKEND_PORT
EOF
}

# Descriptors a proxy may need: every client connection and one upstream connection for each,
# within the hard limit (which an unprivileged or containerised root cannot raise).
fd_budget() {
  local want=$((2 * MAX_CLIENT_CONNS + 1024)) hard
  hard=$(ulimit -Hn)
  [[ $hard == unlimited ]] || ((want <= hard)) || want=$hard
  echo "$want"
}

# Writes every proxy's configuration for one setup, on fresh ports. STREAMING 1: nginx as it is
# configured for SSE (see write_nginx_config).
configure_targets() { # WORKERS TLS [STREAMING]
  local t extra=()
  SETUP_WORKERS=$1
  SETUP_TLS=$2
  SETUP_STREAMING=${3:-0}
  ((SETUP_TLS)) && extra=("tls_cert = \"$CERT\"" "tls_key = \"$KEY\"")
  for t in "${PROXIES[@]}"; do
    PORT[$t]=$(free_port)
    CONFIG[$t]=$TMP/$t.conf
    [[ $t != turnout* ]] || CONFIG[$t]=$TMP/$t.toml # turnout reads *.conf as nginx configuration
    FAILED[$t]=""
    case $t in
      turnout | turnout-base)
        write_turnout_config "${CONFIG[$t]}" "${PORT[$t]}" "$BACKEND_PORT" "${extra[@]}"
        sed -i "s/^workers = 1$/workers = $SETUP_WORKERS/" "${CONFIG[$t]}" ;;
      nginx) write_nginx_config "${CONFIG[$t]}" "${PORT[$t]}" ;;
      haproxy) write_haproxy_config "${CONFIG[$t]}" "${PORT[$t]}" ;;
    esac
  done
  # Config checks first: a config error is reported as such, not as a failure to listen.
  for t in "${PROXIES[@]}"; do
    case $t in
      turnout) "$TURNOUT" -t -c "${CONFIG[$t]}" ;;
      turnout-base) "$BASELINE_BIN" -t -c "${CONFIG[$t]}" ;;
      nginx) "$NGINX" -t -c "${CONFIG[$t]}" -p "$TMP/nginx" ;;
      haproxy) "$HAPROXY" -c -f "${CONFIG[$t]}" ;;
    esac >"$TMP/$t-check.log" 2>&1 || FAILED[$t]="config rejected: $(tr '\n' ' ' <"$TMP/$t-check.log")"
    [[ -z ${FAILED[$t]} ]] || log "$t: ${FAILED[$t]}"
  done
}

target_command() { # NAME -> the command line, one word per line
  case $1 in
    turnout) printf '%s\n' "$TURNOUT" -c "${CONFIG[$1]}" ;;
    turnout-base) printf '%s\n' "$BASELINE_BIN" -c "${CONFIG[$1]}" ;;
    nginx) printf '%s\n' "$NGINX" -c "${CONFIG[$1]}" -p "$TMP/nginx" ;;
    haproxy) printf '%s\n' "$HAPROXY" -db -f "${CONFIG[$1]}" ;;
  esac
}

start_target() { # NAME
  local name=$1 scheme=http i workers="" cmd
  [[ -z ${FAILED[$name]} ]] || return 0
  ((SETUP_TLS)) && scheme=https
  mapfile -t cmd < <(target_command "$name")
  "${RUN[@]}" "${cmd[@]}" >"$TMP/$name.log" 2>&1 &
  PID[$name]=$!
  PIDS+=("${PID[$name]}")
  CPU_PIDS[$name]=${PID[$name]}
  RSS_PIDS[$name]=${PID[$name]}
  URL[$name]=$scheme://127.0.0.1:${PORT[$name]}
  if ! wait_ready "${URL[$name]}" "${PID[$name]}"; then
    FAILED[$name]="did not start or does not answer the echo call: $(tail -3 "$TMP/$name.log" | tr '\n' ' ')"
    log "$name: ${FAILED[$name]}"
    return 0
  fi
  if [[ $name == nginx ]]; then # the master forks the workers that serve
    for ((i = 0; i < 50; i++)); do
      workers=$(pgrep -P "${PID[nginx]}" | tr '\n' ' ' || true)
      (($(wc -w <<<"$workers") >= SETUP_WORKERS)) && break
      sleep 0.1
    done
    (($(wc -w <<<"$workers") >= SETUP_WORKERS)) || { FAILED[nginx]="not all $SETUP_WORKERS worker processes started"; return 0; }
    workers=${workers% }
    RSS_PIDS[nginx]=$workers
    CPU_PIDS[nginx]="${PID[nginx]} $workers"
  fi
  check_forwarding "$name"
  [[ -n ${FAILED[$name]} ]] || log "$name on ${URL[$name]} (pids ${CPU_PIDS[$name]}; $SETUP_WORKERS worker(s))"
}

# Equal work: the backend must see the same forwarded fields from every proxy.
check_forwarding() { # NAME
  local seen f
  seen=$(curl -sk --max-time 2 "${URL[$1]}/headers" | tr '[:upper:]' '[:lower:]') || seen=""
  for f in x-forwarded-for x-forwarded-proto x-forwarded-host; do
    [[ $seen == *"[\"$f\","* ]] || FAILED[$1]="does not forward $f (the backend saw: ${seen:-nothing})"
  done
  [[ -z ${FAILED[$1]} ]] || log "$1: ${FAILED[$1]}"
}

stop_target() { # NAME
  local name=$1 pid i
  [[ -n ${PID[$name]:-} ]] || return 0
  kill -TERM "${PID[$name]}" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do kill -0 "${PID[$name]}" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "${PID[$name]}" 2>/dev/null || true
  wait "${PID[$name]}" 2>/dev/null || true
  forget_pid "${PID[$name]}"
  # nginx's workers leave with their master; wait for them too so that the next setup's RSS
  # figures never see them.
  for pid in ${RSS_PIDS[$name]}; do
    for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  done
  PID[$name]=""
  CPU_PIDS[$name]=""
  RSS_PIDS[$name]=""
}

start_targets() { local t; for t in "${PROXIES[@]}"; do start_target "$t"; done; }
stop_targets() { local t; for t in "${PROXIES[@]}"; do stop_target "$t"; done; }

alive() { # NAME: still running? records why not
  local name=$1 rc=0 pid
  [[ -n ${FAILED[$name]} ]] && return 1
  if ! kill -0 "${PID[$name]}" 2>/dev/null; then
    wait "${PID[$name]}" 2>/dev/null || rc=$?
    forget_pid "${PID[$name]}"
    FAILED[$name]="exited during the benchmark (status $rc): $(tail -3 "$TMP/$name.log" | tr '\n' ' ')"
    log "$name: ${FAILED[$name]}"
    return 1
  fi
  for pid in ${RSS_PIDS[$name]}; do
    kill -0 "$pid" 2>/dev/null || { FAILED[$name]="worker process $pid died"; return 1; }
  done
}

# Resident memory (KiB) of the processes that serve (nginx: the sum over its workers).
target_rss_kib() { # NAME
  local pid sum=0 v
  for pid in ${RSS_PIDS[$1]}; do
    v=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null) || v=0
    sum=$((sum + ${v:-0}))
  done
  echo "$sum"
}
target_hwm_kib() { # NAME: the peak RSS (the sum of each process's peak)
  local pid sum=0 v
  for pid in ${RSS_PIDS[$1]}; do
    v=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status" 2>/dev/null) || v=0
    sum=$((sum + ${v:-0}))
  done
  echo "$sum"
}
target_fds() { # NAME: descriptors open in the processes that serve
  local pid sum=0 n
  for pid in ${RSS_PIDS[$1]}; do
    # shellcheck disable=SC2012
    n=$(ls "/proc/$pid/fd" 2>/dev/null | wc -l) || n=0
    sum=$((sum + n))
  done
  echo "$sum"
}
# utime+stime (jiffies) of all the proxy's processes, all threads included.
target_ticks() { # NAME
  local pid sum=0 v
  for pid in ${CPU_PIDS[$1]}; do
    v=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$pid/stat" 2>/dev/null) || v=0
    sum=$((sum + ${v:-0}))
  done
  echo "$sum"
}
