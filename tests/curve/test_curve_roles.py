"""Roles per CURVE key (issue 11, docs/security.md "Roles per key"): the whole pipeline runs
with CURVE on and allow_dir split into clients/, resolvers/, apns-senders/, mqtt-senders/.
Each misuse below is refused, counted and logged, and the pipeline goes on delivering:

  a. a client application's key connecting to the resolve port and sending an output
     (an MQTT job of its own) is refused by ZAP; the job never reaches MQTT;
  b. a resolver key that never registered sending an output is dropped by the hub
     (kind="output_unregistered");
  c. a client key on the apns port receives nothing (no job, no device token);
  d. a resolver key on the mqtt port receives nothing;
  e. one key opening 2,000 worker links to the resolve pool: only
     broker.link.max_workers_per_key (default 64) register, the rest are refused
     (kind="workers_per_key"), and a resolver started afterwards with its own key still
     registers and does all the work.
"""
import os
import subprocess
import sys
import threading
import time
import uuid

import msgpack
import zmq

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
import e2e_common as e  # noqa: E402
import pp_harness as h  # noqa: E402

RESOLVE, APNS_OUT, MQTT_OUT = 2, 5, 6  # offsets from the base port (common/pp_endpoints.h)
CAP = 64                               # broker.link.max_workers_per_key's default
FLOOD = 2000

args = h.parse_args()
ck = h.Checks()
wd = h.workdir("curve-roles")
keygen = h.binary(args.build_dir, "pushpipe-keygen")
certs = os.path.join(wd, "certs")
allow = os.path.join(wd, "allow")
ROLES = {"clients": ["app"],
         "resolvers": ["pipeline", "rogue", "flood"],
         "apns-senders": ["pipeline"],
         "mqtt-senders": ["pipeline"]}
for name in ("broker", "pipeline", "app", "rogue", "flood"):
    subprocess.run([keygen, name, "--dir", certs], check=True, capture_output=True)
for role, names in ROLES.items():
    os.makedirs(os.path.join(allow, role))
    for name in names:
        os.link(os.path.join(certs, name + ".cert"), os.path.join(allow, role, name + ".cert"))

curve = {"enabled": True,
         "server_secret_cert": os.path.join(certs, "broker.cert_secret"),
         "secret_cert": os.path.join(certs, "pipeline.cert_secret"),
         "server_public": os.path.join(certs, "broker.cert"),
         "allow_dir": allow}
bpub = e.load_cert(os.path.join(certs, "broker.cert"))[0]


def keys(name):
    return e.load_cert(os.path.join(certs, name + ".cert_secret"))


def triple(name):
    return [bpub] + list(keys(name))


pl = e.Pipeline(args.build_dir, wd, curve=curve, n_resolvers=1)
out = pl.broker.output()
ck.check("event=curve_server" in out and "roles=on" in out,
         "the broker is a CURVE server with roles on")
ck.check("event=curve_roles_off" not in out, "no curve_roles_off warning with role directories")
pl.seed()
sub = pl.subscriber()


def bm(name, **labels):
    return pl.metric(pl.broker, name, **labels)


delivered = [0, 0]  # APNs notifications, MQTT messages so far


def deliver(tag, n=6):
    """Pushes n messages with the client key and checks that all of them arrive."""
    pushes = [{"via": "py_ack", "type": 3, "id": str(1 + k % 3),
               "data": {"alert": "roles %s" % tag, "n": 100 * len(tag) + k}} for k in range(n)]
    res = e.send(e.LOCAL, pl.address, pushes, wd, curve=triple("app"), name="send-" + tag)
    ck.check(all(r.get("accepted") for r in res),
             "%s: the client key's pushes are accepted (%r)" % (tag, res[:1]))
    want_a, want_m = e.expected(pushes)
    want = (delivered[0] + sum(want_a.values()), delivered[1] + sum(want_m.values()))
    got = e.settle(lambda: (pl.apns_count(), sub.count()), want, timeout=60, stable_s=1.0)
    ck.eq(got, want, "%s: every notification and MQTT message is delivered" % tag)
    delivered[0], delivered[1] = got


deliver("before")

ctx = zmq.Context()
ctx.set(zmq.MAX_SOCKETS, FLOOD + 100)


def dealer(port, name):
    s = ctx.socket(zmq.DEALER)
    s.linger = 0
    s.curve_serverkey = bpub.encode()
    pub, sec = keys(name)
    s.curve_publickey, s.curve_secretkey = pub.encode(), sec.encode()
    s.connect("tcp://127.0.0.1:%d" % (pl.base + port))
    return s


def credit(n):
    return [b"R", n.to_bytes(4, "big")]


def drain(s, ms):
    """Every message s receives within ms."""
    got, deadline = [], time.time() + ms / 1000.0
    while True:
        left = int((deadline - time.time()) * 1000)
        if left <= 0 or not s.poll(left):
            return got
        got.append(s.recv_multipart())


INJECT_TOPIC = "%s/user/injected" % e.PREFIX


def injected_job():
    # An MQTT job as a resolver sends it (proto/pp_job.h; tests/mqtt/mqtt_util.py).
    return msgpack.packb([3, 1, uuid.uuid4().hex, 1, '{"alert": "injected"}',
                          int(time.time() * 1e6), [INJECT_TOPIC]], use_bin_type=True)


def refused(role):
    return bm("curve_zap_total", role=role, result="refused")


def injected_seen():
    return [m for m in sub.messages() if m.get("topic") == INJECT_TOPIC]


# a. a client key as a resolver, sending outputs
app_pub = keys("app")[0]
r0 = refused("resolvers")
s = dealer(RESOLVE, "app")
s.send_multipart(credit(10))
for _ in range(3):
    s.send_multipart([b"O", injected_job()])
got = drain(s, 2000)
s.close()
ck.eq(got, [], "a: a client key on the resolve port gets nothing back (no job, no W)")
ck.check(refused("resolvers") > r0, "a: counted as curve_zap_total{role=resolvers,refused}")
log = pl.broker.output()
ck.check("event=curve_role_refused role=resolvers key=%s key_roles=clients" % app_pub in log,
         "a: the broker logs the refusal with the key and the roles it does have")

# b. a resolver key sending outputs without registering
b0 = bm("link_bad_messages_total", pool="resolve", kind="output_unregistered")
s = dealer(RESOLVE, "rogue")
for _ in range(3):
    s.send_multipart([b"O", injected_job()])
got = drain(s, 1500)
s.close()
ck.check(bm("link_bad_messages_total", pool="resolve", kind="output_unregistered") >= b0 + 3,
         "b: outputs from an unregistered routing id are dropped and counted")
ck.check(any(m == [b"W"] for m in got), "b: and answered with W (register first)")
ck.check("kind=output_unregistered" in pl.broker.output(), "b: and logged")
time.sleep(1.0)
ck.eq(injected_seen(), [], "a, b: no injected job reached MQTT")

# c, d: a client key on the apns port, a resolver key on the mqtt port, while the pipeline
# delivers: they get nothing
a0, m0 = refused("apns-senders"), refused("mqtt-senders")
spy_apns = dealer(APNS_OUT, "app")
spy_mqtt = dealer(MQTT_OUT, "rogue")
for sp in (spy_apns, spy_mqtt):
    sp.send_multipart(credit(1000))
deliver("while-spied")
ck.eq(drain(spy_apns, 500), [], "c: a client key on the apns port receives nothing")
ck.eq(drain(spy_mqtt, 500), [], "d: a resolver key on the mqtt port receives nothing")
spy_apns.close()
spy_mqtt.close()
ck.check(refused("apns-senders") > a0, "c: counted as curve_zap_total{role=apns-senders}")
ck.check(refused("mqtt-senders") > m0, "d: counted as curve_zap_total{role=mqtt-senders}")
log = pl.broker.output()
ck.check("role=apns-senders key=%s" % app_pub in log, "c: logged with the key")
ck.check("role=mqtt-senders key=%s" % keys("rogue")[0] in log, "d: logged with the key")

# e. one key, 2,000 worker links (credit 0: they only take slots), kept alive by heartbeats
stop = threading.Event()
flood_up = threading.Event()
flood_err = []
heard = set()  # flood links the broker answered


def flood():
    try:
        socks = [dealer(RESOLVE, "flood") for _ in range(FLOOD)]
        for sk in socks:
            sk.send_multipart(credit(0))
        flood_up.set()
        while not stop.is_set():
            for i, sk in enumerate(socks):
                sk.send(b"H")
                while sk.poll(0):
                    # Like a real worker (pp_link): a "W" (the hub does not know us) draws
                    # a new "R". Any answer means the link's handshake went through.
                    if sk.recv_multipart() == [b"W"]:
                        sk.send_multipart(credit(0))
                    heard.add(i)
            stop.wait(0.3)
        for sk in socks:
            sk.close()
    except Exception as ex:  # reported by the main thread
        flood_err.append(repr(ex))
        flood_up.set()


# While the flood is up the broker holds over 2,000 descriptors, and its metrics server
# (libmicrohttpd, select-based) refuses connections whose descriptor passes FD_SETSIZE:
# this part reads the broker's log, and its counters once the flood has closed.
ft = threading.Thread(target=flood, daemon=True)
ft.start()
flood_up.wait(60)
ck.eq(flood_err, [], "e: the flood's sockets are up")
flood_pub = keys("flood")[0]
pipe_pub = keys("pipeline")[0]


def joined(user):
    """workers_of_user of every link_worker_joined line of the resolve pool for user."""
    out = []
    for line in pl.broker.output().splitlines():
        if "event=link_worker_joined pool=resolve" in line and 'user="%s"' % user in line:
            out.append(int(line.rsplit("workers_of_user=", 1)[1].split()[0]))
    return out


try:
    h.wait_for(lambda: len(joined(flood_pub)) >= CAP and
               "kind=workers_per_key" in pl.broker.output(), 60, what="the flood registered")
except AssertionError:
    pass
time.sleep(3.0)  # every link's "R" arrives, and some draw a "W" and send "R" again
ck.eq(max(joined(flood_pub) or [0]), CAP, "e: at most %d of the flood's links register" % CAP)
ck.eq(len(joined(flood_pub)), CAP, "e: exactly %d flood links joined" % CAP)
ck.check('key_name="flood"' in pl.broker.output(),
         "e: the joined lines name the key (X-Key-Name from the ZAP handler)")
ck.check("kind=workers_per_key" in pl.broker.output(), "e: refusals are logged")
# A resolver started now, with its own key, registers; with the first one stopped it alone
# does the work.
pl.rports.append(h.free_port())
r2 = pl.start_resolver(1)
pl.resolvers.append(r2)
try:
    h.wait_for(lambda: len(joined(pipe_pub)) >= 2, 15, what="the new resolver registers")
except AssertionError:
    pass
ck.eq(len(joined(pipe_pub)), 2, "e: a resolver started during the flood registers")
first = pl.resolvers.pop(0)
ck.eq(first.stop(), 0, "e: the first resolver stops")
before = pl.metric(r2, "messages_total")
deliver("during-flood")
ck.check(pl.metric(r2, "messages_total") > before, "e: the new resolver did the work")
ck.check(ft.is_alive() and not flood_err, "e: the flood was up all along")
# 2,000 CURVE handshakes take a while on a busy machine (and under ASan): let the flood
# run until the broker has answered its links, rather than for a fixed time.
try:
    h.wait_for(lambda: len(heard) >= 0.9 * FLOOD, 120, what="the broker to answer the flood")
except AssertionError:
    pass
stop.set()
ft.join(30)
time.sleep(1.0)  # the broker closes the flood's connections: its metrics serve again
ck.check(len(heard) >= 0.9 * FLOOD, "e: %d of the %d flood links were answered by the broker"
         % (len(heard), FLOOD))
ck.check(bm("link_bad_messages_total", pool="resolve", kind="workers_per_key") >=
         len(heard) - CAP, "e: registrations past the cap were refused and counted (%r)"
         % bm("link_bad_messages_total", pool="resolve", kind="workers_per_key"))
ck.eq(bm("link_bad_messages_total", pool="resolve", kind="too_many_workers"), 0.0,
      "e: the pool never filled up")

ck.eq(injected_seen(), [], "no injected job reached MQTT at any point")
pl.stop_and_check(ck)
ck.finish()
