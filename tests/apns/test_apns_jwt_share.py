"""A bad shared provider token must not take a team down (issue 9.5).

The token of (team, key) is shared through the Redis hash pushpipe:apns:jwt:<team>:<kid>.
Here the test writes junk there - a well-formed token signed by another key, plain garbage,
a key of the wrong type - before the sender starts and while it runs (renewal every 2 s so
that it reads the key again), and checks that the sender refuses it (counted in
jwt_share_rejected_total{reason}), keeps delivering, and leaves a token in the key that
verifies with the team's public key. Then APNs (the test server) answers 403
InvalidProviderToken: once (the sender re-signs and the notification is delivered), and for
ever for ten devices (the sender re-signs at most once per refused_resign_s and the
notifications end after retry.max_attempts, their job acked).

On the code before the fix the first part fails: the sender adopts the wrongly signed
token, every notification gets 403 InvalidProviderToken and is dropped, so nothing is
delivered (wait_count times out)."""
import base64
import json
import os
import subprocess
import time

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

import apns_env as E

env = E.Env("jwt-share")
c = env.checks
r = env.start_redis()
sb = env.server("sandbox")
KEY = "pushpipe:apns:jwt:%s:%s" % (E.TEAM_ID, E.KEY_ID)
with open(os.path.join(env.pki, "AuthKey_%s.pub.pem" % E.KEY_ID), "rb") as f:
    PUB = serialization.load_pem_public_key(f.read())

# Another P-256 key: its tokens look right (alg, kid, iss, iat) but APNs refuses them.
other_key = os.path.join(env.wd, "other.p8")
subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-out", other_key], check=True, capture_output=True)


def b64d(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def token_ok(tok):
    """True if tok is a provider token of our team and key that our public key verifies."""
    try:
        h, cl, sig = tok.split(".")
        hdr, claims, raw = json.loads(b64d(h)), json.loads(b64d(cl)), b64d(sig)
        if hdr != {"alg": "ES256", "kid": E.KEY_ID} or claims.get("iss") != E.TEAM_ID:
            return False
        der = encode_dss_signature(int.from_bytes(raw[:32], "big"),
                                   int.from_bytes(raw[32:], "big"))
        PUB.verify(der, (h + "." + cl).encode(), ec.ECDSA(hashes.SHA256()))
        return True
    except (ValueError, InvalidSignature, json.JSONDecodeError):
        return False


def stored_ok():
    """The shared key is a hash whose token verifies and whose iat is the token's."""
    if r.type(KEY) != b"hash":
        return False
    st = r.hgetall(KEY)
    tok = st.get(b"token", b"").decode(errors="replace")
    if not token_ok(tok):
        return False
    return int(st.get(b"iat", b"0")) == json.loads(b64d(tok.split(".")[1]))["iat"]


def rejected(reason=None):
    return s.metric("jwt_share_rejected_total", **({"reason": reason} if reason else {}))


forged = E.ats.mint_jwt(env.pki, key=other_key)
c.check(not token_ok(forged), "the forged token does not verify with our key")
c.check(token_ok(E.ats.mint_jwt(env.pki)), "(and the checker accepts a good one)")

# --- 1. before the sender starts: a wrongly signed token, fresh iat ----------------------
r.hset(KEY, mapping={"iat": int(time.time()), "token": forged})
r.expire(KEY, 3300)
cfg = env.sender_config(sandbox=sb, jwt={"renew_s": 2, "min_renew_s": 1, "max_age_s": 3,
                                         "refused_resign_s": 3},
                        retry={"max_attempts": 4, "base_ms": 100, "max_ms": 200})
s = env.sender("a", cfg)
env.send([("u1", E.tok(1))])
sb.wait_count(1, timeout=10)
c.eq(sb.accepted()[0]["token"], E.tok(1), "delivered although Redis held a forged token")
c.check(rejected("signature") >= 1, "jwt_share_rejected_total{reason=signature} counted (%s)"
        % rejected("signature"))
c.check("event=jwt_share_rejected" in s.output() and "reason=signature" in s.output(),
        "and logged")
c.eq(s.metric("jwt_adopted_total"), 0, "the forged token was not adopted")
c.check(stored_ok(), "Redis now holds our valid token, not the forged one")
c.eq(s.metric("rejected_total", reason="InvalidProviderToken"), 0,
     "no notification lost to InvalidProviderToken")

# --- 2. while it runs: junk of several kinds, read at each renewal (every 2 s) ----------
# The junk's iat is a second ahead (within the skew a sender accepts): a stored token
# older than the sender's renewal threshold (now - renew_s) is replaced without being read,
# which is the normal renewal and proves nothing here.
def fresh():
    return int(time.time()) + 1


junk = [("garbage", lambda: r.hset(KEY, mapping={"iat": fresh(), "token": "garbage"})),
        ("forged", lambda: r.hset(KEY, mapping={
            "iat": fresh(), "token": E.ats.mint_jwt(env.pki, iat=fresh(), key=other_key)})),
        ("wrong team", lambda: r.hset(KEY, mapping={
            "iat": fresh(), "token": E.ats.mint_jwt(env.pki, iat=fresh(), team="OTHERTEAM")})),
        ("string key", lambda: (r.delete(KEY), r.set(KEY, "garbage")))]
n = 1
for what, write in junk:
    before = rejected()
    write()
    # Keep sending while the junk sits there: every notification must go through.
    deadline = time.time() + 6
    while time.time() < deadline and rejected() == before:
        n += 1
        env.send([("u%d" % n, E.tok(n))])
        sb.wait_count(n, timeout=10)
        time.sleep(0.2)
    c.check(rejected() > before, "%s in the key: rejected (counter %s -> %s)"
            % (what, before, rejected()))
    E.h.wait_for(stored_ok, 5, what="a valid token back in Redis after %s" % what)
    n += 1
    env.send([("u%d" % n, E.tok(n))])
    sb.wait_count(n, timeout=10)
c.eq(sb.count(), n, "every notification delivered while junk came and went (%d)" % n)
for reason in ("malformed", "signature", "iss", "wrong_type"):
    c.check(rejected(reason) >= 1, "rejected reason=%s counted (%s)" % (reason, rejected(reason)))
c.eq(s.metric("rejected_total", reason="InvalidProviderToken"), 0,
     "still no notification lost to InvalidProviderToken")
c.eq(s.stop(), 0, "exit 0")

# --- 3. APNs refuses a token once: re-signed, notification retried and delivered --------
sb.reset()
base2, hub2 = env.broker()
cfg = env.sender_config(sandbox=sb, jwt={"refused_resign_s": 3},
                        retry={"max_attempts": 4, "base_ms": 100, "max_ms": 200})
cfg["broker_address"] = "tcp://127.0.0.1:%d" % base2
s = env.sender("b", cfg)
hub2.send(env.job([("v1", E.tok(101))]))
sb.wait_count(1)
minted0 = s.metric("jwt_minted_total") + s.metric("jwt_adopted_total")
sb.rules({"throttle": {"count": 1, "status": 403, "reason": "InvalidProviderToken"}})
hub2.send(env.job([("v2", E.tok(102))]))
sb.wait_count(2, timeout=10)
c.eq(sb.accepted()[-1]["token"], E.tok(102), "delivered after 403 InvalidProviderToken")
c.eq(s.metric("jwt_refused_resigns_total"), 1, "one re-sign for the refusal")
c.eq(s.metric("jwt_minted_total") + s.metric("jwt_adopted_total"), minted0 + 1,
     "a new token made")
c.eq(s.metric("retried_total", status="403"), 1, "the refused notification was retried")
c.check(stored_ok(), "the new token is in Redis")
env.check_acked(hub2, "after the refusal")

# --- 4. APNs refuses for ever (here: ten devices always get it): bounded ----------------
# 10 notifications x 4 attempts = 40 refusals; one re-sign per refusal would be 40 token
# updates, the limit allows one per refused_resign_s (3 s).
refused = [E.tok(200 + i) for i in range(10)]
sb.rules({"tokens": {t: {"status": 403, "reason": "InvalidProviderToken"} for t in refused}})
resigns0 = s.metric("jwt_refused_resigns_total")
retried0 = s.metric("retried_total", status="403")
t0 = time.time()
hub2.send(env.job([("w%d" % i, t) for i, t in enumerate(refused)]))
s.wait_metric("retry_exhausted_total", 10, timeout=40)
took = time.time() - t0
resigns = s.metric("jwt_refused_resigns_total") - resigns0
refusals = s.metric("retried_total", status="403") - retried0 + 10
c.check(refusals >= 30, "APNs refused %d times" % refusals)
c.check(1 <= resigns <= took / 3 + 2, "re-signs bounded by refused_resign_s: %d in %.1f s "
        "for %d refusals" % (resigns, took, refusals))
c.eq(s.metric("rejected_total", reason="retries_exhausted"), 10,
     "each notification ended after retry.max_attempts")
env.check_acked(hub2, "after the endless refusal")
hub2.send(env.job([("v4", E.tok(104))]))
sb.wait_count(3, timeout=10)
c.eq(sb.accepted()[-1]["token"], E.tok(104), "other devices still delivered")
c.eq(s.stop(), 0, "exit 0")
env.finish()
