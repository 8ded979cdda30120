#!/bin/sh
# bench/e2e/durable.sh [BUILD_DIR]: the end-to-end benchmark (bench/e2e/run.sh's pipeline
# part) with broker.durability "none" and then "jetstream" (a local nats-server), in one
# run, and the ratio of the group and burst delivery rates (issue 10: the 100,000-member
# group end to end within 10% of the non-durable run).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../../build}
build=$(cd "$build" && pwd)
run() { /usr/bin/python3 "$here/bench_e2e.py" --build-dir "$build" "$@" | tee /dev/stderr | sed -n 's/^RESULT //p'; }
off=$(run)
on=$(run --durable)
val() { echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
echo "durability none:      $off"
echo "durability jetstream: $on"
echo "ratio group deliveries/s jetstream/none: $(ratio "$(val "$on" group_deliveries_per_s)" "$(val "$off" group_deliveries_per_s)")"
echo "ratio burst deliveries/s jetstream/none: $(ratio "$(val "$on" burst_deliveries_per_s)" "$(val "$off" burst_deliveries_per_s)")"
