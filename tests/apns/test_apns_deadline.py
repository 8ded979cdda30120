"""Every APNs request has a deadline (apns_sender.request_timeout_ms), so that an APNs server
that stops answering cannot hold the pipeline (ctest apns_deadline).

The whole pipeline with real processes (e2e_common.Pipeline: redis-server, mosquitto, the
broker, one resolver, the apns-sender, the mqtt-sender, pp-apns-testserver for production).
The broker's apns queue is kept small, so that a stuck apns-sender (its link window of jobs
never acked) soon fills it; the broker then stops reading the resolver and MQTT stops too.

Twice, once with the test server told `never_answer` (streams held, never answered) and
once with `zero_streams` (SETTINGS_MAX_CONCURRENT_STREAMS 0):
  - "durable" APNs pushes (no expiration) to 30 iOS users, fewer than the link window;
  - a flood of APNs pushes with a 2 s ttl to a group of 500 iOS users, one job per target
    (10000 jobs of about 3 KB: far more than the window, the broker's apns queue and the
    socket buffers between broker and resolver hold);
  - then MQTT pushes (users without tokens), spread over 5 s.
Asserts that every MQTT message arrives while the APNs server is still stuck (nothing
accepted), that the timeout counter went up (and a connection was replaced), then switches
the server back to normal and asserts that every durable notification arrives (duplicates
allowed and counted, none missing), that the expired ones were counted, and that every job
was acked (the sender holds nothing).

Without the deadlines (run with --request-timeout-ms 3600000, or --request-timeout-ms 0
against a build from before them) the stuck requests hold their jobs for good: the MQTT
messages never arrive and neither do the durable notifications.
"""
import collections
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
import e2e_common as e  # noqa: E402
import pp_harness as h  # noqa: E402

N_BULK = 500      # iOS users in group "bench" (production), tokens "%064x" % (i + 1)
N_DURABLE = 30    # durable pushes per phase, one iOS user each
N_FLOOD = 20      # flood pushes per phase, each to the whole group
N_MQTT = 20       # MQTT pushes per phase
TTL = 2


def bulk_token(i):
    return "%064x" % (i + 1)


def wait(cond, timeout, interval=0.2):
    """True once cond() holds, False after timeout (a failed check, not an exception)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(interval)
    return cond()


def main():
    args = h.parse_args(lambda ap: ap.add_argument("--request-timeout-ms", type=int,
                                                   default=500))
    checks = h.Checks()
    wd = h.workdir("apns-deadline")
    print("workdir %s request_timeout_ms %d" % (wd, args.request_timeout_ms), flush=True)
    overrides = {
        # A timed-out request is an attempt: allow enough of them for the stuck phases.
        "apns_sender.retry": {"base_ms": 100, "max_ms": 400, "max_attempts": 100},
        "apns_sender.max_resends": 1000,
        "broker.queue.apns.max_messages": 100,
        "broker.hwm": 50,
        "resolver.link.send_hwm": 16,
        "resolver.batch.max_targets": 1}
    if args.request_timeout_ms:  # 0: leave the key out (for a build without it)
        overrides["apns_sender.request_timeout_ms"] = args.request_timeout_ms
    pl = e.Pipeline(args.build_dir, wd, n_resolvers=1, envs=("production",),
                    overrides=overrides)
    srv = pl.apns["production"]
    sender = pl.apns_sender
    pl.seed(n_bulk=N_BULK)
    sub = pl.subscriber()
    n = [0]

    def push(kind, **kw):
        n[0] += 1
        p = dict(via="py", data={"alert": kind, "n": n[0]}, **kw)
        return p

    # Warm-up: the connection is open and has answered (one delivery).
    e.send(e.LOCAL, pl.address, [push("warm", type=3, id="b%d" % (N_BULK - 1))], wd)
    h.wait_for(lambda: srv.count() >= 1, 20, what="warm-up delivery")

    def phase(name, rule, stage, replaced_reason, first):
        srv.reset()
        base_to = pl.metric(sender, "request_timeouts_total", stage=stage)
        base_rep = pl.metric(sender, "conn_replaced_total", reason=replaced_reason)
        base_exp = pl.metric(sender, "expired_total")
        srv.rules({rule: True})
        time.sleep(0.3)  # the rule reaches the open connection (zero_streams: SETTINGS 0)
        durable = [push("durable", type=3, id="b%d" % i) for i in range(first, first + N_DURABLE)]
        flood = [push("flood", type=1, id="bench", opts={"channels": "apns", "ttl": TTL})
                 for _ in range(N_FLOOD)]
        for p in flood:
            p["data"]["pad"] = "x" * 3000
        mqtt = [push("mqtt", type=3, id="mq%d" % i, rate=4) for i in range(N_MQTT)]
        t0 = time.time()
        e.send(e.LOCAL, pl.address, durable + flood + mqtt, wd, timeout=60)
        want_mqtt = set(p["data"]["n"] for p in mqtt)

        def got_mqtt():
            return set(json.loads(m["payload"])["n"] for m in sub.messages()
                       if m["topic"].startswith(e.PREFIX + "/user/mq")) & want_mqtt

        wait(lambda: len(got_mqtt()) >= N_MQTT, 30, interval=0.1)
        accepted_while_stuck = srv.count()
        checks.eq(len(got_mqtt()), N_MQTT, "%s: every MQTT message arrived while APNs was stuck "
                  "(%.1f s after the first push)" % (name, time.time() - t0))
        checks.eq(accepted_while_stuck, 0, "%s: the APNs server accepted nothing meanwhile" % name)
        timeouts = pl.metric(sender, "request_timeouts_total", stage=stage) - base_to
        checks.check(timeouts > 0, "%s: request_timeouts_total{stage=\"%s\"} went up (+%d)"
                     % (name, stage, timeouts))
        checks.check(pl.metric(sender, "conn_replaced_total", reason=replaced_reason) > base_rep,
                     "%s: conn_replaced_total{reason=\"%s\"} went up" % (name, replaced_reason))
        st = srv.stats()
        if rule == "never_answer":
            checks.check(st["held"] > 0 and st["client_cancels"] > 0,
                         "%s: the server held streams (%d) and saw them reset with CANCEL (%d)"
                         % (name, st["held"], st["client_cancels"]))

        srv.rules({rule: False})
        tokens = [bulk_token(i) for i in range(first, first + N_DURABLE)]
        wait(lambda: set(tokens) <= set(r["token"] for r in srv.accepted()), 30)
        acc = collections.Counter(r["token"] for r in srv.accepted())
        missing = [t for t in tokens if acc[t] == 0]
        dups = sum(acc[t] - 1 for t in tokens if acc[t] > 1)
        print("%s: durable duplicates %d" % (name, dups), flush=True)
        checks.eq(len(missing), 0, "%s: every durable notification arrived after the server "
                  "recovered (%d missing, %d duplicates)" % (name, len(missing), dups))
        checks.check(pl.metric(sender, "expired_total") > base_exp,
                     "%s: the flood's notifications that expired were counted (expired_total +%d)"
                     % (name, pl.metric(sender, "expired_total") - base_exp))
        # Nothing stranded: every job the sender took was acked, nothing is held.
        wait(lambda: pl.metric(sender, "pending") == 0 and
             pl.metric(sender, "jobs_acked_total") == pl.metric(sender, "jobs_total"), 30)
        checks.eq((pl.metric(sender, "pending"),
                   pl.metric(sender, "jobs_total") - pl.metric(sender, "jobs_acked_total")),
                  (0.0, 0.0), "%s: nothing pending, every job acked" % name)

    phase("never_answer", "never_answer", "stream", "timeouts", 0)
    phase("zero_streams", "zero_streams", "queue", "no_streams", N_DURABLE)
    checks.check("event=request_timeout " in sender.output(), "a warn line per timeout "
                 "(event=request_timeout)")
    pl.stop_and_check(checks, logs=False)
    checks.finish()


if __name__ == "__main__":
    main()
