"""pushpipe-send against a fake broker over real sockets: the bytes it sends for each
flag, its output in acknowledged mode, and that every error path exits non-zero with a
message."""
import os
import subprocess
import time

import pp_harness
from fakebroker import FakeBroker, packb

args = pp_harness.parse_args()
t = pp_harness.Checks()
SEND = os.path.join(args.build_dir, "clients", "c", "pushpipe-send")


def send(argv, stdin=b"", env=None, timeout=30):
    e = dict(os.environ)
    e.pop("PUSHPIPE_BROKER", None)
    if env:
        e.update(env)
    p = subprocess.run([SEND] + argv, input=stdin, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, env=e, timeout=timeout)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


fb = FakeBroker()
B = ["--broker", fb.address]
try:
    # --- what reaches the broker ---------------------------------------------------------
    cases = [
        (B + ["--group", "7", '{"alert":"hi"}'], b"", [1, "7", {"alert": "hi"}]),
        (B + ["--user", "9", "-"], b'{"from":"stdin"}\n', [3, "9", {"from": "stdin"}]),
        (B + ["--user", "u-9"], b'{"n":[1,2.5,null]}', [3, "u-9", {"n": [1, 2.5, None]}]),
        (["--users", "1,2,3", "--id", "cli-1", "--channels", "apns", "--push-type",
          "background", "--priority", "5", "--ttl", "3600", "--collapse-id", "c1", "--qos",
          "2", '{"a":{"b":true}}'], b"",
         [2, ["1", "2", "3"], {"a": {"b": True}},
          {"id": "cli-1", "channels": "apns", "apns_push_type": "background",
           "apns_priority": 5, "ttl": 3600, "apns_collapse_id": "c1", "mqtt_qos": 2}]),
        (B + ["--user", "9", "--expiration", "0", "--channels", "mqtt", "{}"], b"",
         [3, "9", {}, {"channels": "mqtt", "apns_expiration": 0}]),
    ]
    for argv, stdin, frame in cases:
        env = None if "--broker" in argv else {"PUSHPIPE_BROKER": fb.address}
        rc, out, err = send(argv, stdin, env)
        t.eq((rc, out, err), (0, "", ""), "pushpipe-send %s exits 0 silently" % " ".join(argv[2:4]))
    msgs = fb.wait_intake(len(cases))
    for (argv, _, frame), parts in zip(cases, msgs):
        t.eq(parts, [packb(frame)], "bytes of pushpipe-send %s" % " ".join(argv[-3:]))
    fb.clear()

    # --- acknowledged ----------------------------------------------------------------------
    rc, out, err = send(B + ["--ack", "--group", "7", '{"alert":"hi"}'])
    t.eq((rc, out), (0, "accepted m1\n"), "--ack prints accepted <msg_id>, exit 0")
    subs = fb.wait_submit(1)
    t.eq(subs[0], [b"", packb([1, "7", {"alert": "hi"}])], "--ack sends [empty, frame]")
    rc, out, err = send(B + ["--ack", "--user", "9", '{"reject":1}'])
    t.eq((rc, out), (3, "rejected bad_data: test rejection\n"),
         "--ack rejection prints reason and detail, exit 3")
    rc, out, err = send(B + ["--ack", "--timeout-ms", "300", "--user", "9", '{"silent":1}'])
    t.check(rc == 1 and "timeout" in err, "--ack without an answer: exit 1, timeout (%d %r)"
            % (rc, err))
    rc, out, err = send(B + ["--ack", "--timeout-ms", "2000", "--user", "9", '{"garbage":1}'])
    t.check(rc == 1 and "malformed reply" in err, "--ack malformed reply: exit 1 (%d %r)"
            % (rc, err))
    fb.clear()

    # --- help ------------------------------------------------------------------------------
    rc, out, err = send(["--help"])
    t.check(rc == 0 and out.startswith("usage: pushpipe-send") and "--collapse-id" in out,
            "--help prints the usage, exit 0")

    # --- every error path: non-zero exit and a message, nothing sent -----------------------
    big = b'{"a":"' + b"x" * (1024 * 1024 + 10) + b'"}'
    errors = [
        ([], b"", 2, "give one of --group, --users, --user"),
        (["--group", "7", "--user", "9", "{}"], b"", 2, "only one of"),
        (["--group", "7", '{"a":'], b"", 2, "bad JSON"),
        (["--group", "7", "[1]"], b"", 2, "must be a JSON object"),
        (["--group", "7", '{"a":1,"a":1}'], b"", 2, "duplicate"),
        (["--users", "1,,2", "{}"], b"", 2, "comma-separated list of ids, got '1,,2'"),
        (["--users", "", "{}"], b"", 2, "comma-separated"),
        (["--user", "", "{}"], b"", 2, "empty"),
        (["--user", "9", "--priority", "7", "{}"], b"", 2, "--priority"),
        (["--user", "9", "--qos", "3", "{}"], b"", 2, "--qos"),
        (["--user", "9", "--ttl", "-1", "{}"], b"", 2, "--ttl"),
        (["--user", "9", "--ttl", "soon", "{}"], b"", 2, "--ttl"),
        (["--user", "9", "--ttl", "5", "--expiration", "5", "{}"], b"", 2, "exclusive"),
        (["--user", "9", "--timeout-ms", "x", "{}"], b"", 2, "--timeout-ms"),
        (["--user", "9", "--channels", "sms", "{}"], b"", 2, "channels"),
        (["--user", "9", "--push-type", "shout", "{}"], b"", 2, "apns_push_type"),
        (["--user", "9", "--id", "a b", "{}"], b"", 2, "option id"),
        (["--user", "9", "--bogus", "{}"], b"", 2, "unknown option '--bogus'"),
        (["--user"], b"", 2, "option '--user' needs a value"),
        (["--user", "9", "{}", "{}"], b"", 2, "unexpected argument"),
        (["--user", "9"], b"", 2, "bad JSON"),  # empty stdin
        (["--user", "9", "-"], b"{} trailing", 2, "bad JSON"),
        (["--user", "9"], b'{"a":"\x00"}', 2, "NUL"),
        (["--user", "9"], big, 2, "larger than"),
        (["--broker", "nonsense", "--user", "9", "{}"], b"", 2, "bad broker address"),
        (["--broker", "%s,%s" % (fb.address, fb.address), "--user", "9", "{}"], b"", 2,
         "bad broker address"),
        (["--broker", fb.address + ",", "--user", "9", "{}"], b"", 2, "bad broker address"),
        (["--retries", "1", "--user", "9", "{}"], b"", 2, "--retries needs --ack"),
        (["--ack", "--retries", "101", "--user", "9", "{}"], b"", 2, "--retries must be"),
    ]
    for argv, stdin, want_rc, want in errors:
        full = argv if "--broker" in argv else B + argv
        rc, out, err = send(full, stdin)
        t.check(rc == want_rc and want in err and err.startswith("pushpipe-send: "),
                "pushpipe-send %s -> exit %d with '%s' (got %d %r)"
                % (" ".join(argv)[:60], want_rc, want, rc, err[:200]))
    time.sleep(0.3)
    t.eq((len(fb.intake), len(fb.submit)), (0, 0), "no error path sent anything")
finally:
    fb.stop()

# --- no broker: fire-and-forget does not report success for a push nobody took ----------
absent = "tcp://127.0.0.1:%d" % pp_harness.free_ports(2)
rc, out, err = send(["--broker", absent, "--timeout-ms", "300", "--user", "9", "{}"])
t.check(rc == 1 and "timeout" in err, "no broker, fire-and-forget: exit 1 timeout (%d %r)"
        % (rc, err))
rc, out, err = send(["--broker", absent, "--ack", "--timeout-ms", "300", "--user", "9", "{}"])
t.check(rc == 1 and "timeout" in err, "no broker, --ack: exit 1 timeout (%d %r)" % (rc, err))
rc, out, err = send(["--timeout-ms", "200", "--user", "9", "{}"],
                    env={"PUSHPIPE_BROKER": absent})
t.check(rc == 1 and "timeout" in err, "PUSHPIPE_BROKER is used (absent broker: timeout)")
two_absent = "%s,tcp://127.0.0.1:%d" % (absent, pp_harness.free_ports(2))
rc, out, err = send(["--ack", "--timeout-ms", "200", "--retries", "2", "--user", "9", "{}"],
                    env={"PUSHPIPE_BROKER": two_absent})
t.check(rc == 1 and "3 attempts over 2 brokers" in err and "resent 2 time(s)" in err,
        "PUSHPIPE_BROKER list, --retries 2: three attempts, exit 1 (%d %r)" % (rc, err))

t.finish()
