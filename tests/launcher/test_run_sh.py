"""scripts/run.sh end to end: with a config whose Redis and MQTT ports nobody serves, it
starts its own redis-server and mosquitto (under PP_RUN_DIR), execs the launcher, and the
pipeline takes a push; SIGTERM stops it with exit 0; --stop-services stops the servers.
Uses the build directory under test (PP_BUILD_DIR), where the build is then a no-op."""
import atexit
import json
import os
import signal
import subprocess

import pp_harness as h

args = h.parse_args()
ck = h.Checks()
wd = h.workdir("run-sh")
src = h.source_dir()
with open(os.path.join(src, "deploy", "pushpipe.json")) as f:
    cfg = json.load(f)
base = h.free_ports(7)
rport, mport = h.free_port(), h.free_port()
metrics = h.free_ports(6)
cfg["broker_address"] = "tcp://127.0.0.1:%d" % base
cfg["broker"]["bind"] = "tcp://127.0.0.1:%d" % base
for sec in ("resolver", "apns_sender"):
    cfg[sec]["redis"]["port"] = rport
cfg["mqtt_sender"]["uri"] = "tcp://127.0.0.1:%d" % mport
cfg["launcher"]["metrics_base_port"] = metrics
path = h.write_config(wd, cfg)
run_dir = os.path.join(wd, "run")
env = {"PP_BUILD_DIR": args.build_dir, "PP_RUN_DIR": run_dir}


def _stop_services():
    # The servers run.sh starts are daemons, outside the harness's process list.
    subprocess.run([os.path.join(src, "scripts", "run.sh"), "--stop-services"],
                   capture_output=True, env=dict(os.environ, **env), timeout=30)


atexit.register(_stop_services)
run = h.Proc([os.path.join(src, "scripts", "run.sh"), path], os.path.join(wd, "run.log"), env=env,
             cwd=src)
try:
    h.wait_for(lambda: "pipeline running" in run.output() or not run.alive(), 300,
               what="pipeline running")
except AssertionError:
    pass
out = run.output()
ck.check("pipeline running" in out, "run.sh brings the pipeline up (%s)" % out[-400:])
ck.check("started redis-server on 127.0.0.1:%d" % rport in out, "it started its own Redis")
ck.check("started mosquitto on 127.0.0.1:%d" % mport in out, "it started its own mosquitto")
redis_pid = int(open(os.path.join(run_dir, "redis.pid")).read())
mosq_pid = int(open(os.path.join(run_dir, "mosquitto.pid")).read())
for port in range(metrics + 1, metrics + 6):
    h.wait_port(port, 20)
send = h.binary(args.build_dir, "pushpipe-send")
r = subprocess.run([send, "--broker", cfg["broker_address"], "--user", "7", "--ack",
                    '{"hello": "run.sh"}'], capture_output=True, text=True, timeout=30)
ck.check(r.returncode == 0 and r.stdout.startswith("accepted "),
         "a push through the pipeline run.sh started is accepted (%s)" % r.stdout.strip())
h.wait_for(lambda: h.metric(metrics + 5, "published_total") >= 1, 10, what="MQTT published")
ck.check(True, "the MQTT sender published it to run.sh's mosquitto")
run.p.send_signal(signal.SIGTERM)
ck.eq(run.p.wait(30), 0, "SIGTERM: the launcher run.sh exec'd exits 0")
r = subprocess.run([os.path.join(src, "scripts", "run.sh"), "--stop-services"],
                   capture_output=True, text=True, env=dict(os.environ, **env), timeout=30)
ck.check(r.returncode == 0 and "stopped redis" in r.stdout and "stopped mosquitto" in r.stdout,
         "--stop-services stops both (%s)" % r.stdout.strip())


def gone(pid):
    try:
        os.kill(pid, 0)
        return False
    except ProcessLookupError:
        return True


try:
    h.wait_for(lambda: gone(redis_pid) and gone(mosq_pid), 10, what="servers gone")
    ck.check(True, "redis-server and mosquitto are gone")
except AssertionError:
    ck.check(False, "redis-server and mosquitto are gone")
    for pid in (redis_pid, mosq_pid):
        if not gone(pid):
            os.kill(pid, signal.SIGKILL)
ck.finish()
