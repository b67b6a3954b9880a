#!/usr/bin/env bash
# Every check Livefarm has: formatting, lints, unit, property, integration and smoke-fuzz tests.
# Installs what is missing first; the tests start their own servers (redis-server) on free
# loopback ports and stop them by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/install-test-tools.sh
export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

echo "== cargo fmt --check" >&2
cargo fmt --all -- --check
echo "== cargo clippy" >&2
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test" >&2
cargo test --workspace --locked --no-fail-fast
if [ -x scripts/fuzz-smoke.sh ]; then
  echo "== fuzz smoke" >&2
  scripts/fuzz-smoke.sh
fi
