"""Both sides of pushpipe's credit-based link (docs/link-protocol.md) in Python, for tests.

FakeHub stands in for the broker's side of one pool (broker/pp_dispatch.c): it binds a
ROUTER, waits for workers' credit, sends jobs, collects acks, requeues what a dead worker
held. FakeWorker stands in for a resolver or sender (common/pp_link.c): it connects a
DEALER, grants credit, receives jobs and acks them. Both are single-threaded: call poll()
or run_until() to make progress. tests/link/test_link_python.py proves them against the C
side.
"""
import collections
import os
import struct
import time

import zmq


def _now_ms():
    return time.monotonic() * 1000.0


# The wire's constants, as common/pp_link_wire.h defines them for both C ends (the source:
# change them there first).
BATCH_ENTRY = 12  # PP_LINK_BATCH_ENTRY: "K" entry header, seq (u64) + body length (u32)
BATCH_MAX_JOBS = 4096  # PP_LINK_BATCH_MAX_JOBS: most entries a worker takes in one "K"
MAX_WINDOW = 100000  # PP_LINK_MAX_WINDOW: most credit one worker may hold
DEFAULT_HEARTBEAT_MS = 1000  # PP_LINK_DEFAULT_HEARTBEAT_MS


def parse_batch(frame):
    """The (seq, body) list of a "K" frame, or None if malformed (as common/pp_link.c
    checks it: 1..BATCH_MAX_JOBS entries filling the frame exactly)."""
    out, off = [], 0
    while off < len(frame):
        if len(frame) - off < BATCH_ENTRY or len(out) == BATCH_MAX_JOBS:
            return None
        seq, size = struct.unpack_from(">QI", frame, off)
        off += BATCH_ENTRY
        if size > len(frame) - off:
            return None
        out.append((seq, bytes(frame[off:off + size])))
        off += size
    return out or None


def make_batch(jobs):
    """A "K" frame of (seq, body) pairs."""
    return b"".join(struct.pack(">QI", seq, len(body)) + bytes(body) for seq, body in jobs)


def _run_until(side, cond, timeout):
    """Polls side (a FakeHub or FakeWorker) until cond() is true or timeout seconds pass."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return True
        side.poll(10)
    return cond()


class FakeHub:
    """The hub of one pool. Jobs are bytes; acked holds (worker_id, seq, body) per ack;
    outputs holds (worker_id, body) per "O" a worker sent (a resolver's APNS/MQTT jobs),
    and acked_after_outputs the number of outputs received before each ack, so a test can
    check that a job's outputs came before its ack. Like the C hub it greets each worker it
    registers with its heartbeat ("H" + heartbeat_ms); state_heartbeat=False plays a hub
    from before that (a C worker then does not check)."""

    def __init__(self, endpoint, heartbeat_ms=DEFAULT_HEARTBEAT_MS, timeout_ms=None, ctx=None,
                 state_heartbeat=True):
        self.ctx = ctx or zmq.Context.instance()
        self.sock = self.ctx.socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.bind(endpoint)
        self.heartbeat_ms = heartbeat_ms
        self.state_heartbeat = state_heartbeat
        self.timeout_ms = timeout_ms or 3 * heartbeat_ms
        self.workers = {}  # id -> dict(credit, inflight{seq: body}, heard, sent, max_held)
        self.pending = collections.deque()
        self.next_seq = 1
        self.acked = []
        self.requeued = 0
        self.deaths = 0
        self.byes = 0
        self.unknown_acks = 0
        self.bad = collections.Counter()
        self.outputs = []
        self.outputs_at_ack = []  # len(outputs) when each entry of acked arrived
        self.max_held = {}  # id -> most jobs in flight to it at once

    def enqueue(self, body):
        self.pending.append(bytes(body))

    def in_flight(self):
        return sum(len(w["inflight"]) for w in self.workers.values())

    def _send(self, wid, *frames):
        try:
            self.sock.send_multipart([wid] + list(frames), flags=zmq.NOBLOCK)
            self.workers.get(wid, {})["sent"] = _now_ms()
            return True
        except zmq.Again:
            return False
        except zmq.ZMQError as e:
            if e.errno == zmq.EHOSTUNREACH:
                self._forget(wid, dead=True)
            return False

    def _forget(self, wid, dead):
        w = self.workers.pop(wid, None)
        if w is None:
            return
        for seq in sorted(w["inflight"], reverse=True):
            self.pending.appendleft(w["inflight"][seq])
            self.requeued += 1
        if dead:
            self.deaths += 1
        else:
            self.byes += 1

    def _handle(self, frames):
        wid, rest = frames[0], frames[1:]
        if not rest or len(rest[0]) != 1:
            self.bad["command_size"] += 1
            return
        cmd, args = rest[0], rest[1:]
        if cmd == b"R" and not (len(args) == 1 and len(args[0]) == 4):
            self.bad["credit_frame"] += 1
            return
        if cmd == b"A" and not (len(args) == 1 and args[0] and len(args[0]) % 8 == 0):
            self.bad["ack_frame"] += 1
            return
        if cmd == b"O":
            if len(args) != 1:
                self.bad["output_frame"] += 1
                return
            # Kept even from an unknown worker, as the C hub does.
            self.outputs.append((wid, args[0]))
        if cmd in (b"H", b"B", b"N") and args:
            self.bad["heartbeat_frame"] += 1
            return
        if cmd not in (b"R", b"A", b"H", b"B", b"O", b"N"):
            self.bad["unknown_command"] += 1
            return
        w = self.workers.get(wid)
        if w is None:
            if cmd == b"B":
                return
            if cmd != b"R":
                # The worker may be gone already (its ack or heartbeat was its last word):
                # EHOSTUNREACH or a full pipe is nothing to act on, as in the C hub.
                try:
                    self.sock.send_multipart([wid, b"W"], flags=zmq.NOBLOCK)
                except zmq.ZMQError:
                    pass
                return
            w = self.workers[wid] = dict(credit=0, inflight={}, heard=_now_ms(),
                                         sent=_now_ms())
            if self.state_heartbeat:  # before any job, as the C hub does
                self._send(wid, b"H", struct.pack(">I", self.heartbeat_ms))
        w["heard"] = _now_ms()
        if cmd == b"R":
            w["credit"] += struct.unpack(">I", args[0])[0]
        elif cmd == b"A":
            for (seq,) in struct.iter_unpack(">Q", args[0]):
                body = w["inflight"].pop(seq, None)
                if body is None:
                    self.unknown_acks += 1
                else:
                    self.acked.append((wid, seq, body))
                    self.outputs_at_ack.append(len(self.outputs))
        elif cmd == b"B":
            self._forget(wid, dead=False)
        elif cmd == b"N":
            self._send(wid, b"H")  # the worker holds batched jobs: wake its poll

    def _pump(self):
        progress = True
        while self.pending and progress:
            progress = False
            for wid in list(self.workers):
                w = self.workers.get(wid)
                if not w or w["credit"] <= 0 or not self.pending:
                    continue
                seq, body = self.next_seq, self.pending[0]
                if not self._send(wid, b"J", struct.pack(">Q", seq), body):
                    continue
                self.pending.popleft()
                self.next_seq += 1
                w["credit"] -= 1
                w["inflight"][seq] = body
                self.max_held[wid] = max(self.max_held.get(wid, 0), len(w["inflight"]))
                progress = True

    def _tick(self):
        now = _now_ms()
        for wid in list(self.workers):
            w = self.workers[wid]
            if now - w["heard"] >= self.timeout_ms:
                self._forget(wid, dead=True)
            elif now - w["sent"] >= self.heartbeat_ms:
                self._send(wid, b"H")

    # At most this many messages read per poll (None: all waiting). A test that wants to
    # stop reading soon after the first jobs sets it, so one poll cannot drain thousands.
    max_per_poll = None

    def poll(self, timeout_ms=10):
        if self.sock.poll(timeout_ms, zmq.POLLIN):
            n = 0
            while self.max_per_poll is None or n < self.max_per_poll:
                try:
                    frames = self.sock.recv_multipart(flags=zmq.NOBLOCK)
                except zmq.Again:
                    break
                self._handle(frames)
                n += 1
        self._tick()
        self._pump()

    def run_until(self, cond, timeout=10.0):
        return _run_until(self, cond, timeout)

    def close(self):
        self.sock.close(0)


class FakeWorker:
    """A worker with a window. auto_ack: ack each job as it arrives. jobs: (seq, body).
    hub_heartbeat_ms: the heartbeat the hub stated when it registered us (None: not yet, or
    a hub that does not say); FakeWorker notes it and checks nothing."""

    def __init__(self, endpoint, window=10, heartbeat_ms=DEFAULT_HEARTBEAT_MS, auto_ack=True,
                 ctx=None):
        self.ctx = ctx or zmq.Context.instance()
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.ROUTING_ID, b"w" + os.urandom(8))
        self.sock.setsockopt(zmq.LINGER, 1000)
        self.sock.connect(endpoint)
        self.window = window
        self.heartbeat_ms = heartbeat_ms
        self.auto_ack = auto_ack
        self.held = set()
        self.credit = 0
        self.paused = False
        self.jobs = []
        self.resets = 0
        self.bad = 0
        self.hub_heartbeat_ms = None
        self._acks = []
        self._sent = 0.0
        self._grant(force=True)

    def _send(self, *frames):
        self.sock.send_multipart(list(frames))
        self._sent = _now_ms()

    def _grant(self, force=False):
        free = self.window - len(self.held) - self.credit
        if self.paused or free <= 0 or (not force and free < max(1, self.window // 4)):
            return
        self._send(b"R", struct.pack(">I", free))
        self.credit += free

    def _job(self, seq, body):
        self.jobs.append((seq, body))
        self.held.add(seq)
        self.credit = max(0, self.credit - 1)
        if self.auto_ack:
            self.ack(seq)

    def send_output(self, body):
        """Sends one output ("O"), e.g. a job for another pool, before acking its job."""
        self._send(b"O", bytes(body))

    def ack(self, seq):
        if seq in self.held:
            self.held.discard(seq)
            self._acks.append(seq)

    def flush(self):
        if self._acks:
            self._send(b"A", b"".join(struct.pack(">Q", s) for s in self._acks))
            self._acks = []

    def poll(self, timeout_ms=10):
        if self.sock.poll(timeout_ms, zmq.POLLIN):
            while True:
                try:
                    frames = self.sock.recv_multipart(flags=zmq.NOBLOCK)
                except zmq.Again:
                    break
                if frames[0] == b"J" and len(frames) == 3 and len(frames[1]) == 8:
                    self._job(struct.unpack(">Q", frames[1])[0], frames[2])
                elif frames[0] == b"K":
                    batch = parse_batch(frames[1]) if len(frames) == 2 else None
                    if batch is None:
                        self.bad += 1
                    for seq, body in batch or ():
                        self._job(seq, body)
                elif frames == [b"W"]:
                    self.resets += 1
                    self.credit = 0
                    self._grant(force=True)
                elif frames[0] == b"H" and len(frames) == 2 and len(frames[1]) == 4:
                    self.hub_heartbeat_ms = struct.unpack(">I", frames[1])[0]
                elif frames != [b"H"]:
                    self.bad += 1
        self.flush()
        self._grant()
        if _now_ms() - self._sent >= self.heartbeat_ms:
            self._send(b"H")

    def run_until(self, cond, timeout=10.0):
        return _run_until(self, cond, timeout)

    def close(self):
        """Graceful: flush acks, say "B", close with a bounded linger."""
        self.flush()
        self._send(b"B")
        self.sock.close(1000)

    def crash(self):
        """As if killed: nothing more is sent, queued messages are thrown away."""
        self.sock.close(0)
