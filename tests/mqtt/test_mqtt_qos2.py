"""QoS 2 through pushpipe-mqtt-sender into a real mosquitto: jobs that ask for QoS 2, and
jobs that leave it to the sender's default (mqtt_sender.qos 2), are published at QoS 2;
a QoS 2 subscriber gets each message exactly once, also when mosquitto stops answering
for two seconds (SIGSTOP, then SIGCONT) in the middle of the stream; every publish is
acknowledged (the PUBCOMP) and every job acked to the hub once its publishes are done.

What QoS 2 does not promise here, and this test does not claim: after the MQTT connection
is lost the sender publishes what was in flight again on a new session, so a restart of
mosquitto can give duplicates (at least once, as at QoS 1: test_mqtt_restart)."""
import collections
import signal
import time

import pp_harness as h
from mqtt_util import Feeder, Subscriber, start_sender, m, wait_metric

args = h.parse_args()
c = h.Checks()
wd = h.workdir("mqtt-qos2")
mosq = h.Mosquitto(wd)
base = h.free_ports(7)
prefix = "q2%d" % base

seen = collections.Counter()
qos_of = {}
sub = Subscriber(mosq.port, ["%s/#" % prefix], qos=2)


def on_msg(cl, u, msg):
    with sub.lock:
        seen[msg.topic] += 1
        qos_of[msg.topic] = msg.qos
        sub.msgs.append((msg.topic, bytes(msg.payload)))


sub.c.on_message = on_msg
feed = Feeder(base)
sender, mport = start_sender(args, wd, base, mosq.port, extra={"qos": 2})
c.check(h.wait_for(lambda: m(mport, "ready") == 1, 10, what="ready"), "the sender is ready")

# 1. Explicit QoS 2 and the default (2 by config), a few topics per job.
feed.send("{\"a\":1}", ["%s/user/1" % prefix, "%s/user/2" % prefix], qos=2)
feed.send("{\"b\":1}", ["%s/group/g1" % prefix], qos=-1)
feed.send("{\"c\":1}", ["%s/user/q1" % prefix], qos=1)
c.check(sub.wait_count(4), "the subscriber got the 4 publishes")
time.sleep(0.3)
c.eq(qos_of.get("%s/user/1" % prefix), 2, "a job asking for QoS 2 is published at QoS 2")
c.eq(qos_of.get("%s/group/g1" % prefix), 2, "a job without QoS gets the default, here 2")
c.eq(qos_of.get("%s/user/q1" % prefix), 1, "a job asking for QoS 1 still gets QoS 1")

# 2. A stream of 9,000 QoS 2 publishes; mosquitto stops answering for 2 s in the middle.
n_jobs, per_job = 3000, 3
topics = ["%s/s/%d/%d" % (prefix, i, k) for i in range(n_jobs) for k in range(per_job)]
before = sub.count()
acked0 = m(mport, "acknowledged_total")
feed.send_many(Feeder.job("{\"i\":%d}" % i, topics[i * per_job:(i + 1) * per_job], qos=2)
               for i in range(n_jobs))
h.wait_for(lambda: m(mport, "acknowledged_total") >= acked0 + 300, 20, interval=0.005,
           what="part of the stream acknowledged")
mosq.proc.signal(signal.SIGSTOP)
at_stop = m(mport, "acknowledged_total") - acked0
c.check(at_stop < len(topics), "mosquitto paused mid-stream (%d of %d acknowledged)" %
        (at_stop, len(topics)))
time.sleep(2.0)
mosq.proc.signal(signal.SIGCONT)
c.check(sub.wait_count(before + len(topics), 60), "the subscriber got all %d stream publishes"
        % len(topics))
time.sleep(0.5)  # a duplicate would come now
with sub.lock:
    dup = sum(1 for t in topics if seen[t] > 1)
    missing = sum(1 for t in topics if seen[t] == 0)
    not2 = sum(1 for t in topics if qos_of.get(t) != 2)
c.eq((missing, dup), (0, 0), "each QoS 2 publish arrived exactly once (missing, duplicated)")
c.eq(not2, 0, "every one of them at QoS 2")
c.check(wait_metric(mport, "acknowledged_total", acked0 + len(topics)),
        "every publish acknowledged (PUBCOMP) in acknowledged_total")
c.check(feed.wait(lambda st: st["acked"] >= n_jobs + 3 and st["in_flight"] == 0, 30),
        "the hub saw every job acked, none in flight")
c.eq(m(mport, "failed_total"), 0.0, "nothing failed")
c.eq(m(mport, "reconnects_total"), 0.0, "the pause did not cost the connection")

sender.signal(signal.SIGTERM)
c.eq(sender.p.wait(15), 0, "SIGTERM: exit 0")
sub.stop()
feed.close()
c.finish()
