#!/usr/bin/env bash
# The Kubernetes control plane the deployment tests run against (scripts/kube-control-plane.sh):
# kube-apiserver, kube-controller-manager and kube-scheduler v1.36.2 from third_party/kubernetes
# (checksums verified, unpacked once), and etcd from Debian's `etcd-server` package (downloaded
# with `apt-get download` and unpacked with `dpkg -x`: no service is installed or started).
# Idempotent: an unpacked binary is kept while its .xz's checksum is the one it came from.
# KUBE_TOOLS defaults to <repo>/.tools/kube: bin/kube-* and bin/etcd end up there.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENDOR="$REPO/third_party/kubernetes"
KUBE_TOOLS="${KUBE_TOOLS:-$REPO/.tools/kube}"
KUBE_VERSION=v1.36.2
die() { echo "install-kube-tools: $*" >&2; exit 1; }

mkdir -p "$KUBE_TOOLS/bin"
for name in kube-apiserver kube-controller-manager kube-scheduler; do
  xz_file="$name-$KUBE_VERSION-linux-amd64.xz"
  want=$(awk -v f="$xz_file" '$2 == f { print $1 }' "$VENDOR/SHA256SUMS")
  [ -n "$want" ] || die "$xz_file is not in third_party/kubernetes/SHA256SUMS"
  stamp="$KUBE_TOOLS/bin/.$name.sha256"
  if [ -x "$KUBE_TOOLS/bin/$name" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    continue
  fi
  [ -f "$VENDOR/$xz_file" ] || die "third_party/kubernetes/$xz_file is missing"
  got=$(sha256sum "$VENDOR/$xz_file" | cut -d' ' -f1)
  [ "$got" = "$want" ] || die "$xz_file: checksum $got, want $want (SHA256SUMS)"
  echo "unpacking $name $KUBE_VERSION" >&2
  xz -dc "$VENDOR/$xz_file" > "$KUBE_TOOLS/bin/$name.part"
  chmod +x "$KUBE_TOOLS/bin/$name.part"
  mv "$KUBE_TOOLS/bin/$name.part" "$KUBE_TOOLS/bin/$name"
  echo "$want" > "$stamp"
done
# Versions are read whole before matching: `cmd | grep -q` under pipefail fails when grep exits
# at the first match and cmd dies of SIGPIPE writing its next line (etcd prints four).
version_of() { "$@" --version 2>/dev/null || true; }
grep -q "$KUBE_VERSION" <<<"$(version_of "$KUBE_TOOLS/bin/kube-apiserver")" \
  || die "kube-apiserver does not run or is not $KUBE_VERSION"

# etcd 3.4/3.5: the API server supports both.
if ! grep -q '^etcd Version: 3\.[45]\.' <<<"$(version_of "$KUBE_TOOLS/bin/etcd")"; then
  command -v apt-get >/dev/null 2>&1 || die "apt-get is missing: put an etcd 3.4/3.5 binary at $KUBE_TOOLS/bin/etcd"
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  echo "downloading etcd-server (apt-get download)" >&2
  (cd "$work" && apt-get download -qq etcd-server >/dev/null 2>&1) || {
    # A fresh machine may have no package lists yet.
    if [ "$(id -u)" -eq 0 ]; then apt-get update -qq; else sudo apt-get update -qq; fi
    (cd "$work" && apt-get download -qq etcd-server >/dev/null) || die "apt-get download etcd-server failed"
  }
  dpkg -x "$work"/etcd-server_*.deb "$work/root"
  cp "$work/root/usr/bin/etcd" "$KUBE_TOOLS/bin/etcd.part"
  mv "$KUBE_TOOLS/bin/etcd.part" "$KUBE_TOOLS/bin/etcd"
  grep -q '^etcd Version: 3\.[45]\.' <<<"$(version_of "$KUBE_TOOLS/bin/etcd")" \
    || die "the unpacked etcd does not run"
fi
