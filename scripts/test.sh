#!/usr/bin/env bash
# The README's test command: installs what is missing, builds, runs every test through
# ctest, then does it all again in an AddressSanitizer + UndefinedBehaviorSanitizer build,
# then runs the frame decoder's fuzzer for a bounded time.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh

JOBS=${JOBS:-2}
CTEST_JOBS=${CTEST_JOBS:-1}

step() { printf '\n==== %s ====\n' "$*"; }

step "build (RelWithDebInfo) in build/"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$JOBS"

step "tests"
ctest --test-dir build --output-on-failure -j"$CTEST_JOBS" --timeout 900

step "build (ASan + UBSan) in build-asan/"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DPP_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$JOBS"

step "tests under ASan + UBSan"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
ctest --test-dir build-asan --output-on-failure -j"$CTEST_JOBS" --timeout 900

if [ -x scripts/fuzz.sh ]; then
  step "fuzzing the client frame decoder (${FUZZ_SECONDS:-60} s)"
  bash scripts/fuzz.sh
fi

step "all tests passed"
