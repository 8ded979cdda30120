"""Issue 9.7: the broker answers "accepted" only for a frame whose RESOLVE job is queued.

The broker runs under tests/lib/pp_failmalloc.c, which makes every malloc of one exact
size fail: the size the resolve pool's pending array asks for when it grows from 2,048
to 4,096 jobs. With no resolver connected, 3,000 acknowledged submits fill the pool;
from the 2,049th on the enqueue fails. Each of those must be answered "internal" (the
client resends), never "accepted"; then a resolver connects and must receive exactly
the accepted ones. On the old code every submit was answered "accepted" and 952 of
them were silently gone."""
import os

import msgpack
import zmq

import pp_harness as h
from broker_util import Broker, Zmq, frame, take_jobs

args = h.parse_args()
c = h.Checks()
wd = h.workdir("broker-enqueue-fail")
shim = os.path.join(args.build_dir, "tests", "broker", "libpp_failmalloc.so")
ZMQ_MSG_T = 64  # sizeof(zmq_msg_t): the pending array holds zmq_msg_t
N = 3000

b = Broker(args, wd, {"drain_ms": 0}, name="oom",
           env={"LD_PRELOAD": shim, "PP_FAILMALLOC_SIZE": str(4096 * ZMQ_MSG_T)})
z = Zmq()
dealer = z.sock(zmq.DEALER, b.ep("submit"))
# One DEALER, one broker loop: replies come back in the order the frames were sent. The
# frames go in rounds, each round's replies read before the next, as a client with a
# bounded window does: a client that reads nothing while it sends fills the broker's
# reply pipe, and replies past its HWM are dropped (counted in replies_dropped_total; the
# client resends on its timeout), which is not what this test is about.
ROUND = 250
replies = []
for start in range(0, N, ROUND):
    for i in range(start, min(N, start + ROUND)):
        dealer.send(frame(3, "u%d" % i, {"i": i}))
    while len(replies) < min(N, start + ROUND) and dealer.poll(5000):
        replies.append((len(replies), msgpack.unpackb(dealer.recv(), raw=False)))
accepted = [i for i, r in replies if r and r.get("ok") is True]
refused = [r for _, r in replies if r and r.get("ok") is False]
c.eq(len(accepted) + len(refused), N, "every submit got a reply")
c.check(0 < len(accepted) < N, "the failing allocation refused some submits (%d accepted)"
        % len(accepted))
c.check(all(r.get("reason") == "internal" for r in refused),
        "refused submits are answered internal (%r)" % (refused[:1],))
c.eq(b.metric("replies_dropped_total"), 0, "no reply was dropped")
c.eq(b.metric("queue_depth", stage="resolve"), len(accepted),
     "the resolve pool holds exactly the accepted frames")

resolver = z.worker(b.ep("resolve"), window=500)
got = take_jobs(resolver, len(accepted), 10)
ids = sorted(int(g[4][0][1:]) for g in got)
c.eq(len(ids), len(accepted), "a resolver receives as many jobs as frames were accepted")
c.check(ids == accepted, "... and they are exactly the accepted frames")
c.check("event=enqueue_failed" in b.log(), "the failed enqueue is logged")
c.check("reason=internal" in b.log(), "the internal reply is logged")
b.stop()
z.close()
c.finish()
