"""libpushpipe (C) against a fake broker over real sockets: the exact bytes of every frame
it sends, in fire-and-forget and acknowledged mode, and how it handles rejections,
timeouts, late and malformed replies."""
import os
import subprocess
import time

import pp_harness
from fakebroker import FakeBroker, packb

args = pp_harness.parse_args()
t = pp_harness.Checks()
DRIVER = os.path.join(args.build_dir, "tests", "clients", "client_driver")


def run(address, lines, *flags, timeout=30):
    script = "".join("\t".join(f) + "\n" for f in lines)
    p = subprocess.run([DRIVER, address] + list(flags), input=script.encode(),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    return p.returncode, p.stdout.decode().splitlines(), p.stderr.decode()


DATA1 = {"alert": "hi", "n": 1, "f": 1.5, "l": [True, None, -200, 1099511627776, -1],
         "u": "h\u00e9llo \u2603", "o": {"x": {"y": []}}}
JSON1 = ('{"alert": "hi", "n": 1, "f": 1.5, "l": [true, null, -200, 1099511627776, -1],'
         ' "u": "h\\u00e9llo \u2603", "o": {"x": {"y": []}}}')
ALL_OPTS = ("id=abc-1;channels=apns;apns_push_type=alert;apns_priority=5;ttl=60;"
            "apns_collapse_id=c\u00e91;mqtt_qos=1")
ALL_OPTS_MAP = {"id": "abc-1", "channels": "apns", "apns_push_type": "alert",
                "apns_priority": 5, "ttl": 60, "apns_collapse_id": "c\u00e91", "mqtt_qos": 1}

fb = FakeBroker()
try:
    # --- fire-and-forget: the bytes of each frame ---------------------------------------
    good = [
        (("group", "7", JSON1, "-"), [1, "7", DATA1]),
        (("users", "1,2,u3", '{"a":{"b":[]}}', ALL_OPTS), [2, ["1", "2", "u3"], {"a": {"b": []}},
                                                          ALL_OPTS_MAP]),
        (("user", "9", "{}", "apns_expiration=0"), [3, "9", {}, {"apns_expiration": 0}]),
        (("raw3", "u1", packb({"raw": 1}).hex(), "-"), [3, "u1", {"raw": 1}]),
        (("raw2", "a,b", packb({"r": [1, 2]}).hex(), "channels=mqtt"),
         [2, ["a", "b"], {"r": [1, 2]}, {"channels": "mqtt"}]),
        (("raw1", "g", packb({"x": b"\x00\x01"}).hex(), "-"), [1, "g", {"x": b"\x00\x01"}]),
    ]
    bad = [
        (("group", "7", "[1,2]", "-"), "data must be a JSON object, got an array"),
        (("group", "7", '{"a":1,"a":2}', "-"), "duplicate"),
        (("user", "9", '{"a":', "-"), "bad JSON"),
        (("user", "9", '{"a":18446744073709551615}', "-"), "too big integer"),
        (("user", "9", "{}", "ttl=5;apns_expiration=5"), "exclusive"),
        (("user", "9", "{}", "channels=sms"), "channels"),
        (("raw3", "u1", packb([1]).hex(), "-"), "must be a msgpack map"),
        (("user", "9", "{}", "apns_priority=7"), "apns_priority"),
        (("user", "9", "{}", "mqtt_qos=3"), "mqtt_qos"),
        (("user", "9", "{}", "id=has space"), "printable ASCII"),
        (("user", "9", "{}", "apns_push_type=shout"), "apns_push_type"),
    ]
    # Interleave bad lines between good ones: a refused push must not disturb the next.
    lines = []
    for i, (line, _) in enumerate(good):
        lines.append(line)
        if i < len(bad):
            lines.append(bad[i][0])
    lines += [b[0] for b in bad[len(good):]]
    rc, out, err = run(fb.address, lines)
    t.eq(rc, 0, "driver exits 0 (stderr %r)" % err)
    t.eq(len(out), len(lines), "one result per line")
    results = dict(zip([tuple(x) for x in lines], out))
    for line, _ in good:
        t.eq(results.get(tuple(line)), "sent", "fire-and-forget %s reports sent" % line[0])
    for line, want in bad:
        got = results.get(tuple(line), "")
        t.check(got.startswith("error 1 ") and want in got,
                "%s %s refused locally as input error: %r" % (line[0], line[3], got))
    msgs = fb.wait_intake(len(good))
    for (line, frame), parts in zip(good, msgs):
        t.eq(parts, [packb(frame)], "intake bytes of %s %s" % (line[0], line[1]))
    time.sleep(0.3)
    t.eq(len(fb.intake), len(good), "refused pushes never reached the broker")
    t.eq(len(fb.submit), 0, "fire-and-forget uses only the intake socket")
    fb.clear()

    # --- acknowledged --------------------------------------------------------------------
    lines = [
        ("group", "7", '{"alert":"hi"}', "id=trace-1"),
        ("user", "9", '{"reject":1}', "-"),
        # Answered 300 ms after the 1000 ms timeout ... must not be taken for the answer to
        # the next push, which comes 500 ms after that push (so 200 ms later).
        ("user", "9", '{"late":1300}', "-"),
        ("user", "9", '{"late":500}', "-"),
        ("user", "9", '{"garbage":1}', "-"),
        ("user", "9", '{"extra":1}', "-"),
        ("users", "1,2", '{"alert":"after"}', "-"),
    ]
    rc, out, err = run(fb.address, lines, "--ack", "--timeout-ms", "1000")
    t.eq(rc, 0, "ack driver exits 0 (stderr %r)" % err)
    t.eq(out[0:1], ["accepted m1"], "accepted with the broker's message id")
    t.eq(out[1:2], ["rejected bad_data: test rejection"], "rejection with reason and detail")
    t.check(len(out) > 2 and out[2].startswith("error 2 timeout"),
            "no answer in time: timeout error (%r)" % out[2:3])
    t.eq(out[3:4], ["accepted late-500"], "after a timeout the next push gets its own answer")
    t.check(len(out) > 4 and out[4].startswith("error 4 malformed reply"),
            "non-msgpack reply is a transport error (%r)" % out[4:5])
    t.check(len(out) > 5 and out[5].startswith("error 4 malformed reply"),
            "reply with extra frames is a transport error (%r)" % out[5:6])
    t.eq(out[6:7], ["accepted m2"], "the client recovers after malformed replies")
    subs = fb.wait_submit(len(lines))
    t.eq(subs[0], [b"", packb([1, "7", {"alert": "hi"}, {"id": "trace-1"}])],
         "ack frame is [empty delimiter, client frame] with exact bytes")
    t.eq(subs[6], [b"", packb([2, ["1", "2"], {"alert": "after"}])], "last ack frame bytes")
    t.eq(len(fb.intake), 0, "acknowledged mode uses only the submit socket")
    fb.clear()
finally:
    fb.stop()

# --- two brokers, both silent: one attempt each, the very same bytes -------------------
fb1, fb2 = FakeBroker(), FakeBroker()
try:
    rc, out, err = run("%s,%s" % (fb1.address, fb2.address),
                       [("user", "9", '{"silent":1}', "-")], "--ack", "--timeout-ms", "300",
                       "--verbose")
    t.check(out and out[0].startswith("error 2 timeout") and "2 attempts over 2 brokers"
            in out[0] and "resends=1" in out[0], "two silent brokers: timeout after one "
            "attempt each (%r)" % out)
    cid = out[0].split("cid=")[1].split()[0] if out and "cid=" in out[0] else ""
    s1, s2 = fb1.wait_submit(1), fb2.wait_submit(1)
    t.eq(s1[0], [b"", packb([3, "9", {"silent": 1}, {"id": cid}])],
         "first broker: the frame with the generated id %r" % cid)
    t.eq(s2[0], s1[0], "second broker: the very same bytes")
    rc, out, err = run("%s,%s" % (fb1.address, fb2.address),
                       [("user", "9", "{}", "id=mine;mqtt_qos=1")], "--ack", "--multi")
    t.eq(out, ["accepted m1"], "pp_client_new_multi: accepted by the first broker")
    t.eq(fb1.wait_submit(2)[1], [b"", packb([3, "9", {}, {"id": "mine", "mqtt_qos": 1}])],
         "the caller's id is kept, no id added")
finally:
    fb1.stop()
    fb2.stop()

# --- no broker at all -----------------------------------------------------------------
absent = "tcp://127.0.0.1:%d" % pp_harness.free_ports(2)
rc, out, err = run(absent, [("user", "9", "{}", "-")], "--ack", "--timeout-ms", "200")
t.check(out and out[0].startswith("error 2 timeout"), "ack to an absent broker: timeout (%r)" % out)
rc, out, err = run(absent, [("user", "9", "{}", "-")], "--immediate", "--timeout-ms", "200")
t.check(out and out[0].startswith("error 2 timeout"),
        "immediate fire-and-forget to an absent broker: timeout (%r)" % out)
rc, out, err = run("nonsense", [("user", "9", "{}", "-")])
t.eq((rc, out), (2, ["error new bad address"]), "bad broker address refused by pp_client_new")

t.finish()
