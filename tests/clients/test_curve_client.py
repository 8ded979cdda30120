"""CurveZMQ on the client side: libpushpipe (pp_client_set_curve) and the Python client
(curve=...) reach a fake broker whose sockets are CURVE servers, and fail (time out)
without the keys or with the wrong server key."""
import os
import subprocess
import time

import zmq

import pp_harness
from fakebroker import FakeBroker, packb

import pushpipe

args = pp_harness.parse_args()
t = pp_harness.Checks()
DRIVER = os.path.join(args.build_dir, "tests", "clients", "client_driver")


def driver(address, lines, *flags):
    script = "".join("\t".join(f) + "\n" for f in lines)
    p = subprocess.run([DRIVER, address] + list(flags), input=script.encode(),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    return p.returncode, p.stdout.decode().splitlines()


fb = FakeBroker(curve=True)
try:
    pub, sec = (k.decode() for k in zmq.curve_keypair())
    other_pub = zmq.curve_keypair()[0].decode()
    keys = ["--curve", fb.server_public, pub, sec]

    rc, out = driver(fb.address, [("user", "9", '{"a":1}', "-")], "--ack", *keys)
    t.eq((rc, out), (0, ["accepted m1"]), "C library with CURVE keys: accepted")
    rc, out = driver(fb.address, [("group", "7", '{"c":1}', "-")], "--immediate", *keys)
    t.eq((rc, out), (0, ["sent"]), "C library fire-and-forget with CURVE keys: sent")
    msgs = fb.wait_intake(1)
    t.eq(msgs[0], [packb([1, "7", {"c": 1}])], "CURVE intake frame bytes")

    rc, out = driver(fb.address, [("user", "9", "{}", "-")], "--ack", "--timeout-ms", "500")
    t.check(out and out[0].startswith("error 2 timeout"),
            "C library without keys cannot talk to a CURVE broker (%r)" % out)
    rc, out = driver(fb.address, [("user", "9", "{}", "-")], "--ack", "--timeout-ms", "500",
                     "--curve", other_pub, pub, sec)
    t.check(out and out[0].startswith("error 2 timeout"),
            "C library with the wrong server key: timeout (%r)" % out)
    rc, out = driver(fb.address, [("user", "9", "{}", "-")], "--ack", "--curve",
                     fb.server_public, pub, "too-short")
    t.check(rc == 2 and out and out[0].startswith("error curve") and "Z85" in out[0],
            "C library refuses a malformed key (%r)" % out)

    ac = pushpipe.AckClient("127.0.0.1", fb.base, curve=(fb.server_public, pub, sec))
    r = ac(3, 9, {"py": 1})
    t.eq(r, pushpipe.Accepted("m2"), "Python with CURVE keys: accepted")
    ac.close()
    c = pushpipe.Client.from_address(fb.address, curve=(fb.server_public, pub, sec))
    c(2, [1, 2], {"py": 2})
    c.close()
    msgs = fb.wait_intake(2)
    t.eq(msgs[1], [packb([2, [1, 2], {"py": 2}])], "Python CURVE intake frame bytes")
    ac = pushpipe.AckClient("127.0.0.1", fb.base, timeout_ms=500)
    try:
        ac(3, 9, {})
        t.check(False, "Python without keys: Timeout")
    except pushpipe.Timeout:
        t.check(True, "Python without keys: Timeout")
    ac.close()
    time.sleep(0.2)
    t.eq(len(fb.submit), 2, "only the two keyed ack pushes reached the broker")
finally:
    fb.stop()
t.finish()
