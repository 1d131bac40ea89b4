# shellcheck shell=bash disable=SC2034  # arrays shared between the sourced files
# The markdown report of bench/run.sh (sourced, not run): `write_report` prints it from the
# arrays bench/scenarios.sh filled. Figures of failed runs are never shown as numbers.

# Derived per-target figures: requests per CPU-second, added latency, memory per connection.
derive_figures() {
  local t s
  declare -gA PER_CPU_S ADDED_P50 ADDED_P99 PER_HOLD PER_BUSY
  for s in tp lat w2; do
    for t in "${PROXIES[@]}"; do
      PER_CPU_S[$s,$t]=$(awk -v c="${MED_CPU[$s,$t]:-}" 'BEGIN { if (c != "" && c > 0) printf "%.0f\n", 1e6 / c }')
    done
  done
  for t in "${PROXIES[@]}"; do
    if [[ -n ${MED_P50[lat,$t]:-} && -n ${MED_P50[lat,backend]:-} ]]; then
      ADDED_P50[$t]=$((${MED_P50[lat,$t]%.*} - ${MED_P50[lat,backend]%.*}))
      ADDED_P99[$t]=$((${MED_P99[lat,$t]%.*} - ${MED_P99[lat,backend]%.*}))
    fi
    for s in streams tls-streams idle; do
      [[ -z ${HOLD_FAILED[$s,$t]-x} && -n ${HOLD_WITH[$s,$t]:-} ]] || continue  # "" = counted
      PER_HOLD[$s,$t]=$(awk -v a="${HOLD_WITH[$s,$t]}" -v b="${HOLD_BEFORE[$s,$t]}" \
        -v n="$([[ $s == idle ]] && echo "$IDLE_CONNECTIONS" || echo "$STREAMS")" 'BEGIN { printf "%.2f\n", (a - b) / n }')
    done
    if [[ -z ${MEM_FAILED[$t]:-} && -n ${MEM_LOAD[$t]:-} && -n ${MEM_IDLE[$t]:-} ]]; then
      PER_BUSY[$t]=$(awk -v a="${MEM_LOAD[$t]}" -v b="${MEM_IDLE[$t]}" -v n="$MEM_CONNECTIONS" 'BEGIN { printf "%.2f\n", (a - b) / n }')
    fi
  done
}

# A ratio of two positive figures, or "–" (a difference at or below zero is noise, not a ratio).
pos_ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || a <= 0 || b <= 0) print "–"; else printf "%.2f×\n", a / b }'; }

# One row of the summary: FIGURE GOAL FORMAT(int|ms|us|kib) then one value per proxy ("" when
# that proxy has no figure; WHY_<proxy> text is not needed: the details say why).
summary_row() { # FIGURE GOAL FORMAT VALUE...
  local figure=$1 goal=$2 format=$3 i cells="" v
  shift 3
  local -a values=("$@")
  for ((i = 0; i < ${#PROXIES[@]}; i++)); do
    v=${values[i]}
    if [[ -z $v ]]; then cells+=" failed |"; continue; fi
    case $format in
      int) cells+=" $(fmt_int "$v") |" ;;
      ms) cells+=" $(fmt_ms "$v") |" ;;
      us) cells+=" $(fmt_us "$v") |" ;;
      kib) cells+=" $(fmt_kib "$v") |" ;;
    esac
  done
  # Ratios of turnout (the first proxy) against each other proxy.
  for ((i = 1; i < ${#PROXIES[@]}; i++)); do cells+=" $(pos_ratio "${values[0]}" "${values[i]}") |"; done
  echo "| $figure |$cells $goal |"
}

values_of() { # ARRAY KEY-PREFIX ("" for none): the array's value for each proxy, one per line
  local -n arr=$1
  local t
  for t in "${PROXIES[@]}"; do echo "${arr[$2$t]:-}"; done
}

summary_table() {
  local head="| figure |" sep="|---|" t i
  local -a v
  for t in "${PROXIES[@]}"; do head+=" ${LABEL[$t]%% *} |"; sep+="---:|"; done
  for ((i = 1; i < ${#PROXIES[@]}; i++)); do head+=" turnout / ${LABEL[${PROXIES[i]}]%% *} |"; sep+="---:|"; done
  echo "$head goal (issue 17) |"
  echo "$sep---|"
  if selected throughput; then
    mapfile -t v < <(values_of PER_CPU_S tp,); summary_row "requests per proxy CPU-second (1 worker, $CONNECTIONS conns)" "≥ 1.3× both" int "${v[@]}"
    mapfile -t v < <(values_of MED_RPS tp,); summary_row "throughput, req/s (1 worker, $CONNECTIONS conns)" "≥ 1.2× both" int "${v[@]}"
    mapfile -t v < <(values_of MED_P99 tp,); summary_row "p99 at $CONNECTIONS connections (1 worker)" "≤ 0.8× both" ms "${v[@]}"
  fi
  if selected latency; then
    mapfile -t v < <(values_of ADDED_P50 ""); summary_row "added latency, one connection, p50" "≤ 0.7× nginx" us "${v[@]}"
    mapfile -t v < <(values_of ADDED_P99 ""); summary_row "added latency, one connection, p99" "" us "${v[@]}"
  fi
  selected streams && { mapfile -t v < <(values_of PER_HOLD streams,); summary_row "memory per open silent SSE stream ($STREAMS streams)" "≤ 2 KiB" kib "${v[@]}"; }
  selected tls-streams && { mapfile -t v < <(values_of PER_HOLD tls-streams,); summary_row "memory per open silent TLS SSE stream ($STREAMS streams)" "close the gap" kib "${v[@]}"; }
  selected idle && { mapfile -t v < <(values_of PER_HOLD idle,); summary_row "memory per idle keep-alive connection ($IDLE_CONNECTIONS conns)" "" kib "${v[@]}"; }
  selected busy && { mapfile -t v < <(values_of PER_BUSY ""); summary_row "memory per busy keep-alive connection ($MEM_CONNECTIONS conns)" "" kib "${v[@]}"; }
  if selected workers2; then
    mapfile -t v < <(values_of PER_CPU_S w2,); summary_row "$WORKERS workers: requests per proxy CPU-second" "" int "${v[@]}"
    mapfile -t v < <(values_of MED_RPS w2,); summary_row "$WORKERS workers: throughput, req/s" "" int "${v[@]}"
    mapfile -t v < <(values_of MED_P99 w2,); summary_row "$WORKERS workers: p99 at $CONNECTIONS connections" "" ms "${v[@]}"
  fi
}

# The medians of one rounds scenario, per target.
rounds_table() { # S TARGETS...
  local s=$1 t counted
  shift
  echo "| target | req/s | p50 | p99 | CPU µs/req | req per CPU-second | runs counted | errors |"
  echo "|---|---:|---:|---:|---:|---:|---:|---|"
  for t in "$@"; do
    if [[ -z ${RPS[$s,$t]:-} ]]; then
      echo "| ${LABEL[$t]} | FAILED | | | | | 0/$ROUNDS | $(errors_text "${ERRS[$s,$t]:-}") |"
      continue
    fi
    counted=$(wc -w <<<"${RPS[$s,$t]}")
    echo "| ${LABEL[$t]} | $(fmt_int "${MED_RPS[$s,$t]}") | $(fmt_ms "${MED_P50[$s,$t]}") | $(fmt_ms "${MED_P99[$s,$t]}") | ${MED_CPU[$s,$t]:-–} | $(fmt_int "${PER_CPU_S[$s,$t]:-}") | $counted/$ROUNDS | $(errors_text "${ERRS[$s,$t]:-}") |"
  done
}

rounds_details() { # S TARGETS...
  local s=$1 t r p
  shift
  echo "| target | req/s per round | p99 per round (ms) | other load per round (%) |"
  echo "|---|---|---|---|"
  for t in "$@"; do
    r=${ROUND_RPS[$s,$t]:-–}; p=${ROUND_P99[$s,$t]:-–}; f=${FOREIGN[$s,$t]:-–}
    echo "| ${LABEL[$t]} | ${r% } | ${p% } | ${f% } |"
  done
}

failure_notes() { # S TARGETS...
  local s=$1 t
  shift
  for t in "$@"; do
    [[ -z ${FAIL_NOTES[$s,$t]:-} ]] ||
      { echo; echo "**$t: ${RUNS_FAILED[$s,$t]:-all} of $ROUNDS runs failed or were not made, left out of the medians:** ${FAIL_NOTES[$s,$t]% }"; }
  done
}

hold_table() { # S
  local s=$1 t per
  echo "| proxy | RSS before | RSS with them open | fds open | per connection |"
  echo "|---|---:|---:|---:|---:|"
  for t in "${PROXIES[@]}"; do
    if [[ -n ${HOLD_FAILED[$s,$t]:-} ]]; then
      echo "| ${LABEL[$t]} | FAILED: ${HOLD_FAILED[$s,$t]} | | | |"
      continue
    fi
    per=$(fmt_kib "${PER_HOLD[$s,$t]:-}")
    echo "| ${LABEL[$t]} | $(fmt_mib "${HOLD_BEFORE[$s,$t]:-}") | $(fmt_mib "${HOLD_WITH[$s,$t]:-}") | ${HOLD_FDS[$s,$t]:-–} | $per |"
  done
}

write_report() {
  local all_foreign="" k foreign_med foreign_max cpu_model turnout_rev nginx_ver haproxy_ver wrk_ver turnout_ver base_ver t
  derive_figures
  for k in "${!FOREIGN[@]}"; do all_foreign+="${FOREIGN[$k]}"; done
  foreign_med=$(median <<<"$all_foreign")
  foreign_max=$(tr ' ' '\n' <<<"$all_foreign" | awk 'NF && $1 > m { m = $1 } END { print m + 0 }')
  cpu_model=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
  turnout_rev=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
  git diff --quiet HEAD -- proxy include CMakeLists.txt 2>/dev/null || turnout_rev+=" + uncommitted changes"
  nginx_ver=$("$NGINX" -v 2>&1 | sed 's/.*nginx\///')
  haproxy_ver=$("$HAPROXY" -v | awk 'NR == 1 { print $3 }')
  wrk_ver=$("$WRK" -v 2>&1 | awk 'NR == 1 { print $2 }' || true)
  turnout_ver=$("$TURNOUT" --version 2>&1 | head -1 || true)
  [[ -z $BASELINE_BIN ]] || base_ver=$("$BASELINE_BIN" --version 2>&1 | head -1 || true)

  echo "### turnout vs nginx vs HAProxy ($(date -u +%Y-%m-%d))"
  echo
  echo "Machine: $(nproc) × $cpu_model ($(uname -sr)); the load generator, the proxy under test and"
  echo "the mock backend share these $(nproc) cores, the same for every proxy. CPU used by other"
  echo "processes during the measured wrk runs: median ${foreign_med:-0}%, max ${foreign_max}% of all cores."
  ((NICE == 0)) || echo "The load generators, the backend and the proxies ran at niceness $NICE."
  echo "Versions: $turnout_ver (git $turnout_rev, $BUILD_DIR), nginx $nginx_ver (nginx-light),"
  echo "HAProxy $haproxy_ver, wrk $wrk_ver, node $("$NODE" --version)."
  [[ -z $BASELINE_BIN ]] || echo "Baseline (turnout-base): $BASELINE_BIN, ${base_ver:-unknown version}, same configuration."
  if ((foreign_max > 2 * QUIET_BUSY)); then
    echo
    echo "**Warning: other processes used up to ${foreign_max}% of the machine during the runs; treat the"
    echo "figures as noisy and rerun on a quiet machine.**"
  fi
  echo
  echo "Command: \`$COMMAND\`"
  echo
  echo "Each proxy runs one worker (the workers2 rows: $WORKERS workers; HAProxy: threads) in front of the"
  echo "same \`turnout-mock-backend\`, with upstream keep-alive (nginx \`keepalive $POOL_CAP\`, turnout's"
  echo "idle-pool cap; HAProxy \`http-reuse always\`), **access logs off for all**, and the same fields"
  echo "toward the backend (checked through its \`/headers\` before measuring). Requests: a ${#BODY}-byte"
  echo "JSON-RPC \`tools/call\` POST (bench/jsonrpc_post.lua). Rounds are interleaved and rotate; figures"
  echo "are medians over the runs that succeeded; a failed run is left out, never counted as 0."
  echo "Ratios are turnout / the other proxy: higher is better for rates, lower for times and memory."
  echo
  summary_table
  if selected throughput; then
    echo
    echo "#### Throughput, 1 worker: \`${ROUNDS_DESC[tp]}\`"
    echo
    rounds_table tp "${TARGETS[@]}"
    failure_notes tp "${TARGETS[@]}"
  fi
  if selected latency; then
    echo
    echo "#### Latency at one connection: \`${ROUNDS_DESC[lat]}\`"
    echo
    echo "Added latency: the proxy's median p50 (p99) minus the backend's own, measured directly in the"
    echo "same rounds."
    echo
    rounds_table lat "${TARGETS[@]}"
    echo
    echo "| proxy | added p50 | added p99 |"
    echo "|---|---:|---:|"
    for t in "${PROXIES[@]}"; do echo "| ${LABEL[$t]} | $(fmt_us "${ADDED_P50[$t]:-}") | $(fmt_us "${ADDED_P99[$t]:-}") |"; done
    failure_notes lat "${TARGETS[@]}"
  fi
  if selected busy; then
    echo
    echo "#### Memory with $MEM_CONNECTIONS busy keep-alive connections: \`wrk -t$WRK_THREADS -c$MEM_CONNECTIONS -d${MEM_DURATION}s\`"
    echo
    echo "RSS (VmRSS; nginx: its worker) right after start, and read at $((MEM_DURATION - 1))s of the run; the"
    echo "difference per connection includes the upstream connections the proxy opened for them."
    echo
    echo "| proxy | RSS idle | RSS busy | fds open | peak RSS | per conn | req/s | errors |"
    echo "|---|---:|---:|---:|---:|---:|---:|---|"
    for t in "${PROXIES[@]}"; do
      if [[ -n ${MEM_FAILED[$t]:-} ]]; then echo "| ${LABEL[$t]} | FAILED: ${MEM_FAILED[$t]} | | | | | | $(errors_text "${MEM_ERRS[$t]:-}") |"; continue; fi
      echo "| ${LABEL[$t]} | $(fmt_mib "${MEM_IDLE[$t]:-}") | $(fmt_mib "${MEM_LOAD[$t]:-}") | ${MEM_FDS[$t]:-–} | $(fmt_mib "${MEM_HWM[$t]:-}") | $(fmt_kib "${PER_BUSY[$t]:-}") | $(fmt_int "${MEM_RPS[$t]:-}") | $(errors_text "${MEM_ERRS[$t]:-}") |"
    done
  fi
  for k in streams tls-streams idle; do
    selected "$k" || continue
    echo
    echo "#### Memory per held connection: ${HOLD_DESC[$k]}"
    echo
    echo "Each proxy fresh (started for this figure alone), RSS (nginx: its worker) after one request and"
    echo "again with every connection open (\`bench/hold_connections.mjs --mode $([[ $k == idle ]] && echo idle || echo stream)\`, $OPEN_CONCURRENCY"
    echo "being opened at a time); per connection = the difference / the count, upstream side included."
    echo
    hold_table "$k"
  done
  if selected workers2; then
    echo
    echo "#### $WORKERS workers each: \`${ROUNDS_DESC[w2]}\`"
    echo
    echo "turnout \`workers = $WORKERS\`, nginx \`worker_processes $WORKERS\`, HAProxy \`nbthread $WORKERS\`; the mock"
    echo "backend with $WORKERS threads. CPU per request summed over all of a proxy's processes and threads."
    echo
    rounds_table w2 "${PROXIES[@]}"
    failure_notes w2 "${PROXIES[@]}"
  fi
  echo
  echo "<details><summary>Per round</summary>"
  for k in tp lat w2; do
    [[ -n ${ROUNDS_DESC[$k]:-} ]] || continue
    echo
    echo "\`${ROUNDS_DESC[$k]}\`"
    echo
    if [[ $k == w2 ]]; then rounds_details "$k" "${PROXIES[@]}"; else rounds_details "$k" "${TARGETS[@]}"; fi
  done
  echo
  echo "</details>"
}
