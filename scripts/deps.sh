#!/usr/bin/env bash
# Installs every Debian package pushpipe needs to build, test and run.
# Idempotent: when every package is already installed it only runs dpkg-query.
set -euo pipefail

PKGS=(
  build-essential cmake pkg-config clang clang-format libclang-rt-14-dev
  libzmq3-dev libczmq-dev libmsgpack-dev libhiredis-dev libpaho-mqtt-dev
  libssl-dev libnghttp2-dev libjansson-dev libmicrohttpd-dev libcmocka-dev
  redis-server redis-tools mosquitto mosquitto-clients nghttp2-client openssl
  python3 python3-zmq python3-msgpack python3-redis python3-paho-mqtt python3-yaml python3-cryptography
  nats-server libnats-dev
  iproute2 procps curl
)

missing=()
for p in "${PKGS[@]}"; do
  st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [ "$st" = "install ok installed" ] || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" != 0 ]; then
  echo "deps: missing packages: ${missing[*]}; run as root to install them" >&2
  exit 1
fi

echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The packaged daemons start themselves on install on some systems; the tests and
# the launcher start their own instances on their own ports, so that is harmless.
