"""The pipeline across five "hosts" (network namespaces) with CurveZMQ on
(ctest e2e_multihost).

The test makes its own network: a namespace holding a bridge, and five host namespaces,
each with a veth pair into the bridge and an address in 10.213.0.0/24 (used only inside
these namespaces):

    host 1  10.213.0.1  pushpipe-broker (CURVE server; roles: good client, pipeline stages)
    host 2  10.213.0.2  two pushpipe-resolvers
    host 3  10.213.0.3  pushpipe-apns-sender, pushpipe-mqtt-sender
    host 4  10.213.0.4  redis-server, mosquitto, two pp-apns-testservers (sandbox, production)
    host 5  10.213.0.5  the clients and the MQTT subscriber

Keys come from pushpipe-keygen. A client on host 5 whose key is not in the allow list
(and one without CURVE) gets nothing through; the good client on host 5 sends pipeline.py's
pushes, and what arrives is compared with the same model as there.

Names carry this process's pid (unique per run); namespaces of earlier runs whose process
is gone are removed at start, and this run's are removed at exit, also after a failure.
Needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN); without it the test exits 77, which ctest
reports as skipped.
"""
import atexit
import os
import re
import signal
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e_common as e  # noqa: E402
import pipeline  # noqa: E402
import pp_harness as h  # noqa: E402

NET = "10.213.0"
TAG = "e2e%d" % os.getpid()
N_HOSTS = 5


def ip(*argv, check=True):
    return subprocess.run(["ip"] + [str(a) for a in argv], check=check, capture_output=True)


def remove_stale():
    """Deletes namespaces left by earlier runs whose process is gone."""
    out = subprocess.run(["ip", "netns", "list"], capture_output=True).stdout.decode()
    for line in out.splitlines():
        m = re.match(r"(e2e(\d+)(h\d|br))\b", line)
        if m and not os.path.exists("/proc/%s" % m.group(2)):
            # Processes an earlier, killed run left inside it go with it.
            pids = ip("netns", "pids", m.group(1), check=False).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (OSError, ValueError):
                    pass
            ip("netns", "del", m.group(1), check=False)


def ns_name(i):
    return "%sh%d" % (TAG, i) if i else "%sbr" % TAG


def teardown():
    h._cleanup()  # the processes first: a namespace lives on while a process uses it
    for i in range(N_HOSTS + 1):
        ip("netns", "del", ns_name(i), check=False)


def setup():
    remove_stale()
    atexit.register(teardown)
    signal.signal(signal.SIGTERM, lambda s, f: sys.exit(1))  # runs atexit
    br = ns_name(0)
    ip("netns", "add", br)
    ip("netns", "exec", br, "ip", "link", "add", "br0", "type", "bridge")
    ip("netns", "exec", br, "ip", "link", "set", "br0", "up")
    hosts = {}
    for i in range(1, N_HOSTS + 1):
        ns = ns_name(i)
        ip("netns", "add", ns)
        # veth made straight inside the two namespaces: nothing appears in this host's own.
        ip("link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name", "p%d" % i,
           "netns", br)
        ip("netns", "exec", br, "ip", "link", "set", "p%d" % i, "master", "br0")
        ip("netns", "exec", br, "ip", "link", "set", "p%d" % i, "up")
        ip("netns", "exec", ns, "ip", "addr", "add", "%s.%d/24" % (NET, i), "dev", "eth0")
        ip("netns", "exec", ns, "ip", "link", "set", "eth0", "up")
        ip("netns", "exec", ns, "ip", "link", "set", "lo", "up")
        hosts[i] = e.Host(ns, "%s.%d" % (NET, i))
    return hosts


def keys(build_dir, wd):
    certs = os.path.join(wd, "certs")
    allow = os.path.join(certs, "allow")
    os.makedirs(allow)
    keygen = e.binary(build_dir, "pushpipe-keygen")
    for name in ("broker", "pipeline", "good", "bad"):
        subprocess.run([keygen, name, "--dir", certs], check=True, capture_output=True)
    # Roles (docs/security.md): the client's key in clients/, the stages' shared key in the
    # three worker roles. "bad" is in none.
    for role, name in (("clients", "good"), ("resolvers", "pipeline"),
                       ("apns-senders", "pipeline"), ("mqtt-senders", "pipeline")):
        os.makedirs(os.path.join(allow, role), exist_ok=True)
        with open(os.path.join(certs, name + ".cert")) as f, \
                open(os.path.join(allow, role, name + ".cert"), "w") as g:
            g.write(f.read())
    curve = {"enabled": True,
             "server_secret_cert": os.path.join(certs, "broker.cert_secret"),
             "secret_cert": os.path.join(certs, "pipeline.cert_secret"),
             "server_public": os.path.join(certs, "broker.cert"),
             "allow_dir": allow}
    bpub = e.load_cert(os.path.join(certs, "broker.cert"))[0]

    def triple(name):
        pub, sec = e.load_cert(os.path.join(certs, name + ".cert_secret"))
        return [bpub, pub, sec]
    return curve, triple("good"), triple("bad")


def main():
    args = h.parse_args()
    checks = h.Checks()
    if os.geteuid() != 0 or ip("netns", "list", check=False).returncode != 0:
        print("SKIP: needs root for ip netns\n0 passed, 0 failed", flush=True)
        sys.exit(77)  # ctest: SKIP_RETURN_CODE
    wd = h.workdir("e2e-multihost")
    print("workdir %s, namespaces %s*" % (wd, TAG), flush=True)
    hosts = setup()
    curve, good, bad = keys(args.build_dir, wd)
    pki = e.make_pki(wd, extra_ips=[hosts[4].addr])
    pl = e.Pipeline(args.build_dir, wd, pki=pki, curve=curve,
                    hosts={"broker": hosts[1], "resolver": hosts[2], "sender": hosts[3],
                           "data": hosts[4]})
    client = hosts[5]
    checks.check("event=curve_server" in pl.broker.output() or "curve_server" in
                 pl.broker.output(), "the broker runs as a CURVE server")
    checks.check("roles=on" in pl.broker.output(), "with a role per key (allow_dir/<role>/)")
    checks.check(hosts[1].run(["ss", "-ltn"], capture_output=True).stdout.decode().count(
        "%s:%d" % (hosts[1].addr, pl.base)) == 1, "the broker listens on host 1's address")
    pl.seed()
    sub = pl.subscriber(host=client)

    # Refused clients first: an unknown key, and no CURVE at all.
    refused = []
    for k, via in enumerate(["py_ack", "py", "py_ack", "py"]):
        refused.append({"via": via, "type": 3, "id": "1",
                        "data": {"alert": "must not arrive", "n": 1000 + k}})
    r_bad = e.send(client, pl.address, refused[:2], wd, curve=bad, name="bad",
                   timeout_ms=1500)
    r_none = e.send(client, pl.address, refused[2:], wd, curve=None, name="nocurve",
                    timeout_ms=1500)
    checks.check(r_bad[0].get("error", "").startswith("Timeout"),
                 "a client whose key is not allowed gets no answer (%r)" % r_bad[0])
    checks.check(r_none[0].get("error", "").startswith("Timeout"),
                 "a client without CURVE gets no answer (%r)" % r_none[0])
    checks.eq(pl.metric(pl.broker, "accepted_total"), 0.0,
              "the broker accepted nothing from them")
    checks.eq(pl.metric(pl.broker, "received_total", endpoint="intake") +
              pl.metric(pl.broker, "received_total", endpoint="submit"), 0.0,
              "their frames never reached the broker's loop (received_total)")

    # The good client: pipeline.py's pushes (pushpipe-send has no CURVE flags: the Python
    # client, fire-and-forget and acknowledged, sends them all).
    pushes = []
    for p in pipeline.PUSHES:
        p = dict(p)
        p["via"] = {"send": "py", "send_ack": "py_ack"}.get(p["via"], p["via"])
        pushes.append(p)
    import time
    for p in pushes:
        p["sent_at"] = time.time()
    res = e.send(client, pl.address, pushes, wd, curve=good, name="good")
    checks.eq([r.get("error") for r in res if r.get("error")], [],
              "the allowed client's pushes were all sent")
    checks.check(all(r.get("accepted") for p, r in zip(pushes, res) if p["via"] == "py_ack"),
                 "the allowed client's acknowledged pushes were accepted")

    want_a, want_m = e.expected(pushes)
    got = e.settle(lambda: (pl.apns_count(), sub.count()),
                   (sum(want_a.values()), sum(want_m.values())), timeout=60, stable_s=1.5)
    print("settled at %r (model: %d, %d)" % (got, sum(want_a.values()), sum(want_m.values())),
          flush=True)
    pl.check_deliveries(checks, sub, pushes, want_a, want_m,
                        "APNs notifications across hosts", "MQTT messages across hosts")
    checks.eq(pl.metric(pl.broker, "accepted_total"), float(len(pushes)),
              "the broker accepted exactly the allowed client's pushes")
    checks.check(all(pl.metric(r, "messages_total") > 0 for r in pl.resolvers),
                 "both resolvers on host 2 took part")
    pl.stop_and_check(checks)
    checks.finish()


if __name__ == "__main__":
    main()
