#!/usr/bin/env bash
# Runs the unit suite as if the machine had booted a minute ago and as if it had been up for
# ten days: a test that mixes a synthetic clock with the real one fails in one of the two.
# Needs a time namespace (unshare --time, as root); says so and does nothing without one.
# Usage: scripts/unit-clocks.sh PATH/TO/turnout_unit_tests
set -euo pipefail
tests=${1:?usage: scripts/unit-clocks.sh PATH/TO/turnout_unit_tests}
uptime=$(cut -d. -f1 /proc/uptime)
if ! unshare --time --fork true 2>/dev/null; then
  echo "unit-clocks: no time namespace here (unshare --time needs root); skipped"
  exit 0
fi
for target in 60 864000; do
  echo "unit-clocks: monotonic clock at ${target}s"
  unshare --time --fork --monotonic $((target - uptime)) "$tests" --minimal
done
