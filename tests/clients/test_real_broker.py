"""All three clients (libpushpipe through client_driver, pushpipe-send, the Python
client) against the real pushpipe-broker: acknowledged pushes are accepted with a message
id, frames the broker refuses come back as rejections, and every accepted push, acked or
fire-and-forget, leaves the broker as a RESOLVE job (read here by a link worker on the
broker's resolve endpoint, tests/lib/pp_link.py's FakeWorker, standing in for a resolver)
with the ids and data it was given.

Exits 77 (ctest: skipped) when the broker has not been built."""
import json
import os
import shutil
import subprocess
import sys
import time

import threading

import msgpack
import zmq

import pp_link

import pp_harness

import pushpipe

args = pp_harness.parse_args()
BROKER = os.path.join(args.build_dir, "broker", "pushpipe-broker")
if not os.access(BROKER, os.X_OK):
    print("SKIP: %s is not built" % BROKER)
    sys.exit(77)

t = pp_harness.Checks()
SEND = os.path.join(args.build_dir, "clients", "c", "pushpipe-send")
DRIVER = os.path.join(args.build_dir, "tests", "clients", "client_driver")
LONG_ID = "x" * 65  # the broker's default max_id_len is 64; the clients do not know it

wd = pp_harness.workdir("clients-real-broker")
base = pp_harness.free_ports(7)
address = "tcp://127.0.0.1:%d" % base
cfg = pp_harness.write_config(wd, {"broker": {"bind": address, "metrics_port": 0}})
broker = pp_harness.Proc([BROKER, "--config", cfg], os.path.join(wd, "broker.log"))
pp_harness.wait_port(base)
pp_harness.wait_port(base + 1)

ctx = zmq.Context()


class Resolver(threading.Thread):
    """A link worker on the resolve endpoint (base + 2), polled in its own thread so that
    its heartbeats keep it alive while the clients run; it acks every job."""

    def __init__(self):
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.ready = threading.Event()
        self.jobs = []

    def run(self):
        w = pp_link.FakeWorker("tcp://127.0.0.1:%d" % (base + 2), window=100, ctx=ctx)
        self.ready.set()
        while not self.stop.is_set():
            w.poll(10)
            self.jobs = list(w.jobs)
        w.close()


resolver = Resolver()
resolver.start()
resolver.ready.wait(5)


def driver(lines, *flags):
    script = "".join("\t".join(f) + "\n" for f in lines)
    p = subprocess.run([DRIVER, address] + list(flags), input=script.encode(),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    return p.returncode, p.stdout.decode().splitlines()


def send(argv):
    p = subprocess.run([SEND, "--broker", address] + argv, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=30)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


accepted_ids = {}  # client label -> msg id from the ack
expected = []      # (label, push_type, ids, data, some opts) that must come out as RESOLVE jobs

# --- C library, acknowledged and fire-and-forget -----------------------------------------
rc, out = driver([("group", "7", '{"alert":"c-lib ack"}', "id=c-1;channels=apns;ttl=60"),
                  ("user", LONG_ID, '{"alert":"too long"}', "-")], "--ack")
t.check(rc == 0 and len(out) == 2 and out[0].startswith("accepted "),
        "C library ack: accepted (%r)" % out)
t.check(len(out) == 2 and out[1].startswith("rejected id_too_long: "),
        "C library ack: broker's rejection reason (%r)" % out[1:])
if out and out[0].startswith("accepted "):
    accepted_ids["c-ack"] = out[0].split(" ", 1)[1]
expected.append(("c-ack", 1, ["7"], {"alert": "c-lib ack"}, {"id": "c-1", "ch": 1}))
rc, out = driver([("users", "1,2,2,3", '{"alert":"c-lib fire"}', "-")], "--immediate")
t.eq((rc, out), (0, ["sent"]), "C library fire-and-forget: sent")
expected.append(("c-fire", 2, ["1", "2", "3"], {"alert": "c-lib fire"}, {"ch": 3}))

# --- pushpipe-send -------------------------------------------------------------------------
rc, out, err = send(["--ack", "--users", "4,5", "--qos", "1", '{"alert":"send ack"}'])
t.check(rc == 0 and out.startswith("accepted "), "pushpipe-send --ack: accepted (%d %r %r)"
        % (rc, out, err))
if out.startswith("accepted "):
    accepted_ids["send-ack"] = out.split()[1]
expected.append(("send-ack", 2, ["4", "5"], {"alert": "send ack"}, {"qos": 1}))
rc, out, err = send(["--ack", "--user", LONG_ID, '{"alert":"x"}'])
t.check(rc == 3 and out.startswith("rejected id_too_long: "),
        "pushpipe-send --ack: rejection, exit 3 (%d %r)" % (rc, out))
rc, out, err = send(["--user", "71", '{"alert":"send fire"}'])
t.eq((rc, err), (0, ""), "pushpipe-send fire-and-forget: exit 0")
expected.append(("send-fire", 3, ["71"], {"alert": "send fire"}, {"qos": -1}))

# --- Python, the seed's style and acknowledged ---------------------------------------------
client = pushpipe.Client("127.0.0.1", base)
client(1, 72, {"alert": "python fire"})
client(3, "u73", {"alert": "python fire 2"}, ttl=0)
client.close()
expected.append(("py-fire", 1, ["72"], {"alert": "python fire"}, {"ex": -1}))
expected.append(("py-fire-2", 3, ["u73"], {"alert": "python fire 2"}, {"ex": 0}))
ac = pushpipe.AckClient("127.0.0.1", base)
try:
    r = ac(2, [8, "9"], {"alert": "python ack"}, id="py-1")
    t.check(isinstance(r, pushpipe.Accepted) and r.msg_id, "Python ack: accepted (%r)" % r)
    accepted_ids["py-ack"] = r.msg_id
except pushpipe.Error as e:
    t.check(False, "Python ack: accepted (%r)" % e)
expected.append(("py-ack", 2, ["8", "9"], {"alert": "python ack"}, {"id": "py-1"}))
try:
    ac(3, LONG_ID, {"alert": "x"})
    t.check(False, "Python ack: rejection raised")
except pushpipe.Rejected as e:
    t.eq(e.reason, "id_too_long", "Python ack: Rejected with the broker's reason")
ac.close()

# --- what came out of the broker -----------------------------------------------------------
pp_harness.wait_for(lambda: len(resolver.jobs) >= len(expected), 10, what="RESOLVE jobs")
time.sleep(0.3)  # room for an extra job, which would be a failure
jobs = [msgpack.unpackb(body, raw=False) for _, body in resolver.jobs]
t.eq(len(jobs), len(expected), "one RESOLVE job per accepted push, none for rejected ones")
for label, push_type, ids, data, opts in expected:
    match = [j for j in jobs if j[0] == 1 and j[3] == push_type and list(j[4]) == ids
             and json.loads(j[5]) == data]
    t.eq(len(match), 1, "%s: RESOLVE job with push_type %d, ids %r, data" % (label, push_type, ids))
    if match:
        got = {k: match[0][7].get(k) for k in opts}
        t.eq(got, opts, "%s: the job's options" % label)
    if match and label == "c-ack":
        ex = match[0][7].get("ex")
        t.check(isinstance(ex, int) and ex > time.time() + 30,
                "c-ack: ttl=60 became an absolute expiration (%r)" % ex)
    if match and label in accepted_ids:
        t.eq(match[0][2], accepted_ids[label], "%s: job carries the acked message id" % label)

resolver.stop.set()
resolver.join(5)
ctx.term()
code = broker.stop()
t.eq(code, 0, "broker exits 0 on SIGTERM")
log = broker.output()
t.check("level=error" not in log, "no errors in the broker's log")
if t.failed:
    print(log[-3000:])
else:
    shutil.rmtree(wd, ignore_errors=True)
t.finish()
