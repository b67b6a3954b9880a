#!/usr/bin/env bash
# Test-only tools that come from PyPI: moto's S3-compatible server, which the
# livefarm-storage conformance tests start on a free loopback port. Idempotent: installs only
# what is missing. Where the system Python refuses pip installs (Debian 12, PEP 668) it goes
# into a virtual environment at $LIVEFARM_TOOLS_DIR/venv, where the tests look for it too.
set -euo pipefail

MOTO_VERSION=5.2.1
TOOLS_DIR="${LIVEFARM_TOOLS_DIR:-$HOME/.cache/livefarm-tools}"
VENV="$TOOLS_DIR/venv"

if command -v moto_server >/dev/null 2>&1 || [ -x "$VENV/bin/moto_server" ]; then
  exit 0
fi

echo "installing moto[server]==${MOTO_VERSION}" >&2
if python3 -m pip install --quiet "moto[server]==${MOTO_VERSION}" 2>/dev/null; then
  # pyenv puts console scripts behind shims that need a rehash.
  if command -v pyenv >/dev/null 2>&1; then
    pyenv rehash
  fi
fi
if ! command -v moto_server >/dev/null 2>&1; then
  # Debian's python3 is externally managed (needs apt's python3-venv).
  mkdir -p "$TOOLS_DIR"
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet "moto[server]==${MOTO_VERSION}"
  echo "moto_server installed at $VENV/bin/moto_server" >&2
fi
