"""The Python client against a fake broker over real sockets: the seed's exact call
style (in a separate process that exits right after sending), keyword options,
acknowledged mode, and every refusal."""
import os
import subprocess
import sys
import time

import pp_harness
from fakebroker import FakeBroker, packb

import pushpipe
from pushpipe import AckClient, Client

args = pp_harness.parse_args()
t = pp_harness.Checks()


def raises(exc, fn, *a, **kw):
    try:
        fn(*a, **kw)
    except exc as e:
        return e
    except Exception as e:  # the wrong exception is a failure, not a crash of the test
        return AssertionError("raised %r instead of %s" % (e, exc.__name__))
    return None


SEED_SCRIPT = r'''
import sys
from pushpipe import Client

setting = {"push": {"host": "127.0.0.1", "port": int(sys.argv[1])}}
client = Client(setting["push"]["host"], setting["push"]["port"])

def push_to_group(group_id, json_data):
    client(1, group_id, json_data)

def push_to_users(user_list, json_data):
    client(2, user_list, json_data)

def push_to_user(user_id, json_data):
    client(3, user_id, json_data)

push_to_group(7, {"alert": "hello group", "badge": 1})
push_to_users([1, 2, 3], {"alert": "hello users"})
push_to_user(9, {"alert": "hello user", "sound": "default"})
push_to_users((4, "u5"), '{"alert": "json text"}')
'''

fb = FakeBroker()
try:
    # --- the seed's call style, unchanged, in a process that exits at once ---------------
    p = subprocess.run([sys.executable, "-c", SEED_SCRIPT, str(fb.base)],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    t.eq((p.returncode, p.stderr), (0, b""), "seed-style script runs and exits 0")
    want = [
        [1, 7, {"alert": "hello group", "badge": 1}],
        [2, [1, 2, 3], {"alert": "hello users"}],
        [3, 9, {"alert": "hello user", "sound": "default"}],
        [2, [4, "u5"], {"alert": "json text"}],
    ]
    msgs = fb.wait_intake(len(want))
    for frame, parts in zip(want, msgs):
        t.eq(parts, [packb(frame)], "seed call %d %r: exact bytes" % (frame[0], frame[1]))
    t.eq(len(fb.submit), 0, "fire-and-forget uses the intake (base port + 0) only")
    fb.clear()

    # --- from_address, keyword options, context manager -----------------------------------
    with Client.from_address(fb.address) as c:
        t.eq(c.endpoint, "tcp://127.0.0.1:%d" % fb.base, "from_address: intake endpoint")
        c(1, "g1", {"a": 1}, id="py-1", channels="apns", apns_push_type="alert",
          apns_priority=10, ttl=30, apns_collapse_id="cid", mqtt_qos=1)
        c(3, 9, {"a": 2}, priority=5, expiration=0, collapse_id="x", qos=0)
        c.push_group(7, {"g": 1})
        c.push_users([1], {"u": 1}, channels="mqtt")
        c.push_user(b"bytes-id", {"b": 1}, id=None)
    msgs = fb.wait_intake(5)
    t.eq(msgs[0], [packb([1, "g1", {"a": 1}, {
        "id": "py-1", "channels": "apns", "apns_push_type": "alert", "apns_priority": 10,
        "ttl": 30, "apns_collapse_id": "cid", "mqtt_qos": 1}])], "all options, in order")
    t.eq(msgs[1], [packb([3, 9, {"a": 2}, {"apns_priority": 5, "apns_expiration": 0,
                                           "apns_collapse_id": "x", "mqtt_qos": 0}])],
         "short option names map to the frame's names")
    t.eq(msgs[2], [packb([1, 7, {"g": 1}])], "push_group")
    t.eq(msgs[3], [packb([2, [1], {"u": 1}, {"channels": "mqtt"}])], "push_users")
    t.eq(msgs[4], [packb([3, b"bytes-id", {"b": 1}])], "bytes id sent as bin; None option omitted")
    fb.clear()

    # --- refusals happen before anything is sent -------------------------------------------
    c = Client("127.0.0.1", fb.base)
    bad = [
        (ValueError, (4, 1, {})), (ValueError, (True, 1, {})),
        (TypeError, (1, True, {})), (TypeError, (1, 1.5, {})), (TypeError, (1, None, {})),
        (ValueError, (1, "", {})), (TypeError, (2, 5, {})), (TypeError, (2, "abc", {})),
        (ValueError, (2, [], {})), (TypeError, (2, [1, [2]], {})),
        (TypeError, (3, 1, [1, 2])), (TypeError, (3, 1, None)),
        (ValueError, (3, 1, "{not json")), (TypeError, (3, 1, "[1]")),
        (TypeError, (3, 1, {1: "int key"})), (TypeError, (3, 1, {"b": b"bytes"})),
        (ValueError, (3, 1, {"f": float("nan")})), (ValueError, (3, 1, {"f": [float("inf")]})),
        (TypeError, (3, 1, {"o": object()})), (ValueError, (3, 2 ** 64, {})),
    ]
    for exc, a in bad:
        e = raises(exc, c, *a)
        t.check(isinstance(e, exc), "client%r raises %s (%r)" % (a, exc.__name__, e))
    bad_opts = [
        (TypeError, {"colour": "red"}), (ValueError, {"channels": "sms"}),
        (ValueError, {"apns_priority": 7}), (TypeError, {"ttl": "60"}),
        (ValueError, {"ttl": -1}), (ValueError, {"ttl": 5, "apns_expiration": 5}),
        (ValueError, {"mqtt_qos": 3}), (TypeError, {"qos": True}),
        (ValueError, {"id": "has space"}), (TypeError, {"id": ""}),
        (ValueError, {"apns_push_type": "shout"}), (ValueError, {"collapse_id": "x" * 65}),
        (TypeError, {"priority": 5, "apns_priority": 5}),
    ]
    for exc, kw in bad_opts:
        e = raises(exc, c, 3, 9, {}, **kw)
        t.check(isinstance(e, exc), "option %r raises %s (%r)" % (kw, exc.__name__, e))
    c.close()
    time.sleep(0.3)
    t.eq(len(fb.intake), 0, "nothing refused reached the broker")
    for addr in ["127.0.0.1:5560", "tcp://h", "tcp://h:x", "tcp://h:65533", "http://h:1", "ipc://"]:
        e = raises(ValueError, pushpipe.endpoint, addr, "intake")
        t.check(isinstance(e, ValueError), "endpoint(%r) refused" % addr)
    t.eq(pushpipe.endpoint("ipc:///run/pp", "submit"), "ipc:///run/pp-submit", "ipc endpoint")

    # --- acknowledged ----------------------------------------------------------------------
    ac = AckClient("127.0.0.1", fb.base, timeout_ms=300)
    t.eq(ac.endpoint, "tcp://127.0.0.1:%d" % (fb.base + 1), "ack uses base port + 1")
    r = ac(1, 7, {"alert": "hi"}, id="t-1")
    t.check(isinstance(r, pushpipe.Accepted) and r.msg_id == "m1", "accepted with id m1 (%r)" % r)
    e = raises(pushpipe.Rejected, ac, 3, 9, {"reject": 1})
    t.check(isinstance(e, pushpipe.Rejected) and e.reason == "bad_data"
            and e.detail == "test rejection", "rejection raises Rejected(reason, detail) (%r)" % e)
    r = ac.send(3, 9, {"reject": 1}, raise_on_reject=False)
    t.check(isinstance(r, pushpipe.Rejected) and r.reason == "bad_data",
            "raise_on_reject=False returns the rejection (%r)" % r)
    # Answered 300 ms after the timeout, 200 ms before the answer to the next push: a
    # client that kept its socket would take it for that answer.
    slow = AckClient("127.0.0.1", fb.base, timeout_ms=1000)
    e = raises(pushpipe.Timeout, slow, 3, 9, {"late": 1300})
    t.check(isinstance(e, pushpipe.Timeout), "no answer in time raises Timeout (%r)" % e)
    r = slow(3, 9, {"late": 500})
    t.eq(r, pushpipe.Accepted("late-500"), "after a timeout the next push gets its own answer")
    slow.close()
    e = raises(pushpipe.Error, ac, 3, 9, {"garbage": 1})
    t.check(isinstance(e, pushpipe.Error) and "malformed" in str(e),
            "non-msgpack reply raises Error (%r)" % e)
    e = raises(pushpipe.Error, ac, 3, 9, {"extra": 1})
    t.check(isinstance(e, pushpipe.Error) and "malformed" in str(e),
            "three-frame reply raises Error (%r)" % e)
    r = Client.from_address(fb.address, ack=True)(2, [1, 2], {"x": 1})
    t.eq(r, pushpipe.Accepted("m2"), "Client(ack=True) works the same; recovered after errors")
    r = ac(3, 9, {"y": 1})
    t.eq(r, pushpipe.Accepted("m3"), "the ack client recovers after malformed replies")
    subs = fb.wait_submit(9)
    t.eq(subs[0], [b"", packb([1, 7, {"alert": "hi"}, {"id": "t-1"}])],
         "ack sends [empty delimiter, frame] with exact bytes")
    ac.close()
    fb.clear()
finally:
    fb.stop()

# --- several brokers: address lists, and a resend is the same bytes with an id ----------
t.eq(pushpipe.addresses(" tcp://a:5560 , ipc:///run/pp"), ["tcp://a:5560", "ipc:///run/pp"],
     "addresses: comma-separated, blanks ignored")
t.eq(pushpipe.addresses(("tcp://a:5560",)), ["tcp://a:5560"], "addresses: a tuple")
for bad in ["tcp://a:5560,", ",tcp://a:5560", "tcp://a:5560,tcp://a:5560", [],
            ["tcp://a:5560,tcp://b:5560"], "tcp://a:5560,nonsense",
            ",".join("tcp://h:%d" % (5560 + 10 * i) for i in range(17))]:
    e = raises(ValueError, pushpipe.addresses, bad)
    t.check(isinstance(e, ValueError), "addresses(%r) refused" % (bad,))
e = raises(ValueError, Client.from_address, "tcp://a:5560", ack=True, retries=101)
t.check(isinstance(e, ValueError), "retries above 100 refused")
fb1, fb2 = FakeBroker(), FakeBroker()
try:
    ac = AckClient.from_address([fb1.address, fb2.address], timeout_ms=300)
    t.eq((ac.retries, ac.endpoint), (1, "tcp://127.0.0.1:%d" % (fb1.base + 1)),
         "two brokers: one retry by default, the first broker first")
    e = raises(pushpipe.Timeout, ac, 3, 9, {"silent": 1})
    t.check(isinstance(e, pushpipe.Timeout) and "2 attempts over 2 brokers" in str(e),
            "both silent: Timeout after one attempt each (%r)" % e)
    s1, s2 = fb1.wait_submit(1), fb2.wait_submit(1)
    cid = ac.message_id or ""
    t.check(cid.startswith("pp-") and len(cid) == 19, "a client id was generated (%r)" % cid)
    t.eq(s1[0], [b"", packb([3, 9, {"silent": 1}, {"id": cid}])],
         "first broker: the frame with the generated id")
    t.eq(s2[0], s1[0], "second broker: the very same bytes")
    t.eq(ac.resends, 1, "one resend counted")
    r = ac(3, 9, {"ok": 1}, id="mine")
    t.eq((r.broker, ac.message_id), (fb1.address, "mine"),
         "after a failed push the next starts at the next broker (the first again)")
    ac.close()
    # One broker, default retries: the frame is as before, without an id.
    ac = AckClient.from_address(fb1.address, timeout_ms=300)
    fb1.clear()
    raises(pushpipe.Timeout, ac, 3, 9, {"silent": 1})
    t.eq(fb1.wait_submit(1)[0], [b"", packb([3, 9, {"silent": 1}])],
         "one broker: no id added, no resend")
    ac.close()
finally:
    fb1.stop()
    fb2.stop()

# --- no broker --------------------------------------------------------------------------
absent = pp_harness.free_ports(2)
c = Client("127.0.0.1", absent, sndhwm=5, timeout_ms=100, linger_ms=0)
e = None
for i in range(200):
    e = raises(pushpipe.Timeout, c, 3, 9, {"i": i})
    if e is not None:
        break
t.check(isinstance(e, pushpipe.Timeout) and 0 < i < 200,
        "fire-and-forget without a broker: queues up to the HWM, then Timeout (%d sent, %r)"
        % (i, e))
c.close()
c = Client("127.0.0.1", absent, immediate=True, timeout_ms=200, linger_ms=0)
e = raises(pushpipe.Timeout, c, 3, 9, {})
t.check(isinstance(e, pushpipe.Timeout), "immediate=True without a broker: first push Timeout (%r)" % e)
c.close()
ac = AckClient("127.0.0.1", absent, timeout_ms=200)
e = raises(pushpipe.Timeout, ac, 3, 9, {})
t.check(isinstance(e, pushpipe.Timeout), "ack without a broker: Timeout (%r)" % e)
ac.close()

t.finish()
