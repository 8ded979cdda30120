"""Shared code of the end-to-end tests (pipeline.py, kill.py, multihost.py) and of the
end-to-end benchmark (bench/e2e): the seed data, an independent model of the delivery
rules (the oracle), the whole pipeline started from one JSON config file, helpers that run
as subprocesses (an MQTT subscriber, the clients, Redis seeding) so that they can also run
inside network namespaces, quiescence waits, and the comparison of what the APNs test
servers accepted and what the MQTT subscriber received against the model.

The model follows the rules as documented (resolver/pp_user_rule.h, resolver/pp_apns_payload.h,
docs/clients.md, the seed's README); it shares no code with the stages it checks.

Run as a script it is the helper: `e2e_common.py subscribe|send|seed|wait-port ...`.
"""
import base64
import collections
import json
import os
import random
import re
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import pp_harness as h  # noqa: E402

sys.path.insert(0, os.path.join(h.source_dir(), "tests", "apns-server"))

PY = "/usr/bin/python3"
PREFIX = "e2e"
APP = "com.example.app"          # token auth
CERTAPP = "com.example.certapp"  # certificate auth
TEAM = "TEAM123456"
KID = "TESTKEY01"
SENDER_QOS = 1                   # mqtt_sender.qos in every config made here

# ---- the seed and the oracle ------------------------------------------------------------


def tok(n):
    return ("%02x" % n) * 32


# Users of every kind. The comment says what the rule makes of each.
USERS = {
    "1": {"app_token": tok(1), "app_ident": APP, "app_version": "produce",
          "app_focus": "0"},                                    # APNs production
    "2": {"app_token": tok(2), "app_ident": APP, "app_version": "develop",
          "app_focus": "false"},                                # APNs sandbox
    "3": {"app_token": tok(3), "app_ident": APP, "app_version": "produce",
          "app_focus": "1"},                                    # focused: MQTT
    "4": {"app_token": tok(4), "app_ident": APP, "app_version": "develop",
          "app_focus": "true"},                                 # focused: MQTT
    "5": {"app_token": "", "app_ident": APP, "app_version": "produce"},  # empty token: MQTT
    "6": {"app_token": tok(6), "app_ident": CERTAPP, "app_version": "produce"},  # cert app
    "7": {"app_token": tok(7), "app_ident": APP, "app_version": "beta"},  # other: production
    "8": {"app_token": tok(8), "app_ident": APP, "app_version": "develop",
          "app_focus": "TRUE"},                                 # focused: MQTT
    "alice": {"app_token": tok(10), "app_ident": APP, "app_version": "develop"},  # sandbox
    "11": {"app_token": tok(11), "app_ident": CERTAPP, "app_version": "develop",
           "app_focus": "no"},                                  # cert app, sandbox
    "12": {"app_token": "not-a-hex-token", "app_ident": APP,
           "app_version": "produce"},                           # bad token: MQTT
    "13": {"app_token": tok(13), "app_version": "produce"},     # no ident: MQTT
    "14": {"app_token": tok(14).upper(), "app_ident": APP},     # no version: production
}
# "9" is in a group but has no User hash (a non-iOS user or a stale id).
GROUPS = {"100": ["1", "2", "3", "6", "9"],
          "200": ["7", "8", "alice", "11", "12", "13", "14", "4", "5"],
          "300": []}


def seed(r, users=None, groups=None):
    users = USERS if users is None else users
    groups = GROUPS if groups is None else groups
    p = r.pipeline(transaction=False)
    for uid, fields in users.items():
        p.hset("User:%s" % uid, mapping=fields)
    for gid, members in groups.items():
        if members:
            p.sadd("GroupAppleUser:%s" % gid, *members)
    p.execute()


def eligible(users, u):
    """The rule: an APNs push needs a hex token of sane length, an app ident, and the app
    not in the foreground."""
    f = users.get(u)
    if not f:
        return False
    t = f.get("app_token", "")
    if not (16 <= len(t) <= 200 and re.fullmatch(r"[0-9a-fA-F]+", t)):
        return False
    if not f.get("app_ident"):
        return False
    return str(f.get("app_focus", "")).lower() not in ("1", "true", "yes", "on")


def env_of(users, u):
    return "sandbox" if users[u].get("app_version") == "develop" else "production"


def apns_payload(data, push_type_opt=None, priority_opt=None):
    """(payload object, push_type, priority) by the resolver's documented payload rule;
    priority is the effective one (the sender's default is 10)."""
    def is_int(v):
        return isinstance(v, int) and not isinstance(v, bool)

    if isinstance(data, dict) and "aps" in data:
        aps = data["aps"]
        payload = data
        background = ("content-available" in aps and "alert" not in aps
                      and "badge" not in aps and "sound" not in aps)
    elif isinstance(data, dict):
        d = dict(data)
        aps = {}
        shown = False
        if isinstance(d.get("alert"), (str, dict)):
            aps["alert"] = d.pop("alert")
            shown = True
        else:
            alert = {}
            for k in ("title", "body"):
                if isinstance(d.get(k), str):
                    alert[k] = d.pop(k)
            if alert:
                aps["alert"] = alert
                shown = True
        if is_int(d.get("badge")):
            aps["badge"] = d.pop("badge")
            shown = True
        if isinstance(d.get("sound"), (str, dict)):
            aps["sound"] = d.pop("sound")
            shown = True
        if not shown:
            aps["content-available"] = 1
        background = not shown
        payload = {"aps": aps}
        payload.update(d)
    elif isinstance(data, str):
        payload, background = {"aps": {"alert": data}}, False
    else:
        payload, background = {"aps": {"content-available": 1}, "data": data}, True
    push_type = push_type_opt or ("background" if background else "alert")
    priority = 5 if push_type == "background" else (priority_opt or 10)
    return payload, push_type, priority


def canon(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def push_users_of(push):
    """The distinct user ids of a type 2/3 push, as strings, in order."""
    ids = push["id"] if push["type"] == 2 else [push["id"]]
    seen = []
    for i in ids:
        i = str(i)
        if i not in seen:
            seen.append(i)
    return seen


def model(push, users=None, groups=None):
    """Expected deliveries of one push: (apns, mqtt), lists of comparable tuples.
    apns: (env, token, topic, push_type, priority, expiration, collapse_id, payload)
    mqtt: (topic, payload, qos)."""
    users = USERS if users is None else users
    groups = GROUPS if groups is None else groups
    opts = push.get("opts", {})
    ch = opts.get("channels", "all")
    payload, ptype, prio = apns_payload(push["data"], opts.get("apns_push_type"),
                                        opts.get("apns_priority"))
    if "ttl" in opts:
        exp = "ttl:%d" % opts["ttl"] if opts["ttl"] else 0  # ttl 0: expiration 0
    else:
        exp = opts.get("apns_expiration")
    coll = opts.get("apns_collapse_id")
    mqtt_payload = json.dumps(push["data"], separators=(",", ":"), ensure_ascii=False)
    qos = opts.get("mqtt_qos", SENDER_QOS)
    apns, mqtt = [], []

    limit = 5120 if ptype == "voip" else 4096
    apns_ok = len(json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
                  .encode()) <= limit  # over Apple's limit: no APNs for this message

    suffix = {"voip": ".voip", "complication": ".complication",
              "fileprovider": ".pushkit.fileprovider",
              "liveactivity": ".push-type.liveactivity", "pushtotalk": ".voip-ptt"}

    def a(u):
        if not apns_ok:
            return  # an APNs user of a message without an APNs payload gets nothing
        if isinstance(exp, int) and 0 < exp < time.time():
            return  # expired before it could be sent: the apns-sender drops it
        f = users[u]
        apns.append((env_of(users, u), f["app_token"].lower(),
                     f["app_ident"] + suffix.get(ptype, ""), ptype, prio,
                     exp, coll, canon(payload)))

    if push["type"] == 1:
        gid = str(push["id"])
        if ch in ("all", "mqtt"):
            mqtt.append(("%s/group/%s" % (PREFIX, gid), mqtt_payload, qos))
        if ch in ("all", "apns"):
            for u in groups.get(gid, []):
                if eligible(users, u):
                    a(u)
        return apns, mqtt
    for u in push_users_of(push):
        if ch == "mqtt":
            mqtt.append(("%s/user/%s" % (PREFIX, u), mqtt_payload, qos))
        elif eligible(users, u):
            a(u)
        elif ch == "all":
            mqtt.append(("%s/user/%s" % (PREFIX, u), mqtt_payload, qos))
    return apns, mqtt


def expected(pushes, users=None, groups=None):
    ea, em = collections.Counter(), collections.Counter()
    for p in pushes:
        a, m = model(p, users, groups)
        ea.update(a)
        em.update(m)
    return ea, em


# ---- what was delivered, as comparable tuples -------------------------------------------


def apns_tuple(rec, pushes_by_n):
    """A test server record as the model's tuple. The push is found by the payload's "n";
    a ttl push's expiration must be its ttl after the time it was sent (+-10 s)."""
    try:
        payload = json.loads(rec["payload"])
    except ValueError:
        payload = rec["payload"]
    exp = rec.get("expiration")
    n = payload.get("n") if isinstance(payload, dict) else None
    p = pushes_by_n.get(n)
    if p is not None and p.get("opts", {}).get("ttl") and isinstance(exp, int):
        ttl = p["opts"]["ttl"]
        sent = p.get("sent_at", rec["received_us"] / 1e6)
        if sent + ttl - 10 <= exp <= rec["received_us"] / 1e6 + ttl + 10:
            exp = "ttl:%d" % ttl
    return (rec["env"], rec["token"].lower(), rec["topic"], rec["push_type"], rec["priority"],
            exp, rec.get("collapse_id"), canon(payload))


def mqtt_tuple(m):
    return (m["topic"], m["payload"], m["qos"])


def compare(checks, what, want, got, limit=8):
    """Asserts got == want as multisets; prints what is missing and what is extra."""
    missing = want - got
    extra = got - want
    ok = checks.check(not missing and not extra,
                      "%s: %d expected, %d delivered, %d missing, %d extra"
                      % (what, sum(want.values()), sum(got.values()), sum(missing.values()),
                         sum(extra.values())))
    if not ok:
        for k, c in list(missing.items())[:limit]:
            print("     missing x%d: %r" % (c, k))
        for k, c in list(extra.items())[:limit]:
            print("     extra   x%d: %r" % (c, k))
    return ok


# pp_harness.binary finds every program, pushpipe-send (clients/c) too.
binary = h.binary


# ---- hosts: where a process runs (this host, or a network namespace) --------------------


class Host:
    """Where processes run: ns None is this host's own network; addr is what servers on it
    bind and what others use to reach them."""

    def __init__(self, ns=None, addr="127.0.0.1"):
        self.ns, self.addr = ns, addr

    def argv(self, argv):
        argv = [str(a) for a in argv]
        return (["ip", "netns", "exec", self.ns] + argv) if self.ns else argv

    def run(self, argv, **kw):
        return subprocess.run(self.argv(argv), **kw)

    def proc(self, argv, log, env=None):
        # `ip netns exec` execs the program, so the pid is the program's own.
        return h.Proc(self.argv(argv), log, env=env)

    def http(self, url, data=None, timeout=30):
        if not self.ns:
            req = urllib.request.Request(url, data=data, method="POST" if data else "GET")
            opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
            with opener.open(req, timeout=timeout) as r:
                return r.read()
        argv = ["curl", "-sS", "--fail", "--noproxy", "*", "--max-time", str(timeout)]
        if data is not None:
            argv += ["--data-binary", "@-"]
        out = self.run(argv + [url], input=data, capture_output=True, check=True)
        return out.stdout

    def metrics(self, port):
        text = self.http("http://%s:%d/metrics" % (self.metrics_addr(), port), timeout=5)
        out = {}
        for line in text.decode().splitlines():
            if line and not line.startswith("#"):
                k, _, v = line.rpartition(" ")
                out[k] = float(v)
        return out

    def metric(self, port, name, **labels):
        total = 0.0
        for k, v in self.metrics(port).items():
            if k.startswith("pushpipe_%s{" % name) or k == "pushpipe_%s" % name:
                if all(('%s="%s"' % (lk, lv)) in k for lk, lv in labels.items()):
                    total += v
        return total

    def metrics_addr(self):
        return "127.0.0.1"

    def wait_port(self, port, addr=None, timeout=15):
        addr = addr or self.addr
        if not self.ns:
            return h.wait_port(port, timeout, host=addr)
        r = self.run([PY, os.path.join(HERE, "e2e_common.py"), "wait-port", addr, port,
                      timeout])
        if r.returncode != 0:
            raise AssertionError("port %s:%d not open in %s" % (addr, port, self.ns))


LOCAL = Host()

# ---- the pipeline ---------------------------------------------------------------------


def make_pki(wd, extra_ips=()):
    """The APNs test PKI; with extra_ips, the server certificate also names those
    addresses (the senders verify the server by the address they connect to)."""
    import apns_testserver as ats
    pki = ats.make_pki(wd)
    if extra_ips:
        san = ",".join(["IP:127.0.0.1", "DNS:localhost"] + ["IP:%s" % a for a in extra_ips])
        ext = os.path.join(pki, "server-ip.ext")
        with open(ext, "w") as f:
            f.write("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,"
                    "keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=%s\n" % san)
        csr = os.path.join(pki, "server-ip.csr")
        subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=localhost",
                        "-keyout", os.path.join(pki, "server-key.pem"), "-out", csr],
                       check=True, capture_output=True)
        subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA",
                        os.path.join(pki, "ca.pem"), "-CAkey", os.path.join(pki, "ca-key.pem"),
                        "-CAcreateserial", "-days", "30", "-sha256", "-extfile", ext,
                        "-out", os.path.join(pki, "server.pem")],
                       check=True, capture_output=True)
        os.chmod(os.path.join(pki, "server.pem"), 0o644)
    return pki


class ApnsServer:
    """pp-apns-testserver (one APNs environment) with token auth for APP and certificate
    auth (CERTAPP's client certificate). Its TLS port listens on host.addr (--listen); its
    control API on the host's 127.0.0.1."""

    def __init__(self, build_dir, wd, pki, host, env, port=None, extra=None):
        self.host, self.env = host, env
        self.port = port or h.free_port()
        self.control_port = h.free_port()
        argv = [h.binary(build_dir, "pp-apns-testserver"), "--port", self.port,
                "--cert", os.path.join(pki, "server.pem"),
                "--key", os.path.join(pki, "server-key.pem"), "--env", env,
                "--control-port", self.control_port,
                "--jwt-public-key", os.path.join(pki, "AuthKey_%s.pub.pem" % KID),
                "--team-id", TEAM, "--key-id", KID, "--client-ca", os.path.join(pki, "ca.pem"),
                "--topics", APP, "--listen", host.addr] + (extra or [])
        self.proc = host.proc(argv, os.path.join(wd, "apns-testserver-%s.log" % env))
        h.wait_for(lambda: re.search(r"^listening port=\d+$", self.proc.output(), re.M)
                   or not self.proc.alive(), 10, what="pp-apns-testserver %s" % env)
        if not self.proc.alive():
            raise RuntimeError("pp-apns-testserver exited:\n" + self.proc.output())
        host.wait_port(self.control_port, "127.0.0.1")
        host.wait_port(self.port)

    def _get(self, path):
        return json.loads(self.host.http("http://127.0.0.1:%d%s" % (self.control_port, path)))

    def accepted(self):
        return self._get("/accepted")

    def count(self):
        return self._get("/accepted/count")["accepted"]

    def stats(self):
        return self._get("/stats")

    def reset(self):
        return json.loads(self.host.http("http://127.0.0.1:%d/reset" % self.control_port,
                                         data=b"{}"))

    def rules(self, rules):
        return json.loads(self.host.http("http://127.0.0.1:%d/rules" % self.control_port,
                                         data=json.dumps(rules).encode()))


class Subscriber:
    """The MQTT subscriber, a helper process (paho) on host: every message it gets on
    '<PREFIX>/#' becomes one JSON line in a file."""

    def __init__(self, wd, host, mqtt_addr, mqtt_port, name="sub"):
        self.path = os.path.join(wd, "%s.jsonl" % name)
        self.ready = self.path + ".ready"
        self.proc = host.proc([PY, os.path.join(HERE, "e2e_common.py"), "subscribe",
                               mqtt_addr, mqtt_port, PREFIX + "/#", self.path],
                              os.path.join(wd, "%s.log" % name))
        h.wait_for(lambda: os.path.exists(self.ready) or not self.proc.alive(), 15,
                   what="MQTT subscriber")
        if not self.proc.alive():
            raise RuntimeError("subscriber exited:\n" + self.proc.output())
        self._n, self._pos, self._msgs = 0, 0, []

    def messages(self):
        with open(self.path, "rb") as f:
            f.seek(self._pos)
            data = f.read()
        end = data.rfind(b"\n") + 1
        for line in data[:end].splitlines():
            self._msgs.append(json.loads(line))
        self._pos += end
        return self._msgs

    def count(self):
        return len(self.messages())


class Pipeline:
    """Every process of the pipeline from one JSON config file.

    hosts: role -> Host for "data" (redis, mosquitto, APNs servers), "broker", "resolver",
    "sender"; curve: dict for the config's "curve" section, or None."""

    def __init__(self, build_dir, wd, hosts=None, curve=None, n_resolvers=2, pki=None,
                 overrides=None, log_level="info", envs=("sandbox", "production")):
        self.build_dir, self.wd = build_dir, wd
        self.hosts = hosts or {}
        self.data = self.hosts.get("data", LOCAL)
        self.bh = self.hosts.get("broker", LOCAL)
        self.rh = self.hosts.get("resolver", LOCAL)
        self.sh = self.hosts.get("sender", LOCAL)
        self.pki = pki or make_pki(wd)
        d = self.data
        self.redis_port = h.free_port()
        self.redis = d.proc(["redis-server", "--port", self.redis_port, "--bind", d.addr,
                             "--save", "", "--appendonly", "no", "--protected-mode", "no",
                             "--dir", wd], os.path.join(wd, "redis.log"))
        self.mqtt_port = h.free_port()
        conf = os.path.join(wd, "mosquitto.conf")
        with open(conf, "w") as f:
            f.write("listener %d %s\nallow_anonymous true\npersistence false\n"
                    "max_queued_messages 1000000\nmax_inflight_messages 0\n"
                    % (self.mqtt_port, d.addr))
        self.mosquitto = d.proc(["mosquitto", "-c", conf], os.path.join(wd, "mosquitto.log"))
        self.apns = {e: ApnsServer(build_dir, wd, self.pki, d, e) for e in envs}
        d.wait_port(self.redis_port)
        d.wait_port(self.mqtt_port)
        self.base = h.free_ports(7)
        self.mport = {"broker": h.free_port(), "apns": h.free_port(), "mqtt": h.free_port()}
        self.rports = [h.free_port() for _ in range(n_resolvers)]
        self.cfg = self.config(curve, log_level)
        for path, v in (overrides or {}).items():
            node = self.cfg
            keys = path.split(".")
            for k in keys[:-1]:
                node = node.setdefault(k, {})
            node[keys[-1]] = v
        self.config_path = h.write_config(wd, self.cfg, "pushpipe.json")
        self.broker = self.start_broker()
        self.resolvers = [self.start_resolver(i) for i in range(n_resolvers)]
        self.apns_sender = self.start_apns_sender()
        self.mqtt_sender = self.start_mqtt_sender()

    @property
    def address(self):
        return "tcp://%s:%d" % (self.bh.addr, self.base)

    def config(self, curve, log_level):
        d = self.data
        hosts = {"sandbox": "%s:%d" % (d.addr, self.apns["sandbox"].port)
                 if "sandbox" in self.apns else "%s:%d" % (d.addr, h.free_port()),
                 "production": "%s:%d" % (d.addr, self.apns["production"].port)
                 if "production" in self.apns else "%s:%d" % (d.addr, h.free_port())}
        redis = {"host": d.addr, "port": self.redis_port}
        cfg = {
            "log_level": log_level,
            "broker_address": self.address,
            "broker": {"bind": "tcp://%s:%d" % (self.bh.addr, self.base),
                       "metrics_port": self.mport["broker"], "drain_ms": 2000},
            "resolver": {"redis": dict(redis), "mqtt_prefix": PREFIX},
            "apns_sender": {
                "ca_file": os.path.join(self.pki, "ca.pem"),
                "hosts": hosts,
                "apps": {
                    APP: {"auth": "token", "team_id": TEAM, "key_id": KID,
                          "key_file": os.path.join(self.pki, "AuthKey_%s.p8" % KID)},
                    CERTAPP: {"auth": "certificate",
                              "cert_file": os.path.join(self.pki, "client.pem"),
                              "key_file": os.path.join(self.pki, "client-key.pem")}},
                "redis": dict(redis),
                "retry": {"base_ms": 100, "max_ms": 1000},
                "reconnect_min_ms": 100, "reconnect_max_ms": 1000,
                "metrics_port": self.mport["apns"], "drain_ms": 2000},
            "mqtt_sender": {"uri": "tcp://%s:%d" % (d.addr, self.mqtt_port),
                            "qos": SENDER_QOS, "metrics_port": self.mport["mqtt"],
                            "drain_ms": 2000},
        }
        if curve:
            cfg["curve"] = curve
        return cfg

    def _start(self, host, name, binary, extra, port):
        p = host.proc([h.binary(self.build_dir, binary), "--config", self.config_path] + extra,
                      os.path.join(self.wd, "%s.log" % name))
        try:
            host.wait_port(port, "127.0.0.1")
        except AssertionError:
            raise RuntimeError("%s did not start:\n%s" % (name, p.output()))
        p.name, p.host, p.metrics_port = name, host, port
        return p

    def start_broker(self):
        return self._start(self.bh, "broker", "pushpipe-broker", [], self.mport["broker"])

    def start_resolver(self, i):
        return self._start(self.rh, "resolver%d" % i, "pushpipe-resolver",
                           ["--metrics-port", self.rports[i]], self.rports[i])

    def start_apns_sender(self):
        return self._start(self.sh, "apns-sender", "pushpipe-apns-sender", [],
                           self.mport["apns"])

    def start_mqtt_sender(self):
        return self._start(self.sh, "mqtt-sender", "pushpipe-mqtt-sender", [],
                           self.mport["mqtt"])

    def processes(self):
        return [self.broker] + self.resolvers + [self.apns_sender, self.mqtt_sender]

    def metric(self, proc, name, **labels):
        return proc.host.metric(proc.metrics_port, name, **labels)

    def seed(self, users=None, groups=None, n_bulk=0):
        """Seeds Redis (through the helper on the data host)."""
        spec = os.path.join(self.wd, "seed-%d.json" % random.randrange(1 << 30))
        with open(spec, "w") as f:
            json.dump({"users": USERS if users is None else users,
                       "groups": GROUPS if groups is None else groups,
                       "bulk": n_bulk}, f)
        self.data.run([PY, os.path.join(HERE, "e2e_common.py"), "seed", self.data.addr,
                       self.redis_port, spec], check=True)

    def subscriber(self, host=None, name="sub"):
        return Subscriber(self.wd, host or self.data, self.data.addr, self.mqtt_port, name)

    def apns_count(self):
        return sum(s.count() for s in self.apns.values())

    def apns_records(self):
        out = []
        for s in self.apns.values():
            out += s.accepted()
        return out

    def check_logs(self, checks):
        """No sanitizer report in any stage's log (ASan/UBSan builds)."""
        bad = [p.name for p in self.processes()
               if re.search(r"ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:",
                            p.output())]
        checks.eq(bad, [], "no sanitizer reports in the stages' logs")

    def check_alive(self, checks):
        for p in self.processes():
            checks.check(p.alive(), "%s still running" % p.name)

    def check_deliveries(self, checks, sub, pushes, want_a, want_m, apns_what, mqtt_what):
        """Compares what arrived with the model of pushes (want_a, want_m = expected(pushes)):
        the APNs test servers' notifications and sub's MQTT messages, as multisets of
        apns_tuple and mqtt_tuple (apns_what and mqtt_what name them in the checks); and
        every notification used its app's authentication (the client certificate for
        CERTAPP, a token for the others). Returns the APNs servers' records."""
        by_n = {p["data"]["n"]: p for p in pushes}
        recs = self.apns_records()
        got_a = collections.Counter(apns_tuple(r, by_n) for r in recs)
        got_m = collections.Counter(mqtt_tuple(m) for m in sub.messages())
        compare(checks, apns_what, want_a, got_a)
        compare(checks, mqtt_what, want_m, got_m)
        checks.eq([r for r in recs if r["auth"] != ("cert" if r["topic"] == CERTAPP
                                                     else "token")], [],
                  "every notification used its app's authentication")
        return recs

    def stop_and_check(self, checks, logs=True):
        """The end of a pipeline test: every stage is still running; each is stopped by
        SIGTERM, the last started first, and exits 0; and (logs) no stage's log has a
        sanitizer report."""
        self.check_alive(checks)
        for p in reversed(self.processes()):
            checks.eq(p.stop(), 0, "%s exits 0 on SIGTERM" % p.name)
        if logs:
            self.check_logs(checks)


def settle(counts, want=None, timeout=60.0, stable_s=1.0, interval=0.1):
    """Waits until counts() (a tuple) reaches want (when given, every element >=) and then
    stays the same for stable_s: the pipeline is quiet. Returns the last counts."""
    deadline = time.time() + timeout
    last, since = None, time.time()
    while time.time() < deadline:
        c = counts()
        if c != last:
            last, since = c, time.time()
        elif (want is None or all(a >= b for a, b in zip(c, want))) and \
                time.time() - since >= stable_s:
            return c
        time.sleep(interval)
    print("settle: timed out after %.0fs at %r (want %r)" % (timeout, last, want), flush=True)
    return last


def send(host, address, pushes, wd, curve=None, build_dir=None, name="send", timeout=120,
         timeout_ms=5000):
    """Sends pushes through the helper (python clients, pushpipe-send) on host; returns the
    helper's per-push results (list of dicts, same order)."""
    plan = os.path.join(wd, "%s-%d.json" % (name, random.randrange(1 << 30)))
    with open(plan, "w") as f:
        json.dump({"address": address, "pushes": pushes, "curve": curve,
                   "timeout_ms": timeout_ms,
                   "pushpipe_send": binary(build_dir, "pushpipe-send") if build_dir else None},
                  f)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([os.path.join(h.source_dir(), "clients", "python"),
                                         os.path.dirname(os.path.abspath(h.__file__))])
    r = subprocess.run(host.argv([PY, os.path.join(HERE, "e2e_common.py"), "send", plan]),
                       capture_output=True, env=env, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError("send helper failed (%d):\n%s" % (r.returncode,
                                                             r.stderr.decode()[-3000:]))
    return json.loads(r.stdout)


def load_cert(path):
    """(public, secret) Z85 text of a czmq certificate file (secret None for a public one)."""
    pub = sec = None
    with open(path) as f:
        for line in f:
            m = re.match(r'\s*(public|secret)-key\s*=\s*"(.{40})"', line)
            if m:
                if m.group(1) == "public":
                    pub = m.group(2)
                else:
                    sec = m.group(2)
    return pub, sec


# ---- the helper side (runs as its own process, possibly inside a namespace) --------------


def _cmd_subscribe(addr, port, topic, path):
    import threading
    import paho.mqtt.client as mqtt
    out = open(path, "ab", buffering=0)
    lock = threading.Lock()
    ready = threading.Event()

    def on_connect(c, u, flags, rc):
        if rc == 0:
            c.subscribe(topic, qos=2)

    def on_subscribe(c, u, mid, granted):
        if not ready.is_set():
            open(path + ".ready", "w").close()
            ready.set()

    def on_message(c, u, msg):
        try:
            payload = msg.payload.decode("utf-8")
        except UnicodeDecodeError:
            payload = "b64:" + base64.b64encode(msg.payload).decode()
        line = json.dumps({"topic": msg.topic, "payload": payload, "qos": msg.qos,
                           "t": time.time()}) + "\n"
        with lock:
            out.write(line.encode())

    c = mqtt.Client(client_id="e2e-sub-%d" % os.getpid(), clean_session=True)
    c.max_inflight_messages_set(1000)
    c.max_queued_messages_set(0)
    c.on_connect, c.on_subscribe, c.on_message = on_connect, on_subscribe, on_message
    c.connect(addr, int(port), keepalive=30)
    c.loop_forever()


def _cmd_seed(addr, port, spec_path):
    import redis
    with open(spec_path) as f:
        spec = json.load(f)
    r = redis.Redis(host=addr, port=int(port))
    seed(r, spec["users"], spec["groups"])
    bulk = spec.get("bulk", 0)
    if bulk:
        # The benchmark's group: bulk iOS members, all APNs-eligible, production.
        p = r.pipeline(transaction=False)
        for i in range(bulk):
            p.hset("User:b%d" % i, mapping={"app_token": "%064x" % (i + 1), "app_ident": APP,
                                             "app_version": "produce", "app_focus": "0"})
            if i % 5000 == 4999:
                p.execute()
        p.execute()
        members = ["b%d" % i for i in range(bulk)]
        for i in range(0, bulk, 10000):
            r.sadd("GroupAppleUser:bench", *members[i:i + 10000])


_SEND_FLAGS = {"id": "--id", "channels": "--channels", "ttl": "--ttl",
               "apns_expiration": "--expiration", "apns_priority": "--priority",
               "apns_push_type": "--push-type", "apns_collapse_id": "--collapse-id",
               "mqtt_qos": "--qos"}


def _cmd_send(plan_path):
    import pushpipe
    with open(plan_path) as f:
        plan = json.load(f)
    address = plan["address"]
    curve = tuple(plan["curve"]) if plan.get("curve") else None
    clients = {}

    def client(via):
        if via not in clients:
            if via == "py":  # the seed's call style: Client(host, port)
                host, port = address[len("tcp://"):].rsplit(":", 1)
                clients[via] = pushpipe.Client(host, int(port), curve=curve)
            else:
                clients[via] = pushpipe.Client.from_address(address, ack=True, curve=curve,
                                                            timeout_ms=plan.get("timeout_ms",
                                                                                5000))
        return clients[via]

    results = []
    for p in plan["pushes"]:
        via, opts = p.get("via", "py"), p.get("opts", {})
        res = {"n": p["data"].get("n") if isinstance(p["data"], dict) else None,
               "t": time.time()}
        try:
            if via in ("py", "py_ack"):
                data = json.dumps(p["data"]) if p.get("as_text") else p["data"]
                r = client(via)(p["type"], p["id"], data, **opts)
                if via == "py_ack":
                    res["accepted"] = r.msg_id
            else:
                argv = [plan["pushpipe_send"], "--broker", address]
                if via == "send_ack":
                    argv.append("--ack")
                if p["type"] == 1:
                    argv += ["--group", str(p["id"])]
                elif p["type"] == 2:
                    argv += ["--users", ",".join(str(i) for i in p["id"])]
                else:
                    argv += ["--user", str(p["id"])]
                for k, v in opts.items():
                    argv += [_SEND_FLAGS[k], str(v)]
                argv.append(json.dumps(p["data"]))
                r = subprocess.run(argv, capture_output=True, timeout=30)
                res["rc"] = r.returncode
                out = r.stdout.decode().strip()
                if r.returncode == 0 and via == "send_ack":
                    m = re.match(r"accepted (\w+)$", out)
                    res["accepted"] = m.group(1) if m else None
                elif r.returncode != 0:
                    res["error"] = (out + " " + r.stderr.decode()).strip()
        except pushpipe.Rejected as e:
            res["error"] = "rejected %s: %s" % (e.reason, e.detail)
        except pushpipe.Error as e:
            res["error"] = "%s: %s" % (type(e).__name__, e)
        if p.get("rate"):
            time.sleep(max(0.0, res["t"] + 1.0 / p["rate"] - time.time()))
        results.append(res)
    for c in clients.values():
        c.close()
    json.dump(results, sys.stdout)


def _cmd_wait_port(addr, port, timeout):
    import socket
    deadline = time.time() + float(timeout)
    while time.time() < deadline:
        try:
            socket.create_connection((addr, int(port)), timeout=0.2).close()
            return 0
        except OSError:
            time.sleep(0.05)
    return 1


if __name__ == "__main__":
    cmd, rest = sys.argv[1], sys.argv[2:]
    if cmd == "subscribe":
        _cmd_subscribe(*rest)
    elif cmd == "seed":
        _cmd_seed(*rest)
    elif cmd == "send":
        _cmd_send(*rest)
    elif cmd == "wait-port":
        sys.exit(_cmd_wait_port(*rest))
    else:
        sys.exit("unknown command %s" % cmd)
