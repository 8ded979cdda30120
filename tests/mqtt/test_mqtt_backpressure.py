"""Backpressure and stop while the MQTT broker does not acknowledge.

While mosquitto is frozen (SIGSTOP), the sender keeps `window` publishes in flight,
buffers up to buffer_max more, then stops reading jobs from ZMQ, so the test's PUSH socket
(playing the broker, with a small HWM and send buffer) soon refuses more: the rest waits at
the broker. When mosquitto resumes, everything arrives and nothing was dropped.

Then a SIGTERM while frozen: the sender reads what already reached its socket, stops
taking jobs, waits drain_ms, reports what it could not deliver (counted, logged), exits 0.
Jobs the broker still held go to a new sender and are delivered."""
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
feed = Feeder(base, sndhwm=10, sndbuf=65536)
window, buffer_max, rcvhwm, per_job = 50, 200, 10, 2
sender, mport = start_sender(args, wd, base, mosq.port, extra={
    "window": window, "buffer_max": buffer_max, "rcvhwm": rcvhwm, "drain_ms": 1000})
wait_metric(mport, "mqtt_connected", 1, timeout=10)
time.sleep(0.2)


def payload(i):
    return json.dumps({"i": i, "pad": "x" * 100})


def topics(i):
    return ["bp/%d/%d" % (i, k) for k in range(per_job)]


def want(lo, hi):
    return set((t, payload(i).encode()) for i in range(lo, hi) for t in topics(i))


def fill(start, limit):
    """Sends jobs from start until ZMQ refuses one (for 0.5 s) or limit; returns next i."""
    i, refused_since = start, None
    while i < limit:
        if feed.try_send(payload(i), topics(i), qos=1):
            i, refused_since = i + 1, None
        else:
            refused_since = refused_since or time.time()
            if time.time() - refused_since > 0.5:
                break
            time.sleep(0.01)
    return i


# 1. Frozen: window full, buffer full, reading stops, the broker holds the rest.
limit = 100000
mosq.proc.signal(signal.SIGSTOP)
n1 = fill(0, limit)
time.sleep(0.5)
in_flight, buffered, taken = m(mport, "in_flight"), m(mport, "buffered"), m(mport, "jobs_total")
print("     mosquitto frozen: in_flight=%d buffered=%d jobs_taken=%d; the broker's socket "
      "took %d jobs before refusing" % (in_flight, buffered, taken, n1))
c.eq(in_flight, float(window), "the window is full")
c.check(buffer_max <= buffered <= buffer_max + per_job,
        "the buffer filled up to buffer_max (one job may overshoot)")
c.check(taken * per_job <= window + buffer_max + per_job,
        "the sender stopped reading jobs once its buffer was full")
c.check(n1 < limit, "backpressure reached the broker: its PUSH refused more jobs")

mosq.proc.signal(signal.SIGCONT)
for i in range(n1, n1 + 500):
    feed.send(payload(i), topics(i), qos=1)
n1 += 500
c.check(sub.wait_count(n1 * per_job, timeout=30),
        "after mosquitto resumed, all %d publishes arrived" % (n1 * per_job))
c.eq(len(want(0, n1) - set(sub.snapshot())), 0, "nothing dropped")
c.eq(m(mport, "jobs_total"), float(n1), "every job taken")
c.eq(m(mport, "failed_total"), 0.0, "no failures")

# 2. SIGTERM while frozen.
mosq.proc.signal(signal.SIGSTOP)
n2 = fill(n1, limit)
time.sleep(0.5)
rc = sender.stop(timeout=20)
c.eq(rc, 0, "SIGTERM while mosquitto is frozen: exit 0")
log = sender.output()
stopped = [l for l in log.splitlines() if "event=stopped" in l][-1]
print("     " + stopped.split("event=")[1])
f = dict(kv.split("=", 1) for kv in stopped.split() if "=" in kv)
c.check(int(f["undelivered"]) > 0 and "event=drain_incomplete" in log,
        "undelivered publishes reported at stop (%s)" % f["undelivered"])
c.eq(int(f["publishes_taken"]), int(f["acknowledged"]) + int(f["failed"]),
     "every publish taken ended as acknowledged or counted as failed")
c.eq(int(f["publishes_taken"]), int(f["jobs"]) * per_job, "publishes taken = jobs x topics")
taken = int(f["jobs"])
print("     phase 2: the broker's socket accepted %d jobs, the stopping sender read %d; "
      "lost between the two sockets (ZMQ PUSH/PULL has no acknowledgement): %d" %
      (n2 - n1, taken - n1, n2 - taken))

mosq.proc.signal(signal.SIGCONT)
sender2, mport2 = start_sender(args, wd, base, mosq.port, name="sender2")
wait_metric(mport2, "mqtt_connected", 1, timeout=10)
time.sleep(0.3)
for i in range(n2, n2 + 500):
    feed.send(payload(i), topics(i), qos=1)
n3 = n2 + 500
late = want(n2, n3)
h.wait_for(lambda: not (late - set(sub.snapshot())), 20, what="late jobs delivered")
c.eq(len(late - set(sub.snapshot())), 0,
     "jobs the broker still held went to a new sender and were delivered")
c.eq(sender2.stop(), 0, "SIGTERM exits 0")
sub.stop()
c.finish()
