#!/bin/sh
# Publishes/s through one pushpipe-mqtt-sender into a local mosquitto, at QoS 0 and QoS 1,
# against a plain paho MQTTAsync publisher with the same window (the limit), in one run.
# pp-bench-mqtt plays the broker's hub (the link, docs/link-protocol.md): every job is
# acked by the sender once its publishes are acknowledged.
#   [WINDOW=1000] [LINK_WINDOW=64] bench/mqtt/run.sh [BUILD_DIR] [extra pp-bench-mqtt args,
#   e.g. --count 200000 --topics-per-job 1]
set -eu
BUILD=${1:-build}
[ $# -gt 0 ] && shift
BENCH=$BUILD/bench/mqtt/pp-bench-mqtt
SENDER=$BUILD/mqtt-sender/pushpipe-mqtt-sender
WINDOW=${WINDOW:-1000}
LINK_WINDOW=${LINK_WINDOW:-64}
[ -x "$BENCH" ] && [ -x "$SENDER" ] || { echo "build pp-bench-mqtt and pushpipe-mqtt-sender in $BUILD first" >&2; exit 2; }

TMP=$(mktemp -d /tmp/pp-bench-mqtt.XXXXXX)
PIDS=""
cleanup() {
    for p in $PIDS; do kill "$p" 2>/dev/null || true; done
    for p in $PIDS; do wait "$p" 2>/dev/null || true; done
    rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

# Free ports: one for mosquitto, seven consecutive for the (pretend) broker (the tests'
# harness finds them).
HERE=$(cd "$(dirname "$0")" && pwd)
PORTS=$(PYTHONPATH="$HERE/../../tests/lib" /usr/bin/python3 -c 'import pp_harness
print(pp_harness.free_port(), pp_harness.free_ports(7))')
MQTT_PORT=${PORTS% *}
BASE=${PORTS#* }

cat > "$TMP/mosquitto.conf" <<CONF
listener $MQTT_PORT 127.0.0.1
allow_anonymous true
persistence false
max_queued_messages 1000000
max_inflight_messages 0
CONF
mosquitto -c "$TMP/mosquitto.conf" > "$TMP/mosquitto.log" 2>&1 &
PIDS="$PIDS $!"

for qos in 0 1; do
    cat > "$TMP/sender.json" <<CONF
{"broker_address": "tcp://127.0.0.1:$BASE", "log_level": "warn",
 "mqtt_sender": {"uri": "tcp://127.0.0.1:$MQTT_PORT", "window": $WINDOW, "qos": $qos,
                 "link": {"window": $LINK_WINDOW}, "metrics_port": 0}}
CONF
    sleep 0.3
    "$SENDER" --config "$TMP/sender.json" > "$TMP/sender-$qos.log" 2>&1 &
    SPID=$!
    echo "== QoS $qos (link.window $LINK_WINDOW jobs)"
    "$BENCH" --uri "tcp://127.0.0.1:$MQTT_PORT" --broker "tcp://127.0.0.1:$BASE" --qos $qos \
        --window "$WINDOW" "$@" || { cat "$TMP/sender-$qos.log" >&2; exit 1; }
    kill -TERM $SPID; wait $SPID || true
done
