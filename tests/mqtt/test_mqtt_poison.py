"""A poison publish: one the MQTT broker answers by dropping the connection. mosquitto with
`max_packet_size` disconnects a client that sends a larger packet ("disconnected due to
oversize packet"; `message_size_limit` would instead acknowledge it and discard it
silently, which is no test of this). The sender must give the poison publish up (bounded by
max_attempts, or by publish_timeout_ms), count it in failed_total{reason}, log it, ack its
job to the hub, and keep delivering everything else: the publishes that were in flight
with it when the connection dropped, and everything that comes after.

(0) The defaults: given up at the 10 s deadline. (A) max_attempts 5: given up as
attempts_exhausted. (B) publish_timeout_ms 4000 with attempts that would last for minutes
(each reconnect takes about a second): given up as deadline. (C) max_attempts 0 and a
publish_timeout_ms out of range are configuration errors (exit 2, naming the key)."""
import json
import subprocess

import pp_harness as h
from mqtt_util import Feeder, Subscriber, start_sender, m, wait_metric

args = h.parse_args()
c = h.Checks()
wd = h.workdir("mqtt-poison")
mosq = h.Mosquitto(wd, extra_conf="max_packet_size 2048\n")
sub = Subscriber(mosq.port, ["pz/#"], qos=1)
per_job = 2
poison_payload = json.dumps({"poison": "x" * 8000})


def topics(phase, i):
    return ["pz/%s/%d/%d" % (phase, i, k) for k in range(per_job)]


def payload(phase, i):
    return json.dumps({"p": phase, "i": i})


def want(phase, lo, hi):
    return set((t, payload(phase, i).encode()) for i in range(lo, hi) for t in topics(phase, i))


def got(phase):
    return set(x for x in sub.snapshot() if x[0].startswith("pz/%s/" % phase))


def phase(name, extra, reason, other_reason, timeout):
    base = h.free_ports(7)
    feed = Feeder(base)
    cfg = {"reconnect_min_ms": 50, "reconnect_max_ms": 200}
    cfg.update(extra)
    sender, mport = start_sender(args, wd, base, mosq.port, name="sender-" + name, extra=cfg)
    c.check(wait_metric(mport, "mqtt_connected", 1, timeout=10), "%s: connected" % name)
    feed.wait(lambda st: st["workers"] == 1 and st["credit"] > 0, 10)

    # 100 good jobs with the poison in the middle, fed at once, so that the poison is in
    # flight together with many good publishes when mosquitto drops the connection.
    jobs = [Feeder.job(payload(name, i), topics(name, i), qos=1) for i in range(100)]
    jobs.insert(50, Feeder.job(poison_payload, ["pz/%s/poison" % name], qos=1,
                               msg_id="poison-%s" % name))
    feed.send_many(jobs)
    w = want(name, 0, 100)
    try:
        h.wait_for(lambda: w <= got(name), timeout, what="the good publishes")
    except AssertionError:
        pass
    missing = w - got(name)
    c.eq(len(missing), 0, "%s: every one of the %d good publishes fed with the poison arrived"
         % (name, len(w)))
    c.check(wait_metric(mport, "failed_total", 1, timeout=timeout, reason=reason),
            "%s: the poison publish given up, failed_total{reason=%s} = %d"
            % (name, reason, m(mport, "failed_total", reason=reason)))
    c.eq(m(mport, "failed_total", reason=reason), 1.0,
         "%s: exactly one publish given up as %s" % (name, reason))
    c.eq(m(mport, "failed_total", reason=other_reason), 0.0,
         "%s: none given up as %s" % (name, other_reason))
    c.check(not any(t.endswith("/poison") for t, _p in sub.snapshot()),
            "%s: the poison never reached the subscriber" % name)
    c.check(feed.wait(lambda st: st["acked"] == 101 and st["in_flight"] == 0, 10),
            "%s: the hub saw all 101 jobs acked, the poison's too (not stranded)" % name)
    log = sender.output()
    lines = [ln for ln in log.splitlines()
             if "event=publish_failed" in ln and "reason=%s" % reason in ln]
    for ln in lines[:1]:
        print("     " + ln)
    c.check(len(lines) == 1 and "level=warn" in lines[0] and
            "topic=\"pz/%s/poison\"" % name in lines[0] and "attempts=" in lines[0] and
            "poison-%s" % name in lines[0],
            "%s: one warn line with the topic, attempts and the job" % name)
    print("     %s: connections lost=%d published=%d acknowledged=%d retried=%d" % (
        name, log.count("event=mqtt_connection_lost"), m(mport, "published_total"),
        m(mport, "acknowledged_total"), m(mport, "retried_total")))

    # Afterwards: still running and delivering, without further losses.
    lost = log.count("event=mqtt_connection_lost")
    feed.send_many(Feeder.job(payload(name, i), topics(name, i), qos=1) for i in range(100, 200))
    w2 = want(name, 100, 200)
    try:
        h.wait_for(lambda: w2 <= got(name), 15, what="the later publishes")
    except AssertionError:
        pass
    c.eq(len(w2 - got(name)), 0, "%s: after the poison, 200 more publishes arrived" % name)
    c.check(sender.alive(), "%s: the sender is still running" % name)
    c.eq(sender.output().count("event=mqtt_connection_lost"), lost,
         "%s: no connection lost once the poison was given up" % name)
    c.check(feed.wait(lambda st: st["acked"] == 201 and st["in_flight"] == 0, 10),
            "%s: every job acked" % name)
    # Each hand-over to paho ended once: acknowledged, re-queued or failed; a re-queued one
    # may also be given up later in the buffer (deadline), hence <= rather than ==.
    pub, ack = m(mport, "published_total"), m(mport, "acknowledged_total")
    c.check(ack == 400 and pub <= ack + m(mport, "retried_total") + m(mport, "failed_total"),
            "%s: published (%d) <= acknowledged (%d) + retried + failed" % (name, pub, ack))
    c.eq(sender.stop(), 0, "%s: SIGTERM exits 0" % name)
    feed.close()


# (0) Defaults (max_attempts 100, publish_timeout_ms 10000): given up at the deadline,
# about 10 s after its first try, not after 100 reconnects.
phase("defaults", {}, "deadline", "attempts_exhausted", 25)
# (A) Given up after max_attempts sends (each reconnect-and-resend counts one).
phase("attempts", {"max_attempts": 5}, "attempts_exhausted", "deadline", 30)
# (B) Attempts would last for ages; the deadline from the first try gives it up.
phase("deadline", {"max_attempts": 1000000, "publish_timeout_ms": 4000}, "deadline",
      "attempts_exhausted", 30)

# (C) Bad configuration: exit 2 naming the key.
binary = h.binary(args.build_dir, "pushpipe-mqtt-sender")
for bad, key in (({"max_attempts": 0}, "mqtt_sender.max_attempts"),
                 ({"publish_timeout_ms": 0}, "mqtt_sender.publish_timeout_ms"),
                 ({"publish_timeout_ms": 10 ** 9}, "mqtt_sender.publish_timeout_ms")):
    path = h.write_config(wd, {"mqtt_sender": bad}, "bad.json")
    r = subprocess.run([binary, "--config", path], capture_output=True, timeout=10)
    c.check(r.returncode == 2 and key in r.stderr.decode(),
            "bad config %s: exit 2 naming %s (%s)" % (json.dumps(bad), key,
                                                      r.stderr.decode().strip()[:120]))

sub.stop()
c.finish()
