#!/usr/bin/env bash
# Containers: (a) the resident set of berth-shim for 20 idle containers in one pod, per shim
# and mean/max; (c) exec round trip of `true` (ExecSync and streaming exec through crictl),
# p50/p90 over 50 runs each; (b) pod start time: RunPodSandbox + CreateContainer +
# StartContainer through a direct gRPC client (tests/examples/podstart.rs), p50/p90 over 20
# runs; (d) ListContainers / ListPodSandbox p50/p99 with many containers (--list-pods pods
# of 10 containers each, default 50 = 500 containers), 1000 calls each from the gRPC client.
# See bench/README.md.
#
#   bench/containers.sh [--runs N] [--idle N] [--list-pods N] [--shim static|dynamic|PATH] [--no-build]
#
#   --runs N      pod start runs (default 20)
#   --idle N      idle containers (default 20)
#   --list-pods N pods of 10 containers for the list timing (default 50; 0 skips it)
#   --shim       which berth-shim the daemon runs (runtime.shim_path):
#                static  (default) the crate README's static-pie recipe,
#                        target/x86_64-unknown-linux-gnu/shim/berth-shim; falls back to
#                        dynamic if that build fails
#                dynamic target/shim/berth-shim (`cargo build --profile shim -p berth-shim`)
#                PATH    that binary
#   --no-build   use the binaries as they are (default: cargo builds them, a no-op when fresh)
#
# Environment:
#   BERTH_BENCH_REGISTRY_ADDR  the bench registry (default 127.0.0.1:5011)
#   TMPDIR                     where the daemon's root, state and network data go (/tmp)
#
# berthd is target/release/berthd (`cargo build --release -p berthd`; `$CARGO_TARGET_DIR`
# instead of target/ when set, for every binary here); the podstart client
# is built with `cargo build --release -p berth-integration --example podstart`. The script
# starts its own registry (tests/images/registry.sh, test images from tests/images/build.sh)
# and makes it the mirror of registry.k8s.io; the daemon runs on a bench network of its own,
# not the built-in berth0: bridge bc<pid%10000>, host-local IPAM on a free 10.232.25x.0/24
# with its dataDir in the work directory, portmap. On exit it removes every pod through the
# daemon, stops berthd by its PID, runs `runc delete --force` for any container runc still
# has under the work directory and SIGKILLs any shim left (by PID, after checking its comm
# and command line), unmounts whatever is left under the work directory, deletes the bridge
# and the bench network's iptables rules, stops the registry and removes the work directory.
set -euo pipefail

PROG=containers.sh
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$REPO/bench/lib.sh"
die() { echo "$PROG: error: $*" >&2; exit 1; }
usage() { sed -n '9,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }

RUNS=20
EXEC_RUNS=50
IDLE=20
LIST_PODS=50
SHIM=static
BUILD=1
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) [ $# -ge 2 ] || usage; RUNS=$2; shift 2 ;;
    --idle) [ $# -ge 2 ] || usage; IDLE=$2; shift 2 ;;
    --list-pods) [ $# -ge 2 ] || usage; LIST_PODS=$2; shift 2 ;;
    --shim) [ $# -ge 2 ] || usage; SHIM=$2; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    -h|--help) usage ;;
    *) usage ;;
  esac
done
[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || die "--runs expects a positive number"
[[ "$IDLE" =~ ^[1-9][0-9]*$ ]] || die "--idle expects a positive number"
[[ "$LIST_PODS" =~ ^[0-9]+$ ]] || die "--list-pods expects a number"
[ "$(id -u)" -eq 0 ] || die "must run as root (namespaces, mounts, runc)"
for tool in ip iptables iptables-save awk sort runc file; do
  command -v "$tool" >/dev/null || die "'$tool' not found (scripts/install-deps.sh test installs it)"
done
for plugin in bridge host-local loopback portmap; do
  [ -x "/usr/lib/cni/$plugin" ] || die "/usr/lib/cni/$plugin missing (containernetworking-plugins)"
done

REGISTRY_ADDR=${BERTH_BENCH_REGISTRY_ADDR:-127.0.0.1:5011}
IMAGE=registry.k8s.io/e2e-test-images/busybox:1.29-2

# The bench network: its own bridge, and a 10.232.25x.0/24 no interface uses yet (the
# integration tests use 10.232.100-249.x).
BRIDGE=bc$(($$ % 10000))
NETWORK=berth-bench-$BRIDGE
OCTET=
for o in 250 251 252 253 254; do
  if ! ip -o -4 addr show | grep -q " 10\.232\.$o\."; then OCTET=$o; break; fi
done
[ -n "$OCTET" ] || die "no free 10.232.250-254.0/24 subnet for the bench network"
SUBNET=10.232.$OCTET.0/24

WORK=$(mktemp -d "${TMPDIR:-/tmp}/berth-bench-containers.XXXXXX")
bench_note_hostport_chains
SOCKET=$WORK/berth.sock
STATE=$WORK/state
BERTHD_PID=
PODSTART=

# PIDs of live berth-shim processes whose command line names the work directory.
bench_shims() {
  local dir pid
  for dir in /proc/[0-9]*; do
    pid=${dir#/proc/}
    [ "$(cat "$dir/comm" 2>/dev/null)" = berth-shim ] || continue
    # The process may be gone between the listing and the read.
    { tr '\0' ' ' <"$dir/cmdline"; } 2>/dev/null | grep -qF -- "$WORK/" || continue
    echo "$pid"
  done
}

cleanup() {
  local rc=$? id pid mnt
  if [ -n "$BERTHD_PID" ] && kill -0 "$BERTHD_PID" 2>/dev/null; then
    # Pods (and their containers) go through berthd, so CNI DEL releases what they hold.
    if [ -n "$PODSTART" ]; then
      "$PODSTART" remove --socket "$SOCKET" >/dev/null 2>&1 || echo "warning: could not remove every pod" >&2
    fi
    kill -TERM "$BERTHD_PID" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$BERTHD_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$BERTHD_PID" 2>/dev/null || true
    wait "$BERTHD_PID" 2>/dev/null || true
  fi
  # Containers outlive berthd by design: end what a failed run left.
  for id in $(ls "$STATE/runc" 2>/dev/null); do
    runc --root "$STATE/runc" delete --force "$id" >/dev/null 2>&1 || true
  done
  for pid in $(bench_shims); do
    echo "warning: killing leftover shim $pid" >&2
    kill -KILL "$pid" 2>/dev/null || true
  done
  { grep -F " $WORK/" /proc/self/mountinfo || true; } | awk '{print $5}' | sort -r |
    while read -r mnt; do umount -l "$mnt" 2>/dev/null || true; done
  bench_clean_iptables
  if [ -e "/sys/class/net/$BRIDGE" ]; then ip link del "$BRIDGE" 2>/dev/null || true; fi
  if [ -f "$WORK/registry/registry.pid" ]; then
    "$REPO/tests/images/registry.sh" stop "$WORK/registry" >/dev/null 2>&1 || true
  fi
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- Binaries.
cd "$REPO"
if ((BUILD)); then
  echo "building: berthd (release), podstart (release), berth-shim (profile shim)"
  cargo build --release --quiet -p berthd
  cargo build --release --quiet -p berth-integration --example podstart
fi
TARGET=${CARGO_TARGET_DIR:-$REPO/target}
BERTHD=$TARGET/release/berthd
PODSTART_BIN=$TARGET/release/examples/podstart
[ -x "$BERTHD" ] || die "$BERTHD missing (cargo build --release -p berthd)"
[ -x "$PODSTART_BIN" ] || die "$PODSTART_BIN missing (cargo build --release -p berth-integration --example podstart)"
case "$SHIM" in
  static | dynamic)
    # The small build make install installs (static falls back to dynamic).
    if ((BUILD)); then
      shim_path=$(scripts/build-shim.sh "$SHIM" | tail -n 1)
    else
      triple=$(rustc -vV | sed -n 's/^host: //p')
      shim_path=$TARGET/shim/berth-shim
      [ "$SHIM" = static ] && shim_path=$TARGET/$triple/shim/berth-shim
    fi
    if [[ $shim_path == "$TARGET/shim/berth-shim" ]]; then
      shim_kind="dynamic (profile shim)"
    else
      shim_kind="static (crt-static, profile shim)"
    fi
    ;;
  *)
    shim_path=$SHIM
    shim_kind="given"
    ;;
esac
[ -x "$shim_path" ] || die "$shim_path missing"
PODSTART=$PODSTART_BIN
echo "berthd:   $BERTHD (release), $("$BERTHD" --version)"
linkage=$(file -b "$shim_path" | grep -oE 'static-pie linked|statically linked|dynamically linked' || echo "linkage unknown")
echo "shim:     $shim_path ($shim_kind, $(stat -c %s "$shim_path") bytes, $linkage)"
echo "runc:     $(runc --version | head -n 1)"
echo "network:  $NETWORK, bridge $BRIDGE, $SUBNET, host-local dataDir $WORK/cni-ipam"

# --- Registry with the test images, as mirror of registry.k8s.io.
mkdir -p "$WORK/registry" "$WORK/net.d" "$WORK/logs"
tests/images/registry.sh --addr "$REGISTRY_ADDR" start "$WORK/registry" >/dev/null
tests/images/build.sh "$REGISTRY_ADDR" | tail -n 1
tests/images/mirror-hosts.sh "$WORK/certs.d" "$REGISTRY_ADDR" >/dev/null

# --- Network and daemon.
bench_conflist "$WORK/net.d/10-bench.conflist" "$NETWORK" "$BRIDGE" "$SUBNET" "$WORK/cni-ipam"
cat > "$WORK/berth.toml" <<TOML
[cni]
conf_dir = "$WORK/net.d"
bin_dirs = ["/usr/lib/cni"]
[registry]
config_path = "$WORK/certs.d"
[runtime]
shim_path = "$shim_path"
TOML
"$BERTHD" --config "$WORK/berth.toml" --listen "$SOCKET" --root "$WORK/root" \
  --state "$STATE" --log-level info,berth_server::instrument=trace,berth_runtime::failpoint=trace \
  > "$WORK/berthd.log" 2>&1 &
BERTHD_PID=$!
for ((i = 0; i < 400; i++)); do [ -S "$SOCKET" ] && break; sleep 0.05; done
[ -S "$SOCKET" ] || { cat "$WORK/berthd.log" >&2; die "berthd did not start"; }

# --- (a) Idle containers: each shim's resident set.
echo
echo "== (a) $IDLE idle containers (sleep 1000000) in one pod: berth-shim memory"
"$PODSTART" idle --socket "$SOCKET" --image "$IMAGE" --count "$IDLE" --log-dir "$WORK/logs" \
  > "$WORK/idle.out" || { tail -n 20 "$WORK/berthd.log" >&2; die "creating the idle containers failed"; }
pod=$(awk '$1 == "pod" {print $2}' "$WORK/idle.out")
sleep 2 # let every shim settle into its idle loop
printf '%-4s %-14s %8s %10s %10s %10s %10s\n' n container "shim pid" "VmRSS kB" "RssAnon" "RssFile" "Pss kB"
: > "$WORK/rss"
n=0
for id in $(awk '$1 == "container" {print $2}' "$WORK/idle.out"); do
  n=$((n + 1))
  pid=$(cat "$STATE/containers/$id/shim/shim.pid")
  [ "$(cat "/proc/$pid/comm")" = berth-shim ] || die "PID $pid of container $id is not a berth-shim"
  rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status")
  anon=$(awk '/^RssAnon:/ {print $2}' "/proc/$pid/status")
  filer=$(awk '/^RssFile:/ {print $2}' "/proc/$pid/status")
  pss=$(awk '/^Pss:/ {print $2}' "/proc/$pid/smaps_rollup")
  echo "$rss $pss" >> "$WORK/rss"
  printf '%-4s %-14s %8s %10s %10s %10s %10s\n' "$n" "${id:0:13}" "$pid" "$rss" "$anon" "$filer" "$pss"
done
awk -v n="$n" '
  { rss += $1; pss += $2; if ($1 > max) max = $1 }
  END {
    printf "\nberth-shim VmRSS over %d containers: mean %.0f kB (%.2f MiB), max %d kB (%.2f MiB); mean Pss %.0f kB\n",
      n, rss / n, rss / n / 1024, max, max / 1024, pss / n
  }' "$WORK/rss"
echo "berthd VmRSS with $n containers: $(awk '/^VmRSS:/ {print $2 " " $3}' "/proc/$BERTHD_PID/status")"

# --- (c) Exec round trip in one of the idle containers, through crictl: ExecSync
# (`exec -s`) and streaming exec over SPDY (`exec`), each EXEC_RUNS times; `crictl version`
# (one Version RPC) gives crictl's own start-up cost, included in both.
echo
echo "== (c) exec round trip of \`true\`, $EXEC_RUNS runs each (crictl, so its start-up is included)"
bench_find_crictl
[ -x "$crictl" ] || die "crictl not found (scripts/build-cri-tools.sh builds it)"
target=$(awk '$1 == "container" {print $2; exit}' "$WORK/idle.out")
time_runs() { # label command...
  local label=$1 start end
  shift
  : > "$WORK/times"
  for ((r = 0; r < EXEC_RUNS; r++)); do
    start=$(date +%s%N)
    "$@" >/dev/null 2>&1 || die "$label failed: $*"
    end=$(date +%s%N)
    echo $(((end - start) / 1000)) >> "$WORK/times"
  done
  sort -n "$WORK/times" | awk -v label="$label" '{ v[NR] = $1 } END {
    p50 = v[int((NR + 1) / 2)]; p90 = v[int((NR * 9 + 9) / 10)]
    printf "%-36s p50 %6.1f ms  p90 %6.1f ms\n", label, p50 / 1000, p90 / 1000 }'
}
crictl_cmd=("$crictl" --runtime-endpoint "unix://$SOCKET" --timeout 10s)
time_runs "crictl version (baseline)" "${crictl_cmd[@]}" version
time_runs "ExecSync: crictl exec -s true" "${crictl_cmd[@]}" exec -s "$target" true
time_runs "streaming exec: crictl exec true" "${crictl_cmd[@]}" exec "$target" true

"$PODSTART" remove --socket "$SOCKET" --pod "$pod" >/dev/null
left=$(bench_shims | wc -l)
((left == 0)) || die "$left shim(s) still run after the pod was removed"

# --- (b) Pod start time through the gRPC client.
echo
echo "== (b) pod start: RunPodSandbox + CreateContainer + StartContainer, $RUNS runs"
from=$(($(wc -l < "$WORK/berthd.log") + 1))
"$PODSTART" start --socket "$SOCKET" --image "$IMAGE" --runs "$RUNS" --log-dir "$WORK/logs" ||
  { tail -n 20 "$WORK/berthd.log" >&2; die "pod start runs failed"; }
# Where berthd's time went, step by step (its log: the instrument layer's `started`/`ok` and
# the runtime core's steps), for the pod starts and the untimed teardowns after them.
echo
echo "berthd's time per step (bench/steps.py):"
tail -n "+$from" "$WORK/berthd.log" > "$WORK/steps.log"
python3 "$REPO/bench/steps.py" "$WORK/steps.log" RunPodSandbox CreateContainer StartContainer \
  StopPodSandbox RemovePodSandbox

# --- (d) List RPCs with many containers, answered from berthd's in-memory registry.
if ((LIST_PODS > 0)); then
  echo
  echo "== (d) ListContainers / ListPodSandbox with $((LIST_PODS * 10)) running containers in $LIST_PODS pods"
  "$PODSTART" idle --socket "$SOCKET" --image "$IMAGE" --count 10 --pods "$LIST_PODS" \
    --log-dir "$WORK/logs" > "$WORK/list.out" ||
    { tail -n 20 "$WORK/berthd.log" >&2; die "creating the containers to list failed"; }
  from=$(($(wc -l < "$WORK/berthd.log") + 1))
  "$PODSTART" list --socket "$SOCKET" --runs 1000
  # berthd's own time per call (the handler, from request to response built; the
  # instrument layer logs it at debug as elapsed_us): the 1000 unfiltered ListContainers
  # come first, then the 1000 filtered ones, then ListPodSandbox.
  echo "server side (handler time, from berthd's log):"
  tail -n +"$from" "$WORK/berthd.log" | awk '
    /rpc\{rpc="ListContainers"/ && /elapsed_us=/ { match($0, /elapsed_us=[0-9]+/); c[++nc] = substr($0, RSTART + 11, RLENGTH - 11) }
    /rpc\{rpc="ListPodSandbox"/ && /elapsed_us=/ { match($0, /elapsed_us=[0-9]+/); p[++np] = substr($0, RSTART + 11, RLENGTH - 11) }
    function report(label, v, from, to,   n, i, j, t, s) {
      n = 0
      for (i = from; i <= to; i++) s[++n] = v[i] + 0
      for (i = 2; i <= n; i++) { t = s[i]; for (j = i - 1; j > 0 && s[j] > t; j--) s[j + 1] = s[j]; s[j + 1] = t }
      if (n == 0) { printf "  %-38s no calls logged\n", label; return }
      printf "  %-38s p50 %.3f ms  p99 %.3f ms  max %.3f ms  (%d calls)\n", label,
        s[int((n * 50 + 99) / 100)] / 1000, s[int((n * 99 + 99) / 100)] / 1000, s[n] / 1000, n
    }
    END {
      half = int(nc / 2)
      report("ListContainers", c, 1, half)
      report("ListContainers (one pod'"'"'s ID)", c, half + 1, nc)
      report("ListPodSandbox", p, 1, np)
    }'
  echo "berthd VmRSS with $((LIST_PODS * 10)) containers: $(awk '/^VmRSS:/ {print $2 " " $3}' "/proc/$BERTHD_PID/status")"
  "$PODSTART" remove --socket "$SOCKET" >/dev/null
fi
