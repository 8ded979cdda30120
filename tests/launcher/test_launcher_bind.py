"""The binding rule in the launcher (docs/security.md): `pushpipe` with a config whose broker
would bind beyond loopback while CURVE is off exits 2 before it starts any stage, and the
message names the key (broker.bind, or broker_address when the launcher derives the bind
from a host name); with "insecure_bind": true the pipeline starts, the launcher and the
broker each log event=insecure_bind, and the other stages accept the key; broker_address
on localhost binds 127.0.0.1 and needs nothing."""
import json
import os
import socket
import subprocess

import pp_harness as h

args = h.parse_args()
ck = h.Checks()
wd = h.workdir("launcher-bind")
launcher_bin = h.binary(args.build_dir, "pushpipe")


def config(label, **top):
    base = h.free_ports(7)
    cfg = {"broker_address": "tcp://127.0.0.1:%d" % base, "log_level": "info",
           "launcher": {"resolvers": 0, "apns_senders": 0, "mqtt_senders": 0,
                        "metrics_base_port": h.free_ports(3), "stop_timeout_ms": 8000}}
    cfg.update(top)
    for k, v in list(cfg.items()):
        if isinstance(v, str):
            cfg[k] = v.replace("PORT", str(base))
        elif isinstance(v, dict) and "bind" in v:
            v["bind"] = v["bind"].replace("PORT", str(base))
    return base, h.write_config(wd, cfg, "%s.json" % label)


def refused(label, key, shown, **top):
    base, path = config(label, **top)
    r = subprocess.run([launcher_bin, "--config", path], capture_output=True, text=True,
                       timeout=30)
    out = r.stdout + r.stderr
    want = "config: %s: %s is not loopback and curve.enabled is false" % (
        key, shown.replace("PORT", str(base)))
    ck.eq(r.returncode, 2, "%s: pushpipe exits 2" % label)
    ck.check(want in r.stderr and '"insecure_bind": true' in r.stderr and
             "docs/security.md" in r.stderr,
             "%s: the message names %s and insecure_bind (%s)"
             % (label, key, r.stderr.strip().splitlines()[0][:220] if r.stderr.strip() else ""))
    ck.check("proc=broker" not in out and "pipeline running" not in out,
             "%s: no stage was started" % label)
    ck.check(h.port_free(base), "%s: nothing bound on %d" % (label, base))


# 1. refused: broker.bind on 0.0.0.0, on *, and a host name in broker_address (the launcher
# makes the broker bind 0.0.0.0 then).
refused("bind-all", "broker.bind", "tcp://0.0.0.0:PORT",
        broker={"bind": "tcp://0.0.0.0:PORT"})
refused("bind-star", "broker.bind", "tcp://*:PORT", broker={"bind": "tcp://*:PORT"},
        curve={"enabled": False})
hostname = socket.gethostname()
if hostname and hostname != "localhost":
    refused("hostname", "broker_address", "tcp://0.0.0.0:PORT",
            broker_address="tcp://%s:PORT" % hostname)

# 2. insecure_bind: true: it runs, with warn lines; a resolver accepts the key too.
redis = h.Redis(wd)
base, path = config("insecure", broker={"bind": "tcp://0.0.0.0:PORT"}, insecure_bind=True,
                    resolver={"redis": {"host": "127.0.0.1", "port": redis.port}})
with open(path) as f:
    cfg = json.load(f)
cfg["launcher"]["resolvers"] = 1
h.write_config(wd, cfg, "insecure.json")
p = h.Proc([launcher_bin, "--config", path], os.path.join(wd, "insecure.log"))
try:
    h.wait_for(lambda: "pipeline running" in p.output() or not p.alive(), 20, what="banner")
except AssertionError:
    pass
h.wait_port(base, 10)
out = p.output()
ck.check("pipeline running" in out, "insecure_bind true: the pipeline starts")
warns = [ln for ln in out.splitlines() if "event=insecure_bind" in ln]
ck.check(any("proc=launcher" in ln and "level=warn" in ln for ln in warns),
         "the launcher logs a warn line event=insecure_bind")
ck.check(any("proc=broker" in ln and "level=warn" in ln and
             "bind=tcp://0.0.0.0:%d" % base in ln for ln in warns),
         "the broker logs a warn line event=insecure_bind with its bind")
ck.check("unknown key" not in out, "no stage calls insecure_bind an unknown key")
h.wait_for(lambda: h.metric(cfg["launcher"]["metrics_base_port"], "stage_up") >= 2, 20,
           what="broker and resolver up")
ck.eq(p.stop(20), 0, "insecure_bind true: exit 0 on SIGTERM")

# 3. broker_address on localhost: the broker binds 127.0.0.1, no warn, no error.
base, path = config("localhost", broker_address="tcp://localhost:PORT")
p = h.Proc([launcher_bin, "--config", path], os.path.join(wd, "localhost.log"))
try:
    h.wait_for(lambda: "pipeline running" in p.output() or not p.alive(), 20, what="banner")
except AssertionError:
    pass
h.wait_port(base, 10)
out = p.output()
ck.check("pipeline running" in out and "event=insecure_bind" not in out,
         "broker_address tcp://localhost: starts without insecure_bind and without a warn line")
ck.eq(p.stop(20), 0, "localhost: exit 0 on SIGTERM")
ck.finish()
