"""The resolver on the acknowledged link (docs/link-protocol.md), the script playing the
broker with FakeHub: (1) every ack comes after all of its message's outputs; (2) two
resolvers, one killed with kill -9 in the middle of a stream: every expected delivery
arrives at least once (duplicates counted and printed), every RESOLVE job is acked;
(3) backpressure: the hub stops reading for longer than its timeout, the resolver neither
dies nor loses anything, and resumes."""
import collections
import signal
import time

import sys

sys.dont_write_bytecode = True  # no __pycache__ next to rhelp.py in the source tree

import pp_harness as h  # noqa: E402
import rhelp as R  # noqa: E402

args = h.parse_args()
c = h.Checks()
wd = h.workdir("resolver-link")
redis = h.Redis(wd)
r = redis.client()
HB = 300  # ms; the hub declares a resolver dead after 3 x HB of silence

# Users: k<i> with a token (APNs) for even i, no hash (MQTT) for odd i; groups gk<j> of 300
# members with tokens.
NU, NG, GS = 2000, 10, 300
pipe = r.pipeline(transaction=False)
for i in range(0, NU, 2):
    pipe.hset("User:k%d" % i, mapping={"app_token": R.token(i), "app_ident": "com.k",
                                       "app_version": "produce"})
for j in range(NG):
    for k in range(GS):
        pipe.hset("User:gk%d_%d" % (j, k), mapping={"app_token": R.token(100000 + j * GS + k),
                                                    "app_ident": "com.k"})
    pipe.sadd("GroupAppleUser:gk%d" % j, *["gk%d_%d" % (j, k) for k in range(GS)])
pipe.execute()


def expected(msgs):
    """(msg_id, kind, target) for every delivery the messages should make."""
    want = set()
    for m, t, ids in msgs:
        if t == 1:
            j = int(ids[0][2:])
            want.add((m, "mqtt", "push/group/" + ids[0]))
            for k in range(GS):
                want.add((m, "apns", ("gk%d_%d" % (j, k), R.token(100000 + j * GS + k))))
        else:
            i = int(ids[0][1:])
            want.add((m, "apns", ("k%d" % i, R.token(i))) if i % 2 == 0 else
                     (m, "mqtt", "push/user/k%d" % i))
    return want


def delivered(broker):
    """Counter of (msg_id, kind, target) over every output received."""
    got = collections.Counter()
    for j in broker.apns_jobs:
        for uid, tok in j[11]:
            got[(j[2], "apns", (uid, tok))] += 1
    for j in broker.mqtt_jobs:
        for t in j[6]:
            got[(j[2], "mqtt", t)] += 1
    return got


def stream(n, prefix):
    msgs = []
    for i in range(n):
        if i % 40 == 0:
            msgs.append(("%s-%d" % (prefix, i), 1, ["gk%d" % (i // 40 % NG)]))
        else:
            msgs.append(("%s-%d" % (prefix, i), 3, ["k%d" % (i % NU)]))
    return msgs


# --- (1) + (2): two resolvers, one killed with kill -9 mid-stream -----------------------
base = h.free_ports(7)
broker = R.Broker(base, heartbeat_ms=HB)
cfg = R.resolver_config(redis.port, heartbeat_ms=HB, link={"window": 64}, message_batch=16,
                        batch={"max_targets": 50})
ports = [h.free_port(), h.free_port()]
procs = [R.start_resolver(args, wd, broker, cfg, name="resolver-k%d" % i, metrics_port=ports[i])
         for i in range(2)]
for p in ports:
    h.wait_port(p)
broker.collect(until=lambda: len(broker.hub.workers) == 2, timeout=10, quiet=0)
c.eq(len(broker.hub.workers), 2, "kill: both resolvers connected to the hub")
M = 4000
msgs = stream(M, "k")
for m, t, ids in msgs:
    broker.send(m, t, ids, {"alert": m})
broker.collect(until=lambda: len(broker.hub.acked) >= M // 4, timeout=30, quiet=0)
# Freeze the victim in the middle of its work (SIGSTOP), let the hub run a little so that
# what it holds is visible, then kill -9 it: whatever it held unacknowledged must be re-sent
# to the other resolver once the hub declares it dead (3 x HB of silence).
procs[0].signal(signal.SIGSTOP)
broker.poll(2 * HB // 3)
holding = max(len(w["inflight"]) for w in broker.hub.workers.values())
c.check(holding > 0, "kill: the frozen resolver holds unacknowledged jobs (%d)" % holding)
procs[0].signal(signal.SIGKILL)
broker.collect(until=broker.all_acked, timeout=60, quiet=0.3)
got = delivered(broker)
want = expected(msgs)
missing = want - set(got)
extra = set(got) - want
dups = sum(n - 1 for n in got.values())
print("kill -9: %d deliveries expected, %d duplicates, requeued %d, deaths %d"
      % (len(want), dups, broker.hub.requeued, broker.hub.deaths))
c.eq(len(missing), 0, "kill -9: every expected delivery arrived at least once")
c.eq(len(extra), 0, "kill -9: nothing unexpected delivered")
c.check(broker.hub.requeued > 0, "kill -9: the hub re-sent what the killed resolver held")
c.eq(broker.hub.deaths, 1, "kill -9: one resolver declared dead")
c.check(broker.all_acked(), "kill -9: every RESOLVE job acked")
acked_ids = collections.Counter(R.resolve_msg_id(b) for _, _, b in broker.hub.acked)
c.eq(set(acked_ids), {m for m, _, _ in msgs}, "kill -9: every message acked")
n, late = broker.acks_before_outputs()
c.eq(late, [], "kill -9: each of %d acks came after all its message's outputs" % n)
c.check(procs[1].alive(), "kill -9: the other resolver is still running")
c.eq(procs[1].stop(), 0, "kill -9: the other resolver exits 0")
broker.close()

# --- (3) backpressure: the hub stops reading -----------------------------------------
base = h.free_ports(7)
broker = R.Broker(base, rcvhwm=1, heartbeat_ms=HB)
mport = h.free_port()
cfg = R.resolver_config(redis.port, heartbeat_ms=HB, link={"send_hwm": 16},
                        batch={"max_targets": 1})
proc = R.start_resolver(args, wd, broker, cfg, name="resolver-bp", metrics_port=mport)
h.wait_port(mport)
broker.collect(until=lambda: len(broker.hub.workers) == 1, timeout=10, quiet=0)
B = 2000  # ~8 MB of outputs: more than loopback socket buffers can absorb
pad = "p" * 3900  # ~4 KB per APNS job
msgs = [("bp-%d" % i, 1, ["gk%d" % (i % NG)]) for i in range(B // 20)]
msgs += [("bp-u%d" % i, 3, ["k%d" % i]) for i in range(B)]
for m, t, ids in msgs:
    broker.send(m, t, ids, {"alert": "x", "pad": pad})
t_end = time.time() + 10
while len(broker.apns_jobs) < 10 and time.time() < t_end:
    broker.poll(1)  # short steps: stop reading soon after the first jobs
broker.reading = False
time.sleep(5 * HB / 1000.0)  # longer than the hub's timeout (3 x HB)
blocked = h.metric(mport, "outputs_blocked_total")
c.check(blocked > 0, "backpressure: the resolver waited for the hub (%d outputs)" % blocked)
c.check(proc.alive(), "backpressure: the resolver is alive")
c.check(not broker.all_acked(), "backpressure: work was left when the hub stopped reading")
broker.reading = True
broker.collect(until=broker.all_acked, timeout=60, quiet=0.3)
got = delivered(broker)
want = expected(msgs)
c.eq(len(want - set(got)), 0, "backpressure: every expected delivery arrived")
c.eq(sum(got.values()), len(want), "backpressure: no duplicates, nothing extra")
c.eq(broker.hub.deaths, 0, "backpressure: the hub never declared the resolver dead")
broker.check_link(c, "backpressure")
c.eq(proc.stop(), 0, "backpressure: exit 0")
broker.close()
c.finish()
