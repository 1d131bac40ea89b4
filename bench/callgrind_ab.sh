#!/usr/bin/env bash
# Instructions per request of one turnout binary under two configurations, counted by
# valgrind's callgrind: unlike time, the count does not depend on what else the machine does,
# so it measures a configuration's cost on a busy machine too. For each side: start turnout
# under callgrind, send WARMUP requests, zero the counters (callgrind_control -z), send COUNT
# requests (bench/post_count.mjs, 10 keep-alive connections), dump, and divide.
#   bench/callgrind_ab.sh TURNOUT CONFIG_A CONFIG_B [COUNT=2000] [STYLE]
# CONFIG_A/B as bench/ab.sh's AB_CONFIG_A/B (@PORT@, @BACKEND@); STYLE "2026" sends the
# routing headers and an Origin. Talks only to 127.0.0.1; needs valgrind, node and
# build/turnout-mock-backend.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BENCH_SCRIPT=callgrind_ab.sh
TMP=$(mktemp -d /tmp/turnout-callgrind.XXXXXX)
source bench/lib.sh
BIN=${1:?usage: bench/callgrind_ab.sh TURNOUT CONFIG_A CONFIG_B [COUNT] [STYLE]}
CONFIGS=("${2:?config A}" "${3:?config B}")
COUNT=${4:-2000}
STYLE=${5:-}
WARMUP=200

backend_port=$(free_port)
"$ROOT/build/turnout-mock-backend" --listen "127.0.0.1:$backend_port" --name cg >/dev/null 2>&1 &
PIDS+=($!)
for side in 0 1; do
  name=$([[ $side == 0 ]] && echo A || echo B)
  port=$(free_port)
  sed "s|@PORT@|$port|g; s|@BACKEND@|127.0.0.1:$backend_port|g" "${CONFIGS[side]}" >"$TMP/$name.toml"
  valgrind --tool=callgrind --callgrind-out-file="$TMP/$name.%p.out" "$BIN" -c "$TMP/$name.toml" \
    >"$TMP/$name.log" 2>&1 &
  pid=$!
  PIDS+=("$pid")
  for ((i = 0; i < 600; i++)); do
    [[ -n $(ss -Htln "( sport = :$port )" 2>/dev/null) ]] && break
    sleep 0.1
  done
  node bench/post_count.mjs "$port" "$WARMUP" 10 "$STYLE"
  callgrind_control -z "$pid" >/dev/null 2>&1
  node bench/post_count.mjs "$port" "$COUNT" 10 "$STYLE"
  callgrind_control -d "$pid" >/dev/null 2>&1
  dump=$(ls -t "$TMP/$name.$pid.out".* | head -1)
  ir=$(sed -n 's/^summary: *//p' "$dump" | awk '{ print $1 }')
  IR[side]=$ir
  awk -v n="$name" -v ir="$ir" -v c="$COUNT" 'BEGIN { printf "%s: %.0f instructions per request (%d requests)\n", n, ir / c, c }'
  cp "$dump" "$TMP/../turnout-callgrind-$name.out" 2>/dev/null || true
  kill -TERM "$pid"
  wait "$pid" 2>/dev/null || true
done
awk -v a="${IR[0]}" -v b="${IR[1]}" 'BEGIN { printf "B against A: %+.1f %% instructions per request\n", (b / a - 1) * 100 }'
