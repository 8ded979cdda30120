#!/bin/sh
# h2load-baseline.sh BUILD_DIR [N] [CONNECTIONS] [STREAMS] [AUTH]
# Starts pp-apns-testserver on a free port, loads it with h2load (Debian's nghttp2-client)
# and prints h2load's summary plus one line "baseline_rps=<requests/s> ok=<2xx> n=<N>".
# This is the baseline the apns-sender benchmark compares against. AUTH is "none"
# (default: no auth configured) or "token" (ES256 JWT made once, --no-stream-ramp).
set -eu
build=${1:?usage: h2load-baseline.sh BUILD_DIR [N] [CONNECTIONS] [STREAMS] [AUTH]}
n=${2:-200000}
conns=${3:-4}
streams=${4:-100}
auth=${5:-none}
here=$(cd "$(dirname "$0")" && pwd)
server=$build/tests/apns-server/pp-apns-testserver
work=$(mktemp -d /tmp/pp-h2load-XXXXXX)
pid=
cleanup() {
    [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT INT TERM
sh "$here/make-test-pki.sh" "$work/pki"
pki=$work/pki
printf '{"aps":{"alert":{"title":"Hello","body":"A benchmark notification"},"badge":1}}' \
    > "$work/payload.json"
set -- --port 0 --cert "$pki/server.pem" --key "$pki/server-key.pem" --env sandbox \
    --topics com.example.app --no-stream-ramp
authhdr=
if [ "$auth" = token ]; then
    set -- "$@" --jwt-public-key "$pki/AuthKey_TESTKEY01.pub.pem" --team-id TEAM123456 \
        --key-id TESTKEY01
    authhdr=$(PYTHONPATH="$here:$here/../lib" /usr/bin/python3 -B -c \
        "from apns_testserver import mint_jwt; print('authorization: bearer ' + mint_jwt('$pki'))")
fi
: > "$work/server.log"
"$server" "$@" --log-level warn > "$work/server.log" 2>&1 &
pid=$!
i=0
until grep -qs '^listening port=' "$work/server.log"; do
    i=$((i + 1))
    [ $i -gt 100 ] && { cat "$work/server.log"; exit 1; }
    sleep 0.05
done
port=$(sed -n 's/^listening port=\([0-9]*\)$/\1/p' "$work/server.log")
token=$(printf 'ab%.0s' $(seq 32))
if [ -n "$authhdr" ]; then
    h2load -n "$n" -c "$conns" -m "$streams" -H "$authhdr" -H 'apns-topic: com.example.app' \
        -H 'apns-push-type: alert' -H 'apns-priority: 10' -d "$work/payload.json" \
        "https://127.0.0.1:$port/3/device/$token" > "$work/h2load.out"
else
    h2load -n "$n" -c "$conns" -m "$streams" -H 'apns-topic: com.example.app' \
        -H 'apns-push-type: alert' -H 'apns-priority: 10' -d "$work/payload.json" \
        "https://127.0.0.1:$port/3/device/$token" > "$work/h2load.out"
fi
grep -E '^(finished|requests|status codes)' "$work/h2load.out"
rps=$(sed -n 's/^finished in .*, \([0-9.]*\) req\/s.*/\1/p' "$work/h2load.out")
ok=$(sed -n 's/^status codes: \([0-9]*\) 2xx.*/\1/p' "$work/h2load.out")
echo "baseline_rps=$rps ok=$ok n=$n"
