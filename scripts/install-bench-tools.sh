#!/usr/bin/env bash
# valgrind (its callgrind tool) for `livefarm bench tickets --instructions`, which counts the
# instructions of one ticket validation and one raw signature recovery so that the ratio is the
# same on every run and machine. Called by `make bench`, not by `make test`.
#
# Idempotent: does nothing when valgrind is on PATH or already unpacked. Otherwise Debian's
# valgrind package is fetched with `apt-get download` and unpacked with `dpkg -x` into
# TOOLS (default <repo>/.tools/bench), no root needed; $TOOLS/bin/valgrind is a wrapper that
# points valgrind at its unpacked tools (VALGRIND_LIB). The bench looks there when valgrind is
# not on PATH (or set LIVEFARM_VALGRIND to any valgrind binary).
# LIVEFARM_BENCH_TOOLS_UNPACK=1 unpacks even when the system has valgrind (to test this path).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="${TOOLS:-$REPO/.tools/bench}"

die() { echo "install-bench-tools: $*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

if [ "${LIVEFARM_BENCH_TOOLS_UNPACK:-0}" != 1 ]; then
  if command -v valgrind >/dev/null 2>&1; then
    exit 0
  fi
fi
if [ -x "$TOOLS/bin/valgrind" ] && "$TOOLS/bin/valgrind" --version >/dev/null 2>&1; then
  exit 0
fi

command -v apt-get >/dev/null 2>&1 || die "no valgrind on PATH and no apt-get to fetch it: install valgrind"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "install-bench-tools: fetching valgrind from apt" >&2
if ! (cd "$work" && apt-get download -qq valgrind >/dev/null 2>&1); then
  # The package lists may be missing on a fresh machine.
  as_root apt-get update -qq >/dev/null || die "apt-get update failed"
  (cd "$work" && apt-get download -qq valgrind >/dev/null) || die "apt-get download valgrind failed"
fi
deb="$(ls "$work"/valgrind_*.deb 2>/dev/null | head -1)"
[ -n "$deb" ] || die "apt-get download left no valgrind package"
rm -rf "$TOOLS/root"
mkdir -p "$TOOLS/root" "$TOOLS/bin"
dpkg -x "$deb" "$TOOLS/root"
lib="$(dirname "$(ls "$TOOLS"/root/usr/lib*/valgrind/callgrind-*-linux 2>/dev/null | head -1)")"
[ -d "$lib" ] || die "no callgrind in $deb"
cat >"$TOOLS/bin/valgrind" <<WRAPPER
#!/bin/sh
# Unpacked from $(basename "$deb") by scripts/install-bench-tools.sh.
VALGRIND_LIB="$lib" exec "$TOOLS/root/usr/bin/valgrind" "\$@"
WRAPPER
chmod +x "$TOOLS/bin/valgrind"
"$TOOLS/bin/valgrind" --version >/dev/null || die "the unpacked valgrind does not run"
echo "install-bench-tools: $("$TOOLS/bin/valgrind" --version) at $TOOLS/bin/valgrind" >&2
