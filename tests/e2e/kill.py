"""kill -9 in the middle of a stream of pushes (ctest e2e_kill).

The whole pipeline (as in pipeline.py) takes 2,000 single-user pushes at a steady rate,
alternating between APNs users and MQTT-only users, in three phases; in each phase one
process is killed with SIGKILL half-way and restarted:
  1. a resolver (the other one goes on; the killed one is restarted after the phase),
  2. the apns-sender (restarted while the stream goes on; the APNs test servers answer
     200 ms late until then, so that it has requests in flight when it dies),
  3. the mqtt-sender (likewise).

Between the broker and its workers runs the acknowledged link (docs/link-protocol.md): a
worker acks a job only when it is finished, and the broker gives whatever a dead worker
held to another worker (or to the same one once restarted). So the test asserts that
nothing is lost: every one of the 2,000 pushes arrives at least once. Pushes the kill
could have touched (of a channel the killed process serves, sent before it was gone plus
a 300 ms grace) may arrive twice (at-least-once): the test prints the duplicates per phase.
Every other push must arrive exactly once. And the pipeline keeps running. Between phases
the test waits until the pipeline is quiet.
"""
import collections
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e_common as e  # noqa: E402
import pp_harness as h  # noqa: E402

N = 2000
RATE = 400.0           # pushes per second (--rate)
GRACE_S = 0.3          # after the killed process is reaped
APNS_DELAY_MS = 200    # APNs answer delay while the apns-sender is killed
N_USERS = 500


def users():
    u = {}
    for i in range(N_USERS):
        u["k%d" % i] = {"app_token": "%064x" % (0xabc000 + i), "app_ident": e.APP,
                        "app_version": "produce" if i % 2 else "develop", "app_focus": "0"}
    return u  # the m<i> users have no hash: MQTT


def main():
    args = h.parse_args(lambda ap: ap.add_argument("--rate", type=float, default=RATE))
    rate = args.rate
    checks = h.Checks()
    wd = h.workdir("e2e-kill")
    print("workdir %s, %d pushes at %.0f/s" % (wd, N, rate), flush=True)
    pl = e.Pipeline(args.build_dir, wd)
    U = users()
    pl.seed(users=U, groups={})
    sub = pl.subscriber()
    import pushpipe
    client = pushpipe.Client.from_address(pl.address)

    pushes = []
    for i in range(N):
        uid = ("k%d" if i % 2 == 0 else "m%d") % (i // 2 % N_USERS)
        pushes.append({"type": 3, "id": uid, "data": {"alert": "kill test", "n": i},
                       "channel": "apns" if i % 2 == 0 else "mqtt"})

    def delivered():
        """n -> number of deliveries (APNs records and MQTT messages)."""
        c = collections.Counter()
        for r in pl.apns_records():
            c[json.loads(r["payload"])["n"]] += 1
        for m in sub.messages():
            c[json.loads(m["payload"])["n"]] += 1
        return c

    per = N // 3
    phases = [
        ("resolver", "resolver0", ("apns", "mqtt"), range(0, per)),
        ("apns-sender", "apns-sender", ("apns",), range(per, 2 * per)),
        ("mqtt-sender", "mqtt-sender", ("mqtt",), range(2 * per, N)),
    ]
    at_risk = {}      # n -> phase name
    must = set()      # pushes that must arrive exactly once
    t_next = time.time()
    for name, victim, channels, rng in phases:
        if name == "apns-sender":
            # APNs answers late (as under load), so that the sender holds requests in
            # flight when it is killed: the loss of a busy sender, not of an idle one.
            for srv in pl.apns.values():
                srv.rules({"delay_ms": APNS_DELAY_MS})
        kill_at = rng.start + len(rng) // 2
        restart_at = kill_at + 150 if name != "resolver" else None
        safe_from = None  # time after which the kill cannot touch a push
        for i in rng:
            if i == kill_at:
                proc = {"resolver0": pl.resolvers[0], "apns-sender": pl.apns_sender,
                        "mqtt-sender": pl.mqtt_sender}[victim]
                t_kill = time.time()
                proc.kill()  # SIGKILL, then reaped
                safe_from = time.time() + GRACE_S
                print("phase %s: killed %s (pid %d) at push %d, reaped after %.0f ms"
                      % (name, victim, proc.pid, i, (time.time() - t_kill) * 1000), flush=True)
            if restart_at is not None and i == restart_at:
                if victim == "apns-sender":
                    for srv in pl.apns.values():
                        srv.rules({"delay_ms": 0})
                    pl.apns_sender = pl.start_apns_sender()
                else:
                    pl.mqtt_sender = pl.start_mqtt_sender()
                print("phase %s: restarted %s at push %d" % (name, victim, i), flush=True)
            now = time.time()
            if now < t_next:
                time.sleep(t_next - now)
            t_next = max(t_next + 1.0 / rate, time.time() - 0.05)
            p = pushes[i]
            sent = time.time()
            client(3, p["id"], p["data"])
            if p["channel"] in channels and (safe_from is None or sent < safe_from):
                at_risk[i] = name
            else:
                must.add(i)
        if name == "resolver":
            # Restart it before the next phase; it must take its share again.
            pl.resolvers[0] = pl.start_resolver(0)
        # Quiet before the next phase, so that its kill can touch only its own pushes: every
        # push so far delivered (those the dead worker held come back after the broker's
        # heartbeat timeout, 3 s).
        e.settle(lambda: (sum(1 for n in delivered() if isinstance(n, int) and n < rng.stop),
                          sum(delivered().values())),
                 (rng.stop, 0), timeout=60, stable_s=1.5)

    got = delivered()
    dup_total = sum(c - 1 for c in got.values() if c > 1)
    missing_must = sorted(i for i in must if got.get(i, 0) == 0)
    checks.eq(missing_must, [], "every push the kills could not touch arrived "
              "(%d pushes)" % len(must))
    checks.eq(sum(1 for i in must if got.get(i, 0) > 1), 0,
              "none of them arrived twice")
    extra = [n for n in got if not (isinstance(n, int) and 0 <= n < N)]
    checks.eq(extra, [], "nothing arrived that was not sent")
    print("loss report (pushes sent, delivered, lost, duplicates):", flush=True)
    total_lost = 0
    for name, victim, channels, rng in phases:
        sent = [i for i in rng]
        risk = [i for i in rng if at_risk.get(i) == name]
        lost = [i for i in risk if got.get(i, 0) == 0]
        dups = sum(got[i] - 1 for i in rng if got.get(i, 0) > 1)
        total_lost += len(lost)
        print("  kill -9 %-12s sent=%d at_risk=%d delivered=%d lost=%d duplicates=%d"
              % (victim, len(sent), len(risk), sum(1 for i in rng if got.get(i, 0)),
                 len(lost), dups), flush=True)
    n_delivered = sum(1 for i in range(N) if got.get(i, 0))
    print("LOSS total: expected=%d delivered=%d lost=%d duplicates=%d"
          % (N, n_delivered, N - n_delivered, dup_total), flush=True)
    checks.eq(total_lost, 0, "no push was lost to kill -9 (duplicates: %d)" % dup_total)

    # The restarted processes work: the restarted resolver resolved pushes of phases 2-3.
    checks.check(pl.metric(pl.resolvers[0], "messages_total") > 0,
                 "the restarted resolver took its share (%d)"
                 % pl.metric(pl.resolvers[0], "messages_total"))
    checks.check(pl.metric(pl.apns_sender, "delivered_total") > 0,
                 "the restarted apns-sender delivered")
    client.close()
    pl.stop_and_check(checks)
    checks.finish()


if __name__ == "__main__":
    main()
