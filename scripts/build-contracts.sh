#!/usr/bin/env bash
# Compiles contracts/src/*.sol with the pinned solc-js into the committed artifacts
# contracts/artifacts/<Name>.json ({abi, bytecode, sourceSha256, compiler}). Run after any change
# to a .sol file; the livefarm-chain tests fail on artifacts older than the sources. Needs the
# tools from scripts/install-chain-tools.sh (TOOLS, default <repo>/.tools/chain).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="${TOOLS:-$REPO/.tools/chain}"
SOLC_PKG="$TOOLS/node_modules/solc"

if [ ! -f "$SOLC_PKG/package.json" ]; then
  echo "build-contracts: solc-js not found under $TOOLS; run scripts/install-chain-tools.sh" >&2
  exit 1
fi
node "$REPO/contracts/compile.cjs" "$SOLC_PKG" || { echo "build-contracts: compilation failed" >&2; exit 1; }
