"""Resolver rules end to end: a real redis-server, the real pushpipe-resolver, and this
script playing the broker. Each case asserts the exact APNS/MQTT deliveries produced."""
import json

import sys

sys.dont_write_bytecode = True  # no __pycache__ next to rhelp.py in the source tree

import pp_harness as h  # noqa: E402
import rhelp as R  # noqa: E402

args = h.parse_args()
c = h.Checks()
wd = h.workdir("resolver-rules")
redis = h.Redis(wd)
r = redis.client()
base = h.free_ports(7)
# A short heartbeat (hub timeout 3 x 250 ms): a resolver that does not tick the link in a
# long loop (the 20,000-member scan, the batching of 1,200 tokens) would be declared dead.
broker = R.Broker(base, heartbeat_ms=250)
mport = h.free_port()
proc = R.start_resolver(args, wd, broker, R.resolver_config(redis.port, heartbeat_ms=250),
                        metrics_port=mport)
h.wait_port(mport)


def metric(name, **labels):
    return h.metric(mport, name, **labels)


T = {i: R.token(i) for i in range(1, 40)}
# --- users of the old service's shape -------------------------------------------------
R.set_user(r, "u1", T[1], "com.a", "develop", "0")      # APNs sandbox
R.set_user(r, "u2", T[2], "com.a", "produce", "")       # APNs production
R.set_user(r, "u3", T[3], "com.b")                      # version missing -> default
R.set_user(r, "u4", T[4], "com.a", "beta")              # other version -> default
R.set_user(r, "u5", T[5], "com.a", "produce", "true")   # focus -> MQTT
R.set_user(r, "u6", T[6], "com.a", "produce", "1")      # focus -> MQTT
R.set_user(r, "u7", T[7], "com.a", "produce", "TRUE")   # focus -> MQTT
R.set_user(r, "u8", T[8], "com.a", "develop", "false")  # not focused -> APNs
R.set_user(r, "u9", None, "com.a", "produce")           # no token -> MQTT
# u10 has no hash at all -> MQTT
R.set_user(r, "u11", "not-a-token!", "com.a", "produce")  # invalid token -> MQTT, counted
R.set_user(r, "u12", T[12], None, "produce")             # token without ident -> MQTT
R.set_user(r, "u13", T[13], "com.a", "produce", "yes")   # focus -> MQTT
members = ["u%d" % i for i in range(1, 14)]
r.sadd("GroupAppleUser:g1", *members)

APNS_EXPECTED = {("u1", T[1], "com.a", "sandbox"), ("u2", T[2], "com.a", "production"),
                 ("u3", T[3], "com.b", "production"), ("u4", T[4], "com.a", "production"),
                 ("u8", T[8], "com.a", "sandbox")}
MQTT_USERS = ["u5", "u6", "u7", "u9", "u10", "u11", "u12", "u13"]


def run(msg_id, push_type, ids, data, opts=None, want_apns=None, want_topics=None):
    broker.send(msg_id, push_type, ids, data, opts)
    n_a = len(want_apns or ())
    n_t = len(want_topics or ())
    broker.collect(until=lambda: len(broker.apns_targets(msg_id)) >= n_a and
                   len(broker.topics(msg_id)) >= n_t, timeout=10)


# --- type 1: group --------------------------------------------------------------------
env_def0 = metric("environment_defaulted_total")
inv0 = metric("invalid_token_total")
run("m-group", 1, ["g1"], {"alert": "hi"}, want_apns=APNS_EXPECTED, want_topics=["push/group/g1"])
got = broker.apns_targets("m-group")
c.eq(sorted(got), sorted(APNS_EXPECTED), "group: APNs to exactly the eligible members")
c.eq(broker.topics("m-group"), ["push/group/g1"], "group: exactly one MQTT publish to the group")
c.eq(len(broker.mqtt_for("m-group")), 1, "group: one MQTT job")
c.eq(metric("environment_defaulted_total") - env_def0, 2, "group: 2 environments defaulted")
c.eq(metric("invalid_token_total") - inv0, 1, "group: invalid token counted")
c.check(metric("skipped_total", reason="no_ident") >= 1, "group: token without ident counted")
jobs = broker.apns_for("m-group")
c.eq(sorted((j[3], j[4], len(j[11])) for j in jobs),
     [("com.a", 0, 2), ("com.a", 1, 2), ("com.b", 1, 1)],
     "group: one APNS job per (ident, env)")
c.check(all(json.loads(j[5]) == {"aps": {"alert": "hi"}} and j[6] == "alert" for j in jobs),
        "group: built payload and push type alert in every job")
c.eq(metric("messages_total", type="group"), 1, "messages_total{type=group}")

# --- type 2: list with duplicates -----------------------------------------------------
ids = ["u1", "u5", "u10", "u1", "u2", "u5", "u11"]
run("m-list", 2, ids, {"alert": "x"},
    want_apns=[1, 2], want_topics=["push/user/u5", "push/user/u10", "push/user/u11"])
c.eq(sorted(broker.apns_targets("m-list")),
     sorted([("u1", T[1], "com.a", "sandbox"), ("u2", T[2], "com.a", "production")]),
     "list: APNs to u1 and u2, once each")
c.eq(sorted(broker.topics("m-list")), ["push/user/u10", "push/user/u11", "push/user/u5"],
     "list: MQTT to the others, once each")
c.check(metric("skipped_total", reason="duplicate") >= 2, "list: duplicates counted")

# --- type 3: one user -----------------------------------------------------------------
run("m-one-apns", 3, ["u8"], {"alert": "x"}, want_apns=[1])
c.eq(broker.apns_targets("m-one-apns"), [("u8", T[8], "com.a", "sandbox")], "user: APNs")
c.eq(broker.topics("m-one-apns"), [], "user: APNs user gets no MQTT")
run("m-one-focus", 3, ["u7"], {"alert": "x"}, want_topics=[1])
c.eq(broker.topics("m-one-focus"), ["push/user/u7"], "user: focused user gets MQTT")
c.eq(broker.apns_targets("m-one-focus"), [], "user: focused user gets no APNs")
run("m-one-nohash", 3, ["nobody"], {"alert": "x"}, want_topics=[1])
c.eq(broker.topics("m-one-nohash"), ["push/user/nobody"], "user: no hash -> MQTT")
mq = broker.mqtt_for("m-one-nohash")
c.check(len(mq) == 1 and json.loads(mq[0][4]) == {"alert": "x"},
        "user: MQTT payload is the message's data")

# --- channel options ------------------------------------------------------------------
ne0 = metric("skipped_total", reason="not_eligible")
run("m-ch-apns", 2, ["u1", "u5", "u10"], {"alert": "x"}, {"ch": 1}, want_apns=[1])
c.eq(broker.apns_targets("m-ch-apns"), [("u1", T[1], "com.a", "sandbox")], "channels apns: APNs")
c.eq(broker.topics("m-ch-apns"), [], "channels apns: no MQTT at all")
c.eq(metric("skipped_total", reason="not_eligible") - ne0, 2, "channels apns: 2 not eligible")
run("m-ch-apns-g", 1, ["g1"], {"alert": "x"}, {"ch": 1}, want_apns=APNS_EXPECTED)
c.eq(sorted(broker.apns_targets("m-ch-apns-g")), sorted(APNS_EXPECTED),
     "channels apns, group: APNs to eligible members")
c.eq(broker.topics("m-ch-apns-g"), [], "channels apns, group: no group publish")
look0 = metric("users_looked_up_total")
run("m-ch-mqtt-g", 1, ["g1"], {"alert": "x"}, {"ch": 2}, want_topics=[1])
c.eq(broker.topics("m-ch-mqtt-g"), ["push/group/g1"], "channels mqtt, group: group publish only")
c.eq(broker.apns_targets("m-ch-mqtt-g"), [], "channels mqtt, group: no APNs")
run("m-ch-mqtt-l", 2, ["u1", "u5", "zz"], {"alert": "x"}, {"ch": 2}, want_topics=[1, 2, 3])
c.eq(sorted(broker.topics("m-ch-mqtt-l")), ["push/user/u1", "push/user/u5", "push/user/zz"],
     "channels mqtt, list: user topics for everyone")
c.eq(broker.apns_targets("m-ch-mqtt-l"), [], "channels mqtt, list: no APNs")
c.eq(metric("users_looked_up_total") - look0, 0, "channels mqtt: no Redis lookups")

# --- payload rule ---------------------------------------------------------------------
raw = '{"aps":{"alert":{"title":"T"},"sound":"ding"},"custom":[1,2]}'
run("m-pass", 3, ["u1"], raw, want_apns=[1])
j = broker.apns_for("m-pass")
c.check(len(j) == 1 and j[0][5] == raw and j[0][6] == "alert", "payload: aps passed through as is")
run("m-built", 3, ["u1"], {"title": "T", "body": "B", "badge": 3, "room": "r9"}, want_apns=[1])
j = broker.apns_for("m-built")
c.check(len(j) == 1 and json.loads(j[0][5]) ==
        {"aps": {"alert": {"title": "T", "body": "B"}, "badge": 3}, "room": "r9"},
        "payload: aps built from title/body/badge, custom key kept")
run("m-bg", 3, ["u1"], {"sync": 1}, want_apns=[1])
j = broker.apns_for("m-bg")
c.check(len(j) == 1 and json.loads(j[0][5]) == {"aps": {"content-available": 1}, "sync": 1}
        and j[0][6] == "background" and j[0][7] == 5, "payload: background push, priority 5")
run("m-opts", 3, ["u1"], {"alert": "a"}, {"pt": "alert", "pr": 10, "ex": 1900000000, "ci": "c1"},
    want_apns=[1])
j = broker.apns_for("m-opts")
c.check(len(j) == 1 and j[0][6] == "alert" and j[0][7] == 10 and j[0][8] == 1900000000
        and j[0][9] == "c1", "payload: push type, priority, expiration, collapse id carried")

# Data the broker accepts (proto/PROTOCOL.md: NUL in strings, integers over the full int64
# and uint64 ranges) reaches the APNs payload exactly as the broker writes it (pp_json:
# \u0000, decimal integers), for a built aps, for a given aps, and for the MQTT payload.
bad0 = metric("payload_invalid_total")
data_text = ('{"alert":"a\\u0000b","badge":18446744073709551615,"two63":9223372036854775808,'
             '"min":-9223372036854775808,"s":"\\u0000"}')
run("m-exact", 2, ["u1", "u9"], data_text, want_apns=[1], want_topics=[1])
j = broker.apns_for("m-exact")
c.check(len(j) == 1 and j[0][5] ==
        '{"aps":{"alert":"a\\u0000b","badge":18446744073709551615},"two63":9223372036854775808,'
        '"min":-9223372036854775808,"s":"\\u0000"}',
        "payload: NUL in strings, 2^64-1, 2^63 and -2^63 reach the APNs payload intact")
m = broker.mqtt_for("m-exact")
c.check(len(m) == 1 and m[0][4] == data_text, "payload: the same data reaches MQTT intact")
aps_text = '{"aps":{"alert":"\\u0000","badge":9223372036854775808},"k\\u0000":-9223372036854775808}'
run("m-exact-aps", 3, ["u1"], aps_text, want_apns=[1])
j = broker.apns_for("m-exact-aps")
c.check(len(j) == 1 and j[0][5] == aps_text,
        "payload: aps with NUL in a key and big integers passed through as is")
c.eq(metric("payload_invalid_total") - bad0, 0, "payload: none of them counted invalid")


def sized(n):
    """Data with aps whose JSON text is exactly n bytes."""
    head, tail = '{"aps":{"alert":"', '"}}'
    return head + "x" * (n - len(head) - len(tail)) + tail


tl0 = metric("payload_too_large_total")
run("m-4096", 3, ["u1"], sized(4096), want_apns=[1])
c.eq(len(broker.apns_for("m-4096")), 1, "size: 4096-byte payload sent")
run("m-4097", 3, ["u1"], sized(4097))
c.eq(len(broker.apns_for("m-4097")), 0, "size: 4097-byte payload not sent")
c.eq(metric("payload_too_large_total") - tl0, 1, "size: payload_too_large_total counted")
run("m-voip", 3, ["u1"], sized(5120), {"pt": "voip"}, want_apns=[1])
j = broker.apns_for("m-voip")
c.check(len(j) == 1 and j[0][6] == "voip", "size: 5120-byte voip payload sent")
run("m-voip-big", 3, ["u1"], sized(5121), {"pt": "voip"})
c.eq(len(broker.apns_for("m-voip-big")), 0, "size: 5121-byte voip payload not sent")

# --- batching -------------------------------------------------------------------------
pipe = r.pipeline(transaction=False)
for i in range(1200):
    pipe.hset("User:b%d" % i, mapping={"app_token": R.token(1000 + i), "app_ident": "com.a",
                                       "app_version": "produce"})
pipe.sadd("GroupAppleUser:gb", *["b%d" % i for i in range(1200)])
pipe.execute()
run("m-batch", 1, ["gb"], {"alert": "x"}, want_apns=range(1200), want_topics=[1])
jobs = broker.apns_for("m-batch")
c.eq(sorted(len(j[11]) for j in jobs), [200, 500, 500], "batching: 1200 tokens -> 3 jobs")
c.eq(len({t for _, t, _, _ in broker.apns_targets("m-batch")}), 1200, "batching: every token once")
c.eq(len({j[5] for j in jobs}), 1, "batching: one payload shared")
ids = ["nohash%d" % i for i in range(1100)]
run("m-batch-mqtt", 2, ids, {"alert": "x"}, want_topics=ids)
c.eq(sorted(len(j[6]) for j in broker.mqtt_for("m-batch-mqtt")), [100, 500, 500],
     "batching: 1100 topics -> 3 MQTT jobs")

# --- large group streamed with SSCAN --------------------------------------------------
N = 20000
pipe = r.pipeline(transaction=False)
want = set()
for i in range(N):
    uid = "L%d" % i
    if i % 2 == 0:
        pipe.hset("User:" + uid, mapping={"app_token": R.token(5000 + i), "app_ident": "com.l",
                                          "app_version": "develop"})
        want.add((uid, R.token(5000 + i), "com.l", "sandbox"))
    else:
        pipe.hset("User:" + uid, mapping={"app_ident": "com.l"})
    if i % 1000 == 999:
        pipe.execute()
pipe.execute()
for i in range(0, N, 5000):
    r.sadd("GroupAppleUser:glarge", *["L%d" % k for k in range(i, min(N, i + 5000))])
look0 = metric("users_looked_up_total")
run("m-large", 1, ["glarge"], {"alert": "x"}, want_apns=want, want_topics=[1])
got = broker.apns_targets("m-large")
c.eq(len(got), len(want), "large group: number of APNs targets")
c.check(set(got) == want, "large group: exact set of tokens delivered")
c.eq(metric("users_looked_up_total") - look0, N, "large group: every member looked up once")
c.eq(broker.topics("m-large"), ["push/group/glarge"], "large group: one group publish")

# --- wrong-shape replies --------------------------------------------------------------
r.set("GroupAppleUser:gstr", "i am a string")
wt0 = metric("bad_reply_total", kind="wrongtype")
run("m-gstr", 1, ["gstr"], {"alert": "x"}, want_topics=[1])
c.eq(broker.topics("m-gstr"), ["push/group/gstr"], "wrong shape: string group -> group publish")
c.eq(broker.apns_targets("m-gstr"), [], "wrong shape: string group -> no APNs")
c.check(metric("bad_reply_total", kind="wrongtype") > wt0, "wrong shape: wrongtype counted")
r.rpush("User:ulist", "a", "b")
wt0 = metric("bad_reply_total", kind="wrongtype")
run("m-ulist", 3, ["ulist"], {"alert": "x"}, want_topics=[1])
c.eq(broker.topics("m-ulist"), ["push/user/ulist"], "wrong shape: list user -> MQTT")
c.eq(metric("bad_reply_total", kind="wrongtype") - wt0, 1, "wrong shape: list user counted")
r.sadd("GroupAppleUser:gbad", "u1", "x" * 5000, b"\xff\xfe\xfd", "a/b", "u2", "ulist")
hm0 = metric("bad_reply_total", kind="huge_member")
u80 = metric("bad_reply_total", kind="bad_utf8")
run("m-gbad", 1, ["gbad"], {"alert": "x"}, want_apns=[1, 2], want_topics=[1])
c.eq(sorted(broker.apns_targets("m-gbad")),
     sorted([("u1", T[1], "com.a", "sandbox"), ("u2", T[2], "com.a", "production")]),
     "wrong shape: good members of a group with bad members still delivered")
c.eq(metric("bad_reply_total", kind="huge_member") - hm0, 1, "wrong shape: huge member counted")
c.eq(metric("bad_reply_total", kind="bad_utf8") - u80, 1, "wrong shape: non-UTF-8 counted")

# --- bad RESOLVE jobs -----------------------------------------------------------------
bj0 = metric("bad_jobs_total")
# queued together, so that the resolver takes them in one batch: a bad job between
# batchable single-user messages must be acked too
broker.send("m-before-bad", 3, ["u2"], {"alert": "x"})
broker.send_raw(b"\x93garbage")
broker.send_raw(R.resolve_frame("m-badtype", 7, ["u1"], {"a": 1}))
run("m-after-bad", 3, ["u1"], {"alert": "x"}, want_apns=[1])
c.eq(metric("bad_jobs_total") - bj0, 2, "bad jobs: counted")
c.eq(len(broker.apns_targets("m-after-bad")), 1, "bad jobs: resolver goes on")
c.eq(len(broker.apns_targets("m-before-bad")), 1, "bad jobs: the message before them resolved")

broker.check_link(c, "link")
c.eq(broker.bad_outputs, [], "link: every output is an APNS or MQTT job")
c.check(proc.alive(), "resolver still running")
c.eq(proc.stop(), 0, "SIGTERM: exit 0")
broker.close()
c.finish()
