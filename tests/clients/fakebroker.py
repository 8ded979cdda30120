"""A stand-in for the broker's two client-facing sockets, for the clients' tests.

It binds a PULL (intake, base+0) and a ROUTER (submit, base+1) on free 127.0.0.1 ports,
records every message exactly as received (all ZMQ frames, raw bytes), and answers
acknowledged pushes in the pp_reply format. It does not validate frames the way the
real broker does: the tests compare the recorded bytes with the bytes they expect, and
a separate test runs the real broker when it is built.

Answers, chosen by the push's data (a map):
  {"reject": ...}  -> {"ok": false, "reason": "bad_data", "detail": "test rejection"}
  {"silent": ...}  -> no answer at all
  {"late": ms}     -> {"ok": true, "id": "late-<ms>"} after ms milliseconds
  {"garbage": ...} -> a reply that is not msgpack
  {"extra": ...}   -> three frames instead of [empty, reply]
  anything else    -> {"ok": true, "id": "m<n>"}, n counting accepted pushes from 1
"""
import threading
import time

import msgpack
import zmq

import pp_harness


def ok_reply(msg_id):
    return msgpack.packb({"ok": True, "id": msg_id}, use_bin_type=True)


def error_reply(reason, detail):
    return msgpack.packb({"ok": False, "reason": reason, "detail": detail}, use_bin_type=True)


class FakeBroker:
    def __init__(self, curve=False):
        """curve=True: both sockets are CURVE servers with a fresh key pair
        (self.server_public, z85 str); as in libzmq without a ZAP handler, any client
        that knows that key gets in."""
        self.base = pp_harness.free_ports(2)
        self.address = "tcp://127.0.0.1:%d" % self.base
        self.ctx = zmq.Context()
        self.pull = self.ctx.socket(zmq.PULL)
        self.router = self.ctx.socket(zmq.ROUTER)
        self.server_public = None
        if curve:
            public, secret = zmq.curve_keypair()
            self.server_public = public.decode()
            for s in (self.pull, self.router):
                s.curve_server = True
                s.curve_secretkey = secret
        self.pull.bind("tcp://127.0.0.1:%d" % self.base)
        self.router.bind("tcp://127.0.0.1:%d" % (self.base + 1))
        self.intake = []  # list of [frame, ...] per message on PULL
        self.submit = []  # list of [frame, ...] per message on ROUTER, identity removed
        self.accepted = 0
        self._late = []  # (due, identity, reply)
        self._lock = threading.Lock()
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _answer(self, identity, parts):
        try:
            frame = msgpack.unpackb(parts[-1], raw=False)
            data = frame[2] if isinstance(frame, list) and len(frame) >= 3 else {}
        except Exception:
            data = {}
        if not isinstance(data, dict):
            data = {}
        if "reject" in data:
            self.router.send_multipart([identity, b"", error_reply("bad_data", "test rejection")])
        elif "silent" in data:
            pass
        elif "late" in data:
            self._late.append((time.monotonic() + data["late"] / 1000.0, identity,
                               ok_reply("late-%d" % data["late"])))
        elif "garbage" in data:
            self.router.send_multipart([identity, b"", b"\xc1not msgpack"])
        elif "extra" in data:
            self.router.send_multipart([identity, b"", ok_reply("x"), b"more"])
        else:
            self.accepted += 1
            self.router.send_multipart([identity, b"", ok_reply("m%d" % self.accepted)])

    def _run(self):
        poller = zmq.Poller()
        poller.register(self.pull, zmq.POLLIN)
        poller.register(self.router, zmq.POLLIN)
        while not self._stop:
            events = dict(poller.poll(20))
            if self.pull in events:
                parts = self.pull.recv_multipart()
                with self._lock:
                    self.intake.append(parts)
            if self.router in events:
                parts = self.router.recv_multipart()
                with self._lock:
                    self.submit.append(parts[1:])
                self._answer(parts[0], parts[1:])
            now = time.monotonic()
            for item in [x for x in self._late if x[0] <= now]:
                self._late.remove(item)
                self.router.send_multipart([item[1], b"", item[2]])
        self.pull.close(0)
        self.router.close(0)

    def wait_intake(self, n, timeout=10.0):
        """The first n intake messages, waiting for them."""
        pp_harness.wait_for(lambda: len(self.intake) >= n, timeout,
                            what="%d intake messages (have %d)" % (n, len(self.intake)))
        with self._lock:
            return list(self.intake[:n])

    def wait_submit(self, n, timeout=10.0):
        pp_harness.wait_for(lambda: len(self.submit) >= n, timeout,
                            what="%d submit messages (have %d)" % (n, len(self.submit)))
        with self._lock:
            return list(self.submit[:n])

    def clear(self):
        with self._lock:
            self.intake.clear()
            self.submit.clear()

    def stop(self):
        self._stop = True
        self._thread.join(5)
        self.ctx.term()


def packb(obj):
    return msgpack.packb(obj, use_bin_type=True)
