"""No single point of loss (issue 10): two brokers, each with its own resolver and
mqtt-sender ("host A" and "host B"), durability "jetstream" on a three-node NATS JetStream
cluster with the stream replicated three times (R3), real redis-server and mosquitto.

As root the eight "hosts" are network namespaces on one bridge (like e2e_multihost):

    10.214.0.1-3  nats-server n1, n2, n3          10.214.0.4  broker A + resolver + sender
    10.214.0.5    broker B + resolver + sender    10.214.0.6  redis-server, mosquitto, sub
    10.214.0.200  this test (the client): a veth from its own network into the bridge

Without root, everything runs on loopback.

A client sends acknowledged pushes, each with its own client message id, to broker A and,
when A does not answer, resends what is unanswered to broker B (the same ids:
JetStream's Nats-Msg-Id window stores each once).

1. kill -9 of host A (broker, resolver, mqtt-sender) in the middle of 10,000 pushes:
   every accepted push reaches MQTT, broker B keeps accepting, duplicates are counted.
2. kill -9 of one NATS node in the middle of 10,000 more: every push is accepted and
   delivered, and no push waits longer than the failover allows.
3. Every push is accepted exactly once from the client's point of view (one "accepted"
   per id counted by the client), whatever broker answered."""
import atexit
import os
import re
import signal
import subprocess
import sys
import threading
import time

import msgpack
import zmq

import pp_harness as h
from e2e_common import LOCAL, PREFIX, Host, Subscriber
from pp_nats import cluster

args = h.parse_args()
ck = h.Checks()
wd = h.workdir("e2e-durable")
N = 10000
ACK_WAIT_MS = 3000
NET = "10.214.0"
TAG = "e2d%d" % (os.getpid() % 100000)


def ip(*argv, check=True):
    return subprocess.run(["ip"] + [str(a) for a in argv], check=check, capture_output=True)


def netns_ok():
    return os.geteuid() == 0 and ip("netns", "list", check=False).returncode == 0


def remove_stale():
    out = subprocess.run(["ip", "netns", "list"], capture_output=True).stdout.decode()
    for line in out.splitlines():
        m = re.match(r"(e2d(\d+)(h\d|br))\b", line)
        if m and not any(os.path.exists("/proc/%d" % p) for p in
                         range(int(m.group(2)), 4194304, 100000)):
            for pid in ip("netns", "pids", m.group(1), check=False).stdout.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (OSError, ValueError):
                    pass
            ip("netns", "del", m.group(1), check=False)


def make_net(n):
    """n host namespaces and this process on one bridge. Returns [Host] of 1..n."""
    remove_stale()
    br = TAG + "br"
    root_if = TAG + "r"

    def teardown():
        h._cleanup()
        ip("link", "del", root_if, check=False)
        for i in range(1, n + 1):
            ip("netns", "del", "%sh%d" % (TAG, i), check=False)
        ip("netns", "del", br, check=False)
    atexit.register(teardown)
    signal.signal(signal.SIGTERM, lambda s, f: sys.exit(1))
    ip("netns", "add", br)
    ip("netns", "exec", br, "ip", "link", "add", "br0", "type", "bridge")
    ip("netns", "exec", br, "ip", "link", "set", "br0", "up")
    hosts = []
    for i in range(1, n + 2):
        root = i == n + 1
        ns = None if root else "%sh%d" % (TAG, i)
        if ns:
            ip("netns", "add", ns)
            ip("link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name", "p%d" % i,
               "netns", br)
        else:
            ip("link", "add", root_if, "type", "veth", "peer", "name", "p%d" % i, "netns", br)
        ip("netns", "exec", br, "ip", "link", "set", "p%d" % i, "master", "br0")
        ip("netns", "exec", br, "ip", "link", "set", "p%d" % i, "up")
        addr = "%s.%d" % (NET, 200 if root else i)
        if ns:
            ip("netns", "exec", ns, "ip", "addr", "add", addr + "/24", "dev", "eth0")
            ip("netns", "exec", ns, "ip", "link", "set", "eth0", "up")
            ip("netns", "exec", ns, "ip", "link", "set", "lo", "up")
            hosts.append(Host(ns, addr))
        else:
            ip("addr", "add", addr + "/24", "dev", root_if)
            ip("link", "set", root_if, "up")
    return hosts


if netns_ok():
    hosts = make_net(6)
    print("network namespaces %s*: NATS on .1-.3, host A .4, host B .5, data .6" % TAG,
          flush=True)
    nats_places = [(x.addr, x.ns) for x in hosts[:3]]
    site_hosts = {"a": hosts[3], "b": hosts[4]}
    data = hosts[5]
else:
    print("not root: everything on loopback", flush=True)
    nats_places = None
    site_hosts = {"a": LOCAL, "b": LOCAL}
    data = LOCAL

nats = cluster(wd, 3, places=nats_places)
redis_port, mqtt_port = h.free_port(), h.free_port()
data.proc(["redis-server", "--port", redis_port, "--bind", data.addr, "--save", "",
           "--appendonly", "no", "--protected-mode", "no", "--dir", wd],
          os.path.join(wd, "redis.log"))
with open(os.path.join(wd, "mosquitto.conf"), "w") as f:
    f.write("listener %d %s\nallow_anonymous true\npersistence false\n"
            "max_queued_messages 1000000\nmax_inflight_messages 0\n" % (mqtt_port, data.addr))
data.proc(["mosquitto", "-c", os.path.join(wd, "mosquitto.conf")],
          os.path.join(wd, "mosquitto.log"))
h.wait_port(redis_port, 15, host=data.addr)
h.wait_port(mqtt_port, 15, host=data.addr)
sub = Subscriber(wd, data, data.addr, mqtt_port)


class Site:
    """One "host": a broker with its own resolver and mqtt-sender."""

    def __init__(self, name):
        self.name = name
        self.host = site_hosts[name]
        self.addr = self.host.addr
        self.base = h.free_ports(7)
        self.mports = [h.free_port() for _ in range(3)]
        cfg = {
            "log_level": "info",
            "broker_address": "tcp://%s:%d" % (self.addr, self.base),
            # CURVE is off in this test; its hosts are namespaces on a private bridge.
            "insecure_bind": True,
            "broker": {"metrics_port": self.mports[0], "metrics_address": self.addr,
                       "drain_ms": 2000, "durability": "jetstream",
                       "jetstream": {"servers": [n.url for n in nats], "replicas": 3,
                                     "ack_wait_ms": ACK_WAIT_MS, "publish_timeout_ms": 4000}},
            "resolver": {"redis": {"host": data.addr, "port": redis_port},
                         "mqtt_prefix": PREFIX, "metrics_address": self.addr},
            "mqtt_sender": {"uri": "tcp://%s:%d" % (data.addr, mqtt_port), "qos": 1,
                            "metrics_address": self.addr},
        }
        path = h.write_config(wd, cfg, "%s.json" % name)
        self.procs = []
        for i, prog in enumerate(("pushpipe-broker", "pushpipe-resolver",
                                  "pushpipe-mqtt-sender")):
            p = self.host.proc([h.binary(args.build_dir, prog), "--config", path,
                                "--metrics-port", self.mports[i]],
                               os.path.join(wd, "%s-%s.log" % (name, prog)))
            try:
                h.wait_port(self.mports[i], 20, host=self.addr)
            except AssertionError:
                raise RuntimeError("%s did not start:\n%s" % (prog, p.output()[-2000:]))
            self.procs.append(p)

    @property
    def submit(self):
        return "tcp://%s:%d" % (self.addr, self.base + 1)

    def metric(self, name, **labels):
        return h.metric(self.mports[0], name, host=self.addr, **labels)

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
ck.check(True, "two brokers up (%s, %s), NATS cluster of 3 ready" % (a.addr, b.addr))

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
