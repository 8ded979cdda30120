"""pp-apns-testserver speaks Apple's provider API: good requests are accepted and recorded,
bad ones get Apple's status and reason, and the control API's rules take effect.

Drives the server with curl --http2 (one request) and nghttp (several on one connection),
the same way any HTTP/2 client would; h2load checks the benchmark path works.
"""
import json
import os
import re
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pp_harness as h  # noqa: E402
from apns_testserver import (TOKEN, ApnsTestServer, curl_post, make_pki, mint_jwt,  # noqa: E402
                             nghttp, recv_max_streams)

args = h.parse_args()
wd = h.workdir("apns-server")
pki = make_pki(wd)
c = h.Checks()

APP = "com.example.app"
UUID = "123e4567-e89b-12d3-a456-426614174000"
GOOD = {"apns-topic": APP, "apns-push-type": "alert"}


def eventually(cond, timeout=5.0):
    try:
        return bool(h.wait_for(cond, timeout))
    except AssertionError:
        return False


def hdrs(**kw):
    d = dict(GOOD)
    for k, v in kw.items():
        k = k.replace("_", "-")
        if v is None:
            d.pop(k, None)
        else:
            d[k] = v
    return d


srv = ApnsTestServer(args.build_dir, wd, pki, env="sandbox", token_auth=True,
                     topics=[APP, "com.example.other"])
jwt = mint_jwt(pki)


def post(**kw):
    kw.setdefault("jwt", jwt)
    kw.setdefault("headers", GOOD)
    return curl_post(srv.port, pki, **kw)


# ---- a good request ---------------------------------------------------------------------
st, hd, body = post(headers=hdrs(apns_id=UUID, apns_priority="5", apns_expiration="1700000000",
                                 apns_collapse_id="c1"),
                    body=b'{"aps":{"alert":"hello"},"k":1}')
c.eq(st, 200, "good request: 200")
c.eq(body, b"", "good request: empty body")
c.eq(hd.get("apns-id"), UUID, "good request: apns-id echoed")
acc = srv.accepted()
c.eq(len(acc), 1, "good request recorded")
if acc:
    r = acc[0]
    c.eq((r["token"], r["topic"], r["push_type"], r["priority"], r["expiration"],
          r["collapse_id"], r["apns_id"], r["env"], r["auth"]),
         (TOKEN, APP, "alert", 5, 1700000000, "c1", UUID, "sandbox", "token"),
         "record: headers as sent")
    c.eq(json.loads(r["payload"]), {"aps": {"alert": "hello"}, "k": 1}, "record: payload text")
    c.check(isinstance(r["jwt_iat"], int) and abs(r["jwt_iat"] - time.time()) < 120,
            "record: jwt_iat")
    c.check(r["received_us"] > 1.6e15 and r["connection"] >= 1, "record: time and connection")

st, hd, _ = post()
c.eq(st, 200, "request without apns-id: 200")
c.check(re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}",
                     hd.get("apns-id", "")) is not None, "generated apns-id is a UUID")
c.eq(srv.accepted(since=1)[0]["apns_id"] if srv.count() == 2 else None, hd.get("apns-id"),
     "accepted?since=1 gives the second record with the generated apns-id")

# ---- bad requests ------------------------------------------------------------------------
other_key = os.path.join(wd, "other.p8")
subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-out", other_key], check=True, capture_output=True)
big = b'{"aps":{"alert":"' + b"x" * 4100 + b'"}}'
voip_body = b'{"aps":{},"d":"' + b"y" * 4900 + b'"}'
cases = [
    ("GET", dict(method="GET", body=None), 405, "MethodNotAllowed"),
    ("bad path", dict(path="/3/notdevice/" + TOKEN), 404, "BadPath"),
    ("path /2/device", dict(path="/2/device/" + TOKEN), 404, "BadPath"),
    ("non-hex token", dict(token="zz" * 32), 400, "BadDeviceToken"),
    ("odd-length token", dict(token="abc" * 21), 400, "BadDeviceToken"),
    ("short token", dict(token="abcd"), 400, "BadDeviceToken"),
    ("missing token", dict(path="/3/device/"), 400, "MissingDeviceToken"),
    ("missing topic", dict(headers=hdrs(apns_topic=None)), 400, "MissingTopic"),
    ("topic not allowed", dict(headers=hdrs(apns_topic="com.evil.app")), 400, "TopicDisallowed"),
    ("topic with bad characters", dict(headers=hdrs(apns_topic="com example")), 400, "BadTopic"),
    ("voip without .voip topic", dict(headers=hdrs(apns_push_type="voip")), 400,
     "DeviceTokenNotForTopic"),
    ("unknown push type", dict(headers=hdrs(apns_push_type="shout")), 400, "InvalidPushType"),
    ("priority 7", dict(headers=hdrs(apns_priority="7")), 400, "BadPriority"),
    ("background at priority 10", dict(headers=hdrs(apns_push_type="background",
                                                    apns_priority="10")), 400, "BadPriority"),
    ("expiration not a number", dict(headers=hdrs(apns_expiration="tomorrow")), 400,
     "BadExpirationDate"),
    ("collapse id of 65 bytes", dict(headers=hdrs(apns_collapse_id="c" * 65)), 400,
     "BadCollapseId"),
    ("apns-id not a UUID", dict(headers=hdrs(apns_id="not-a-uuid")), 400, "BadMessageId"),
    ("duplicate apns-topic", dict(headers=hdrs(apns_topic=[APP, APP])), 400, "DuplicateHeaders"),
    ("no authorization", dict(jwt=None), 403, "MissingProviderToken"),
    ("JWT signed by another key", dict(jwt=mint_jwt(pki, key=other_key)), 403,
     "InvalidProviderToken"),
    ("JWT with a tampered signature", dict(jwt=jwt[:-4] + ("AAAA" if jwt[-4:] != "AAAA" else "BBBB")),
     403, "InvalidProviderToken"),
    ("JWT of another team", dict(jwt=mint_jwt(pki, team="OTHERTEAM1")), 403,
     "InvalidProviderToken"),
    ("JWT with another key id", dict(jwt=mint_jwt(pki, kid="OTHERKEY99")), 403,
     "InvalidProviderToken"),
    ("JWT with alg HS256", dict(jwt=mint_jwt(pki, alg="HS256")), 403, "InvalidProviderToken"),
    ("JWT not a JWT", dict(jwt="hello"), 403, "InvalidProviderToken"),
    ("expired JWT (iat 2 h ago)", dict(jwt=mint_jwt(pki, iat=int(time.time()) - 7200)), 403,
     "ExpiredProviderToken"),
    ("empty payload", dict(body=b""), 400, "PayloadEmpty"),
    ("payload of 4117 bytes", dict(body=big), 413, "PayloadTooLarge"),
    ("payload without aps", dict(body=b'{"alert":"hi"}'), 400, "BadPayload"),
    ("payload not JSON", dict(body=b'{"aps":'), 400, "BadPayload"),
    ("payload a JSON array", dict(body=b'[{"aps":{}}]'), 400, "BadPayload"),
]
before = srv.count()
for what, kw, want_status, want_reason in cases:
    st, hd, body = post(**kw)
    try:
        reason = json.loads(body).get("reason")
    except ValueError:
        reason = body
    c.eq((st, reason), (want_status, want_reason), "%s: %d %s" % (what, want_status, want_reason))
c.eq(srv.count(), before, "rejected requests are not recorded")
stats = srv.stats()
c.eq(stats["rejected"].get("BadDeviceToken"), 3, "stats count rejections by reason")

st, _, _ = post(headers=hdrs(apns_push_type="voip", apns_topic=APP + ".voip"), body=voip_body)
c.eq(st, 200, "voip payload of 4.9 KB to the .voip topic: 200")
st, _, _ = post(headers=hdrs(apns_push_type="background", apns_priority="5"))
c.eq(st, 200, "background at priority 5: 200")

# TLS 1.2+ and ALPN h2 only.
def curl_rc(*extra):
    return subprocess.run(["curl", "-sS", "--noproxy", "*", "--cacert", os.path.join(pki, "ca.pem"),
                           "-o", "/dev/null", "-w", "%{http_code}", "-d", '{"aps":{}}'] +
                          list(extra) + ["https://127.0.0.1:%d/3/device/%s" % (srv.port, TOKEN)],
                          capture_output=True, text=True).stdout


c.eq(curl_rc("--http2", "--tlsv1.2", "--tls-max", "1.2"), "403", "TLS 1.2 with h2 is served")
c.eq(curl_rc("--http2", "--tlsv1.1", "--tls-max", "1.1"), "000", "TLS 1.1 is refused")
c.eq(curl_rc("--http1.1"), "000", "a client without ALPN h2 is refused")

# ---- rules -------------------------------------------------------------------------------
srv.reset()
c.eq((srv.count(), srv.stats()["requests"]), (0, 0), "reset clears records and counters")

dead = "cd" * 32
st, rep = srv.rules({"tokens": {dead: {"status": 410, "reason": "Unregistered",
                                       "timestamp": 1700000000123}}})
c.eq(st, 200, "token rule accepted")
st, _, body = post(token=dead)
c.eq((st, json.loads(body or b"{}")), (410, {"reason": "Unregistered", "timestamp": 1700000000123}),
     "token rule: 410 Unregistered with timestamp")
st, _, body = post(token=dead.upper())
c.eq(st, 410, "token rule: token matched regardless of case")
st, _, _ = post()
c.eq(st, 200, "token rule: other tokens unaffected")

srv.rules({"throttle": {"count": 2, "status": 429, "reason": "TooManyRequests"}})
got = [post()[0] for _ in range(3)]
c.eq(got, [429, 429, 200], "throttle: next 2 requests 429, then 200")
srv.rules({"throttle": {"count": 1, "status": 503}})
st, _, body = post()
c.eq((st, body), (503, b'{"reason":"ServiceUnavailable"}'), "throttle 503: ServiceUnavailable")

srv.rules({"expire_jwt_once": True})
got = [post()[0] for _ in range(2)]
c.eq(got, [403, 200], "expire_jwt_once: one 403 ExpiredProviderToken, then 200")

st, rep = srv.rules({"no_such_rule": 1})
c.eq(st, 400, "unknown rule refused with 400")
st, rep = srv.rules({"throttle": {"count": 1, "reason": "bad reason\n"}})
c.eq(st, 400, "bad reason text refused")

# The stream ramp: 1 stream until the first good token request, then the full 1000.
srv.reset()
rc, out = nghttp(srv.port, pki, 1, headers=GOOD, jwt=jwt)
c.eq(recv_max_streams(out)[:2], [1, 1000], "token auth: SETTINGS 1 stream, then 1000 after a good request")

# max_concurrent_streams reaches an open connection (held open by a delayed response).
srv.rules({"delay_ms": 1500})
p = subprocess.Popen([sys.executable, "-B", "-c", "import sys; sys.path.insert(0, %r); "
                      "from apns_testserver import *; import json; "
                      "print(json.dumps(nghttp(%d, %r, 1, headers=%r, jwt=%r)))"
                      % (os.path.dirname(os.path.abspath(__file__)), srv.port, pki, GOOD, jwt)],
                     stdout=subprocess.PIPE, env=dict(os.environ))
h.wait_for(lambda: srv.stats()["connections_open"] == 1, 10, what="nghttp connected")
time.sleep(0.3)  # let the request reach the server; the delay keeps it open 1.5 s
srv.rules({"max_concurrent_streams": 7})
rc, out = json.loads(p.communicate(timeout=30)[0])
c.eq(recv_max_streams(out)[-1:], [7],
        "max_concurrent_streams rule: SETTINGS 7 sent on the open connection")
c.check(re.search(r":status: 200", out) is not None, "delayed request answered 200")

# delay_ms holds responses for at least that long (a lower bound only: never flaky).
srv.rules({"delay_ms": 400})
t0 = time.time()
st, _, _ = post()
c.check(st == 200 and time.time() - t0 >= 0.4, "delay_ms 400: answered 200 after >= 0.4 s")
srv.rules({"delay_ms": 0})

# drop_connections closes open connections abruptly (request held by a long delay).
srv.reset()
srv.rules({"delay_ms": 20000})
p = subprocess.Popen(["curl", "-sS", "--http2", "--noproxy", "*", "--cacert",
                      os.path.join(pki, "ca.pem"), "-H", "authorization: bearer " + jwt,
                      "-H", "apns-topic: " + APP, "-d", '{"aps":{}}',
                      "https://127.0.0.1:%d/3/device/%s" % (srv.port, TOKEN)],
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
h.wait_for(lambda: srv.stats()["connections_open"] == 1, 10, what="curl connected")
time.sleep(0.3)
srv.rules({"drop_connections": True})
try:
    p.wait(timeout=10)
    c.check(p.returncode != 0, "drop_connections: client saw the connection die")
except subprocess.TimeoutExpired:
    p.kill()
    c.check(False, "drop_connections: client saw the connection die")
c.eq((srv.stats()["connections_open"], srv.count()), (0, 0),
     "drop_connections: no connection left, delayed request not recorded")
srv.rules({"delay_ms": 0})

c.eq(srv.stop(), 0, "sandbox server exits 0 on SIGTERM")

# ---- certificate auth, production --------------------------------------------------------
prod = ApnsTestServer(args.build_dir, wd, pki, env="production", token_auth=True,
                      cert_auth=True, topics=["com.example.other"], name="prod",
                      extra=["--no-stream-ramp", "--min-token-interval-s", "1200"])
CERT = {"apns-topic": "com.example.certapp", "apns-push-type": "alert"}
st, _, _ = curl_post(prod.port, pki, headers={"apns-topic": "com.example.certapp"},
                     client_cert=True)
c.eq(st, 200, "client cert, no authorization header: 200")
st, _, _ = curl_post(prod.port, pki, headers={}, client_cert=True)
c.eq(st, 200, "client cert, no apns-topic: the cert's topic is used")
st, _, _ = curl_post(prod.port, pki, headers={"apns-topic": "com.example.other"},
                     client_cert=True)
c.eq(st, 200, "client cert, a --topics topic: 200")
st, _, body = curl_post(prod.port, pki, headers={"apns-topic": APP}, client_cert=True)
c.eq((st, body), (400, b'{"reason":"TopicDisallowed"}'), "client cert, other topic: TopicDisallowed")
st, _, body = curl_post(prod.port, pki, headers={"apns-topic": "com.example.other"})
c.eq((st, body), (403, b'{"reason":"MissingProviderToken"}'),
     "no client cert, no token: MissingProviderToken")
st, _, _ = curl_post(prod.port, pki, headers={"apns-topic": "com.example.other"}, jwt=jwt)
c.eq(st, 200, "no client cert, a good token: 200 (both auths configured)")
acc = prod.accepted()
c.eq([(r["auth"], r["cert_cn"], r["topic"], r["env"]) for r in acc],
     [("cert", "com.example.certapp", "com.example.certapp", "production"),
      ("cert", "com.example.certapp", "com.example.certapp", "production"),
      ("cert", "com.example.certapp", "com.example.other", "production"),
      ("token", None, "com.example.other", "production")],
     "records carry auth, cert CN, topic and env")

# --min-token-interval-s: a second token for the team 20 minutes too early is refused.
jwt2 = mint_jwt(pki, iat=int(time.time()) - 30)
got = [curl_post(prod.port, pki, headers={"apns-topic": "com.example.other"}, jwt=t)
       for t in (jwt2, jwt2, jwt)]
c.eq([(g[0], g[2]) for g in got],
     [(429, b'{"reason":"TooManyProviderTokenUpdates"}')] * 2 + [(200, b"")],
     "token renewed too soon: 429 TooManyProviderTokenUpdates; the current token still works")
c.eq(prod.stats()["jwt_team_updates"], 0, "stats: no token update adopted")
# GOAWAY after 2 more requests; nghttp sends 6 at once on one connection (certificate
# auth: no stream ramp, so all 6 reach the server).
prod.reset()
prod.rules({"goaway_after": 2})
rc, out = nghttp(prod.port, pki, 6, headers=CERT, client_cert=True)
m = re.search(r"recv GOAWAY frame.*?last_stream_id=(\d+), error_code=(\w+)\((0x[0-9a-f]+)\), "
              r"opaque_data\(\d+\)=\[([^\]]*)\]", out, re.S)
c.check(m is not None, "goaway_after: client received GOAWAY")
acc = prod.accepted()
c.eq(len(acc), 2, "goaway_after 2: exactly 2 processed")
if m:
    c.eq((m.group(3), m.group(4)), ("0x00", '{"reason":"Shutdown"}'),
         "GOAWAY: NO_ERROR with a JSON reason")
    statuses = re.findall(r"recv \(stream_id=(\d+)\) :status: (\d+)", out)
    ok_streams = sorted(int(s) for s, code in statuses if code == "200")
    c.eq(int(m.group(1)), max(ok_streams) if ok_streams else -1,
         "GOAWAY last-stream-id is the last stream answered")
    c.eq(len(ok_streams), 2, "streams after the GOAWAY got no answer")
c.eq(prod.stats()["goaways_sent"], 1, "stats: goaways_sent 1")
c.check(eventually(lambda: prod.stats()["connections_open"] == 0),
        "connection closed after GOAWAY")


# --no-stream-ramp: a token connection gets the full limit at once.
rc, out = nghttp(prod.port, pki, 1, headers={"apns-topic": "com.example.other"}, jwt=jwt)
c.eq(recv_max_streams(out)[:1], [1000], "--no-stream-ramp: first SETTINGS allows 1000 streams")

# h2load, the benchmark's baseline client, works against the server.
prod.reset()
n = 2000
with open(os.path.join(wd, "h2load.json"), "w") as f:
    f.write('{"aps":{"alert":"x"}}')
hp = subprocess.run(["h2load", "-n", str(n), "-c", "2", "-m", "20",
                     "-H", "authorization: bearer " + jwt, "-H", "apns-topic: com.example.other",
                     "-H", "apns-push-type: alert", "-d", os.path.join(wd, "h2load.json"),
                     "https://127.0.0.1:%d/3/device/%s" % (prod.port, TOKEN)],
                    capture_output=True, text=True, timeout=120)
m = re.search(r"status codes: (\d+) 2xx", hp.stdout)
ok = int(m.group(1)) if m else -1
c.check(ok > 0 and prod.count() == ok, "h2load: %d requests answered 200, all recorded" % ok)
c.eq(ok, n, "h2load with --no-stream-ramp: every request succeeded")


c.eq(prod.stop(), 0, "production server exits 0 on SIGTERM")

c.finish()
