"""The binding rule and secret key file permissions (docs/security.md), with the real
pushpipe-broker and pushpipe-resolver:

- the broker alone with --bind tcp://0.0.0.0:PORT and CURVE off exits 2 before binding, and
  the message names broker.bind, curve.enabled and insecure_bind; the same with a host name
  and with tcp://*:PORT;
- with "insecure_bind": true it starts, binds and logs event=insecure_bind (at every start);
- loopback binds (127.0.0.1, another 127/8 address, ipc://) start without the warn
  line and without insecure_bind; a non-loopback bind with CURVE on starts without it too;
- a CURVE secret certificate readable by group or others makes the broker (and a resolver)
  exit 2 with "permissions 0644 for PATH are too open", naming the key; 0600 is accepted.
"""
import json
import os
import shutil
import socket
import subprocess

import pp_harness as h

args = h.parse_args()
ck = h.Checks()
wd = h.workdir("curve-security")
broker_bin = h.binary(args.build_dir, "pushpipe-broker")
resolver_bin = h.binary(args.build_dir, "pushpipe-resolver")
keygen = h.binary(args.build_dir, "pushpipe-keygen")


_runs = [0]


def run_broker(cfg, bind=None, label="b"):
    """Starts the broker; returns (exit code or None if it is running, output, proc)."""
    _runs[0] += 1
    label = "%s-%d" % (label, _runs[0])  # a log file of its own
    path = h.write_config(wd, cfg, "%s.json" % label)
    mport = h.free_port()
    argv = [broker_bin, "--config", path, "--metrics-port", mport]
    if bind:
        argv += ["--bind", bind]
    p = h.Proc(argv, os.path.join(wd, "%s.log" % label))
    try:
        h.wait_for(lambda: not p.alive() or h.port_free(mport) is False, 10,
                   what="broker %s to start or exit" % label)
    except AssertionError:
        pass
    if not p.alive():
        return p.stop(5), p.output(), None
    return None, p.output(), p


def refused(cfg, bind, what, key="broker.bind"):
    """bind (and broker.bind in cfg) may say PORT: a free base port."""
    base = h.free_ports(7)
    cfg = json.loads(json.dumps(cfg).replace("PORT", str(base)))
    rc, out, p = run_broker(cfg, bind.replace("PORT", str(base)), "refused")
    if p:
        p.stop(5)
    ck.check(rc == 2, "%s: the broker exits 2 (got %r)" % (what, rc))
    ck.check(("config: %s: " % key) in out and "is not loopback" in out and
             "curve.enabled is false" in out and '"insecure_bind": true' in out and
             "docs/security.md" in out,
             "%s: the message names %s, curve.enabled and insecure_bind (%s)"
             % (what, key, out.strip().splitlines()[-1][:200] if out.strip() else ""))
    ck.check(h.port_free(base), "%s: nothing bound on %d" % (what, base))


def started(cfg, bind, what, warn):
    base = h.free_ports(7)
    rc, out, p = run_broker(cfg, bind.replace("PORT", str(base)) if bind else None, "started")
    ck.check(p is not None, "%s: the broker starts (rc %r: %s)" % (what, rc, out[-300:]))
    if not p:
        return
    if bind and bind.startswith("tcp://"):
        host = bind[6:].rsplit(":", 1)[0]
        h.wait_port(base, 10, host="127.0.0.1" if host in ("0.0.0.0", "localhost") else host)
    out = p.output()
    ck.eq("event=insecure_bind" in out, warn,
          "%s: warn line event=insecure_bind %s" % (what, "logged" if warn else "absent"))
    if warn:
        line = ([ln for ln in out.splitlines() if "event=insecure_bind" in ln] + [""])[0]
        ck.check("level=warn" in line and "key=broker.bind" in line and "curve=off" in line,
                 "%s: the warn line says level=warn key=broker.bind curve=off (%s)"
                 % (what, line[:200]))
    ck.eq(p.stop(10), 0, "%s: exit 0 on SIGTERM" % what)


# ---- 1. binding beyond loopback with CURVE off -------------------------------------------
off = {"log_level": "info"}
refused(off, "tcp://0.0.0.0:PORT", "--bind 0.0.0.0, CURVE off")
refused(off, "tcp://*:PORT", "--bind *, CURVE off")
refused(dict(off, curve={"enabled": False}), "tcp://0.0.0.0:PORT",
        "--bind 0.0.0.0, curve.enabled false written out")
refused(dict(off, insecure_bind=False), "tcp://0.0.0.0:PORT", "insecure_bind false")
hostname = socket.gethostname()
if hostname not in ("localhost", ""):
    refused(off, "tcp://%s:PORT" % hostname, "--bind on the host name %s" % hostname)
refused(dict(off, broker={"bind": "tcp://0.0.0.0:PORT"}), "", "broker.bind in the file")

# ---- 2. insecure_bind: true starts, with a warn line at every start ----------------------
started(dict(off, insecure_bind=True), "tcp://0.0.0.0:PORT", "insecure_bind true", True)
started(dict(off, insecure_bind=True), "tcp://0.0.0.0:PORT", "insecure_bind true, again", True)

# ---- 3. loopback needs nothing ------------------------------------------------------------
started(off, "tcp://127.0.0.1:PORT", "127.0.0.1", False)
started(off, "tcp://127.0.0.2:PORT", "127.0.0.2 (127/8)", False)
# (ZeroMQ cannot bind "localhost": the launcher turns it into 127.0.0.1; tests/launcher.)
started(off, "ipc://%s/bk" % wd, "ipc://", False)
started(dict(off, insecure_bind=True), "tcp://127.0.0.1:PORT",
        "insecure_bind true on loopback (no warn: nothing insecure)", False)

# ---- 4. CURVE on: 0.0.0.0 is allowed ------------------------------------------------------
certs = os.path.join(wd, "certs")
allow = os.path.join(wd, "allow")
os.mkdir(allow)
for name in ("broker", "resolver"):
    subprocess.run([keygen, name, "--dir", certs], check=True, capture_output=True)
shutil.copy(os.path.join(certs, "resolver.cert"), allow)
curve = {"enabled": True,
         "server_secret_cert": os.path.join(certs, "broker.cert_secret"),
         "secret_cert": os.path.join(certs, "resolver.cert_secret"),
         "server_public": os.path.join(certs, "broker.cert"),
         "allow_dir": allow}
started(dict(off, curve=curve), "tcp://0.0.0.0:PORT", "CURVE on, 0.0.0.0", False)

# ---- 5. secret key files readable by group or others -------------------------------------
secret = os.path.join(certs, "broker.cert_secret")
ck.eq(os.stat(secret).st_mode & 0o777, 0o600, "pushpipe-keygen writes the secret file 0600")
for mode in (0o644, 0o640, 0o604):
    os.chmod(secret, mode)
    rc, out, p = run_broker(dict(off, curve=curve), "tcp://127.0.0.1:%d" % h.free_ports(7),
                            "perm")
    if p:
        p.stop(5)
    want = "permissions %04o for %s are too open" % (mode, secret)
    ck.check(rc == 2 and "config: curve.server_secret_cert: " in out and want in out,
             "broker, secret cert %04o: exit 2, '%s' naming curve.server_secret_cert (%r: %s)"
             % (mode, want, rc, out.strip()[-200:]))
os.chmod(secret, 0o600)
started(dict(off, curve=curve), "tcp://127.0.0.1:PORT", "secret cert 0600", False)

# The public path given, its _secret beside it too open: zcert_load would read the _secret.
os.chmod(secret, 0o644)
rc, out, p = run_broker(dict(off, curve=dict(curve, server_secret_cert=os.path.join(
    certs, "broker.cert"))), "tcp://127.0.0.1:%d" % h.free_ports(7), "perm-pub")
if p:
    p.stop(5)
ck.check(rc == 2 and "permissions 0644 for %s are too open" % secret in out,
         "the _secret file zcert_load reads is the one checked (%r: %s)" % (rc, out[-200:]))
os.chmod(secret, 0o600)

# A CURVE client (the resolver) with a world-readable secret_cert.
rsecret = os.path.join(certs, "resolver.cert_secret")
os.chmod(rsecret, 0o644)
rcfg = h.write_config(wd, dict(off, broker_address="tcp://127.0.0.1:%d" % h.free_ports(7),
                               curve=curve, resolver={"redis": {"host": "127.0.0.1",
                                                                "port": h.free_port()}}),
                      "resolver.json")
r = subprocess.run([resolver_bin, "--config", rcfg, "--metrics-port", "0"],
                   capture_output=True, text=True, timeout=20)
ck.check(r.returncode == 2 and "config: curve.secret_cert: permissions 0644 for %s are too open"
         % rsecret in r.stderr,
         "resolver, secret cert 0644: exit 2 naming curve.secret_cert (%d: %s)"
         % (r.returncode, r.stderr.strip()[-200:]))
ck.finish()
