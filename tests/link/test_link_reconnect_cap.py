"""A reconnect does not count twice against broker.link.max_workers_per_key (issue 11's
cap): a resolver whose key may register one link per pool, reaching the broker's resolve
endpoint through a TCP proxy that the test cuts (RST) mid-stream and restores. The
resolver reconnects under a new routing id while the broker still has its old entry;
before, the new link was refused as the key's second one until the old entry's next
heartbeat found it gone or it timed out, and the resolver itself only asked again at its
own timeout (3 x heartbeat_ms = 30 s here). Now the broker, at the cap, probes the key's
workers and forgets the one that is gone: the resolver is back with its one slot, and
every job acknowledged, long before any heartbeat or timeout would have done it."""
import sys
import time

sys.dont_write_bytecode = True

import pp_harness as h  # noqa: E402
from curve_link_fixture import CurveResolverBehindProxy  # noqa: E402

args = h.parse_args()
c = h.Checks()
HB = 10000
f = CurveResolverBehindProxy(args, "link-reconnect-cap", heartbeat_ms=HB,
                             broker_link={"max_workers_per_key": 1})
m = f.m

N = 2000
f.push(N)
h.wait_for(lambda: m("link_acks_total", pool="resolve") >= 200, 20, what="the stream under way")
f.proxy.cut()
time.sleep(0.15)
f.proxy.restore()
# Well inside one heartbeat (10 s): before, nothing here could happen before 10-30 s.
try:
    h.wait_for(lambda: f.rm("link_worker_reconnects_total") >= 1 and f.idle(), 8,
               what="back and idle")
    back = True
except AssertionError:
    back = False
c.check(back, "after the cut the resolver is back within 8 s (one heartbeat is 10 s) and every "
              "job is acked (in flight %d, pending %d, resolvers %d, reconnects %d)"
        % (m("link_in_flight", pool="resolve"), m("link_pending", pool="resolve"),
           m("link_workers", pool="resolve"), f.rm("link_worker_reconnects_total")))
c.check(m("link_acks_total", pool="resolve") >= N, "all %d jobs acked" % N)
log = f.broker.output()
c.check("event=link_worker_dead pool=resolve" in log and "reason=unreachable" in log,
        "the broker forgot the old entry as unreachable (not at its timeout)")
c.check("reason=timeout" not in log, "no entry had to time out")
c.eq(m("link_workers", pool="resolve"), 1.0, "the key holds its one slot")
f.close(c)
c.finish()
