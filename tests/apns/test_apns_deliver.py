"""apns-sender delivers: exact tokens, topic, headers and payload; sandbox and production
routing by device; certificate auth; unknown idents, bad jobs and no apps are counted."""
import json
import re
import time

import apns_env as E

env = E.Env("deliver")
c = env.checks
sb = env.server("sandbox", srv_env="sandbox")
prod = env.server("production", srv_env="production")
s = env.sender("main", env.sender_config(sandbox=sb, production=prod,
                                        apps={E.APP: env.token_app(connections=2)}))

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")

# 1. Defaults: one payload, three devices.
targets = [("u%d" % i, E.tok(i)) for i in range(1, 4)]
payload = json.dumps({"aps": {"alert": {"title": "Hi", "body": "caf\u00e9 \u2615"}}, "k": 1},
                     ensure_ascii=False)
env.send(targets, payload=payload, msg_id="msg-defaults")
sb.wait_count(3)
acc = sb.accepted()
c.eq(sorted(a["token"] for a in acc), sorted(t for _, t in targets), "exact tokens delivered")
c.eq({a["topic"] for a in acc}, {E.APP}, "topic is the app's bundle id")
c.eq({a["push_type"] for a in acc}, {"alert"}, "default push type alert")
c.eq({a["priority"] for a in acc}, {10}, "default priority 10")
c.eq({a["expiration"] for a in acc}, {None}, "no apns-expiration header when the job has none")
c.eq({a["collapse_id"] for a in acc}, {None}, "no collapse id")
c.eq({a["payload"] for a in acc}, {payload}, "payload byte for byte (UTF-8)")
c.eq({a["auth"] for a in acc}, {"token"}, "token auth")
c.eq({a["env"] for a in acc}, {"sandbox"}, "sandbox devices go to the sandbox host")
ids = [a["apns_id"] for a in acc]
c.check(all(UUID4.match(i or "") for i in ids) and len(set(ids)) == 3,
        "each notification has its own v4 apns-id: %s" % ids)

# 2. Headers from the job; background forces priority 5; voip gets the topic suffix.
exp = int(time.time()) + 3600
env.send([("u9", E.tok(9))], push_type="background", priority=10, expiration=exp,
         collapse_id="coll-1", payload='{"aps":{"content-available":1}}')
env.send([("u10", E.tok(10))], push_type="voip", priority=10, expiration=0)
sb.wait_count(5)
acc = {a["token"]: a for a in sb.accepted()}
bg, voip = acc.get(E.tok(9), {}), acc.get(E.tok(10), {})
c.eq((bg.get("push_type"), bg.get("priority"), bg.get("expiration"), bg.get("collapse_id")),
     ("background", 5, exp, "coll-1"), "background: headers from the job, priority 5")
c.eq((voip.get("topic"), voip.get("push_type"), voip.get("expiration")),
     (E.APP + ".voip", "voip", 0), "voip: topic suffix .voip, expiration 0 sent")

# 3. Production devices go to the production host only.
env.send([("p1", E.tok(101)), ("p2", E.tok(102))], env=1)
prod.wait_count(2)
pacc = prod.accepted()
c.eq(sorted(a["token"] for a in pacc), [E.tok(101), E.tok(102)], "production tokens")
c.eq({a["env"] for a in pacc}, {"production"}, "production host used")
time.sleep(0.3)
c.eq(sb.count(), 5, "sandbox server got nothing of the production job")

# 4. Two connections per (app, environment): both carry notifications.
env.send([("m%d" % i, E.tok(600 + i)) for i in range(40)])
sb.wait_count(45)
conns = {a["connection"] for a in sb.accepted()[5:]}
c.eq(len(conns), 2, "connections=2: the load is spread over two connections")
c.eq(s.metric("connections"), 4, "connections gauge: 2 sandbox + 2 production")

# 5. Unknown ident, bad jobs, bad tokens: counted, nothing sent.
env.send([("x1", E.tok(201)), ("x2", E.tok(202))], ident="com.unknown.app")
env.hub.send(b"\x93\x01\x02\x03")
env.hub.send(b"not msgpack at all")
env.send([("b1", "nothex!"), ("b2", E.tok(203))])
s.wait_metric("unknown_ident_total", 2)
s.wait_metric("bad_job_total", 2)
sb.wait_count(46)
c.eq(s.metric("unknown_ident_total"), 2, "unknown ident counted per notification")
c.eq(s.metric("bad_job_total"), 2, "undecodable jobs counted")
c.eq(s.metric("rejected_total", reason="bad_token_format"), 1, "malformed device token refused")
c.check("event=unknown_ident" in s.output(), "unknown ident logged")
c.eq(s.metric("delivered_total", env="sandbox"), 46, "delivered_total{env=sandbox}")
c.eq(s.metric("delivered_total", env="production"), 2, "delivered_total{env=production}")
c.eq(s.metric("pending"), 0, "nothing left pending")
env.check_acked(what="(delivered, unknown ident, undecodable, refused tokens)")
c.eq(env.hub.stats()["acked"], len(env.hub.sent), "each job acked exactly once")
c.eq(s.metric("jobs_acked_total"), len(env.hub.sent), "jobs_acked_total")

# 6. Certificate auth, a second sender on its own broker.
csrv = env.server("cert", srv_env="sandbox", token_auth=False, cert_auth=True)
base2, push2 = env.broker()
cfg = env.sender_config(sandbox=csrv, apps={E.CERT_APP: env.cert_app()}, ping_interval_s=1)
cfg["broker_address"] = "tcp://127.0.0.1:%d" % base2
cfg["log_level"] = "debug"
s2 = env.sender("cert", cfg)
push2.send(env.job([("c1", E.tok(301)), ("c2", E.tok(302))], ident=E.CERT_APP))
csrv.wait_count(2)
cacc = csrv.accepted()
c.eq(sorted(a["token"] for a in cacc), [E.tok(301), E.tok(302)], "certificate app delivered")
c.eq({(a["auth"], a["cert_cn"], a["topic"]) for a in cacc},
     {("cert", E.CERT_APP, E.CERT_APP)}, "client certificate presented, topic from config")
c.eq(s2.metric("jwt_minted_total"), 0, "no JWT for certificate auth")
env.check_acked(push2, "(certificate app)")
c.check(re.search(r"event=notif msg_id=m\d+ apns_id=[0-9a-f-]{36} uid=\"c1\"", s2.output()),
        "apns-id logged at debug with the msg_id")
E.h.wait_for(lambda: s2.output().count("event=ping_sent") >= 2, 10, what="idle PINGs")
c.check("ping_timeout" not in s2.output() and s2.metric("connections") == 1,
        "idle connection kept open with PINGs (answered)")

# 7. No apps at all: one log line at start, and the count of what could not be sent.
base3, push3 = env.broker()
cfg = env.sender_config(apps={})
cfg["broker_address"] = "tcp://127.0.0.1:%d" % base3
s3 = env.sender("none", cfg)
push3.send(env.job([("n1", E.tok(401)), ("n2", E.tok(402)), ("n3", E.tok(403))]))
s3.wait_metric("not_configured_total", 3)
c.eq(s3.metric("not_configured_total"), 3, "not_configured_total counts notifications")
c.eq(s3.output().count("no APNs credentials configured"), 1, "logged once at start")
env.check_acked(push3, "(not configured: acked at once)")

# 8. Bad configuration: exit 2 before binding anything, naming the key.
for bad, key in (({E.APP: env.token_app(auth="password")}, "apns_sender.apps"),
                 ({E.APP: env.token_app(key_file="/nonexistent.p8")}, "apns_sender.apps"),
                 ({E.APP: env.cert_app(cert_file="/nonexistent.pem")}, "apns_sender.apps")):
    path = E.h.write_config(env.wd, env.sender_config(apps=bad), "bad.json")
    p = E.h.subprocess.run([E.h.binary(env.build_dir, "pushpipe-apns-sender"), "--config", path],
                           capture_output=True, text=True, timeout=10)
    c.check(p.returncode == 2 and key in p.stderr, "bad app config: exit 2, %r" % p.stderr.strip())
cfg = env.sender_config()
cfg["apns_sender"]["retyr"] = {"max_attempts": 3}
path = E.h.write_config(env.wd, cfg, "bad.json")
p = E.h.subprocess.run([E.h.binary(env.build_dir, "pushpipe-apns-sender"), "--config", path],
                       capture_output=True, text=True, timeout=10)
c.check(p.returncode == 2 and "retyr" in p.stderr, "unknown key: exit 2, %r" % p.stderr.strip())

# 9. SIGTERM: exit 0.
c.eq(s.stop(), 0, "sender exits 0 on SIGTERM")
E.h.wait_for(lambda: env.hub.stats()["byes"] == 1, 5, what="the hub to hear B")
c.eq(env.hub.stats()["byes"], 1, "the stopped sender said bye (B) to the hub")
c.eq(s2.stop(), 0, "cert sender exits 0")
c.eq(s3.stop(), 0, "unconfigured sender exits 0")
env.finish()
