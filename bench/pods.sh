#!/usr/bin/env bash
# Pod start time: wall time of `crictl runp` against one berthd, N pods one after another.
# See bench/README.md.
#
#   bench/pods.sh [--runs N]      (default 20)
#
# Environment:
#   BERTHD   berthd binary (default target/release/berthd, else target/debug/berthd, else
#            built with `cargo build --release -p berthd`); the output says which
#   CRICTL   crictl binary (default: PATH, else the one scripts/build-cri-tools.sh builds)
#   TMPDIR   where the daemon's root, state and network data go (default /tmp)
#
# The daemon runs on a bench network of its own, not the built-in berth0: bridge
# bb<pid%10000>, host-local IPAM on 10.232.25<x>.0/24 with its dataDir in the work
# directory (never /var/lib/cni), portmap. Only `crictl runp` is timed; each pod is then
# stopped and removed (crictl stopp, rmp) outside the clock, so every run starts from the
# same state. On exit the script removes every pod, stops berthd by its PID, unmounts
# whatever is left under the work directory, deletes the bridge and the bench network's
# iptables rules and chains (and portmap's shared CNI-HOSTPORT-* chains when they did not
# exist before), and removes the work directory.
set -euo pipefail

PROG=pods.sh
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$REPO/bench/lib.sh"
die() { echo "$PROG: error: $*" >&2; exit 1; }
usage() { echo "usage: $PROG [--runs N]" >&2; exit 2; }

RUNS=20
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) [ $# -ge 2 ] || usage; RUNS=$2; shift 2 ;;
    -h|--help) usage ;;
    *) usage ;;
  esac
done
[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || die "--runs expects a positive number"
[ "$(id -u)" -eq 0 ] || die "must run as root (pod namespaces, CNI)"
for tool in ip iptables iptables-save awk sort; do
  command -v "$tool" >/dev/null || die "'$tool' not found (scripts/install-deps.sh test installs it)"
done
for plugin in bridge host-local loopback portmap; do
  [ -x "/usr/lib/cni/$plugin" ] || die "/usr/lib/cni/$plugin missing (containernetworking-plugins)"
done

# The bench network: its own bridge, subnet and IPAM directory.
BRIDGE=bb$(($$ % 10000))
NETWORK=berth-bench-$BRIDGE
OCTET=$((250 + $$ % 5))
SUBNET=10.232.$OCTET.0/24

WORK=$(mktemp -d "${TMPDIR:-/tmp}/berth-bench-pods.XXXXXX")
bench_note_hostport_chains
SOCKET=$WORK/berth.sock
BERTHD_PID=
CRICTL_CMD=()

cleanup() {
  local rc=$? pod mnt
  if [ -n "$BERTHD_PID" ] && kill -0 "$BERTHD_PID" 2>/dev/null; then
    # Pods of an interrupted run go through berthd, so CNI DEL releases what they hold.
    for pod in $("${CRICTL_CMD[@]}" pods -q 2>/dev/null || true); do
      "${CRICTL_CMD[@]}" rmp --force "$pod" >/dev/null 2>&1 || echo "warning: cannot remove pod $pod" >&2
    done
    kill -TERM "$BERTHD_PID" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$BERTHD_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$BERTHD_PID" 2>/dev/null || true
    wait "$BERTHD_PID" 2>/dev/null || true
  fi
  # Namespace pins and shm mounts left by a failure: unmounting them ends the namespaces.
  { grep -F " $WORK/" /proc/self/mountinfo || true; } | awk '{print $5}' | sort -r |
    while read -r mnt; do umount -l "$mnt" 2>/dev/null || true; done
  bench_clean_iptables
  if [ -e "/sys/class/net/$BRIDGE" ]; then ip link del "$BRIDGE" 2>/dev/null || true; fi
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bench_find_berthd
bench_find_crictl
bench_print_tools
echo "network:  $NETWORK, bridge $BRIDGE, $SUBNET, host-local dataDir $WORK/cni-ipam"

mkdir -p "$WORK/net.d" "$WORK/certs.d"
bench_conflist "$WORK/net.d/10-bench.conflist" "$NETWORK" "$BRIDGE" "$SUBNET" "$WORK/cni-ipam"
cat > "$WORK/berth.toml" <<TOML
[cni]
conf_dir = "$WORK/net.d"
bin_dirs = ["/usr/lib/cni"]
[registry]
config_path = "$WORK/certs.d"
TOML
# An empty crictl config: no /etc/crictl.yaml lookup, no warning about it.
: > "$WORK/crictl.yaml"
CRICTL_CMD=("$crictl" --config "$WORK/crictl.yaml" --runtime-endpoint "unix://$SOCKET"
  --image-endpoint "unix://$SOCKET" --timeout 60s)

"$berthd" --config "$WORK/berth.toml" --listen "$SOCKET" --root "$WORK/root" \
  --state "$WORK/state" --log-level info > "$WORK/berthd.log" 2>&1 &
BERTHD_PID=$!
for ((i = 0; i < 400; i++)); do [ -S "$SOCKET" ] && break; sleep 0.05; done
[ -S "$SOCKET" ] || { cat "$WORK/berthd.log" >&2; die "berthd did not start"; }

now() { date +%s%N; }
RESULTS=$WORK/results # run milliseconds
: > "$RESULTS"
echo
printf '%-5s %10s  %s\n' run ms pod
for ((run = 1; run <= RUNS; run++)); do
  cat > "$WORK/pod.json" <<JSON
{"metadata": {"name": "bench-$run", "namespace": "berth-bench", "uid": "bench-uid-$run", "attempt": 0},
 "hostname": "bench-$run",
 "dns_config": {"servers": ["10.10.10.10"], "searches": ["bench.test"], "options": ["ndots:2"]}}
JSON
  start=$(now)
  pod=$("${CRICTL_CMD[@]}" runp "$WORK/pod.json" 2> "$WORK/crictl.err") ||
    { cat "$WORK/crictl.err" >&2; tail -n 5 "$WORK/berthd.log" >&2; die "crictl runp failed (run $run)"; }
  end=$(now)
  ms=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", (b - a) / 1e6 }')
  echo "$ms" >> "$RESULTS"
  printf '%-5s %10s  %s\n' "$run" "$ms" "${pod:0:13}"
  # Not timed: back to an empty node.
  "${CRICTL_CMD[@]}" stopp "$pod" > /dev/null
  "${CRICTL_CMD[@]}" rmp "$pod" > /dev/null
done

# Nearest-rank percentiles over the sorted runs.
sort -n "$RESULTS" | awk -v n="$RUNS" '
  { v[NR] = $1; sum += $1 }
  function rank(pct) { r = int((pct * n + 99) / 100); if (r < 1) r = 1; if (r > n) r = n; return v[r] }
  END {
    printf "\ncrictl runp over %d runs: p50 %.1f ms, p90 %.1f ms (min %.1f, max %.1f, mean %.1f)\n",
      n, rank(50), rank(90), v[1], v[n], sum / n
  }'
