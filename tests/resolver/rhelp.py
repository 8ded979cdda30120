"""Helpers for the resolver's integration tests: the test plays the broker.

From one base port (pp_harness.free_ports(7)) it binds the hub's side of the acknowledged
link on base+2 (the resolve endpoint, common/pp_endpoints.h) with FakeHub from
tests/lib/pp_link.py: RESOLVE jobs go out as link jobs, the resolver's APNS and MQTT jobs
come back as outputs on the same socket (base+3 and base+4 are no longer used by
resolvers). It speaks the job layout of proto/pp_job.h / proto/JOBS.md.
"""
import json
import os
import time

import msgpack
import zmq

import pp_harness as h
from pp_link import FakeHub

KIND_APNS, KIND_MQTT = 2, 3  # proto/pp_job.h pp_job_kind_t
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


def resolve_msg_id(body):
    """The msg_id of a RESOLVE job's bytes, or None when they are not a RESOLVE job."""
    try:
        job = msgpack.unpackb(body, raw=False)
        return job[2] if isinstance(job, list) and len(job) > 2 and job[0] == 1 else None
    except Exception:  # noqa: BLE001 - garbage jobs are part of the tests
        return None


class Broker:
    """The test's side of the broker's resolve endpoint: a FakeHub (tests/lib/pp_link.py)
    bound on base+2 that hands RESOLVE jobs to resolvers over the acknowledged link and
    collects the APNS and MQTT jobs they send back as outputs ("O"), sorted by kind."""

    def __init__(self, base, rcvhwm=0, heartbeat_ms=1000):
        self.base = base
        self.ctx = zmq.Context()
        self.hub = FakeHub("tcp://127.0.0.1:%d" % (base + 2), heartbeat_ms=heartbeat_ms,
                           ctx=self.ctx)
        if rcvhwm:
            # applies to resolvers connecting from now on: a small queue so that a hub
            # that does not read pushes back on the resolver quickly
            self.hub.sock.setsockopt(zmq.RCVHWM, rcvhwm)
        self.reading = True  # False: the hub does not read its socket (backpressure)
        self.apns_jobs = []
        self.mqtt_jobs = []
        self.bad_outputs = []
        self._seen = 0  # outputs of the hub already sorted into apns_jobs / mqtt_jobs
        self.sent = 0  # RESOLVE jobs enqueued

    @property
    def address(self):
        return "tcp://127.0.0.1:%d" % self.base

    def send(self, msg_id, push_type, ids, data, opts=None):
        self.hub.enqueue(resolve_frame(msg_id, push_type, ids, data, opts))
        self.sent += 1

    def send_raw(self, frame):
        self.hub.enqueue(frame)
        self.sent += 1

    def _sort_outputs(self):
        got = 0
        for _, body in self.hub.outputs[self._seen:]:
            job = msgpack.unpackb(body, raw=False)
            if isinstance(job, list) and job and job[0] == KIND_APNS:
                self.apns_jobs.append(job)
            elif isinstance(job, list) and job and job[0] == KIND_MQTT:
                self.mqtt_jobs.append(job)
            else:
                self.bad_outputs.append(job)
            got += 1
        self._seen = len(self.hub.outputs)
        return got

    def poll(self, timeout_ms=100):
        """Runs the hub for timeout_ms (or, when not reading, just waits); returns the
        number of jobs received."""
        deadline = time.time() + timeout_ms / 1000.0
        got = 0
        while True:
            if self.reading:
                self.hub.poll(min(10, max(0, int((deadline - time.time()) * 1000))))
                got += self._sort_outputs()
            else:
                time.sleep(min(0.01, max(0, deadline - time.time())))
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

    # The link ---------------------------------------------------------------------------
    def check_link(self, c, what, deaths=0):
        """Asserts, once everything is acked: every RESOLVE job enqueued was acked exactly
        once, each ack after all of its message's outputs, and `deaths` workers died."""
        self.collect(until=self.all_acked, timeout=15, quiet=0.1)
        c.check(self.all_acked(), "%s: every RESOLVE job acked" % what)
        c.eq(len(self.hub.acked), self.sent, "%s: one ack per RESOLVE job" % what)
        n, late = self.acks_before_outputs()
        c.eq(late, [], "%s: each of %d acks came after all its message's outputs" % (what, n))
        c.eq(self.hub.deaths, deaths, "%s: workers declared dead by the hub" % what)

    def all_acked(self):
        """Every RESOLVE job sent so far was acknowledged (none pending or in flight)."""
        return not self.hub.pending and self.hub.in_flight() == 0

    def acks_before_outputs(self):
        """Checks that every RESOLVE job was acked only after all of its outputs had
        arrived (FakeHub.outputs_at_ack: outputs received when each ack arrived). Returns
        (number of acks checked, msg_ids with an output after their ack)."""
        last_output = {}
        for i, (_, body) in enumerate(self.hub.outputs):
            job = msgpack.unpackb(body, raw=False)
            last_output[job[2]] = i
        late = []
        for (_, _, body), n_before in zip(self.hub.acked, self.hub.outputs_at_ack):
            m = resolve_msg_id(body)
            if m is not None and last_output.get(m, -1) >= n_before:
                late.append(m)
        return len(self.hub.acked), late

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
        self.hub.close()
        self.ctx.destroy(linger=0)


def resolver_config(redis_port, heartbeat_ms=None, **extra):
    """The config of a resolver: its section with extra keys; heartbeat_ms is the top-level
    key (every process's, the hub's too)."""
    res = {"metrics_port": 0, "redis": {"port": redis_port, "backoff_max_ms": 200}}
    for k, v in extra.items():
        if k in ("redis", "link") and k in res:
            res[k].update(v)
        else:
            res[k] = v
    cfg = {"resolver": res}
    if heartbeat_ms:
        cfg["heartbeat_ms"] = heartbeat_ms
    return cfg


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
