"""kill -9 loses nothing: two apns-senders share one hub (FakeHub); one is killed with
SIGKILL while it has requests in flight; the hub sends what it held unacknowledged to the
other, and every notification reaches the APNs test server at least once (duplicates are
counted and printed: delivery is at-least-once). Also: a sender that cannot reach Apple, or
whose Redis does not answer, keeps its link alive (the hub does not declare it dead)."""
import collections
import socket

import apns_env as E

env = E.Env("kill")
c = env.checks
sb = env.server("sandbox")

# --- kill -9 in the middle of a stream -------------------------------------------------
cfg = env.sender_config(sandbox=sb)
a = env.sender("a", cfg)
b = env.sender("b", env.sender_config(sandbox=sb))
E.h.wait_for(lambda: env.hub.stats()["workers"] == 2, 10, what="both senders on the hub")
# Warm up both connections (token auth starts at one stream until a request succeeds).
env.send([("w%d" % i, E.tok(10 ** 6 + i)) for i in range(20)])
env.send([("w%d" % i, E.tok(10 ** 6 + 20 + i)) for i in range(20)])
sb.wait_count(40)
env.check_acked(what="(warm-up)")
sb.reset()

# Answers come late, so requests are in flight at the kill; 150 streams per connection, so
# a batch of answers does not end on a job's boundary and the killed sender has jobs partly
# delivered (their delivered part is sent again by the survivor: duplicates).
sb.rules({"delay_ms": 100, "max_concurrent_streams": 150})
N_JOBS, N_TARGETS = 100, 100
tokens = []
for j in range(N_JOBS):
    toks = [("u%d" % (j * N_TARGETS + i), E.tok(j * N_TARGETS + i)) for i in range(N_TARGETS)]
    tokens += [t for _, t in toks]
    env.send(toks)
E.h.wait_for(lambda: sb.count() >= 1500 and a.metric("in_flight") > 0, 30,
             what="the stream to be under way")
in_flight = a.metric("in_flight")
delivered_a = a.metric("delivered_total", env="sandbox")
acked_a = a.metric("jobs_acked_total")
a.proc.p.kill()  # SIGKILL
a.proc.p.wait()
print("killed sender a: in_flight %d, delivered %d, jobs acked %d; server accepted %d"
      % (in_flight, delivered_a, acked_a, sb.count()), flush=True)
c.check(in_flight > 0 and acked_a < N_JOBS, "a was killed with %d requests in flight and "
        "jobs unacked" % in_flight)

E.h.wait_for(lambda: len({x["token"] for x in sb.accepted()}) >= len(tokens), 60,
             interval=0.2, what="every notification accepted")
acc = collections.Counter(x["token"] for x in sb.accepted())
missing = [t for t in tokens if acc[t] == 0]
dups = sum(acc[t] - 1 for t in tokens if acc[t] > 1)
print("notifications %d, accepted %d, missing %d, duplicates %d" %
      (len(tokens), sum(acc.values()), len(missing), dups), flush=True)
c.eq(len(missing), 0, "kill -9: every one of %d notifications accepted at least once"
     % len(tokens))
c.check(sum(acc.values()) == len(tokens) + dups, "nothing accepted that was not sent")
env.check_acked(what="after the kill (requeued to the survivor)", timeout=20)
st = env.hub.stats()
c.eq(st["deaths"], 1, "the hub declared the killed sender dead (timeout)")
c.check(st["requeued"] > 0, "and sent its %d unacked jobs to the other" % st["requeued"])
c.check(dups <= st["requeued"] * N_TARGETS, "duplicates (%d) only from requeued jobs (%d x %d)"
        % (dups, st["requeued"], N_TARGETS))
c.eq(b.metric("pending"), 0, "the survivor holds nothing")
c.eq(b.stop(), 0, "survivor exits 0")

# --- Apple unreachable, Redis silent: the link stays alive ----------------------------
lost = E.h.free_port()
silent = socket.socket()  # accepts connections, never answers (a hung Redis)
silent.bind(("127.0.0.1", 0))
silent.listen(16)
base2, hub2 = env.broker()
cfg = env.sender_config(production=None, sandbox=None,
                        apps={E.APP: env.token_app()},
                        hosts={"sandbox": "127.0.0.1:%d" % lost,
                               "production": "127.0.0.1:%d" % lost},
                        redis={"host": "127.0.0.1", "port": silent.getsockname()[1]},
                        reconnect_min_ms=100, reconnect_max_ms=200)
cfg["broker_address"] = "tcp://127.0.0.1:%d" % base2
u = env.sender("unreachable", cfg)
hub2.send(env.job([("z1", E.tok(777))]))
E.h.wait_for(lambda: hub2.stats()["in_flight"] == 1, 10, what="the job to be taken")
E.time.sleep(4.5)  # more than the hub's 3 s timeout
st = hub2.stats()
c.eq((st["deaths"], st["workers"], st["in_flight"], st["acked"]), (0, 1, 1, 0),
     "Apple unreachable and Redis silent for 4.5 s: the sender is still alive to the hub "
     "(it keeps the job)")
c.check(u.metric("reconnects_total") >= 3 or "connect_failed" in u.output() or
        "conn_failed" in u.output(), "and it was trying to connect meanwhile")
c.eq(u.stop(), 0, "exit 0")
silent.close()
env.finish()
