"""A stalled APNs pool (a sender that connects and never reads, then none at all) does not
stop MQTT jobs nor client intake: the broker's bounded FIFO for apns fills, apns_in stops
being read (the resolver's PUSH blocks), and everything else goes on. A full resolve FIFO
pauses the fire-and-forget intake and makes acknowledged submits answer "overloaded"."""
import time

import zmq

import pp_harness as h
from broker_util import Broker, Zmq, apns_job, frame, mqtt_job, recv_all, submit

args = h.parse_args()
c = h.Checks()
wd = h.workdir("broker-stall")


def push_until_stuck(sock, make, quiet_s=1.0, limit=200000):
    """Sends with DONTWAIT until the socket has refused for quiet_s; returns the count."""
    sent, last = 0, time.time()
    while time.time() - last < quiet_s and sent < limit:
        try:
            sock.send(make(sent), zmq.DONTWAIT)
            sent += 1
            last = time.time()
        except zmq.Again:
            time.sleep(0.01)
    return sent


def other_flows_go_on(b, z, tag):
    mqtt_sink = z.sock(zmq.PULL, b.ep("mqtt_out"))
    resolve_sink = z.sock(zmq.PULL, b.ep("resolve"))
    resolver_mqtt = z.sock(zmq.PUSH, b.ep("mqtt_in"))
    client = z.sock(zmq.PUSH, b.ep("intake"))
    time.sleep(0.3)
    m_jobs = [mqtt_job("%032x" % i) for i in range(200)]
    for j in m_jobs:
        resolver_mqtt.send(j)
    got = recv_all(mqtt_sink, len(m_jobs))
    c.eq(len(got), 200, "%s: MQTT jobs still flow (200 of 200)" % tag)
    for i in range(200):
        client.send(frame(3, "u%d" % i, {"i": i}))
    got = recv_all(resolve_sink, 200)
    c.eq(len(got), 200, "%s: client intake still flows (200 of 200)" % tag)
    dealer = z.sock(zmq.DEALER, b.ep("submit"))
    r = submit(dealer, frame(3, "acked", {"a": 1}))
    c.check(r is not None and r.get("ok") is True, "%s: acknowledged submit accepted" % tag)


# --- A: an APNs sender that connects and never reads
b = Broker(args, wd, {"hwm": 20, "queue": {"apns": {"max_messages": 100}}}, name="stalled")
z = Zmq()
stalled = z.sock(zmq.PULL, b.ep("apns_out"), hwm=20)
resolver_apns = z.sock(zmq.PUSH, b.ep("apns_in"), hwm=20)
time.sleep(0.3)
big = apns_job("%032x" % 0, n_targets=20)  # ~2 KB: kernel buffers fill sooner
sent = push_until_stuck(resolver_apns, lambda i: big)
c.check(sent > 100, "the resolver could push %d APNS jobs before blocking" % sent)
depth = b.wait_metric("queue_depth", 100, stage="apns")
c.eq(depth, 100, "queue_depth{apns} shows the FIFO full at its bound")
c.check(b.metric("queue_full_total", stage="apns") >= 1, "queue_full_total{apns} counted")
try:
    resolver_apns.send(big, zmq.DONTWAIT)
    blocked = False
except zmq.Again:
    blocked = True
c.check(blocked, "backpressure reaches the resolver: its PUSH to apns_in would block")
c.check("event=queue_full stage=apns" in b.log(), "the full FIFO is logged")
other_flows_go_on(b, z, "stalled sender")
c.eq(b.metric("queue_depth", stage="apns"), 100, "the APNS FIFO is still held, not dropped")

# The pool grows: one more (reading) sender drains the FIFO and the broker reads apns_in
# again. Jobs already queued to the stalled sender stay with it (PUSH does not re-route).
reader = z.sock(zmq.PULL, b.ep("apns_out"))
got = 0
while reader.poll(1000):
    reader.recv()
    got += 1
c.check(got >= 100, "a new sender receives the held jobs and more (%d of %d sent)" % (got, sent))
try:
    h.wait_for(lambda: b.metric("queue_depth", stage="apns") == 0, 10)
    drained = True
except AssertionError:
    drained = False
c.check(drained, "the APNS FIFO drains to 0")
try:
    resolver_apns.send(big, zmq.DONTWAIT)
    unblocked = True
except zmq.Again:
    unblocked = False
c.check(unblocked, "the resolver can push again")
z.close()
c.eq(b.stop(), 0, "broker exits 0")

# --- B: no APNs sender at all, and no resolver either
b = Broker(args, wd, {"hwm": 20, "drain_ms": 500, "queue": {"apns": {"max_messages": 50},
                                           "resolve": {"max_messages": 30}}}, name="none")
z = Zmq()
resolver_apns = z.sock(zmq.PUSH, b.ep("apns_in"), hwm=20)
resolver_apns.setsockopt(zmq.SNDTIMEO, 5000)
for i in range(80):
    resolver_apns.send(apns_job("%032x" % i))
c.eq(b.wait_metric("queue_depth", 50, stage="apns"), 50,
     "no sender: queue_depth{apns} at its bound of 50")
c.eq(b.metric("received_total", endpoint="apns_in"), 50,
     "apns_in is not read beyond what the FIFO can hold")
mqtt_sink = z.sock(zmq.PULL, b.ep("mqtt_out"))
resolver_mqtt = z.sock(zmq.PUSH, b.ep("mqtt_in"))
time.sleep(0.3)
for i in range(100):
    resolver_mqtt.send(mqtt_job("%032x" % i))
c.eq(len(recv_all(mqtt_sink, 100)), 100, "no APNs sender: MQTT jobs still flow")

client = z.sock(zmq.PUSH, b.ep("intake"))
for i in range(40):
    client.send(frame(3, "u%d" % i, {"i": i}))
c.eq(b.wait_metric("queue_depth", 30, stage="resolve"), 30,
     "no resolver: queue_depth{resolve} at its bound of 30")
time.sleep(0.3)
c.eq(b.metric("received_total", endpoint="intake"), 30,
     "intake is not read while the resolve FIFO is full")
dealer = z.sock(zmq.DEALER, b.ep("submit"))
r = submit(dealer, frame(3, "x", {"a": 1}))
c.check(r is not None and r.get("ok") is False and r.get("reason") == "overloaded",
        "an acknowledged submit is answered overloaded (%r)" % r)
c.eq(b.metric("rejected_total", reason="overloaded"), 1, "rejected_total{overloaded}")
for i in range(10):
    resolver_mqtt.send(mqtt_job("%032x" % (500 + i)))
c.eq(len(recv_all(mqtt_sink, 10)), 10, "MQTT still flows with the resolve FIFO full too")
resolve_sink = z.sock(zmq.PULL, b.ep("resolve"))
got = recv_all(resolve_sink, 40)
c.eq(len(got), 40, "a resolver connecting late gets all 40 frames (held 30, then the rest)")
z.close()
c.eq(b.stop(), 0, "broker exits 0 (drain_ms runs out with APNS jobs held)")
c.check("event=drain_incomplete stage=apns dropped=50" in b.log(),
        "the 50 APNS jobs nobody took are logged at exit")
c.finish()
