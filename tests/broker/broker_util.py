"""Helpers shared by the broker's integration tests: start the real pushpipe-broker on
free ports, build client frames and jobs, read its metrics."""
import os
import re
import time

import msgpack
import zmq

import pp_harness as h

ENDPOINTS = ["intake", "submit", "resolve", "apns_in", "mqtt_in", "apns_out", "mqtt_out"]
HEX32 = re.compile(r"^[0-9a-f]{32}$")


class Broker:
    """A real pushpipe-broker on 7 free consecutive ports plus a metrics port."""

    def __init__(self, args, wd, broker_cfg=None, name="broker", top=None):
        self.base = h.free_ports(7)
        self.metrics_port = h.free_port()
        cfg = dict(top or {})
        b = {"metrics_port": self.metrics_port}
        b.update(broker_cfg or {})
        cfg["broker"] = b
        self.config = h.write_config(wd, cfg, name + ".json")
        self.address = "tcp://127.0.0.1:%d" % self.base
        self.proc = h.Proc([h.binary(args.build_dir, "pushpipe-broker"), "--config",
                            self.config, "--bind", self.address],
                           os.path.join(wd, name + ".log"))
        h.wait_for(self._up, 10, what="broker metrics")
        for i in range(7):
            h.wait_port(self.base + i)

    def _up(self):
        try:
            h.metrics(self.metrics_port)
            return True
        except Exception:
            return False

    def ep(self, role):
        return "tcp://127.0.0.1:%d" % (self.base + ENDPOINTS.index(role))

    def metric(self, name, **labels):
        return h.metric(self.metrics_port, name, **labels)

    def wait_metric(self, name, value, timeout=10, **labels):
        """Waits until the metric reaches at least value; returns the last value seen."""
        last = [None]

        def reached():
            last[0] = self.metric(name, **labels)
            return last[0] >= value
        try:
            h.wait_for(reached, timeout, what="%s%r >= %s" % (name, labels, value))
        except AssertionError:
            pass
        return last[0]

    def stop(self, timeout=15):
        return self.proc.stop(timeout)

    def log(self):
        return self.proc.output()


class Zmq:
    """A context whose sockets have linger 0 and are closed at the end."""

    def __init__(self):
        self.ctx = zmq.Context()
        self.socks = []

    def sock(self, kind, connect=None, hwm=None):
        s = self.ctx.socket(kind)
        s.setsockopt(zmq.LINGER, 0)
        if hwm is not None:
            s.setsockopt(zmq.SNDHWM, hwm)
            s.setsockopt(zmq.RCVHWM, hwm)
        if connect:
            s.connect(connect)
        self.socks.append(s)
        return s

    def close(self):
        for s in self.socks:
            s.close(0)
        self.ctx.term()


def frame(push_type, push_id, data, options=None):
    arr = [push_type, push_id, data]
    if options is not None:
        arr.append(options)
    return msgpack.packb(arr, use_bin_type=True)


def recv_job(sock, timeout_ms=5000):
    """The next message on sock decoded as msgpack, or None on timeout."""
    if not sock.poll(timeout_ms):
        return None
    return msgpack.unpackb(sock.recv(), raw=False)


def recv_all(sock, n, timeout_ms=5000):
    out = []
    while len(out) < n:
        if not sock.poll(timeout_ms):
            break
        out.append(sock.recv())
    return out


def submit(dealer, payload, timeout_ms=5000):
    """Sends one acknowledged frame on a DEALER and returns the decoded reply map."""
    dealer.send(payload)
    if not dealer.poll(timeout_ms):
        return None
    return msgpack.unpackb(dealer.recv(), raw=False)


def apns_job(msg_id, n_targets=1, payload='{"aps":{"alert":"hi"}}'):
    targets = [["u%d" % i, "%064x" % i] for i in range(n_targets)]
    return msgpack.packb([2, 1, msg_id, "com.example.app", 1, payload, "alert", 10, -1, "",
                          int(time.time() * 1e6), targets], use_bin_type=True)


def mqtt_job(msg_id, topics=("pp/user/1",), payload='{"a":1}'):
    return msgpack.packb([3, 1, msg_id, 1, payload, int(time.time() * 1e6), list(topics)],
                         use_bin_type=True)
