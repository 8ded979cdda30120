"""The broker with CurveZMQ on: clients (raw pyzmq, the Python client, libpushpipe) with an
allowlisted key get an acknowledgement; a client with a key not in the allowlist, and a
client without CURVE, get nothing through; a resolver with its own allowlisted key gets the
jobs; config errors name the key."""
import os
import subprocess
import sys
import time

import msgpack
import zmq
import zmq.auth

import pp_harness as h

args = h.parse_args()
ck = h.Checks()
wd = h.workdir("curve-broker")
keygen = h.binary(args.build_dir, "pushpipe-keygen")
certs = os.path.join(wd, "certs")
allow = os.path.join(wd, "allow")
os.mkdir(allow)
for name in ("broker", "client", "resolver", "stranger"):
    subprocess.run([keygen, name, "--dir", certs], check=True, capture_output=True)
for name in ("client", "resolver"):
    os.link(os.path.join(certs, name + ".cert"), os.path.join(allow, name + ".cert"))


def keys(name):
    return zmq.auth.load_certificate(os.path.join(certs, name + ".cert_secret"))


broker_pub, _ = keys("broker")
base = h.free_ports(7)
mport = h.free_port()
redis = h.Redis(wd)
cfg = {
    "broker_address": "tcp://127.0.0.1:%d" % base,
    "broker": {"bind": "tcp://127.0.0.1:%d" % base},
    "resolver": {"redis": {"host": "127.0.0.1", "port": redis.port}},
    "curve": {"enabled": True,
              "server_secret_cert": os.path.join(certs, "broker.cert_secret"),
              "secret_cert": os.path.join(certs, "resolver.cert_secret"),
              "server_public": os.path.join(certs, "broker.cert"),
              "allow_dir": allow},
}
path = h.write_config(wd, cfg)
broker = h.Proc([h.binary(args.build_dir, "pushpipe-broker"), "--config", path,
                 "--metrics-port", mport], os.path.join(wd, "broker.log"))
h.wait_port(mport, 10)
h.wait_port(base + 1, 10)
ck.check("event=curve_server" in broker.output(), "the broker logs that it is a CURVE server")


def m(name, **labels):
    return h.metric(mport, name, **labels)


ctx = zmq.Context()


def dealer(curve_keys=None):
    s = ctx.socket(zmq.DEALER)
    s.linger = 0
    if curve_keys:
        s.curve_serverkey = broker_pub
        s.curve_publickey, s.curve_secretkey = curve_keys
    s.connect("tcp://127.0.0.1:%d" % (base + 1))
    return s


def ask(s, timeout_ms):
    s.send(msgpack.packb([3, "42", {"t": "curve"}]))
    if not s.poll(timeout_ms):
        return None
    return msgpack.unpackb(s.recv_multipart()[-1], raw=False)


# 1. allowlisted key: acknowledged
s = dealer(keys("client"))
reply = ask(s, 5000)
ck.check(isinstance(reply, dict) and reply.get("ok") is True,
         "pyzmq client with an allowlisted key is accepted (%r)" % (reply,))
s.close()
ck.eq(m("accepted_total"), 1.0, "broker accepted_total is 1")
forwarded0 = m("forwarded_total")

# 2. a key not in the allowlist: nothing gets through
s = dealer(keys("stranger"))
reply = ask(s, 1500)
ck.eq(reply, None, "a client with an unknown key gets no reply")
s.close()
p = ctx.socket(zmq.PUSH)
p.linger = 0
p.curve_serverkey = broker_pub
p.curve_publickey, p.curve_secretkey = keys("stranger")
p.connect("tcp://127.0.0.1:%d" % base)
p.send(msgpack.packb([3, "43", {"t": "curve"}]))
time.sleep(0.5)
p.close()

# 3. no CURVE at all: nothing gets through
s = dealer(None)
reply = ask(s, 1500)
ck.eq(reply, None, "a client without CURVE gets no reply")
s.close()
ck.eq(m("accepted_total"), 1.0, "accepted_total is still 1")
ck.eq(m("received_total"), 1.0, "received_total is still 1 (nothing else reached the broker)")
ck.eq(m("forwarded_total"), forwarded0, "forwarded_total did not move either")
if "pushpipe_curve_handshakes_total{" in " ".join(h.metrics(mport)):
    ck.check(m("curve_handshakes_total", result="refused") >= 2, "refused handshakes counted")
    ck.check(m("curve_handshakes_total", result="failed") >= 1, "a plain client's failed "
                                                                  "handshake counted")
else:
    print("note: the broker does not call pp_curve_set_metrics; no handshake counters",
          flush=True)

# 4. the Python client library with CURVE
try:
    import pushpipe
    c = pushpipe.Client.from_address(cfg["broker_address"], ack=True, timeout_ms=5000,
                                     curve=(broker_pub.decode(), *[k.decode() for k in
                                                                   keys("client")]))
    r = c.push_user("44", {"t": "python client"})
    ck.check(isinstance(r, pushpipe.Accepted), "the Python client with CURVE is accepted (%r)" % r)
    c.close()
    c = pushpipe.Client.from_address(cfg["broker_address"], ack=True, timeout_ms=1500,
                                     curve=(broker_pub.decode(), *[k.decode() for k in
                                                                   keys("stranger")]))
    try:
        r = c.push_user("45", {"t": "python stranger"})
        ck.check(False, "the Python client with an unknown key times out (got %r)" % r)
    except pushpipe.Timeout:
        ck.check(True, "the Python client with an unknown key times out")
    c.close()
except ImportError:
    print("note: clients/python is not on PYTHONPATH", flush=True)


# 5. libpushpipe (C) with pp_client_set_curve, in a helper process (an ASan build of the
# library needs its runtime preloaded into python)
lib_path = os.path.join(args.build_dir, "clients", "c", "libpushpipe.so")
if os.path.exists(lib_path):
    env = dict(os.environ)
    needed = subprocess.run(["ldd", lib_path], capture_output=True, text=True).stdout
    if "libasan" in needed:
        asan = subprocess.run(["gcc", "-print-file-name=libasan.so"], capture_output=True,
                              text=True).stdout.strip()
        env.update(LD_PRELOAD=asan, ASAN_OPTIONS="detect_leaks=0")

    def c_push(name, timeout_ms):
        pub, sec = keys(name)
        r = subprocess.run([sys.executable, os.path.join(os.path.dirname(__file__),
                                                         "libpushpipe_push.py"),
                            lib_path, cfg["broker_address"], broker_pub.decode(), pub.decode(),
                            sec.decode(), str(timeout_ms)],
                           capture_output=True, text=True, env=env, timeout=60)
        return r.stdout.strip() + r.stderr.strip()[-200:]

    out = c_push("client", 5000)
    ck.eq(out, "rc=0 accepted=1 set_curve=0",
          "libpushpipe with pp_client_set_curve and an allowlisted key is accepted")
    out = c_push("stranger", 1500)
    ck.eq(out, "rc=-1 accepted=0 set_curve=0", "libpushpipe with an unknown key gets nothing")
else:
    print("note: libpushpipe.so not built under %s" % args.build_dir, flush=True)

# 5b. pushpipe-send with --curve-server/--curve-cert (certificate files from pushpipe-keygen)
send_bin = h.binary(args.build_dir, "pushpipe-send")


def send_curve(name, timeout_ms):
    return subprocess.run([send_bin, "--broker", "tcp://127.0.0.1:%d" % base, "--ack",
                           "--timeout-ms", str(timeout_ms),
                           "--curve-server", os.path.join(certs, "broker.cert"),
                           "--curve-cert", os.path.join(certs, name + ".cert_secret"),
                           "--user", "7", '{"alert": "curve"}'],
                          capture_output=True, text=True, timeout=30)


r = send_curve("client", 5000)
ck.check(r.returncode == 0 and r.stdout.startswith("accepted "),
         "pushpipe-send with an allowlisted key is accepted (%r %r)" % (r.stdout, r.stderr))
r = send_curve("stranger", 1500)
ck.eq(r.returncode, 1, "pushpipe-send with an unknown key gets nothing (exit 1)")
r = subprocess.run([send_bin, "--broker", "tcp://127.0.0.1:%d" % base, "--curve-server",
                    os.path.join(certs, "broker.cert"), "--user", "7", "{}"],
                   capture_output=True, text=True, timeout=30)
ck.eq(r.returncode, 2, "pushpipe-send with --curve-server alone is a usage error")
accepted = m("accepted_total")

# 6. a resolver with its own allowlisted key gets the resolve jobs over CURVE
rport = h.free_port()
resolver = h.Proc([h.binary(args.build_dir, "pushpipe-resolver"), "--config", path,
                   "--metrics-port", rport], os.path.join(wd, "resolver.log"))
h.wait_port(rport, 10)
try:
    h.wait_for(lambda: m("link_jobs_sent_total", pool="resolve") >= accepted, 10,
               what="jobs forwarded to the resolver")
    ck.check(True, "the broker forwards to a resolver with an allowlisted key (%d)" % accepted)
except AssertionError:
    ck.check(False, "the broker forwards to a resolver with an allowlisted key (forwarded %r)"
             % m("link_jobs_sent_total", pool="resolve"))
resolver.stop()

# 7. a resolver whose key is not allowlisted gets nothing
cfg_bad = dict(cfg, curve=dict(cfg["curve"], secret_cert=os.path.join(certs,
                                                                       "stranger.cert_secret")))
path_bad = h.write_config(wd, cfg_bad, "stranger.json")
# "Sent to a resolver" is the link's count; forwarded_total counts jobs handed to a pool.
before = m("link_jobs_sent_total", pool="resolve")
rport2 = h.free_port()
resolver2 = h.Proc([h.binary(args.build_dir, "pushpipe-resolver"), "--config", path_bad,
                    "--metrics-port", rport2], os.path.join(wd, "resolver2.log"))
h.wait_port(rport2, 10)
s = dealer(keys("client"))
reply = ask(s, 5000)
s.close()
time.sleep(1.0)
ck.check(reply is not None and reply.get("ok") is True, "another allowlisted push is accepted")
ck.eq(m("link_jobs_sent_total", pool="resolve"), before,
      "nothing is sent to a resolver whose key is not allowlisted")
resolver2.stop()
ck.eq(broker.stop(), 0, "the broker stops with exit 0")

# 8. config errors name the key, exit 2. (A public file with its _secret beside it is read
# as the secret one, by zcert_load; a public file alone is an error.)
pubonly = os.path.join(wd, "pubonly")
os.mkdir(pubonly)
with open(os.path.join(certs, "broker.cert")) as f, \
        open(os.path.join(pubonly, "broker.cert"), "w") as g:
    g.write(f.read())
for curve, key in ((dict(cfg["curve"], allow_dir=os.path.join(wd, "nope")), "curve.allow_dir"),
                   (dict(cfg["curve"], server_secret_cert=os.path.join(pubonly, "broker.cert")),
                    "curve.server_secret_cert"),
                   (dict(cfg["curve"], alow_dir=allow), "curve.alow_dir")):
    bad = h.write_config(wd, dict(cfg, curve=curve), "bad.json")
    r = subprocess.run([h.binary(args.build_dir, "pushpipe-broker"), "--config", bad,
                        "--metrics-port", "0"], capture_output=True, text=True, timeout=10)
    ck.check(r.returncode == 2 and key in r.stderr, "broker exits 2 naming %s (%d: %s)"
             % (key, r.returncode, r.stderr.strip()[:160]))
ck.finish()
