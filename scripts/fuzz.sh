#!/usr/bin/env bash
# Builds turnout's libFuzzer targets (tests/fuzz/, clang + ASan + UBSan) into build-fuzz/ and
# runs them on their seed corpus. Usage: scripts/fuzz.sh [TARGET|all] [SECONDS]
#   TARGET   request_head | response_head | chunked_peek | event_stream | session_id | jsonrpc | admin_body | config | nginx | all (default)
#   SECONDS  how long each target runs (default 60)
# Each target runs on a scratch copy of tests/fuzz/corpus/TARGET (new inputs stay out of the
# repository); a crash leaves its input in build-fuzz/findings/TARGET/ and the script exits
# non-zero. Set FUZZ_KEEP=1 to keep the scratch corpora, FUZZ_RUNS=N to stop a target after N
# executions (a campaign: FUZZ_RUNS=10000000 scripts/fuzz.sh all 1800).
set -euo pipefail
cd "$(dirname "$0")/.."

all_targets=(request_head response_head chunked_peek event_stream session_id jsonrpc admin_body edge_origin config nginx dns_answer)
which=${1:-all}
seconds=${2:-60}
if [[ "$which" == all ]]; then
  targets=("${all_targets[@]}")
elif [[ " ${all_targets[*]} " == *" $which "* ]]; then
  targets=("$which")
else
  echo "usage: scripts/fuzz.sh [${all_targets[*]// /|}|all] [SECONDS]" >&2
  exit 2
fi

# clang and libFuzzer from Debian: on Debian 12, clang -fsanitize=fuzzer links
# libclang_rt.fuzzer-x86_64.a, which libclang-rt-14-dev ships (clang depends on it).
packages=(clang libclang-rt-14-dev cmake ninja-build pkg-config libboost1.81-dev libssl-dev
          libtomlplusplus-dev node-llhttp)
scripts/apt-ensure.sh fuzz "${packages[@]}"

export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=true
dir=build-fuzz
if [[ ! -f "$dir/build.ninja" ]]; then
  launcher=()
  command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
  CC=clang CXX=clang++ cmake -S tests/fuzz -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    "${launcher[@]}" >/dev/null
fi
build_targets=()
for t in "${targets[@]}"; do build_targets+=(--target "fuzz_$t"); done
cmake --build "$dir" -j"$(nproc)" "${build_targets[@]}"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
status=0
summary=()
for t in "${targets[@]}"; do
  work="$dir/corpus/$t"
  findings="$dir/findings/$t"
  rm -rf "$work"
  mkdir -p "$work" "$findings"
  cp tests/fuzz/corpus/"$t"/* "$work"/
  log="$dir/$t.log"
  echo "fuzz: $t for ${seconds}s"
  extra=()
  # The token codec keeps ids too long for a token in a bounded process-wide registry (a deque):
  # its runs allocate and free unevenly, which makes libFuzzer run LeakSanitizer over the whole
  # heap on many of them (300 executions/s instead of thousands). Leaks there are the unit
  # tests' to find (ASan build, detect_leaks=1).
  [[ "$t" == session_id ]] && extra=(-detect_leaks=0)
  [[ -n "${FUZZ_RUNS:-}" ]] && extra+=(-runs="$FUZZ_RUNS")
  rc=0
  "$dir/fuzz_$t" "$work" "${extra[@]}" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$findings/" >"$log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
  if ((rc != 0)); then
    status=$rc
    tail -n 60 "$log" >&2
    summary+=("$t: FAILED (exit $rc) after ${execs:-?} executions; input in $findings/, log $log")
  else
    took=$(sed -n 's/.*Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -n1)
    summary+=("$t: ${execs:-?} executions in ${took:-$seconds}s, no crash")
  fi
  [[ "${FUZZ_KEEP:-0}" == 1 ]] || rm -rf "$work"
done
printf 'fuzz: %s\n' "${summary[@]}"
exit "$status"
