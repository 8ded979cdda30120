#!/bin/sh
# Durable intake against the same broker without durability, in one run (issue 10).
# Starts a nats-server with JetStream (file storage in a temporary directory), then runs
# pp-bench-broker's fire-and-forget ("broker") and acknowledged ("ack") modes against
# pushpipe-broker with broker.durability "none" and then "jetstream", and prints the
# rates and the ratios durable/none.
# usage: bench/broker/durable.sh [BUILD_DIR] [FRAMES]
set -eu
BUILD=${1:-build}
FRAMES=${2:-300000}
HERE=$(cd "$(dirname "$0")" && pwd)
BROKER=$BUILD/broker/pushpipe-broker
BENCH=$BUILD/bench/broker/pp-bench-broker
[ -x "$BROKER" ] && [ -x "$BENCH" ] || { echo "build $BROKER and $BENCH first" >&2; exit 2; }
command -v nats-server >/dev/null || { echo "nats-server is not installed (scripts/deps.sh)" >&2; exit 2; }
free() { PYTHONPATH="$HERE/../../tests/lib" /usr/bin/python3 -c "import pp_harness; print(pp_harness.free_ports($1))"; }

DIR=$(mktemp -d /tmp/pp-bench-durable.XXXXXX)
NPORT=$(free 1)
nats-server -js -a 127.0.0.1 -p "$NPORT" -sd "$DIR/store" >"$DIR/nats.log" 2>&1 &
NPID=$!
trap 'kill $NPID 2>/dev/null || true; rm -rf "$DIR"' EXIT
sleep 1

# run MODE(none|jetstream) BENCH_MODE -> prints frames/s
run() {
  PORT=$(free 7)
  printf '{"broker": {"durability": "%s", "drain_ms": 2000, "jetstream": {"servers": "nats://127.0.0.1:%s"}}}\n' \
    "$1" "$NPORT" >"$DIR/broker.json"
  "$BROKER" --config "$DIR/broker.json" --bind "tcp://127.0.0.1:$PORT" --metrics-port 0 \
    --log-level warn >>"$DIR/broker.log" 2>&1 &
  BPID=$!
  sleep 0.5
  R=$("$BENCH" --broker "tcp://127.0.0.1:$PORT" --mode "$2" --frames "$FRAMES" --rounds 1 2>>"$DIR/bench.err" |
      sed -n 's/^round 1: raw [0-9]*, broker \([0-9]*\), ack \([0-9]*\), .*/\1 \2/p')
  kill -TERM $BPID; wait $BPID || true
  case $2 in broker) echo "${R% *}" ;; ack) echo "${R#* }" ;; esac
}

ff_none=$(run none broker); ff_js=$(run jetstream broker)
ack_none=$(run none ack); ack_js=$(run jetstream ack)
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
echo "frames per run: $FRAMES (217-byte frames, 2 client threads)"
echo "fire-and-forget  none: $ff_none/s  jetstream: $ff_js/s  ratio: $(ratio "$ff_js" "$ff_none")"
echo "acknowledged     none: $ack_none/s  jetstream: $ack_js/s  ratio: $(ratio "$ack_js" "$ack_none")"
[ -s "$DIR/bench.err" ] && { echo "bench errors:"; cat "$DIR/bench.err"; } || true
