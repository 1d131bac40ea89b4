# Shared by bench/run.sh and bench/tls.sh (sourced, not run). The caller sets BENCH_SCRIPT
# (its name, for messages) and TMP (its scratch folder) before sourcing.

# Process bookkeeping: every pid the script starts goes into PIDS and is stopped on exit;
# TMP is removed after a good run and kept (and named) after a failed one.
PIDS=()
cleanup() {
  local rc=$? pid i
  trap - EXIT INT TERM
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do
    for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  if ((rc == 0)); then rm -rf "$TMP"; else echo "$BENCH_SCRIPT: failed (status $rc); logs kept in $TMP" >&2; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

USED_PORTS=" "
free_port() {
  local p i
  # Below the ephemeral range (so wrk's and the proxies' outgoing connections never take it).
  for ((i = 0; i < 200; i++)); do
    p=$((20000 + RANDOM % 12000))
    [[ $USED_PORTS == *" $p "* ]] && continue
    if [[ -z $(ss -Htln "( sport = :$p )" 2>/dev/null) ]]; then
      USED_PORTS+="$p "
      echo "$p"
      return 0
    fi
  done
  echo "$BENCH_SCRIPT: no free loopback port found" >&2
  return 1
}

# turnout as benchmarked: one worker, no access log, one pool of one backend; the event loop
# from IO_BACKEND (default epoll, the product's default; IO_BACKEND=auto measures io_uring).
# Usage: write_turnout_config FILE PORT BACKEND_PORT [extra lines of the [[listen]] table...]
write_turnout_config() {
  local file=$1 port=$2 backend_port=$3
  shift 3
  {
    printf '[proxy]\nworkers = 1\naccess_log = "off"\nlog_level = "warn"\ndrain_timeout = "1s"\n'
    printf 'io_backend = "%s"\n\n' "${IO_BACKEND:-epoll}"
    printf '[[listen]]\naddress = "127.0.0.1:%s"\n' "$port"
    (($# == 0)) || printf '%s\n' "$@"
    printf '\n[[upstream]]\nname = "bench"\n\n  [[upstream.pool]]\n  name = "main"\n  weight = 100\n'
    printf '  backends = ["127.0.0.1:%s"]\n\n[[route]]\npath_prefix = "/"\nupstream = "bench"\n' "$backend_port"
  } >"$file"
}

# How many idle connections turnout keeps per backend and worker (its keep-alive pool's cap),
# from the source, so that nginx can be given the same keep-alive cache.
turnout_pool_cap() {
  local cap
  cap=$(sed -n 's/.*max_idle_per_backend = \([0-9][0-9]*\).*/\1/p' "$ROOT/include/turnout/upstream/connection_pool.hpp" 2>/dev/null | head -1)
  echo "${cap:-4096}"
}

median() { tr ' ' '\n' | awk 'NF' | sort -g | awk '{ v[NR] = $1 } END {
  if (NR == 0) exit; if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b == 0) print "–"; else printf "%.2f×\n", a / b }'; }

# The words after the first, rotated left by the first: `rotated 1 a b c` prints "b c a".
rotated() {
  local k=$1
  shift
  local -a all=("$@")
  local n=${#all[@]} i
  for ((i = 0; i < n; i++)); do printf '%s\n' "${all[(i + k) % n]}"; done
}
