"""Jobs from resolvers: apns_in -> apns_out and mqtt_in -> mqtt_out, byte for byte; jobs
of the wrong kind or not jobs at all are counted as bad_job and dropped; a sender pool
grows by connecting one more PULL."""
import time

import zmq

import pp_harness as h
from broker_util import Broker, Zmq, apns_job, mqtt_job, recv_all

args = h.parse_args()
c = h.Checks()
wd = h.workdir("broker-forward")
b = Broker(args, wd)
z = Zmq()
apns_a = z.sock(zmq.PULL, b.ep("apns_out"))
mqtt_out = z.sock(zmq.PULL, b.ep("mqtt_out"))
resolver_apns = z.sock(zmq.PUSH, b.ep("apns_in"))
resolver_mqtt = z.sock(zmq.PUSH, b.ep("mqtt_in"))
time.sleep(0.3)

a_jobs = [apns_job("%032x" % i, n_targets=1 + i % 3) for i in range(50)]
m_jobs = [mqtt_job("%032x" % (1000 + i), topics=["pp/user/%d" % i]) for i in range(50)]
for j in a_jobs:
    resolver_apns.send(j)
for j in m_jobs:
    resolver_mqtt.send(j)
got_a = recv_all(apns_a, len(a_jobs))
got_m = recv_all(mqtt_out, len(m_jobs))
c.eq(got_a, a_jobs, "APNS jobs arrive at apns_out byte for byte, in order")
c.eq(got_m, m_jobs, "MQTT jobs arrive at mqtt_out byte for byte, in order")
c.eq(b.metric("forwarded_total", stage="apns"), 50, "forwarded_total{apns}")
c.eq(b.metric("forwarded_total", stage="mqtt"), 50, "forwarded_total{mqtt}")
c.eq(b.metric("received_total", endpoint="apns_in"), 50, "received_total{apns_in}")

# wrong kind, garbage, multipart: dropped and counted
resolver_apns.send(mqtt_job("%032x" % 1))          # an MQTT job on apns_in
resolver_apns.send(b"garbage")
resolver_apns.send_multipart([apns_job("%032x" % 2), b"extra"])
resolver_mqtt.send(apns_job("%032x" % 3))          # an APNS job on mqtt_in
resolver_mqtt.send(b"")
good_a, good_m = apns_job("%032x" % 4), mqtt_job("%032x" % 5)
resolver_apns.send(good_a)                         # a good one after the bad ones
resolver_mqtt.send(good_m)
got_a = recv_all(apns_a, 2, 1000)
got_m = recv_all(mqtt_out, 2, 1000)
c.eq(got_a, [good_a], "only the good APNS job is forwarded")
c.eq(got_m, [good_m], "only the good MQTT job is forwarded")
c.eq(b.metric("bad_job_total", stage="apns"), 3, "bad_job_total{apns}: wrong kind, garbage, multipart")
c.eq(b.metric("bad_job_total", stage="mqtt"), 2, "bad_job_total{mqtt}: wrong kind, empty")
c.check("event=bad_job stage=apns reason=wrong_kind" in b.log(), "bad jobs are logged")

# a pool grows by connecting one more process
apns_b = z.sock(zmq.PULL, b.ep("apns_out"))
time.sleep(0.3)
for i in range(100):
    resolver_apns.send(apns_job("%032x" % (5000 + i)))
seen_a, seen_b = [], []
deadline = time.time() + 10
while len(seen_a) + len(seen_b) < 100 and time.time() < deadline:
    for s, seen in ((apns_a, seen_a), (apns_b, seen_b)):
        while s.poll(10):
            seen.append(s.recv())
c.eq(len(seen_a) + len(seen_b), 100, "all 100 jobs delivered across the pool")
c.check(len(seen_a) > 0 and len(seen_b) > 0,
        "both senders of the pool got jobs (%d, %d)" % (len(seen_a), len(seen_b)))

z.close()
c.eq(b.stop(), 0, "broker exits 0 on SIGTERM")
c.finish()
