"""A reconnect under CurveZMQ: the link's new socket (common/pp_link.c opens one per
connection) must carry the resolver's CURVE keys, or every connection after the first fails
its handshake and the resolver never gets work again.

A real pushpipe-broker with CURVE on (allowlist), a real pushpipe-resolver with its own
allowlisted key and a real redis-server, reaching the resolve endpoint through a TCP proxy
that the test cuts (RST) twice while the broker has jobs for it. Asserts, after each cut: the
resolver reconnects (link_worker_reconnects_total) and every RESOLVE job is acknowledged
(the broker's link_in_flight and link_pending on the resolve pool back to 0, one resolver).
The resolver's outputs stay queued in the broker's mqtt pool (no mqtt worker here)."""
import sys
import time

sys.dont_write_bytecode = True

import pp_harness as h  # noqa: E402
from curve_link_fixture import CurveResolverBehindProxy  # noqa: E402

args = h.parse_args()
c = h.Checks()
f = CurveResolverBehindProxy(args, "link-reconnect-curve", heartbeat_ms=500)
m = f.m


def wait(cond, timeout, what):
    try:
        h.wait_for(cond, timeout, what=what)
        return True
    except AssertionError:
        return False


ROUND = 1000
for r in range(2):
    f.push(ROUND, tag="c%d" % r)
    wait(lambda: m("link_acks_total", pool="resolve") >= r * ROUND + 200, 20,
         "round %d under way" % (r + 1))
    f.proxy.cut()
    time.sleep(0.15)
    f.proxy.restore()
    ok = wait(f.idle, 15, "round %d acked" % (r + 1))
    c.check(ok, "round %d: every RESOLVE job acked after the cut (in flight %d, pending %d, "
            "resolvers %d)" % (r + 1, m("link_in_flight", pool="resolve"),
                               m("link_pending", pool="resolve"),
                               m("link_workers", pool="resolve")))
    c.eq(f.rm("link_worker_reconnects_total"), r + 1,
         "round %d: the resolver replaced its connection once" % (r + 1))
c.check(m("link_acks_total", pool="resolve") >= 2 * ROUND, "all %d jobs acked" % (2 * ROUND))
c.eq(m("curve_handshakes_total", result="refused"), 0, "no CURVE handshake refused")
f.close(c)
c.finish()
