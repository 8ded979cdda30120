#!/bin/sh
# Resolver benchmark: users resolved per second by one pushpipe-resolver against one local
# redis-server (single-user messages; one 100,000-member group; one 1,000,000-member group),
# the resolver's peak RSS, and, in the same run, redis-benchmark doing the same pipelined
# HMGET as the limit. Prints each rate and its ratio to the limit. The driver plays the
# broker with its hub side of the acknowledged link (broker/pp_dispatch.h).
#
#   bench/resolver/run.sh [BUILD_DIR]     (default: build)
# Environment: USERS (1000000), MESSAGES (200000), PIPELINE (256).
set -eu
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$(cd "${1:-$SRC/build}" && pwd)
USERS=${USERS:-1000000}
MESSAGES=${MESSAGES:-200000}
PIPELINE=${PIPELINE:-256}
DRIVER=$BUILD/bench/resolver/bench_resolver
RESOLVER=$BUILD/resolver/pushpipe-resolver
WD=$(mktemp -d /tmp/pp-bench-resolver.XXXXXX)
PIDS=""
cleanup() {
    for p in $PIDS; do kill "$p" 2>/dev/null || true; done
    for p in $PIDS; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT INT TERM

free_base() {
    /usr/bin/python3 -c 'import sys; sys.path.insert(0, sys.argv[1]); import pp_harness as h; print(h.free_ports(int(sys.argv[2])))' "$SRC/tests/lib" "$1"
}

REDIS_PORT=$(free_base 1)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$WD" \
    >"$WD/redis.log" 2>&1 &
PIDS="$PIDS $!"
for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done

echo "populating $USERS users and groups of 100000 and 1000000 members..."
"$DRIVER" populate --redis-port "$REDIS_PORT" --users "$USERS" \
    --group "g100k:100000" --group "g1m:$USERS"

BASE=$(free_base 7)
cat >"$WD/resolver.json" <<JSON
{"resolver": {"metrics_port": 0, "redis": {"port": $REDIS_PORT, "pipeline": $PIPELINE}}}
JSON
"$RESOLVER" --config "$WD/resolver.json" --broker "tcp://127.0.0.1:$BASE" --log-level warn \
    >"$WD/resolver.log" 2>&1 &
RPID=$!
PIDS="$PIDS $RPID"

rate() { sed -n 's/.*users_per_s=\([0-9]*\).*/\1/p'; }
SINGLE=$("$DRIVER" single --broker "tcp://127.0.0.1:$BASE" --users "$USERS" --messages "$MESSAGES")
echo "$SINGLE"
G100K=$("$DRIVER" group --broker "tcp://127.0.0.1:$BASE" --group "g100k:100000")
echo "$G100K"
G1M=$("$DRIVER" group --broker "tcp://127.0.0.1:$BASE" --group "g1m:$USERS")
echo "$G1M"
PEAK_KB=$(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$RPID/status")

BENCH=$(redis-benchmark -p "$REDIS_PORT" -P "$PIPELINE" -n 2000000 -r "$USERS" --csv \
    HMGET User:__rand_int__ app_token app_ident app_version app_focus | tail -1)
LIMIT=$(echo "$BENCH" | cut -d, -f2 | tr -d '"' | cut -d. -f1)
BENCH1=$(redis-benchmark -p "$REDIS_PORT" -c 1 -P "$PIPELINE" -n 1000000 -r "$USERS" --csv \
    HMGET User:__rand_int__ app_token app_ident app_version app_focus | tail -1)
LIMIT1=$(echo "$BENCH1" | cut -d, -f2 | tr -d '"' | cut -d. -f1)

S=$(echo "$SINGLE" | rate)
G=$(echo "$G100K" | rate)
M=$(echo "$G1M" | rate)
echo "redis-benchmark -P $PIPELINE HMGET (50 clients): $LIMIT/s   (1 client: $LIMIT1/s)"
awk -v s="$S" -v g="$G" -v m="$M" -v l="$LIMIT" -v l1="$LIMIT1" -v kb="$PEAK_KB" 'BEGIN {
    printf "single-user messages: %d users/s  ratio %.2f of redis-benchmark (%.2f of 1-client)\n", s, s / l, s / l1
    printf "100,000-member group: %d users/s  ratio %.2f of redis-benchmark (%.2f of 1-client)\n", g, g / l, g / l1
    printf "1,000,000-member group: %d users/s  ratio %.2f of redis-benchmark\n", m, m / l
    printf "resolver peak RSS (VmHWM, whole run incl. the 1M group): %.1f MiB (target < 64)\n", kb / 1024
    printf "target ratio >= 0.50: single-user %s, 100k group %s, 1M group %s\n", (s / l >= 0.5) ? "met" : "NOT met", (g / l >= 0.5) ? "met" : "NOT met", (m / l >= 0.5) ? "met" : "NOT met"
}'
