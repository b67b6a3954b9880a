#!/usr/bin/env python3
"""Checks the Kubernetes deployment against the services it deploys.

For the Helm chart (helm/livefarm) under every values file in helm/livefarm/ci/, and for each
kustomize overlay in k8s/overlays/:
- `helm lint --strict` and `helm template`, or `kubectl kustomize`, succeed;
- every built-in object validates strictly against Kubernetes' OpenAPI schema
  (kubernetes-validate); the CRD objects (ServiceMonitor, ScaledObject) are checked by hand;
- every service's rendered config file, with the literal environment of its container, is
  accepted by that service's own binary (`livefarm-<service> --config F --dump-config`), and the
  ports the binary will listen on are the container's ports;
- probes, Services, PodDisruptionBudgets and autoscalers point at things that exist;
- GPU, chain and storage settings land where the services read them;
- the control-plane database: the api and ingest read one PostgreSQL URL from one Secret key (not
  a ConfigMap), several api replicas have a PDB, private webhook targets are refused, and the
  evaluation PostgreSQL (Secret, StatefulSet with a volume, Service) fits together.
Values that must be refused (chain without an RPC URL, ...) make `helm template` fail.

Usage: check-deploy.py [--bin-dir target/debug]. Needs scripts/install-deploy-tools.sh.
"""

import argparse
import base64
import json
import os
import re
import subprocess
import sys
import tempfile

import tomllib

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOLS = os.environ.get("TOOLS", os.path.join(REPO, ".tools", "deploy"))
HELM = os.path.join(TOOLS, "bin", "helm")
KUBECTL = os.path.join(TOOLS, "bin", "kubectl")
VALIDATE = os.path.join(TOOLS, "venv", "bin", "kubernetes-validate")
CHART = os.path.join(REPO, "helm", "livefarm")
KUBE_VERSION = "1.35.0"
CRD_KINDS = {"ServiceMonitor", "ScaledObject"}
WORKLOADS = {"Deployment", "StatefulSet"}

failures = []


def fail(context, message):
    failures.append(f"{context}: {message}")


def run(cmd, **kwargs):
    return subprocess.run(cmd, capture_output=True, text=True, **kwargs)


def load_docs(text):
    return [d for d in yaml.safe_load_all(text) if d]


def validate_schema(context, docs):
    builtin = [d for d in docs if d["kind"] not in CRD_KINDS]
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        yaml.safe_dump_all(builtin, f)
        path = f.name
    try:
        out = run([VALIDATE, "--strict", "--quiet", "-k", KUBE_VERSION, path])
        if out.returncode != 0:
            fail(context, "kubernetes-validate:\n" + out.stdout + out.stderr)
    finally:
        os.unlink(path)


def by_kind(docs, kind):
    return [d for d in docs if d["kind"] == kind]


def pod_spec(workload):
    return workload["spec"]["template"]["spec"]


def config_of(docs, workload):
    """The config.json a workload's pods mount, or None."""
    for volume in pod_spec(workload).get("volumes", []):
        cm = volume.get("configMap")
        if volume["name"] == "config" and cm:
            for doc in by_kind(docs, "ConfigMap"):
                if doc["metadata"]["name"] == cm["name"]:
                    return doc["data"].get("config.json")
    return None


def check_service_binary(context, bin_dir, component, config_text, container):
    """The service's own binary accepts the rendered config; returns the effective config."""
    binary = os.path.join(bin_dir, f"livefarm-{component}")
    if not os.access(binary, os.X_OK):
        fail(context, f"{binary} is missing (build the workspace first)")
        return None
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/")}
    for var in container.get("env", []):
        if "value" in var:
            env[var["name"]] = var["value"]
        elif var["name"].endswith("DATABASE_URL"):
            # The secret-backed database URL: any well-formed one stands in for it.
            env[var["name"]] = "postgres://livefarm:secret@db.example:5432/livefarm"
        elif var["name"].endswith("_URL"):
            # A secret-backed Redis URL: any well-formed one stands in for it.
            env[var["name"]] = "redis://:secret@redis.example:6379/0"
        elif "fieldRef" in var.get("valueFrom", {}):
            env[var["name"]] = "pod-0"
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "config.json")
        with open(path, "w") as f:
            f.write(config_text)
        env["LIVEFARM_CONFIG"] = path
        out = run([binary, "--dump-config"], env=env, timeout=60)
    if out.returncode != 0:
        fail(context, f"livefarm-{component} refuses the chart's config:\n{out.stderr.strip()}")
        return None
    return tomllib.loads(out.stdout)


def listen_port(value):
    return int(str(value).rsplit(":", 1)[1])


# Config keys holding the addresses each service listens on, by container port name.
LISTEN_KEYS = {
    "ingest": {"http": "http_listen", "admin": "admin_listen", "rtmp": "rtmp_listen",
               "srt": "srt_listen"},
    "orchestrator": {"orchestrator": "orchestrator.listen", "admin": "admin_listen"},
    "segmenter": {"grpc": "grpc_listen", "admin": "admin_listen"},
    "transcoder": {"grpc": "grpc_listen", "admin": "admin_listen"},
    "api": {"http": "listen", "admin": "admin_listen"},
    "indexer": {"grpc": "grpc_listen", "admin": "admin_listen"},
    "redeemer": {"grpc": "grpc_listen", "admin": "admin_listen"},
}


def lookup(config, dotted):
    value = config
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def check_workloads(context, docs, bin_dir):
    effective = {}
    for workload in [d for d in docs if d["kind"] in WORKLOADS]:
        name = workload["metadata"]["name"]
        labels = workload["spec"]["template"]["metadata"]["labels"]
        component = labels.get("app.kubernetes.io/component")
        selector = workload["spec"]["selector"]["matchLabels"]
        if any(labels.get(k) != v for k, v in selector.items()):
            fail(context, f"{name}: selector {selector} does not match its pod labels")
        spec = pod_spec(workload)
        container = spec["containers"][0]
        ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            port = container.get(probe, {}).get("httpGet", {}).get("port")
            if isinstance(port, str) and port not in ports:
                fail(context, f"{name}: {probe} names port {port!r}, not a container port")
        mounts = {m["name"]: m["mountPath"] for m in container.get("volumeMounts", [])}
        volumes = {v["name"] for v in spec.get("volumes", [])}
        for claim in workload["spec"].get("volumeClaimTemplates", []):
            volumes.add(claim["metadata"]["name"])
        for mount in mounts:
            if mount not in volumes:
                fail(context, f"{name}: mounts {mount!r}, which is not a volume")
        if component not in LISTEN_KEYS:
            continue
        config_text = config_of(docs, workload)
        if config_text is None:
            fail(context, f"{name}: no config.json mounted")
            continue
        if mounts.get("config") != "/etc/livefarm":
            fail(context, f"{name}: config not mounted at /etc/livefarm")
        cfg = check_service_binary(context, bin_dir, component, config_text, container)
        if cfg is None:
            continue
        effective[component] = (workload, cfg)
        for port_name, key in LISTEN_KEYS[component].items():
            value = lookup(cfg, key)
            if port_name not in ports:
                if value is not None:
                    fail(context, f"{name}: listens on {key}={value} with no container port")
                continue
            if value is None:
                fail(context, f"{name}: port {port_name} is exposed but {key} is off")
            elif listen_port(value) != ports[port_name]:
                fail(context, f"{name}: {key}={value} but container port {port_name} is {ports[port_name]}")
        # Files the config names must be mounted into the container.
        for key in ("orchestrator.key_file", "orchestrator.ticket_secret_file",
                    "orchestrator.tls_cert", "orchestrator.tls_key", "signer_key_file"):
            path = lookup(cfg, key)
            if path and not any(path.startswith(m + "/") for m in mounts.values()):
                fail(context, f"{name}: {key}={path} is not under a mounted volume")
        storage = lookup(cfg, "storage_url")
        if storage and storage.startswith("file://"):
            if "objects" not in mounts or not storage.startswith("file://" + mounts["objects"]):
                fail(context, f"{name}: storage {storage} is not the shared volume")
    return effective


def check_services(context, docs):
    workloads = [d for d in docs if d["kind"] in WORKLOADS]
    for svc in by_kind(docs, "Service"):
        selector = svc["spec"].get("selector", {})
        targets = [w for w in workloads
                   if all(w["spec"]["template"]["metadata"]["labels"].get(k) == v
                          for k, v in selector.items())]
        if len(targets) != 1:
            fail(context, f"Service {svc['metadata']['name']} selects {len(targets)} workloads")
            continue
        ports = {p["name"]: p for p in pod_spec(targets[0])["containers"][0].get("ports", [])}
        for port in svc["spec"]["ports"]:
            target = port.get("targetPort", port["port"])
            if isinstance(target, str):
                if target not in ports:
                    fail(context, f"Service {svc['metadata']['name']}: targetPort {target!r} unknown")
                elif ports[target].get("protocol", "TCP") != port.get("protocol", "TCP"):
                    fail(context, f"Service {svc['metadata']['name']}: {target} protocol differs")
    for pdb in by_kind(docs, "PodDisruptionBudget"):
        sel = pdb["spec"]["selector"]["matchLabels"]
        if not any(all(w["spec"]["template"]["metadata"]["labels"].get(k) == v for k, v in sel.items())
                   for w in workloads):
            fail(context, f"PodDisruptionBudget {pdb['metadata']['name']} selects no workload")
    for monitor in by_kind(docs, "ServiceMonitor"):
        sel = monitor["spec"]["selector"]["matchLabels"]
        matching = [s for s in by_kind(docs, "Service")
                    if all(s["metadata"]["labels"].get(k) == v for k, v in sel.items())]
        if len(matching) != 1 or not any(p["name"] == "admin" for p in matching[0]["spec"]["ports"]):
            fail(context, f"ServiceMonitor {monitor['metadata']['name']} matches no admin port")


def check_autoscaling(context, docs, effective):
    names = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    metrics_src = open(os.path.join(REPO, "services", "transcoder", "src", "metrics.rs")).read()
    for scaled in by_kind(docs, "ScaledObject"):
        target = scaled["spec"]["scaleTargetRef"]["name"]
        if target not in names:
            fail(context, f"ScaledObject scales {target}, not a Deployment")
        check_autoscaled_replicas(context, names.get(target), scaled["spec"]["minReplicaCount"])
        for trigger in scaled["spec"]["triggers"]:
            query = trigger["metadata"]["query"]
            for metric in re.findall(r"livefarm_[a-z_]+", query):
                if f'"{metric}"' not in metrics_src:
                    fail(context, f"autoscaling query uses {metric}, which the transcoder does not export")
            threshold = float(trigger["metadata"]["threshold"])
            _, cfg = effective.get("transcoder", (None, {}))
            if cfg and threshold > cfg["max_sessions"]:
                fail(context, f"threshold {threshold} above max_sessions {cfg['max_sessions']}")
    for hpa in by_kind(docs, "HorizontalPodAutoscaler"):
        target = hpa["spec"]["scaleTargetRef"]["name"]
        if target not in names:
            fail(context, f"HPA target {target} missing")
        check_autoscaled_replicas(context, names.get(target), hpa["spec"]["minReplicas"])


def check_autoscaled_replicas(context, deployment, min_replicas):
    """An autoscaled Deployment still renders replicas (without them the API server resets a
    running one to 1 when autoscaling is turned on); with no cluster to look the live count up
    in, the chart renders minReplicas."""
    if deployment is None:
        return
    if deployment["spec"].get("replicas") != min_replicas:
        fail(context, f"{deployment['metadata']['name']} renders replicas "
                      f"{deployment['spec'].get('replicas')}, not minReplicas {min_replicas}")


def check_transcoder(context, docs, effective, values):
    if "transcoder" not in effective:
        return
    workload, cfg = effective["transcoder"]
    spec = pod_spec(workload)
    container = spec["containers"][0]
    grace = spec.get("terminationGracePeriodSeconds", 30)
    if grace * 1000 <= cfg["drain_grace_ms"]:
        fail(context, f"transcoder grace {grace}s is not longer than drain_grace_ms {cfg['drain_grace_ms']}")
    gpu = values.get("transcoder", {}).get("gpu", {}).get("enabled", False)
    limits = container.get("resources", {}).get("limits", {})
    env = {e["name"]: e.get("value") for e in container.get("env", [])}
    if gpu:
        if cfg["accel"] != "nvidia" or "nvidia.com/gpu" not in limits:
            fail(context, "GPU transcoder without accel=nvidia or an nvidia.com/gpu limit")
        if "video" not in (env.get("NVIDIA_DRIVER_CAPABILITIES") or ""):
            fail(context, "GPU transcoder without the NVIDIA video capability (NVENC libraries)")
        if not any(t.get("key") == "nvidia.com/gpu" for t in spec.get("tolerations", [])):
            fail(context, "GPU transcoder does not tolerate the GPU nodes' taint")
    elif "nvidia.com/gpu" in limits or cfg["accel"] == "nvidia":
        fail(context, "CPU transcoder asks for GPUs")


def check_chain(context, docs, effective, values):
    chain = values.get("chain", {}).get("enabled", False)
    components = set(effective)
    if chain != ({"indexer", "redeemer"} <= components):
        fail(context, f"chain.enabled={chain} but chain services are {components & {'indexer', 'redeemer'}}")
    if "orchestrator" in effective:
        _, cfg = effective["orchestrator"]
        if cfg["orchestrator"].get("on_chain", False) != chain:
            fail(context, "the orchestrator's on_chain does not follow chain.enabled")
    if not chain or "redeemer" not in effective:
        return
    workload, cfg = effective["redeemer"]
    account = pod_spec(workload).get("serviceAccountName")
    bindings = [b for b in by_kind(docs, "RoleBinding")
                if any(s["name"] == account for s in b["subjects"])]
    rules = [rule for binding in bindings for role in by_kind(docs, "Role")
             if role["metadata"]["name"] == binding["roleRef"]["name"] for rule in role["rules"]]
    # Exactly get/update on the chart's own Lease (rendered, so uninstall removes it): no
    # create, nothing else. scripts/check-k8s-live.py proves it against a real API server.
    lease = cfg["lease_name"]
    want = [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
             "resourceNames": [lease], "verbs": ["get", "update"]}]
    if rules != want:
        fail(context, f"the redeemer's Role grants {rules}, want {want}")
    if not any(d["metadata"]["name"] == lease for d in by_kind(docs, "Lease")):
        fail(context, f"the redeemer's Lease {lease} is not rendered")
    for component, (w, cfg) in effective.items():
        if component in ("orchestrator", "indexer", "redeemer"):
            continue
        if any(v.get("secret") for v in pod_spec(w).get("volumes", [])):
            fail(context, f"{component} mounts a secret it does not need")


def secret_ref(container, name):
    """(Secret name, key) an env var of the container is read from, or None."""
    for var in container.get("env", []):
        if var["name"] == name:
            ref = var.get("valueFrom", {}).get("secretKeyRef")
            return (ref["name"], ref["key"]) if ref else ("<literal>", var.get("value"))
    return None


def check_database(context, docs, effective, values):
    """The control-plane database: one PostgreSQL URL from one Secret key for the api (and for
    ingest when it authorises publishes against the store), never in a ConfigMap; several api
    replicas behind a PDB; private webhook targets refused; the evaluation PostgreSQL complete."""
    if "api" not in effective:
        return
    api, api_cfg = effective["api"]
    container = pod_spec(api)["containers"][0]
    ref = secret_ref(container, "LIVEFARM_DATABASE_URL")
    if ref is None or ref[0] == "<literal>":
        fail(context, f"the api's database URL is not read from a Secret ({ref})")
    if "database_url" in json.loads(config_of(docs, api) or "{}"):
        fail(context, "the api's ConfigMap holds database_url (a password in a ConfigMap)")
    url = api_cfg.get("database_url", "")
    if not str(url).startswith(("postgres://", "postgresql://")):
        fail(context, f"the api's effective database_url is {url!r}, not PostgreSQL (replicas "
                      "cannot share a per-pod SQLite file)")
    allow = values.get("api", {}).get("webhooks", {}).get("allowPrivateTargets", False)
    got = lookup(api_cfg, "webhooks.allow_private_targets")
    if got is not allow:
        fail(context, f"the api's webhooks.allow_private_targets is {got!r}, values say {allow}")
    replicas = api["spec"].get("replicas", 1)
    if replicas != values.get("api", {}).get("replicas", 2):
        fail(context, f"the api runs {replicas} replicas, values say {values.get('api', {}).get('replicas', 2)}")
    pdbs = [p for p in by_kind(docs, "PodDisruptionBudget")
            if all(api["spec"]["template"]["metadata"]["labels"].get(k) == v
                   for k, v in p["spec"]["selector"]["matchLabels"].items())]
    if replicas > 1 and len(pdbs) != 1:
        fail(context, f"{replicas} api replicas with {len(pdbs)} PodDisruptionBudgets")
    if "ingest" in effective:
        ingest, ingest_cfg = effective["ingest"]
        mode = lookup(ingest_cfg, "auth.mode")
        if mode == values.get("ingest", {}).get("authMode", "store") == "store":
            ingest_ref = secret_ref(pod_spec(ingest)["containers"][0], "LIVEFARM_AUTH__DATABASE_URL")
            if ingest_ref != ref:
                fail(context, f"ingest reads the database from {ingest_ref}, the api from {ref}")
            if lookup(ingest_cfg, "auth.database_url") != url:
                fail(context, "ingest's effective auth.database_url is not the api's database_url")
        elif mode != values.get("ingest", {}).get("authMode", "store"):
            fail(context, f"ingest auth.mode is {mode!r}, values say {values.get('ingest', {}).get('authMode', 'store')!r}")
    external = values.get("api", {}).get("database", {}).get("existingSecret", "")
    in_chart = values.get("postgresql", {}).get("enabled", True) and not external
    statefulsets = [w for w in by_kind(docs, "StatefulSet")
                    if w["spec"]["template"]["metadata"]["labels"].get("app.kubernetes.io/component") == "postgresql"]
    if not in_chart:
        if statefulsets:
            fail(context, "an in-chart PostgreSQL renders although the database is external")
        if ref and ref[0] != external:
            fail(context, f"the api reads Secret {ref[0]}, values name {external}")
        return
    if len(statefulsets) != 1:
        fail(context, f"postgresql.enabled but {len(statefulsets)} PostgreSQL StatefulSets")
        return
    db = statefulsets[0]
    if not db["spec"].get("volumeClaimTemplates"):
        fail(context, "the evaluation PostgreSQL keeps its data on no volume")
    secrets_ = {d["metadata"]["name"]: d for d in by_kind(docs, "Secret")}
    secret = secrets_.get(ref[0]) if ref else None
    if secret is None:
        fail(context, f"the api's database Secret {ref} is not rendered")
        return
    data = {k: base64.b64decode(v).decode() for k, v in secret.get("data", {}).items()}
    if ref[1] not in data or "password" not in data:
        fail(context, f"Secret {ref[0]} lacks {ref[1]!r} or 'password'")
        return
    services = {d["metadata"]["name"]: d for d in by_kind(docs, "Service")}
    match = re.fullmatch(r"postgres://([^:]+):([^@]+)@([^:/]+):(\d+)/(\w+)", data[ref[1]])
    if not match:
        fail(context, f"Secret {ref[0]}: {ref[1]} is not a postgres:// URL")
        return
    user, password, host, port, database = match.groups()
    if password != data["password"] or len(password) < 24:
        fail(context, "the database URL's password is not the Secret's generated password")
    svc = services.get(host)
    if svc is None or not any(p["port"] == int(port) for p in svc["spec"]["ports"]):
        fail(context, f"the database URL names {host}:{port}, which no Service serves")
    env = {e["name"]: e for e in pod_spec(db)["containers"][0].get("env", [])}
    if env.get("POSTGRES_USER", {}).get("value") != user or env.get("POSTGRES_DB", {}).get("value") != database:
        fail(context, "PostgreSQL's POSTGRES_USER/POSTGRES_DB differ from the URL's")
    if env.get("POSTGRES_PASSWORD", {}).get("valueFrom", {}).get("secretKeyRef") != {"name": ref[0], "key": "password"}:
        fail(context, "PostgreSQL's password is not the Secret's")


def check_rendered(context, docs, bin_dir, values):
    """Every check of one rendered set of objects (a chart values file or an overlay)."""
    validate_schema(context, docs)
    effective = check_workloads(context, docs, bin_dir)
    check_services(context, docs)
    check_autoscaling(context, docs, effective)
    check_transcoder(context, docs, effective, values)
    check_chain(context, docs, effective, values)
    check_database(context, docs, effective, values)
    print(f"ok {context}: {len(docs)} objects, services {sorted(effective)}", file=sys.stderr)


def helm(*args):
    return run([HELM, *args])


def check_chart(bin_dir):
    ci_dir = os.path.join(CHART, "ci")
    for name in sorted(os.listdir(ci_dir)):
        if not name.endswith("-values.yaml"):
            continue
        path = os.path.join(ci_dir, name)
        context = f"helm/{name}"
        values = yaml.safe_load(open(path)) or {}
        lint = helm("lint", "--strict", CHART, "-f", path)
        if lint.returncode != 0:
            fail(context, "helm lint:\n" + lint.stdout + lint.stderr)
        out = helm("template", "lf", CHART, "-f", path, "--namespace", "video",
                   "--kube-version", KUBE_VERSION)
        if out.returncode != 0:
            fail(context, "helm template:\n" + out.stderr)
            continue
        check_rendered(context, load_docs(out.stdout), bin_dir, values)
    refused = {
        "chain without rpcUrl": ["--set", "chain.enabled=true", "--set", "chain.controller=0x1",
                                 "--set", "chain.keySecret.name=k"],
        "autoscaling from zero": ["--set", "transcoder.autoscaling.enabled=true",
                                  "--set", "transcoder.autoscaling.minReplicas=0"],
        "external redis without url": ["--set", "redis.enabled=false"],
        "redis without the append-only file": ["--set", "redis.appendfsync=no"],
        # values.schema.json: a misspelt key fails instead of being ignored
        "a misspelt value": ["--set", "transcoder.maxSesions=3"],
        "an unknown auth mode": ["--set", "ingest.authMode=open"],
        # the stream registry is gone: ingest authorises publishes against the api's database
        "the registry auth mode": ["--set", "ingest.authMode=registry"],
        "an api without a database": ["--set", "postgresql.enabled=false"],
        "a public URL without a scheme": ["--set", "api.publicUrl=play.example.com"],
        # the orchestrator is its own service: its old place under ingest is refused
        "the orchestrator under ingest": ["--set", "ingest.orchestrator.enabled=true"],
    }
    for what, args in refused.items():
        out = helm("template", "lf", CHART, *args)
        if out.returncode == 0:
            fail("helm refusals", f"{what} renders")
        else:
            lines = out.stderr.strip().splitlines()
            why = next((l.strip() for l in lines if l.strip().startswith("- at")), lines[0])
            print(f"ok helm refuses {what}: {why}", file=sys.stderr)


def check_kustomize(bin_dir):
    overlays = os.path.join(REPO, "k8s", "overlays")
    if not os.path.isdir(overlays):
        fail("k8s", "k8s/overlays is missing")
        return
    for name in sorted(os.listdir(overlays)):
        context = f"k8s/overlays/{name}"
        out = run([KUBECTL, "kustomize", os.path.join(overlays, name)])
        if out.returncode != 0:
            fail(context, "kubectl kustomize:\n" + out.stderr)
            continue
        # What the overlay sets, in the chart's terms, for the checks that need it.
        values = yaml.safe_load(open(os.path.join(REPO, "k8s", "chart-values.yaml"))) or {}
        values["transcoder"] = {"gpu": {"enabled": "gpu" in name}}
        check_rendered(context, load_docs(out.stdout), bin_dir, values)


# In debian:bookworm-slim already (Essential or required by apt).
SLIM_PACKAGES = {"libc6", "libgcc-s1", "libstdc++6", "zlib1g"}


def dockerfile_stages():
    """Stage name -> (parent stage, apt packages, binaries copied from the build stage, ports)."""
    text = open(os.path.join(REPO, "Dockerfile")).read().replace("\\\n", " ")
    stages, current = {}, None
    for line in text.splitlines():
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        if words[0] == "FROM":
            current = words[3] if len(words) > 3 and words[2].upper() == "AS" else None
            stages[current] = {"parent": words[1], "packages": set(), "binaries": [], "ports": set()}
        elif current and words[0] == "RUN" and "apt-get" in words and "install" in words:
            install = line[line.index("install"):].split("&&")[0].split()
            stages[current]["packages"] |= {w for w in install[1:] if not w.startswith("-")}
        elif current and words[0] == "COPY" and "--from=build" in words:
            stages[current]["binaries"] += [os.path.basename(w) for w in words[2:-1]]
        elif current and words[0] == "EXPOSE":
            stages[current]["ports"] |= {int(w.split("/")[0]) for w in words[1:]}
    return stages


def needed_packages(binary):
    """Debian packages owning the libraries `binary` names as NEEDED (direct dependencies: apt
    brings the packages' own dependencies)."""
    out = run(["readelf", "-d", binary])
    needed = set(re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out.stdout))
    resolved = {}
    for line in run(["ldd", binary]).stdout.splitlines():
        match = re.match(r"\s*(\S+) => (\S+)", line)
        if match:
            resolved[match.group(1)] = match.group(2)
    packages = set()
    for lib in sorted(needed):
        if lib.startswith("ld-linux"):
            packages.add("libc6")
            continue
        path = resolved.get(lib)
        if path is None:
            fail("Dockerfile", f"{binary} needs {lib}, which does not resolve here")
            continue
        # merged /usr: dpkg knows a file under the path its package shipped it at
        candidates = [path, os.path.realpath(path)]
        candidates += [c.replace("/usr/lib/", "/lib/", 1) for c in candidates]
        candidates += [c.replace("/lib/", "/usr/lib/", 1) for c in candidates if c.startswith("/lib/")]
        for candidate in candidates:
            owner = run(["dpkg", "-S", candidate])
            if owner.returncode == 0:
                packages.add(owner.stdout.split(":")[0])
                break
        else:
            fail("Dockerfile", f"{binary} needs {path}, which no Debian package owns")
    return packages


def check_dockerfile(bin_dir):
    """Every service has an image stage whose packages cover what its binary links, and which
    exposes the ports the chart gives its container."""
    stages = dockerfile_stages()
    out = helm("template", "lf", CHART, "-f", os.path.join(CHART, "ci", "default-values.yaml"),
               "--set", "chain.enabled=true,chain.rpcUrl=http://x,chain.controller=0x1,chain.keySecret.name=k")
    docs = load_docs(out.stdout) if out.returncode == 0 else []
    chart_ports = {}
    for workload in [d for d in docs if d["kind"] in WORKLOADS]:
        component = workload["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"]
        container = pod_spec(workload)["containers"][0]
        chart_ports[component] = {p["containerPort"] for p in container.get("ports", [])}
        image = container["image"]
        if component in LISTEN_KEYS and image.rsplit("/", 1)[1].split(":")[0] != component:
            fail("Dockerfile", f"the chart runs {image} for {component}")
    for component in list(LISTEN_KEYS) + ["livefarm"]:
        stage = stages.get(component)
        if stage is None:
            fail("Dockerfile", f"no stage for {component}")
            continue
        packages, parent = set(stage["packages"]), stage["parent"]
        while parent in stages:
            packages |= stages[parent]["packages"]
            parent = stages[parent]["parent"]
        for binary in stage["binaries"]:
            path = os.path.join(bin_dir, binary)
            if not os.access(path, os.X_OK):
                fail("Dockerfile", f"{path} is missing (build the workspace first)")
                continue
            missing = needed_packages(path) - packages - SLIM_PACKAGES
            if missing:
                fail("Dockerfile", f"stage {component}: {binary} links {sorted(missing)}, not installed")
        if component in chart_ports and not chart_ports[component] <= stage["ports"]:
            fail("Dockerfile", f"stage {component} exposes {sorted(stage['ports'])}, "
                                f"the chart uses {sorted(chart_ports[component])}")
    print(f"ok Dockerfile: {len(stages)} stages", file=sys.stderr)


def main():
    parser = argparse.ArgumentParser()
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(REPO, "target"))
    parser.add_argument("--bin-dir", default=os.path.join(target, "debug"))
    args = parser.parse_args()
    check_chart(args.bin_dir)
    check_kustomize(args.bin_dir)
    check_dockerfile(args.bin_dir)
    if failures:
        print("\n".join(["deployment check failed:"] + failures), file=sys.stderr)
        sys.exit(1)
    print("deployment check passed", file=sys.stderr)


if __name__ == "__main__":
    main()
