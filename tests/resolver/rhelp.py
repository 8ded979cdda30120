"""Helpers for the resolver's integration tests: the test plays the broker.

It binds, from one base port (pp_harness.free_ports(7)), a PUSH on base+2 (RESOLVE jobs to
the resolver), and PULLs on base+3 (APNS jobs) and base+4 (MQTT jobs), exactly as the broker
does (common/pp_endpoints.h), and speaks the job layout of proto/pp_job.h / proto/JOBS.md.
"""
import json
import os
import time

import msgpack
import zmq

import pp_harness as h

TOKEN_CHARS = "0123456789abcdef"


def token(i, length=64):
    """A distinct valid hex token for user i."""
    s = "%x" % (i * 2654435761 % (1 << 64))
    return (s * (length // len(s) + 1))[:length - 8] + "%08x" % i


def resolve_frame(msg_id, push_type, ids, data, opts=None, received_us=None):
    data_json = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    return msgpack.packb([1, 1, msg_id, push_type, ids, data_json,
                          received_us if received_us is not None else int(time.time() * 1e6),
                          opts or {}], use_bin_type=True)


class Broker:
    """The test's side of the broker's resolve/apns_in/mqtt_in sockets."""

    def __init__(self, base, rcvhwm=0):
        self.base = base
        self.ctx = zmq.Context()
        self.push = self.ctx.socket(zmq.PUSH)
        self.push.setsockopt(zmq.LINGER, 0)
        self.push.bind("tcp://127.0.0.1:%d" % (base + 2))
        self.apns = self.ctx.socket(zmq.PULL)
        self.mqtt = self.ctx.socket(zmq.PULL)
        for s, off in ((self.apns, 3), (self.mqtt, 4)):
            s.setsockopt(zmq.LINGER, 0)
            if rcvhwm:
                s.setsockopt(zmq.RCVHWM, rcvhwm)
            s.bind("tcp://127.0.0.1:%d" % (base + off))
        self.apns_jobs = []
        self.mqtt_jobs = []

    @property
    def address(self):
        return "tcp://127.0.0.1:%d" % self.base

    def send(self, msg_id, push_type, ids, data, opts=None):
        self.push.send(resolve_frame(msg_id, push_type, ids, data, opts))

    def send_raw(self, frame):
        self.push.send(frame)

    def poll(self, timeout_ms=100):
        """Receives whatever is there within timeout_ms; returns the number of jobs."""
        poller = zmq.Poller()
        poller.register(self.apns, zmq.POLLIN)
        poller.register(self.mqtt, zmq.POLLIN)
        got = 0
        deadline = time.time() + timeout_ms / 1000.0
        while True:
            left = max(0, int((deadline - time.time()) * 1000))
            events = dict(poller.poll(left))
            if not events:
                return got
            for sock in (self.apns, self.mqtt):
                while sock in events:
                    try:
                        frame = sock.recv(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    job = msgpack.unpackb(frame, raw=False)
                    (self.apns_jobs if sock is self.apns else self.mqtt_jobs).append(job)
                    got += 1
            if time.time() >= deadline:
                return got

    def collect(self, until=None, timeout=20.0, quiet=0.4):
        """Receives until until() is true (or timeout), then until quiet for `quiet` s."""
        deadline = time.time() + timeout
        while time.time() < deadline and not (until and until()):
            self.poll(50)
            if until is None:
                break
        last = time.time()
        while time.time() - last < quiet:
            if self.poll(50):
                last = time.time()

    def reset(self):
        self.apns_jobs = []
        self.mqtt_jobs = []

    # Views on what was received ------------------------------------------------------
    def apns_for(self, msg_id):
        return [j for j in self.apns_jobs if j[2] == msg_id]

    def mqtt_for(self, msg_id):
        return [j for j in self.mqtt_jobs if j[2] == msg_id]

    def apns_targets(self, msg_id):
        """List of (uid, token, ident, env) over every APNS job of the message."""
        out = []
        for j in self.apns_for(msg_id):
            for uid, tok in j[11]:
                out.append((uid, tok, j[3], "sandbox" if j[4] == 0 else "production"))
        return out

    def topics(self, msg_id):
        out = []
        for j in self.mqtt_for(msg_id):
            out.extend(j[6])
        return out

    def close(self):
        self.ctx.destroy(linger=0)


def resolver_config(redis_port, **extra):
    res = {"metrics_port": 0, "redis": {"port": redis_port, "backoff_max_ms": 200}}
    for k, v in extra.items():
        if k == "redis":
            res["redis"].update(v)
        else:
            res[k] = v
    return {"resolver": res}


def start_resolver(args, wd, broker, cfg, name="resolver", metrics_port=0, log_level="info"):
    if metrics_port:
        cfg["resolver"]["metrics_port"] = metrics_port
    path = h.write_config(wd, cfg, name + ".json")
    exe = h.binary(args.build_dir, "pushpipe-resolver")
    return h.Proc([exe, "--config", path, "--broker", broker.address, "--log-level", log_level],
                  os.path.join(wd, name + ".log"))


def set_user(r, uid, token=None, ident=None, version=None, focus=None):
    fields = {}
    for k, v in (("app_token", token), ("app_ident", ident), ("app_version", version),
                 ("app_focus", focus)):
        if v is not None:
            fields[k] = v
    if fields:
        r.hset("User:%s" % uid, mapping=fields)
