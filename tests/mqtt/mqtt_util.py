"""Helpers shared by the mqtt-sender integration tests: the test plays the pushpipe broker
(a PUSH socket bound on the mqtt_out port, base+6) and a paho-mqtt subscriber."""
import json
import os
import threading
import time
import uuid

import msgpack
import paho.mqtt.client as mqtt
import zmq

import pp_harness as h

MQTT_OUT = 6  # offset of mqtt_out from the broker's base port (common/pp_endpoints.h)


class Feeder:
    """Binds PUSH on base+6 like the broker, and sends MQTT jobs (proto/pp_job.h)."""

    def __init__(self, base, sndhwm=1000, sndbuf=None):
        self.ctx = zmq.Context.instance()
        self.sock = self.ctx.socket(zmq.PUSH)
        self.sock.setsockopt(zmq.SNDHWM, sndhwm)
        if sndbuf:
            self.sock.setsockopt(zmq.SNDBUF, sndbuf)
        self.sock.setsockopt(zmq.LINGER, 2000)
        self.sock.bind("tcp://127.0.0.1:%d" % (base + MQTT_OUT))

    @staticmethod
    def job(payload, topics, qos=-1, msg_id=None):
        return msgpack.packb([3, 1, msg_id or uuid.uuid4().hex, qos, payload,
                              int(time.time() * 1e6), list(topics)], use_bin_type=True)

    def send(self, payload, topics, qos=-1, msg_id=None):
        self.sock.send(self.job(payload, topics, qos, msg_id))

    def try_send(self, payload, topics, qos=-1):
        """Sends without blocking; False when ZMQ holds the job back (peers full)."""
        try:
            self.sock.send(self.job(payload, topics, qos), zmq.NOBLOCK)
            return True
        except zmq.Again:
            return False

    def send_raw(self, data):
        self.sock.send(data)

    def close(self):
        self.sock.close(0)


class Subscriber:
    """A paho-mqtt subscriber that records (topic, payload) of every message."""

    def __init__(self, port, topics, qos=1, client_id=None, clean_session=True,
                 username=None, password=None, tls=None):
        self.lock = threading.Lock()
        self.msgs = []
        self.subscribed = threading.Event()
        self.connects = 0
        self.topics = topics
        self.qos = qos
        cid = client_id or "pp-test-sub-%s" % uuid.uuid4().hex[:8]
        self.c = mqtt.Client(client_id=cid, clean_session=clean_session)
        if username:
            self.c.username_pw_set(username, password)
        if tls:
            self.c.tls_set(ca_certs=tls)
        self.c.reconnect_delay_set(min_delay=1, max_delay=2)
        self.c.on_connect = self._on_connect
        self.c.on_subscribe = lambda c, u, mid, granted: self.subscribed.set()
        self.c.on_message = self._on_message
        self.c.connect("127.0.0.1", port, keepalive=30)
        self.c.loop_start()
        if not self.subscribed.wait(10):
            raise AssertionError("subscriber did not get its SUBACK")

    def _on_connect(self, c, userdata, flags, rc):
        if rc != 0:
            return
        self.connects += 1
        c.subscribe([(t, self.qos) for t in self.topics])

    def _on_message(self, c, userdata, msg):
        with self.lock:
            self.msgs.append((msg.topic, bytes(msg.payload)))

    def count(self):
        with self.lock:
            return len(self.msgs)

    def snapshot(self):
        with self.lock:
            return list(self.msgs)

    def wait_count(self, n, timeout=20.0):
        try:
            h.wait_for(lambda: self.count() >= n, timeout, what="%d messages" % n)
            return True
        except AssertionError:
            return False

    def stop(self):
        self.c.loop_stop()
        self.c.disconnect()


def start_sender(args, wd, base, mqtt_port, extra=None, name="sender", metrics_port=None,
                 scheme="tcp"):
    """Starts pushpipe-mqtt-sender with a config file; returns (proc, metrics_port)."""
    mport = metrics_port or h.free_port()
    section = {"uri": "%s://127.0.0.1:%d" % (scheme, mqtt_port), "metrics_port": mport}
    section.update(extra or {})
    cfg = {"broker_address": "tcp://127.0.0.1:%d" % base, "log_level": "info",
           "mqtt_sender": section}
    path = h.write_config(wd, cfg, name + ".json")
    p = h.Proc([h.binary(args.build_dir, "pushpipe-mqtt-sender"), "--config", path],
               os.path.join(wd, name + ".log"))
    h.wait_port(mport)
    return p, mport


def m(port, name, **labels):
    try:
        return h.metric(port, name, **labels)
    except OSError:
        return -1.0


def wait_metric(port, name, want, timeout=20.0, **labels):
    try:
        h.wait_for(lambda: m(port, name, **labels) >= want, timeout,
                   what="%s >= %s" % (name, want))
        return True
    except AssertionError:
        return False
