"""Client frames through the real broker: fire-and-forget (PULL intake) and acknowledged
(ROUTER submit) frames reach a resolver on the link (a FakeWorker on the resolve pool) as
RESOLVE jobs with the documented fields; acknowledged frames get the job's id back; the
resolver's acks empty the pool."""
import json
import time

import msgpack
import zmq

import pp_harness as h
from broker_util import HEX32, Broker, Zmq, frame, submit, take_jobs, until

args = h.parse_args()
c = h.Checks()
wd = h.workdir("broker-intake")
b = Broker(args, wd, {"instance_id": "00000000c0ffee01"})
z = Zmq()
sink = z.worker(b.ep("resolve"), window=1000)
c.check(until(lambda: b.metric("link_workers", pool="resolve") == 1, [sink]),
        "the resolver joins the resolve pool")

# --- fire-and-forget
push = z.sock(zmq.PUSH, b.ep("intake"))
t0 = int(time.time() * 1e6)
push.send(frame(1, 42, {"title": "hello", "n": 1}))
push.send(frame(2, ["u1", 7, "u1", "u2", 7], {"k": [1, 2, {"x": None}]},
                {"id": "client-7", "channels": "mqtt", "mqtt_qos": 2}))
push.send(frame(3, "user-9", {"é": "ü"}, {"apns_priority": 5, "apns_collapse_id": "c1"}))
jobs = take_jobs(sink, 3)
t1 = int(time.time() * 1e6)
c.eq(len(jobs), 3, "three RESOLVE jobs arrive at the resolver")
for j in jobs:
    c.eq(j[:2], [1, 1], "job kind RESOLVE, version 1")
    c.eq(len(j), 8, "RESOLVE has 8 fields")
    c.check(isinstance(j[2], str) and HEX32.match(j[2]), "msg_id is 32 hex: %r" % j[2])
    c.check(j[2].startswith("00000000c0ffee01"), "msg_id starts with the configured instance")
    c.check(t0 <= j[6] <= t1, "received_us is the broker's wall clock at acceptance")
by_type = {j[3]: j for j in jobs}
if len(by_type) == 3:
    c.eq(by_type[1][4], ["42"], "type 1: the group id normalised to a string")
    c.eq(json.loads(by_type[1][5]), {"title": "hello", "n": 1}, "type 1: data as JSON")
    c.eq(by_type[2][4], ["u1", "7", "u2"], "type 2: ids normalised and de-duplicated in order")
    c.eq(json.loads(by_type[2][5]), {"k": [1, 2, {"x": None}]}, "type 2: nested data as JSON")
    o2 = by_type[2][7]
    c.eq((o2.get("id"), o2.get("ch"), o2.get("qos")), ("client-7", 2, 2),
         "type 2: options id/channels/mqtt_qos carried in opts")
    c.eq(by_type[3][4], ["user-9"], "type 3: one user id")
    c.eq(json.loads(by_type[3][5]), {"é": "ü"}, "type 3: UTF-8 data kept")
    o3 = by_type[3][7]
    c.eq((o3.get("pr"), o3.get("ci"), o3.get("ch")), (5, "c1", 3),
         "type 3: apns options carried, channels default to both")
ids = [j[2] for j in jobs]
c.eq(len(set(ids)), len(ids), "ids differ")

# --- acknowledged: DEALER ([identity][frame]) and REQ ([identity][empty][frame])
dealer = z.sock(zmq.DEALER, b.ep("submit"))
acked = []
for i in range(5):
    r = submit(dealer, frame(3, "ack-%d" % i, {"i": i}), workers=[sink])
    c.check(r is not None and r.get("ok") is True, "DEALER submit %d accepted: %r" % (i, r))
    if r:
        c.check(HEX32.match(r.get("id", "")) is not None, "reply id is 32 hex")
        acked.append(r.get("id"))
got = take_jobs(sink, 5)
c.eq([j[2] for j in got], acked, "each job's msg_id is the id in its reply, in order")
c.eq([j[4] for j in got], [["ack-%d" % i] for i in range(5)], "jobs carry their frames")

req = z.sock(zmq.REQ, b.ep("submit"))
req.send(frame(1, "g1", {"via": "req"}))
c.check(until(lambda: req.poll(0), [sink], 5), "REQ gets a reply (delimiter kept)")
r = msgpack.unpackb(req.recv(), raw=False) if req.poll(0) else None
j = (take_jobs(sink, 1) or [None])[0]
c.check(r is not None and r.get("ok") and j is not None and r["id"] == j[2],
        "REQ submit accepted with the job's id")

# --- counters
c.eq(b.metric("accepted_total"), 9, "accepted_total counts every accepted frame")
c.eq(b.metric("received_total", endpoint="intake"), 3, "received_total{intake}")
c.eq(b.metric("received_total", endpoint="submit"), 6, "received_total{submit}")
c.eq(b.metric("duplicates_removed_total"), 2, "duplicates_removed_total counts u1 and 7")
c.eq(b.metric("forwarded_total", stage="resolve"), 9, "forwarded_total{resolve}")
c.check(until(lambda: b.metric("link_acks_total", pool="resolve") == 9, [sink]),
        "the resolver's 9 acks reach the broker (link_acks_total{resolve})")
c.eq(b.metric("link_in_flight", pool="resolve"), 0, "nothing left in flight")
c.eq(b.metric("queue_depth", stage="resolve"), 0, "nothing left pending")
c.eq(sink.bad, 0, "the broker sent the worker nothing malformed")
c.eq(b.metric("rejected_total"), 0, "nothing rejected")

z.close()
c.eq(b.stop(), 0, "broker exits 0 on SIGTERM")
c.finish()
