#!/usr/bin/env bash
# The official Livepeer SDKs that the Studio-API conformance suite drives
# (integration-tests/sdk/, run by integration-tests/tests/sdk_conformance.rs), pinned:
# - npm `livepeer@3.5.0` with `zod@3.23.8` beside it (the SDK's peer dependency), unpacked
#   with `npm pack` into <tools>/node_modules, so `import { Livepeer } from "livepeer"` resolves
#   from any script run with NODE_PATH=<tools>/node_modules or from under <tools>;
# - PyPI `livepeer==0.3.0` in a virtual environment at <tools>/venv (with its own pinned deps).
# Node/npm and python3-venv come from apt when missing. Idempotent and fast when installed:
# each part is checked by version and skipped. TOOLS defaults to <repo>/.tools/sdk (gitignored).
set -euo pipefail

LIVEPEER_JS_VERSION=3.5.0
ZOD_VERSION=3.23.8
LIVEPEER_PY_VERSION=0.3.0

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="${LIVEFARM_SDK_TOOLS:-$REPO/.tools/sdk}"
die() { echo "install-sdk-tools: $*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}
apt_install() {
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "installing nodejs and npm (apt)" >&2
  apt_install nodejs npm
fi
# ffmpeg publishes the suite's RTMP stream; it is usually there already (install-deps.sh).
if ! command -v ffmpeg >/dev/null 2>&1; then
  echo "installing ffmpeg (apt)" >&2
  apt_install ffmpeg
fi

installed_js() {
  node -p "require('$TOOLS/node_modules/$1/package.json').version" 2>/dev/null || true
}

# `npm pack` fetches the exact tarball; unpacking it ourselves installs nothing else (the SDK's
# only runtime dependency is zod, pinned here too).
unpack_npm() {
  local spec="$1" name="$2" work
  work="$(mktemp -d)"
  (cd "$work" && npm pack --silent "$spec" >/dev/null) || { rm -rf "$work"; die "npm pack $spec failed"; }
  rm -rf "$TOOLS/node_modules/$name.part"
  mkdir -p "$TOOLS/node_modules/$name.part"
  tar -xzf "$work"/*.tgz -C "$TOOLS/node_modules/$name.part" --strip-components=1
  rm -rf "$work" "$TOOLS/node_modules/$name"
  mv "$TOOLS/node_modules/$name.part" "$TOOLS/node_modules/$name"
}

if [ "$(installed_js livepeer)" != "$LIVEPEER_JS_VERSION" ]; then
  echo "installing livepeer@$LIVEPEER_JS_VERSION (npm pack) into $TOOLS" >&2
  mkdir -p "$TOOLS/node_modules"
  unpack_npm "livepeer@$LIVEPEER_JS_VERSION" livepeer
fi
if [ "$(installed_js zod)" != "$ZOD_VERSION" ]; then
  echo "installing zod@$ZOD_VERSION (npm pack) into $TOOLS" >&2
  mkdir -p "$TOOLS/node_modules"
  unpack_npm "zod@$ZOD_VERSION" zod
fi
[ "$(installed_js livepeer)" = "$LIVEPEER_JS_VERSION" ] || die "livepeer@$LIVEPEER_JS_VERSION did not install"
[ "$(installed_js zod)" = "$ZOD_VERSION" ] || die "zod@$ZOD_VERSION did not install"

installed_py() {
  "$TOOLS/venv/bin/python" -c \
    'import importlib.metadata as m; print(m.version("livepeer"))' 2>/dev/null || true
}
if [ "$(installed_py)" != "$LIVEPEER_PY_VERSION" ]; then
  echo "installing livepeer==$LIVEPEER_PY_VERSION (pip) into $TOOLS/venv" >&2
  if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    echo "installing python3-venv (apt)" >&2
    apt_install python3-venv
  fi
  mkdir -p "$TOOLS"
  [ -x "$TOOLS/venv/bin/python" ] || python3 -m venv "$TOOLS/venv" || die "python3 -m venv failed"
  "$TOOLS/venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    "livepeer==$LIVEPEER_PY_VERSION" || die "pip install livepeer==$LIVEPEER_PY_VERSION failed"
fi
[ "$(installed_py)" = "$LIVEPEER_PY_VERSION" ] || die "livepeer==$LIVEPEER_PY_VERSION did not install"

echo "sdk tools ready: $TOOLS (livepeer js $LIVEPEER_JS_VERSION, zod $ZOD_VERSION, python livepeer $LIVEPEER_PY_VERSION)" >&2
