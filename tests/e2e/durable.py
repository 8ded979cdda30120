"""No single point of loss (issue 10), on loopback: two brokers, each with its own
resolver and mqtt-sender ("host A" and "host B"), durability "jetstream" on a three-node
NATS JetStream cluster with the stream replicated three times (R3), real redis-server and
mosquitto.

A client sends acknowledged pushes, each with its own client message id, to broker A and,
when A does not answer, resends what is unanswered to broker B (the same ids:
JetStream's Nats-Msg-Id window stores each once).

1. kill -9 of host A (broker, resolver, mqtt-sender) in the middle of 10,000 pushes:
   every accepted push reaches MQTT, broker B keeps accepting, duplicates are counted.
2. kill -9 of one NATS node in the middle of 10,000 more: every push is accepted and
   delivered, and no push waits longer than the failover allows.
3. Every push is accepted exactly once from the client's point of view (one "accepted"
   per id counted by the client), whatever broker answered."""
import os
import signal
import threading
import time

import msgpack
import zmq

import pp_harness as h
from e2e_common import LOCAL, PREFIX, Subscriber
from pp_nats import cluster

args = h.parse_args()
ck = h.Checks()
wd = h.workdir("e2e-durable")
N = 10000
ACK_WAIT_MS = 3000

nats = cluster(wd, 3)
redis = h.Redis(wd)
mqtt = h.Mosquitto(wd)
sub = Subscriber(wd, LOCAL, "127.0.0.1", mqtt.port)


class Site:
    """One "host": a broker with its own resolver and mqtt-sender."""

    def __init__(self, name):
        self.name = name
        self.base = h.free_ports(7)
        self.mports = [h.free_port() for _ in range(3)]
        cfg = {
            "log_level": "info",
            "broker_address": "tcp://127.0.0.1:%d" % self.base,
            "broker": {"metrics_port": self.mports[0], "drain_ms": 2000,
                       "durability": "jetstream",
                       "jetstream": {"servers": [n.url for n in nats], "replicas": 3,
                                     "ack_wait_ms": ACK_WAIT_MS, "publish_timeout_ms": 4000}},
            "resolver": {"redis": {"host": "127.0.0.1", "port": redis.port},
                         "mqtt_prefix": PREFIX},
            "mqtt_sender": {"uri": "tcp://127.0.0.1:%d" % mqtt.port, "qos": 1},
        }
        path = h.write_config(wd, cfg, "%s.json" % name)
        self.procs = []
        for i, prog in enumerate(("pushpipe-broker", "pushpipe-resolver",
                                  "pushpipe-mqtt-sender")):
            p = h.Proc([h.binary(args.build_dir, prog), "--config", path, "--metrics-port",
                        self.mports[i]], os.path.join(wd, "%s-%s.log" % (name, prog)))
            h.wait_port(self.mports[i], 20)
            self.procs.append(p)

    @property
    def submit(self):
        return "tcp://127.0.0.1:%d" % (self.base + 1)

    def metric(self, name, **labels):
        return h.metric(self.mports[0], name, **labels)

    def kill(self):
        for p in self.procs:
            p.kill()

    def output(self):
        return "".join(p.output() for p in self.procs)


class Client(threading.Thread):
    """Acknowledged pushes with client ids, WINDOW in flight on the current broker; no
    reply for REPLY_S seconds: the next broker gets everything unanswered. Verdicts wait
    for JetStream, so replies can come back out of order: each names its frame ("cid")."""
    WINDOW, REPLY_S = 200, 2.0

    def __init__(self, sites, first, n):
        super().__init__(daemon=True)
        self.sites, self.first, self.n = sites, first, n
        self.accepted = {}       # i -> count of "accepted" replies
        self.switches = 0
        self.max_wait = 0.0      # longest time any push waited for its "accepted"
        self.refused = {}

    def run(self):
        ctx = zmq.Context()
        todo = list(range(self.first, self.first + self.n))
        todo.reverse()
        current = 0
        sock = None
        sent = set()  # i awaiting a verdict on the current connection
        born = {}
        while todo or sent:
            if sock is None:
                sock = ctx.socket(zmq.DEALER)
                sock.linger = 0
                sock.connect(self.sites[current].submit)
            while todo and len(sent) < self.WINDOW:
                i = todo.pop()
                born.setdefault(i, time.time())
                sock.send(msgpack.packb([3, "u%d" % i, {"i": i}, {"id": "m%d" % i}]))
                sent.add(i)
            if not sock.poll(int(self.REPLY_S * 1000)):
                sock.close()
                sock = None
                current = (current + 1) % len(self.sites)
                self.switches += 1
                todo.extend(sorted(sent, reverse=True))
                sent = set()
                continue
            while sent and sock.poll(0):
                r = msgpack.unpackb(sock.recv(), raw=False)
                i = int(r["cid"][1:])
                if i not in sent:
                    continue  # a late verdict from before a reconnect: already resent
                sent.discard(i)
                if r.get("ok") is True:
                    self.accepted[i] = self.accepted.get(i, 0) + 1
                    self.max_wait = max(self.max_wait, time.time() - born[i])
                else:
                    self.refused[r.get("reason")] = self.refused.get(r.get("reason"), 0) + 1
                    todo.append(i)
                    time.sleep(0.005)  # overloaded / unavailable: back off a little
        sock.close()
        ctx.term()


def delivered(first, n):
    got = {}
    for m in sub.messages():
        i = int(m["payload"].split(":")[1].rstrip("}"))
        if first <= i < first + n:
            got[i] = got.get(i, 0) + 1
    return got


def wait_delivered(first, n, timeout=120):
    try:
        h.wait_for(lambda: len(delivered(first, n)) >= n, timeout, interval=0.5,
                   what="deliveries")
    except AssertionError:
        pass
    return delivered(first, n)


a, b = Site("a"), Site("b")

# 1. kill -9 host A mid-stream
cl = Client([a, b], 0, N)
cl.start()
h.wait_for(lambda: len(cl.accepted) >= N * 3 // 10, 120, what="30% accepted")
print("killing host A with %d accepted" % len(cl.accepted), flush=True)
a.kill()
cl.join(300)
ck.check(not cl.is_alive(), "the client finished")
ck.eq(len(cl.accepted), N, "every push accepted (by A or, after the kill, by B)")
ck.check(cl.switches >= 1, "the client moved to broker B (%d switches)" % cl.switches)
got = wait_delivered(0, N, 120)
missing = [i for i in range(N) if i not in got]
dups = sum(v - 1 for v in got.values())
print("phase 1: delivered=%d duplicates=%d missing=%d redelivered_at_B=%d accepted_twice=%d"
      % (len(got), dups, len(missing), b.metric("durable_redelivered_total"),
         sum(1 for v in cl.accepted.values() if v > 1)), flush=True)
ck.eq(missing[:10], [], "kill -9 of a broker host: 0 lost (%d missing)" % len(missing))
ck.check(b.metric("durable_accepted_total") > 0, "broker B kept accepting")

# 2. kill -9 of one NATS node mid-stream (B alone now)
cl = Client([b], N, N)
cl.start()
h.wait_for(lambda: len(cl.accepted) >= N * 3 // 10, 120, what="30% accepted")
print("killing NATS node n1 with %d accepted" % len(cl.accepted), flush=True)
nats[0].kill()
cl.join(300)
ck.check(not cl.is_alive(), "the client finished with a NATS node down")
ck.eq(len(cl.accepted), N, "every push accepted")
got = wait_delivered(N, N, 120)
missing = [i for i in range(N, 2 * N) if i not in got]
print("phase 2: delivered=%d missing=%d longest_wait_for_accepted=%.1fs refusals=%r"
      % (len(got), len(missing), cl.max_wait, cl.refused), flush=True)
print("broker B: " + " ".join("%s=%d" % (m, b.metric(m)) for m in (
    "durable_accepted_total", "durable_batches_total", "durable_runs_total",
    "durable_redelivered_total", "durable_finished_total", "durable_unfinished",
    "durable_orphan_units_total", "js_publish_failed_total", "js_duplicates_total",
    "js_fetch_errors_total", "js_naked_total")), flush=True)
for n in nats[1:]:
    try:
        print("%s: stream holds %s" % (n.name, n.stream_messages()), flush=True)
    except Exception as e:  # noqa: BLE001 - diagnostics only
        print("%s: %s" % (n.name, e), flush=True)
ck.eq(missing[:10], [], "kill -9 of a NATS node: 0 lost (%d missing)" % len(missing))
if missing and os.environ.get("PP_DEBUG_HOLD"):
    print("holding for a debugger: broker B pid %d" % b.procs[0].pid, flush=True)
    time.sleep(int(os.environ["PP_DEBUG_HOLD"]))
ck.check(cl.max_wait < 15, "no push waited beyond the failover (%.1f s)" % cl.max_wait)

# 3. exactly once from the client's side: one "accepted" per id in phase 2 (one broker)
ck.eq(sum(1 for v in cl.accepted.values() if v > 1), 0,
      "no push was accepted twice by the same broker")
for p in b.procs:
    ck.check(p.alive(), "%s still running" % p.argv[0].rsplit("/", 1)[-1])
ck.check("AddressSanitizer" not in b.output(), "no sanitizer report")
ck.finish()
