"""Every client against two real pushpipe-brokers (active-active, durability "none": the
failover mechanics, not the de-duplication), each with a fake resolver (pp_link
FakeWorker) on its resolve endpoint:

(a) fire-and-forget over "A,B" reaches both brokers (both resolvers get jobs); once A is
    killed (kill -9), every later push reaches B: none is queued for the dead broker
    (ZMQ_IMMEDIATE), none is lost. C library, pushpipe-send, Python.
(b) acknowledged over "A,B" goes to A; with A silent (SIGSTOP) or dead (kill -9) a push
    is accepted by B within timeout + epsilon, carrying a client message id (generated,
    "pp-" + 16 hex, when the caller gave none); the resend is the same frame (A, once it
    runs again, reads the first send: same client id); the next push goes to B at once.
    With every broker silent the push fails with a timeout after one attempt each.

Exits 77 (ctest: skipped) when the broker has not been built."""
import os
import re
import signal
import subprocess
import sys
import threading
import time

import msgpack
import zmq

import pp_harness
import pp_link

import pushpipe

args = pp_harness.parse_args()
if not os.access(os.path.join(args.build_dir, "broker", "pushpipe-broker"), os.X_OK):
    print("SKIP: pushpipe-broker is not built")
    sys.exit(77)
sys.path.insert(0, os.path.join(pp_harness.source_dir(), "tests", "broker"))
import broker_util  # noqa: E402

t = pp_harness.Checks()
SEND = os.path.join(args.build_dir, "clients", "c", "pushpipe-send")
DRIVER = os.path.join(args.build_dir, "tests", "clients", "client_driver")
GEN_ID = re.compile(r"^pp-[0-9a-f]{16}$")
TIMEOUT_MS = 1000
EPSILON = 1.5  # seconds of slack on a loaded 2-core machine
wd = pp_harness.workdir("clients-multi-broker")
ctx = zmq.Context()


class Resolver(threading.Thread):
    """A link worker on one broker's resolve endpoint, polled in its own thread so that its
    heartbeats keep it alive; acks every job. jobs: decoded RESOLVE jobs."""

    def __init__(self, broker):
        super().__init__(daemon=True)
        self.endpoint = broker.ep("resolve")
        self.stop = threading.Event()
        self.ready = threading.Event()
        self.jobs = []

    def run(self):
        w = pp_link.FakeWorker(self.endpoint, window=200, ctx=ctx)
        self.ready.set()
        seen = 0
        while not self.stop.is_set():
            w.poll(10)
            while seen < len(w.jobs):
                self.jobs.append(msgpack.unpackb(w.jobs[seen][1], raw=False))
                seen += 1
        w.crash()

    def cids(self):
        """The client message ids (option "id") of the jobs so far."""
        return [j[7].get("id") for j in self.jobs]


class Pair:
    """Two brokers, A and B, each with its resolver."""
    n = 0

    def __init__(self):
        Pair.n += 1
        self.a = broker_util.Broker(args, wd, name="a%d" % Pair.n)
        self.b = broker_util.Broker(args, wd, name="b%d" % Pair.n)
        self.ra, self.rb = Resolver(self.a), Resolver(self.b)
        for r in (self.ra, self.rb):
            r.start()
            r.ready.wait(5)
        self.list = "%s,%s" % (self.a.address, self.b.address)
        # Until a resolver's link is up the broker has no one to hand jobs to; a push it
        # accepted meanwhile still reaches the resolver, but give the link a moment.
        time.sleep(0.3)

    def total(self):
        return len(self.ra.jobs) + len(self.rb.jobs)

    def close(self):
        for r in (self.ra, self.rb):
            r.stop.set()
            r.join(5)
        for br in (self.a, self.b):
            br.proc.signal(signal.SIGCONT)
            br.proc.kill()


class Driver:
    """client_driver run interactively: one script line in, one result line out."""

    def __init__(self, address, *flags):
        self.p = subprocess.Popen([DRIVER, address] + list(flags), stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def push(self, *fields):
        self.p.stdin.write(("\t".join(fields) + "\n").encode())
        self.p.stdin.flush()
        return self.p.stdout.readline().decode().strip()

    def close(self):
        self.p.stdin.close()
        rc = self.p.wait(30)
        self.p.stdout.close()
        self.p.stderr.close()
        return rc


def verbose(line):
    """The key=value fields of a --verbose driver result line."""
    return dict(kv.split("=", 1) for kv in line.split() if "=" in kv)


def send(argv, timeout=30):
    start = time.monotonic()
    p = subprocess.run([SEND] + argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout)
    return p.returncode, p.stdout.decode(), p.stderr.decode(), time.monotonic() - start


def settle(pair, want, timeout=10):
    """Waits until the two resolvers together have `want` jobs, then a little longer so
    that an extra job (a failure) would show."""
    broker_util.until(lambda: pair.total() >= want, timeout=timeout)
    time.sleep(0.3)


def kill_a(pair):
    pair.a.proc.kill()  # SIGKILL: the kernel closes its sockets, the clients notice
    time.sleep(0.5)


def fire_and_forget(label, client, n1=20, n2=20):
    """(a) for one client. client(address_list) returns (push_one, finish): push_one(i)
    sends one fire-and-forget push, finish() ends the client."""
    pair = Pair()
    push_one, finish = client(pair.list)
    try:
        push_one(0)  # the first push also connects; then let both connections complete
        time.sleep(0.3)
        for i in range(1, n1):
            push_one(i)
        settle(pair, n1)
        na, nb = len(pair.ra.jobs), len(pair.rb.jobs)
        t.eq(na + nb, n1, "%s fire-and-forget: every push reached a broker" % label)
        t.check(na > 0 and nb > 0, "%s fire-and-forget: spread over both brokers (A %d, B %d)"
                % (label, na, nb))
        kill_a(pair)
        for i in range(n1, n1 + n2):
            push_one(i)
        settle(pair, n1 + n2)
        t.eq(len(pair.rb.jobs) - nb, n2,
             "%s fire-and-forget: after A is killed all %d pushes reach B (none queued for A)"
             % (label, n2))
    finally:
        finish()
        pair.close()


# --- (a) fire-and-forget -------------------------------------------------------------------
def c_client(address):
    d = Driver(address)  # the list as one string, through pp_client_new

    def push_one(i):
        r = d.push("user", "c%d" % i, '{"n":%d}' % i, "-")
        if r != "sent":
            t.check(False, "C library push %d: sent (%r)" % (i, r))

    return push_one, lambda: t.eq(d.close(), 0, "C library fire-and-forget: driver exits 0")


def py_client(address):
    # A list here; the comma-separated form is exercised by the ack part.
    c = pushpipe.Client.from_address(address.split(","))
    return (lambda i: c(3, "p%d" % i, {"n": i})), c.close


def send_client(address):
    def push_one(i):
        rc, out, err, _ = send(["--broker", address, "--user", "s%d" % i, '{"n":%d}' % i])
        if rc != 0:
            t.check(False, "pushpipe-send push %d: exit 0 (%d %r)" % (i, rc, err))

    return push_one, lambda: None


fire_and_forget("C library", c_client)
fire_and_forget("Python", py_client)
# One process per push: each sends to whichever connection completes first (random
# rotation), so 16 pushes land on both brokers all but surely.
fire_and_forget("pushpipe-send", send_client, n1=16, n2=8)

# --- (b) acknowledged: A silent (SIGSTOP) -------------------------------------------------
pair = Pair()
try:
    A, B = pair.a.address, pair.b.address
    d = Driver(pair.list, "--ack", "--timeout-ms", str(TIMEOUT_MS), "--verbose")
    py = pushpipe.AckClient.from_address(" %s , %s " % (A, B), timeout_ms=TIMEOUT_MS)
    first = verbose(d.push("user", "c1", '{"n":1}', "-"))
    t.eq((first.get("broker"), first.get("resends")), (A, "0"),
         "C library ack: the first broker listed answers while it is up")
    t.check(GEN_ID.match(first.get("cid", "")) is not None,
            "C library ack: a client id pp-<16 hex> is generated (%r)" % first.get("cid"))
    r = py(3, "p1", {"n": 1})
    t.eq((r.broker, py.resends), (A, 0), "Python ack: A answers while it is up")
    t.check(GEN_ID.match(py.message_id or "") is not None,
            "Python ack: a client id is generated (%r)" % py.message_id)
    r = py(3, "p-own", {"n": 0}, id="caller-id-1")
    t.eq(py.message_id, "caller-id-1", "Python ack: the caller's id is kept")

    pair.a.proc.signal(signal.SIGSTOP)
    t0 = time.monotonic()
    line = d.push("user", "c2", '{"n":2}', "-")
    dt = time.monotonic() - t0
    v = verbose(line)
    t.check(line.startswith("accepted ") and v.get("broker") == B and v.get("resends") == "1",
            "C library ack, A stopped: accepted by B after one resend (%r)" % line)
    t.check(TIMEOUT_MS / 1000.0 - 0.05 <= dt <= TIMEOUT_MS / 1000.0 + EPSILON,
            "C library ack, A stopped: within timeout + epsilon (%.2f s)" % dt)
    c_cid = v.get("cid")
    line = d.push("user", "c3", '{"n":3}', "-")
    v = verbose(line)
    t.check(line.startswith("accepted ") and v.get("broker") == B and v.get("resends") == "1"
            and int(v.get("ms", "99999")) < TIMEOUT_MS,
            "C library ack: the next push goes straight to B (%r)" % line)
    t.eq(d.close(), 0, "C library ack: driver exits 0")

    t0 = time.monotonic()
    r = py(1, "g-py", {"n": 2})
    dt = time.monotonic() - t0
    t.check(isinstance(r, pushpipe.Accepted) and r.broker == B and py.resends == 1,
            "Python ack, A stopped: accepted by B after one resend (%r %r)" % (r, r.broker))
    t.check(TIMEOUT_MS / 1000.0 - 0.05 <= dt <= TIMEOUT_MS / 1000.0 + EPSILON,
            "Python ack, A stopped: within timeout + epsilon (%.2f s)" % dt)
    py_cid = py.message_id
    t0 = time.monotonic()
    r = py(3, "p4", {"n": 4})
    t.check(r.broker == B and time.monotonic() - t0 < TIMEOUT_MS / 1000.0,
            "Python ack: the next push goes straight to B")
    t.eq(py.address, B, "Python ack: address is the broker that answered")

    rc, out, err, dt = send(["--broker", pair.list, "--ack", "--timeout-ms", str(TIMEOUT_MS),
                             "--user", "s1", '{"n":1}'])
    t.check(rc == 0 and out.startswith("accepted ") and ("answered by %s" % B) in err,
            "pushpipe-send --ack, A stopped: accepted by B (%d %r %r)" % (rc, out, err))
    t.check(TIMEOUT_MS / 1000.0 - 0.05 <= dt <= TIMEOUT_MS / 1000.0 + EPSILON + 0.5,
            "pushpipe-send --ack, A stopped: within timeout + epsilon (%.2f s)" % dt)
    m = re.search(r"client id (\S+?),", err)
    send_cid = m.group(1) if m else None
    t.check(send_cid is not None and GEN_ID.match(send_cid) is not None,
            "pushpipe-send --ack: generated client id reported (%r)" % send_cid)
    rc, out, err, dt = send(["--broker", pair.list, "--ack", "--timeout-ms", str(TIMEOUT_MS),
                             "--retries", "0", "--user", "s0", '{"n":0}'])
    t.check(rc == 1 and "timeout" in err and dt < TIMEOUT_MS / 1000.0 + EPSILON,
            "pushpipe-send --ack --retries 0, A stopped: timeout, exit 1 (%d %r)" % (rc, err))

    broker_util.until(lambda: set(pair.rb.cids()) >= {c_cid, py_cid, send_cid}, timeout=10)
    t.check(set(pair.rb.cids()) >= {c_cid, py_cid, send_cid},
            "B ran the resent pushes, carrying their client ids")
    # The C and Python clients were connected to A before it stopped: their first send
    # sits in A's socket. Once A runs again it reads it: the same frame, same client id.
    # (With durability "jetstream" it would be stored once; with "none" it runs twice.)
    na = len(pair.ra.jobs)
    pair.a.proc.signal(signal.SIGCONT)
    broker_util.until(lambda: {c_cid, py_cid} <= set(pair.ra.cids()), timeout=10)
    t.check({c_cid, py_cid} <= set(pair.ra.cids()[na:]),
            "A, resumed, reads the first sends: the resend was the same frame (same id)")

    # --- (b) acknowledged: A dead (kill -9) ------------------------------------------------
    kill_a(pair)
    d = Driver(pair.list, "--ack", "--timeout-ms", str(TIMEOUT_MS), "--verbose", "--multi")
    t0 = time.monotonic()
    line = d.push("group", "g9", '{"n":9}', "id=caller-9")
    dt = time.monotonic() - t0
    v = verbose(line)
    t.check(line.startswith("accepted ") and v.get("broker") == B and v.get("cid") ==
            "caller-9", "C library (new_multi) ack, A killed: accepted by B with the "
            "caller's id (%r)" % line)
    t.check(dt <= TIMEOUT_MS / 1000.0 + EPSILON,
            "C library ack, A killed: within timeout + epsilon (%.2f s)" % dt)
    t.eq(d.close(), 0, "driver exits 0")
    rc, out, err, dt = send(["--broker", pair.list, "--ack", "--timeout-ms", str(TIMEOUT_MS),
                             "--user", "s2", '{"n":2}'])
    t.check(rc == 0 and out.startswith("accepted ") and dt <= TIMEOUT_MS / 1000.0 + EPSILON
            + 0.5, "pushpipe-send --ack, A killed: accepted by B in %.2f s (%r)" % (dt, err))
    py.close()
    py = pushpipe.AckClient.from_address([A, B], timeout_ms=TIMEOUT_MS)
    t0 = time.monotonic()
    r = py(3, "p5", {"n": 5})
    dt = time.monotonic() - t0
    t.check(r.broker == B and dt <= TIMEOUT_MS / 1000.0 + EPSILON,
            "Python ack, A killed: accepted by B in %.2f s" % dt)
    py.close()
finally:
    pair.close()

# --- every broker silent -------------------------------------------------------------------
absent = ",".join("tcp://127.0.0.1:%d" % pp_harness.free_ports(7) for _ in range(2))
rc, out, err, dt = send(["--broker", absent, "--ack", "--timeout-ms", "300", "--user", "9",
                         "{}"])
t.check(rc == 1 and "timeout" in err and "2 attempts over 2 brokers" in err and dt >= 0.55,
        "pushpipe-send --ack, no broker up: timeout after one attempt each (%d %r %.2f s)"
        % (rc, err, dt))
ac = pushpipe.AckClient.from_address(absent, timeout_ms=300)
try:
    ac(3, "9", {})
    t.check(False, "Python ack, no broker up: Timeout")
except pushpipe.Timeout as e:
    t.check("2 attempts" in str(e), "Python ack, no broker up: Timeout after 2 attempts (%s)" % e)
ac.close()

ctx.term()
t.finish()
