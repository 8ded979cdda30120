#!/usr/bin/env bash
# Runs every benchmark, one after the other, on the build in build/ (run scripts/run.sh or
# scripts/test.sh first). Each prints its own rate and its ratio to a baseline measured in
# the same run. Run it on a quiet machine: the figures are only as steady as the machine.
#   scripts/bench.sh [broker|resolver|mqtt|apns|link|e2e ...]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
areas=("$@")
[ ${#areas[@]} -gt 0 ] || areas=(broker resolver mqtt apns e2e)
for a in "${areas[@]}"; do
  printf '\n==== bench/%s ====\n' "$a"
  sh "bench/$a/run.sh" "$BUILD"
done
