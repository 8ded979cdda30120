"""Test environment of the apns-sender's integration tests: the Python test plays the
broker's hub (pp_link.FakeHub, the link protocol of docs/link-protocol.md, bound on the
apns_out port and driven by a background thread), the real pp-apns-testserver plays Apple,
a real redis-server holds users and shared tokens, and the real pushpipe-apns-sender runs
between.
"""
import json
import os
import re
import sys
import threading
import time

import msgpack
import zmq

import pp_harness as h

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "apns-server"))
from apns_testserver import control_call  # noqa: E402
from pp_link import FakeHub

sys.path.insert(0, os.path.join(h.source_dir(), "tests", "apns-server"))
import apns_testserver as ats  # noqa: E402

TEAM_ID = ats.TEAM_ID
KEY_ID = ats.KEY_ID
APP = "com.example.app"
CERT_APP = "com.example.certapp"


def tok(i, prefix="a"):
    """A 64-hex device token, distinct per i."""
    return (prefix + "%063x" % i)[:64]


class Server:
    """pp-apns-testserver on a fixed port (so that it can be restarted on the same one)."""

    def __init__(self, env, name, pki, port=None, srv_env="sandbox", token_auth=True,
                 cert_auth=False, extra=None):
        self.env, self.name, self.pki = env, name, pki
        self.port = port or h.free_port()
        self.control_port = h.free_port()
        self.srv_env, self.token_auth, self.cert_auth = srv_env, token_auth, cert_auth
        self.extra = extra or []
        self.start()

    def start(self, extra=None):
        argv = [h.binary(self.env.build_dir, "pp-apns-testserver"), "--port", self.port,
                "--cert", os.path.join(self.pki, "server.pem"),
                "--key", os.path.join(self.pki, "server-key.pem"),
                "--env", self.srv_env, "--control-port", self.control_port]
        if self.token_auth:
            argv += ["--jwt-public-key", os.path.join(self.pki, "AuthKey_%s.pub.pem" % KEY_ID),
                     "--team-id", TEAM_ID, "--key-id", KEY_ID]
        if self.cert_auth:
            argv += ["--client-ca", os.path.join(self.pki, "ca.pem")]
        argv += self.extra + (extra or [])
        log = os.path.join(self.env.wd, "testserver-%s.log" % self.name)
        self.proc = h.Proc(argv, log)
        h.wait_for(lambda: re.search(r"^listening port=(\d+)$", self.proc.output(), re.M)
                   or not self.proc.alive(), 10, what="pp-apns-testserver %s" % self.name)
        if not self.proc.alive():
            raise RuntimeError("testserver exited:\n" + self.proc.output())
        h.wait_port(self.control_port)

    def _call(self, method, path, body=None):
        return control_call(self.control_port, method, path, body)

    def rules(self, rules):
        st, reply = self._call("POST", "/rules", rules)
        if st != 200:
            raise RuntimeError("rules %r: %s %r" % (rules, st, reply))
        return reply

    def reset(self):
        return self._call("POST", "/reset", {})[1]

    def accepted(self):
        return self._call("GET", "/accepted")[1]

    def count(self):
        return self._call("GET", "/accepted/count")[1]["count"]

    def stats(self):
        return self._call("GET", "/stats")[1]

    def wait_count(self, n, timeout=20):
        h.wait_for(lambda: self.count() >= n, timeout, interval=0.05,
                   what="%s to accept %d (has %d)" % (self.name, n, self.count()))

    def kill(self):
        self.proc.kill()


def _port_open(port):
    import socket
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


class Sender:
    def __init__(self, env, name, cfg):
        self.env, self.name = env, name
        self.metrics_port = h.free_port()
        cfg.setdefault("apns_sender", {})["metrics_port"] = self.metrics_port
        self.config = h.write_config(env.wd, cfg, "sender-%s.json" % name)
        self.proc = h.Proc([h.binary(env.build_dir, "pushpipe-apns-sender"),
                            "--config", self.config],
                           os.path.join(env.wd, "sender-%s.log" % name))
        h.wait_for(lambda: not self.proc.alive() or _port_open(self.metrics_port), 10,
                   what="sender %s to start" % name)
        if not self.proc.alive():
            raise RuntimeError("sender exited:\n" + self.proc.output())

    def metric(self, name, **labels):
        return h.metric(self.metrics_port, name, **labels)

    def wait_metric(self, name, value, timeout=20, **labels):
        h.wait_for(lambda: self.metric(name, **labels) >= value, timeout, interval=0.05,
                   what="%s %s >= %s (is %s)" % (self.name, name, value,
                                                 self.metric(name, **labels)))

    def output(self):
        return self.proc.output()

    def stop(self):
        return self.proc.stop()


class Hub:
    """A FakeHub on base+5, polled by a thread so that tests can wait on other things (the
    test server, metrics) while jobs flow, credit is taken and acks come back. send() may
    be called from the test's thread: deque appends are atomic, and only the hub's thread
    takes jobs off the queue; the rest is read under the lock."""

    def __init__(self, base, heartbeat_ms=1000):
        self.endpoint = "tcp://127.0.0.1:%d" % (base + 5)
        self.hub = FakeHub(self.endpoint, heartbeat_ms=heartbeat_ms)
        self.lock = threading.Lock()
        self.sent = []  # every job body handed to the hub, in order
        self._stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self._stop:
            with self.lock:
                self.hub.poll(2)
            time.sleep(0.0005)  # let the test's thread take the lock

    def send(self, body):
        self.sent.append(bytes(body))
        self.hub.enqueue(body)

    def stats(self):
        """acked (number of acks), acked_bodies (Counter), pending, in_flight, workers,
        deaths, byes, requeued, unknown_acks."""
        import collections
        with self.lock:
            hb = self.hub
            return dict(acked=len(hb.acked),
                        acked_bodies=collections.Counter(b for _, _, b in hb.acked),
                        pending=len(hb.pending), in_flight=hb.in_flight(),
                        workers=len(hb.workers), deaths=hb.deaths, byes=hb.byes,
                        requeued=hb.requeued, unknown_acks=hb.unknown_acks,
                        bad=dict(hb.bad))

    def wait_acked(self, n, timeout=20):
        h.wait_for(lambda: self.stats()["acked"] >= n, timeout, interval=0.05,
                   what="hub to see %d acks (has %d)" % (n, self.stats()["acked"]))

    def all_acked(self):
        """Every job handed to the hub acked at least once, and nothing left pending or in
        flight."""
        st = self.stats()
        return (st["pending"] == 0 and st["in_flight"] == 0 and
                all(st["acked_bodies"][b] > 0 for b in self.sent))

    def close(self):
        self._stop = True
        self.thread.join(5)
        self.hub.close()


class Env:
    def __init__(self, name):
        self.args = h.parse_args()
        self.build_dir = self.args.build_dir
        self.wd = h.workdir("apns-" + name)
        self.pki = ats.make_pki(self.wd)
        self.base = h.free_ports(7)
        self.ctx = zmq.Context.instance()
        self.hub = Hub(self.base)
        self.checks = h.Checks()
        self.redis = None
        self.n_msg = 0
        self.extra_socks = []

    def start_redis(self):
        self.redis = h.Redis(self.wd)
        return self.redis.client()

    def server(self, name, **kw):
        return Server(self, name, self.pki, **kw)

    def sender_config(self, sandbox=None, production=None, apps=None, **extra):
        """A config whose hosts are local test servers (or an unused port)."""
        sp = sandbox.port if sandbox else h.free_port()
        pp = production.port if production else h.free_port()
        if apps is None:
            apps = {APP: self.token_app()}
        s = {"ca_file": os.path.join(self.pki, "ca.pem"),
             "hosts": {"sandbox": "127.0.0.1:%d" % sp, "production": "localhost:%d" % pp},
             "apps": apps,
             "retry": {"base_ms": 100, "max_ms": 400},
             "reconnect_min_ms": 100, "reconnect_max_ms": 500,
             "drain_ms": 3000}
        if self.redis:
            s["redis"] = {"host": "127.0.0.1", "port": self.redis.port}
        for k, v in extra.items():
            s[k] = v
        return {"broker_address": "tcp://127.0.0.1:%d" % self.base, "log_level": "info",
                "apns_sender": s}

    def token_app(self, **kw):
        a = {"auth": "token", "team_id": TEAM_ID, "key_id": KEY_ID,
             "key_file": os.path.join(self.pki, "AuthKey_%s.p8" % KEY_ID)}
        a.update(kw)
        return a

    def cert_app(self, **kw):
        a = {"auth": "certificate", "cert_file": os.path.join(self.pki, "client.pem"),
             "key_file": os.path.join(self.pki, "client-key.pem")}
        a.update(kw)
        return a

    def sender(self, name, cfg):
        return Sender(self, name, cfg)

    def job(self, targets, ident=APP, env=0, payload=None, push_type="", priority=0,
            expiration=-1, collapse_id="", msg_id=None):
        """Encodes one APNS job: [2, 1, msg_id, ident, env, payload, push_type, priority,
        expiration, collapse_id, received_us, targets]."""
        self.n_msg += 1
        if payload is None:
            payload = json.dumps({"aps": {"alert": "hello %d" % self.n_msg}})
        return msgpack.packb([2, 1, msg_id or "m%d" % self.n_msg, ident, env, payload,
                              push_type, priority, expiration, collapse_id,
                              int(time.time() * 1e6), [list(t) for t in targets]],
                             use_bin_type=True)

    def send(self, targets, **kw):
        self.hub.send(self.job(targets, **kw))

    def broker(self):
        """Another fake broker: returns (base, Hub); point a sender at it with
        cfg["broker_address"] = "tcp://127.0.0.1:%d" % base, give it jobs with hub.send."""
        base = h.free_ports(7)
        hub = Hub(base)
        self.extra_socks.append(hub)
        return base, hub

    def check_acked(self, hub=None, what="", timeout=10):
        """Checks that hub (default: the main one) saw every job it was given acked."""
        hub = hub or self.hub
        deadline = time.time() + timeout
        while time.time() < deadline and not hub.all_acked():
            time.sleep(0.05)
        st = hub.stats()
        self.checks.check(hub.all_acked(), "hub: every job acked%s (jobs %d, acks %d, pending "
                          "%d, in flight %d)" % (what and " " + what, len(hub.sent), st["acked"],
                                                 st["pending"], st["in_flight"]))

    def finish(self):
        self.hub.close()
        for hub in self.extra_socks:
            hub.close()
        self.checks.finish()
