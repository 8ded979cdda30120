"""Helpers shared by the mqtt-sender integration tests: the test plays the pushpipe broker
(the hub of the mqtt pool: tests/lib/pp_link.py's FakeHub, a ROUTER bound on the mqtt_out
port, base+6, speaking docs/link-protocol.md) and a paho-mqtt subscriber."""
import json
import os
import threading
import time
import uuid

import msgpack
import paho.mqtt.client as mqtt
import zmq

import pp_harness as h
from pp_link import FakeHub

MQTT_OUT = 6  # offset of mqtt_out from the broker's base port (common/pp_endpoints.h)


class Feeder:
    """The broker's mqtt_out hub: a FakeHub on base+6, driven by a background thread so that
    tests can feed jobs (proto/pp_job.h) at any time. Jobs queue in the hub's pending list
    and go to senders as they grant credit; acks, requeues and deaths are recorded."""

    def __init__(self, base, heartbeat_ms=1000):
        self.hub = FakeHub("tcp://127.0.0.1:%d" % (base + MQTT_OUT), heartbeat_ms=heartbeat_ms,
                           ctx=zmq.Context.instance())
        self.lock = threading.Lock()
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while self.running:
            # Poll without the lock (the socket is this thread's alone), then handle under it.
            self.hub.sock.poll(5, zmq.POLLIN)
            with self.lock:
                self.hub.poll(0)

    @staticmethod
    def job(payload, topics, qos=-1, msg_id=None):
        return msgpack.packb([3, 1, msg_id or uuid.uuid4().hex, qos, payload,
                              int(time.time() * 1e6), list(topics)], use_bin_type=True)

    def send(self, payload, topics, qos=-1, msg_id=None):
        self.send_raw(self.job(payload, topics, qos, msg_id))

    def send_raw(self, data):
        with self.lock:
            self.hub.enqueue(data)

    def send_many(self, bodies):
        with self.lock:
            for b in bodies:
                self.hub.enqueue(b)

    def stats(self):
        """A consistent snapshot: pending, in_flight (per worker), acked, requeued, deaths,
        byes, unknown_acks, workers, max_held (per worker), bad."""
        with self.lock:
            hb = self.hub
            return dict(pending=len(hb.pending), in_flight=hb.in_flight(),
                        in_flight_by={w: len(v["inflight"]) for w, v in hb.workers.items()},
                        credit=sum(v["credit"] for v in hb.workers.values()),
                        acked=len(hb.acked), requeued=hb.requeued, deaths=hb.deaths,
                        byes=hb.byes, unknown_acks=hb.unknown_acks, workers=len(hb.workers),
                        max_held=dict(hb.max_held), bad=dict(hb.bad))

    def acked_bodies(self):
        with self.lock:
            return [b for (_w, _s, b) in self.hub.acked]

    def acked_by(self):
        """Number of jobs acked per worker id."""
        with self.lock:
            out = {}
            for w, _s, _b in self.hub.acked:
                out[w] = out.get(w, 0) + 1
            return out

    def wait(self, cond, timeout=20.0, what="condition"):
        try:
            h.wait_for(lambda: cond(self.stats()), timeout, what=what)
            return True
        except AssertionError:
            return False

    def close(self):
        self.running = False
        self.thread.join(5)
        self.hub.close()


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
