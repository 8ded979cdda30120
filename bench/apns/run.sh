#!/bin/sh
# bench/apns/run.sh [BUILD_DIR] [extra args for bench_apns.py, e.g. --n 400000]
# Notifications/s of one pushpipe-apns-sender into pp-apns-testserver vs h2load (same run).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../../build}
[ $# -gt 0 ] && shift
exec /usr/bin/python3 "$here/bench_apns.py" --build-dir "$build" "$@"
