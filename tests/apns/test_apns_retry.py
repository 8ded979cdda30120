"""429 and 5xx are retried with backoff, a bounded number of times, never past the
notification's expiration; expiration 0 means one attempt; other 4xx are dropped."""
import time

import apns_env as E

env = E.Env("retry")
c = env.checks
sb = env.server("sandbox")
cfg = env.sender_config(sandbox=sb, retry={"max_attempts": 3, "base_ms": 50, "max_ms": 100})
s = env.sender("a", cfg)

# Warm the connection up (token auth starts at one stream until a request succeeds).
env.send([("w", E.tok(1000))])
sb.wait_count(1)

# 429 twice, then delivered.
sb.rules({"throttle": {"count": 2, "status": 429, "reason": "TooManyRequests"}})
env.send([("u1", E.tok(1))])
sb.wait_count(2)
c.eq(sb.accepted()[-1]["token"], E.tok(1), "429 twice, then delivered")
c.eq(s.metric("retried_total", status="429"), 2, "retried_total{status=429} == 2")

# 503 twice, then delivered.
sb.rules({"throttle": {"count": 2, "status": 503, "reason": "ServiceUnavailable"}})
env.send([("u2", E.tok(2))])
sb.wait_count(3)
c.eq(sb.accepted()[-1]["token"], E.tok(2), "503 twice, then delivered")
c.eq(s.metric("retried_total", status="503"), 2, "retried_total{status=503} == 2")

# 500 three times: max_attempts 3, given up.
sb.rules({"throttle": {"count": 3, "status": 500, "reason": "InternalServerError"}})
env.send([("u3", E.tok(3))])
s.wait_metric("retry_exhausted_total", 1)
c.eq(s.metric("retried_total", status="500"), 2, "two retries after 500 (3 attempts)")
c.eq(s.metric("rejected_total", reason="retries_exhausted"), 1, "counted as exhausted")

# expiration 0: one attempt only.
sb.rules({"throttle": {"count": 1, "status": 503, "reason": "ServiceUnavailable"}})
env.send([("u4", E.tok(4))], expiration=0)
s.wait_metric("expired_total", 1)
c.eq(s.metric("retried_total", status="503"), 2, "expiration 0: no retry after a 503")

# Other 4xx: dropped and counted by reason.
sb.rules({"tokens": {E.tok(5): {"status": 400, "reason": "BadTopic"}}})
env.send([("u5", E.tok(5))])
s.wait_metric("rejected_total", 1, reason="BadTopic")
c.eq(s.metric("rejected_total", reason="BadTopic"), 1, "400 BadTopic dropped, counted")
c.check("event=notif_rejected status=400 reason=\"BadTopic\"" in s.output(), "and logged")

# A second sender with many attempts allowed: the expiration stops the retries.
base2, push2 = env.broker()
cfg2 = env.sender_config(sandbox=sb, retry={"max_attempts": 100, "base_ms": 50, "max_ms": 100})
cfg2["broker_address"] = "tcp://127.0.0.1:%d" % base2
s2 = env.sender("b", cfg2)
sb.rules({"throttle": {"count": 100000, "status": 503, "reason": "ServiceUnavailable"}})
push2.send(env.job([("u6", E.tok(6))], expiration=int(time.time()) + 1))
s2.wait_metric("expired_total", 1, timeout=10)
retries = s2.metric("retried_total", status="503")
sb.rules({"throttle": {"count": 0, "status": 503}})
time.sleep(0.5)
c.check(1 <= retries < 99, "retried while it was valid (%d times)" % retries)
c.eq(s2.metric("retry_exhausted_total"), 0, "stopped by the expiration, not by attempts")
c.check(E.tok(6) not in [a["token"] for a in sb.accepted()], "never delivered after expiry")
c.eq(s.metric("pending") + s2.metric("pending"), 0, "nothing held")
c.eq(s.stop(), 0, "exit 0")
c.eq(s2.stop(), 0, "exit 0")
env.finish()
