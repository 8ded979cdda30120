"""A slow Redis must not make the broker declare a live resolver dead (issue 9.9).

The real pushpipe-broker (link heartbeat 500 ms: a worker silent for 1.5 s is declared dead
and its jobs are sent again) and the real pushpipe-resolver (same heartbeat), whose Redis is
reached through tests/lib/pp_tcpproxy.py holding every chunk 0.35 s in each direction: every
Redis round trip takes about 0.7 s, well within the resolver's command timeout (5 s). A
group push costs SCARD + SMEMBERS + HMGET back to back (2.1 s), a streamed group SCARD and
then SSCAN + HMGET per page; the resolver must keep ticking its link while it waits.

Asserts: no link_worker_dead in the broker's log, link_worker_deaths_total and
link_requeued_total of the resolve pool stay 0, one ack per RESOLVE job, the resolver
resolved each group exactly once (messages_total{type=group}), every member got exactly one
APNs target and every group exactly one MQTT topic, and no Redis failure was counted (the
slowness must not have been "fixed" by timing out and reconnecting)."""
import collections
import os
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ next to the sources
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "broker"))

import msgpack  # noqa: E402
import zmq  # noqa: E402

import pp_harness as h  # noqa: E402
import rhelp as R  # noqa: E402
from broker_util import Broker, Zmq, frame, until  # noqa: E402
from pp_tcpproxy import TcpProxy  # noqa: E402

args = h.parse_args()
c = h.Checks()
wd = h.workdir("resolver-slow-redis")
HB = 500  # ms, broker and resolver alike; the broker's timeout is 3 x HB
DELAY = 0.35  # s per direction: a Redis round trip takes ~0.7 s

redis = h.Redis(wd)
r = redis.client()
# Small groups (SMEMBERS: SCARD + SMEMBERS + one HMGET round), and one group above the scan
# threshold (SCARD, then SSCAN pages of ~50, one HMGET round each).
SMALL = {"slow%d" % j: ["s%d_%d" % (j, k) for k in range(5)] for j in range(3)}
BIG = {"slowbig": ["b_%d" % k for k in range(200)]}
GROUPS = dict(SMALL, **BIG)
pipe = r.pipeline(transaction=False)
n = 0
for gid, members in GROUPS.items():
    for uid in members:
        pipe.hset("User:" + uid, mapping={"app_token": R.token(n), "app_ident": "com.slow",
                                          "app_version": "produce"})
        n += 1
    pipe.sadd("GroupAppleUser:" + gid, *members)
pipe.execute()

proxy = TcpProxy("127.0.0.1", redis.port)
proxy.set_delay(DELAY)

broker = Broker(args, wd, {"link": {"timeout_ms": 3 * HB}}, heartbeat_ms=HB)
z = Zmq()
apns = z.worker(broker.ep("apns_out"), window=1000, heartbeat_ms=HB)
mqtt = z.worker(broker.ep("mqtt_out"), window=1000, heartbeat_ms=HB)
senders = [apns, mqtt]

rport = h.free_port()
cfg = R.resolver_config(proxy.port, redis={"command_timeout_ms": 5000},
                        heartbeat_ms=HB, group_scan_threshold=100, scan_count=50)
resolver = R.start_resolver(args, wd, broker, cfg, name="resolver-slow", metrics_port=rport)
c.check(until(lambda: broker.metric("link_workers", pool="resolve") == 1 and
              broker.metric("link_workers", pool="apns") == 1 and
              broker.metric("link_workers", pool="mqtt") == 1, senders, 10),
        "the resolver and both senders joined the broker")

client = z.sock(zmq.PUSH, broker.ep("intake"))
t0 = time.time()
for gid in GROUPS:
    client.send(frame(1, gid, {"alert": "slow " + gid}))
c.check(until(lambda: broker.metric("link_acks_total", pool="resolve") >= len(GROUPS), senders,
              40), "every group push was resolved and acked")
elapsed = time.time() - t0
# Let a requeued job (old code) be resolved a second time, and the senders take everything.
until(lambda: False, senders, 2.0)
print("resolved %d groups in %.1f s through a %.2f s/direction proxy" %
      (len(GROUPS), elapsed, DELAY), flush=True)
c.check(elapsed >= len(GROUPS) * 3 * 2 * DELAY,
        "Redis was slow: each group took at least 3 round trips of %.1f s, together longer than "
        "the broker's timeout of %d ms (%.1f s for %d groups)" %
        (2 * DELAY, 3 * HB, elapsed, len(GROUPS)))

log = broker.log()
c.check("link_worker_dead" not in log, "the broker never declared a worker dead")
c.eq(broker.metric("link_worker_deaths_total", pool="resolve"), 0,
     "link_worker_deaths_total{pool=resolve}")
c.eq(broker.metric("link_requeued_total", pool="resolve"), 0, "link_requeued_total{pool=resolve}")
c.eq(broker.metric("link_acks_total", pool="resolve"), len(GROUPS),
     "one ack per RESOLVE job (link_acks_total{pool=resolve})")
c.eq(h.metric(rport, "messages_total", type="group"), len(GROUPS),
     "the resolver resolved each group once (messages_total{type=group})")
c.eq(h.metric(rport, "redis_errors_total"), 0, "no Redis failure (no timeout, no reconnect)")

targets = collections.Counter()
for _, body in apns.jobs:
    job = msgpack.unpackb(body, raw=False)
    for uid, _tok in job[11]:
        targets[uid] += 1
want = {uid for members in GROUPS.values() for uid in members}
c.eq(set(targets), want, "every member of every group got an APNs target")
dups = sorted(u for u, k in targets.items() if k > 1)
c.eq(len(dups), 0, "no member got two targets (duplicates: %s)" % dups[:5])
topics = collections.Counter()
for _, body in mqtt.jobs:
    for t in msgpack.unpackb(body, raw=False)[6]:
        topics[t] += 1
c.eq(dict(topics), {"push/group/" + g: 1 for g in GROUPS}, "each group topic published once")

c.eq(resolver.stop(), 0, "the resolver stops cleanly")

# --- Part 2: round trips longer than the command timeout. A second resolver with a
# command timeout of 800 ms while a round trip takes 1.2 s: its waits time out (counted,
# logged), it reconnects with backoff, and its link stays alive all along. Once Redis is
# fast again the push is resolved exactly once.
TIMEOUT_GROUP = ["t_%d" % k for k in range(3)]
for k, uid in enumerate(TIMEOUT_GROUP):
    r.hset("User:" + uid, mapping={"app_token": R.token(10000 + k), "app_ident": "com.slow",
                                   "app_version": "produce"})
r.sadd("GroupAppleUser:slowt", *TIMEOUT_GROUP)
proxy.set_delay(0.6)
seen_apns = len(apns.jobs)
rport2 = h.free_port()
cfg2 = R.resolver_config(proxy.port, redis={"command_timeout_ms": 800}, heartbeat_ms=HB)
resolver2 = R.start_resolver(args, wd, broker, cfg2, name="resolver-timeout", metrics_port=rport2)
c.check(until(lambda: broker.metric("link_workers", pool="resolve") == 1, senders, 10),
        "a second resolver joined")
client.send(frame(1, "slowt", {"alert": "timeout"}))
c.check(until(lambda: h.metric(rport2, "redis_errors_total") >= 2, senders, 15),
        "round trips longer than command_timeout_ms fail (redis_errors_total >= 2)")
c.check(any("event=redis_error" in line and "timeout" in line
            for line in resolver2.output().splitlines()), "the timeout is logged")
proxy.set_delay(0)
c.check(until(lambda: broker.metric("link_acks_total", pool="resolve") >= len(GROUPS) + 1, senders,
              15), "once Redis is fast again the push is resolved and acked")
until(lambda: False, senders, 1.0)
c.check("link_worker_dead" not in broker.log(), "no worker declared dead while Redis timed out")
c.eq(broker.metric("link_requeued_total", pool="resolve"), 0, "nothing requeued")
c.eq(broker.metric("link_acks_total", pool="resolve"), len(GROUPS) + 1, "one more ack")
got = collections.Counter(uid for _, body in apns.jobs[seen_apns:]
                          for uid, _tok in msgpack.unpackb(body, raw=False)[11])
c.eq(dict(got), {uid: 1 for uid in TIMEOUT_GROUP}, "each member got exactly one target")
c.eq(resolver2.stop(), 0, "the second resolver stops cleanly")
broker.stop()
z.close()
proxy.close()
redis.stop()
c.finish()
