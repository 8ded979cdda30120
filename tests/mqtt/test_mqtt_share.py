"""Several mqtt-senders on one broker share the work: two senders with the same
configuration both take jobs from the hub (FakeHub, the broker's side of the link) and every
publish arrives exactly once; a third one started later, with no change anywhere else,
takes jobs too. The hub sees every job acked once."""
import json
import time

import pp_harness as h
from mqtt_util import Feeder, Subscriber, start_sender, m, wait_metric

args = h.parse_args()
c = h.Checks()
wd = h.workdir("mqtt-share")
mosq = h.Mosquitto(wd)
base = h.free_ports(7)
sub = Subscriber(mosq.port, ["share/#"], qos=1)
feed = Feeder(base)

# Identical configurations except the metrics port (all on one host); the default client
# id is unique per process.
mports = [h.free_port() for _ in range(3)]
senders = []
for i in range(2):
    p, _ = start_sender(args, wd, base, mosq.port, name="s%d" % i, metrics_port=mports[i])
    senders.append(p)
for mp in mports[:2]:
    wait_metric(mp, "mqtt_connected", 1, timeout=10)
c.check(feed.wait(lambda st: st["workers"] == 2, 10), "both senders granted the hub credit")

jobs, per_job = 1000, 10
for i in range(jobs):
    feed.send(json.dumps({"i": i}), ["share/user/%d/%d" % (i, k) for k in range(per_job)],
              qos=1)
c.check(sub.wait_count(jobs * per_job, timeout=30), "subscriber got all %d publishes"
        % (jobs * per_job))
time.sleep(0.3)
msgs = sub.snapshot()
c.eq(len(set(msgs)), jobs * per_job, "every (topic, payload) distinct and present")
c.eq(len(msgs), jobs * per_job, "no duplicates without failures")
j = [m(mp, "jobs_total") for mp in mports[:2]]
print("     jobs taken: sender0=%d sender1=%d" % tuple(j))
c.check(j[0] > 0 and j[1] > 0, "both senders took jobs")
c.eq(sum(j), float(jobs), "the jobs were split, none taken twice")
c.check(min(j) >= jobs * 0.3, "the split is roughly fair (each >= 30%)")
c.check(feed.wait(lambda st: st["acked"] >= jobs and st["in_flight"] == 0, 10),
        "the hub saw every job acked")
c.eq(sorted(feed.acked_by().values()), sorted(int(x) for x in j),
     "each sender acked exactly the jobs it took")

# A third sender, same configuration: adds capacity without touching anything else.
p, _ = start_sender(args, wd, base, mosq.port, name="s2", metrics_port=mports[2])
senders.append(p)
wait_metric(mports[2], "mqtt_connected", 1, timeout=10)
feed.wait(lambda st: st["workers"] == 3, 10)
n0 = sub.count()
for i in range(300):
    feed.send(json.dumps({"late": i}), ["share/group/%d" % i], qos=1)
c.check(sub.wait_count(n0 + 300), "all 300 later publishes arrived")
j3 = m(mports[2], "jobs_total")
print("     later jobs taken by the third sender: %d of 300" % j3)
c.check(j3 > 0, "the third sender took some of the later jobs")

ids = set()
for s in senders:
    for line in s.output().splitlines():
        if "event=sender_started" in line:
            ids.add(line.split("client_id=")[1].split()[0])
c.eq(len(ids), 3, "three distinct default client ids")
for s in senders:
    c.eq(s.stop(), 0, "SIGTERM exits 0 (%s)" % s.log_path.rsplit("/", 1)[1])
st = feed.stats()
c.eq((st["acked"], st["requeued"], st["deaths"], st["byes"]), (jobs + 300, 0, 0, 3),
     "hub: all %d jobs acked, none requeued, three byes" % (jobs + 300))
sub.stop()
feed.close()
c.finish()
