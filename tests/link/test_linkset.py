"""Workers take work from several brokers (pushpipe issue 10; common/pp_linkset.c).

Real processes: two pushpipe-brokers A and B, ONE pushpipe-resolver (real redis-server)
and ONE pushpipe-mqtt-sender (real mosquitto), both given broker_address = both brokers
(the resolver as a JSON array in its config, the sender as a comma-separated --broker
string). Type 3 messages to users without a token go to MQTT only (push/user/<id>).
Asserts:
  - each worker holds one link per broker: each broker's resolve and mqtt pools see one
    worker;
  - every message pushed to A's intake and to B's intake is published by MQTT;
  - each broker's own jobs were done: its resolve pool's acks and its mqtt pool's acks
    reach the number of messages pushed to it;
  - a resolver's outputs for A's jobs went to A (and B's to B): each broker's resolve pool
    counted exactly as many outputs as messages pushed to it, and its mqtt pool forwarded
    exactly that many MQTT jobs (the brokers' durability ledgers count outputs per
    message, so an output sent to the other broker would break them);
  - kill -9 of broker A: both workers keep running and keep working for B (messages
    pushed to B are all published), and both stop cleanly (exit 0).
Fails on the old code: broker_address could not be a list (a JSON array is "expected a
string", exit 2; a comma-separated string is no valid address). Checked also with
outputs routed to the first link only (pp_linkset_send on links[0]): B's outputs then
land on A and the per-broker output counts fail.
"""
import os
import subprocess
import sys
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "broker"))
sys.path.insert(0, os.path.join(HERE, "..", "mqtt"))

import zmq  # noqa: E402

import pp_harness as h  # noqa: E402
from broker_util import Broker, Zmq, frame, until  # noqa: E402
from mqtt_util import Subscriber  # noqa: E402

args = h.parse_args()
c = h.Checks()
wd = h.workdir("link-multi-broker")
N_A, N_B, N_B2 = 300, 200, 150

redis = h.Redis(wd)
mosq = h.Mosquitto(wd)
a = Broker(args, wd, name="broker-a")
b = Broker(args, wd, name="broker-b")
sub = Subscriber(mosq.port, ["push/user/+"])

rport = h.free_port()
rcfg = h.write_config(wd, {
    "broker_address": [a.address, b.address],
    "log_level": "info",
    "resolver": {"metrics_port": rport, "redis": {"port": redis.port, "backoff_max_ms": 200},
                 "link": {"window": 64}, "message_batch": 16}}, "resolver.json")
res = h.Proc([h.binary(args.build_dir, "pushpipe-resolver"), "--config", rcfg],
             os.path.join(wd, "resolver.log"))
sport = h.free_port()
scfg = h.write_config(wd, {
    "log_level": "info",
    "mqtt_sender": {"metrics_port": sport, "uri": "tcp://127.0.0.1:%d" % mosq.port,
                    "link": {"window": 32}}}, "sender.json")
snd = h.Proc([h.binary(args.build_dir, "pushpipe-mqtt-sender"), "--config", scfg,
              "--broker", "%s, %s" % (a.address, b.address)],
             os.path.join(wd, "sender.log"))
# An apns-sender without credentials: only its links are looked at.
acfg = h.write_config(wd, {"broker_address": "%s,%s" % (a.address, b.address),
                           "log_level": "info", "apns_sender": {"metrics_port": 0}},
                      "apns.json")
apns = h.Proc([h.binary(args.build_dir, "pushpipe-apns-sender"), "--config", acfg],
              os.path.join(wd, "apns.log"))
POOLS = ("resolve", "mqtt", "apns")


def workers_joined():
    return all(x.metric("link_workers", pool=p) == 1 for x in (a, b) for p in POOLS)


ok = until(workers_joined, (), 15)
c.check(ok, "the resolver, the mqtt-sender and the apns-sender each joined both brokers' "
        "pools (A/B: %s)" % ", ".join("%s %d/%d" % (p, a.metric("link_workers", pool=p),
                                                     b.metric("link_workers", pool=p))
                                       for p in POOLS))
if not ok:
    print(res.output()[-3000:])
    print(snd.output()[-3000:])

z = Zmq()
pa = z.sock(zmq.PUSH, a.ep("intake"))
pb = z.sock(zmq.PUSH, b.ep("intake"))
# Interleaved, so that both brokers have work for the same workers at the same time.
for i in range(max(N_A, N_B)):
    if i < N_A:
        pa.send(frame(3, "a%d" % i, {"n": i}))
    if i < N_B:
        pb.send(frame(3, "b%d" % i, {"n": i}))


def topics():
    return {t for t, _ in sub.snapshot()}


want = {"push/user/a%d" % i for i in range(N_A)} | {"push/user/b%d" % i for i in range(N_B)}
until(lambda: want <= topics(), (), 30)
missing = want - topics()
c.check(not missing, "every message pushed to A (%d) and to B (%d) is published by MQTT "
        "(missing %d, e.g. %s)" % (N_A, N_B, len(missing), sorted(missing)[:3]))


def settled():
    return all(x.metric("link_in_flight", pool=p) == 0 and x.metric("link_pending", pool=p) == 0
               for x in (a, b) for p in ("resolve", "mqtt"))


c.check(until(settled, (), 10), "idle: nothing in flight or pending in any pool of A or B")
for x, name, n in ((a, "A", N_A), (b, "B", N_B)):
    acks = x.metric("link_acks_total", pool="resolve")
    c.check(acks >= n, "%s's RESOLVE jobs were done by the resolver (resolve pool acks %d >= "
            "%d)" % (name, acks, n))
    outs = x.metric("link_outputs_total", pool="resolve")
    c.eq(outs, n, "the resolver's outputs for %s's jobs went to %s (its resolve pool's "
         "outputs)" % (name, name))
    fwd = x.metric("forwarded_total", stage="mqtt")
    c.eq(fwd, n, "%s's mqtt pool forwarded as many MQTT jobs as messages pushed to %s" %
         (name, name))
    macks = x.metric("link_acks_total", pool="mqtt")
    c.check(macks >= n, "%s's MQTT jobs were done and acked on %s's link (mqtt pool acks %d "
            ">= %d)" % (name, name, macks, n))
hub_jobs = [h.metric(rport, "link_worker_hub_jobs_total", hub=str(i)) for i in (0, 1)]
c.check(hub_jobs[0] >= N_A and hub_jobs[1] >= N_B,
        "the resolver counted its jobs per broker (link_worker_hub_jobs_total %s)" % hub_jobs)
c.eq(h.metric(rport, "link_worker_bad_handles_total"), 0, "the resolver: no bad job handle")
c.eq(h.metric(sport, "link_worker_bad_handles_total"), 0, "the sender: no bad job handle")

# --- broker A dies: the workers keep working for B ---------------------------------------
a.proc.kill()
time.sleep(0.5)
for i in range(N_B2):
    pb.send(frame(3, "c%d" % i, {"n": i}))
want2 = {"push/user/c%d" % i for i in range(N_B2)}
until(lambda: want2 <= topics(), (), 30)
missing2 = want2 - topics()
c.check(not missing2, "after kill -9 of broker A, every message pushed to B (%d) is "
        "published (missing %d)" % (N_B2, len(missing2)))
c.eq(b.metric("forwarded_total", stage="mqtt"), N_B + N_B2,
     "B's mqtt pool forwarded B's MQTT jobs, before and after A died")
c.check(res.alive() and snd.alive() and apns.alive(),
        "the resolver and the senders are still running")
time.sleep(1.5)  # a few reconnect attempts to the dead A
c.check(until(lambda: b.metric("link_workers", pool="resolve") == 1 and
              b.metric("link_workers", pool="mqtt") == 1, (), 5),
        "B still knows one resolver and one sender")
t0 = time.time()
c.eq(res.stop(), 0, "the resolver exits 0 (one broker gone)")
c.eq(snd.stop(), 0, "the mqtt-sender exits 0 (one broker gone)")
c.eq(apns.stop(), 0, "the apns-sender exits 0 (one broker gone)")
c.check(time.time() - t0 < 12, "both stop promptly (%.1f s)" % (time.time() - t0))
z.close()
sub.stop()
c.eq(b.stop(), 0, "broker B exits 0")

# --- broker_address lists: checked at start; a broker binds the first entry -------------
for bad, why in ((["tcp://127.0.0.1:7000", "tcp://127.0.0.1:7000"], "listed twice"),
                 ("tcp://127.0.0.1:7000,,tcp://127.0.0.1:7100", "an empty address"),
                 (["tcp://127.0.0.1:7000", 7], "is not a string"),
                 ([], "an empty list"),
                 (["tcp://127.0.0.1:%d" % (7000 + 10 * i) for i in range(17)], "more than 16"),
                 ("tcp://127.0.0.1:7000,nonsense", "is not tcp://")):
    path = h.write_config(wd, {"broker_address": bad}, "bad.json")
    r = subprocess.run([h.binary(args.build_dir, "pushpipe-mqtt-sender"), "--config", path],
                       capture_output=True, text=True, timeout=10)
    c.check(r.returncode == 2 and why in r.stderr,
            "broker_address %s refused at start (exit %d: %s)" % (
                repr(bad)[:60], r.returncode, r.stderr.strip()[:120]))
first = h.free_ports(7)
second = h.free_ports(7)  # never overlaps first
bm = h.free_port()
bcfg = h.write_config(wd, {"broker_address": ["tcp://127.0.0.1:%d" % first,
                                              "tcp://127.0.0.1:%d" % second],
                           "broker": {"metrics_port": bm}}, "broker-list.json")
bl = h.Proc([h.binary(args.build_dir, "pushpipe-broker"), "--config", bcfg],
            os.path.join(wd, "broker-list.log"))
h.wait_port(bm)
h.wait_port(first)
c.check(not h.port_free(first) and h.port_free(second),
        "a broker given a broker_address list binds its first entry")
c.eq(bl.stop(), 0, "that broker exits 0")
mosq.stop()
redis.stop()
c.finish()
