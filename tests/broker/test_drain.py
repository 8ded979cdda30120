"""SIGTERM: the broker stops intake, keeps forwarding what it holds (and what resolvers
still send on apns_in/mqtt_in) to peers that connect late within drain_ms, and exits 0.
What it cannot forward within drain_ms is counted and logged, and it still exits 0."""
import signal
import time

import zmq

import pp_harness as h
from broker_util import Broker, Zmq, apns_job, frame, recv_all, recv_job

args = h.parse_args()
c = h.Checks()
wd = h.workdir("broker-drain")

# --- held jobs flushed to a resolver that connects after SIGTERM
b = Broker(args, wd, {"drain_ms": 6000}, name="flush")
z = Zmq()
client = z.sock(zmq.PUSH, b.ep("intake"))
for i in range(50):
    client.send(frame(3, "u%d" % i, {"i": i}))
c.eq(b.wait_metric("queue_depth", 50, stage="resolve"), 50,
     "50 RESOLVE jobs held (no resolver connected)")
apns_sink = z.sock(zmq.PULL, b.ep("apns_out"))
resolver_apns = z.sock(zmq.PUSH, b.ep("apns_in"))
dealer = z.sock(zmq.DEALER, b.ep("submit"))
time.sleep(0.3)
b.proc.signal(signal.SIGTERM)
time.sleep(0.5)
c.check(b.proc.alive(), "the broker keeps running while it holds jobs")
dealer.send(frame(3, "late", {"a": 1}))
c.check(not dealer.poll(500), "submit is closed after SIGTERM (no reply)")
in_flight = [apns_job("%032x" % i) for i in range(10)]
for j in in_flight:
    resolver_apns.send(j)
got_apns = recv_all(apns_sink, 10)
c.eq(got_apns, in_flight, "jobs resolvers send during the drain are passed on")
sink = z.sock(zmq.PULL, b.ep("resolve"))  # the resolver connects late
got = [recv_job(sink) for _ in range(50)]
got = [g for g in got if g is not None]
c.eq(len(got), 50, "the late resolver gets all 50 held jobs")
c.eq(sorted(g[4][0] for g in got), sorted("u%d" % i for i in range(50)), "the right jobs")
c.eq(recv_job(sink, 300), None, "the frame sent after SIGTERM was not accepted")
try:
    b.proc.p.wait(10)
except Exception:
    pass
c.eq(b.proc.p.returncode, 0, "the broker exits 0 after the drain")
log = b.log()
c.check("event=draining" in log and "event=drained" in log, "drain logged")
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
c.check("event=drain_incomplete stage=resolve dropped=7" in b.log(),
        "the jobs it could not forward are logged with their count")
z.close()
c.finish()
