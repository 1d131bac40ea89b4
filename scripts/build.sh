#!/usr/bin/env bash
# Configures and builds one flavour of turnout. Usage: scripts/build.sh [release|asan] [targets...]
#   release → build/       (RelWithDebInfo: what the demo and the benchmark run)
#   asan    → build-asan/  (AddressSanitizer + UndefinedBehaviorSanitizer)
set -euo pipefail
cd "$(dirname "$0")/.."

# ccache keyed on paths relative to the checkout, so a fresh clone (as CI makes) reuses what
# an earlier build in another folder compiled.
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=true
# Precompiled headers are uncacheable unless ccache may ignore their defines and timestamps.
export CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime

flavour=${1:-release}
shift || true
case "$flavour" in
  release) dir=build; flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo) ;;
  # The sanitized build runs on epoll only (its turnout is turnout-epoll's code): building the
  # whole proxy a second time under the sanitizers would cost CI ~8 minutes, and the code on
  # io_uring is Asio's; the release build runs every test on io_uring.
  asan) dir=build-asan; flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DTURNOUT_SANITIZE=ON -DTURNOUT_IO_URING=OFF) ;;
  *) echo "usage: scripts/build.sh [release|asan] [targets...]" >&2; exit 2 ;;
esac

# Configure only once: re-running cmake on an existing tree is what ninja does by itself.
if [[ ! -f "$dir/build.ninja" ]]; then
  cmake -S . -B "$dir" -G Ninja "${flags[@]}" >/dev/null
fi
targets=()
for t in "$@"; do targets+=(--target "$t"); done
cmake --build "$dir" -j"$(nproc)" "${targets[@]}"
