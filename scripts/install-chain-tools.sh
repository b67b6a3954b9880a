#!/usr/bin/env bash
# Chain tools for the contract build and the livefarm-chain tests: anvil (a local EVM node) and
# solc-js, from npm at exact pinned versions. Idempotent: does nothing when both are already
# installed at those versions. TOOLS defaults to <repo>/.tools/chain; the anvil binary ends up at
# $TOOLS/node_modules/.bin/anvil, which is where the tests look unless LIVEFARM_ANVIL is set.
set -euo pipefail

ANVIL_VERSION=1.7.1
SOLC_VERSION=0.8.30

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="${TOOLS:-$REPO/.tools/chain}"

die() { echo "install-chain-tools: $*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "install-chain-tools: installing nodejs and npm with apt" >&2
  as_root apt-get update -qq >/dev/null || die "apt-get update failed"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null \
    || die "apt-get install nodejs npm failed"
fi

installed_version() {
  # Prints the version of an installed package, or nothing.
  local pkg_json="$TOOLS/node_modules/$1/package.json"
  [ -f "$pkg_json" ] && node -p "require('$pkg_json').version" 2>/dev/null || true
}

if [ "$(installed_version @foundry-rs/anvil)" != "$ANVIL_VERSION" ] \
  || [ "$(installed_version solc)" != "$SOLC_VERSION" ]; then
  mkdir -p "$TOOLS"
  log="$(mktemp)"
  if ! npm install --prefix "$TOOLS" --save-exact --no-audit --no-fund --loglevel=error \
    "@foundry-rs/anvil@$ANVIL_VERSION" "solc@$SOLC_VERSION" >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    die "npm install of anvil $ANVIL_VERSION and solc $SOLC_VERSION failed"
  fi
  rm -f "$log"
fi

ANVIL="$TOOLS/node_modules/.bin/anvil"
[ -x "$ANVIL" ] || die "anvil not found at $ANVIL after install"
"$ANVIL" --version >/dev/null 2>&1 || die "$ANVIL does not run (wrong platform package?)"
[ -x "$TOOLS/node_modules/.bin/solcjs" ] || die "solcjs not found under $TOOLS/node_modules/.bin"
