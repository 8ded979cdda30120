"""mosquitto goes away and comes back on the same port in the middle of a stream of
10,000 QoS 1 publishes, twice: (A) it hangs (SIGSTOP) and is killed (SIGKILL), (B) it is
stopped with SIGTERM. Each time the sender sees the connection go, re-queues what was in
flight, reconnects with backoff and publishes again; in the end the subscriber has every
message at least once (duplicates are counted and reported).

The subscriber has a persistent session (clean_session False, fixed client id, QoS 1) and
mosquitto saves its sessions (every second, and at SIGTERM), so the subscription survives
and publishes made before the subscriber is back are kept for it.

Why (A) freezes mosquitto before the SIGKILL: mosquitto acknowledges a publish once it has
queued it for the subscribers, and a SIGKILL throws away what it had acknowledged but not
yet handed to the subscriber's socket (or that was still in that socket when the kernel
resets it). That loss is the MQTT broker's, beyond what any publisher can see; freezing it
first lets what it already wrote reach the subscriber, while everything the sender had in
flight is still unacknowledged and lost with the process, which is what this test is
about."""
import json
import os
import signal
import threading
import time

import pp_harness as h
from mqtt_util import Feeder, Subscriber, start_sender, m, wait_metric

args = h.parse_args()
c = h.Checks()
wd = h.workdir("mqtt-restart")

# 0. Started while its MQTT broker is not up yet: it retries with backoff, keeps the job,
#    and publishes it once mosquitto is there.
late_port = h.free_port()
base0 = h.free_ports(7)
feed0 = Feeder(base0)
early, mport0 = start_sender(args, wd, base0, late_port, name="early",
                             extra={"reconnect_min_ms": 50, "reconnect_max_ms": 300})
feed0.send("{\"early\":1}", ["rs/early/1", "rs/early/2"], qos=1)
c.check(wait_metric(mport0, "connect_failures_total", 2, timeout=15, reason="unreachable"),
        "no MQTT broker yet: connection attempts fail, are counted and retried")
c.check(wait_metric(mport0, "buffered", 2), "the job waits in the buffer")
st0 = feed0.stats()
c.eq((st0["acked"], st0["in_flight"]), (0, 1), "the job is held, not acked, while MQTT is down")
late = h.Mosquitto(wd, port=late_port)
c.check(wait_metric(mport0, "acknowledged_total", 2, timeout=15),
        "mosquitto started later: both publishes acknowledged by it")
c.eq(early.stop(), 0, "SIGTERM exits 0")
c.eq(feed0.stats()["acked"], 1, "the hub saw the job acked only after MQTT acknowledged it")
late.stop()
feed0.close()
# "user root": mosquitto started as root drops to user "mosquitto", which cannot write its
# database into the test's private temp dir (no effect when the tests run unprivileged).
mosq = h.Mosquitto(wd, extra_conf="user root\npersistence true\npersistence_location %s/\n"
                   "autosave_interval 1\n" % wd)
base = h.free_ports(7)
sub = Subscriber(mosq.port, ["rs/#"], qos=1, client_id="pp-restart-sub-%d" % base,
                 clean_session=False)
feed = Feeder(base)
sender, mport = start_sender(args, wd, base, mosq.port,
                             extra={"reconnect_min_ms": 100, "reconnect_max_ms": 1000})
wait_metric(mport, "mqtt_connected", 1, timeout=10)
h.wait_for(lambda: os.path.exists(os.path.join(wd, "mosquitto.db")), 10,
           what="mosquitto's first autosave")
time.sleep(1.2)  # an autosave after the subscription, so the session is on disk

jobs, per_job = 2000, 5
total = jobs * per_job


def phase(name, stop):
    prefix = "rs/%s" % name
    n0 = sub.count()
    retried0 = m(mport, "retried_total")
    lost0 = sender.output().count("event=mqtt_connection_lost")
    restarted = threading.Event()

    def restart():
        stop()
        time.sleep(0.5)
        mosq.start()
        restarted.set()

    # Bursts of 20 jobs (100 publishes) every 20 ms; mosquitto goes away right after the
    # 40th burst, while the sender has publishes in flight; feeding goes on meanwhile.
    for b in range(jobs // 20):
        for i in range(b * 20, (b + 1) * 20):
            feed.send(json.dumps({"i": i, "p": name}),
                      ["%s/%d/%d" % (prefix, i, k) for k in range(per_job)], qos=1)
        if b == 39:
            time.sleep(0.001)
            threading.Thread(target=restart).start()
            print("     %s: mosquitto going away after %d jobs fed, %d publishes received" %
                  (name, (b + 1) * 20, sub.count() - n0))
        time.sleep(0.02)
    restarted.wait(10)

    sub.wait_count(n0 + total, timeout=30)
    time.sleep(0.5)
    msgs = [x for x in sub.snapshot()[n0:] if x[0].startswith(prefix + "/")]
    distinct = set(msgs)
    want = set(("%s/%d/%d" % (prefix, i, k), json.dumps({"i": i, "p": name}).encode())
               for i in range(jobs) for k in range(per_job))
    missing = want - distinct
    print("     %s: received=%d distinct=%d duplicates=%d missing=%d" %
          (name, len(msgs), len(distinct & want), len(msgs) - len(distinct), len(missing)))
    if missing:
        idx = sorted(int(t.split("/")[2]) for t, p in missing)
        print("     %s: missing jobs %d..%d" % (name, idx[0], idx[-1]))
    c.eq(len(missing), 0, "%s: every one of the %d messages received at least once"
         % (name, total))
    c.check(not (distinct - want), "%s: nothing received that was not sent" % name)
    c.check(sender.output().count("event=mqtt_connection_lost") > lost0,
            "%s: the lost connection was logged" % name)
    print("     %s: sender re-published %d publishes" % (name, m(mport, "retried_total") -
                                                       retried0))


phase("kill", lambda: (mosq.proc.signal(signal.SIGSTOP), time.sleep(0.3), mosq.kill()))
phase("term", lambda: mosq.stop())

c.check(m(mport, "reconnects_total") >= 2, "the sender reconnected (reconnects_total=%d)"
        % m(mport, "reconnects_total"))
c.check(m(mport, "retried_total") >= 1, "publishes in flight when the connection went were "
        "published again (retried_total=%d)" % m(mport, "retried_total"))
c.eq(m(mport, "failed_total"), 0.0, "no publish given up")
c.check(wait_metric(mport, "acknowledged_total", 2 * total),
        "acknowledged_total >= %d" % (2 * total))
print("     sender: published=%d acknowledged=%d retried=%d reconnects=%d stale=%d" % (
    m(mport, "published_total"), m(mport, "acknowledged_total"), m(mport, "retried_total"),
    m(mport, "reconnects_total"), m(mport, "stale_completions_total")))
c.eq(m(mport, "published_total"),
     m(mport, "acknowledged_total") + m(mport, "retried_total") + m(mport, "failed_total"),
     "each publish handed to paho ended exactly once: acknowledged, re-queued or failed")
c.eq(m(mport, "in_flight"), 0.0, "nothing left in flight")
c.eq(m(mport, "buffered"), 0.0, "nothing left buffered")
c.check(feed.wait(lambda st: st["acked"] == 2 * jobs and st["in_flight"] == 0, 10),
        "the hub saw every job acked (%d), though MQTT went away twice" % (2 * jobs))
st = feed.stats()
c.eq((st["deaths"], st["requeued"]), (0, 0),
     "the link stayed up while MQTT was down (heartbeats): no death, nothing requeued")
c.eq(sender.stop(), 0, "SIGTERM exits 0")
sub.stop()
feed.close()
c.finish()
