"""Every rejection reason through the ROUTER reply and /metrics; rejected frames never
reach resolvers, their logs are rate-limited and never carry the frame; a flood of garbage
on the fire-and-forget intake does not stop good frames."""
import os
import random
import time

import msgpack
import zmq

import pp_harness as h
from broker_util import Broker, Zmq, frame, spin, submit, take, until

args = h.parse_args()
c = h.Checks()
wd = h.workdir("broker-reject")
b = Broker(args, wd, {"limits": {"max_frame_bytes": 2048}, "log_rejects_per_s": 5})
z = Zmq()
sink = z.worker(b.ep("resolve"), window=1000)
dealer = z.sock(zmq.DEALER, b.ep("submit"))
until(lambda: b.metric("link_workers", pool="resolve") == 1, [sink])

MARKER = "SECRETMARKER"
deep = {}
cur = deep
for _ in range(40):
    cur["d"] = {}
    cur = cur["d"]
cases = [
    ("not_msgpack", b"\xc1"),
    ("truncated", b"\x93\x03\xa5us"),
    ("trailing_bytes", frame(3, "u", {"a": 1}) + b"\x00"),
    ("not_array", msgpack.packb({"a": 1})),
    ("bad_arity", msgpack.packb([3, "u"])),
    ("bad_push_type", frame(4, "u", {"a": 1})),
    ("bad_push_id", frame(3, 1.5, {"a": 1})),
    ("bad_data", frame(3, "u", [1, 2])),
    # a str whose bytes are not UTF-8: [3, "u", {"a": <str ff fe>}]
    ("bad_utf8", b"\x93\x03\xa1u\x81\xa1a\xa2\xff\xfe"),
    ("too_large", frame(3, "u", {"big": MARKER * 300})),
    ("id_too_long", frame(3, "x" * 65, {"a": 1})),
    ("bad_key", msgpack.packb([3, "u", {1: "x"}])),
    ("too_deep", frame(3, "u", deep)),
    ("bad_options", frame(3, "u", {"a": 1}, {"no_such_option": 1})),
]
for reason, payload in cases:
    r = submit(dealer, payload, workers=[sink])
    c.check(r is not None and r.get("ok") is False and r.get("reason") == reason,
            "%s: rejected with reason %s (%r)" % (reason, reason, r))
    if r:
        c.check(isinstance(r.get("detail"), str) and r["detail"] != "",
                "%s: reply carries a detail" % reason)

dealer.send_multipart([frame(3, "u", {"a": 1}), b"second part"])
r = msgpack.unpackb(dealer.recv(), raw=False) if dealer.poll(5000) else None
c.check(r is not None and r.get("reason") == "multipart",
        "multipart: a two-part frame is rejected as multipart (%r)" % r)
req = z.sock(zmq.REQ, b.ep("submit"))
req.send_multipart([frame(3, "u", {"a": 1}), b"x"])
r = msgpack.unpackb(req.recv(), raw=False) if req.poll(5000) else None
c.check(r is not None and r.get("reason") == "multipart",
        "multipart: behind a REQ envelope too (%r)" % r)

for reason, _ in cases + [("multipart", None)]:
    want = 2 if reason == "multipart" else 1
    c.eq(b.metric("rejected_total", reason=reason), want, "rejected_total{%s}" % reason)
c.eq(b.metric("rejected_total", reason="overloaded"), 0, "overloaded series shown at 0")
c.eq(b.metric("rejected_total", reason="stopping"), 0, "stopping series shown at 0")
c.eq(b.metric("accepted_total"), 0, "no rejected frame accepted")
spin([sink], 0.3)
c.eq(len(sink.jobs), 0, "no rejected frame reaches the resolvers")

log = b.log()
c.check("event=frame_rejected endpoint=submit reason=not_msgpack" in log and "size=1 " in log,
        "rejections are logged with reason and size")
c.check(MARKER not in log, "the frame itself is never logged")

# --- a flood of garbage on intake with good frames mixed in
push = z.sock(zmq.PUSH, b.ep("intake"))
rnd = random.Random(7)
n_garbage, n_good = 0, 0
for i in range(20000):
    if i % 100 == 0:
        push.send(frame(3, "good-%d" % n_good, {"i": n_good}))
        n_good += 1
    else:
        push.send(bytes(rnd.getrandbits(8) for _ in range(rnd.randint(0, 40))))
        n_garbage += 1
got = take(sink, n_good, 10)
c.eq(len(got), n_good, "every good frame in the flood reaches the resolvers")
ok_ids = sorted(msgpack.unpackb(g, raw=False)[4][0] for g in got)
c.eq(ok_ids, sorted("good-%d" % i for i in range(n_good)), "the right frames")
b.wait_metric("received_total", 20000, endpoint="intake", workers=[sink])
rejected = b.metric("rejected_total")
accepted = b.metric("accepted_total")
c.eq(accepted, n_good, "accepted_total counts the good frames")
c.eq(rejected, len(cases) + 2 + n_garbage, "every garbage frame counted as rejected")
n_lines = b.log().count("event=frame_rejected")
c.check(n_lines < 200, "reject logs are rate-limited (%d lines for %d rejects)" %
        (n_lines, rejected))
c.check("suppressed=" in b.log(), "log lines say how many were suppressed")
r = submit(dealer, frame(3, "after", {"a": 1}), workers=[sink])
c.check(r is not None and r.get("ok") is True, "the broker still accepts after the flood")

z.close()
c.eq(b.stop(), 0, "broker exits 0 on SIGTERM")
c.finish()
