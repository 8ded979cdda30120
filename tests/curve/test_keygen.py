"""pushpipe-keygen writes a czmq certificate pair that czmq and pyzmq both read."""
import os
import stat
import subprocess

import zmq.auth

import pp_harness as h

args = h.parse_args()
ck = h.Checks()
wd = h.workdir("keygen")
keygen = h.binary(args.build_dir, "pushpipe-keygen")
d = os.path.join(wd, "certs")


def run(*argv):
    return subprocess.run([keygen] + list(argv), capture_output=True, text=True, timeout=30)


r = run("broker", "--dir", d)
ck.eq(r.returncode, 0, "keygen exits 0 (%s)" % r.stderr.strip())
pub, sec = os.path.join(d, "broker.cert"), os.path.join(d, "broker.cert_secret")
ck.check(os.path.isfile(pub) and os.path.isfile(sec), "writes NAME.cert and NAME.cert_secret")
ck.eq(stat.S_IMODE(os.stat(sec).st_mode), 0o600, "the secret file is mode 0600")
ck.eq(stat.S_IMODE(os.stat(pub).st_mode), 0o644, "the public file is mode 0644")
with open(pub) as f:
    ptext = f.read()
ck.check("secret-key" not in ptext, "the public file holds no secret key")
p1, s1 = zmq.auth.load_certificate(pub)
p2, s2 = zmq.auth.load_certificate(sec)
ck.check(len(p1) == 40 and s1 is None, "pyzmq reads the public certificate")
ck.check(p2 == p1 and s2 is not None and len(s2) == 40, "pyzmq reads the secret certificate, "
                                                         "same public key")
ck.eq(zmq.curve_public(s2), p1, "the secret key belongs to the public key")
ck.check(p1.decode() in r.stdout, "prints the public key")

r = run("broker", "--dir", d)
ck.eq(r.returncode, 1, "refuses to overwrite an existing pair")
with open(pub) as f:
    ck.eq(f.read(), ptext, "and leaves it as it was")
r = run("broker", "--dir", d, "--force")
p3, _ = zmq.auth.load_certificate(pub)
ck.check(r.returncode == 0 and p3 != p1, "--force writes a new pair")
ck.eq(run("../evil", "--dir", d).returncode, 2, "a NAME with a slash is refused")
ck.eq(run("", "--dir", d).returncode, 2, "an empty NAME is refused")
ck.eq(run("x" * 65, "--dir", d).returncode, 2, "a NAME over 64 characters is refused")
ck.eq(run("client").returncode, 2, "--dir is required")
r = run("client", "--dir", "/proc/nonexistent/x")
ck.eq(r.returncode, 1, "an unwritable directory fails with exit 1")
ck.finish()
