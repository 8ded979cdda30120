"""End-to-end benchmark of the whole pipeline on this host (bench/e2e/run.sh runs it).

Starts redis-server, mosquitto, pp-apns-testserver (production and sandbox), the broker,
two resolvers, one apns-sender and one mqtt-sender from one config file (tests/e2e's
Pipeline), seeds a group of 100,000 iOS users (all APNs-eligible, production), then:

  1. group: one type 1 push to the group, i.e. 100,000 APNs notifications and one MQTT
     group publish; deliveries/s = 100,000 / (last notification's received_us at the
     APNs server - the time the push was submitted);
  2. burst: 10,000 single-user pushes (type 3, distinct users) as fast as the Python client
     submits them; deliveries/s the same way;
  3. paced: 10,000 single-user pushes at --rate per second (default 1,000); each push's data
     carries the client's send time ("t_us"), and latency = the APNs server's received_us
     of the notification - t_us (submit to receipt, same clock): p50, p90, p99, max.

With --baseline-rps (h2load into the same server, measured by run.sh in the same run) it
prints the ratio of the pipeline's group deliveries/s to it.
"""
import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path[:0] = [os.path.join(SRC, "tests", "e2e"), os.path.join(SRC, "tests", "lib"),
                os.path.join(SRC, "clients", "python")]
os.environ.setdefault("PP_SOURCE_DIR", SRC)
import e2e_common as e  # noqa: E402
import pp_harness as h  # noqa: E402
import pushpipe  # noqa: E402


def pct(sorted_vals, p):
    if not sorted_vals:
        return float("nan")
    k = min(len(sorted_vals) - 1, max(0, int(round(p / 100.0 * len(sorted_vals))) - 1))
    return sorted_vals[k]


def records(srv, since=0, chunk=20000):
    out = []
    while True:
        part = json.loads(srv.host.http("http://127.0.0.1:%d/accepted?since=%d&limit=%d"
                                        % (srv.control_port, since + len(out), chunk)))
        out += part
        if len(part) < chunk:
            return out


def wait_apns(pl, srv, n, timeout):
    t_end = time.time() + timeout
    while time.time() < t_end:
        c = srv.count()
        if c >= n:
            return c
        time.sleep(0.05)
    return srv.count()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build-dir", required=True)
    ap.add_argument("--members", type=int, default=100000)
    ap.add_argument("--singles", type=int, default=10000)
    ap.add_argument("--rate", type=float, default=1000.0)
    ap.add_argument("--baseline-rps", type=float, default=0.0)
    ap.add_argument("--durable", action="store_true",
                    help="broker.durability jetstream against a local nats-server")
    args = ap.parse_args()
    wd = h.workdir("bench-e2e")
    print("workdir %s" % wd, flush=True)
    overrides = None
    if args.durable:
        from pp_nats import NatsNode
        nats = NatsNode(wd)
        overrides = {"broker.durability": "jetstream",
                     "broker.jetstream": {"servers": nats.url}}
        print("durability: jetstream on %s" % nats.url, flush=True)
    pl = e.Pipeline(os.path.abspath(args.build_dir), wd, log_level="warn", overrides=overrides)
    t = time.time()
    pl.seed(users={}, groups={}, n_bulk=args.members)
    print("seeded %d users in %.1f s" % (args.members, time.time() - t), flush=True)
    sub = pl.subscriber()
    prod = pl.apns["production"]
    client = pushpipe.Client.from_address(pl.address, sndhwm=100000)

    # Warm up: connections to APNs and MQTT made, JWT minted.
    client(3, "b0", {"alert": "warm-up"})
    client(1, "none", {"alert": "warm-up"})
    if wait_apns(pl, prod, 1, 30) < 1:
        sys.exit("warm-up notification never arrived")
    e.settle(lambda: (prod.count(), sub.count()), (1, 1), timeout=30, stable_s=0.5)
    prod.reset()

    # 1. the group push
    t_submit = time.time()
    client(1, "bench", {"alert": "to 100k", "n": 1})
    got = wait_apns(pl, prod, args.members, 300)
    recs = records(prod)
    last = max(r["received_us"] for r in recs) / 1e6
    first = min(r["received_us"] for r in recs) / 1e6
    group_rate = len(recs) / (last - t_submit)
    mqtt_group = [m for m in sub.messages() if m["topic"] == "%s/group/bench" % e.PREFIX]
    print("group: %d/%d notifications in %.2f s from submit (first after %.0f ms): "
          "%.0f deliveries/s; MQTT group publish received: %d"
          % (got, args.members, last - t_submit, (first - t_submit) * 1000, group_rate,
             len(mqtt_group)), flush=True)
    distinct = len(set(r["token"] for r in recs))
    prod.reset()

    # 2. burst of single-user pushes
    n = args.singles
    t_submit = time.time()
    for i in range(n):
        client(3, "b%d" % i, {"alert": "single", "n": 10 + i})
    t_sent = time.time()
    got_b = wait_apns(pl, prod, n, 120)
    recs = records(prod)
    last = max(r["received_us"] for r in recs) / 1e6
    burst_rate = len(recs) / (last - t_submit)
    print("burst: %d/%d single-user pushes delivered in %.2f s (client submitted them in "
          "%.2f s): %.0f deliveries/s" % (got_b, n, last - t_submit, t_sent - t_submit,
                                         burst_rate), flush=True)
    prod.reset()

    # 3. paced single-user pushes: latency from the client's submit to the APNs server
    t_next = time.time()
    for i in range(n):
        now = time.time()
        if now < t_next:
            time.sleep(t_next - now)
        t_next += 1.0 / args.rate
        client(3, "b%d" % (args.members - 1 - i),
               {"alert": "paced", "n": 100000 + i, "t_us": int(time.time() * 1e6)})
    got_p = wait_apns(pl, prod, n, 120)
    recs = records(prod)
    lat = sorted((r["received_us"] - json.loads(r["payload"])["t_us"]) / 1000.0 for r in recs)
    print("paced: %d/%d single-user pushes at %.0f/s; submit-to-APNs latency ms: p50=%.2f "
          "p90=%.2f p99=%.2f max=%.2f" % (got_p, n, args.rate, pct(lat, 50), pct(lat, 90),
                                          pct(lat, 99), lat[-1] if lat else float("nan")),
          flush=True)
    ok = got >= args.members and distinct == args.members and len(mqtt_group) == 1 and \
        got_b >= n and got_p >= n
    print("RESULT group_deliveries_per_s=%.0f burst_deliveries_per_s=%.0f "
          "p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f max_ms=%.2f complete=%s"
          % (group_rate, burst_rate, pct(lat, 50), pct(lat, 90), pct(lat, 99),
             lat[-1] if lat else float("nan"), "yes" if ok else "NO"), flush=True)
    if args.baseline_rps:
        print("RATIO group deliveries/s vs h2load into the same server (same run): %.2f "
              "(%.0f / %.0f)" % (group_rate / args.baseline_rps, group_rate,
                                 args.baseline_rps), flush=True)
    client.close()
    for p in reversed(pl.processes()):
        p.stop()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
