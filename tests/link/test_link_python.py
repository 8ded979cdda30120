"""tests/lib/pp_link.py against the C side, and kill -9 of a C worker under a C hub.

pp-link-peer (tests/link/pp_link_peer.c) runs one C side as a process.
"""
import os
import signal
import struct
import time

import zmq

import pp_harness as h
from pp_link import FakeHub, FakeWorker, make_batch

HB = 100


def start(build_dir, wd, name, *args):
    exe = os.path.join(build_dir, "tests", "link", "pp-link-peer")
    return h.Proc([exe] + [str(a) for a in args], os.path.join(wd, name + ".log"))


def wait_exit(p, timeout=30.0):
    try:
        return p.p.wait(timeout)
    except Exception:
        p.kill()
        return None


def hub_counts(out):
    for line in out.splitlines():
        if line.startswith("acked="):
            return dict(kv.split("=") for kv in line.split())
    return {}


def fake_hub_vs_c_worker(c, build_dir, wd):
    ep = "tcp://127.0.0.1:%d" % h.free_port()
    hub = FakeHub(ep, heartbeat_ms=HB)
    for i in range(300):
        hub.enqueue(b"job-%d:" % i + b"x" * 40)
    w = start(build_dir, wd, "c-worker", "worker", ep, 8, HB)
    done = hub.run_until(lambda: len(hub.acked) == 300, timeout=20)
    c.check(done, "FakeHub: the C worker acked all 300 jobs (got %d)" % len(hub.acked))
    seqs = [s for _, s, _ in hub.acked]
    c.eq(len(set(seqs)), len(seqs), "FakeHub: each seq acked once")
    c.eq(sorted(b for _, _, b in hub.acked), sorted(b"job-%d:" % i + b"x" * 40 for i in range(300)),
         "FakeHub: the acked bodies are the jobs sent")
    c.check(max(hub.max_held.values() or [0]) <= 8,
            "FakeHub: the C worker never held more than its window of 8 (max %s)"
            % list(hub.max_held.values()))
    c.eq(hub.bad, {}, "FakeHub: no bad messages from the C worker")
    # Heartbeats keep it alive while idle.
    hub.run_until(lambda: False, timeout=4 * HB / 1000.0)
    c.eq(hub.deaths, 0, "FakeHub: an idle C worker is not declared dead (heartbeats)")
    w.signal(signal.SIGTERM)
    hub.run_until(lambda: hub.byes == 1, timeout=5)
    c.eq(wait_exit(w), 0, "C worker exits 0 on SIGTERM")
    c.eq(hub.byes, 1, "FakeHub: the C worker said B on stop")
    c.check("worker_jobs=300" in w.output(), "C worker counted 300 jobs")
    c.check("link_bad_message" not in w.output() and "heartbeat_mismatch" not in w.output(),
            "C worker took FakeHub's greeting (its heartbeat, the same) as good")
    hub.close()


def fake_workers_vs_c_hub(c, build_dir, wd):
    ep = "tcp://127.0.0.1:%d" % h.free_port()
    hub = start(build_dir, wd, "c-hub", "hub", ep, 200, HB, 20)
    a = FakeWorker(ep, window=5, heartbeat_ms=HB, auto_ack=False)
    got = a.run_until(lambda: len(a.jobs) == 5, timeout=10)
    c.check(got, "FakeWorker A got its window of 5 jobs from the C hub")
    a.run_until(lambda: False, timeout=0.2)
    c.eq(len(a.jobs), 5, "FakeWorker A got no more than its window")
    c.eq(a.hub_heartbeat_ms, HB, "the C hub stated its heartbeat to FakeWorker A")
    c.eq(a.bad, 0, "FakeWorker A: no bad message from the C hub")
    a.crash()
    b = FakeWorker(ep, window=10, heartbeat_ms=HB, auto_ack=True)
    b.run_until(lambda: not hub.alive(), timeout=20)
    b.close()
    c.eq(wait_exit(hub), 0, "C hub saw all 200 jobs acked and exited 0")
    counts = hub_counts(hub.output())
    c.eq(counts.get("acked"), "200", "C hub: acked=200")
    c.eq(counts.get("requeued"), "5", "C hub: the crashed worker's 5 jobs were requeued")
    c.eq(counts.get("deaths"), "1", "C hub: one worker declared dead")
    ids = sorted(set(int(body.split(b":")[0][4:]) for _, body in b.jobs))
    c.eq(ids, list(range(200)), "FakeWorker B did every job, the crashed worker's too")
    c.eq(len(b.jobs), 200, "FakeWorker B got each job once")


def kill9_c_worker(c, build_dir, wd):
    ep = "tcp://127.0.0.1:%d" % h.free_port()
    n = 4000
    hub = start(build_dir, wd, "k-hub", "hub", ep, n, HB, 40)
    w1 = start(build_dir, wd, "k-w1", "worker", ep, 50, HB, 1000)
    w2 = start(build_dir, wd, "k-w2", "worker", ep, 50, HB, 1000)
    time.sleep(0.6)
    c.check(hub.alive(), "C hub still working when worker 1 is killed")
    w1.signal(signal.SIGKILL)
    w1.p.wait()
    rc = wait_exit(hub, 40)
    counts = hub_counts(hub.output())
    c.eq(rc, 0, "kill -9: the C hub still saw every job acked (%s)" % counts)
    c.eq(counts.get("acked"), str(n), "kill -9: acked=%d" % n)
    c.check(int(counts.get("requeued", "0")) > 0, "kill -9: the dead worker's jobs were requeued")
    c.eq(counts.get("deaths"), "1", "kill -9: one worker declared dead")
    w2.stop()


def fake_worker_batches(c):
    """FakeWorker takes "K" batches (as the C hub sends them) and counts malformed ones."""
    ep = "tcp://127.0.0.1:%d" % h.free_port()
    ctx = zmq.Context.instance()
    router = ctx.socket(zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    router.bind(ep)
    w = FakeWorker(ep, window=10, heartbeat_ms=HB, auto_ack=True)
    c.check(router.poll(5000), "raw hub heard the FakeWorker's credit")
    wid, cmd, _credit = router.recv_multipart()
    c.eq(cmd, b"R", "FakeWorker granted credit first")
    router.send_multipart([wid, b"K", b""])  # empty
    router.send_multipart([wid, b"K", make_batch([(1, b"abc")])[:-1]])  # length past end
    router.send_multipart([wid, b"K", make_batch([(1, b"a")]), b"x"])  # extra frame
    router.send_multipart([wid, b"K", make_batch([(7, b"a"), (8, b"bb"), (9, b"")])])
    c.check(w.run_until(lambda: len(w.jobs) == 3, timeout=5), "FakeWorker took a batch of 3")
    c.eq(w.jobs, [(7, b"a"), (8, b"bb"), (9, b"")], "batch jobs in order, bodies intact")
    c.eq(w.bad, 3, "three malformed batches counted")
    acks = []
    deadline = time.time() + 5
    while time.time() < deadline and not acks:
        if router.poll(100):
            f = router.recv_multipart()
            if f[1] == b"A":
                acks = [s for (s,) in struct.iter_unpack(">Q", f[2])]
        w.poll(0)
    c.eq(acks, [7, 8, 9], "FakeWorker acked the batch's three jobs")
    w.crash()
    router.close(0)


def main():
    args = h.parse_args()
    wd = h.workdir("link")
    c = h.Checks()
    fake_hub_vs_c_worker(c, args.build_dir, wd)
    fake_worker_batches(c)
    fake_workers_vs_c_hub(c, args.build_dir, wd)
    kill9_c_worker(c, args.build_dir, wd)
    c.finish()


if __name__ == "__main__":
    main()
