"""A reconnect does not count twice against broker.link.max_workers_per_key (issue 11's
cap): a resolver whose key may register one link per pool, reaching the broker's resolve
endpoint through a TCP proxy that the test cuts (RST) mid-stream and restores. The
resolver reconnects under a new routing id while the broker still has its old entry;
before, the new link was refused as the key's second one until the old entry's next
heartbeat found it gone or it timed out, and the resolver itself only asked again at its
own timeout (3 x heartbeat_ms = 30 s here). Now the broker, at the cap, probes the key's
workers and forgets the one that is gone: the resolver is back with its one slot, and
every job acknowledged, long before any heartbeat or timeout would have done it."""
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
wd = h.workdir("link-reconnect-cap")
HB = 10000
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
                           "broker": {"bind": "tcp://127.0.0.1:%d" % base,
                                      "link": {"max_workers_per_key": 1}},
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

N = 2000
for i in range(N):
    client.send(msgpack.packb([3, "c-%d" % i, {"n": i}], use_bin_type=True))
h.wait_for(lambda: m("link_acks_total", pool="resolve") >= 200, 20, what="the stream under way")
proxy.cut()
time.sleep(0.15)
proxy.restore()
# Well inside one heartbeat (10 s): before, nothing here could happen before 10-30 s.
try:
    h.wait_for(lambda: h.metric(rport, "link_worker_reconnects_total") >= 1 and idle(), 8,
               what="back and idle")
    back = True
except AssertionError:
    back = False
c.check(back, "after the cut the resolver is back within 8 s (one heartbeat is 10 s) and every "
              "job is acked (in flight %d, pending %d, resolvers %d, reconnects %d)"
        % (m("link_in_flight", pool="resolve"), m("link_pending", pool="resolve"),
           m("link_workers", pool="resolve"), h.metric(rport, "link_worker_reconnects_total")))
c.check(m("link_acks_total", pool="resolve") >= N, "all %d jobs acked" % N)
log = broker.output()
c.check("event=link_worker_dead pool=resolve" in log and "reason=unreachable" in log,
        "the broker forgot the old entry as unreachable (not at its timeout)")
c.check("reason=timeout" not in log, "no entry had to time out")
c.eq(m("link_workers", pool="resolve"), 1.0, "the key holds its one slot")
c.check(resolver.alive(), "the resolver is still running")
c.eq(resolver.stop(), 0, "the resolver exits 0")
client.close()
ctx.term()
proxy.close()
c.eq(broker.stop(), 0, "the broker exits 0")
redis.stop()
c.finish()
