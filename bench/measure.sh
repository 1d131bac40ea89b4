# shellcheck shell=bash disable=SC2034  # arrays shared between the sourced files
# Measuring helpers of bench/run.sh (sourced, not run): other load on the machine, wrk runs and
# their results, formatting. The caller sets TMP, RUN, WRK, LUA, QUIET_WAIT, QUIET_BUSY and
# has sourced bench/targets.sh (for the pids of the running targets).

log() { printf '[bench] %s\n' "$*" >&2; }

#------------------------------------------------------------------------------
# Other load on the machine. /proc/stat: "total busy" jiffies of all cores.

cpu_sample() { awk '/^cpu / { t = 0; for (i = 2; i <= 9; i++) t += $i; print t, t - $5 - $6; exit }' /proc/stat; }
# utime+stime (jiffies) of the processes we run: the backend and every running proxy.
our_proc_ticks() {
  local t sum=0
  for t in "${!CPU_PIDS[@]}"; do
    [[ -n ${CPU_PIDS[$t]} ]] && sum=$((sum + $(target_ticks "$t")))
  done
  echo "$sum"
}
# utime+stime (jiffies) of this shell's reaped children (wrk, node, via timeout), from `times`.
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
measure_start() { read -r M_T0 M_B0 < <(cpu_sample); M_O0=$(($(our_proc_ticks) + $(child_ticks))); }
# Share of all cores used by processes other than ours during the run, in %.
measure_end() {
  local t1 b1 o1
  read -r t1 b1 < <(cpu_sample)
  o1=$(($(our_proc_ticks) + $(child_ticks)))
  awk -v t="$((t1 - M_T0))" -v b="$((b1 - M_B0))" -v o="$((o1 - M_O0))" \
    'BEGIN { f = t > 0 ? 100 * (b - o) / t : 0; if (f < 0) f = 0; printf "%.0f\n", f }'
}

#------------------------------------------------------------------------------
# wrk

run_wrk() { # OUTFILE THREADS CONNECTIONS SECONDS URL
  local rc=0
  timeout $(($4 + 30)) "${RUN[@]}" "$WRK" -t"$2" -c"$3" -d"$4"s --latency -s "$LUA" "$5/mcp" >"$1" 2>&1 || rc=$?
  return $rc
}

field() { sed -n "s/.*\\b$2=\\([0-9.]*\\).*/\\1/p" "$1" | head -1; }

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

add_errors() { # ARRAY-KEY "non2xx connect read write timeout"
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

#------------------------------------------------------------------------------
# Formatting

fmt_int() { awk -v x="$1" 'BEGIN { if (x == "") print "–"; else printf "%.0f\n", x }'; }
fmt_ms() { awk -v x="$1" 'BEGIN { if (x == "") print "–"; else printf "%.2f ms\n", x / 1000 }'; }
fmt_us() { awk -v x="$1" 'BEGIN { if (x == "") print "–"; else printf "%.0f µs\n", x }'; }
fmt_mib() { awk -v x="$1" 'BEGIN { if (x == "" || x == 0) print "–"; else printf "%.1f MiB\n", x / 1024 }'; }
fmt_kib() { awk -v x="$1" 'BEGIN { if (x == "") print "–"; else printf "%.1f KiB\n", x }'; }
errors_text() { # "non2xx connect read write timeout"
  local -a e
  read -r -a e <<<"${1:-0 0 0 0 0}"
  if ((e[0] + e[1] + e[2] + e[3] + e[4] == 0)); then echo "0"; return; fi
  echo "non-2xx ${e[0]}; socket: connect ${e[1]}, read ${e[2]}, write ${e[3]}, timeout ${e[4]}"
}
