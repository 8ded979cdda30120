#!/usr/bin/env bash
# Before and after, in one run: builds REV (a commit, e.g. the one a change started from)
# in a worktree of its own, then runs each benchmark on that build and on build/ (this
# tree, built first with scripts/test.sh or scripts/run.sh) in turn, ROUNDS times (base,
# head, base, head, ...), so both see the same machine. Prints each run's summary lines
# (rates and ratios against the baseline each benchmark measures itself); the full output
# of every run is kept under the work folder it names.
#   scripts/bench-compare.sh REV [broker|resolver|mqtt|apns|link|e2e ...]
#   ROUNDS=2 (default) BASE_DIR=/tmp/pp-bench-base-<rev> (kept for the next run)
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { sed -n 2,9p "$0"; exit 2; }
rev=$(git rev-parse --short "$1")
shift
areas=("$@")
[ ${#areas[@]} -gt 0 ] || areas=(broker mqtt e2e)
ROUNDS=${ROUNDS:-2}
HEAD_BUILD=$(pwd)/build
BASE_DIR=${BASE_DIR:-/tmp/pp-bench-base-$rev}
[ -x "$HEAD_BUILD/broker/pushpipe-broker" ] || { echo "build build/ first" >&2; exit 2; }

if [ ! -d "$BASE_DIR/src" ]; then
  git worktree add --detach "$BASE_DIR/src" "$rev" >/dev/null
fi
build_type=$(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$HEAD_BUILD/CMakeCache.txt")
cmake -S "$BASE_DIR/src" -B "$BASE_DIR/build" -DCMAKE_BUILD_TYPE="${build_type:-RelWithDebInfo}" >/dev/null
make -C "$BASE_DIR/build" -j2 >/dev/null
out=$(mktemp -d /tmp/pp-bench-compare.XXXXXX)
echo "base $rev: $BASE_DIR/build; head $(git rev-parse --short HEAD)$(git diff --quiet || echo +changes): build/; outputs in $out"

summary() { grep -E 'ratio|RATIO|RESULT|frames/s|msg/s|users/s|notifications/s' "$1" | grep -v '^ *round' || true; }
for a in "${areas[@]}"; do
  for r in $(seq 1 "$ROUNDS"); do
    for side in base head; do
      if [ $side = base ]; then b=$BASE_DIR/build; src=$BASE_DIR/src; else b=$HEAD_BUILD; src=.; fi
      log=$out/$a-$side-$r.log
      printf '\n==== bench/%s, %s, round %d ====\n' "$a" "$side" "$r"
      if sh "$src/bench/$a/run.sh" "$b" >"$log" 2>&1; then summary "$log"; else
        echo "(failed, rc $?; see $log)"; tail -3 "$log"; fi
    done
  done
done
