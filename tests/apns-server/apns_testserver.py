"""Python helpers around pp-apns-testserver, for its own tests and for anyone who tests
against it (the apns-sender's tests can `sys.path.insert(0, <this folder>)` and import it).

    pki = make_pki(wd)                      # tests/apns-server/make-test-pki.sh
    srv = ApnsTestServer(build_dir, wd, pki, env="sandbox", token_auth=True,
                         topics=["com.example.app"])
    jwt = mint_jwt(pki)                     # ES256, kid TESTKEY01, iss TEAM123456
    status, headers, body = curl_post(srv.port, pki, TOKEN, {"apns-topic": ...}, b'{"aps":{}}',
                                      jwt=jwt)
    srv.rules({"throttle": {"count": 2}}); srv.accepted(); srv.stats(); srv.reset()

No python h2 library is needed: single requests go through curl --http2, several on one
connection through nghttp (Debian's nghttp2-client).
"""
import base64
import json
import os
import re
import subprocess
import tempfile
import time
import urllib.request

import pp_harness as h

HERE = os.path.dirname(os.path.abspath(__file__))
TEAM_ID = "TEAM123456"
KEY_ID = "TESTKEY01"
TOKEN = "ab" * 32  # a 64-hex device token


def make_pki(wd):
    """Makes (or reuses) the test PKI in wd/pki and returns its directory."""
    d = os.path.join(wd, "pki")
    subprocess.run(["sh", os.path.join(HERE, "make-test-pki.sh"), d], check=True)
    return d


def _b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def _der_to_raw(der):
    """DER ECDSA-Sig-Value (SEQUENCE of two INTEGERs) -> raw r||s, 32 bytes each."""
    i = 2 if der[1] < 0x80 else 3
    out = b""
    for _ in range(2):
        if der[i] != 2:
            raise ValueError("not a DER ECDSA signature")
        n = der[i + 1]
        v = int.from_bytes(der[i + 2:i + 2 + n], "big")
        out += v.to_bytes(32, "big")
        i += 2 + n
    return out


def mint_jwt(pki, iat=None, team=TEAM_ID, kid=KEY_ID, key=None, alg="ES256"):
    """An APNs provider token signed with openssl (key: a PEM private key; default the
    test .p8)."""
    key = key or os.path.join(pki, "AuthKey_%s.p8" % KEY_ID)
    hdr = _b64url(json.dumps({"alg": alg, "kid": kid}).encode())
    claims = _b64url(json.dumps({"iss": team, "iat": int(time.time()) if iat is None
                                 else iat}).encode())
    signing_input = (hdr + "." + claims).encode()
    der = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key], input=signing_input,
                         capture_output=True, check=True).stdout
    return hdr + "." + claims + "." + _b64url(_der_to_raw(der))


def control_call(control_port, method, path, body=None):
    """One call to a test server's control API on 127.0.0.1 (no proxies): returns
    (status, decoded JSON reply)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (control_port, path),
                                 data=data, method=method)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=10) as r:
            return r.status, json.loads(r.read().decode())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read().decode())


class ApnsTestServer:
    """A running pp-apns-testserver with its control API."""

    def __init__(self, build_dir, wd, pki, env="sandbox", token_auth=True, cert_auth=False,
                 topics=None, extra=None, name=None):
        self.pki = pki
        self.control_port = h.free_port()
        argv = [h.binary(build_dir, "pp-apns-testserver"), "--port", "0",
                "--cert", os.path.join(pki, "server.pem"),
                "--key", os.path.join(pki, "server-key.pem"),
                "--env", env, "--control-port", self.control_port]
        if token_auth:
            argv += ["--jwt-public-key", os.path.join(pki, "AuthKey_%s.pub.pem" % KEY_ID),
                     "--team-id", TEAM_ID, "--key-id", KEY_ID]
        if cert_auth:
            argv += ["--client-ca", os.path.join(pki, "ca.pem")]
        if topics:
            argv += ["--topics", ",".join(topics)]
        argv += extra or []
        log = os.path.join(wd, "apns-testserver-%s.log" % (name or env))
        self.proc = h.Proc(argv, log)
        m = h.wait_for(lambda: re.search(r"^listening port=(\d+)$", self.proc.output(), re.M)
                       or (not self.proc.alive() and "exited"), 10,
                       what="pp-apns-testserver to listen")
        if m == "exited":
            raise RuntimeError("pp-apns-testserver exited:\n" + self.proc.output())
        self.port = int(m.group(1))
        h.wait_port(self.control_port)

    def _call(self, method, path, body=None):
        return control_call(self.control_port, method, path, body)

    def rules(self, rules):
        """POSTs a rule object; returns (status, reply)."""
        return self._call("POST", "/rules", rules)

    def reset(self):
        return self._call("POST", "/reset", {})[1]

    def accepted(self, since=0):
        return self._call("GET", "/accepted?since=%d" % since)[1]

    def count(self):
        return self._call("GET", "/accepted/count")[1]["count"]

    def stats(self):
        return self._call("GET", "/stats")[1]

    def stop(self):
        return self.proc.stop()


def curl_post(port, pki, token=TOKEN, headers=None, body=b'{"aps":{"alert":"hi"}}', jwt=None,
              path=None, method="POST", client_cert=False, timeout=10):
    """One request over HTTP/2 with curl. Returns (status, {header: value}, body bytes);
    status 0 if curl failed. headers values may be lists (sent repeatedly)."""
    argv = ["curl", "-sS", "--http2", "--noproxy", "*", "--max-time", str(timeout),
            "--cacert", os.path.join(pki, "ca.pem"), "-X", method,
            "-w", ""]
    if client_cert:
        argv += ["--cert", os.path.join(pki, "client.pem"),
                 "--key", os.path.join(pki, "client-key.pem")]
    if jwt:
        argv += ["-H", "authorization: bearer " + jwt]
    for k, v in (headers or {}).items():
        for one in (v if isinstance(v, list) else [v]):
            argv += ["-H", "%s: %s" % (k, one)]
    with tempfile.TemporaryDirectory() as td:
        if body is not None:
            bf = os.path.join(td, "body")
            with open(bf, "wb") as f:
                f.write(body)
            argv += ["--data-binary", "@" + bf]
        url = "https://127.0.0.1:%d%s" % (port, path if path is not None
                                           else "/3/device/" + token)
        hf, of = os.path.join(td, "headers"), os.path.join(td, "out")
        argv += ["-D", hf, "-o", of, url]
        subprocess.run(argv, capture_output=True, stdin=subprocess.DEVNULL)
        head = open(hf, "rb").read() if os.path.exists(hf) else b""
        resp = open(of, "rb").read() if os.path.exists(of) else b""
    status, hdrs = 0, {}
    for line in head.decode("latin-1").splitlines():
        m = re.match(r"HTTP/2 (\d+)", line)
        if m:
            status = int(m.group(1))
        elif ":" in line:
            k, _, v = line.partition(":")
            hdrs[k.strip().lower()] = v.strip()
    return status, hdrs, resp


def nghttp(port, pki, n, headers=None, jwt=None, body=b'{"aps":{"alert":"hi"}}', token=TOKEN,
           timeout=20, client_cert=False):
    """n requests at once on one connection with nghttp -v. Returns (rc, verbose output)."""
    with tempfile.TemporaryDirectory() as td:
        bf = os.path.join(td, "body")
        with open(bf, "wb") as f:
            f.write(body)
        argv = ["nghttp", "-v", "-n", "-t", str(timeout), "-d", bf]
        if client_cert:
            argv += ["--cert", os.path.join(pki, "client.pem"),
                     "--key", os.path.join(pki, "client-key.pem")]
        if jwt:
            argv += ["-H", "authorization: bearer " + jwt]
        for k, v in (headers or {}).items():
            argv += ["-H", "%s: %s" % (k, v)]
        argv += ["-m", str(n), "https://127.0.0.1:%d/3/device/%s" % (port, token)]
        p = subprocess.run(argv, capture_output=True, timeout=timeout + 10)
        return p.returncode, p.stdout.decode("utf-8", "replace") + p.stderr.decode(
            "utf-8", "replace")


def recv_max_streams(nghttp_out):
    """The SETTINGS_MAX_CONCURRENT_STREAMS values the client received, in order, from
    nghttp -v output."""
    vals = []
    for frame in re.split(r"\n(?=\[\s*\d+\.\d+\] )", nghttp_out):
        if re.match(r"\[\s*\d+\.\d+\] recv SETTINGS frame", frame):
            vals += [int(v) for v in
                     re.findall(r"\[SETTINGS_MAX_CONCURRENT_STREAMS\(0x03\):(\d+)\]", frame)]
    return vals
