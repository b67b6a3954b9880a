#!/usr/bin/env bash
# Every check Livefarm has: formatting, lints, unit, property, integration and smoke-fuzz tests.
# Installs what is missing first; the tests start their own servers (redis-server) on free
# loopback ports and stop them by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/install-test-tools.sh
scripts/install-browser-tools.sh
scripts/install-chain-tools.sh
scripts/install-deploy-tools.sh
scripts/install-kube-tools.sh
scripts/install-db-tools.sh
scripts/install-sdk-tools.sh
scripts/install-obs-tools.sh
export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# A one-shot build gains nothing from incremental state, which costs gigabytes of disk.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
# Tests that need these tools skip loudly without them on a developer's machine; here the
# tools were just installed, so a missing one is a failure.
export LIVEFARM_REQUIRE_BROWSER=1
export LIVEFARM_REQUIRE_ANVIL=1
export LIVEFARM_REQUIRE_POSTGRES=1
export LIVEFARM_REQUIRE_SDK=1
export LIVEFARM_REQUIRE_KUBE=1
export LIVEFARM_REQUIRE_PROMETHEUS=1
# `cargo test --workspace` builds every service binary (with the workspace's feature set)
# before any test runs; multi-process tests use those instead of building their own.
export LIVEFARM_PREBUILT_BINS=1

echo "== cargo fmt --check" >&2
cargo fmt --all -- --check
echo "== cargo clippy" >&2
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test" >&2
cargo test --workspace --locked --no-fail-fast
# CI's disk is finite: say what the build took, so growth shows up before it fails a run.
echo "== target dir: $(du -sh "${CARGO_TARGET_DIR:-target}" 2>/dev/null | cut -f1)" >&2
echo "== deployment: helm/livefarm, k8s/, Dockerfile against the binaries just built; terraform/" >&2
.tools/deploy/venv/bin/python scripts/render-k8s.py --check
.tools/deploy/venv/bin/python scripts/check-deploy.py
echo "== deployment on a real control plane: helm install/upgrade/rollback/uninstall, scheduling" >&2
.tools/deploy/venv/bin/python scripts/check-k8s-live.py
.tools/deploy/venv/bin/python scripts/check-terraform.py
if [ -x scripts/fuzz-smoke.sh ]; then
  echo "== fuzz smoke" >&2
  scripts/fuzz-smoke.sh
fi
