#!/usr/bin/env bash
# Prometheus 2.42 and promtool (Debian's `prometheus` package) for the observability tests:
# integration-tests/tests/observability.rs starts a private Prometheus on a free loopback port
# that scrapes a running farm, and `promtool check rules` / `promtool test rules` check the
# chart's alert and recording rules (helm/livefarm/files/, monitoring/tests/).
#
# The package is only unpacked (apt-get download + dpkg -x) into .tools/obs: no service is
# installed or started, and no root is needed. Installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

dest=.tools/obs
if [ -x "$dest/bin/prometheus" ] && [ -x "$dest/bin/promtool" ]; then
  exit 0
fi
echo "installing prometheus and promtool into $dest" >&2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download prometheus >/dev/null 2>&1) || {
  # a fresh machine may have no package lists yet
  if [ "$(id -u)" -eq 0 ]; then apt-get update -qq; else sudo apt-get update -qq; fi
  (cd "$work" && apt-get download prometheus >/dev/null)
}
dpkg -x "$work"/prometheus_*.deb "$work/root"
mkdir -p "$dest/bin" "$dest/share"
cp "$work/root/usr/bin/prometheus" "$work/root/usr/bin/promtool" "$dest/bin/"
cp -r "$work/root/usr/share/doc/prometheus" "$dest/share/" 2>/dev/null || true
echo "prometheus ready: $("$dest/bin/prometheus" --version 2>&1 | head -1)" >&2
