#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test: unit and integration, first on the
# release build, then again under AddressSanitizer + UndefinedBehaviorSanitizer.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh

scripts/build.sh release
scripts/verify-unit.sh build
ctest --test-dir build --output-on-failure
scripts/unit-clocks.sh build/turnout_unit_tests

scripts/build.sh asan
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# The package test reads back a .deb of the release build already; one of sanitized programs
# would say nothing more.
ctest --test-dir build-asan --output-on-failure --label-exclude package

# Every libFuzzer target briefly on its seed corpus (clang + ASan + UBSan, build-fuzz/).
scripts/fuzz.sh all 10
