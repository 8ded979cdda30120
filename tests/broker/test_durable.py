"""broker.durability "jetstream" against a real nats-server: accepted means stored.

1. Acknowledged pushes are answered "accepted" only once JetStream has them; they run
   when workers come, and once every job of a message is acknowledged the message leaves
   the stream (it holds 0 at the end).
2. kill -9 of the broker with accepted messages not yet run, then a new broker on the
   same stream: every one of them runs there (at-least-once: redelivered after
   ack_wait_ms).
3. SIGTERM with messages still unfinished: the broker gives them back to the stream at
   once (logged with their ids) and the next broker runs them without waiting ack_wait.
4. A client's resend (same client message id) is stored once: both answers are
   "accepted", one job runs.
5. NATS unreachable at start: exit 1 with a clear error, nothing bound."""
import re
import signal
import subprocess

import msgpack
import zmq

import pp_harness as h
from broker_util import Broker, Zmq, frame, mqtt_job, spin, take_jobs, until
from pp_nats import NatsNode

args = h.parse_args()
c = h.Checks()
wd = h.workdir("broker-durable")
nats = NatsNode(wd)


def cfg(**js):
    j = {"servers": nats.url, "ack_wait_ms": 2000, "memory_storage": False}
    j.update(js)
    return {"durability": "jetstream", "drain_ms": 3000, "jetstream": j}


def submit_all(dealer, frames, timeout_ms=10000):
    for f in frames:
        dealer.send(f)
    replies = []
    while len(replies) < len(frames) and dealer.poll(timeout_ms):
        replies.append(msgpack.unpackb(dealer.recv(), raw=False))
    return replies


def resolver_for(z, b):
    return z.resolver(b.ep("resolve"), lambda body: [
        mqtt_job(msgpack.unpackb(body, raw=False)[2], ("pp/user/x",))])


# 1. accepted = stored; runs when workers come; finished messages leave the stream
b = Broker(args, wd, cfg(), name="b1")
z = Zmq()
dealer = z.sock(zmq.DEALER, b.ep("submit"))
replies = submit_all(dealer, [frame(3, "u%d" % i, {"i": i}) for i in range(200)])
ids1 = [r.get("id") for r in replies if r.get("ok") is True]
c.eq(len(ids1), 200, "200 acknowledged pushes accepted (%r)" % (replies[:1],))
held = nats.stream_messages()
c.check(held and held >= 1, "JetStream holds them (in %s stored batches) before any worker ran "
        "them" % held)
c.eq(b.metric("durable_accepted_total"), 200, "durable_accepted_total counts 200 frames")
r = resolver_for(z, b)
m = z.worker(b.ep("mqtt_out"), window=100)
got = take_jobs(r, 200, 15, others=[m])
c.eq(sorted(g[2] for g in got), sorted(ids1), "the resolver gets exactly the accepted ones")
until(lambda: len(m.jobs) >= 200, [r, m], 10)
c.eq(len(m.jobs), 200, "their outputs reach the mqtt sender")
until(lambda: b.metric("durable_finished_total") >= held, [r, m], 10)
c.eq(b.metric("durable_finished_total"), held, "every stored batch finished")
c.eq(nats.stream_messages(), 0, "finished messages left the stream")
c.eq(b.stop(), 0, "exit 0")
z.close()

# 2. kill -9 with accepted messages not run: a new broker runs every one
b = Broker(args, wd, cfg(), name="b2")
z = Zmq()
dealer = z.sock(zmq.DEALER, b.ep("submit"))
replies = submit_all(dealer, [frame(3, "k%d" % i, {"i": i}) for i in range(300)])
ids2 = [r["id"] for r in replies if r.get("ok") is True]
c.eq(len(ids2), 300, "300 accepted")
b.proc.kill()
z.close()
b = Broker(args, wd, cfg(), name="b3")
z = Zmq()
r = resolver_for(z, b)
m = z.worker(b.ep("mqtt_out"), window=100)
got = take_jobs(r, 300, 20, others=[m])
c.eq(sorted(set(g[2] for g in got)), sorted(ids2),
     "after kill -9 the next broker runs every accepted message (%d of 300)" % len(got))
until(lambda: nats.stream_messages() == 0, [r, m], 15)
c.eq(nats.stream_messages(), 0, "and the stream is empty afterwards")
c.check(b.metric("durable_redelivered_total") >= 1, "redeliveries are counted")

# 3. SIGTERM with unfinished messages: given back at once, logged with ids
r.crash()
m.close()
dealer = z.sock(zmq.DEALER, b.ep("submit"))
replies = submit_all(dealer, [frame(3, "s%d" % i, {"i": i}) for i in range(50)])
ids3 = [r_["id"] for r_ in replies if r_.get("ok") is True]
c.eq(len(ids3), 50, "50 more accepted with no worker")
spin([], 0.5)
c.eq(b.stop(), 0, "SIGTERM with unfinished messages: exit 0")
log = b.log()
c.check(re.search(r"event=durable_given_back messages=\d+", log) is not None,
        "the broker says it gave messages back")
logged = set(re.findall(r"[0-9a-f]{32}", " ".join(
    l for l in log.splitlines() if "durable_given_back_ids" in l)))
c.check(logged and logged <= set(ids3), "the ids given back are logged (%d)" % len(logged))
z.close()
b = Broker(args, wd, cfg(), name="b4")
z = Zmq()
r = resolver_for(z, b)
m = z.worker(b.ep("mqtt_out"), window=100)
got = take_jobs(r, 50, 1.0, others=[m])
c.eq(sorted(set(g[2] for g in got)), sorted(ids3),
     "the next broker runs them at once (within 1 s; ack_wait is 2 s)")

# 4. the same client message id twice: stored once
dealer = z.sock(zmq.DEALER, b.ep("submit"))
replies = submit_all(dealer, [frame(3, "d1", {"a": 1}, {"id": "order-1"})] * 2)
c.eq([x.get("ok") for x in replies], [True, True], "both sends are answered accepted")
spin([r, m], 1.0)
c.eq(len([g for g in r.jobs[len(got):]]), 1, "one job runs for the resend")
c.check(b.metric("js_duplicates_total") >= 1, "the duplicate is counted")
c.eq(b.stop(), 0, "exit 0")
z.close()

# 5. NATS unreachable: a clear error, exit 1
dead = "nats://127.0.0.1:%d" % h.free_port()
p = subprocess.run([h.binary(args.build_dir, "pushpipe-broker"), "--config",
                    h.write_config(wd, {"broker": {"durability": "jetstream", "metrics_port": 0,
                                                   "jetstream": {"servers": dead,
                                                                 "connect_timeout_ms": 500}}},
                                   "dead.json"),
                    "--bind", "tcp://127.0.0.1:%d" % h.free_ports(7)],
                   capture_output=True, text=True, timeout=30)
c.eq(p.returncode, 1, "NATS unreachable: exit 1")
c.check("event=durability_unavailable" in p.stderr + p.stdout,
        "the error is logged (%r)" % (p.stderr + p.stdout)[-200:])
c.finish()
