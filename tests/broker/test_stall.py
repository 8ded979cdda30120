"""A stalled APNs pool stalls only what docs/broker.md says. A sender that takes jobs and
never acks (then no sender at all) fills the broker's bounded apns queue; the broker then
stops reading the resolvers' outputs, so backpressure reaches the resolvers (their sends
would block) and resolution stops: new MQTT jobs wait too, but MQTT jobs already queued
flow, client intake goes on into the bounded resolve queue, and acknowledged submits are
accepted. When the apns pool has room again (a reading sender joins) everything resumes
and nothing is lost. A full resolve queue pauses the fire-and-forget intake and makes
acknowledged submits answer "overloaded"."""
import time

import msgpack
import zmq

import pp_harness as h
from broker_util import (Broker, Zmq, apns_job, frame, mqtt_job, spin, submit, take, until)

args = h.parse_args()
c = h.Checks()
wd = h.workdir("broker-stall")

# --- A: an APNs sender that takes 10 jobs and never acks
b = Broker(args, wd, {"hwm": 20, "queue": {"apns": {"max_messages": 100}}}, name="stalled")
z = Zmq()
N = 2000
big = apns_job("%032x" % 0, n_targets=200)  # ~20 KB: buffers fill sooner
m_jobs = [mqtt_job("%032x" % i) for i in range(200)]
plan = {"m": m_jobs, "a": [big] * N}
resolver = z.resolver(b.ep("resolve"), lambda body: plan.get(msgpack.unpackb(body)[4][0], []),
                      sndhwm=20)
stalled = z.worker(b.ep("apns_out"), window=10, auto_ack=False)
mqtt_s = z.worker(b.ep("mqtt_out"), window=100)
everyone = [resolver, stalled, mqtt_s]
until(lambda: all(b.metric("link_workers", pool=p) == 1 for p in ("resolve", "apns", "mqtt")),
      everyone)
client = z.sock(zmq.PUSH, b.ep("intake"))
client.send(frame(3, "m", {"x": 1}))
client.send(frame(3, "a", {"x": 1}))
# Until the resolver has been blocked for a whole second.
since = [None]


def stuck():
    if not resolver.blocked():
        since[0] = None
        return False
    since[0] = since[0] or time.time()
    return time.time() - since[0] >= 1.0


until(stuck, everyone, 30)
c.check(resolver.blocked(), "backpressure reaches the resolver: its output would block")
c.check(110 < resolver.sent < 200 + N,
        "the resolver could send %d outputs before blocking (of %d)" % (resolver.sent, 200 + N))
c.eq(b.metric("queue_depth", stage="apns"), 100, "queue_depth{apns} shows the queue full at its bound")
c.eq(b.metric("link_in_flight", pool="apns"), 10, "the stalled sender holds its window of 10")
c.check(b.metric("queue_full_total", stage="apns") >= 1, "queue_full_total{apns} counted")
c.check("event=queue_full stage=apns" in b.log(), "the full queue is logged")
c.eq(len(take(mqtt_s, 200, 5, others=everyone)), 200,
     "MQTT jobs queued before the stall still flow (200 of 200)")

# Client intake goes on (into the bounded resolve queue) and submits are accepted.
for i in range(200):
    client.send(frame(3, "u%d" % i, {"i": i}))
c.eq(b.wait_metric("accepted_total", 202, workers=[stalled, mqtt_s]), 202,
     "client intake still flows (200 of 200 accepted)")
dealer = z.sock(zmq.DEALER, b.ep("submit"))
r = submit(dealer, frame(3, "acked", {"a": 1}), workers=[stalled, mqtt_s])
c.check(r is not None and r.get("ok") is True, "an acknowledged submit is accepted (%r)" % r)

# What the docs say stops: a second resolver's MQTT output is not read while apns is full.
late_m = mqtt_job("%032x" % 999)
plan["late"] = [late_m]
r2 = z.resolver(b.ep("resolve"), lambda body: plan.get(msgpack.unpackb(body)[4][0], []))
client.send(frame(3, "late", {"x": 1}))
spin([r2, stalled, mqtt_s], 1.0)
c.eq(len(mqtt_s.jobs), 200, "a new MQTT job waits while the apns queue is full (documented)")
c.eq(b.metric("queue_depth", stage="apns"), 100, "the APNS queue is still held, not dropped")

# The pool grows: a reading sender drains the queue, the broker reads the resolvers again,
# the resolver finishes; the stalled sender's 10 come back when it dies.
reader = z.worker(b.ep("apns_out"), window=1000)
everyone = [resolver, r2, stalled, mqtt_s, reader]
# 204 RESOLVE jobs in all: "m", "a", 200 from intake, the submit, "late".
until(lambda: resolver.done + r2.done >= 204 and len(reader.jobs) >= N - 10, everyone, 60)
c.eq(resolver.done + r2.done, 204, "the resolvers finish every RESOLVE job")
c.eq(len(reader.jobs), N - 10, "the new sender receives every APNS job not held by the stalled one")
c.check(not resolver.blocked() and resolver.sent == 200 + N, "the resolver could send all its outputs")
c.eq(take(mqtt_s, 1, 5, others=everyone), [late_m], "the waiting MQTT job flows")
stalled.crash()
everyone.remove(stalled)
until(lambda: len(reader.jobs) >= N, everyone, 10)
c.eq(len(reader.jobs), N, "the stalled sender's 10 are redelivered when it dies: nothing lost")
c.check(until(lambda: b.metric("queue_depth", stage="apns") == 0 and
              b.metric("link_in_flight", pool="apns") == 0, everyone),
        "the APNS queue drains to 0, all acked")
z.close()
c.eq(b.stop(), 0, "broker exits 0")

# --- B: no APNs sender at all, and a resolver busy with one job
b = Broker(args, wd, {"hwm": 20, "drain_ms": 500, "queue": {"apns": {"max_messages": 50},
                                           "resolve": {"max_messages": 30}}}, name="none")
z = Zmq()
a_jobs = [apns_job("%032x" % i) for i in range(80)]
m_jobs = [mqtt_job("%032x" % i) for i in range(100)]
resolver = z.resolver(b.ep("resolve"), lambda body: m_jobs + a_jobs, window=1)
until(lambda: b.metric("link_workers", pool="resolve") == 1, [resolver])
client = z.sock(zmq.PUSH, b.ep("intake"))
client.send(frame(3, "first", {"i": 0}))
c.eq(b.wait_metric("queue_depth", 50, stage="apns", workers=[resolver]), 50,
     "no sender: queue_depth{apns} at its bound of 50")
spin([resolver], 0.3)
c.eq(b.metric("link_outputs_total", pool="resolve"), 150,
     "the resolver's outputs are not read beyond what the apns queue can hold (100 MQTT + 50)")
mqtt_s = z.worker(b.ep("mqtt_out"), window=1000)
c.eq(len(take(mqtt_s, 100, 5, others=[resolver])), 100,
     "no APNs sender: MQTT jobs already queued still flow")

for i in range(40):
    client.send(frame(3, "u%d" % i, {"i": i}))
c.eq(b.wait_metric("queue_depth", 30, stage="resolve", workers=[resolver, mqtt_s]), 30,
     "the resolver is busy: queue_depth{resolve} at its bound of 30")
spin([resolver, mqtt_s], 0.3)
c.eq(b.metric("received_total", endpoint="intake"), 31,
     "intake is not read while the resolve queue is full (1 + 30)")
dealer = z.sock(zmq.DEALER, b.ep("submit"))
r = submit(dealer, frame(3, "x", {"a": 1}), workers=[resolver, mqtt_s])
c.check(r is not None and r.get("ok") is False and r.get("reason") == "overloaded",
        "an acknowledged submit is answered overloaded (%r)" % r)
c.eq(b.metric("rejected_total", reason="overloaded"), 1, "rejected_total{overloaded}")
z.close()
c.eq(b.stop(), 0, "broker exits 0 (drain_ms runs out with jobs held)")
c.check("event=drain_incomplete stage=apns dropped=50" in b.log(),
        "the 50 APNS jobs nobody took are logged at exit")
c.check("event=drain_incomplete stage=resolve dropped=31 pending=30 in_flight=1" in b.log(),
        "and the 30 pending RESOLVE jobs and the one the resolver never acked")
c.finish()
