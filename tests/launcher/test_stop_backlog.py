"""Issue 9.1: a normal stop loses nothing accepted.

The launcher runs the real pipeline (broker, resolver, mqtt-sender; real redis-server and
mosquitto). A client pushes 100,000 acknowledged messages, each to its own user (no iOS
token: MQTT), resending whatever was not answered "accepted" (stopping, overloaded, or no
answer at all: the Lazy Pirate rule). The mqtt-sender's MQTT window is 1, so delivery is
slower than intake and the broker holds a backlog. Mid-stream the launcher gets SIGTERM;
once it has exited it is started again, and the client goes on.

Every one of the 100,000 must reach the subscriber (duplicates are counted, not errors):
the stop has to stop the broker first and keep the workers working while it drains. The
old launcher sent SIGTERM to every stage at once, the workers stopped taking jobs, and
the broker dropped its backlog (dropped_at_exit_total)."""
import json
import os
import signal
import subprocess
import threading
import time

import msgpack
import zmq

import pp_harness as h
from mqtt_util import Subscriber

N = int(os.environ.get("PP_STOP_BACKLOG_N", "100000"))
WINDOW = 500          # acknowledged pushes in flight at once
REPLY_TIMEOUT = 3.0   # seconds without any reply: the connection is dropped, all resent

args = h.parse_args()
ck = h.Checks()
wd = h.workdir("stop-backlog")
launcher_bin = h.binary(args.build_dir, "pushpipe")

redis = h.Redis(wd)
mqtt = h.Mosquitto(wd)
broker_base = h.free_ports(7)
mbase = h.free_ports(4)
cfg = {
    "broker_address": "tcp://127.0.0.1:%d" % broker_base,
    "log_level": "info",
    "broker": {"drain_ms": 120000},
    "resolver": {"redis": {"host": "127.0.0.1", "port": redis.port}},
    "mqtt_sender": {"uri": "tcp://127.0.0.1:%d" % mqtt.port, "window": 1},
    "launcher": {"resolvers": 1, "apns_senders": 0, "mqtt_senders": 1,
                 "metrics_base_port": mbase, "stop_timeout_ms": 150000},
}
path = h.write_config(wd, cfg)

# A stop timeout the broker's drain cannot finish within is a config error at start.
bad = dict(cfg, launcher=dict(cfg["launcher"], stop_timeout_ms=60000))
r = subprocess.run([launcher_bin, "--config", h.write_config(wd, bad, "bad.json")],
                   capture_output=True, text=True, timeout=30)
ck.eq(r.returncode, 2, "stop_timeout_ms <= broker.drain_ms: exit 2")
ck.check("launcher.stop_timeout_ms" in r.stderr + r.stdout and "broker.drain_ms" in
         r.stderr + r.stdout, "the error names both keys (%r)" % (r.stderr + r.stdout)[-300:])

sub = Subscriber(mqtt.port, ["push/user/#"], qos=1)


class Pusher(threading.Thread):
    """Pushes 0..N-1 in acknowledged mode until each one is accepted. Replies on one
    DEALER connection come back in the order of the frames; when none comes for
    REPLY_TIMEOUT the connection is replaced and everything unanswered is resent."""

    def __init__(self):
        super().__init__(daemon=True)
        self.accepted = set()
        self.resends = 0
        self.refusals = {}
        self.ctx = zmq.Context()

    def _sock(self):
        s = self.ctx.socket(zmq.DEALER)
        s.linger = 0
        s.connect("tcp://127.0.0.1:%d" % (broker_base + 1))
        return s

    def run(self):
        todo = list(range(N))
        sock, sent = self._sock(), []
        while todo or sent:
            while todo and len(sent) < WINDOW:
                i = todo.pop()
                sock.send(msgpack.packb([3, "u%d" % i, {"i": i}]))
                sent.append(i)
            if not sock.poll(int(REPLY_TIMEOUT * 1000)):
                sock.close()
                sock = self._sock()
                self.resends += len(sent)
                todo.extend(sent)
                sent = []
                continue
            while sent and sock.poll(0):
                r = msgpack.unpackb(sock.recv(), raw=False)
                i = sent.pop(0)
                if r.get("ok") is True:
                    self.accepted.add(i)
                else:
                    why = r.get("reason")
                    self.refusals[why] = self.refusals.get(why, 0) + 1
                    todo.append(i)
                    time.sleep(0.001)
        sock.close()
        self.ctx.term()


def delivered():
    got = {}
    for topic, payload in sub.snapshot():
        i = json.loads(payload)["i"]
        got[i] = got.get(i, 0) + 1
    return got


def start():
    p = h.Proc([launcher_bin, "--config", path], os.path.join(wd, "launcher.log"))
    h.wait_for(lambda: "pipeline running" in p.output(), 15, what="launcher banner")
    return p


l1 = start()
pusher = Pusher()
pusher.start()
# Mid-stream: half accepted (the pusher goes on through the stop and the restart), some
# delivered, the rest held by the broker.
h.wait_for(lambda: len(pusher.accepted) >= N // 2 and sub.count() >= 1000, 120,
           what="half accepted")
held = int(h.metric(mbase + 1, "queue_depth", stage="mqtt")) + \
    int(h.metric(mbase + 1, "queue_depth", stage="resolve"))
print("at SIGTERM: accepted=%d delivered=%d held_by_broker=%d"
      % (len(pusher.accepted), sub.count(), held), flush=True)
ck.check(held > 1000, "the broker holds a backlog when the stop begins (%d)" % held)
t0 = time.time()
l1.signal(signal.SIGTERM)
try:
    rc = l1.p.wait(200)
except subprocess.TimeoutExpired:
    rc = None
print("launcher stopped in %.1f s" % (time.time() - t0), flush=True)
ck.eq(rc, 0, "the launcher exits 0")
out = l1.output()
ck.check(0 <= out.find("event=stopping_brokers") < out.find("event=stopping_workers"),
         "the broker is stopped before the workers")
ck.check("drain_incomplete" not in out, "the broker's drain handed everything out")
ck.check("stage_killed" not in out, "no stage had to be killed")

l2 = start()
pusher.join(300)
ck.check(not pusher.is_alive(), "every push was accepted in the end")
try:
    h.wait_for(lambda: len(delivered()) >= N, 300, interval=0.5, what="every delivery")
except AssertionError:
    pass
got = delivered()
missing = [i for i in range(N) if i not in got]
dups = sum(n - 1 for n in got.values())
print("accepted=%d resent=%d refusals=%r delivered_unique=%d duplicates=%d missing=%d"
      % (len(pusher.accepted), pusher.resends, pusher.refusals, len(got), dups, len(missing)),
      flush=True)
ck.eq(len(pusher.accepted), N, "all %d pushes accepted" % N)
ck.eq(missing[:10], [], "every accepted push delivered (%d missing)" % len(missing))
l2.signal(signal.SIGTERM)
ck.eq(l2.p.wait(200), 0, "the second launcher stops with exit 0 too")
sub.stop()
ck.finish()
