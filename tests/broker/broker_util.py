"""Helpers shared by the broker's integration tests: start the real pushpipe-broker on
free ports, play resolvers and senders on the link (tests/lib/pp_link.py), build client
frames and jobs, read its metrics."""
import os
import re
import time

import msgpack
import zmq

import pp_harness as h
from pp_link import FakeWorker

ENDPOINTS = ["intake", "submit", "resolve", "apns_in", "mqtt_in", "apns_out", "mqtt_out"]
BOUND = ["intake", "submit", "resolve", "apns_out", "mqtt_out"]  # apns_in/mqtt_in: reserved
HEX32 = re.compile(r"^[0-9a-f]{32}$")


class Broker:
    """A real pushpipe-broker on 7 free consecutive ports plus a metrics port. Unless the
    test sets broker.link or heartbeat_ms (the top-level key), workers are declared dead only
    after 30 s of silence, so that a test busy elsewhere for a while does not lose its fake
    workers; with heartbeat_ms alone, after 3 heartbeats."""

    def __init__(self, args, wd, broker_cfg=None, name="broker", top=None, env=None,
                 heartbeat_ms=None):
        self.base = h.free_ports(7)
        self.metrics_port = h.free_port()
        cfg = dict(top or {})
        b = {"metrics_port": self.metrics_port, "link": {"timeout_ms": 30000}}
        if heartbeat_ms:
            cfg["heartbeat_ms"] = heartbeat_ms
            b["link"] = {}
        b.update(broker_cfg or {})
        cfg["broker"] = b
        self.config = h.write_config(wd, cfg, name + ".json")
        self.address = "tcp://127.0.0.1:%d" % self.base
        self.proc = h.Proc([h.binary(args.build_dir, "pushpipe-broker"), "--config",
                            self.config, "--bind", self.address],
                           os.path.join(wd, name + ".log"), env=env)
        h.wait_for(self._up, 10, what="broker metrics")
        for role in BOUND:
            h.wait_port(self.base + ENDPOINTS.index(role))

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

    def wait_metric(self, name, value, timeout=10, workers=(), **labels):
        """Waits until the metric reaches at least value, polling workers meanwhile;
        returns the last value seen."""
        last = [None]

        def reached():
            last[0] = self.metric(name, **labels)
            return last[0] >= value
        until(reached, workers, timeout)
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
        self.ctxs = []

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

    def worker(self, endpoint, window=100, auto_ack=True, heartbeat_ms=1000):
        """A sender (or a resolver sink) on the link: FakeWorker, closed at the end."""
        w = FakeWorker(endpoint, window=window, heartbeat_ms=heartbeat_ms, auto_ack=auto_ack,
                       ctx=self.ctx)
        self.socks.append(w.sock)
        return w

    def resolver(self, endpoint, outputs, window=100, heartbeat_ms=1000, sndhwm=None):
        """A resolver on the link (FakeResolver). sndhwm: its socket's ZMQ_SNDHWM, with a
        small kernel send buffer too, so that backpressure shows after few messages."""
        ctx = self.ctx
        if sndhwm is not None:
            ctx = zmq.Context()
            ctx.setsockopt(zmq.SNDHWM, sndhwm)
            ctx.setsockopt(zmq.SNDBUF, 65536)
            self.ctxs.append(ctx)
        r = FakeResolver(endpoint, outputs, window=window, heartbeat_ms=heartbeat_ms, ctx=ctx)
        self.socks.append(r.w.sock)
        return r

    def close(self):
        for s in self.socks:
            if not s.closed:
                s.close(0)
        for ctx in [self.ctx] + self.ctxs:
            ctx.term()


class FakeResolver:
    """A resolver on the link: for each RESOLVE job it sends outputs(body) (a list of
    APNS/MQTT job bytes) as "O" messages, then acks the job. Outputs are sent without
    blocking; while the socket refuses (the broker does not read: backpressure), the
    resolver stops taking part (no poll, no acks, no heartbeats) and tries again at the
    next poll. done: RESOLVE jobs acked; sent: outputs sent."""

    def __init__(self, endpoint, outputs, window=100, heartbeat_ms=1000, ctx=None):
        self.w = FakeWorker(endpoint, window=window, heartbeat_ms=heartbeat_ms,
                            auto_ack=False, ctx=ctx)
        self.outputs = outputs
        self.todo = []  # [seq, [outputs not yet sent]]
        self.seen = 0
        self.done = 0
        self.sent = 0

    @property
    def jobs(self):
        return self.w.jobs

    def blocked(self):
        return bool(self.todo and self.todo[0][1])

    def _work(self):
        while self.todo:
            seq, outs = self.todo[0]
            while outs:
                try:
                    self.w.sock.send_multipart([b"O", bytes(outs[0])], flags=zmq.NOBLOCK)
                except zmq.Again:
                    return False
                outs.pop(0)
                self.sent += 1
            self.w.ack(seq)
            self.done += 1
            self.todo.pop(0)
        return True

    def poll(self, timeout_ms=2):
        if not self._work():
            time.sleep(timeout_ms / 1000.0)
            return
        self.w.poll(timeout_ms)
        for seq, body in self.w.jobs[self.seen:]:
            self.todo.append([seq, list(self.outputs(body))])
        self.seen = len(self.w.jobs)
        self._work()
        self.w.flush()

    def crash(self):
        self.w.crash()


def until(cond, workers=(), timeout=10.0):
    """Polls every worker until cond() holds or timeout seconds pass; returns cond()."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return True
        if workers:
            for w in workers:
                w.poll(2)
        else:
            time.sleep(0.01)
    return cond()


def spin(workers, seconds):
    """Polls every worker for that long (lets the broker and the workers talk)."""
    until(lambda: False, workers, seconds)


def take(worker, n, timeout=5.0, others=()):
    """The bodies of the next n jobs worker receives (fewer on timeout), decoded by the
    caller. Polls others too, so that they keep talking to the broker."""
    start = getattr(worker, "_taken", 0)
    until(lambda: len(worker.jobs) - start >= n, [worker] + list(others), timeout)
    got = [body for _, body in worker.jobs[start:start + n]]
    worker._taken = start + len(got)
    return got


def take_jobs(worker, n, timeout=5.0, others=()):
    return [msgpack.unpackb(b, raw=False) for b in take(worker, n, timeout, others)]


def frame(push_type, push_id, data, options=None):
    arr = [push_type, push_id, data]
    if options is not None:
        arr.append(options)
    return msgpack.packb(arr, use_bin_type=True)


def submit(dealer, payload, timeout_ms=5000, workers=()):
    """Sends one acknowledged frame on a DEALER and returns the decoded reply map."""
    dealer.send(payload)
    if not until(lambda: dealer.poll(0), workers, timeout_ms / 1000.0):
        return None
    return msgpack.unpackb(dealer.recv(), raw=False)


def apns_job(msg_id, n_targets=1, payload='{"aps":{"alert":"hi"}}'):
    targets = [["u%d" % i, "%064x" % i] for i in range(n_targets)]
    return msgpack.packb([2, 1, msg_id, "com.example.app", 1, payload, "alert", 10, -1, "",
                          int(time.time() * 1e6), targets], use_bin_type=True)


def mqtt_job(msg_id, topics=("pp/user/1",), payload='{"a":1}'):
    return msgpack.packb([3, 1, msg_id, 1, payload, int(time.time() * 1e6), list(topics)],
                         use_bin_type=True)
