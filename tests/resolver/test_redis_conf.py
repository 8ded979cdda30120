"""Resolver's Redis settings against real servers: password, db number, unix socket, a
wrong password (counted, no crash, clean stop); and two resolvers sharing the messages."""
import os
import time

import sys

sys.dont_write_bytecode = True  # no __pycache__ next to rhelp.py in the source tree

import pp_harness as h  # noqa: E402
import rhelp as R  # noqa: E402

args = h.parse_args()
c = h.Checks()
wd = h.workdir("resolver-redis")
TOK = R.token(7)


def check_delivery(what, redis_cfg, client, redis_port):
    client.hset("User:p1", mapping={"app_token": TOK, "app_ident": "com.p",
                                    "app_version": "produce"})
    base = h.free_ports(7)
    broker = R.Broker(base)
    cfg = R.resolver_config(redis_port, redis=redis_cfg)
    proc = R.start_resolver(args, wd, broker, cfg, name="resolver-" + what)
    broker.send("m-" + what, 3, ["p1"], {"alert": "x"})
    broker.collect(until=lambda: broker.apns_jobs, timeout=10)
    c.eq(broker.apns_targets("m-" + what), [("p1", TOK, "com.p", "production")],
         "%s: user looked up and delivered" % what)
    broker.check_link(c, what)
    c.eq(proc.stop(), 0, "%s: exit 0" % what)
    broker.close()


# configuration of the link: a batch larger than the window, and the removed PUSH settings
for what, extra, key in (("batch over window", {"message_batch": 300, "link": {"window": 256}},
                          "resolver.message_batch"),
                         ("removed out_hwm", {"out_hwm": 100}, "out_hwm"),
                         # issue 9.8: tokens the APNs sender could not carry (PP_TOKEN_MAX_LEN)
                         ("token over the shared bound", {"token_max_len": 201},
                          "resolver.token_max_len")):
    cfg = R.resolver_config(6379, **extra)
    b = R.Broker(h.free_ports(7))
    p = R.start_resolver(args, wd, b, cfg, name="resolver-badcfg")
    try:
        rc = p.p.wait(10)
    except Exception:  # noqa: BLE001 - a resolver that keeps running fails the check below
        rc = None
    c.eq(rc, 2, "config %s: exit 2" % what)
    c.check(key in p.output(), "config %s: the key is named" % what)
    b.close()

# password
rp = h.Redis(wd, password="s3cret pass")
check_delivery("password", {"password": "s3cret pass"}, rp.client(), rp.port)

# wrong password: counted, nothing delivered, resolver alive and stops cleanly
base = h.free_ports(7)
broker = R.Broker(base)
mport = h.free_port()
proc = R.start_resolver(args, wd, broker,
                        R.resolver_config(rp.port, redis={"password": "wrong"},
                                          drain_timeout_ms=500),
                        name="resolver-wrongpass", metrics_port=mport)
h.wait_port(mport)
broker.send("m-wrong", 3, ["p1"], {"alert": "x"})
broker.collect(until=lambda: h.metric(mport, "redis_errors_total") >= 2, timeout=10, quiet=0)
c.check(h.metric(mport, "redis_errors_total") >= 2, "wrong password: redis errors counted")
broker.poll(300)
c.eq(broker.apns_jobs + broker.mqtt_jobs, [], "wrong password: nothing delivered")
c.eq(broker.hub.in_flight(), 1, "wrong password: the message is held, not acked")
c.check(proc.alive(), "wrong password: resolver alive")
c.eq(h.metric(mport, "redis_up"), 0, "wrong password: redis_up is 0")
c.eq(proc.stop(), 0, "wrong password: exit 0 on SIGTERM")
c.check("WRONGPASS" in proc.output() or "invalid" in proc.output(),
        "wrong password: Redis's error logged")
broker.close()

# db number
rd = h.Redis(wd)
check_delivery("db", {"db": 3}, rd.client(db=3), rd.port)
c.eq(rd.client(db=0).exists("User:p1"), 0, "db: the data lives only in db 3")

# unix socket (the TCP port given points nowhere useful)
sock = os.path.join(wd, "redis.sock")
ru = h.Redis(wd, unixsocket=sock)
h.wait_for(lambda: os.path.exists(sock), 5, what="unix socket")
check_delivery("unix", {"unix_socket": sock, "port": 1}, ru.client(), 1)

# two resolvers side by side share the messages, each message resolved once
rd.client().hset("User:p1", mapping={"app_token": TOK, "app_ident": "com.p"})
base = h.free_ports(7)
broker = R.Broker(base)
ports = [h.free_port(), h.free_port()]
procs = [R.start_resolver(args, wd, broker, R.resolver_config(rd.port), name="resolver-%d" % i,
                          metrics_port=ports[i]) for i in range(2)]
for p in ports:
    h.wait_port(p)
h.wait_for(lambda: "event=link_connected" in procs[0].output() and
                     "event=link_connected" in procs[1].output(), 5, what="both connected")
time.sleep(0.5)  # connects are asynchronous: let both sessions come up
M = 200
for i in range(M):
    broker.send("m-pair-%d" % i, 3, ["p1" if i % 2 else "nobody%d" % i], {"alert": "x"})
broker.collect(until=lambda: len(broker.apns_jobs) + len(broker.mqtt_jobs) >= M, timeout=15)
per_msg = {}
for j in broker.apns_jobs + broker.mqtt_jobs:
    per_msg[j[2]] = per_msg.get(j[2], 0) + 1
c.eq(sorted(per_msg.values()), [1] * M, "two resolvers: every message resolved exactly once")
counts = [h.metric(p, "messages_total") for p in ports]
c.check(all(n > 0 for n in counts) and sum(counts) == M,
        "two resolvers: both took a share (%s)" % counts)
broker.check_link(c, "two resolvers")
for i, pr in enumerate(procs):
    c.eq(pr.stop(), 0, "two resolvers: resolver %d exits 0" % i)
broker.close()
c.finish()
