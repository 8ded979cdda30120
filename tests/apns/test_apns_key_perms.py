"""APNs .p8 keys readable by group or others are refused (docs/security.md, key files): the
real pushpipe-apns-sender exits 2 before connecting, with "permissions 0644 for PATH are too
open" naming the app's key_file; the same key at 0600 (and 0400) is accepted."""
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
env.finish()
