#!/usr/bin/env bash
# A private Kubernetes control plane on loopback for tests: etcd, kube-apiserver and (unless
# --apiserver-only) kube-controller-manager and kube-scheduler, on free ports, from the binaries
# scripts/install-kube-tools.sh unpacked into .tools/kube/bin. No kubelet runs: Pods are created
# and bound to Node objects, never started.
#
#   kube-control-plane.sh start RUN_DIR [--apiserver-only] [--owner-pid PID]
#   kube-control-plane.sh stop RUN_DIR
#
# start writes RUN_DIR/kubeconfig (cluster-admin: a static token in group system:masters; the
# server's certificate is self-signed, so the kubeconfig skips verification), RUN_DIR/env
# (KUBE_API_URL, KUBE_ADMIN_TOKEN), the logs and one <component>.pid per process, and returns
# when /readyz answers (5-8 s on 2 cores). --owner-pid: a watchdog stops everything when that
# process exits (a test binary that never runs its destructors). stop kills by the recorded
# PIDs, waits for them, and removes etcd's data.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
KUBE_TOOLS="${KUBE_TOOLS:-$REPO/.tools/kube}"
BIN="$KUBE_TOOLS/bin"
die() { echo "kube-control-plane: $*" >&2; exit 1; }

free_ports() {
  python3 - "$1" <<'PY'
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}

# Kills the recorded processes of RUN_DIR: the watchdog, then the Kubernetes components
# together, then etcd (the API server shuts down slowly once etcd is gone); TERM, and KILL
# whatever is left after 10 s.
stop() {
  local run_dir=$1 group
  for group in "watchdog" "scheduler controller-manager apiserver" "etcd"; do
    kill_and_wait "$run_dir" $group
  done
  rm -rf "$run_dir/etcd-data"
}

kill_and_wait() {
  local run_dir=$1 name pid pids=""
  shift
  for name in "$@"; do
    [ -f "$run_dir/$name.pid" ] || continue
    pid=$(cat "$run_dir/$name.pid")
    rm -f "$run_dir/$name.pid"
    [ "$name" = watchdog ] && [ "$pid" = "${WATCHDOG_SELF:-}" ] && continue
    kill "$pid" 2>/dev/null && pids="$pids $pid"
  done
  for pid in $pids; do
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  done
}

wait_ready() {
  local run_dir=$1 url=$2 token=$3 what=$4 path=$5 log=$6
  for _ in $(seq 1 300); do
    if curl -sfk -m 2 -H "Authorization: Bearer $token" "$url$path" >/dev/null 2>&1; then
      return 0
    fi
    if ! kill -0 "$(cat "$run_dir/$what.pid")" 2>/dev/null; then break; fi
    sleep 0.2
  done
  echo "kube-control-plane: $what did not become ready; the end of $log:" >&2
  tail -25 "$log" >&2
  stop "$run_dir"
  exit 1
}

start() {
  local run_dir=$1; shift
  local apiserver_only=false owner_pid=""
  while [ $# -gt 0 ]; do
    case $1 in
      --apiserver-only) apiserver_only=true ;;
      --owner-pid) owner_pid=$2; shift ;;
      *) die "unknown option $1" ;;
    esac
    shift
  done
  for b in etcd kube-apiserver; do
    [ -x "$BIN/$b" ] || die "$BIN/$b is missing: run scripts/install-kube-tools.sh"
  done
  mkdir -p "$run_dir/certs" "$run_dir/etcd-data"
  local t0=$SECONDS etcd_port peer_port api_port token
  read -r etcd_port peer_port api_port <<<"$(free_ports 3)"

  openssl genrsa -out "$run_dir/certs/sa.key" 2048 2>/dev/null
  openssl rsa -in "$run_dir/certs/sa.key" -pubout -out "$run_dir/certs/sa.pub" 2>/dev/null
  token=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
  echo "$token,admin,admin,system:masters" > "$run_dir/tokens.csv"

  # --unsafe-no-fsync: a test cluster's data is thrown away; fsync only slows it down.
  ETCD_UNSUPPORTED_ARCH='' "$BIN/etcd" --name test --data-dir "$run_dir/etcd-data" \
    --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
    --initial-cluster "test=http://127.0.0.1:$peer_port" \
    --unsafe-no-fsync=true --quota-backend-bytes=$((512 * 1024 * 1024)) \
    > "$run_dir/etcd.log" 2>&1 &
  echo $! > "$run_dir/etcd.pid"

  # The ServiceAccount admission plugin is off (no token controller needed to create Pods);
  # tokens come from the TokenRequest API (`kubectl create token`), signed with sa.key.
  "$BIN/kube-apiserver" \
    --etcd-servers="http://127.0.0.1:$etcd_port" \
    --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$api_port" \
    --cert-dir="$run_dir/certs" \
    --service-cluster-ip-range=10.96.0.0/24 \
    --service-account-issuer=https://kubernetes.default.svc \
    --service-account-key-file="$run_dir/certs/sa.pub" \
    --service-account-signing-key-file="$run_dir/certs/sa.key" \
    --token-auth-file="$run_dir/tokens.csv" \
    --authorization-mode=RBAC --allow-privileged=true \
    --disable-admission-plugins=ServiceAccount \
    --enable-priority-and-fairness=false \
    > "$run_dir/apiserver.log" 2>&1 &
  echo $! > "$run_dir/apiserver.pid"

  if [ -n "$owner_pid" ]; then
    # setsid: the watchdog outlives the caller's process group; it polls once a second.
    setsid bash -c 'while kill -0 "$1" 2>/dev/null && [ -f "$2/apiserver.pid" ]; do sleep 1; done
      WATCHDOG_SELF=$$ "$3" stop "$2"' watchdog "$owner_pid" "$run_dir" "$REPO/scripts/kube-control-plane.sh" \
      </dev/null >/dev/null 2>&1 &
    echo $! > "$run_dir/watchdog.pid"
  fi

  cat > "$run_dir/kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
- name: livefarm-test
  cluster:
    server: https://127.0.0.1:$api_port
    insecure-skip-tls-verify: true
users:
- name: admin
  user:
    token: $token
contexts:
- name: livefarm-test
  context: {cluster: livefarm-test, user: admin, namespace: default}
current-context: livefarm-test
KC
  printf 'KUBE_API_URL=https://127.0.0.1:%s\nKUBE_ADMIN_TOKEN=%s\n' "$api_port" "$token" > "$run_dir/env"
  wait_ready "$run_dir" "https://127.0.0.1:$api_port" "$token" apiserver /readyz "$run_dir/apiserver.log"

  # No kubelet, so the node lifecycle controller is off: Node objects a test creates keep the
  # status it gives them. Controllers that need a cloud or node IPAM are off too. The volume
  # binder resyncs every second (default 15 s), so claims bind to a test's volumes at once.
  if ! $apiserver_only; then
    for b in kube-controller-manager kube-scheduler; do
      [ -x "$BIN/$b" ] || { stop "$run_dir"; die "$BIN/$b is missing: run scripts/install-kube-tools.sh"; }
    done
    "$BIN/kube-controller-manager" --kubeconfig="$run_dir/kubeconfig" \
      --authentication-kubeconfig="$run_dir/kubeconfig" --authorization-kubeconfig="$run_dir/kubeconfig" \
      --service-account-private-key-file="$run_dir/certs/sa.key" --root-ca-file="$run_dir/certs/apiserver.crt" \
      --controllers='*,-nodelifecycle,-nodeipam,-cloud-node-lifecycle,-service-lb-controller,-route' \
      --leader-elect=false --bind-address=127.0.0.1 --secure-port=0 \
      --pvclaimbinder-sync-period=1s \
      > "$run_dir/controller-manager.log" 2>&1 &
    echo $! > "$run_dir/controller-manager.pid"
    "$BIN/kube-scheduler" --kubeconfig="$run_dir/kubeconfig" \
      --authentication-kubeconfig="$run_dir/kubeconfig" --authorization-kubeconfig="$run_dir/kubeconfig" \
      --leader-elect=false --bind-address=127.0.0.1 --secure-port=0 \
      > "$run_dir/scheduler.log" 2>&1 &
    echo $! > "$run_dir/scheduler.pid"
  fi
  echo "kube-control-plane: ready at https://127.0.0.1:$api_port after $((SECONDS - t0)) s ($run_dir)" >&2
}

[ $# -ge 2 ] || die "usage: kube-control-plane.sh start|stop RUN_DIR [--apiserver-only] [--owner-pid PID]"
cmd=$1; run_dir=$2; shift 2
case $cmd in
  start) start "$run_dir" "$@" ;;
  stop) stop "$run_dir" ;;
  *) die "unknown command $cmd" ;;
esac
