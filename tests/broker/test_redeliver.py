"""Nothing is lost when a worker dies: a resolver or a sender that takes jobs and dies
without acking (crash: its socket closed, nothing more sent, like kill -9; the broker
finds it unreachable or, failing that, unheard for the link's timeout) has its jobs
delivered to another worker of the pool; one that hangs (connected, silent) has them
delivered elsewhere after the timeout; one that says "B" (bye) has them redelivered at
once, without waiting for the timeout."""
import msgpack
import zmq

import pp_harness as h
from broker_util import Broker, Zmq, apns_job, frame, mqtt_job, take, take_jobs, until

args = h.parse_args()
c = h.Checks()
wd = h.workdir("broker-redeliver")
# Short heartbeat so that the timeout (3 heartbeats) is quick; the workers use the same.
HB = 200
b = Broker(args, wd, heartbeat_ms=HB)
z = Zmq()
client = z.sock(zmq.PUSH, b.ep("intake"))


def workers_in(pool, n, others):
    return until(lambda: b.metric("link_workers", pool=pool) == n, others)


def ids(jobs):
    return sorted(j[4][0] for j in jobs)


# --- a resolver that dies holding jobs (crash): another resolver gets them after the timeout
dead = z.worker(b.ep("resolve"), window=20, auto_ack=False, heartbeat_ms=HB)
c.check(workers_in("resolve", 1, [dead]), "resolver 1 joins")
for i in range(20):
    client.send(frame(3, "r%d" % i, {"i": i}))
held = take_jobs(dead, 20)
c.eq(ids(held), sorted("r%d" % i for i in range(20)), "resolver 1 holds 20 RESOLVE jobs")
dead.crash()
alive = z.worker(b.ep("resolve"), window=100, heartbeat_ms=HB)
got = take_jobs(alive, 20, 10)
c.eq(ids(got), ids(held), "resolver 2 gets the 20 jobs the crashed one never acked")
c.eq([j[2] for j in got], [j[2] for j in held], "same jobs (msg ids), in their original order")
c.eq(b.metric("link_worker_deaths_total", pool="resolve"), 1,
     "the crashed resolver is declared dead (link_worker_deaths_total{resolve})")
c.eq(b.metric("link_requeued_total", pool="resolve"), 20, "link_requeued_total{resolve} = 20")
c.check("event=link_worker_dead pool=resolve" in b.log() and "requeued=20" in b.log(),
        "the loss and requeue are logged")
c.check(until(lambda: b.metric("link_in_flight", pool="resolve") == 0, [alive]),
        "all acked by resolver 2")

# --- a resolver that says bye ("B") holding jobs: redelivered at once, not after a timeout
leaving = z.worker(b.ep("resolve"), window=10, auto_ack=False, heartbeat_ms=HB)
alive.paused = True  # resolver 2 takes no new jobs for now: the new ones go to 'leaving'
alive.credit = 0
c.check(workers_in("resolve", 2, [alive, leaving]), "resolver 3 joins")
# Resolver 2 still holds credit at the broker; fill it first so that 'leaving' gets jobs.
before = len(alive.jobs)
for i in range(200):
    client.send(frame(3, "b%d" % i, {"i": i}))
until(lambda: len(leaving.jobs) == 10, [alive, leaving], 5)
c.eq(len(leaving.jobs), 10, "resolver 3 holds a full window of 10")
mine = sorted(j[4][0] for j in (msgpack.unpackb(x, raw=False) for _, x in leaving.jobs))
leaving.close()
alive.paused = False
until(lambda: len(alive.jobs) - before >= 200, [alive], 10)
theirs = [msgpack.unpackb(x, raw=False)[4][0] for _, x in alive.jobs[before:]]
c.eq(sorted(theirs), sorted("b%d" % i for i in range(200)),
     "resolver 2 ends up with all 200 jobs, the 10 held by the leaver included")
c.check(set(mine) <= set(theirs), "the leaver's jobs are among them")
c.eq(b.metric("link_worker_deaths_total", pool="resolve"), 1,
     "a bye is not a death (no timeout needed)")
c.eq(b.metric("link_requeued_total", pool="resolve"), 30, "link_requeued_total{resolve} = 20 + 10")


# --- senders: the same, on the apns pool (crash) and the mqtt pool (bye)
def feed(plan_jobs):
    """Has a resolver on the link send these outputs (for one RESOLVE job)."""
    r = z.resolver(b.ep("resolve"), lambda body: plan_jobs, window=10, heartbeat_ms=HB)
    client.send(frame(3, "out", {"i": 0}))
    return r


alive.crash()  # resolver 2 leaves the stage to the feeding resolvers below
s_dead = z.worker(b.ep("apns_out"), window=10, auto_ack=False, heartbeat_ms=HB)
m_leaving = z.worker(b.ep("mqtt_out"), window=10, auto_ack=False, heartbeat_ms=HB)
a_jobs = [apns_job("%032x" % i) for i in range(10)]
m_jobs = [mqtt_job("%032x" % (100 + i)) for i in range(10)]
r = feed(a_jobs + m_jobs)
got_a = take(s_dead, 10, 10, others=[r, m_leaving])
got_m = take(m_leaving, 10, 10, others=[r, s_dead])
c.eq(got_a, a_jobs, "apns sender 1 holds the 10 APNS jobs")
c.eq(got_m, m_jobs, "mqtt sender 1 holds the 10 MQTT jobs")
s_dead.crash()
m_leaving.close()
s_alive = z.worker(b.ep("apns_out"), window=100, heartbeat_ms=HB)
m_alive = z.worker(b.ep("mqtt_out"), window=100, heartbeat_ms=HB)
c.eq(take(m_alive, 10, 10, others=[r, s_alive]), m_jobs,
     "mqtt sender 2 gets the jobs the leaver held, in order")
c.eq(take(s_alive, 10, 10, others=[r, m_alive]), a_jobs,
     "apns sender 2 gets the jobs the crashed sender held, in order")
c.eq(b.metric("link_worker_deaths_total", pool="apns"), 1, "the crashed apns sender is dead")
c.eq(b.metric("link_worker_deaths_total", pool="mqtt"), 0, "the mqtt leaver is not a death")
c.eq(b.metric("link_requeued_total", pool="apns"), 10, "link_requeued_total{apns}")
c.eq(b.metric("link_requeued_total", pool="mqtt"), 10, "link_requeued_total{mqtt}")
c.check(until(lambda: all(b.metric("link_in_flight", pool=p) == 0 and
                          b.metric("queue_depth", stage=p) == 0
                          for p in ("resolve", "apns", "mqtt")), [r, s_alive, m_alive]),
        "in the end nothing is pending or unacknowledged anywhere")

# --- a sender that hangs (connected but silent) holding jobs: redelivered after the timeout
s_alive.crash()
m_alive.crash()
r.crash()  # the first feeding resolver would take the next RESOLVE job too
hung = z.worker(b.ep("apns_out"), window=5, auto_ack=False, heartbeat_ms=HB)
h_jobs = [apns_job("%032x" % (200 + i)) for i in range(5)]
r2 = feed(h_jobs)
c.eq(take(hung, 5, 10, others=[r2]), h_jobs, "a sender takes 5 APNS jobs, then hangs")
s3 = z.worker(b.ep("apns_out"), window=100, heartbeat_ms=HB)
# 'hung' is never polled again: it sends no heartbeat and no ack.
c.eq(take(s3, 5, 10, others=[r2]), h_jobs, "another sender gets them after the timeout")
c.eq(b.metric("link_worker_deaths_total", pool="apns"), 3,
     "the hung sender is declared dead (deaths: the crashed one, sender 2 crashed idle, it)")
c.check("reason=timeout" in b.log(), "and logged as a timeout")

z.close()
c.eq(b.stop(), 0, "broker exits 0 on SIGTERM")
c.check("drain_incomplete" not in b.log(), "nothing left at exit")
c.finish()
