"""The launcher `pushpipe` with the real stages, real redis-server and mosquitto:
it starts every stage, a push goes through the broker it started, a stage killed with
kill -9 comes back under a new pid with a log line, `pushpipe status` shows every stage,
and SIGTERM stops everything with exit 0 and no child left."""
import os
import re
import signal
import subprocess
import time

import msgpack
import zmq

import pp_harness as h

args = h.parse_args()
ck = h.Checks()
wd = h.workdir("launcher")
launcher_bin = h.binary(args.build_dir, "pushpipe")


def have(name):
    try:
        h.binary(args.build_dir, name)
        return True
    except FileNotFoundError:
        return False


redis = h.Redis(wd)
mqtt = h.Mosquitto(wd)
broker_base = h.free_ports(7)
apns = 1 if have("pushpipe-apns-sender") else 0
if not apns:
    print("note: pushpipe-apns-sender is not built; running without APNs senders", flush=True)
n_stages = 1 + 2 + apns + 1
mbase = h.free_ports(n_stages + 1)
cfg = {
    "broker_address": "tcp://127.0.0.1:%d" % broker_base,
    "log_level": "info",
    "resolver": {"redis": {"host": "127.0.0.1", "port": redis.port}},
    "mqtt_sender": {"uri": "tcp://127.0.0.1:%d" % mqtt.port},
    "launcher": {"resolvers": 2, "apns_senders": apns, "mqtt_senders": 1,
                 "metrics_base_port": mbase, "restart_backoff_ms": 200,
                 "stop_timeout_ms": 8000},
}
path = h.write_config(wd, cfg)
stages = ["broker", "resolver-1", "resolver-2"] + \
    (["apns-sender-1"] if apns else []) + ["mqtt-sender-1"]
ports = {name: mbase + 1 + i for i, name in enumerate(stages)}

launcher = h.Proc([launcher_bin, "--config", path], os.path.join(wd, "launcher.log"))


def stage_pid(name):
    return int(h.metric(mbase, "stage_pid", stage=name))


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0): look at its state.
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def cmdline(pid):
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        return f.read().split(b"\0")


# 1. every stage starts and serves metrics on its own port
h.wait_for(lambda: "pipeline running" in launcher.output(), 10, what="banner")
for name, port in ports.items():
    try:
        h.wait_port(port, 10)
        ck.check(True, "%s serves metrics on %d" % (name, port))
    except AssertionError:
        ck.check(False, "%s serves metrics on %d" % (name, port))
out = launcher.output()
ck.check("send pushes to  tcp://127.0.0.1:%d" % broker_base in out,
         "banner says where to send pushes")
pids = {name: stage_pid(name) for name in stages}
for name in stages:
    pid = pids[name]
    prog = {"broker": "pushpipe-broker", "resolver": "pushpipe-resolver",
            "apns-sender": "pushpipe-apns-sender",
            "mqtt-sender": "pushpipe-mqtt-sender"}[re.sub(r"-\d+$", "", name)]
    ok = pid > 0 and alive(pid)
    argv = cmdline(pid) if ok else []
    ck.check(ok and os.path.basename(argv[0].decode()) == prog
             and b"--metrics-port" in argv and str(ports[name]).encode() in argv
             and path.encode() in argv,
             "%s runs %s with --config and its own --metrics-port (pid %d)" % (name, prog, pid))
ck.eq(len(set(pids.values())), len(stages), "every stage is its own process")

# 2. the broker the launcher started answers an acknowledged push on its address
ctx = zmq.Context()
dealer = ctx.socket(zmq.DEALER)
dealer.linger = 0
dealer.connect("tcp://127.0.0.1:%d" % (broker_base + 1))
dealer.send(msgpack.packb([3, "42", {"hello": "launcher"}]))
reply = None
if dealer.poll(5000):
    reply = msgpack.unpackb(dealer.recv_multipart()[-1], raw=False)
ck.check(isinstance(reply, dict) and reply.get("ok") is True,
         "the broker started by the launcher accepts a push (reply %r)" % (reply,))
dealer.close()

# 3. kill -9 a resolver: it comes back under a new pid, with a log line
old = pids["resolver-1"]
os.kill(old, signal.SIGKILL)
try:
    new = h.wait_for(lambda: (lambda p: p if p not in (0, old) else 0)(stage_pid("resolver-1")),
                     10, what="resolver-1 restarted")
except AssertionError:
    new = 0
ck.check(new > 0 and alive(new), "resolver-1 restarted under a new pid (%d -> %d)" % (old, new))
out = launcher.output()
ck.check(re.search(r"event=stage_exited stage=resolver-1 pid=%d status=signal:9 .*restart_in_ms=200"
                   % old, out) is not None, "the death is logged with its signal and backoff")
ck.check(re.search(r"event=stage_started stage=resolver-1 pid=%d .*run=2" % new, out) is not None,
         "the restart is logged")
ck.eq(int(h.metric(mbase, "stage_restarts_total", stage="resolver-1")), 1,
      "stage_restarts_total{stage=resolver-1}")
ck.eq(stage_pid("resolver-2"), pids["resolver-2"], "resolver-2 was left alone")
h.wait_port(ports["resolver-1"], 10)

# 4. pushpipe status shows every stage
st = subprocess.run([launcher_bin, "status", "--config", path], capture_output=True, text=True,
                    timeout=30)
print(st.stdout, flush=True)
ck.eq(st.returncode, 0, "pushpipe status exits 0 when every stage is up")
rows = {line.split()[0]: line.split() for line in st.stdout.splitlines()[1:] if line.strip()}
for name in stages:
    row = rows.get(name, [])
    ck.check(len(row) >= 5 and row[1] == str(ports[name]) and row[2] == "up",
             "status row for %s: port and up (%r)" % (name, row))
ck.check(rows.get("resolver-1", [None] * 5)[3] == str(new)
         and rows.get("resolver-1", [None] * 5)[4] == "1",
         "status shows resolver-1's new pid and one restart")
ck.check("accepted=1" in " ".join(rows.get("broker", [])), "status shows the broker's accepted=1")
ck.check("stages_up=%d/%d" % (len(stages), len(stages)) in " ".join(rows.get("launcher", [])),
         "status shows every stage up in the launcher row")

# 5. SIGTERM stops everything, exit 0, no child left
launcher.p.send_signal(signal.SIGTERM)
try:
    rc = launcher.p.wait(20)
except subprocess.TimeoutExpired:
    rc = None
ck.eq(rc, 0, "launcher exits 0 on SIGTERM")
pids["resolver-1"] = new
left = [n for n, p in pids.items() if alive(p)]
ck.eq(left, [], "no stage process left")
out = launcher.output()
for name in stages:
    ck.check(re.search(r"event=stage_stopped stage=%s pid=\d+ status=exit:0" % name, out)
             is not None, "%s stopped cleanly (exit 0)" % name)

# 6. a stage that always fails is restarted with growing backoff, never in a tight loop
bindir = os.path.join(wd, "bin")
os.mkdir(bindir)
for prog in ("pushpipe-broker", "pushpipe-resolver"):
    os.symlink(h.binary(args.build_dir, prog), os.path.join(bindir, prog))
with open(os.path.join(bindir, "pushpipe-mqtt-sender"), "w") as f:
    f.write("#!/bin/sh\n# a stage that dies at once, every time\nexit 1\n")
os.chmod(os.path.join(bindir, "pushpipe-mqtt-sender"), 0o755)
cfg2 = dict(cfg)
cfg2["launcher"] = {"resolvers": 1, "apns_senders": 0, "mqtt_senders": 1, "bin_dir": bindir,
                    "metrics_base_port": mbase, "restart_backoff_ms": 100,
                    "restart_backoff_max_ms": 800}
path2 = h.write_config(wd, cfg2, "flapping.json")
l2 = h.Proc([launcher_bin, "--config", path2], os.path.join(wd, "launcher2.log"))
time.sleep(3.0)
waits = [int(x) for x in re.findall(r"stage=mqtt-sender-1 pid=\d+ status=exit:1 uptime_ms=\d+ "
                                    r"restart_in_ms=(\d+)", l2.output())]
print("restart waits:", waits, flush=True)
ck.check(2 <= len(waits) <= 8, "a failing stage is restarted a bounded number of times in 3 s "
                               "(%d)" % len(waits))
ck.eq(waits[:4], [100, 200, 400, 800][:len(waits[:4])], "the backoff doubles")
ck.check(all(w <= 800 for w in waits), "the backoff stops at restart_backoff_max_ms")
ck.eq(l2.stop(15), 0, "launcher with a flapping stage still stops with exit 0")

# 7. a launcher killed with SIGKILL does not leave its stages behind (PR_SET_PDEATHSIG)
cfg6 = dict(cfg)
cfg6["launcher"] = dict(cfg["launcher"], resolvers=1, apns_senders=0, mqtt_senders=0)
l3 = h.Proc([launcher_bin, "--config", h.write_config(wd, cfg6, "pdeath.json")],
            os.path.join(wd, "launcher3.log"))
h.wait_port(mbase + 2, 10)
kids = [stage_pid("broker"), stage_pid("resolver-1")]
ck.check(all(p > 0 and alive(p) for p in kids), "stages of the second launcher run (%r)" % kids)
l3.kill()
try:
    h.wait_for(lambda: not any(alive(p) for p in kids), 15, what="orphans gone")
    ck.check(True, "after SIGKILL of the launcher its stages exit too")
except AssertionError:
    ck.check(False, "after SIGKILL of the launcher its stages exit too")
    for p in kids:
        if alive(p):
            os.kill(p, signal.SIGKILL)

# 8. configuration errors: exit 2 before starting anything, naming the key
cfg3 = dict(cfg)
cfg3["launcher"] = dict(cfg["launcher"], bin_dir="/nonexistent")
r = subprocess.run([launcher_bin, "--config", h.write_config(wd, cfg3, "nobin.json")],
                   capture_output=True, text=True, timeout=30)
ck.eq(r.returncode, 2, "missing programs: exit 2")
ck.check("launcher.bin_dir" in r.stderr, "the error names launcher.bin_dir")
cfg4 = dict(cfg)
cfg4["launcher"] = dict(cfg["launcher"], resolverz=3)
r = subprocess.run([launcher_bin, "--config", h.write_config(wd, cfg4, "typo.json")],
                   capture_output=True, text=True, timeout=30)
ck.check(r.returncode == 2 and "launcher.resolverz" in r.stderr,
         "unknown launcher key: exit 2 naming it")
cfg5 = dict(cfg)
cfg5["resolver"] = dict(cfg["resolver"], no_such_key=1)
cfg5["launcher"] = dict(cfg["launcher"], apns_senders=0)
r = subprocess.run([launcher_bin, "--config", h.write_config(wd, cfg5, "badstage.json")],
                   capture_output=True, text=True, timeout=60)
ck.eq(r.returncode, 2, "a stage rejecting the config on its first run stops the launcher: exit 2")
ck.check("event=stage_config_failed stage=resolver-" in r.stderr, "and says which stage")

ck.finish()
