"""The deployment files against the real programs: the systemd units pass
`systemd-analyze verify` (when systemd is installed), the example configs (deploy/pushpipe.json,
the container one, the Kubernetes ConfigMap) are accepted by every stage, the compose and
Kubernetes files refer to programs, ports and volumes that exist, and every metric the
Grafana dashboard queries is exported by a real stage. Container engines and Kubernetes are
not run here."""
import copy
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile

import yaml

import pp_harness as h
from pp_nats import NatsNode

args = h.parse_args()
ck = h.Checks()
wd = h.workdir("deploy")
src = h.source_dir()
deploy = os.path.join(src, "deploy")
PROGRAMS = {"broker": "pushpipe-broker", "resolver": "pushpipe-resolver",
            "apns_sender": "pushpipe-apns-sender", "mqtt_sender": "pushpipe-mqtt-sender"}


def built(prog):
    try:
        return h.binary(args.build_dir, prog)
    except FileNotFoundError:
        return None


# ---- 1. systemd units ------------------------------------------------------------------
units = sorted(glob.glob(os.path.join(deploy, "systemd", "*")))
ck.eq(sorted(os.path.basename(u) for u in units),
      ["pushpipe-apns-sender@.service", "pushpipe-broker.service",
       "pushpipe-mqtt-sender@.service", "pushpipe-resolver@.service", "pushpipe.target"],
      "the systemd units")
if shutil.which("systemd-analyze"):
    ud = os.path.join(wd, "units")
    os.mkdir(ud)
    for u in units:
        text = open(u).read()
        # Point the units at the build tree, since verify checks that ExecStart exists.
        for prog in PROGRAMS.values():
            p = built(prog) or "/nonexistent/" + prog
            text = text.replace("/usr/local/bin/" + prog, p)
        with open(os.path.join(ud, os.path.basename(u)), "w") as f:
            f.write(text)
    names = ["pushpipe-broker.service", "pushpipe.target", "pushpipe-resolver@2.service",
             "pushpipe-apns-sender@1.service", "pushpipe-mqtt-sender@1.service"]
    r = subprocess.run(["systemd-analyze", "verify"] + ["./" + n for n in names], cwd=ud,
                       capture_output=True, text=True, timeout=60)
    ck.check(r.returncode == 0 and r.stderr.strip() == "",
             "systemd-analyze verify passes (%s)" % r.stderr.strip()[:300])
    # The same tool notices a broken unit, so the pass above means something.
    with open(os.path.join(ud, "broken.service"), "w") as f:
        f.write("[Service]\nExecStart=/nonexistent/x\nBogus=1\n")
    r = subprocess.run(["systemd-analyze", "verify", "./broken.service"], cwd=ud,
                       capture_output=True, text=True, timeout=60)
    ck.check(r.returncode != 0 or "Bogus" in r.stderr, "systemd-analyze flags a broken unit")
else:
    print("note: systemd-analyze not installed; units not verified", flush=True)
# A template instance's metrics port: the shell line of ExecStart, with %i = 2.
for kind, base in (("resolver", 9610), ("apns-sender", 9700), ("mqtt-sender", 9800)):
    text = open(os.path.join(deploy, "systemd", "pushpipe-%s@.service" % kind)).read()
    line = re.search(r"^ExecStart=/bin/sh -c '(.*)'$", text, re.M).group(1)
    out = subprocess.run(["/bin/sh", "-c", line.replace("%i", "2").replace("exec ", "echo ", 1)],
                         capture_output=True, text=True).stdout.split()
    ck.eq(out[out.index("--metrics-port") + 1], str(base + 2),
          "pushpipe-%s@2 serves metrics on %d" % (kind, base + 2))
target = open(os.path.join(deploy, "systemd", "pushpipe.target")).read()
for u in ("pushpipe-broker.service", "pushpipe-resolver@1.service", "pushpipe-resolver@2.service",
          "pushpipe-apns-sender@1.service", "pushpipe-mqtt-sender@1.service"):
    ck.check(u in target, "pushpipe.target wants %s" % u)

# ---- 2. the example configs are accepted by every stage --------------------------------
redis = h.Redis(wd)
mqtt = h.Mosquitto(wd)
nats = NatsNode(wd)  # for the durable example configs
keygen = h.binary(args.build_dir, "pushpipe-keygen")
certs = os.path.join(wd, "certs")
for name in ("broker", "pipeline"):
    subprocess.run([keygen, name, "--dir", certs], check=True, capture_output=True)
os.mkdir(os.path.join(certs, "allow"))
shutil.copy(os.path.join(certs, "pipeline.cert"), os.path.join(certs, "allow"))
p8 = os.path.join(wd, "AuthKey_TEST.p8")
subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-out", p8], check=True, capture_output=True)


def localize(cfg):
    """The same config, pointed at this machine: free ports, the harness's servers, test
    certificates and key. Everything else stays as written."""
    c = copy.deepcopy(cfg)
    base = h.free_ports(7)
    c["broker_address"] = "tcp://127.0.0.1:%d" % base
    c.setdefault("broker", {})["bind"] = "tcp://127.0.0.1:%d" % base
    for sec in ("resolver", "apns_sender"):
        if "redis" in c.get(sec, {}):
            c[sec]["redis"]["host"] = "127.0.0.1"
            c[sec]["redis"]["port"] = redis.port
    if "uri" in c.get("mqtt_sender", {}):
        c["mqtt_sender"]["uri"] = "tcp://127.0.0.1:%d" % mqtt.port
    js = c.get("broker", {}).get("jetstream")
    if js is not None:  # one local node stands for the cluster
        js["servers"] = nats.url
        js["replicas"] = 1
    for sec in PROGRAMS:
        if c.get(sec, {}).get("metrics_address") == "0.0.0.0":
            c[sec]["metrics_address"] = "127.0.0.1"
    cv = c.get("curve", {})
    if cv.get("enabled"):
        cv["server_secret_cert"] = os.path.join(certs, "broker.cert_secret")
        cv["secret_cert"] = os.path.join(certs, "pipeline.cert_secret")
        cv["server_public"] = os.path.join(certs, "broker.cert")
        cv["allow_dir"] = os.path.join(certs, "allow")
    for app in c.get("apns_sender", {}).get("apps", {}).values():
        if "key_file" in app:
            app["key_file"] = p8
    return c


metric_names = set()


def accepted_by_all(label, cfg):
    path = h.write_config(wd, localize(cfg), "%s.json" % label)
    for sec, prog in PROGRAMS.items():
        binpath = built(prog)
        if not binpath:
            print("note: %s not built; %s not checked with it" % (prog, label), flush=True)
            continue
        port = h.free_port()
        pr = h.Proc([binpath, "--config", path, "--metrics-port", port],
                    os.path.join(wd, "%s-%s.log" % (label, sec)))
        try:
            h.wait_port(port, 10)
            # The port opens before the stage has registered its series; ready=1 says
            # start-up is over and every series is there.
            h.wait_for(lambda: h.metric(port, "ready") == 1, 10, what="%s ready" % prog)
            up = True
            metric_names.update(re.sub(r"\{.*", "", k) for k in h.metrics(port))
        except (AssertionError, OSError):
            up = False
        rc = pr.stop(15)
        ck.check(up and rc == 0, "%s: %s accepts the config, serves metrics, exits 0 on "
                                 "SIGTERM (rc %r)%s" % (label, prog, rc,
                                                        "" if up else ": " + pr.output()[-300:]))
    return path


with open(os.path.join(deploy, "pushpipe.json")) as f:
    main_cfg = json.load(f)
ck.check(all(s in main_cfg for s in ("broker", "resolver", "apns_sender", "mqtt_sender",
                                     "launcher", "curve", "broker_address", "log_level")),
         "deploy/pushpipe.json has every section")
ck.check("apps" not in main_cfg.get("apns_sender", {}), "deploy/pushpipe.json has no APNs apps")
main_path = accepted_by_all("pushpipe.json", main_cfg)
launcher_bin = h.binary(args.build_dir, "pushpipe")
r = subprocess.run([launcher_bin, "status", "--config", main_path, "--timeout-ms", "200"],
                   capture_output=True, text=True, timeout=60)
ck.check(r.returncode in (0, 1) and "broker" in r.stdout and "resolver-2" in r.stdout,
         "the launcher reads deploy/pushpipe.json's launcher section (status rc %d)"
         % r.returncode)
with open(os.path.join(deploy, "container", "pushpipe.json")) as f:
    accepted_by_all("container", json.load(f))
# durability on: the multi-host example and the compose override's config
for rel in ("pushpipe-durable.json", os.path.join("container", "pushpipe-durable.json")):
    with open(os.path.join(deploy, rel)) as f:
        dcfg = json.load(f)
    ck.eq(dcfg["broker"].get("durability"), "jetstream", "%s turns durability on" % rel)
    ck.eq(len(dcfg["broker"]["jetstream"]["servers"]), 3, "%s lists three NATS nodes" % rel)
    accepted_by_all(rel.replace("/", "-"), dcfg)
for f in ("compose.durable.yaml",):
    over = yaml.safe_load(open(os.path.join(deploy, "container", f)))
    ck.eq(sorted(k for k in over["services"] if k.startswith("nats")),
          ["nats-1", "nats-2", "nats-3"], "%s adds a three-node NATS cluster" % f)
dk = yaml.safe_load(open(os.path.join(deploy, "k8s", "durable", "kustomization.yaml")))
ck.eq(dk["resources"], ["..", "nats.yaml"], "deploy/k8s/durable adds nats.yaml to the base")
ss = [d for d in yaml.safe_load_all(open(os.path.join(deploy, "k8s", "durable", "nats.yaml")))
      if d and d["kind"] == "StatefulSet"]
ck.check(ss and ss[0]["spec"]["replicas"] == 3, "the NATS StatefulSet has 3 replicas")
cm = yaml.safe_load(open(os.path.join(deploy, "k8s", "configmap.yaml")))
k8s_cfg = json.loads(cm["data"]["pushpipe.json"])
ck.check(k8s_cfg["curve"]["enabled"] is True, "the Kubernetes config has CURVE on")
accepted_by_all("k8s", k8s_cfg)

# ---- 3. compose ------------------------------------------------------------------------
compose = yaml.safe_load(open(os.path.join(deploy, "container", "compose.yaml")))
svcs = compose["services"]
ck.eq(sorted(svcs), sorted(["broker", "resolver", "apns-sender", "mqtt-sender", "redis",
                            "mosquitto"]), "compose services")
for name, prog in (("broker", "pushpipe-broker"), ("resolver", "pushpipe-resolver"),
                   ("apns-sender", "pushpipe-apns-sender"), ("mqtt-sender", "pushpipe-mqtt-sender")):
    ck.check(svcs[name]["command"][0] == prog and "--config" in svcs[name]["command"],
             "compose %s runs %s --config" % (name, prog))
ck.eq(svcs["resolver"]["deploy"]["replicas"], 2, "compose resolvers scale by replicas")
ccfg = json.load(open(os.path.join(deploy, "container", "pushpipe.json")))
ck.check(ccfg["broker_address"].startswith("tcp://broker:"), "container config: broker by "
                                                              "service name")
ck.check(os.path.isfile(os.path.join(deploy, "container", "Containerfile")) and
         "scripts/deps.sh" in open(os.path.join(deploy, "container", "Containerfile")).read(),
         "Containerfile builds with scripts/deps.sh")

# ---- 4. Kubernetes ---------------------------------------------------------------------
docs = []
for f in sorted(glob.glob(os.path.join(deploy, "k8s", "*.yaml"))):
    if f.endswith("kustomization.yaml"):
        continue
    docs += [d for d in yaml.safe_load_all(open(f)) if d]
by_kind = {}
for d in docs:
    by_kind.setdefault(d["kind"], {})[d["metadata"]["name"]] = d
kust = yaml.safe_load(open(os.path.join(deploy, "k8s", "kustomization.yaml")))
ck.eq(sorted(kust["resources"]), sorted(os.path.basename(f) for f in
                                        glob.glob(os.path.join(deploy, "k8s", "*.yaml"))
                                        if not f.endswith("kustomization.yaml")),
      "kustomization lists every manifest")
svc = by_kind["Service"]["pushpipe-broker"]
ports = sorted(p["port"] for p in svc["spec"]["ports"])
ck.eq(ports, list(range(5560, 5567)) + [9600], "broker Service exposes 5560-5566 and metrics")
for name, prog, replicas in (("pushpipe-broker", "pushpipe-broker", 1),
                             ("pushpipe-resolver", "pushpipe-resolver", 2),
                             ("pushpipe-apns-sender", "pushpipe-apns-sender", 1),
                             ("pushpipe-mqtt-sender", "pushpipe-mqtt-sender", 1)):
    dep = by_kind["Deployment"][name]
    spec = dep["spec"]["template"]["spec"]
    ctr = spec["containers"][0]
    ok = ctr["args"][0] == prog and ctr["args"][1:3] == ["--config", "/etc/pushpipe/pushpipe.json"]
    vols = {v["name"]: v for v in spec["volumes"]}
    mounts_ok = all(m["name"] in vols for m in ctr["volumeMounts"])
    refs_ok = all(v.get("configMap", {}).get("name", "pushpipe-config") in by_kind["ConfigMap"]
                  and v.get("secret", {}).get("secretName", "pushpipe-apns")
                  in by_kind["Secret"] for v in vols.values())
    ck.check(ok and mounts_ok and refs_ok and dep["spec"]["replicas"] == replicas,
             "k8s %s: runs %s, %d replica(s), every mount and secret exists" % (name, prog,
                                                                             replicas))
    # The files the config names are where the pod mounts them.
    mounted = [m["mountPath"] for m in ctr["volumeMounts"]]
    need = []
    if prog == "pushpipe-broker":
        need = [k8s_cfg["curve"]["server_secret_cert"], k8s_cfg["curve"]["allow_dir"] + "/x"]
    else:
        need = [k8s_cfg["curve"]["secret_cert"], k8s_cfg["curve"]["server_public"]]
    if prog == "pushpipe-apns-sender":
        need += [a["key_file"] for a in k8s_cfg["apns_sender"]["apps"].values()]
    missing = [n for n in need if not any(n.startswith(mp + "/") for mp in mounted)]
    ck.eq(missing, [], "k8s %s: the config's files are under its mounts" % name)

# ---- 5. Grafana ------------------------------------------------------------------------
dash = json.load(open(os.path.join(deploy, "grafana", "pushpipe.json")))
exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
used = set(n for e in exprs for n in re.findall(r"\b(pushpipe_\w+)", e))
# The launcher's own series, from a real launcher run.
lport = h.free_ports(8)
lcfg = localize(main_cfg)
lcfg["launcher"]["metrics_base_port"] = lport
lpath = h.write_config(wd, lcfg, "launcher.json")
lproc = h.Proc([launcher_bin, "--config", lpath], os.path.join(wd, "launcher.log"))
try:
    h.wait_port(lport, 10)
    h.wait_for(lambda: "pushpipe_stage_up" in " ".join(h.metrics(lport)), 10, what="stage_up")
    metric_names.update(re.sub(r"\{.*", "", k) for k in h.metrics(lport))
except AssertionError:
    pass
ck.eq(lproc.stop(20), 0, "launcher with deploy/pushpipe.json stops with exit 0")
missing = sorted(used - metric_names)
optional = {"pushpipe_curve_handshakes_total"}  # only when the broker calls pp_curve_set_metrics
if set(missing) & optional:
    print("note: not exported yet: %s" % sorted(set(missing) & optional), flush=True)
ck.eq([m for m in missing if m not in optional], [],
      "every metric on the dashboard is exported by a real stage (%d metrics)" % len(used))
ck.check(len(exprs) >= 20, "the dashboard has panels for every stage (%d)" % len(exprs))
ck.finish()
