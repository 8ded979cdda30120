"""The whole pipeline on one host, with real everything (ctest e2e_pipeline).

Starts redis-server, mosquitto, two APNs test servers (sandbox and production, each taking
token auth for com.example.app and certificate auth for com.example.certapp), the broker,
two resolvers, an apns-sender and an mqtt-sender, all from one JSON config file; seeds
Redis with groups and users of every kind; sends pushes of all three types through the
Python client (the seed's call style and acknowledged mode) and pushpipe-send (libpushpipe;
fire-and-forget and --ack), with channel and APNs/MQTT options; then asserts every APNs
request the test servers accepted and every MQTT message a subscriber got: nothing missing,
nothing extra, right topic, environment, app, headers and payload.

The expected deliveries come from e2e_common.model, an independent model of the documented
rules (the oracle), not from the code under test.
"""
import collections
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e_common as e  # noqa: E402
import pp_harness as h  # noqa: E402

PUSHES = [
    # the seed's call style: client(push_type, push_id, data)
    {"via": "py", "type": 1, "id": 100, "data": {"alert": "hello group", "n": 1},
     "as_text": True},  # json_data as JSON text, as the seed's callers may pass it
    {"via": "py", "type": 1, "id": "200",
     "data": {"title": "T", "body": "B", "badge": 2, "n": 2},
     "opts": {"apns_collapse_id": "c-2", "mqtt_qos": 0}},
    {"via": "py", "type": 2, "id": ["1", "2", "3", "5", "9", 6, "alice", "1", 1],
     "data": {"aps": {"alert": "raw aps", "sound": "default"}, "n": 3}},
    {"via": "py", "type": 3, "id": "7", "data": {"n": 4, "x": "bg"}},
    {"via": "py", "type": 3, "id": 4, "data": {"alert": "focused", "n": 5}},
    {"via": "py", "type": 3, "id": "alice", "data": {"alert": "h\u00e9llo \u2713", "n": 18}},
    {"via": "py", "type": 1, "id": 300, "data": {"alert": "nobody", "n": 14}},
    {"via": "py", "type": 3, "id": "6", "data": {"alert": "cert", "n": 15},
     "opts": {"id": "trace-15"}},
    # acknowledged mode (Python)
    {"via": "py_ack", "type": 1, "id": "100", "data": {"alert": "ack group", "n": 6},
     "opts": {"channels": "apns"}},
    {"via": "py_ack", "type": 1, "id": 200, "data": {"n": 7, "sound": "ping"},
     "opts": {"channels": "mqtt"}},
    {"via": "py_ack", "type": 2, "id": ["2", "3", "12", "13", "14", "11"],
     "data": {"alert": "list", "n": 8}, "opts": {"channels": "apns", "apns_priority": 5}},
    {"via": "py_ack", "type": 2, "id": ["1", "5", "alice"], "data": {"alert": "mq", "n": 9},
     "opts": {"channels": "mqtt"}},
    {"via": "py_ack", "type": 3, "id": "14",
     "data": {"alert": {"title": "t", "body": "b"}, "n": 17, "custom": {"a": 1}},
     "opts": {"apns_push_type": "alert", "apns_priority": 1}},
    # pushpipe-send (libpushpipe), fire-and-forget and --ack
    {"via": "send", "type": 3, "id": "1", "data": {"alert": "cli", "n": 10},
     "opts": {"ttl": 3600, "apns_priority": 10}},
    {"via": "send_ack", "type": 1, "id": "100", "data": {"alert": "cli group", "n": 11},
     "opts": {"apns_expiration": 2000000000, "apns_collapse_id": "grp"}},
    {"via": "send_ack", "type": 2, "id": [1, 2, 8, "alice", 13], "data": {"badge": 7, "n": 12},
     "opts": {"apns_push_type": "alert", "mqtt_qos": 2}},
    {"via": "send", "type": 3, "id": "9", "data": {"n": 13, "k": [1, 2.5, {"z": None}]}},
    {"via": "send_ack", "type": 1, "id": "999", "data": {"alert": "x", "n": 16}},
    {"via": "send_ack", "type": 3, "id": "11", "data": {"title": "only title", "n": 19},
     "opts": {"channels": "all", "apns_push_type": "alert"}},
    # a long list (more ids than one pipelined Redis round), duplicates, a non-ASCII id
    {"via": "py_ack", "type": 2,
     "id": ["m%d" % i for i in range(580)] + ["1", "2", "3", "5", "6", "11", "12", "13",
                                               "14", "\u00fc", "1", 2, "m7"],
     "data": {"alert": "many", "n": 27}},
    # push types with a topic suffix (voip: ".voip", payload limit 5120) and without
    {"via": "py_ack", "type": 2, "id": ["1", "alice", "3"],
     "data": {"alert": "call", "n": 25, "pad": "v" * 4300},
     "opts": {"apns_push_type": "voip", "apns_priority": 10}},
    {"via": "send", "type": 3, "id": "14", "data": {"n": 26, "where": "here"},
     "opts": {"apns_push_type": "location", "apns_priority": 5}},
    # expiration: ttl 0 and apns_expiration 0 mean "deliver once" (expiration 0); one in
    # the past is dropped by the apns-sender (not sent, and not sent over MQTT either)
    {"via": "py", "type": 3, "id": "2", "data": {"alert": "once", "n": 20}, "opts": {"ttl": 0}},
    {"via": "send_ack", "type": 3, "id": "1", "data": {"alert": "once too", "n": 21},
     "opts": {"apns_expiration": 0}},
    {"via": "py_ack", "type": 2, "id": ["alice", "5"], "data": {"alert": "too late", "n": 22},
     "opts": {"apns_expiration": 1000000000}},
    # data too large for APNs (but not for the broker): MQTT users still get it
    {"via": "py", "type": 2, "id": ["1", "5"], "data": {"alert": "big", "n": 23,
                                                       "blob": "x" * 6000}},
    {"via": "py", "type": 1, "id": "100", "data": {"alert": "big", "n": 24,
                                                   "blob": "y" * 6000}},
]


def main():
    args = h.parse_args()
    checks = h.Checks()
    wd = h.workdir("e2e-pipeline")
    print("workdir %s" % wd, flush=True)
    # Small batches and a low scan threshold, so that one message becomes several jobs and
    # group 200 (9 members) is streamed with SSCAN while group 100 (5) is read at once.
    pl = e.Pipeline(args.build_dir, wd, overrides={
        "resolver.group_scan_threshold": 5, "resolver.scan_count": 2,
        "resolver.batch.max_targets": 2, "resolver.batch.max_topics": 2})
    pl.seed()
    sub = pl.subscriber()

    t0 = time.time()
    for p in PUSHES:
        p["sent_at"] = t0
    results = e.send(e.LOCAL, pl.address, PUSHES, wd, build_dir=args.build_dir)
    by_via = collections.defaultdict(list)
    for p, r in zip(PUSHES, results):
        by_via[p["via"]].append(r)
        checks.check("error" not in r, "push n=%d via %s sent (%s)"
                     % (p["data"]["n"], p["via"], r.get("error", "ok")))
        if p["via"].endswith("_ack"):
            checks.check(bool(r.get("accepted")) and len(r["accepted"]) == 32,
                         "push n=%d via %s: accepted with a message id (%r)"
                         % (p["data"]["n"], p["via"], r.get("accepted")))
    acked = [r.get("accepted") for r in results if r.get("accepted")]
    checks.eq(len(set(acked)), len(acked), "message ids are unique")

    want_a, want_m = e.expected(PUSHES)
    print("model: %d APNs notifications, %d MQTT messages" % (sum(want_a.values()),
                                                              sum(want_m.values())), flush=True)
    got = e.settle(lambda: (pl.apns_count(), sub.count()),
                   (sum(want_a.values()), sum(want_m.values())), timeout=60)
    print("settled at %r" % (got,), flush=True)

    # What arrived is the model; authentication: token for the token app, the client
    # certificate for the cert app.
    recs = pl.check_deliveries(checks, sub, PUSHES, want_a, want_m,
                               "APNs notifications (env, token, topic, push type, priority, "
                               "expiration, collapse id, payload)",
                               "MQTT messages (topic, payload, qos)")
    checks.check(any(r["topic"] == e.CERTAPP and r["cert_cn"] == e.CERTAPP for r in recs),
                 "certificate app notifications carry the client certificate's CN")
    for env, srv in pl.apns.items():
        st = srv.stats()
        checks.eq(sum(st["rejected"].values()), 0,
                  "%s APNs server rejected nothing (%r)" % (env, st["rejected"]))

    # The stages' own counters agree with what arrived.
    b = pl.broker
    checks.eq(pl.metric(b, "accepted_total"), len(PUSHES), "broker accepted every push")
    checks.eq(pl.metric(b, "rejected_total"), 0, "broker rejected nothing")
    resolved = sum(pl.metric(r, "messages_total") for r in pl.resolvers)
    checks.eq(resolved, len(PUSHES), "the two resolvers resolved every push once")
    checks.check(all(pl.metric(r, "messages_total") > 0 for r in pl.resolvers),
                 "both resolvers took part (%r)" % [pl.metric(r, "messages_total")
                                                    for r in pl.resolvers])
    checks.eq(pl.metric(pl.apns_sender, "delivered_total"), float(sum(want_a.values())),
              "apns-sender counted every delivery")
    checks.eq(pl.metric(pl.apns_sender, "expired_total"), 1.0,
              "apns-sender dropped the one notification whose expiration had passed")
    # Every stage is still up and stops cleanly on SIGTERM.
    pl.stop_and_check(checks)
    checks.finish()


if __name__ == "__main__":
    main()
