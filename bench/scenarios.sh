# shellcheck shell=bash disable=SC2034  # arrays shared between the sourced files
# The scenarios of bench/run.sh (sourced, not run). Each fills arrays keyed "SCENARIO,TARGET"
# that bench/report.sh reads; a run that fails is recorded with its reason and never as 0.

declare -A RPS P50 P99 CPU ERRS FOREIGN ROUND_RPS ROUND_P99 RUNS_FAILED FAIL_NOTES ROUNDS_DESC
declare -A MEM_IDLE MEM_LOAD MEM_FDS MEM_RPS MEM_ERRS MEM_HWM MEM_FAILED
declare -A HOLD_BEFORE HOLD_WITH HOLD_FDS HOLD_FAILED HOLD_DESC
declare -A MED_RPS MED_P50 MED_P99 MED_CPU

# Interleaved rounds of wrk over TARGETS: round r starts at the r-th target, so no target always
# runs first (after the quiet wait) or right after the same neighbour. Per run: req/s, p50, p99,
# the target's CPU per request (all its processes and threads), errors, other load. Then the
# medians over the runs that succeeded: MED_RPS/P50/P99/CPU[S,TARGET].
run_rounds() { # S THREADS CONNECTIONS SECONDS TARGETS...
  local s=$1 threads=$2 conns=$3 secs=$4 r t out rc ticks0 ticks1 foreign parsed why rps p50 p99 e1 e2 e3 e4 e5
  shift 4
  local -a targets=("$@")
  ROUNDS_DESC[$s]="wrk -t$threads -c$conns -d${secs}s --latency -s bench/jsonrpc_post.lua URL/mcp"
  log "$s: $ROUNDS interleaved rounds of ${WARMUP}s warm-up + ${secs}s, wrk -t$threads -c$conns"
  for ((r = 1; r <= ROUNDS; r++)); do
    for t in $(rotated $((r - 1)) "${targets[@]}"); do
      alive "$t" || continue
      wait_quiet
      run_wrk "$TMP/warmup.txt" "$threads" "$conns" "$WARMUP" "${URL[$t]}" || true
      out=$TMP/wrk-$s-$t-$r.txt
      rc=0
      measure_start
      ticks0=$(target_ticks "$t")
      run_wrk "$out" "$threads" "$conns" "$secs" "${URL[$t]}" || rc=$?
      ticks1=$(target_ticks "$t")
      foreign=$(measure_end)
      FOREIGN[$s,$t]+="$foreign "
      { echo "=== $s $t round $r: wrk -t$threads -c$conns -d${secs}s --latency -s bench/jsonrpc_post.lua ${URL[$t]}/mcp (exit $rc)"
        cat "$out"; echo; } >>"$WRK_LOG"
      parsed=$(parse_wrk "$out") || parsed=""
      if [[ -n $parsed ]]; then
        read -r rps p50 p99 e1 e2 e3 e4 e5 <<<"$parsed"
        add_errors "$s,$t" "$e1 $e2 $e3 $e4 $e5"
      fi
      why=$(run_failure "$rc" "$parsed")
      if [[ -n $why ]]; then
        RUNS_FAILED[$s,$t]=$((${RUNS_FAILED[$s,$t]:-0} + 1))
        FAIL_NOTES[$s,$t]+="round $r: $why. "
        ROUND_RPS[$s,$t]+="failed "; ROUND_P99[$s,$t]+="failed "
        log "$s round $r $t: FAILED ($why), left out of the medians; see $WRK_LOG"
      else
        RPS[$s,$t]+="$rps "; P50[$s,$t]+="$p50 "; P99[$s,$t]+="$p99 "
        ROUND_RPS[$s,$t]+="$(fmt_int "$rps") "; ROUND_P99[$s,$t]+="$(awk -v x="$p99" 'BEGIN { printf "%.2f", x / 1000 }') "
        # CPU time the target spent per request: steadier than req/s on a shared machine,
        # since it does not depend on how the cores were shared with wrk and the backend.
        CPU[$s,$t]+="$(awk -v d="$((ticks1 - ticks0))" -v hz="$(getconf CLK_TCK)" -v n="$rps" -v d2="$secs" \
          'BEGIN { printf "%.2f", (n > 0 ? d * 1e6 / hz / (n * d2) : 0) }') "
        log "$s round $r $t: $rps req/s, p50 ${p50}us, p99 ${p99}us; other load ${foreign}%"
      fi
      alive "$t" || true
    done
  done
  for t in "${targets[@]}"; do
    MED_RPS[$s,$t]=$(median <<<"${RPS[$s,$t]:-}")
    MED_P50[$s,$t]=$(median <<<"${P50[$s,$t]:-}")
    MED_P99[$s,$t]=$(median <<<"${P99[$s,$t]:-}")
    MED_CPU[$s,$t]=$(median <<<"${CPU[$s,$t]:-}")
    [[ -n ${RPS[$s,$t]:-} || -n ${FAIL_NOTES[$s,$t]:-} ]] ||
      FAIL_NOTES[$s,$t]="not measured: ${FAILED[$t]:-no run}. "
  done
}

# RSS with MEM_CONNECTIONS busy keep-alive connections, read one second before the end of the
# run, against MEM_IDLE (read right after start).
busy_memory() {
  local t out wrk_pid rc parsed why rps p50 p99 e1 e2 e3 e4 e5
  log "busy: wrk -t$WRK_THREADS -c$MEM_CONNECTIONS -d${MEM_DURATION}s per proxy, RSS read at $((MEM_DURATION - 1))s"
  for t in "${PROXIES[@]}"; do
    alive "$t" || { MEM_FAILED[$t]="not measured: ${FAILED[$t]}"; continue; }
    wait_quiet
    out=$TMP/wrk-$t-mem.txt
    run_wrk "$out" "$WRK_THREADS" "$MEM_CONNECTIONS" "$MEM_DURATION" "${URL[$t]}" &
    wrk_pid=$!
    PIDS+=("$wrk_pid")
    sleep $((MEM_DURATION - 1))
    MEM_LOAD[$t]=$(target_rss_kib "$t")
    MEM_FDS[$t]=$(target_fds "$t")
    rc=0
    wait "$wrk_pid" || rc=$?
    forget_pid "$wrk_pid"
    { echo "=== busy $t: wrk -t$WRK_THREADS -c$MEM_CONNECTIONS -d${MEM_DURATION}s --latency -s bench/jsonrpc_post.lua ${URL[$t]}/mcp (exit $rc)"
      cat "$out"; echo; } >>"$WRK_LOG"
    parsed=$(parse_wrk "$out") || parsed=""
    if [[ -n $parsed ]]; then
      read -r rps p50 p99 e1 e2 e3 e4 e5 <<<"$parsed"
      MEM_ERRS[$t]="$e1 $e2 $e3 $e4 $e5"
    fi
    MEM_HWM[$t]=$(target_hwm_kib "$t")
    why=$(run_failure "$rc" "$parsed")
    if [[ -n $why ]]; then
      # Connections that failed hold no memory: the RSS of this run is not comparable either.
      MEM_FAILED[$t]=$why
      log "busy $t: FAILED ($why); its figures are left out; see $WRK_LOG"
    else
      MEM_RPS[$t]=$rps
      log "busy $t: idle ${MEM_IDLE[$t]} KiB, ${MEM_LOAD[$t]} KiB with $MEM_CONNECTIONS connections (${MEM_FDS[$t]} fds open), $rps req/s"
    fi
    alive "$t" || true
  done
}

# Memory per held connection: for each proxy in turn, a fresh process (so that memory freed by
# earlier scenarios and kept by its allocator does not hide what the connections take), its RSS
# after one request, then COUNT connections opened by bench/hold_connections.mjs (MODE stream:
# silent SSE streams; idle: idle keep-alive connections after one answered POST) and held while
# the RSS is read again. A run counts only if every connection opened and stayed open (and, for
# streams, got no byte after its head) until the RSS was read.
hold_scenario() { # S MODE TLS COUNT
  local s=$1 mode=$2 tls=$3 count=$4 t holder i limit line held closed data
  if [[ $mode == stream ]]; then
    HOLD_DESC[$s]="$count silent SSE streams (GET /mcp, Accept: text/event-stream)"
  else
    HOLD_DESC[$s]="$count idle keep-alive connections (one POST answered each)"
  fi
  ((tls == 0)) || HOLD_DESC[$s]+=", TLS from the client to the proxy"
  log "$s: ${HOLD_DESC[$s]} per proxy, $OPEN_CONCURRENCY being opened at a time"
  configure_targets 1 "$tls" "$([[ $mode == stream ]] && echo 1 || echo 0)"
  limit=$((60 + count / 20)) # seconds to open them all: far more than loopback needs
  for t in "${PROXIES[@]}"; do
    start_target "$t"
    alive "$t" || { HOLD_FAILED[$s,$t]="not measured: ${FAILED[$t]}"; stop_target "$t"; continue; }
    sleep 0.5
    HOLD_BEFORE[$s,$t]=$(target_rss_kib "$t")
    "${RUN[@]}" "$NODE" "$ROOT/bench/hold_connections.mjs" --url "${URL[$t]}/mcp" --count "$count" \
      --mode "$mode" --concurrency "$OPEN_CONCURRENCY" >"$TMP/hold-$s-$t.txt" 2>&1 &
    holder=$!
    PIDS+=("$holder")
    line=""
    for ((i = 0; i < limit * 5; i++)); do
      line=$(grep -m1 '^OPEN ' "$TMP/hold-$s-$t.txt" || true)
      [[ -n $line ]] && break
      kill -0 "$holder" 2>/dev/null || break
      sleep 0.2
    done
    if [[ -n $line ]]; then
      sleep 1 # let the last connections settle in the proxy (and its upstream side)
      HOLD_WITH[$s,$t]=$(target_rss_kib "$t")
      HOLD_FDS[$s,$t]=$(target_fds "$t")
    fi
    kill -TERM "$holder" 2>/dev/null || true
    wait "$holder" 2>/dev/null || true
    forget_pid "$holder"
    HOLD_FAILED[$s,$t]=$(hold_failure "$count" "$mode" "$TMP/hold-$s-$t.txt")
    alive "$t" || HOLD_FAILED[$s,$t]="the proxy died: ${FAILED[$t]}"
    if [[ -n ${HOLD_FAILED[$s,$t]} ]]; then
      log "$s $t: FAILED (${HOLD_FAILED[$s,$t]}); left out"
      { echo "=== $s $t (failed)"; cat "$TMP/hold-$s-$t.txt"; tail -5 "$TMP/$t.log"; echo; } >>"$WRK_LOG"
    else
      log "$s $t: ${HOLD_BEFORE[$s,$t]} KiB before, ${HOLD_WITH[$s,$t]} KiB with $count held (${HOLD_FDS[$s,$t]} fds)"
    fi
    stop_target "$t"
  done
}

# Why a hold run cannot be counted ("" when it can), from the opener's output.
hold_failure() { # COUNT MODE FILE
  local open held closed data failed first
  open=$(sed -n 's/^OPEN .* open=\([0-9]*\).*/\1/p' "$3" | head -1)
  failed=$(sed -n 's/^OPEN .* failed=\([0-9]*\).*/\1/p' "$3" | head -1)
  first=$(sed -n 's/^OPEN .* first_error=\(.*\)$/\1/p' "$3" | head -1)
  [[ -n $open ]] || { echo "the opener reported nothing: $(tail -2 "$3" | tr '\n' ' ')"; return; }
  ((open == $1)) || { echo "$failed of $1 connections failed to open (first: $first)"; return; }
  held=$(sed -n 's/^HELD open=\([0-9]*\).*/\1/p' "$3" | head -1)
  closed=$(sed -n 's/^HELD .* closed_early=\([0-9]*\).*/\1/p' "$3" | head -1)
  data=$(sed -n 's/^HELD .* with_data=\([0-9]*\).*/\1/p' "$3" | head -1)
  [[ -n $held ]] || { echo "the opener did not report what it held"; return; }
  ((closed == 0)) || { echo "$closed of $1 connections were closed by the other side while held"; return; }
  [[ $2 != stream ]] || ((data == 0)) || echo "$data of $1 streams received data after their head (not silent)"
}
