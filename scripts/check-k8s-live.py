#!/usr/bin/env python3
"""The Helm chart and the kustomize overlays against a real Kubernetes control plane.

One control plane (scripts/kube-control-plane.sh: etcd, kube-apiserver, kube-controller-manager,
kube-scheduler v1.36.2 on loopback) serves every check; the KEDA and prometheus-operator CRDs
(third_party/kubernetes/crds) are applied first. Nodes are registered shaped like the Terraform
node groups: instance types, counts, labels and taints are read from terraform/, capacity and
allocatable derived from the instance type the way EKS computes them. NO KUBELET RUNS: Pods are
created by the real controllers and bound to Nodes by the real scheduler, but never start, so
nothing here waits for readiness; the checks read objects, bindings and status fields.

For every values file in helm/livefarm/ci/, in a fresh namespace:
- `helm install` (Helm 4 applies server-side: every object, custom resources included, is
  validated against the server's schema; a misspelt field fails, which is proven below);
- every Pod the controllers create is bound by the scheduler: transcoders to GPU nodes exactly
  when `transcoder.gpu.enabled`, nothing else to a GPU node; requests fit the node type;
- PodDisruptionBudgets have the status the controller computes from their pods;
- `helm upgrade` with a changed transcoder config: the Deployment controller creates the new
  ReplicaSet and keeps the old one at full size (maxUnavailable 0); a `redis.persistence.size`
  change is refused with the chart's message and the release stays deployed; turning
  autoscaling on keeps the running replica count;
- `helm rollback` restores the first revision's objects;
- `helm uninstall` leaves nothing but what the chart keeps on purpose (PersistentVolumeClaims
  and the evaluation PostgreSQL's Secret), next to what an empty namespace holds.
For each overlay in k8s/overlays/: `kubectl apply -k --dry-run=server`, then a real apply into a
namespace of its own with the same scheduling checks.

Usage: check-k8s-live.py [--keep RUN_DIR]. Needs scripts/install-deploy-tools.sh and
scripts/install-kube-tools.sh; without the control plane's binaries it skips (exit 0) unless
LIVEFARM_REQUIRE_KUBE=1.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import hcl2
import yaml

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOLS = os.environ.get("TOOLS", os.path.join(REPO, ".tools", "deploy"))
KUBE_TOOLS = os.environ.get("KUBE_TOOLS", os.path.join(REPO, ".tools", "kube"))
HELM = os.path.join(TOOLS, "bin", "helm")
KUBECTL = os.path.join(TOOLS, "bin", "kubectl")
CHART = os.path.join(REPO, "helm", "livefarm")
CRDS = os.path.join(REPO, "third_party", "kubernetes", "crds")
CONTROL_PLANE = os.path.join(REPO, "scripts", "kube-control-plane.sh")
RELEASE = "lf"
WAIT = 60.0

# AWS instance facts (https://aws.amazon.com/ec2/instance-types/, ENI limits from
# https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/using-eni.html): vCPUs, memory (GiB),
# NVIDIA GPUs, ENIs and IPv4 addresses per ENI (EKS' max pods = enis * (ips - 1) + 2). Terraform
# names the instance type; add a row when it names one not listed here.
INSTANCE_TYPES = {
    "c6i.xlarge": {"vcpu": 4, "memory_gib": 8, "gpus": 0, "enis": 4, "ips": 15},
    "c6i.2xlarge": {"vcpu": 8, "memory_gib": 16, "gpus": 0, "enis": 4, "ips": 15},
    "c6i.4xlarge": {"vcpu": 16, "memory_gib": 32, "gpus": 0, "enis": 8, "ips": 30},
    "g4dn.xlarge": {"vcpu": 4, "memory_gib": 16, "gpus": 1, "enis": 3, "ips": 10},
    "g5.xlarge": {"vcpu": 4, "memory_gib": 16, "gpus": 1, "enis": 4, "ips": 15},
    "g6.xlarge": {"vcpu": 4, "memory_gib": 16, "gpus": 1, "enis": 4, "ips": 15},
    "g6.2xlarge": {"vcpu": 8, "memory_gib": 32, "gpus": 1, "enis": 4, "ips": 15},
}
# What the DaemonSets every EKS node runs request (aws-node 25m, kube-proxy 100m, and room for
# the NVIDIA device plugin and a log/metrics agent): taken off allocatable so that a workload
# that only fits an empty node fails here as it would there.
DAEMONSET_CPU_M = 250
DAEMONSET_MEMORY_MI = 400
# The chart's ci values use two GPU nodes at least (two GPU transcoders at minReplicas).
MIN_GPU_NODES = 2

failures = []
started = time.monotonic()


def fail(context, message):
    failures.append(f"{context}: {message}")
    print(f"FAIL {context}: {message}", file=sys.stderr)


def ok(context, message, since=None):
    """Reports a check that passed; `since`: the failure count when it began (no ok if it
    failed meanwhile)."""
    if since is not None and len(failures) > since:
        return
    print(f"ok {context}: {message} [{time.monotonic() - started:.0f}s]", file=sys.stderr)


def run(cmd, check=True, input=None):
    out = subprocess.run(cmd, capture_output=True, text=True, input=input)
    if check and out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{out.stdout}{out.stderr}")
    return out


def kubectl(*args, check=True, input=None):
    return run([KUBECTL, *args], check=check, input=input)


def helm(*args, check=True):
    return run([HELM, *args], check=check)


def get(kind, namespace=None, selector=None):
    args = ["get", kind, "-o", "json"]
    args += ["-n", namespace] if namespace else []
    args += ["-l", selector] if selector else []
    return json.loads(kubectl(*args).stdout)["items"]


def wait_until(what, condition, timeout=WAIT):
    """Polls `condition` until it returns something truthy; raises with its last answer."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        result, last = condition()
        if result:
            return result
        time.sleep(0.25)
    raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what}: {last}")


# ---------------------------------------------------------------- nodes shaped like terraform/

def unquote(value):
    return value.strip('"') if isinstance(value, str) else value


def terraform_default(variables, name):
    for block in variables:
        for key, body in block.items():
            if unquote(key) == name:
                return body["default"]
    raise KeyError(f"terraform/variables.tf has no variable {name}")


def node_pools():
    """The node groups of terraform/modules/cluster: instance type, count, labels, taints."""
    variables = hcl2.load(open(os.path.join(REPO, "terraform", "variables.tf")))["variable"]
    cluster = hcl2.load(open(os.path.join(REPO, "terraform", "modules", "cluster", "main.tf")))
    pools = []
    for block in cluster["resource"]:
        for rtype, named in block.items():
            if unquote(rtype) != "aws_eks_node_group":
                continue
            for name, body in named.items():
                name = unquote(name)
                (itype_ref,) = body["instance_types"]
                var = re.fullmatch(r"\$\{var\.([a-z_]+)\}", itype_ref).group(1)
                itype = unquote(terraform_default(variables, var))
                sizes = terraform_default(variables, f"{name}_nodes")
                count = int(sizes["desired"])
                labels = {unquote(k): unquote(v) for k, v in body.get("labels", {}).items()}
                effects = {"NO_SCHEDULE": "NoSchedule", "NO_EXECUTE": "NoExecute",
                           "PREFER_NO_SCHEDULE": "PreferNoSchedule"}
                taints = [{"key": unquote(t["key"]), "value": unquote(t["value"]),
                           "effect": effects[unquote(t["effect"])]} for t in body.get("taint", [])]
                if INSTANCE_TYPES.get(itype, {}).get("gpus"):
                    count = max(count, MIN_GPU_NODES)
                pools.append({"name": name, "type": itype, "count": count, "labels": labels,
                              "taints": taints})
    return pools


def eks_allocatable(itype):
    """Capacity and allocatable of an EKS AL2023 node of `itype` (nodeadm's kube-reserved:
    CPU 6% of the first core, 1% of the second, 0.5% of the next two, 0.25% above four; memory
    255Mi + 11Mi per pod; eviction at 100Mi; the kernel keeps about 7.5% of the memory, as
    Karpenter assumes), less the DaemonSets' requests."""
    facts = INSTANCE_TYPES.get(itype)
    if facts is None:
        raise KeyError(f"instance type {itype} (from terraform/) is not in INSTANCE_TYPES")
    cores = facts["vcpu"]
    reserved_m = 60 + (10 if cores > 1 else 0) + 5 * min(max(cores - 2, 0), 2) \
        + 2.5 * max(cores - 4, 0)
    max_pods = facts["enis"] * (facts["ips"] - 1) + 2
    capacity_mi = int(facts["memory_gib"] * 1024 * 0.925)
    allocatable_mi = capacity_mi - (255 + 11 * max_pods) - 100
    capacity = {"cpu": str(cores), "memory": f"{capacity_mi}Mi", "pods": str(max_pods)}
    allocatable = {"cpu": f"{int(cores * 1000 - reserved_m) - DAEMONSET_CPU_M}m",
                   "memory": f"{allocatable_mi - DAEMONSET_MEMORY_MI}Mi", "pods": str(max_pods)}
    if facts["gpus"]:
        capacity["nvidia.com/gpu"] = allocatable["nvidia.com/gpu"] = str(facts["gpus"])
    return capacity, allocatable


def register_nodes():
    nodes = {}
    for pool in node_pools():
        capacity, allocatable = eks_allocatable(pool["type"])
        for i in range(pool["count"]):
            name = f"{pool['name']}-{i}"
            labels = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                      "kubernetes.io/arch": "amd64",
                      "node.kubernetes.io/instance-type": pool["type"],
                      "topology.kubernetes.io/zone": f"zone-{i % 3}", **pool["labels"]}
            node = {"apiVersion": "v1", "kind": "Node",
                    "metadata": {"name": name, "labels": labels},
                    "spec": {"taints": pool["taints"]}}
            kubectl("apply", "-f", "-", input=json.dumps(node))
            status = {"status": {"capacity": capacity, "allocatable": allocatable,
                                 "conditions": [{"type": "Ready", "status": "True",
                                                 "reason": "KubeletReady",
                                                 "message": "no kubelet: a test node"}]}}
            kubectl("patch", "node", name, "--subresource=status", "--type=merge",
                    "-p", json.dumps(status))
            # The API server taints a new Node not-ready; with no node lifecycle controller
            # nothing lifts it.
            kubectl("taint", "nodes", name, "node.kubernetes.io/not-ready:NoSchedule-", check=False)
            nodes[name] = pool
        ok("nodes", f"{pool['count']} x {pool['type']} ({pool['name']}: allocatable {allocatable}, "
                    f"labels {pool['labels']}, taints {pool['taints']})")
    return nodes


# ---------------------------------------------------------------- checks of a running release

def is_gpu_node(nodes, name):
    return any(t["key"] == "nvidia.com/gpu" for t in nodes[name]["taints"])


def give_claims_volumes(namespace):
    """No storage provisioner runs: a hostPath PersistentVolume bound to each claim, so pods
    with volumes schedule too. A claim the values name but the chart does not make
    (`storage.persistence.existingClaim`) is made first, as its user would."""
    claims = {p["metadata"]["name"] for p in get("pvc", namespace)}
    for pod in get("pod", namespace):
        for volume in pod["spec"].get("volumes", []):
            claim = volume.get("persistentVolumeClaim", {}).get("claimName")
            if claim and claim not in claims:
                claims.add(claim)
                kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps({
                    "apiVersion": "v1", "kind": "PersistentVolumeClaim",
                    "metadata": {"name": claim},
                    "spec": {"accessModes": ["ReadWriteMany"],
                             "resources": {"requests": {"storage": "10Gi"}}}}))
    for pvc in get("pvc", namespace):
        if pvc["spec"].get("volumeName"):
            continue
        name = f"pv-{namespace}-{pvc['metadata']['name']}"[:63]
        pv = {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name},
              "spec": {"capacity": {"storage": pvc["spec"]["resources"]["requests"]["storage"]},
                       "accessModes": pvc["spec"]["accessModes"],
                       "storageClassName": pvc["spec"].get("storageClassName") or "",
                       "persistentVolumeReclaimPolicy": "Delete",
                       "hostPath": {"path": f"/var/lib/test/{name}"},
                       "claimRef": {"namespace": namespace, "name": pvc["metadata"]["name"]}}}
        kubectl("apply", "-f", "-", input=json.dumps(pv))


def expected_pods(namespace):
    """Pods the workloads of `namespace` should have now: (kind/name -> replicas)."""
    want = {}
    for kind in ("deployment", "statefulset"):
        for w in get(kind, namespace):
            want[f"{kind}/{w['metadata']['name']}"] = w["spec"].get("replicas", 1)
    return want


def owner_workload(pod, replicasets):
    for ref in pod["metadata"].get("ownerReferences", []):
        if ref["kind"] == "StatefulSet":
            return f"statefulset/{ref['name']}"
        if ref["kind"] == "ReplicaSet":
            rs = replicasets.get(ref["name"])
            for rs_ref in (rs or {}).get("metadata", {}).get("ownerReferences", []):
                if rs_ref["kind"] == "Deployment":
                    return f"deployment/{rs_ref['name']}"
    return None


def scheduled(context, namespace, nodes, gpu_transcoders):
    """Waits until every workload has its pods and the scheduler bound them all; then checks
    where they landed. Pods never start: there is no kubelet."""
    give_claims_volumes(namespace)

    def all_bound():
        give_claims_volumes(namespace)
        want = expected_pods(namespace)
        replicasets = {rs["metadata"]["name"]: rs for rs in get("replicaset", namespace)}
        pods = [p for p in get("pod", namespace) if not p["metadata"].get("deletionTimestamp")]
        have = {}
        for pod in pods:
            have.setdefault(owner_workload(pod, replicasets), []).append(pod)
        counts = {w: len(have.get(w, [])) for w in want}
        pending = {p["metadata"]["name"]: pod_scheduling_message(p) for p in pods
                   if not p["spec"].get("nodeName")}
        if counts == want and not pending:
            return have, None
        missing = {w: f"{counts[w]} of {n}" for w, n in want.items() if counts[w] != n}
        refused = sorted({e["message"] for e in get("event", namespace)
                          if e.get("reason") == "FailedCreate"}) if missing else []
        return None, {"workloads short of pods": missing, "pods refused": refused,
                      "unbound": pending}

    have = wait_until(f"{context}: every pod created and bound", all_bound)
    since = len(failures)
    transcoders = 0
    for workload, pods in have.items():
        for pod in pods:
            node = pod["spec"]["nodeName"]
            on_gpu = is_gpu_node(nodes, node)
            is_transcoder = workload.endswith("-transcoder")
            if is_transcoder:
                transcoders += 1
                if on_gpu != gpu_transcoders:
                    fail(context, f"transcoder {pod['metadata']['name']} bound to {node} "
                                  f"({nodes[node]['type']}); GPU transcoders: {gpu_transcoders}")
            elif on_gpu:
                fail(context, f"{pod['metadata']['name']} ({workload}) bound to GPU node {node}")
    placed = {w: sorted({p["spec"]["nodeName"] for p in ps}) for w, ps in have.items()}
    ok(context, f"{sum(map(len, have.values()))} pods bound ({transcoders} transcoders on "
                f"{'GPU' if gpu_transcoders else 'CPU'} nodes); placement {placed}", since)
    return have


def pod_scheduling_message(pod):
    for cond in pod.get("status", {}).get("conditions", []):
        if cond["type"] == "PodScheduled" and cond["status"] != "True":
            return cond.get("message", cond.get("reason", "not scheduled"))
    return "not scheduled yet"


def check_pdbs(context, namespace):
    """Each PDB's status as the disruption controller computes it from its (never ready)
    pods: every pod expected, none healthy, so no disruption allowed."""
    def computed():
        pdbs = get("pdb", namespace)
        states = {}
        for pdb in pdbs:
            st = pdb.get("status", {})
            selector = ",".join(f"{k}={v}" for k, v in pdb["spec"]["selector"]["matchLabels"].items())
            pods = [p for p in get("pod", namespace, selector) if not p["metadata"].get("deletionTimestamp")]
            want = {"expectedPods": len(pods), "currentHealthy": 0,
                    "desiredHealthy": max(len(pods) - pdb["spec"]["maxUnavailable"], 0),
                    "disruptionsAllowed": 0}
            got = {k: st.get(k, 0) for k in want}
            if st.get("observedGeneration") != pdb["metadata"]["generation"] or got != want:
                return None, {pdb["metadata"]["name"]: {"got": got, "want": want}}
            states[pdb["metadata"]["name"]] = got
        return (states or {"none": True}), None

    states = wait_until(f"{context}: PDB status", computed)
    ok(context, f"PDBs {states}")


def release_status(namespace):
    out = helm("status", RELEASE, "-n", namespace, "-o", "json")
    info = json.loads(out.stdout)
    return info["version"], info["info"]["status"]


def transcoder_replicasets(namespace):
    rs = get("replicaset", namespace, "app.kubernetes.io/component=transcoder")
    return sorted(rs, key=lambda r: int(r["metadata"]["annotations"]["deployment.kubernetes.io/revision"]))


def check_rollout(context, namespace, values_args):
    """A transcoder config change rolls the pods: the controller creates the new ReplicaSet and,
    since no new pod ever becomes available (no kubelet) and maxUnavailable is 0, never scales
    the old one down."""
    since = len(failures)
    before = transcoder_replicasets(namespace)
    desired = get("deployment", namespace, "app.kubernetes.io/component=transcoder")[0]["spec"]["replicas"]
    helm("upgrade", RELEASE, CHART, "-n", namespace, *values_args,
         "--set", "transcoder.config.x264_preset=veryfast")

    def rolled():
        rs = transcoder_replicasets(namespace)
        if len(rs) != len(before) + 1:
            return None, [(r["metadata"]["name"], r["spec"]["replicas"]) for r in rs]
        old, new = rs[-2], rs[-1]
        if new["spec"]["replicas"] < 1 or new.get("status", {}).get("replicas", 0) < 1:
            return None, "new ReplicaSet has no pod yet"
        return (old, new), None

    old, new = wait_until(f"{context}: the new ReplicaSet", rolled)
    if old["spec"]["replicas"] != desired:
        fail(context, f"rollout scaled the old ReplicaSet to {old['spec']['replicas']} of {desired} "
                      "before any new pod was available (maxUnavailable 0)")
    if new["spec"]["replicas"] != 1:
        fail(context, f"the new ReplicaSet has {new['spec']['replicas']} replicas, maxSurge is 1")
    ok(context, f"rollout: new ReplicaSet {new['metadata']['name']} (1 surge pod), old one kept at "
                f"{old['spec']['replicas']}", since)


def check_refused_resize(context, namespace, values_args):
    since = len(failures)
    out = helm("upgrade", RELEASE, CHART, "-n", namespace, *values_args,
               "--set", "redis.persistence.size=16Gi", check=False)
    revision, status = release_status(namespace)
    if out.returncode == 0:
        fail(context, "an upgrade changing redis.persistence.size went through")
    elif "volumeClaimTemplates" not in out.stderr or "docs/OPERATIONS.md" not in out.stderr:
        fail(context, f"redis.persistence.size change refused without the chart's message: {out.stderr}")
    if status != "deployed":
        fail(context, f"after the refused resize the release is {status}")
    ok(context, f"redis.persistence.size change refused (release still {status} at revision "
                f"{revision}): {out.stderr.strip().splitlines()[-1][:300]}", since)


def check_autoscaling_handover(context, namespace, values_args):
    """A running farm of 5 turns autoscaling on: the Deployment keeps 5 (the template renders
    the live count), no ReplicaSet is scaled down."""
    since = len(failures)
    helm("upgrade", RELEASE, CHART, "-n", namespace, *values_args,
         "--set", "transcoder.replicas=5", "--set", "transcoder.autoscaling.enabled=false")
    wait_until(f"{context}: 5 transcoders", lambda: (
        (sum(r["spec"]["replicas"] for r in transcoder_replicasets(namespace)) >= 5) or None, None))
    helm("upgrade", RELEASE, CHART, "-n", namespace, *values_args,
         "--set", "transcoder.replicas=5", "--set", "transcoder.autoscaling.enabled=true",
         "--set", "transcoder.autoscaling.mode=hpa", "--set", "transcoder.autoscaling.minReplicas=2",
         "--set", "transcoder.autoscaling.targetSessionsPerWorker=1")
    deployment = get("deployment", namespace, "app.kubernetes.io/component=transcoder")[0]
    events = kubectl("get", "events", "-n", namespace, "-o", "json").stdout
    scaled_down = [e["message"] for e in json.loads(events)["items"] if "Scaled down" in e.get("message", "")]
    if deployment["spec"]["replicas"] != 5 or scaled_down:
        fail(context, f"turning autoscaling on: replicas {deployment['spec']['replicas']}, "
                      f"events {scaled_down}")
    ok(context, "autoscaling turned on with 5 workers running: still 5, nothing scaled down",
       since)


def check_rollback(context, namespace, first_manifest):
    since = len(failures)
    revision, _ = release_status(namespace)
    helm("rollback", RELEASE, "1", "-n", namespace)
    now, status = release_status(namespace)
    manifest = helm("get", "manifest", RELEASE, "-n", namespace).stdout
    if status != "deployed" or now != revision + 1 or manifest != first_manifest:
        fail(context, f"rollback to 1: revision {now}, {status}, manifest "
                      f"{'same as' if manifest == first_manifest else 'differs from'} revision 1's")
    # The live objects follow: the transcoder's config is revision 1's again.
    cm = get("configmap", namespace, "app.kubernetes.io/component=transcoder")[0]
    if "veryfast" in cm["data"]["config.json"]:
        fail(context, "after the rollback the transcoder still has revision 2's config")
    ok(context, f"rollback to revision 1 (now revision {now}, {status})", since)


# What `helm uninstall` may leave: claims (the StatefulSets' and the kept segment volume) and the
# evaluation PostgreSQL's Secret (helm.sh/resource-policy: keep, so the data stays readable).
LEFTOVER_KINDS = "all,cm,secret,pdb,lease,role,rolebinding,sa,ingress,hpa,pvc,scaledobject,servicemonitor,prometheusrule,endpointslice"


def namespace_objects(namespace):
    items = json.loads(kubectl("get", LEFTOVER_KINDS, "-n", namespace, "-o", "json").stdout)["items"]
    return {f"{i['kind']}/{i['metadata']['name']}" for i in items}


def kept_on_purpose(obj):
    kind, name = obj.split("/", 1)
    return kind == "PersistentVolumeClaim" or (kind == "Secret" and name.endswith("-postgresql"))


def check_uninstall(context, namespace, baseline):
    helm("uninstall", RELEASE, "-n", namespace)

    def empty():
        # No kubelet confirms a bound pod's deletion: remove the ones already being deleted,
        # as the kubelet would once their containers stopped.
        for pod in get("pod", namespace):
            if pod["metadata"].get("deletionTimestamp"):
                kubectl("delete", "pod", "-n", namespace, pod["metadata"]["name"],
                        "--grace-period=0", "--force", "--wait=false", check=False)
        left = {o for o in namespace_objects(namespace) - baseline if not kept_on_purpose(o)}
        return (not left) or None, sorted(left)

    wait_until(f"{context}: nothing left after helm uninstall", empty)
    kept = sorted(o for o in namespace_objects(namespace) - baseline if kept_on_purpose(o))
    ok(context, f"helm uninstall left nothing (kept on purpose: {kept})")


def clear_namespace(namespace):
    """Frees the nodes (GPUs above all) after a check, whatever state it left: workloads
    deleted, their pods removed at once (no kubelet would confirm a graceful deletion)."""
    helm("uninstall", RELEASE, "-n", namespace, "--wait=false", check=False)
    kubectl("delete", "deployment,statefulset,replicaset", "--all", "-n", namespace,
            "--wait=false", check=False)
    kubectl("delete", "pods", "--all", "-n", namespace, "--grace-period=0", "--force", check=False)


def check_values_file(path, nodes):
    name = os.path.basename(path).removesuffix("-values.yaml")
    context = f"helm/{name}"
    namespace = f"ci-{name}"
    values = yaml.safe_load(open(path)) or {}
    gpu = values.get("transcoder", {}).get("gpu", {}).get("enabled", False)
    kubectl("create", "namespace", namespace)
    # What an empty namespace holds already (ServiceAccount default, kube-root-ca.crt, and on
    # these binaries openshift-service-ca.crt).
    baseline = wait_until(f"{namespace}: its default objects",
                          lambda: ((lambda o: (o if "ConfigMap/kube-root-ca.crt" in o else None, o))(
                              namespace_objects(namespace))))
    args = ["-f", path]
    out = helm("install", RELEASE, CHART, "-n", namespace, *args, check=False)
    if out.returncode != 0:
        fail(context, f"helm install:\n{out.stderr}")
        clear_namespace(namespace)
        return
    try:
        check_release(context, namespace, args, values, nodes, gpu, baseline)
    finally:
        clear_namespace(namespace)


def check_release(context, namespace, args, values, nodes, gpu, baseline):
    first_manifest = helm("get", "manifest", RELEASE, "-n", namespace).stdout
    objects = [d for d in yaml.safe_load_all(first_manifest) if d]
    ok(context, f"helm install: {len(objects)} objects accepted by the API server "
                f"({', '.join(sorted({o['kind'] for o in objects}))})")
    scheduled(context, namespace, nodes, gpu)
    check_pdbs(context, namespace)
    check_rollout(context, namespace, args)
    if values.get("redis", {}).get("enabled", True) and \
            values.get("redis", {}).get("persistence", {}).get("enabled", True):
        check_refused_resize(context, namespace, args)
    if not values.get("transcoder", {}).get("autoscaling", {}).get("enabled", False):
        check_autoscaling_handover(context, namespace, args)
    check_rollback(context, namespace, first_manifest)
    check_uninstall(context, namespace, baseline)


def check_misspelt_fields(nodes):
    """Server-side validation bites: the chart with a misspelt field in its ScaledObject, then in
    its ServiceMonitors, fails `helm install`."""
    values = os.path.join(CHART, "ci", "gpu-keda-s3-values.yaml")
    cases = {
        "ScaledObject": ("transcoder-autoscaling.yaml", "minReplicaCount:", "minReplicaCont:"),
        "ServiceMonitor": ("_helpers.tpl", "  endpoints:\n    - port: admin", "  endpoint:\n    - port: admin"),
    }
    for kind, (template, good, bad) in cases.items():
        with tempfile.TemporaryDirectory() as tmp:
            chart = os.path.join(tmp, "livefarm")
            shutil.copytree(CHART, chart)
            path = os.path.join(chart, "templates", template)
            text = open(path).read()
            if good not in text:
                fail("misspelt fields", f"{template} no longer has {good!r}: update this check")
                continue
            open(path, "w").write(text.replace(good, bad, 1))
            namespace = f"misspelt-{kind.lower()}"
            kubectl("create", "namespace", namespace)
            out = helm("install", RELEASE, chart, "-n", namespace, "-f", values, check=False)
            clear_namespace(namespace)
            if out.returncode == 0 or "not declared in schema" not in out.stderr:
                fail("misspelt fields", f"a misspelt field in the {kind} was not refused: "
                                        f"{out.returncode} {out.stderr}")
            else:
                ok("misspelt fields", f"{kind}: {out.stderr.strip().splitlines()[-1][:200]}")


def check_overlay(name, nodes):
    context = f"k8s/overlays/{name}"
    overlay = os.path.join(REPO, "k8s", "overlays", name)
    # The overlay names its namespace; server-side dry-run needs it to exist.
    kubectl("create", "namespace", "livefarm", check=False)
    out = kubectl("apply", "-k", overlay, "--dry-run=server", check=False)
    if out.returncode != 0:
        fail(context, f"kubectl apply -k --dry-run=server:\n{out.stderr}")
        return
    ok(context, f"kubectl apply -k --dry-run=server: {len(out.stdout.splitlines())} objects")
    # Then for real, in a namespace of its own, and scheduled.
    namespace = f"overlay-{name}"
    docs = [d for d in yaml.safe_load_all(kubectl("kustomize", overlay).stdout) if d]
    docs = [d for d in docs if d["kind"] != "Namespace"]
    for d in docs:
        d["metadata"]["namespace"] = namespace
        for subject in d.get("subjects", []):
            subject["namespace"] = namespace
    kubectl("create", "namespace", namespace)
    out = kubectl("apply", "--server-side", "-n", namespace, "-f", "-", check=False,
                  input=yaml.safe_dump_all(docs))
    if out.returncode != 0:
        fail(context, f"kubectl apply --server-side:\n{out.stderr}")
        return
    try:
        scheduled(context, namespace, nodes, gpu_transcoders=(name == "gpu"))
    finally:
        clear_namespace(namespace)


def check_runtime_class_opt_in(nodes):
    """`transcoder.gpu.runtimeClassName` is opt-in: set where the RuntimeClass exists (the GPU
    Operator creates `nvidia`), the transcoders are admitted and bound."""
    context = "helm/runtime-class"
    namespace = "ci-runtime-class"
    kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass",
        "metadata": {"name": "nvidia"}, "handler": "nvidia"}))
    kubectl("create", "namespace", namespace)
    helm("install", RELEASE, CHART, "-n", namespace,
         "-f", os.path.join(CHART, "ci", "gpu-keda-s3-values.yaml"),
         "--set", "transcoder.gpu.runtimeClassName=nvidia")
    try:
        have = scheduled(context, namespace, nodes, gpu_transcoders=True)
        runtime = {p["spec"].get("runtimeClassName") for w, ps in have.items()
                   if w.endswith("-transcoder") for p in ps}
        if runtime != {"nvidia"}:
            fail(context, f"transcoders run with runtimeClassName {runtime}")
    finally:
        clear_namespace(namespace)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--keep", metavar="RUN_DIR",
                        help="use this directory for the control plane and leave it running")
    parser.add_argument("--only", metavar="TEXT",
                        help="run only the checks whose name contains TEXT (a values file's "
                             "name, misspelt, overlay, runtime-class)")
    args = parser.parse_args()
    wanted = lambda name: not args.only or args.only in name
    if not os.access(os.path.join(KUBE_TOOLS, "bin", "kube-apiserver"), os.X_OK):
        message = f"no control plane in {KUBE_TOOLS}/bin: run scripts/install-kube-tools.sh"
        if os.environ.get("LIVEFARM_REQUIRE_KUBE") == "1":
            sys.exit(f"LIVEFARM_REQUIRE_KUBE=1 but {message}")
        print(f"!!! SKIPPED check-k8s-live: {message}", file=sys.stderr)
        return
    run_dir = args.keep or tempfile.mkdtemp(prefix="livefarm-kube-")
    os.makedirs(run_dir, exist_ok=True)
    start = [CONTROL_PLANE, "start", run_dir]
    if not args.keep:
        start += ["--owner-pid", str(os.getpid())]
    subprocess.run(start, check=True)
    os.environ["KUBECONFIG"] = os.path.join(run_dir, "kubeconfig")
    try:
        kubectl("apply", "--server-side", "-f", CRDS)
        kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
        nodes = register_nodes()
        ci_dir = os.path.join(CHART, "ci")
        for name in sorted(os.listdir(ci_dir)):
            if name.endswith("-values.yaml") and wanted(name):
                try:
                    check_values_file(os.path.join(ci_dir, name), nodes)
                except RuntimeError as error:
                    fail(f"helm/{name}", str(error))
        if wanted("misspelt"):
            check_misspelt_fields(nodes)
        for name in sorted(os.listdir(os.path.join(REPO, "k8s", "overlays"))):
            if not wanted(f"overlay-{name}"):
                continue
            try:
                check_overlay(name, nodes)
            except RuntimeError as error:
                fail(f"k8s/overlays/{name}", str(error))
        try:
            if wanted("runtime-class"):
                check_runtime_class_opt_in(nodes)
        except RuntimeError as error:
            fail("helm/runtime-class", str(error))
    finally:
        if not args.keep:
            subprocess.run([CONTROL_PLANE, "stop", run_dir], check=False)
            shutil.rmtree(run_dir, ignore_errors=True)
    if failures:
        print("\n".join(["live deployment check failed:"] + failures), file=sys.stderr)
        sys.exit(1)
    print(f"live deployment check passed in {time.monotonic() - started:.0f}s", file=sys.stderr)


if __name__ == "__main__":
    main()
