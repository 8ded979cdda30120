"""The set-up the CURVE reconnect tests share: a real pushpipe-broker with CURVE on (an
allowlist with a client and a resolver key), a real redis-server, and a real
pushpipe-resolver with its own key reaching the broker's resolve endpoint through a TCP
proxy the test cuts and restores (pp_tcpproxy), plus a CURVE client PUSH socket on intake.

    f = CurveResolverBehindProxy(args, "link-reconnect-cap", heartbeat_ms=10000,
                                 broker_link={"max_workers_per_key": 1})
    f.push(n)           # n single-user frames into intake
    f.proxy.cut(); f.proxy.restore()
    f.m("link_acks_total", pool="resolve"), f.idle()
    f.close(c)          # resolver and broker exit 0 (checked), the rest stopped
"""
import os
import subprocess

import msgpack
import zmq
import zmq.auth

import pp_harness as h
from pp_tcpproxy import TcpProxy


class CurveResolverBehindProxy:
    def __init__(self, args, name, heartbeat_ms, broker_link=None):
        self.wd = wd = h.workdir(name)
        keygen = h.binary(args.build_dir, "pushpipe-keygen")
        certs = os.path.join(wd, "certs")
        allow = os.path.join(wd, "allow")
        os.mkdir(allow)
        for key in ("broker", "client", "resolver"):
            subprocess.run([keygen, key, "--dir", certs], check=True, capture_output=True)
        for key in ("client", "resolver"):
            os.link(os.path.join(certs, key + ".cert"), os.path.join(allow, key + ".cert"))
        broker_pub, _ = zmq.auth.load_certificate(os.path.join(certs, "broker.cert"))
        client_pub, client_sec = zmq.auth.load_certificate(
            os.path.join(certs, "client.cert_secret"))

        self.redis = h.Redis(wd)
        base = h.free_ports(7)
        pbase = h.free_ports(7)  # the resolver's broker address: the proxy, on pbase + 2
        self.bport, self.rport = h.free_port(), h.free_port()
        curve = {"enabled": True,
                 "server_secret_cert": os.path.join(certs, "broker.cert_secret"),
                 "secret_cert": os.path.join(certs, "resolver.cert_secret"),
                 "server_public": os.path.join(certs, "broker.cert"),
                 "allow_dir": allow}
        broker = {"bind": "tcp://127.0.0.1:%d" % base}
        if broker_link:
            broker["link"] = broker_link
        bcfg = h.write_config(wd, {"heartbeat_ms": heartbeat_ms, "broker": broker,
                                   "curve": curve}, "broker.json")
        rcfg = h.write_config(wd, {"broker_address": "tcp://127.0.0.1:%d" % pbase,
                                   "heartbeat_ms": heartbeat_ms,
                                   "resolver": {"redis": {"host": "127.0.0.1",
                                                          "port": self.redis.port},
                                                "link": {"window": 100},
                                                "message_batch": 50},
                                   "curve": curve}, "resolver.json")
        self.broker = h.Proc([h.binary(args.build_dir, "pushpipe-broker"), "--config", bcfg,
                              "--metrics-port", self.bport], os.path.join(wd, "broker.log"))
        h.wait_port(self.bport, 10)
        h.wait_port(base + 2, 10)
        self.proxy = TcpProxy("127.0.0.1", base + 2, listen_port=pbase + 2)
        self.proxy.set_delay(0.05)
        self.resolver = h.Proc([h.binary(args.build_dir, "pushpipe-resolver"), "--config",
                                rcfg, "--metrics-port", self.rport],
                               os.path.join(wd, "resolver.log"))
        h.wait_port(self.rport, 10)

        self.ctx = zmq.Context()
        self.client = self.ctx.socket(zmq.PUSH)
        self.client.setsockopt(zmq.LINGER, 0)
        self.client.curve_serverkey = broker_pub
        self.client.curve_publickey = client_pub
        self.client.curve_secretkey = client_sec
        self.client.connect("tcp://127.0.0.1:%d" % base)
        h.wait_for(lambda: self.m("link_workers", pool="resolve") == 1, 10,
                   what="the resolver joins")

    def m(self, name, **labels):
        """A broker metric."""
        return h.metric(self.bport, name, **labels)

    def rm(self, name, **labels):
        """A resolver metric."""
        return h.metric(self.rport, name, **labels)

    def push(self, n, tag="c"):
        for i in range(n):
            self.client.send(msgpack.packb([3, "%s-%d" % (tag, i), {"n": i}], use_bin_type=True))

    def idle(self):
        """Nothing in flight or pending on the resolve pool, and one resolver registered."""
        return (self.m("link_in_flight", pool="resolve") == 0 and
                self.m("link_pending", pool="resolve") == 0 and
                self.m("link_workers", pool="resolve") == 1)

    def close(self, c):
        c.check(self.resolver.alive(), "the resolver is still running")
        c.eq(self.resolver.stop(), 0, "the resolver exits 0")
        self.client.close()
        self.ctx.term()
        self.proxy.close()
        c.eq(self.broker.stop(), 0, "the broker exits 0")
        self.redis.stop()
