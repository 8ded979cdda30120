"""mqtt-sender with a mosquitto that requires a user name and password, on a plain and a
TLS listener (certificates made here with openssl; the TLS listener also requires a client
certificate). A wrong password is counted, logged and retried, never a crash; a server
certificate that does not verify is refused."""
import os
import signal
import subprocess

import pp_harness as h
from mqtt_util import Feeder, Subscriber, start_sender, m, wait_metric

args = h.parse_args()
c = h.Checks()
wd = h.workdir("mqtt-auth")


def run(*cmd):
    subprocess.run(cmd, check=True, cwd=wd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def make_cert(name, cn, san=None):
    run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=" + cn)
    ext = name + ".ext"
    with open(os.path.join(wd, ext), "w") as f:
        f.write("subjectAltName=%s\n" % (san or "DNS:" + cn))
    run("openssl", "x509", "-req", "-in", name + ".csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", name + ".crt", "-days", "2", "-extfile", ext)


run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
    "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=pp-test-ca")
make_cert("server", "127.0.0.1", "IP:127.0.0.1")
make_cert("client", "pp-sender")
p = lambda n: os.path.join(wd, n)

run("mosquitto_passwd", "-b", "-c", p("passwd"), "sender", "s3cret")
run("mosquitto_passwd", "-b", p("passwd"), "watcher", "w4tch")
os.chmod(p("passwd"), 0o600)
tls_port = h.free_port()
mosq = h.Mosquitto(wd, extra_conf=(
    # mosquitto started as root drops to user "mosquitto", which cannot read the test's
    # private temp dir; "user root" keeps it (no effect when the tests run unprivileged).
    "user root\nallow_anonymous false\npassword_file %s\n"
    "listener %d 127.0.0.1\ncafile %s\ncertfile %s\nkeyfile %s\nrequire_certificate true\n"
    % (p("passwd"), tls_port, p("ca.crt"), p("server.crt"), p("server.key"))))

sub = Subscriber(mosq.port, ["auth/#"], qos=1, username="watcher", password="w4tch")

# 1. Right credentials over plain TCP.
base1 = h.free_ports(7)
feed1 = Feeder(base1)
s1, mp1 = start_sender(args, wd, base1, mosq.port, name="s-plain",
                       extra={"username": "sender", "password": "s3cret"})
feed1.send("{\"via\":\"tcp\"}", ["auth/user/1", "auth/group/7"], qos=1)
c.check(sub.wait_count(2), "user name and password: both publishes arrived")
c.eq(sorted(sub.snapshot()), [("auth/group/7", b"{\"via\":\"tcp\"}"),
                               ("auth/user/1", b"{\"via\":\"tcp\"}")], "topics and payloads")

# 2. Wrong password: counted, logged, retried with backoff, jobs kept (not dropped silently).
base2 = h.free_ports(7)
feed2 = Feeder(base2)
s2, mp2 = start_sender(args, wd, base2, mosq.port, name="s-badpass",
                       extra={"username": "sender", "password": "wrong", "drain_ms": 300,
                              "reconnect_min_ms": 50, "reconnect_max_ms": 400})
feed2.send("{\"never\":1}", ["auth/user/never"], qos=1)
refused = lambda: (m(mp2, "connect_failures_total", reason="bad_credentials") +
                   m(mp2, "connect_failures_total", reason="not_authorized"))
h.wait_for(lambda: refused() >= 3, 15, what="3 refused connects")
c.check(refused() >= 3, "wrong password: connect failures counted (and retried: %d)" % refused())
c.check(s2.alive(), "wrong password: sender still running")
c.check("event=mqtt_connect_failed" in s2.output(), "wrong password: logged")
c.check(wait_metric(mp2, "buffered", 1), "wrong password: the job waits in the buffer")
c.check(m(mp2, "reconnects_total") >= 2, "reconnects_total counts the retries")
c.eq(s2.stop(), 0, "wrong password: SIGTERM still exits 0")
log2 = s2.output()
c.check("event=drain_incomplete undelivered=1" in log2,
        "the undelivered publish is reported at stop, not dropped silently")
st2 = feed2.stats()
c.eq((st2["acked"], st2["pending"], st2["in_flight"], st2["requeued"]), (0, 1, 0, 1),
     "wrong password: the job was not acked; the sender's bye put it back in the hub's queue")

# 3. TLS with the test's CA, a client certificate and user name/password.
base3 = h.free_ports(7)
feed3 = Feeder(base3)
s3, mp3 = start_sender(args, wd, base3, tls_port, name="s-tls", scheme="ssl",
                       extra={"username": "sender", "password": "s3cret",
                              "tls": {"ca_file": p("ca.crt"), "cert_file": p("client.crt"),
                                      "key_file": p("client.key"), "verify": True}})
n0 = sub.count()
feed3.send("{\"via\":\"tls\"}", ["auth/user/2"], qos=1)
feed3.send("{\"via\":\"tls0\"}", ["auth/user/3"], qos=0)
c.check(sub.wait_count(n0 + 2), "TLS: both publishes arrived")
c.eq(sorted(sub.snapshot()[n0:]), [("auth/user/2", b"{\"via\":\"tls\"}"),
                                    ("auth/user/3", b"{\"via\":\"tls0\"}")],
     "TLS: topics and payloads")
c.check(m(mp3, "acknowledged_total") >= 2, "TLS: acknowledged")
c.check(feed1.wait(lambda st: st["acked"] == 1 and st["in_flight"] == 0, 5) and
        feed3.wait(lambda st: st["acked"] == 2 and st["in_flight"] == 0, 5),
        "plain and TLS: the hubs saw every job acked")

# 4. TLS whose server certificate does not verify (no CA given): refused, counted, alive.
base4 = h.free_ports(7)
s4, mp4 = start_sender(args, wd, base4, tls_port, name="s-tls-noca", scheme="ssl",
                       extra={"username": "sender", "password": "s3cret",
                              "reconnect_min_ms": 50, "reconnect_max_ms": 200,
                              "tls": {"cert_file": p("client.crt"), "key_file": p("client.key")}})
c.check(wait_metric(mp4, "connect_failures_total", 2, reason="unreachable"),
        "TLS without the CA: connection refused and counted")
c.eq(m(mp4, "mqtt_connected"), 0.0, "TLS without the CA: not connected")
c.check(s4.alive(), "TLS without the CA: sender still running")

for s in (s1, s3, s4):
    c.eq(s.stop(), 0, "SIGTERM exits 0 (%s)" % os.path.basename(s.log_path))
sub.stop()
for f in (feed1, feed2, feed3):
    f.close()
c.finish()
