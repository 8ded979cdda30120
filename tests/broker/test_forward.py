"""Jobs from resolvers: a resolver on the link (FakeResolver) takes RESOLVE jobs and sends
APNS and MQTT jobs back as outputs ("O"); the broker hands each to the apns or mqtt pool
by kind, and senders on the link (FakeWorker) receive them byte for byte, in order.
Outputs that are not APNS/MQTT jobs are counted as bad_job and dropped; a sender pool
grows by connecting one more worker."""
import collections

import msgpack
import zmq

import pp_harness as h
from broker_util import Broker, Zmq, apns_job, frame, mqtt_job, take, until

args = h.parse_args()
c = h.Checks()
wd = h.workdir("broker-forward")
b = Broker(args, wd)
z = Zmq()

# What the resolver makes of each RESOLVE job: keyed by the frame's user id.
plan = {}


def outputs(body):
    job = msgpack.unpackb(body, raw=False)
    return plan.get(job[4][0], [])


resolver = z.resolver(b.ep("resolve"), outputs, window=50)
apns_a = z.worker(b.ep("apns_out"), window=10)
mqtt_s = z.worker(b.ep("mqtt_out"), window=10)
everyone = [resolver, apns_a, mqtt_s]
c.check(until(lambda: all(b.metric("link_workers", pool=p) == 1
                          for p in ("resolve", "apns", "mqtt")), everyone),
        "one worker in each pool")

client = z.sock(zmq.PUSH, b.ep("intake"))
a_jobs = [apns_job("%032x" % i, n_targets=1 + i % 3) for i in range(50)]
m_jobs = [mqtt_job("%032x" % (1000 + i), topics=["pp/user/%d" % i]) for i in range(50)]
for i in range(50):
    plan["u%d" % i] = [a_jobs[i], m_jobs[i]]
    client.send(frame(3, "u%d" % i, {"i": i}))
got_a = take(apns_a, len(a_jobs), others=[resolver, mqtt_s])
got_m = take(mqtt_s, len(m_jobs), others=[resolver, apns_a])
c.eq(got_a, a_jobs, "APNS outputs arrive at the apns sender byte for byte, in order")
c.eq(got_m, m_jobs, "MQTT outputs arrive at the mqtt sender byte for byte, in order")
c.eq(resolver.done, 50, "the resolver acked its 50 RESOLVE jobs after their outputs")
c.check(until(lambda: b.metric("link_acks_total", pool="apns") == 50 and
              b.metric("link_acks_total", pool="mqtt") == 50 and
              b.metric("link_acks_total", pool="resolve") == 50, everyone),
        "every job of every pool acknowledged (link_acks_total)")
c.eq(b.metric("forwarded_total", stage="apns"), 50, "forwarded_total{apns}")
c.eq(b.metric("forwarded_total", stage="mqtt"), 50, "forwarded_total{mqtt}")
c.eq(b.metric("link_outputs_total", pool="resolve"), 100, "link_outputs_total{resolve}")

# not jobs, a RESOLVE job, an empty body, a two-frame "O": dropped and counted
resolve_kind = msgpack.packb([1, 1, "%032x" % 9, 3, ["u"], "{}", 0, {}], use_bin_type=True)
good_a, good_m = apns_job("%032x" % 4), mqtt_job("%032x" % 5)
plan["bad"] = [b"garbage", resolve_kind, b"", good_a, good_m]
client.send(frame(3, "bad", {"x": 1}))
resolver.w.sock.send_multipart([b"O", good_a, b"extra"])  # not one body frame
got_a = take(apns_a, 2, 1.0, others=[resolver, mqtt_s])
got_m = take(mqtt_s, 2, 1.0, others=[resolver, apns_a])
c.eq(got_a, [good_a], "only the good APNS output is forwarded")
c.eq(got_m, [good_m], "only the good MQTT output is forwarded")
c.eq(b.metric("bad_job_total", reason="not_a_job"), 2, "bad_job_total{not_a_job}: garbage, empty")
c.eq(b.metric("bad_job_total", reason="wrong_kind"), 1, "bad_job_total{wrong_kind}: a RESOLVE job")
c.eq(b.metric("link_bad_messages_total", pool="resolve", kind="output_frame"), 1,
     "a two-frame output is counted by the link (output_frame)")
c.check("event=bad_job from=resolve reason=wrong_kind" in b.log(), "bad jobs are logged")

# a pool grows by connecting one more process
apns_b = z.worker(b.ep("apns_out"), window=10)
everyone = [resolver, apns_a, apns_b, mqtt_s]
c.check(until(lambda: b.metric("link_workers", pool="apns") == 2, everyone),
        "a second apns sender joins")
more = [apns_job("%032x" % (5000 + i)) for i in range(100)]
plan["more"] = more
client.send(frame(3, "more", {"x": 1}))
until(lambda: len(apns_a.jobs) + len(apns_b.jobs) >= 151, everyone)
seen = collections.Counter(body for _, body in apns_a.jobs[51:] + apns_b.jobs)
c.eq(sum(seen.values()), 100, "all 100 jobs delivered across the pool")
c.eq(set(seen), set(more), "the right jobs, each once")
c.check(len(apns_a.jobs) > 51 and len(apns_b.jobs) > 0,
        "both senders of the pool got jobs (%d, %d)" % (len(apns_a.jobs) - 51, len(apns_b.jobs)))

z.close()
c.eq(b.stop(), 0, "broker exits 0 on SIGTERM")
c.finish()
