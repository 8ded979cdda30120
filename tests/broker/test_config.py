"""Bad configuration: a clear error naming the key on stderr, exit 2, nothing bound. A
configuration using every documented key starts."""
import json
import os
import signal
import subprocess
import time

import pp_harness as h

args = h.parse_args()
c = h.Checks()
wd = h.workdir("broker-config")
broker = h.binary(args.build_dir, "pushpipe-broker")


def run(cfg, extra=()):
    base = h.free_ports(7)
    path = h.write_config(wd, cfg, "bad.json")
    p = subprocess.run([broker, "--config", path, "--bind", "tcp://127.0.0.1:%d" % base]
                       + list(extra), capture_output=True, text=True, timeout=20)
    return p.returncode, p.stderr, base


bad = [
    ({"broker": {"bogus": 1}}, "broker.bogus"),
    ({"broker": {"queue": {"apns": {"max_mesages": 5}}}}, "broker.queue.apns.max_mesages"),
    ({"broker": {"hwm": "many"}}, "broker.hwm"),
    ({"broker": {"drain_ms": -1}}, "broker.drain_ms"),
    ({"broker": {"queue": {"mqtt": {"max_bytes": 0}}}}, "broker.queue.mqtt.max_bytes"),
    ({"broker": {"limits": {"max_frame_bytes": "64k"}}}, "broker.limits.max_frame_bytes"),
    ({"broker": {"instance_id": "not-hex"}}, "broker.instance_id"),
    ({"broker": {"instance_id": 12}}, "broker.instance_id"),
    ({"broker": {"metrics_port": 70000}}, "broker.metrics_port"),
    ({"broker": {"log_rejects_per_s": 1.5}}, "broker.log_rejects_per_s"),
    ({"brokr_typo": 1}, "brokr_typo"),
    # pp_frame cannot check nesting deeper than PP_FRAME_MAX_DEPTH_LIMIT (31)
    ({"broker": {"limits": {"max_depth": 32}}}, "broker.limits.max_depth"),
    # the heartbeat is the top-level key of every process (issue 13); the old per-stage key
    # is still read, with the same range, and may not contradict it
    ({"heartbeat_ms": 5}, "heartbeat_ms"),
    ({"heartbeat_ms": 60001}, "heartbeat_ms"),
    ({"broker": {"link": {"heartbeat_ms": 5}}}, "broker.link.heartbeat_ms"),
    ({"heartbeat_ms": 500, "broker": {"link": {"heartbeat_ms": 600}}}, "broker.link.heartbeat_ms"),
    ({"heartbeat_ms": 500, "broker": {"link": {"timeout_ms": 400}}}, "broker.link.timeout_ms"),
    ({"broker": {"link": {"heartbeat_ms": 500, "timeout_ms": 400}}}, "broker.link.timeout_ms"),
    ({"broker": {"link": {"window": 5}}}, "broker.link.window"),
    # issue 9.8: one bound per limit (proto/pp_limits.h); a looser stage is a config error
    ({"broker": {"limits": {"max_id_len": 257}}}, "broker.limits.max_id_len"),
]
for cfg, key in bad:
    rc, err, base = run(cfg)
    c.eq(rc, 2, "%s: exit 2" % json.dumps(cfg))
    c.check(key in err, "%s: stderr names %s (%r)" % (json.dumps(cfg), key, err.strip()[-160:]))
    c.check("event=bound" not in err, "%s: nothing bound" % json.dumps(cfg))

# --bind is checked too
p = subprocess.run([broker, "--bind", "udp://127.0.0.1:1", "--metrics-port", "0"],
                   capture_output=True, text=True, timeout=20)
c.eq(p.returncode, 2, "a bad --bind exits 2")
c.check("broker.bind" in p.stderr, "and names broker.bind")

# broker.bind defaults to broker_address (the --broker flag or the key)
base = h.free_ports(7)
path = h.write_config(wd, {"broker_address": "tcp://127.0.0.1:%d" % base,
                           "broker": {"metrics_port": 0}}, "addr.json")
pr = h.Proc([broker, "--config", path], os.path.join(wd, "addr.log"))
try:
    h.wait_for(lambda: "event=broker_ready" in pr.output(), 10)
except AssertionError:
    pass
c.check("endpoint=intake address=tcp://127.0.0.1:%d" % base in pr.output(),
        "without broker.bind the broker binds broker_address")
c.check("endpoint=mqtt_out address=tcp://127.0.0.1:%d" % (base + 6) in pr.output(),
        "and its pools on the following ports")
c.check("endpoint=apns_in" not in pr.output() and "endpoint=mqtt_in" not in pr.output(),
        "the reserved ports apns_in/mqtt_in are not bound")
c.eq(pr.stop(), 0, "exits 0 on SIGTERM")

# every documented key at once: accepted
base = h.free_ports(7)
mport = h.free_port()
full = {"log_level": "info", "broker_address": "tcp://127.0.0.1:%d" % base,
        "heartbeat_ms": 500,
        "broker": {"bind": "tcp://127.0.0.1:%d" % base, "metrics_port": mport,
                   "metrics_address": "127.0.0.1", "instance_id": "0123456789abcdef",
                   "hwm": 500, "drain_ms": 1000, "log_rejects_per_s": 3,
                   "link": {"timeout_ms": 2000},
                   "limits": {"max_frame_bytes": 4096, "max_depth": 31, "max_ids": 100,
                              "max_id_len": 32, "max_json_bytes": 8192},
                   "queue": {s: {"max_messages": 1000, "max_bytes": 1 << 20}
                             for s in ("resolve", "apns", "mqtt")}}}
path = h.write_config(wd, full, "full.json")
pr = h.Proc([broker, "--config", path], os.path.join(wd, "full.log"))
try:
    h.wait_for(lambda: "event=broker_ready" in pr.output(), 10)
    ready = True
except AssertionError:
    ready = False
c.check(ready, "a configuration with every documented key starts")
c.check("instance=0123456789abcdef" in pr.output(), "the configured instance id is used")
c.check("heartbeat_ms=500" in pr.output(), "the top-level heartbeat_ms is used")
c.eq(pr.stop(), 0, "and exits 0 on SIGTERM")
c.finish()
