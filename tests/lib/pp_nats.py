"""Real nats-server processes with JetStream for the durability tests: one node, or a
cluster of three (JetStream needs a config file per node for clustering), on loopback
or on given addresses (network namespaces). Monitoring (/jsz) tells what a stream holds."""
import json
import os
import urllib.request

import pp_harness as h


class NatsNode:
    """One nats-server with JetStream. name/cluster/routes make it a cluster member."""

    def __init__(self, wd, name="n1", host="127.0.0.1", port=None, cluster_port=None,
                 routes=(), monitor_port=None, netns=None, start=True):
        self.wd, self.name, self.host = wd, name, host
        self.port = port or h.free_port()
        self.monitor_port = monitor_port or h.free_port()
        self.cluster_port = cluster_port
        self.routes = list(routes)
        self.netns = netns
        self.store = os.path.join(wd, "nats-" + name)
        self.conf = os.path.join(wd, "nats-%s.conf" % name)
        self.proc = None
        self._write_conf()
        if start:
            self.start()

    def _write_conf(self):
        lines = ["server_name: %s" % self.name, "listen: %s:%d" % (self.host, self.port),
                 "http: %s:%d" % (self.host, self.monitor_port),
                 "jetstream { store_dir: %s }" % json.dumps(self.store)]
        if self.cluster_port:
            routes = ", ".join(json.dumps(r) for r in self.routes)
            lines.append("cluster { name: pushpipe, listen: %s:%d, routes: [%s] }"
                         % (self.host, self.cluster_port, routes))
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")

    @property
    def url(self):
        return "nats://%s:%d" % (self.host, self.port)

    def start(self):
        argv = ["nats-server", "-c", self.conf]
        if self.netns:
            argv = ["ip", "netns", "exec", self.netns] + argv
        self.proc = h.Proc(argv, os.path.join(self.wd, "nats-%s.log" % self.name))
        h.wait_port(self.port, 15, host=self.host)  # in a namespace: reached over the bridge

    def kill(self):
        self.proc.kill()

    def stop(self):
        return self.proc.stop()

    def jsz(self):
        url = "http://%s:%d/jsz?streams=true&consumers=true" % (self.host, self.monitor_port)
        with urllib.request.urlopen(url, timeout=5) as r:
            return json.loads(r.read())

    def stream_messages(self, stream="PUSHPIPE"):
        """Messages the stream holds (not yet acknowledged by a broker), or None."""
        for acct in self.jsz().get("account_details", []):
            for s in acct.get("stream_detail", []):
                if s.get("name") == stream:
                    return s.get("state", {}).get("messages")
        return None


def wait_ready(nodes, timeout=30):
    """Waits until every node is up and the JetStream cluster has a meta leader."""
    def ready():
        for n in nodes:
            try:
                j = n.jsz()
            except OSError:
                return False
            if n.cluster_port and not j.get("meta_cluster", {}).get("leader"):
                return False
        return True
    h.wait_for(ready, timeout, interval=0.2, what="NATS JetStream cluster")


def cluster(wd, n=3, host="127.0.0.1", places=None):
    """n JetStream nodes routed to each other, ready (a meta leader elected): on loopback,
    or at places, a list of n (address, network namespace) pairs."""
    places = places or [(host, None)] * n
    cports = [h.free_port() for _ in range(n)]
    nodes = []
    for i in range(n):
        routes = ["nats-route://%s:%d" % (places[j][0], p) for j, p in enumerate(cports)
                  if j != i]
        nodes.append(NatsNode(wd, "n%d" % (i + 1), host=places[i][0], cluster_port=cports[i],
                              routes=routes, netns=places[i][1]))
    wait_ready(nodes)
    return nodes
