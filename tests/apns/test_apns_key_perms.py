"""APNs .p8 keys readable by group or others are refused (docs/security.md, key files): the
real pushpipe-apns-sender exits 2 before connecting, with "permissions 0644 for PATH are too
open" naming the app's key_file; the same key at 0600 (and 0400) is accepted. As root, also the one exception, a secret as
Kubernetes mounts it for a non-root pod (owner root, group the pod's fsGroup, mode 0440):
the sender run as another user (setpriv) whose group is the file's accepts it, and refuses
it at 0444, at 0460, owned by a user that is not root, or with another group."""
import os
import shutil
import subprocess

import apns_env as E

env = E.Env("keyperms")
c = env.checks
sender_bin = E.h.binary(env.build_dir, "pushpipe-apns-sender")
p8 = os.path.join(env.wd, "AuthKey_%s.p8" % E.KEY_ID)
shutil.copy(os.path.join(env.pki, "AuthKey_%s.p8" % E.KEY_ID), p8)


def config(label):
    cfg = env.sender_config(apps={E.APP: env.token_app(key_file=p8)})
    return E.h.write_config(env.wd, cfg, "%s.json" % label)


for mode in (0o644, 0o640, 0o604, 0o444):
    os.chmod(p8, mode)
    r = subprocess.run([sender_bin, "--config", config("open-%o" % mode), "--metrics-port", "0"],
                       capture_output=True, text=True, timeout=20)
    want = "permissions %04o for %s are too open" % (mode, p8)
    c.check(r.returncode == 2 and "config: apns_sender.apps: %s.key_file: " % E.APP in r.stderr
            and want in r.stderr,
            ".p8 at %04o: exit 2 with '%s' naming %s.key_file (%d: %s)"
            % (mode, want, E.APP, r.returncode, r.stderr.strip()[-220:]))

for mode in (0o600, 0o400):
    os.chmod(p8, mode)
    s = env.sender("private-%o" % mode, env.sender_config(apps={E.APP: env.token_app(
        key_file=p8)}))
    c.check("too open" not in s.output(), ".p8 at %04o: accepted" % mode)
    c.eq(s.stop(), 0, ".p8 at %04o: exit 0 on SIGTERM" % mode)

# ---- the secret-mount exception (needs root to make files of other owners) -------------
if os.geteuid() == 0 and shutil.which("setpriv"):
    uid, gid, other_gid = 65534, 42424, 42425  # nobody; groups that need not exist by name
    mount = os.path.join(env.wd, "secret-mount")
    os.mkdir(mount)
    for d in (env.wd, mount):
        os.chmod(d, 0o755)  # the sender, as uid 65534, must reach its files
    shutil.copy(os.path.join(env.pki, "ca.pem"), os.path.join(mount, "ca.pem"))
    k8s_p8 = os.path.join(mount, "AuthKey_%s.p8" % E.KEY_ID)
    shutil.copy(p8, k8s_p8)
    cfg = env.sender_config(apps={E.APP: env.token_app(key_file=k8s_p8)})
    cfg["apns_sender"]["ca_file"] = os.path.join(mount, "ca.pem")
    cfg_path = E.h.write_config(mount, cfg, "k8s.json")
    os.chmod(cfg_path, 0o644)

    def as_pod(owner, group, mode):
        """Runs the sender as uid 65534 in group gid; returns (accepted, stderr)."""
        os.chown(k8s_p8, owner, group)
        os.chmod(k8s_p8, mode)
        pr = subprocess.Popen(["setpriv", "--reuid=%d" % uid, "--regid=%d" % gid,
                               "--clear-groups", sender_bin, "--config", cfg_path,
                               "--metrics-port", "0"], stderr=subprocess.PIPE, text=True)
        try:
            pr.wait(1.5)  # a config error exits 2 at once
        except subprocess.TimeoutExpired:
            pr.terminate()
        rc = pr.wait(10)
        err = pr.stderr.read()
        return rc == 0 and "too open" not in err, "rc %s: %s" % (rc, err.strip()[-200:])

    ok, why = as_pod(0, gid, 0o440)
    c.check(ok, "secret mount (root:fsGroup 0440) read by a pod user of that group: "
                "accepted (%s)" % why)
    for label, owner, group, mode in (("0444", 0, gid, 0o444), ("0460", 0, gid, 0o460),
                                      ("owner not root", 1, gid, 0o440),
                                      ("another group", 0, other_gid, 0o440)):
        ok, why = as_pod(owner, group, mode)
        c.check(not ok and "too open" in why, "secret mount, %s: refused (%s)" % (label, why))
else:
    print("note: not root (or no setpriv): the secret-mount exception is not tested", flush=True)
env.finish()
