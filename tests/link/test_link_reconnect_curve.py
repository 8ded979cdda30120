"""A reconnect under CurveZMQ: the link's new socket (common/pp_link.c opens one per
connection) must carry the resolver's CURVE keys, or every connection after the first fails
its handshake and the resolver never gets work again.

A real pushpipe-broker with CURVE on (allowlist), a real pushpipe-resolver with its own
allowlisted key and a real redis-server, reaching the resolve endpoint through a TCP proxy
that the test cuts (RST) twice while the broker has jobs for it. Asserts, after each cut: the
resolver reconnects (link_worker_reconnects_total) and every RESOLVE job is acknowledged
(the broker's link_in_flight and link_pending on the resolve pool back to 0, one resolver).
The resolver's outputs stay queued in the broker's mqtt pool (no mqtt worker here)."""
import os
import subprocess
import sys
import time

sys.dont_write_bytecode = True

import msgpack  # noqa: E402
import zmq  # noqa: E402
import zmq.auth  # noqa: E402

import pp_harness as h  # noqa: E402
from pp_tcpproxy import TcpProxy  # noqa: E402

args = h.parse_args()
c = h.Checks()
wd = h.workdir("link-reconnect-curve")
HB = 500
keygen = h.binary(args.build_dir, "pushpipe-keygen")
certs = os.path.join(wd, "certs")
allow = os.path.join(wd, "allow")
os.mkdir(allow)
for name in ("broker", "client", "resolver"):
    subprocess.run([keygen, name, "--dir", certs], check=True, capture_output=True)
for name in ("client", "resolver"):
    os.link(os.path.join(certs, name + ".cert"), os.path.join(allow, name + ".cert"))
broker_pub, _ = zmq.auth.load_certificate(os.path.join(certs, "broker.cert"))
client_pub, client_sec = zmq.auth.load_certificate(os.path.join(certs, "client.cert_secret"))

redis = h.Redis(wd)
base = h.free_ports(7)
pbase = h.free_ports(7)  # the resolver's broker address: the proxy, on pbase + 2
bport, rport = h.free_port(), h.free_port()
curve = {"enabled": True,
         "server_secret_cert": os.path.join(certs, "broker.cert_secret"),
         "secret_cert": os.path.join(certs, "resolver.cert_secret"),
         "server_public": os.path.join(certs, "broker.cert"),
         "allow_dir": allow}
bcfg = h.write_config(wd, {"heartbeat_ms": HB,
                           "broker": {"bind": "tcp://127.0.0.1:%d" % base},
                           "curve": curve}, "broker.json")
rcfg = h.write_config(wd, {"broker_address": "tcp://127.0.0.1:%d" % pbase,
                           "heartbeat_ms": HB,
                           "resolver": {"redis": {"host": "127.0.0.1", "port": redis.port},
                                        "link": {"window": 100},
                                        "message_batch": 50},
                           "curve": curve}, "resolver.json")
broker = h.Proc([h.binary(args.build_dir, "pushpipe-broker"), "--config", bcfg,
                 "--metrics-port", bport], os.path.join(wd, "broker.log"))
h.wait_port(bport, 10)
h.wait_port(base + 2, 10)
proxy = TcpProxy("127.0.0.1", base + 2, listen_port=pbase + 2)
proxy.set_delay(0.05)
resolver = h.Proc([h.binary(args.build_dir, "pushpipe-resolver"), "--config", rcfg,
                   "--metrics-port", rport], os.path.join(wd, "resolver.log"))
h.wait_port(rport, 10)


def m(name, **labels):
    return h.metric(bport, name, **labels)


def wait(cond, timeout, what):
    try:
        h.wait_for(cond, timeout, what=what)
        return True
    except AssertionError:
        return False


def idle():
    return (m("link_in_flight", pool="resolve") == 0 and m("link_pending", pool="resolve") == 0
            and m("link_workers", pool="resolve") == 1)


ctx = zmq.Context()
client = ctx.socket(zmq.PUSH)
client.setsockopt(zmq.LINGER, 0)
client.curve_serverkey = broker_pub
client.curve_publickey = client_pub
client.curve_secretkey = client_sec
client.connect("tcp://127.0.0.1:%d" % base)
h.wait_for(lambda: m("link_workers", pool="resolve") == 1, 10, what="the resolver joins")

ROUND = 1000
for r in range(2):
    for i in range(ROUND):
        client.send(msgpack.packb([3, "c%d-%d" % (r, i), {"n": i}], use_bin_type=True))
    wait(lambda: m("link_acks_total", pool="resolve") >= r * ROUND + 200, 20,
         "round %d under way" % (r + 1))
    proxy.cut()
    time.sleep(0.15)
    proxy.restore()
    ok = wait(idle, 15, "round %d acked" % (r + 1))
    c.check(ok, "round %d: every RESOLVE job acked after the cut (in flight %d, pending %d, "
            "resolvers %d)" % (r + 1, m("link_in_flight", pool="resolve"),
                               m("link_pending", pool="resolve"),
                               m("link_workers", pool="resolve")))
    c.eq(h.metric(rport, "link_worker_reconnects_total"), r + 1,
         "round %d: the resolver replaced its connection once" % (r + 1))
c.check(m("link_acks_total", pool="resolve") >= 2 * ROUND, "all %d jobs acked" % (2 * ROUND))
c.eq(m("curve_handshakes_total", result="refused"), 0, "no CURVE handshake refused")
c.check(resolver.alive(), "the resolver is still running")
c.eq(resolver.stop(), 0, "the resolver exits 0")
client.close()
ctx.term()
proxy.close()
c.eq(broker.stop(), 0, "the broker exits 0")
redis.stop()
c.finish()
