"""mqtt-sender against a real mosquitto, fed by a FakeHub (the broker's side of the link):
user and group topics, QoS 0 and 1, the exact payload bytes, the default QoS, every job
acked to the hub once its publishes are done, bad jobs and bad topics counted (not a crash)
and acked, bad configuration (exit 2), and a SIGTERM that exits 0 once what the sender holds
is acknowledged (the rest stays with the hub and goes to the next sender)."""
import json
import re
import signal
import time

import pp_harness as h
from mqtt_util import Feeder, Subscriber, start_sender, m, wait_metric

args = h.parse_args()
c = h.Checks()
wd = h.workdir("mqtt-basic")
mosq = h.Mosquitto(wd)
base = h.free_ports(7)
prefix = "pp%d" % base

sub = Subscriber(mosq.port, ["%s/#" % prefix], qos=1)
feed = Feeder(base)
sender, mport = start_sender(args, wd, base, mosq.port)
c.check(h.wait_for(lambda: m(mport, "ready") == 1, 10, what="ready"),
        "pushpipe_ready is 1 once the sender has started")

# One payload, several user and group topics, QoS 1 (explicit), 0 and the default.
payload = json.dumps({"title": "h\u00e9llo \u2603", "n": 1, "nested": {"a": [1, 2]}},
                     ensure_ascii=False)
users = ["%s/user/%d" % (prefix, i) for i in range(5)]
groups = ["%s/group/g%d" % (prefix, i) for i in range(3)]
feed.send(payload, users, qos=1)
feed.send(payload + " ", groups, qos=0)
feed.send(payload + "  ", ["%s/user/default" % prefix], qos=-1)
ok = sub.wait_count(9)
c.check(ok, "subscriber got all 9 publishes (5 users QoS 1, 3 groups QoS 0, 1 default)")
msgs = sub.snapshot()
got = {}
for t, p in msgs:
    got.setdefault(t, []).append(p)
c.eq(sorted(got.keys()), sorted(users + groups + ["%s/user/default" % prefix]),
     "every user and group topic got the message")
c.check(all(got[t] == [payload.encode()] for t in users),
        "user topics: payload bytes exactly the JSON sent (UTF-8), once each")
c.check(all(got[t] == [(payload + " ").encode()] for t in groups),
        "group topics: payload bytes exactly the JSON sent")

# QoS as received by a QoS 1 subscriber shows the QoS the sender published with.
qos_seen = {}
def on_msg(cl, u, msg):
    qos_seen[msg.topic] = msg.qos
sub.c.on_message = on_msg
feed.send("{\"q\":1}", ["%s/user/q1" % prefix], qos=1)
feed.send("{\"q\":0}", ["%s/user/q0" % prefix], qos=0)
feed.send("{\"q\":-1}", ["%s/user/qd" % prefix], qos=-1)
h.wait_for(lambda: len(qos_seen) >= 3, 10, what="qos messages")
c.eq(qos_seen.get("%s/user/q1" % prefix), 1, "QoS 1 job published at QoS 1")
c.eq(qos_seen.get("%s/user/q0" % prefix), 0, "QoS 0 job published at QoS 0")
c.eq(qos_seen.get("%s/user/qd" % prefix), 1, "job without QoS published at the default (1)")
sub.c.on_message = sub._on_message

c.check(wait_metric(mport, "acknowledged_total", 12), "acknowledged_total reached 12")
c.eq(m(mport, "published_total"), 12.0, "published_total is 12")
c.eq(m(mport, "jobs_total"), 6.0, "jobs_total is 6")
c.check(feed.wait(lambda st: st["acked"] >= 6), "the hub saw all 6 jobs acked")
st = feed.stats()
c.eq((st["in_flight"], st["pending"], st["requeued"]), (0, 0, 0),
     "the hub holds nothing in flight, nothing pending, nothing requeued")

# Bad input: not msgpack, wrong kind, a bad topic among good ones. Counted, no crash.
before_bad = sub.count()
feed.send_raw(b"\xc1 not msgpack")
feed.send_raw(Feeder.job("{}", ["x"])[:-3])
import msgpack
feed.send_raw(msgpack.packb([2, 1, "id", "x"], use_bin_type=True))
feed.send("{\"bad\":1}", ["%s/user/ok1" % prefix, "%s/user/+" % prefix, "",
                           "%s/user/ok2" % prefix], qos=1)
c.check(wait_metric(mport, "bad_job_total", 3), "three bad jobs counted in bad_job_total")
c.check(wait_metric(mport, "failed_total", 2, reason="bad_topic"),
        "wildcard and empty topics counted as failed_total{reason=bad_topic}")
c.check(sub.wait_count(before_bad + 2), "the good topics of that job were still published")
time.sleep(0.2)
c.eq(sorted(t for t, p in sub.snapshot()[before_bad:]),
     ["%s/user/ok1" % prefix, "%s/user/ok2" % prefix], "exactly the two good topics arrived")
c.check(sender.alive(), "sender still running after bad input")
c.check(feed.wait(lambda st: st["acked"] >= 10 and st["in_flight"] == 0),
        "bad jobs acked at once, the partly bad job acked once its good topics were done")
c.eq(m(mport, "jobs_acked_total"), 10.0, "jobs_acked_total is 10 (7 good, 3 bad)")

# A stream at QoS 1, then SIGTERM in the middle: exit 0 only after what the sender holds
# is acknowledged by MQTT and acked to the hub; the hub keeps the rest for the next sender.
n = 20000
acked_before = feed.stats()["acked"]
jobs_before = m(mport, "jobs_total")
feed.send_many(Feeder.job("{\"i\":%d}" % i, ["%s/s/%d/%d" % (prefix, i, k) for k in range(10)],
                          qos=1) for i in range(n // 10))
h.wait_for(lambda: m(mport, "jobs_total") >= jobs_before + 300, 20, interval=0.005,
           what="jobs taken")
sender.signal(signal.SIGTERM)
# While it drains it says it is not ready (-1: the drain was over before the scrape).
# (The signal is handled a moment after kill() returns, hence the short wait.)
try:
    ready_draining = h.wait_for(lambda: m(mport, "ready") in (0.0, -1.0) and
                                [m(mport, "ready")], 2, interval=0.002, what="ready 0")[0]
except AssertionError:
    ready_draining = m(mport, "ready")
c.check(ready_draining in (0.0, -1.0),
        "pushpipe_ready turns 0 once SIGTERM arrives, before the drain ends (got %r)" %
        ready_draining)
try:
    rc = sender.p.wait(15)
except Exception:
    rc = None
c.eq(rc, 0, "SIGTERM: exit code 0")
log = sender.output()
for line in log.splitlines():
    if "event=draining" in line or "event=stopped" in line:
        print("     " + line)
c.check("event=draining" in log and "event=stopped" in log, "drain and stop were logged")
stopped = [ln for ln in log.splitlines() if "event=stopped" in ln]
jt = re.search(r" jobs_total=(\d+)", stopped[-1]) if stopped else None
c.check(stopped and "exit=0 uptime_s=" in stopped[-1] and jt and
        int(jt.group(1)) >= jobs_before + 300,
        "the stopped line has exit, uptime and the stage's counters (%s)" %
        (stopped[-1] if stopped else "none"))
c.check("drain_incomplete" not in log, "no publish left undelivered at stop")
st = feed.stats()
print("     hub after SIGTERM: acked=%d (of the stream) pending=%d in_flight=%d requeued=%d "
      "byes=%d deaths=%d" % (st["acked"] - acked_before, st["pending"], st["in_flight"],
                              st["requeued"], st["byes"], st["deaths"]))
c.eq((st["in_flight"], st["byes"], st["deaths"]), (0, 1, 0),
     "the sender said bye: the hub holds nothing for it, no death declared")
stream_acked = st["acked"] - acked_before
c.check(0 < stream_acked < n // 10 and st["pending"] == n // 10 - stream_acked,
        "the jobs not acked are back in (or still in) the hub's pending queue")
sub.wait_count(before_bad + 2 + 10 * stream_acked, timeout=10)
stream = set(t for t, p in sub.snapshot() if t.startswith("%s/s/" % prefix))
c.eq(len(stream), 10 * stream_acked,
     "every publish of the jobs the sender acked reached the subscriber")

# A new sender takes what the hub kept: the whole stream arrives.
sender2, mport2 = start_sender(args, wd, base, mosq.port, name="sender2")
c.check(feed.wait(lambda st: st["acked"] - acked_before >= n // 10, timeout=30),
        "a second sender finished the stream: the hub saw every job acked")
sub.wait_count(before_bad + 2 + n, timeout=10)
stream = set(t for t, p in sub.snapshot() if t.startswith("%s/s/" % prefix))
c.eq(len(stream), n, "every publish of the stream reached the subscriber")
c.eq(sender2.stop(), 0, "second sender: SIGTERM exits 0")

# Bad configuration: exit 2 before connecting anything, the error names the key.
import os
import subprocess
binary = h.binary(args.build_dir, "pushpipe-mqtt-sender")
for bad, key in (({"qos": 3}, "mqtt_sender.qos"), ({"uri": "http://x:1"}, "mqtt_sender.uri"),
                 ({"windw": 10}, "mqtt_sender.windw"),
                 ({"link": {"window": 0}}, "mqtt_sender.link.window"),
                 ({"rcvhwm": 100}, "mqtt_sender.rcvhwm"),
                 ({"tls": {"ca_file": "/nonexistent.pem"}}, "mqtt_sender.tls.ca_file")):
    path = h.write_config(wd, {"mqtt_sender": bad}, "bad.json")
    r = subprocess.run([binary, "--config", path], capture_output=True, timeout=10)
    c.check(r.returncode == 2 and key in r.stderr.decode(),
            "bad config %s: exit 2 naming %s" % (json.dumps(bad), key))

sub.stop()
feed.close()
c.finish()
