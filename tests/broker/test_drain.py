"""SIGTERM: the broker stops intake (acknowledged submits are answered "stopping"), keeps
dispatching what it holds, and what resolvers still send, to workers that connect late
within drain_ms, and exits 0 once no pool has anything pending or unacknowledged. What it
cannot hand over and have acknowledged within drain_ms (pending, or held by a worker that
never acks) is counted and logged, and it still exits 0."""
import re
import signal

import msgpack
import zmq

import pp_harness as h
from broker_util import Broker, Zmq, apns_job, frame, spin, submit, take, take_jobs, until

args = h.parse_args()
c = h.Checks()
wd = h.workdir("broker-drain")

# --- held jobs dispatched to a resolver (and its outputs to a sender) after SIGTERM
b = Broker(args, wd, {"drain_ms": 6000}, name="flush")
z = Zmq()
client = z.sock(zmq.PUSH, b.ep("intake"))
for i in range(50):
    client.send(frame(3, "u%d" % i, {"i": i}))
c.eq(b.wait_metric("queue_depth", 50, stage="resolve"), 50,
     "50 RESOLVE jobs held (no resolver connected)")
dealer = z.sock(zmq.DEALER, b.ep("submit"))
b.proc.signal(signal.SIGTERM)
spin([], 0.5)
c.check(b.proc.alive(), "the broker keeps running while it holds jobs")
r = submit(dealer, frame(3, "late", {"a": 1}))
c.check(r is not None and r.get("ok") is False and r.get("reason") == "stopping",
        "a submit during the drain is answered stopping (%r)" % r)
client.send(frame(3, "late-push", {"a": 1}))
resolver = z.resolver(b.ep("resolve"), lambda body: [
    apns_job("%032x" % int(msgpack.unpackb(body, raw=False)[4][0][1:]))])
apns_s = z.worker(b.ep("apns_out"), window=100)
got = take_jobs(resolver, 50, 10, others=[apns_s])
c.eq(len(got), 50, "the late resolver gets all 50 held jobs")
c.eq(sorted(g[4][0] for g in got), sorted("u%d" % i for i in range(50)), "the right jobs")
got_a = take(apns_s, 50, 10, others=[resolver])
c.eq(len(got_a), 50, "outputs resolvers send during the drain reach a late sender (50)")
c.eq(sorted(msgpack.unpackb(a, raw=False)[2] for a in got_a),
     sorted("%032x" % i for i in range(50)), "the right APNS jobs")
until(lambda: not b.proc.alive(), [resolver, apns_s], 10)
c.eq(len(resolver.jobs), 50, "the frames sent after SIGTERM were not accepted")
c.eq(b.proc.p.returncode, 0, "the broker exits 0 once everything is acknowledged")
log = b.log()
c.check("event=draining" in log and "event=drained" in log, "drain logged")
c.check("event=frame_rejected endpoint=submit reason=stopping" in log, "the stopping reply is logged")
c.check("drain_incomplete" not in log, "nothing left behind")
z.close()

# --- nobody connects: the drain gives up after drain_ms, counts and logs the loss
b = Broker(args, wd, {"drain_ms": 500}, name="giveup")
z = Zmq()
client = z.sock(zmq.PUSH, b.ep("intake"))
for i in range(7):
    client.send(frame(3, "u%d" % i, {"i": i}))
c.eq(b.wait_metric("queue_depth", 7, stage="resolve"), 7, "7 jobs held")
c.eq(b.stop(), 0, "exits 0 when drain_ms runs out with jobs held")
c.check("event=drain_incomplete stage=resolve dropped=7 pending=7 in_flight=0" in b.log(),
        "the jobs it could not hand over are logged with their count")
left = [i for l in b.log().splitlines() if "event=drain_left_ids stage=resolve" in l
        for i in l.split("ids=")[1].split(",")]
c.eq(len(left), 7, "... and with their message ids (%r)" % left[:2])
c.check(all(re.match(r"^[0-9a-f]{32}$", i) for i in left), "the ids are message ids")
z.close()

# --- a worker holds jobs and never acks: they count as left too
b = Broker(args, wd, {"drain_ms": 500}, name="unacked")
z = Zmq()
hold = z.worker(b.ep("resolve"), window=5, auto_ack=False)
client = z.sock(zmq.PUSH, b.ep("intake"))
for i in range(8):
    client.send(frame(3, "u%d" % i, {"i": i}))
c.eq(len(take(hold, 5, 5)), 5, "a resolver holds 5 jobs without acking")
b.proc.signal(signal.SIGTERM)
until(lambda: not b.proc.alive(), [hold], 10)
c.eq(b.proc.p.returncode, 0, "exits 0")
c.check("event=drain_incomplete stage=resolve dropped=8 pending=3 in_flight=5" in b.log(),
        "unacknowledged jobs are counted as left, apart from the pending ones")
z.close()
c.finish()
