"""Backpressure and stop while the MQTT broker does not acknowledge, with the hub of the
link (FakeHub) playing the broker.

While mosquitto is frozen (SIGSTOP), the sender keeps `window` publishes in flight and
buffers the rest of what it holds; it never holds more than link.window jobs (the credit it
granted), so the rest waits at the hub. When its buffer is full it pauses the link: jobs
it finishes at once (bad ones, acked) free window slots but grant no new credit. When
mosquitto resumes, everything arrives and nothing was dropped.

Then a SIGTERM while frozen: the sender pauses, waits drain_ms, reports what it could not
deliver (counted, logged), does not ack it, exits 0 and says bye: the hub puts those jobs
back in its queue at once and a new sender delivers them. Nothing is lost."""
import json
import signal
import time

import pp_harness as h
from mqtt_util import Feeder, Subscriber, start_sender, m, wait_metric

args = h.parse_args()
c = h.Checks()
wd = h.workdir("mqtt-backpressure")
mosq = h.Mosquitto(wd)
base = h.free_ports(7)
sub = Subscriber(mosq.port, ["bp/#"], qos=1)
feed = Feeder(base)
window, buffer_max, link_window, per_job = 50, 100, 200, 2
sender, mport = start_sender(args, wd, base, mosq.port, extra={
    "window": window, "buffer_max": buffer_max, "drain_ms": 1000,
    "link": {"window": link_window}})
wait_metric(mport, "mqtt_connected", 1, timeout=10)
feed.wait(lambda st: st["workers"] == 1 and st["credit"] == link_window, 10)


def payload(i):
    return json.dumps({"i": i, "pad": "x" * 100})


def topics(i):
    return ["bp/%d/%d" % (i, k) for k in range(per_job)]


def want(lo, hi):
    return set((t, payload(i).encode()) for i in range(lo, hi) for t in topics(i))


def feed_range(lo, hi):
    feed.send_many(Feeder.job(payload(i), topics(i), qos=1) for i in range(lo, hi))


# 1. Frozen: 100 good jobs fill the MQTT window and the buffer (150 > buffer_max: paused).
mosq.proc.signal(signal.SIGSTOP)
feed_range(0, 100)
c.check(wait_metric(mport, "buffered", 100 * per_job - window, timeout=10),
        "mosquitto frozen: the window is full and the rest is buffered")
# 100 bad jobs come on the credit already granted and are acked at once: half the link
# window is free, but the full buffer keeps the link paused.
for i in range(100):
    feed.send_raw(b"\xc1 bad %d" % i)
c.check(feed.wait(lambda st: st["acked"] == 100, 10), "the 100 bad jobs were acked at once")
feed_range(100, 200)
time.sleep(1.5)
st = feed.stats()
in_flight, buffered, taken = m(mport, "in_flight"), m(mport, "buffered"), m(mport, "jobs_total")
print("     mosquitto frozen: in_flight=%d buffered=%d jobs_taken=%d; hub: held by the sender=%d "
      "credit=%d pending=%d" % (in_flight, buffered, taken, st["in_flight"], st["credit"],
                                st["pending"]))
c.eq(in_flight, float(window), "the MQTT window is full")
c.eq(taken, 100.0, "the sender took no good job beyond the first 100")
c.eq((st["in_flight"], st["credit"], st["pending"]), (100, 0, 100),
     "paused while the buffer is full: no new credit, the hub holds the next 100 jobs")
c.check(max(st["max_held"].values()) <= link_window,
        "the sender never held more than link.window jobs")

mosq.proc.signal(signal.SIGCONT)
feed_range(200, 700)
n1 = 700
c.check(sub.wait_count(n1 * per_job, timeout=30),
        "after mosquitto resumed, all %d publishes arrived" % (n1 * per_job))
c.eq(len(want(0, n1) - set(sub.snapshot())), 0, "nothing dropped")
c.eq(m(mport, "jobs_total"), float(n1), "every good job taken")
c.eq(m(mport, "failed_total"), 0.0, "no failures")
c.check(feed.wait(lambda st: st["acked"] == n1 + 100 and st["in_flight"] == 0, 10),
        "the hub saw every job acked")
c.check(max(feed.stats()["max_held"].values()) <= link_window,
        "the sender never held more than link.window jobs")

# 2. SIGTERM while frozen: what the sender holds is reported, not acked, and handed back.
mosq.proc.signal(signal.SIGSTOP)
feed_range(n1, n1 + 1000)
n2 = n1 + 1000
# Whatever credit the sender had granted (at most link.window) is used up: it holds those.
feed.wait(lambda st: st["credit"] == 0, 10)
time.sleep(0.3)
rc = sender.stop(timeout=20)
c.eq(rc, 0, "SIGTERM while mosquitto is frozen: exit 0")
log = sender.output()
stopped = [l for l in log.splitlines() if "event=drained" in l][-1]
print("     " + stopped.split("event=")[1])
f = dict(kv.split("=", 1) for kv in stopped.split() if "=" in kv)
c.check(int(f["undelivered"]) > 0 and "event=drain_incomplete" in log,
        "undelivered publishes reported at stop (%s)" % f["undelivered"])
c.eq(int(f["publishes_taken"]), int(f["acknowledged"]) + int(f["failed"]),
     "every publish taken ended as acknowledged or counted as failed")
c.eq(int(f["publishes_taken"]), int(f["jobs"]) * per_job, "publishes taken = jobs x topics")
st = feed.stats()
print("     hub after the stop: acked=%d requeued=%d pending=%d byes=%d deaths=%d" %
      (st["acked"], st["requeued"], st["pending"], st["byes"], st["deaths"]))
held2 = int(f["jobs"]) - n1
c.check(0 < held2 <= link_window, "the sender held %d jobs of phase 2 (<= link.window)" % held2)
c.eq((st["requeued"], st["byes"], st["deaths"]), (held2, 1, 0),
     "the bye put the %d jobs the sender held back in the hub's queue at once" % held2)
c.eq(st["pending"], n2 - n1, "the hub holds every job of phase 2 again")

mosq.proc.signal(signal.SIGCONT)
sender2, mport2 = start_sender(args, wd, base, mosq.port, name="sender2")
wait_metric(mport2, "mqtt_connected", 1, timeout=10)
feed_range(n2, n2 + 500)
n3 = n2 + 500
late = want(n1, n3)
h.wait_for(lambda: not (late - set(sub.snapshot())), 30, what="phase 2 jobs delivered")
c.eq(len(late - set(sub.snapshot())), 0,
     "every job of phase 2, including those the stopped sender held, delivered by a new sender")
c.check(feed.wait(lambda st: st["acked"] == n3 - n1 + n1 + 100 and st["in_flight"] == 0, 10),
        "the hub saw every job acked")
msgs = sub.snapshot()
print("     duplicates (mosquitto got them while frozen, after the sender's drain_ms): %d" %
      (len(msgs) - len(set(msgs))))
c.eq(sender2.stop(), 0, "SIGTERM exits 0")
sub.stop()
feed.close()
c.finish()
