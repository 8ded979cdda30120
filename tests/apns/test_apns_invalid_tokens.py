"""Invalid tokens: 410 Unregistered/ExpiredToken and 400 BadDeviceToken/DeviceTokenNotForTopic
become events (log, counter, Redis list) and the token is removed from User:<uid> only
while the user still holds that very token."""
import json

import apns_env as E

env = E.Env("invalid")
c = env.checks
r = env.start_redis()
sb = env.server("sandbox")
LIST = "pushpipe:invalid_tokens"
s = env.sender("main", env.sender_config(sandbox=sb, invalid_token_list=LIST))

t_gone, t_again, t_bad, t_topic, t_ok, t_expired = (E.tok(i) for i in range(1, 7))
r.hset("User:u1", mapping={"app_token": t_gone, "app_ident": E.APP})
r.hset("User:u2", mapping={"app_token": E.tok(99), "app_ident": E.APP})  # registered again
r.hset("User:u3", mapping={"app_token": t_bad, "app_ident": E.APP})
r.hset("User:u4", mapping={"app_token": t_topic, "app_ident": E.APP})
r.hset("User:u5", mapping={"app_token": t_ok, "app_ident": E.APP})
r.hset("User:u6", mapping={"app_token": t_expired, "app_ident": E.APP})
sb.rules({"tokens": {
    t_gone: {"status": 410, "reason": "Unregistered", "timestamp": 1700000000000},
    t_again: {"status": 410, "reason": "Unregistered", "timestamp": 1700000000000},
    t_bad: {"status": 400, "reason": "BadDeviceToken"},
    t_topic: {"status": 400, "reason": "DeviceTokenNotForTopic"},
    t_expired: {"status": 410, "reason": "ExpiredToken", "timestamp": 1700000000000},
}})
env.send([("u1", t_gone), ("u2", t_again), ("u3", t_bad), ("u4", t_topic), ("u5", t_ok),
          ("u6", t_expired)], msg_id="m-invalid")
s.wait_metric("invalid_token_total", 5)
s.wait_metric("delivered_total", 1)
E.h.wait_for(lambda: r.llen(LIST) >= 5, 10, what="5 events on the list")
c.eq(s.metric("invalid_token_total", reason="Unregistered"), 2, "410 Unregistered counted")
c.eq(s.metric("invalid_token_total", reason="ExpiredToken"), 1, "410 ExpiredToken counted")
c.eq(s.metric("invalid_token_total", reason="BadDeviceToken"), 1, "400 BadDeviceToken")
c.eq(s.metric("invalid_token_total", reason="DeviceTokenNotForTopic"), 1,
     "400 DeviceTokenNotForTopic")
c.eq(r.hget("User:u1", "app_token"), None, "invalid token removed from User:u1")
c.eq(r.hget("User:u1", "app_ident"), E.APP.encode(), "other fields of the user stay")
c.eq(r.hget("User:u2", "app_token"), E.tok(99).encode(),
     "a token registered again meanwhile is kept")
c.eq(r.hget("User:u3", "app_token"), None, "BadDeviceToken removed")
c.eq(r.hget("User:u4", "app_token"), None, "DeviceTokenNotForTopic removed")
c.eq(r.hget("User:u5", "app_token"), t_ok.encode(), "the delivered device's token stays")
c.eq(r.hget("User:u6", "app_token"), None, "ExpiredToken removed")
c.eq(s.metric("tokens_removed_total"), 4, "tokens_removed_total")
c.eq(s.metric("tokens_kept_total"), 1, "tokens_kept_total (registered again)")
events = [json.loads(x) for x in r.lrange(LIST, 0, -1)]
c.eq(sorted(e["uid"] for e in events), ["u1", "u2", "u3", "u4", "u6"], "one event per token")
ev = [e for e in events if e["uid"] == "u1"][0]
c.eq((ev["token"], ev["reason"], ev["ident"], ev["env"], ev["msg_id"], ev["timestamp"]),
     (t_gone, "Unregistered", E.APP, "sandbox", "m-invalid", 1700000000000),
     "event fields")
c.eq(s.output().count("event=invalid_token "), 5, "one log line per invalid token")
c.eq([a["token"] for a in sb.accepted()], [t_ok], "only the good token was accepted")

# Removal can be switched off: events still flow, the user keeps the token.
base2, push2 = env.broker()
cfg = env.sender_config(sandbox=sb, remove_invalid_tokens=False, invalid_token_list=LIST)
cfg["broker_address"] = "tcp://127.0.0.1:%d" % base2
s2 = env.sender("noremove", cfg)
r.hset("User:u7", "app_token", t_bad)
push2.send(env.job([("u7", t_bad)]))
E.h.wait_for(lambda: r.llen(LIST) >= 6, 10, what="event of the second sender")
c.eq(r.hget("User:u7", "app_token"), t_bad.encode(), "remove_invalid_tokens=false keeps it")
c.eq(s2.metric("tokens_removed_total"), 0, "nothing removed")
c.eq(s.stop(), 0, "exit 0")
c.eq(s2.stop(), 0, "exit 0")
env.finish()
