#!/usr/bin/env bash
# Checks systemd/turnout.service with `systemd-analyze verify` when the tool is there (skips,
# saying so, when it is not). verify insists that ExecStart= binaries exist, and the unit names
# /usr/bin/turnout: it checks a copy whose paths point at the build instead. Any complaint
# (an unknown key is only a warning to systemd) fails the check, and so does an exposure score
# (systemd-analyze security) above 2.5.
# Usage: scripts/verify-unit.sh [BUILD_DIR]   (default build/)
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v systemd-analyze >/dev/null; then
  echo "verify-unit: systemd-analyze not installed, unit file not checked"
  exit 0
fi
build=$(realpath "${1:-build}")
[[ -x "$build/turnout" ]] || { echo "verify-unit: $build/turnout is not built" >&2; exit 1; }

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
sed "s#/usr/bin/turnout#$build/turnout#g" systemd/turnout.service > "$dir/turnout.service"
out=$(systemd-analyze verify "$dir/turnout.service" 2>&1) || { echo "$out" >&2; exit 1; }
if [[ -n "$out" ]]; then
  echo "$out" >&2
  echo "verify-unit: systemd-analyze complained about systemd/turnout.service" >&2
  exit 1
fi
# The sandbox must not erode unnoticed: systemd's own exposure score (0 = locked down, 10 =
# none), at most 2.5 (it is 1.6: what is left is network access, the notify socket and the
# low-port capability a proxy needs).
if ! systemd-analyze security --offline=true --threshold=25 "$dir/turnout.service" >"$dir/security.txt" 2>&1; then
  cat "$dir/security.txt" >&2
  echo "verify-unit: the unit's exposure score rose above 2.5" >&2
  exit 1
fi
echo "verify-unit: $(grep -o 'Overall exposure level.*' "$dir/security.txt")"
echo "verify-unit: systemd/turnout.service ok ($(systemd-analyze --version | head -1))"
