"""libpushpipe as its users get it: `cmake --install --component pushpipe` into a
temporary prefix, then programs built only with `pkg-config pushpipe` (shared and
static) that push to a fake broker, and the installed pushpipe-send."""
import glob
import os
import shutil
import subprocess

import pp_harness
from fakebroker import FakeBroker, packb

args = pp_harness.parse_args(
    lambda ap: ap.add_argument("--sanitize", action="store_true",
                               help="build test programs with ASan+UBSan (PP_SANITIZE builds)"))
SAN = " -fsanitize=address,undefined" if args.sanitize else ""
t = pp_harness.Checks()
wd = pp_harness.workdir("clients-install")
prefix = os.path.join(wd, "prefix")

PROGRAM = r'''
#include <pushpipe.h>
#include <stdio.h>

int main(int argc, char **argv)
{
    pp_client_t *c = pp_client_new(argv[1], 0);
    if (!c)
        return 2;
    const char *uids[] = {"1", "2"};
    pp_push_options_t o = {0};
    o.channels = "mqtt";
    int rc = pp_client_push_users(c, uids, 2, "{\"from\":\"installed\"}", &o, NULL);
    if (rc != 0)
        fprintf(stderr, "%s\n", pp_client_error(c));
    pp_client_destroy(&c);
    return rc ? 1 : 0;
}
'''


def sh(cmd, env=None):
    e = dict(os.environ)
    if env:
        e.update(env)
    p = subprocess.run(cmd, shell=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       env=e, timeout=120)
    return p.returncode, p.stdout.decode()


rc, out = sh("cmake --install %s --component pushpipe --prefix %s" % (args.build_dir, prefix))
t.eq(rc, 0, "cmake --install --component pushpipe (%s)" % out[-300:])
pcs = glob.glob(os.path.join(prefix, "lib*", "**", "pushpipe.pc"), recursive=True)
t.eq(len(pcs), 1, "pushpipe.pc installed under lib*/pkgconfig (%r)" % pcs)
libdir = os.path.dirname(os.path.dirname(pcs[0])) if pcs else os.path.join(prefix, "lib")
for f in ["include/pushpipe.h", "bin/pushpipe-send"]:
    t.check(os.path.isfile(os.path.join(prefix, f)), "installed %s" % f)
t.check(os.path.isfile(os.path.join(libdir, "libpushpipe.a")), "installed libpushpipe.a")
t.check(os.path.islink(os.path.join(libdir, "libpushpipe.so")), "installed libpushpipe.so link")
t.check(not os.path.exists(os.path.join(prefix, "include", "pp_reply.h")),
        "internal headers are not installed")

pcenv = {"PKG_CONFIG_PATH": os.path.dirname(pcs[0]) if pcs else ""}
rc, cflags = sh("pkg-config --cflags --libs pushpipe", pcenv)
t.check(rc == 0 and "-lpushpipe" in cflags and prefix in cflags,
        "pkg-config points into the install prefix (%r)" % cflags.strip())

# The shared library needs only libzmq, msgpack-c and jansson: not ppcommon's czmq or
# libmicrohttpd.
rc, ldd = sh("ldd %s" % os.path.join(libdir, "libpushpipe.so"))
t.check(rc == 0 and "libzmq" in ldd and "libmsgpackc" in ldd and "libjansson" in ldd,
        "libpushpipe.so links libzmq, msgpackc, jansson")
t.check("libczmq" not in ldd and "libmicrohttpd" not in ldd,
        "libpushpipe.so does not pull czmq or libmicrohttpd")
rc, syms = sh("nm -D --defined-only %s" % os.path.join(libdir, "libpushpipe.so"))
exported = sorted(l.split()[-1] for l in syms.splitlines() if " T " in l)
t.check(exported and all(s.startswith("pp_client_") for s in exported),
        "only pp_client_* is exported (%s)" % ", ".join(s for s in exported
                                                        if not s.startswith("pp_client_")))

src = os.path.join(wd, "prog.c")
with open(src, "w") as f:
    f.write(PROGRAM)
cc = shutil.which("cc") or "gcc"
shared = os.path.join(wd, "prog-shared")
rc, out = sh("%s -std=c11 -Wall -Werror%s %s -o %s $(pkg-config --cflags --libs pushpipe)"
             % (cc, SAN, src, shared), pcenv)
t.eq(rc, 0, "a program builds with pkg-config pushpipe (shared) (%s)" % out[-500:])
static = os.path.join(wd, "prog-static")
rc, out = sh("%s -std=c11 -Wall -Werror%s %s -o %s $(pkg-config --cflags pushpipe) "
             "-Wl,-Bstatic -lpushpipe -Wl,-Bdynamic "
             "$(pkg-config --static --libs pushpipe | sed 's/-lpushpipe//')"
             % (cc, SAN, src, static), pcenv)
t.eq(rc, 0, "a program builds with libpushpipe.a and pkg-config --static (%s)" % out[-500:])
rc, ldd = sh("ldd %s" % static)
t.check("libpushpipe" not in ldd, "the static build does not need libpushpipe.so")

fb = FakeBroker()
try:
    rc, out = sh("%s %s" % (shared, fb.address), {"LD_LIBRARY_PATH": libdir})
    t.eq(rc, 0, "shared program pushes (%s)" % out)
    rc, out = sh("%s %s" % (static, fb.address))
    t.eq(rc, 0, "static program pushes (%s)" % out)
    # The installed pushpipe-send finds its library through its RPATH.
    rc, out = sh("env -u LD_LIBRARY_PATH %s --broker %s --group 7 '{\"x\":1}'"
                 % (os.path.join(prefix, "bin", "pushpipe-send"), fb.address))
    t.eq(rc, 0, "installed pushpipe-send runs without LD_LIBRARY_PATH (%s)" % out)
    msgs = fb.wait_intake(3)
    want = packb([2, ["1", "2"], {"from": "installed"}, {"channels": "mqtt"}])
    t.eq(msgs[0], [want], "shared program's frame bytes")
    t.eq(msgs[1], [want], "static program's frame bytes")
    t.eq(msgs[2], [packb([1, "7", {"x": 1}])], "installed pushpipe-send's frame bytes")
finally:
    fb.stop()
shutil.rmtree(wd, ignore_errors=True)
t.finish()
