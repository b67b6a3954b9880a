#!/usr/bin/env bash
# The PostgreSQL server binaries (Debian's postgresql-15) for the control-plane store's tests,
# which start a private server on a free loopback port (crates/store/src/testing.rs) and stop
# it by PID. Installs only what is missing; needs root (or sudo) for apt.
#
# No system cluster is wanted: before the first install, postgresql-common is told not to
# create (and start) the usual "main" cluster on port 5432.
set -euo pipefail

if ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
  exit 0
fi

sudo_if_needed() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

if [ ! -e /etc/postgresql-common/createcluster.conf ]; then
  sudo_if_needed mkdir -p /etc/postgresql-common
  echo "create_main_cluster = false" | sudo_if_needed tee /etc/postgresql-common/createcluster.conf >/dev/null
fi
echo "installing postgresql-15" >&2
sudo_if_needed apt-get update -qq
sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql-15 >/dev/null
echo "postgresql ready: $(ls -d /usr/lib/postgresql/*/bin | tail -1)" >&2
