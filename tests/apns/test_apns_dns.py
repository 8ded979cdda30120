"""A DNS that never answers must not stop the sender's loop (issue 9.9, DNS half).

The sender runs in a private mount namespace (unshare -m) whose /etc/resolv.conf names a
loopback address where this test listens on UDP 53 and never answers (timeout:6
attempts:1: each lookup hangs 6 s). The sandbox host is a name to look up there; the
production host is an IP literal with a real test server. While the sandbox pool's lookups
hang (each given up after timeout_ms = 2 s, counted in dns_lookups_total{result="timeout"}
and logged as resolve_timeout), the test checks for 8 s that:
  - the hub never declares the sender dead (its heartbeats keep coming: 3 s timeout);
  - production notifications sent every 0.25 s are each delivered within 1 s.
The sandbox job, which cannot be sent, expires and is acked like any other.

On the code before the fix getaddrinfo ran on the loop: each lookup froze it for 6 s, the
hub declared the sender dead (deaths >= 1) and production deliveries stalled for seconds."""
import os
import random
import socket
import subprocess
import sys
import threading
import time

import apns_env as E

h = E.h
env = E.Env("dns")
c = env.checks

# A silent DNS server on a loopback address of our own (port 53 needs root; the test runs
# as root in CI, and unshare -m needs it too).
ns_addr = "127.%d.%d.%d" % (random.randint(64, 250), random.randint(1, 250),
                            random.randint(2, 250))
ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
try:
    ns.bind((ns_addr, 53))
    subprocess.run(["unshare", "-m", "true"], check=True, capture_output=True)
except (OSError, subprocess.CalledProcessError) as e:
    print("skip: needs root for UDP port 53 and unshare -m (%s)" % e)
    sys.exit(77)  # SKIP_RETURN_CODE in tests/apns/CMakeLists.txt
queries = []


def _swallow():
    while True:
        try:
            data, _ = ns.recvfrom(4096)
        except OSError:
            return
        queries.append(time.time())


threading.Thread(target=_swallow, daemon=True).start()
resolv = os.path.join(env.wd, "resolv.conf")
with open(resolv, "w") as f:
    f.write("nameserver %s\noptions timeout:6 attempts:1\n" % ns_addr)

prod = env.server("production", srv_env="production")
HANG_HOST = "hang.apns-dns.test"
cfg = env.sender_config(production=prod, timeout_ms=2000)
cfg["apns_sender"]["hosts"]["sandbox"] = "%s:%d" % (HANG_HOST, h.free_port())
cfg["apns_sender"]["hosts"]["production"] = "127.0.0.1:%d" % prod.port


class NsSender(E.Sender):
    """The sender in a mount namespace where /etc/resolv.conf is ours."""

    def __init__(self, env, name, cfg):
        self.env, self.name = env, name
        self.metrics_port = h.free_port()
        cfg["apns_sender"]["metrics_port"] = self.metrics_port
        self.config = h.write_config(env.wd, cfg, "sender-%s.json" % name)
        binary = h.binary(env.build_dir, "pushpipe-apns-sender")
        script = 'mount --bind "$1" /etc/resolv.conf && exec "$2" --config "$3"'
        self.proc = h.Proc(["unshare", "-m", "sh", "-c", script, "sh", resolv, binary,
                            self.config], os.path.join(env.wd, "sender-%s.log" % name))
        h.wait_for(lambda: not self.proc.alive() or E._port_open(self.metrics_port), 10,
                   what="sender %s to start" % name)
        if not self.proc.alive():
            raise RuntimeError("sender exited:\n" + self.proc.output())


s = NsSender(env, "dns", cfg)
env.send([("p0", E.tok(1))], env=1)
prod.wait_count(1, timeout=10)
c.eq(env.hub.stats()["deaths"], 0, "sender alive at start")

# The sandbox job starts the sandbox pool: its lookup goes to the silent server.
env.send([("s0", E.tok(2))], env=0, expiration=int(time.time()) + 4)
h.wait_for(lambda: queries, 5, what="a DNS query to reach the silent server")
t_hang = time.time()
worst, n = 0.0, 1
while time.time() - t_hang < 8:
    n += 1
    t0 = time.time()
    env.send([("p%d" % n, E.tok(100 + n))], env=1)
    try:
        prod.wait_count(n, timeout=5)
    except AssertionError:
        pass
    worst = max(worst, time.time() - t0)
    time.sleep(0.25)
st = env.hub.stats()
c.eq(st["deaths"], 0, "the hub never declared the sender dead during 8 s of DNS hang")
c.check(worst < 1.0, "production notifications kept flowing (worst latency %.2f s)" % worst)
c.eq(prod.count(), n, "all %d production notifications delivered" % n)
c.check(s.metric("dns_lookups_total", result="timeout") >= 2,
        "lookups given up after timeout_ms are counted (%s)"
        % s.metric("dns_lookups_total", result="timeout"))
c.check("event=resolve_timeout" in s.output() and HANG_HOST in s.output(),
        "and logged (resolve_timeout)")
c.check(len(queries) >= 2, "the sandbox pool kept trying (%d queries)" % len(queries))
c.eq(s.metric("delivered_total", env="sandbox"), 0, "nothing reached the sandbox")
env.check_acked(what="(the sandbox job expired)")
c.check(s.metric("expired_total") >= 1, "the sandbox notification expired")
c.eq(s.stop(), 0, "exit 0 with lookups still hanging")
ns.close()
env.finish()
