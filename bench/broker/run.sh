#!/bin/sh
# Starts pushpipe-broker on free ports, runs pp-bench-broker against it, stops the broker.
# usage: bench/broker/run.sh [BUILD_DIR] [pp-bench-broker options...]
set -eu
BUILD=${1:-build}
[ $# -gt 0 ] && shift
BROKER=$BUILD/broker/pushpipe-broker
BENCH=$BUILD/bench/broker/pp-bench-broker
[ -x "$BROKER" ] && [ -x "$BENCH" ] || { echo "build $BROKER and $BENCH first" >&2; exit 2; }

# a base port with the 7 ports after it free (the tests' harness finds them)
HERE=$(cd "$(dirname "$0")" && pwd)
PORT=$(PYTHONPATH="$HERE/../../tests/lib" /usr/bin/python3 -c 'import pp_harness; print(pp_harness.free_ports(7))')
ADDR=tcp://127.0.0.1:$PORT
LOG=$(mktemp /tmp/pp-bench-broker.XXXXXX)
"$BROKER" --bind "$ADDR" --metrics-port 0 --log-level warn >"$LOG" 2>&1 &
PID=$!
trap 'kill -TERM $PID 2>/dev/null || true; wait $PID 2>/dev/null || true' EXIT
sleep 0.3
"$BENCH" --broker "$ADDR" "$@"
kill -TERM $PID
wait $PID || echo "broker exited with status $?" >&2
trap - EXIT
if [ -s "$LOG" ]; then echo "broker log ($LOG):"; tail -5 "$LOG"; else rm -f "$LOG"; fi
