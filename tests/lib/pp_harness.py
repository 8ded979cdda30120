"""Shared harness for pushpipe's integration tests.

Starts real servers (redis-server, mosquitto) and real pushpipe processes on 127.0.0.1
ports nobody else uses, captures their logs under a per-test work directory, and stops
everything at exit. No mocks: what the tests talk to is the real thing.

Run scripts with Debian's /usr/bin/python3 (python3-zmq, python3-msgpack, python3-redis,
python3-paho-mqtt).
"""
import argparse
import atexit
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

_procs = []


def parse_args(extra=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--build-dir", default=os.environ.get("PP_BUILD_DIR", "build"))
    if extra:
        extra(ap)
    args = ap.parse_args()
    args.build_dir = os.path.abspath(args.build_dir)
    return args


def source_dir():
    return os.environ.get("PP_SOURCE_DIR",
                          os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))


def workdir(name):
    base = os.environ.get("PP_TEST_TMP", tempfile.gettempdir())
    d = tempfile.mkdtemp(prefix="pp-%s-" % name, dir=base)
    return d


def port_free(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def _ephemeral_range():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = (int(x) for x in f.read().split())
        return lo, hi
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


_handed_out = set()


def free_ports(n=1):
    """Returns a base port such that base..base+n-1 are all free now.

    The ports come from outside the kernel's ephemeral range (ip_local_port_range): a port
    inside it can be taken, between this check and the server's bind, as the local port of
    any outgoing connection (a test saw "Address already in use" that way). A port handed
    out once is not handed out again by this process, so two calls never overlap."""
    lo, hi = _ephemeral_range()
    first, last = (10000, lo - n) if lo - n > 10000 else (hi + 1, 65535 - n)
    for _ in range(500):
        base = random.randint(first, last)
        rng = range(base, base + n)
        if any(p in _handed_out for p in rng):
            continue
        if all(port_free(p) for p in rng):
            _handed_out.update(rng)
            return base
    raise RuntimeError("no free port range of %d" % n)


def free_port():
    return free_ports(1)


def wait_for(cond, timeout=10.0, interval=0.02, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(interval)
    raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))


def wait_port(port, timeout=10.0, host="127.0.0.1"):
    def up():
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return True
        except OSError:
            return False
    wait_for(up, timeout, what="port %d" % port)


class Proc:
    """A child process with its output in a log file; stopped at exit."""

    def __init__(self, argv, log_path, env=None, cwd=None):
        self.argv = [str(a) for a in argv]
        self.log_path = log_path
        self.log = open(log_path, "ab")
        e = dict(os.environ)
        if env:
            e.update(env)
        self.p = subprocess.Popen(self.argv, stdout=self.log, stderr=subprocess.STDOUT,
                                  env=e, cwd=cwd, start_new_session=True)
        _procs.append(self)

    @property
    def pid(self):
        return self.p.pid

    def alive(self):
        return self.p.poll() is None

    def signal(self, sig):
        if self.alive():
            self.p.send_signal(sig)

    def stop(self, timeout=10.0):
        """SIGTERM, wait; returns the exit code (kills after timeout, returning None)."""
        if self.alive():
            self.p.send_signal(signal.SIGTERM)
            try:
                return self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
                return None
        return self.p.returncode

    def kill(self):
        if self.alive():
            self.p.kill()
            self.p.wait()

    def output(self):
        self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")


def _cleanup():
    for pr in reversed(_procs):
        try:
            pr.kill()
        except Exception:
            pass


atexit.register(_cleanup)


def _sigterm(signum, frame):
    _cleanup()
    sys.exit(1)


signal.signal(signal.SIGTERM, _sigterm)


class Redis:
    """A real redis-server on a free port, no persistence."""

    def __init__(self, wd, port=None, password=None, unixsocket=None):
        self.port = port or free_port()
        self.wd = wd
        self.password = password
        self.unixsocket = unixsocket
        self.start()

    def start(self):
        argv = ["redis-server", "--port", self.port, "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", self.wd]
        if self.password:
            argv += ["--requirepass", self.password]
        if self.unixsocket:
            argv += ["--unixsocket", self.unixsocket, "--unixsocketperm", "700"]
        self.proc = Proc(argv, os.path.join(self.wd, "redis-%d.log" % self.port))
        wait_port(self.port)

    def stop(self):
        self.proc.stop()

    def kill(self):
        self.proc.kill()

    def client(self, db=0):
        import redis
        return redis.Redis(host="127.0.0.1", port=self.port, password=self.password, db=db)


class Mosquitto:
    """A real mosquitto on a free port. extra_conf is appended to its config file."""

    def __init__(self, wd, port=None, extra_conf=""):
        self.port = port or free_port()
        self.wd = wd
        self.extra_conf = extra_conf
        self.start()

    def start(self):
        conf = os.path.join(self.wd, "mosquitto-%d.conf" % self.port)
        with open(conf, "w") as f:
            f.write("listener %d 127.0.0.1\n" % self.port)
            if "allow_anonymous" not in self.extra_conf:
                f.write("allow_anonymous true\n")
            f.write("persistence false\nmax_queued_messages 1000000\n")
            f.write("max_inflight_messages 0\n")
            f.write(self.extra_conf)
        self.proc = Proc(["mosquitto", "-c", conf],
                         os.path.join(self.wd, "mosquitto-%d.log" % self.port))
        wait_port(self.port)

    def stop(self):
        self.proc.stop()

    def kill(self):
        self.proc.kill()


def write_config(wd, cfg, name="pushpipe.json"):
    path = os.path.join(wd, name)
    with open(path, "w") as f:
        json.dump(cfg, f, indent=2)
    return path


def binary(build_dir, name):
    """Path of a built program, e.g. binary(args.build_dir, 'pushpipe-broker')."""
    for sub in ("broker", "resolver", "apns-sender", "mqtt-sender", "proto", "clients/c",
                "tests/apns-server",
                "launcher", "bench", ""):
        p = os.path.join(build_dir, sub, name)
        if os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    raise FileNotFoundError("%s not built under %s" % (name, build_dir))


def metrics(port, host="127.0.0.1"):
    """Fetches a process's Prometheus text and returns {series: value}."""
    import urllib.request
    with urllib.request.urlopen("http://%s:%d/metrics" % (host, port), timeout=5) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        k, _, v = line.rpartition(" ")
        out[k] = float(v)
    return out


def metric(port, name, host="127.0.0.1", **labels):
    """Sums the series of pushpipe_<name> whose labels include the given ones."""
    total = 0.0
    for k, v in metrics(port, host).items():
        if not k.startswith("pushpipe_%s{" % name):
            continue
        if all(('%s="%s"' % (lk, lv)) in k for lk, lv in labels.items()):
            total += v
    return total


class Checks:
    """Counts assertions and prints the closing line 'N passed, N failed'."""

    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, cond, what):
        if cond:
            self.passed += 1
            print("ok   %s" % what, flush=True)
        else:
            self.failed += 1
            print("FAIL %s" % what, flush=True)
        return cond

    def eq(self, got, want, what):
        ok = got == want
        if not ok:
            what = "%s (got %r, want %r)" % (what, got, want)
        return self.check(ok, what)

    def finish(self):
        print("%d passed, %d failed" % (self.passed, self.failed), flush=True)
        _cleanup()
        sys.exit(1 if self.failed else 0)
