"""kill -9 of an mqtt-sender loses nothing. Two senders share one hub (FakeHub, the broker's
side of the link); one is killed with SIGKILL in the middle of a stream of 5,000 QoS 1 jobs
of 4 topics each (20,000 messages: enough that both senders have a backlog, so each
holds a full link window when the kill comes).
The hub declares it dead (its connection is gone, or at the latest after the 3 s heartbeat
timeout) and sends every job it held
unacknowledged to the other sender. In the end the subscriber has every message at least
once (duplicates, from jobs the killed sender had published but not yet acked, are counted
and printed) and the hub saw every job acked."""
import json
import signal
import time

import pp_harness as h
from mqtt_util import Feeder, Subscriber, start_sender, m, wait_metric

args = h.parse_args()
c = h.Checks()
wd = h.workdir("mqtt-kill")
mosq = h.Mosquitto(wd)
base = h.free_ports(7)
sub = Subscriber(mosq.port, ["kill/#"], qos=1)
feed = Feeder(base)

senders, mports = [], []
for i in range(2):
    p, mp = start_sender(args, wd, base, mosq.port, name="k%d" % i)
    senders.append(p)
    mports.append(mp)
for mp in mports:
    wait_metric(mp, "mqtt_connected", 1, timeout=10)
c.check(feed.wait(lambda st: st["workers"] == 2, 10), "both senders granted the hub credit")

jobs, per_job = 5000, 4
total = jobs * per_job
bodies = [Feeder.job(json.dumps({"i": i}), ["kill/%d/%d" % (i, k) for k in range(per_job)],
                     qos=1) for i in range(jobs)]
want = set(("kill/%d/%d" % (i, k), json.dumps({"i": i}).encode())
           for i in range(jobs) for k in range(per_job))
t0 = time.time()
feed.send_many(bodies)
# Kill sender 0 once it has done some of the work and while it holds jobs in the middle.
c.check(h.wait_for(lambda: m(mports[0], "jobs_acked_total") >= 500, 30, interval=0.002,
                   what="sender 0 acked 500 jobs"), "sender 0 was working")
at_kill = feed.stats()
held = at_kill["in_flight_by"]
senders[0].signal(signal.SIGKILL)
senders[0].p.wait(10)
acked0 = feed.acked_by()
print("     killed sender 0 (kill -9) with the hub's in-flight jobs per sender: %s; acked so "
      "far: %s" % (sorted(held.values()), sorted(acked0.values())))
c.check(at_kill["pending"] > 0 and min(held.values()) > 0,
        "the kill came in the middle of the stream (%d jobs acked, %d still pending at the "
        "hub, both senders holding jobs)" % (at_kill["acked"], at_kill["pending"]))

c.check(feed.wait(lambda st: st["acked"] >= jobs and st["in_flight"] == 0 and
                  st["pending"] == 0, 60), "the hub saw every job acked")
st = feed.stats()
print("     hub: acked=%d requeued=%d deaths=%d workers=%d unknown_acks=%d (%.1f s)" %
      (st["acked"], st["requeued"], st["deaths"], st["workers"], st["unknown_acks"],
       time.time() - t0))
c.eq(st["deaths"], 1, "the hub declared the killed sender dead")
c.check(st["requeued"] > 0, "the jobs it held were sent again (%d)" % st["requeued"])
c.eq(set(feed.acked_bodies()), set(bodies), "every one of the %d jobs acked" % jobs)
c.eq(st["acked"], jobs, "each job acked once")

sub.wait_count(total, timeout=30)
time.sleep(0.5)
msgs = sub.snapshot()
distinct = set(msgs)
missing = want - distinct
print("     subscriber: received=%d distinct=%d duplicates=%d missing=%d" %
      (len(msgs), len(distinct & want), len(msgs) - len(distinct), len(missing)))
c.eq(len(missing), 0, "every one of the %d messages received at least once" % total)
c.check(not (distinct - want), "nothing received that was not sent")
c.check(len(msgs) - len(distinct) <= st["requeued"] * per_job,
        "duplicates only from the jobs sent again (at most %d)" % (st["requeued"] * per_job))
c.eq(senders[1].stop(), 0, "the surviving sender: SIGTERM exits 0")
sub.stop()
feed.close()
c.finish()
