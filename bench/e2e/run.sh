#!/bin/sh
# bench/e2e/run.sh [BUILD_DIR] [extra args for bench_e2e.py, e.g. --rate 2000]
# The whole pipeline on this host: one group push to 100,000 iOS users (+ its MQTT group
# publish), 10,000 single-user pushes as a burst and 10,000 at 1,000/s, into
# pp-apns-testserver and mosquitto. Baseline, same run: h2load into the same APNs test
# server (token auth, 1 connection x 1000 streams, the server's stream limit; the
# apns-sender has one connection per app and environment), so the ratio says how close
# the pipeline comes to the raw HTTP/2 rate into that server.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../../build}
[ $# -gt 0 ] && shift
build=$(cd "$build" && pwd)
echo "== baseline: h2load into pp-apns-testserver (100,000 requests, 1 connection x 1000 streams, token auth)"
out=$(sh "$here/../../tests/apns-server/h2load-baseline.sh" "$build" 100000 1 1000 token)
echo "$out"
rps=$(echo "$out" | sed -n 's/^baseline_rps=\([0-9.]*\).*/\1/p')
echo "== pipeline"
exec /usr/bin/python3 "$here/bench_e2e.py" --build-dir "$build" --baseline-rps "${rps:-0}" "$@"
