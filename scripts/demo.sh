#!/usr/bin/env bash
# Installs what is missing, builds, starts three demo MCP backends (the mock backend on ports
# 3001 and 3002 for pool "blue", 3011 for pool "green") and runs turnout in the foreground on
# conf/turnout.toml. Ctrl-C stops turnout (gracefully) and the backends.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
scripts/build.sh release turnout turnout-epoll turnoutctl turnout-mock-backend
mkdir -p run

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

start_backend() { # name port
  build/turnout-mock-backend --listen "127.0.0.1:$2" --name "$1" >"run/$1.log" 2>&1 &
  pids+=($!)
}
start_backend blue-1 3001
start_backend blue-2 3002
start_backend green-1 3011

cat <<'EOT'
turnout demo: proxy on http://127.0.0.1:8080/mcp, status on http://127.0.0.1:9901/healthz
Try, from another terminal:
  curl -si http://127.0.0.1:8080/mcp -H 'Content-Type: application/json' \
    -H 'Accept: application/json, text/event-stream' \
    -d '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"curl","version":"1"}}}'
  curl -s http://127.0.0.1:8080/mcp -H 'Content-Type: application/json' \
    -d '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"whoami","arguments":{}}}'
  curl -sN http://127.0.0.1:8080/mcp -H 'Accept: text/event-stream'      # an SSE stream
EOT
cat <<EOT
The admin client is built too: $PWD/build/turnoutctl
  $PWD/build/turnoutctl -s $PWD/run/turnout.sock status
  $PWD/build/turnoutctl -s $PWD/run/turnout.sock weights mcp blue=90 green=10
EOT
build/turnout -c conf/turnout.toml &
turnout_pid=$!
pids+=("$turnout_pid")
trap 'kill -TERM "$turnout_pid" 2>/dev/null || true' INT TERM
wait "$turnout_pid" || true
