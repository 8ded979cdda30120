"""`pushpipe status` tells a stage that answers but is not ready ("wait") from one that is
up and from one that is down: a real mqtt-sender on the port the launcher's plan gives
mqtt-sender-1 is "up" while it works, "wait" while it drains after SIGTERM (its MQTT broker
is gone, so what it holds cannot finish before drain_ms), and "down" once it has exited."""
import signal
import subprocess

import pp_harness as h
from mqtt_util import Feeder, m, start_sender  # tests/mqtt, on PYTHONPATH (CMakeLists.txt)

args = h.parse_args()
c = h.Checks()
wd = h.workdir("status-wait")
launcher_bin = h.binary(args.build_dir, "pushpipe")
mosq = h.Mosquitto(wd)
base = h.free_ports(7)
# The plan numbers stages from metrics_base_port + 1: broker, resolver-1, mqtt-sender-1.
mbase = h.free_ports(4)
sender_port = mbase + 3
cfg = {"broker_address": "tcp://127.0.0.1:%d" % base,
       "launcher": {"resolvers": 1, "apns_senders": 0, "mqtt_senders": 1,
                    "metrics_base_port": mbase}}
path = h.write_config(wd, cfg, "status.json")


def status_row(stage):
    st = subprocess.run([launcher_bin, "status", "--config", path], capture_output=True,
                        text=True, timeout=30)
    for line in st.stdout.splitlines():
        f = line.split()
        if f and f[0] == stage:
            return st.returncode, f
    return st.returncode, []


feed = Feeder(base)
sender, mport = start_sender(args, wd, base, mosq.port, extra={"drain_ms": 6000},
                             metrics_port=sender_port)
h.wait_for(lambda: m(mport, "ready") == 1, 10, what="ready")
rc, row = status_row("mqtt-sender-1")
c.check(len(row) > 2 and row[1] == str(sender_port) and row[2] == "up",
        "a ready sender shows up (%r)" % (row,))
c.eq(rc, 1, "status exits 1 while other stages of the plan are down")
rc, row = status_row("broker")
c.check(len(row) > 2 and row[2] == "down", "a stage nobody serves shows down (%r)" % (row,))

# The sender takes QoS 1 jobs it cannot finish: mosquitto is gone.
mosq.kill()
feed.send_many(Feeder.job("{\"i\":%d}" % i, ["t/s/%d" % i], qos=1) for i in range(50))
h.wait_for(lambda: m(mport, "jobs_total") >= 1, 10, what="jobs taken")
sender.signal(signal.SIGTERM)
h.wait_for(lambda: m(mport, "ready") == 0, 5, interval=0.01, what="ready 0")
rc, row = status_row("mqtt-sender-1")
c.check(len(row) > 2 and row[2] == "wait", "a draining sender shows wait (%r)" % (row,))
c.check(sender.alive(), "... and it is still draining when status ran")
try:
    code = sender.p.wait(20)
except subprocess.TimeoutExpired:
    code = None
c.eq(code, 0, "the sender exits 0 at the end of its drain")
rc, row = status_row("mqtt-sender-1")
c.check(len(row) > 2 and row[2] == "down", "an exited sender shows down (%r)" % (row,))
feed.running = False
c.finish()
