"""Provider tokens: renewed on 403 ExpiredProviderToken (with the 20-minute floor, here
scaled down), renewed by age, and shared through Redis by several senders of one team."""
import time

import apns_env as E

env = E.Env("jwt")
c = env.checks
sb = env.server("sandbox")

# --- renewal on ExpiredProviderToken, floor already passed ----------------------------
cfg = env.sender_config(sandbox=sb, jwt={"renew_s": 3000, "min_renew_s": 1, "max_age_s": 3300})
s = env.sender("renew", cfg)
env.send([("u1", E.tok(1))])
sb.wait_count(1)
iat0 = sb.accepted()[0]["jwt_iat"]
c.eq(s.metric("jwt_minted_total"), 1, "one token minted at start")
time.sleep(1.2)  # older than min_renew_s = 1
sb.rules({"expire_jwt_once": True})
env.send([("u2", E.tok(2))])
sb.wait_count(2)
a = sb.accepted()[-1]
c.eq(a["token"], E.tok(2), "delivered after ExpiredProviderToken")
c.check(a["jwt_iat"] > iat0, "with a new token (iat %s > %s)" % (a["jwt_iat"], iat0))
c.eq(s.metric("jwt_minted_total"), 2, "re-signed once")
c.eq(s.metric("retried_total", status="403"), 1, "the rejected request was retried")
c.eq(s.stop(), 0, "exit 0")

# --- the floor: a token younger than min_renew_s is not replaced at once ---------------
sb.reset()
base2, push2 = env.broker()
cfg = env.sender_config(sandbox=sb, jwt={"renew_s": 3000, "min_renew_s": 5, "max_age_s": 3300},
                        retry={"max_attempts": 5, "base_ms": 50, "max_ms": 100})
cfg["broker_address"] = "tcp://127.0.0.1:%d" % base2
s2 = env.sender("floor", cfg)
push2.send(env.job([("u3", E.tok(3))]))
sb.wait_count(1)
sb.rules({"expire_jwt_once": True})
push2.send(env.job([("u4", E.tok(4))]))
E.h.wait_for(lambda: "event=jwt_expired_early" in s2.output(), 5, what="jwt_expired_early")
time.sleep(0.5)
c.eq(s2.metric("jwt_minted_total"), 1, "no new token before the floor")
c.eq(sb.count(), 1, "the notification waits for the renewal")
sb.wait_count(2, timeout=10)
c.eq(s2.metric("jwt_minted_total"), 2, "renewed once the floor was reached")
c.eq(sb.accepted()[-1]["token"], E.tok(4), "then delivered")
c.eq(s2.stop(), 0, "exit 0")

# --- renewal by age --------------------------------------------------------------------
sb.reset()
base3, push3 = env.broker()
cfg = env.sender_config(sandbox=sb, jwt={"renew_s": 2, "min_renew_s": 1, "max_age_s": 3})
cfg["broker_address"] = "tcp://127.0.0.1:%d" % base3
s3 = env.sender("age", cfg)
push3.send(env.job([("u5", E.tok(5))]))
sb.wait_count(1)
time.sleep(2.3)
push3.send(env.job([("u6", E.tok(6))]))
sb.wait_count(2)
iats = [a["jwt_iat"] for a in sb.accepted()]
c.check(iats[1] > iats[0], "a token older than renew_s is replaced (%s)" % iats)
c.eq(s3.metric("jwt_minted_total"), 2, "two tokens minted")
c.eq(s3.stop(), 0, "exit 0")

# --- shared through Redis --------------------------------------------------------------
r = env.start_redis()
sb.reset()
cfg = env.sender_config(sandbox=sb)
sa = env.sender("share-a", cfg)
sbb = env.sender("share-b", env.sender_config(sandbox=sb))
E.h.wait_for(lambda: sa.metric("jwt_minted_total") + sa.metric("jwt_adopted_total") +
             sbb.metric("jwt_minted_total") + sbb.metric("jwt_adopted_total") >= 2, 10,
             what="both racing senders to hold a token")
minted = sa.metric("jwt_minted_total") + sbb.metric("jwt_minted_total")
adopted = sa.metric("jwt_adopted_total") + sbb.metric("jwt_adopted_total")
c.eq((minted, adopted), (1, 1), "two senders starting together: one minted, one adopted")
key = "pushpipe:apns:jwt:%s:%s" % (E.TEAM_ID, E.KEY_ID)
stored = r.hgetall(key)
c.check(stored.get(b"token", b"").count(b".") == 2 and int(stored.get(b"iat", 0)) > 0,
        "Redis holds {iat, token} under %s" % key)
c.check(0 < r.ttl(key) <= 3300, "and it expires (ttl %s)" % r.ttl(key))
time.sleep(1.1)  # a sender that minted now would use a later iat
sc = env.sender("share-c", env.sender_config(sandbox=sb))
sc.wait_metric("jwt_adopted_total", 1)
c.eq(sc.metric("jwt_minted_total"), 0, "a later sender adopts the shared token")
for i in range(12):
    env.send([("s%d" % i, E.tok(500 + i))])
sb.wait_count(12)
st = sb.stats()
c.eq(st.get("jwt_distinct_iat"), 1, "APNs saw a single token iat from three senders")
c.check(sum(1 for x in (sa, sbb, sc) if x.metric("delivered_total") > 0) >= 2,
        "the notifications went through several senders")
for x in (sa, sbb, sc):
    c.eq(x.stop(), 0, "exit 0")
env.finish()
