"""Resolver under faults: Redis stopped and started again on the same port in the middle
of a stream of messages and in the middle of a streamed (SSCAN) group; SIGTERM while Redis
is down (the message stays unacknowledged and goes back to the broker). Every expected
delivery must happen exactly once."""
import time

import sys

sys.dont_write_bytecode = True  # no __pycache__ next to rhelp.py in the source tree

import pp_harness as h  # noqa: E402
import rhelp as R  # noqa: E402

args = h.parse_args()
c = h.Checks()
wd = h.workdir("resolver-faults")
redis = h.Redis(wd)
r = redis.client()
base = h.free_ports(7)
broker = R.Broker(base, rcvhwm=1)
mport = h.free_port()
cfg = R.resolver_config(redis.port, link={"send_hwm": 16}, group_scan_threshold=1000, scan_count=200,
                        batch={"max_targets": 1}, drain_timeout_ms=1000)
proc = R.start_resolver(args, wd, broker, cfg, metrics_port=mport)
h.wait_port(mport)


def metric(name, **labels):
    return h.metric(mport, name, **labels)


def restart_redis(pause=1.0):
    redis.stop()
    time.sleep(pause)
    redis.start()


# --- A: a stream of messages with a Redis restart in the middle -------------------------
N = 400
pipe = r.pipeline(transaction=False)
for i in range(N):
    if i % 2 == 0:
        pipe.hset("User:s%d" % i, mapping={"app_token": R.token(i), "app_ident": "com.s",
                                           "app_version": "produce"})
    else:
        pipe.hset("User:s%d" % i, mapping={"app_ident": "com.s"})
pipe.execute()
r.save()  # the restarted server loads this dump (same --dir)
err0 = metric("redis_errors_total")
for i in range(N):
    broker.send("m-s%d" % i, 3, ["s%d" % i], {"alert": "n%d" % i})
    broker.poll(5)
    if i == N // 3:
        restart_redis()  # messages sent meanwhile wait in ZMQ
broker.collect(until=lambda: len(broker.apns_jobs) + len(broker.mqtt_jobs) >= N, timeout=30)
apns = {}
for j in broker.apns_jobs:
    for uid, tok in j[11]:
        apns.setdefault(j[2], []).append((uid, tok))
mqtt = {}
for j in broker.mqtt_jobs:
    mqtt.setdefault(j[2], []).extend(j[6])
ok = True
for i in range(N):
    m = "m-s%d" % i
    want_a = [("s%d" % i, R.token(i))] if i % 2 == 0 else []
    want_m = [] if i % 2 == 0 else ["push/user/s%d" % i]
    if apns.get(m, []) != want_a or mqtt.get(m, []) != want_m:
        ok = False
        print("message %s: apns=%r mqtt=%r" % (m, apns.get(m), mqtt.get(m)))
        break
c.check(ok, "restart mid-stream: every message delivered exactly once, by the rule")
c.eq(sum(len(v) for v in apns.values()) + sum(len(v) for v in mqtt.values()), N,
     "restart mid-stream: no extra deliveries")
c.check(metric("redis_errors_total") > err0, "restart mid-stream: redis_errors_total counted")
c.check(metric("redis_reconnects_total") >= 1, "restart mid-stream: redis_reconnects_total")
broker.check_link(c, "restart mid-stream")

# --- B: Redis restart in the middle of a streamed group ---------------------------------
broker.reset()
G = 12000
pipe = r.pipeline(transaction=False)
want = set()
for i in range(G):
    uid = "G%d" % i
    tok = R.token(100000 + i)
    pipe.hset("User:" + uid, mapping={"app_token": tok, "app_ident": "com.g",
                                      "app_version": "develop"})
    want.add((uid, tok))
    if i % 2000 == 1999:
        pipe.execute()
pipe.execute()
for i in range(0, G, 4000):
    r.sadd("GroupAppleUser:gs", *["G%d" % k for k in range(i, i + 4000)])
r.save()
restarts0 = metric("scan_restarts_total")
# 12,000 APNS jobs of ~4 KB (one target each): far more than the socket buffers hold (hub
# receive HWM 1, resolver link.send_hwm 16, ~10 MB of loopback TCP buffers), so the resolver
# waits in the middle of the scan while this script does not read.
broker.send("m-gs", 1, ["gs"], {"alert": "x", "pad": "p" * 3900})
t_end = time.time() + 10
broker.hub.max_per_poll = 4  # a fast resolver must not be drained in one poll
while len(broker.apns_jobs) < 20 and time.time() < t_end:
    broker.poll(1)  # short steps: stop reading soon after the first jobs
broker.hub.max_per_poll = None
before = sum(len(j[11]) for j in broker.apns_jobs)
c.check(0 < before < G, "restart mid-scan: the scan is under way (%d of %d)" % (before, G))
restart_redis(0.5)
broker.collect(until=lambda: sum(len(j[11]) for j in broker.apns_jobs) >= G, timeout=60,
               quiet=1.0)
got = [(uid, tok) for j in broker.apns_jobs for uid, tok in j[11]]
c.eq(len(got), G, "restart mid-scan: number of targets (no loss, no duplicate)")
c.check(set(got) == want, "restart mid-scan: exact set of tokens")
c.check(metric("scan_restarts_total") > restarts0, "restart mid-scan: scan restarted after reconnect")
c.eq(broker.topics("m-gs"), ["push/group/gs"], "restart mid-scan: one group publish")
c.check(metric("outputs_blocked_total") > 0, "restart mid-scan: outputs waited for the broker")
broker.check_link(c, "restart mid-scan")

# --- C: SIGTERM while Redis is down ---------------------------------------------------
redis.stop()
broker.reset()
broker.send("m-down", 3, ["s0"], {"alert": "x"})
broker.poll(800)  # the hub hands the job over and keeps the link alive
c.eq(broker.apns_jobs + broker.mqtt_jobs, [], "redis down: nothing delivered meanwhile")
c.check(proc.alive(), "redis down: resolver keeps running")
c.eq(broker.hub.in_flight(), 1, "redis down: the message is held, not acked")
acked0 = len(broker.hub.acked)
rc = proc.stop(timeout=15)  # None if it had to be killed
c.eq(rc, 0, "SIGTERM while Redis is down: exit 0 (within drain_timeout_ms)")
c.check("message_abandoned" in proc.output(), "SIGTERM while Redis is down: abandonment logged")
broker.poll(300)  # reads the resolver's "B"
c.eq(len(broker.hub.acked), acked0, "SIGTERM while Redis is down: the message was not acked")
c.eq(broker.hub.byes, 1, "SIGTERM: the resolver said bye")
c.eq([R.resolve_msg_id(b) for b in broker.hub.pending], ["m-down"],
     "SIGTERM while Redis is down: the message is back with the broker for another resolver")
broker.close()
c.finish()
