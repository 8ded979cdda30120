#!/usr/bin/env bash
# Runs pushpipe on this host: installs the Debian packages (scripts/deps.sh), builds in
# build/ (or $PP_BUILD_DIR), makes sure Redis and MQTT are reachable where the config says
# (starting local redis-server / mosquitto under ./run/ when they are not), then execs the
# launcher with deploy/pushpipe.json or the config given as $1.
#
#   scripts/run.sh [CONFIG]            run (Ctrl-C or SIGTERM stops every stage)
#   scripts/run.sh --stop-services     stop the redis-server/mosquitto this script started
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BUILD=${PP_BUILD_DIR:-build}
RUN=${PP_RUN_DIR:-$ROOT/run}

stop_services() {
  for name in redis mosquitto; do
    if [ -f "$RUN/$name.pid" ]; then
      pid=$(cat "$RUN/$name.pid")
      if kill -0 "$pid" 2>/dev/null; then
        kill "$pid" && echo "run: stopped $name (pid $pid)"
      fi
      rm -f "$RUN/$name.pid"
    fi
  done
}

if [ "${1:-}" = "--stop-services" ]; then
  stop_services
  exit 0
fi

CONFIG=${1:-deploy/pushpipe.json}
[ -f "$CONFIG" ] || { echo "run: no config file $CONFIG" >&2; exit 2; }
CONFIG=$(cd "$(dirname "$CONFIG")" && pwd)/$(basename "$CONFIG")

"$ROOT/scripts/deps.sh"

cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
# Only the programs: a run does not need the tests and benchmarks built.
cmake --build "$BUILD" -j2 --target pushpipe-broker pushpipe-resolver pushpipe-apns-sender \
  pushpipe-mqtt-sender pushpipe-launcher pushpipe-keygen pushpipe-send

mkdir -p "$RUN"

# The hosts and ports the config points the stages at (defaults as the programs have them).
read -r REDIS_HOST REDIS_PORT MQTT_HOST MQTT_PORT < <(/usr/bin/python3 - "$CONFIG" <<'PY'
import json, sys, urllib.parse
c = json.load(open(sys.argv[1]))
r = c.get("resolver", {}).get("redis", {})
uri = c.get("mqtt_sender", {}).get("uri", "tcp://127.0.0.1:1883")
u = urllib.parse.urlsplit(uri.replace("tcp://", "mqtt://", 1))
print(r.get("host", "127.0.0.1"), r.get("port", 6379), u.hostname or "127.0.0.1",
      u.port or 1883)
PY
)

reachable() { # host port
  timeout 1 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null
}

is_local() {
  case "$1" in 127.0.0.1|localhost|::1) return 0 ;; *) return 1 ;; esac
}

wait_port() { # host port what
  for _ in $(seq 1 50); do
    reachable "$1" "$2" && return 0
    sleep 0.1
  done
  echo "run: $3 did not come up on $1:$2" >&2
  exit 1
}

if reachable "$REDIS_HOST" "$REDIS_PORT"; then
  echo "run: using Redis at $REDIS_HOST:$REDIS_PORT"
elif is_local "$REDIS_HOST"; then
  cat > "$RUN/redis.conf" <<CONF
port $REDIS_PORT
bind 127.0.0.1
daemonize yes
pidfile $RUN/redis.pid
logfile $RUN/redis.log
dir $RUN
save ""
appendonly no
CONF
  redis-server "$RUN/redis.conf"
  wait_port 127.0.0.1 "$REDIS_PORT" redis-server
  echo "run: started redis-server on 127.0.0.1:$REDIS_PORT (log $RUN/redis.log)"
else
  echo "run: Redis at $REDIS_HOST:$REDIS_PORT is not reachable" >&2
  exit 1
fi

if reachable "$MQTT_HOST" "$MQTT_PORT"; then
  echo "run: using MQTT at $MQTT_HOST:$MQTT_PORT"
elif is_local "$MQTT_HOST"; then
  cat > "$RUN/mosquitto.conf" <<CONF
listener $MQTT_PORT 127.0.0.1
allow_anonymous true
persistence false
log_dest stderr
max_queued_messages 100000
CONF
  # Not "mosquitto -d": it writes its pid file after dropping root for user "mosquitto",
  # which cannot write under ./run/. A detached background process with our own pid file.
  ( setsid mosquitto -c "$RUN/mosquitto.conf" >>"$RUN/mosquitto.log" 2>&1 </dev/null &
    echo $! > "$RUN/mosquitto.pid" )
  wait_port 127.0.0.1 "$MQTT_PORT" mosquitto
  echo "run: started mosquitto on 127.0.0.1:$MQTT_PORT (log $RUN/mosquitto.log)"
else
  echo "run: MQTT at $MQTT_HOST:$MQTT_PORT is not reachable" >&2
  exit 1
fi
echo "run: scripts/run.sh --stop-services stops what this script started"

exec "$BUILD/launcher/pushpipe" --config "$CONFIG"
