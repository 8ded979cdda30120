"""One heartbeat for every process (pushpipe issue 13; common/pp_link_wire.h).

The heartbeat is the top-level key heartbeat_ms. Each hub states its own to every worker it
registers ("H" + heartbeat_ms, before any job), and a worker whose heartbeat differs stops
at start with a config error (exit 2), where it used to run with the hub declaring it dead
too early, or noticing a dead one too late. Real processes: two pushpipe-brokers, A with
heartbeat_ms 500 and B with the default (1000), a redis-server and a mosquitto, and every
kind of worker. Asserts:
  - a resolver, an apns-sender and an mqtt-sender left at the default heartbeat exit 2 on A,
    with a log line naming heartbeat_ms and both values;
  - with several brokers any broker that disagrees is the error: an mqtt-sender on B and A
    exits 2, naming A's endpoint;
  - workers that agree keep running: a resolver with the top-level heartbeat_ms 500 on A,
    and an apns-sender with the old key apns_sender.link.heartbeat_ms 500 (still read, with a
    warning that it is deprecated), both join A's pools and exit 0 on SIGTERM;
  - a top-level heartbeat_ms that differs from an old per-stage key is a config error: exit
    2 before connecting, the message naming both keys.
Fails on the old code: the workers do not check (they keep running with exit code None) and
the top-level key is unknown (exit 2 for the agreeing resolver, whose message names it).
"""
import os
import sys
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "broker"))

import pp_harness as h  # noqa: E402
from broker_util import Broker, until  # noqa: E402

args = h.parse_args()
c = h.Checks()
wd = h.workdir("link-heartbeat")
HB = 500

redis = h.Redis(wd)
mosq = h.Mosquitto(wd)
a = Broker(args, wd, name="broker-a", top={"heartbeat_ms": HB})
b = Broker(args, wd, name="broker-b")
PROGRAMS = {"resolver": "pushpipe-resolver", "apns_sender": "pushpipe-apns-sender",
            "mqtt_sender": "pushpipe-mqtt-sender"}
SECTIONS = {"resolver": {"redis": {"port": redis.port, "backoff_max_ms": 200}},
            "apns_sender": {},
            "mqtt_sender": {"uri": "tcp://127.0.0.1:%d" % mosq.port}}


def start(name, section, brokers, top=None, stage=None):
    """Starts the worker of section with broker_address = brokers; top: more top-level
    keys, stage: more keys of its section."""
    cfg = {"broker_address": [x.address for x in brokers], "log_level": "info"}
    cfg.update(top or {})
    sec = {"metrics_port": 0}
    sec.update(SECTIONS[section])
    sec.update(stage or {})
    cfg[section] = sec
    path = h.write_config(wd, cfg, name + ".json")
    return h.Proc([h.binary(args.build_dir, PROGRAMS[section]), "--config", path],
                  os.path.join(wd, name + ".log"))


def exit_code(proc, timeout=10):
    try:
        return proc.p.wait(timeout)
    except Exception:  # noqa: BLE001 - still running: the check failed
        return None


# --- a worker whose heartbeat differs from its broker's: exit 2 at start -------------------
for section in PROGRAMS:
    p = start("%s-default" % section, section, [a])
    rc = exit_code(p)
    out = p.output()
    c.eq(rc, 2, "%s at the default heartbeat on a broker with %d ms: exit 2" % (section, HB))
    c.check("event=link_heartbeat_mismatch" in out and "heartbeat_ms=1000" in out
            and "hub_heartbeat_ms=%d" % HB in out,
            "%s: the error names heartbeat_ms and both values (%r)"
            % (section, [ln for ln in out.splitlines() if "mismatch" in ln][-1:]))
    c.check("event=stopped exit=2" in out, "%s: and it says it stopped with exit 2" % section)

# --- several brokers: any broker that disagrees is the error --------------------------------
p = start("mqtt-two", "mqtt_sender", [b, a])
rc = exit_code(p)
out = p.output()
c.eq(rc, 2, "an mqtt-sender on B (agrees) and A (does not): exit 2")
c.check("event=link_heartbeat_mismatch endpoint=tcp://127.0.0.1:%d" % (a.base + 6) in out,
        "the error names A's endpoint")
c.check("event=link_heartbeat_mismatch endpoint=tcp://127.0.0.1:%d" % (b.base + 6) not in out,
        "and not B's")

# --- workers that agree keep running -------------------------------------------------------
res = start("resolver-agrees", "resolver", [a], top={"heartbeat_ms": HB})
apns = start("apns-old-key", "apns_sender", [a], stage={"link": {"heartbeat_ms": HB}})
joined = until(lambda: a.metric("link_workers", pool="resolve") == 1
               and a.metric("link_workers", pool="apns") == 1, (), 15)
c.check(joined, "a resolver (top-level heartbeat_ms) and an apns-sender (old key) with A's "
        "heartbeat join A's pools")
time.sleep(3 * HB / 1000.0)
c.check(res.alive() and apns.alive(), "and keep running (no mismatch)")
c.eq(a.metric("link_worker_deaths_total"), 0, "A declares neither dead")
c.check("event=config_deprecated key=apns_sender.link.heartbeat_ms use=heartbeat_ms"
        in apns.output(), "the old key is read, with a warning that it is deprecated")
c.check("mismatch" not in res.output() + apns.output(), "no mismatch logged")
c.eq(res.stop(), 0, "the resolver exits 0 on SIGTERM")
c.eq(apns.stop(), 0, "the apns-sender exits 0 on SIGTERM")

# --- top-level and old key disagree: a config error, before connecting ----------------------
p = start("resolver-both-keys", "resolver", [a], top={"heartbeat_ms": HB},
          stage={"link": {"heartbeat_ms": 700}})
rc = exit_code(p)
out = p.output()
c.eq(rc, 2, "heartbeat_ms 500 and resolver.link.heartbeat_ms 700: exit 2")
c.check("config: heartbeat_ms:" in out and "resolver.link.heartbeat_ms" in out,
        "the message names both keys (%r)"
        % [ln for ln in out.splitlines() if "config:" in ln][-1:])
c.check("link_connected" not in out, "nothing connected")

c.eq(a.stop(), 0, "broker A exits 0")
c.eq(b.stop(), 0, "broker B exits 0")
c.finish()
