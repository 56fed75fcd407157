#!/usr/bin/env bash
# berth side by side with containerd (v2.4.2, built from the Go module proxy by
# scripts/build-containerd.sh): the same CRI workload through the same gRPC client
# (tests/examples/podstart.rs) against each daemon, in alternating rounds (berth,
# containerd, berth, ...), each round on a fresh root and state. Prints every figure for
# both daemons and the ratio berth/containerd, per round and as the median of the rounds.
# See bench/README.md (compare.sh).
#
#   bench/compare.sh [--rounds N] [--runs N] [--pull-runs N] [--no-large] [--no-floor]
#                    [--no-crun] [--no-critest] [--no-build] [--pods N,M] [--containers N]
#                    [--results FILE]
#   bench/compare.sh --table FILE [--pods N,M] [--containers N]
#
#   --rounds N     rounds (default 3); each round runs berth, then containerd
#   --runs N       pod start runs per daemon and round (default 20)
#   --pull-runs N  cold pulls of each small image per daemon and round (default 3)
#   --no-large     skip the cold pull of the ~1 GB, 10-layer image
#   --no-floor     skip the physical floor (bare runc create+start, one CNI ADD/DEL)
#   --no-crun      skip berth's pod start with the crun runtime handler
#   --no-critest   skip `critest -benchmark` against both
#   --no-build     use the binaries as they are (default: cargo builds them, a no-op when fresh)
#   --pods N,M     the pod counts of the memory rows (default 50,200; one idle container each)
#   --containers N the containers of the list rows, added to the M pods (default 500)
#   --results FILE also keep the raw figures (lines `round daemon key value`) in FILE
#   --table FILE   only print the table of a FILE kept with --results (with the --pods and
#                  --containers it was measured with), and exit
#
# Environment:
#   BERTH_BENCH_REGISTRY_ADDR  the bench registry (default 127.0.0.1:5012)
#   BERTH_TEST_CACHE           cache of containerd, cri-tools and the large image
#                              (default /var/cache/berth-test)
#   CARGO_TARGET_DIR           where berthd, berth-shim and podstart are built
#   TMPDIR                     where the daemons' roots and states go (default /tmp)
#
# Everything it starts is stopped by PID on exit, Ctrl-C included: pods through each
# daemon, the daemons, any shim left (comm and command line checked), containers runc or
# crun still has under the work directory, mounts under it, the two bridges, the bench
# networks' nat rules, the floor's netns, the registry; then the work directory goes.
set -euo pipefail

PROG=compare.sh
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$REPO/bench/lib.sh"
die() { echo "$PROG: error: $*" >&2; exit 1; }
usage() { sed -n '9,27p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }

ROUNDS=3
RUNS=20
PULL_RUNS=3
LARGE=1
FLOOR=1
CRUN=1
CRITEST=1
BUILD=1
PODS_SMALL=50
PODS_LARGE=200
LIST_CONTAINERS=500
LIST_CALLS=1000
KEEP_RESULTS=
TABLE=
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) [ $# -ge 2 ] || usage; ROUNDS=$2; shift 2 ;;
    --runs) [ $# -ge 2 ] || usage; RUNS=$2; shift 2 ;;
    --pull-runs) [ $# -ge 2 ] || usage; PULL_RUNS=$2; shift 2 ;;
    --no-large) LARGE=0; shift ;;
    --no-floor) FLOOR=0; shift ;;
    --no-crun) CRUN=0; shift ;;
    --no-critest) CRITEST=0; shift ;;
    --no-build) BUILD=0; shift ;;
    --pods) [ $# -ge 2 ] || usage; PODS_SMALL=${2%,*}; PODS_LARGE=${2#*,}; shift 2 ;;
    --containers) [ $# -ge 2 ] || usage; LIST_CONTAINERS=$2; shift 2 ;;
    --results) [ $# -ge 2 ] || usage; KEEP_RESULTS=$2; shift 2 ;;
    --table) [ $# -ge 2 ] || usage; TABLE=$2; shift 2 ;;
    -h|--help) usage ;;
    *) usage ;;
  esac
done
# print_table RESULTS: the table of a results file (lines `round daemon key value`): each
# figure per round and the median of the rounds, for both daemons, with the ratio.
print_table() {
  awk -v rounds="$(awk '$1 > r {r = $1} END {print r + 0}' "$1")" -v ps="$PODS_SMALL" -v pl="$PODS_LARGE" -v lc="$LIST_CONTAINERS" '
    function median(a, n,   i, j, t) {
      for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
      return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    function fmt(v) { return v == "" ? "-" : sprintf("%.2f", v) }
    function ratio(b, c) { return (b == "" || c == "" || c == 0) ? "-" : sprintf("%.2f", b / c) }
    { v[$1, $2, $3] = $4; seen[$3] = 1 }
    END {
      n = split("podstart:pod start (RunPodSandbox+Create+Start) p50 " \
        "|runp:RunPodSandbox p50|create:CreateContainer p50|start:StartContainer p50" \
        "|teardown:teardown (Stop+RemovePodSandbox, container running) p50" \
        "|stop_container:StopContainer (timeout 0) p50|remove_container:RemoveContainer p50" \
        "|teardown_empty:teardown of the emptied pod p50" \
        "|pull_busybox:cold pull busybox p50|pull_web:cold pull web (nginx) p50" \
        "|pull_large_mbs:cold pull 1 GB 10-layer image, MB/s" \
        "|list50:ListContainers p50, " ps " running|list500_containers:ListContainers p50, " lc " containers" \
        "|list500_containers_p99:ListContainers p99, " lc " containers|list500_pods:ListPodSandbox p50, " pl " pods/" lc " ctrs" \
        "|list500_pods_p99:ListPodSandbox p99, " pl " pods/" lc " ctrs" \
        "|list500_reply_kb:ListContainers reply kB, " lc " containers" \
        "|list500_encode:the same reply, prost encoding alone p50" \
        "|list500_decode:the same reply, prost decoding alone p50" \
        "|rss50:daemon VmRSS kB, " ps " pods|rss200:daemon VmRSS kB, " pl " pods" \
        "|shim_rss:shim VmRSS kB per pod (mean)|shim_pss:shim Pss kB per pod (mean)" \
        "|podstart_crun:pod start p50, berth with crun|create_crun:CreateContainer p50, berth with crun", rows, "|")
      nk = 0
      for (k in seen) if (k ~ /^critest_/) ck[++nk] = k
      for (i = 2; i <= nk; i++) { t = ck[i]; for (j = i - 1; j >= 1 && ck[j] > t; j--) ck[j + 1] = ck[j]; ck[j + 1] = t }
      for (i = 1; i <= nk; i++) rows[++n] = ck[i] ":critest " substr(ck[i], 9) " p50"
      printf "%-56s %5s %11s %11s %7s\n", "figure", "round", "berth", "containerd", "ratio"
      for (i = 1; i <= n; i++) {
        split(rows[i], kv, ":"); key = kv[1]; label = kv[2]
        if (!(key in seen)) continue
        nb = 0; nc = 0
        for (r = 1; r <= rounds; r++) {
          b = ((r, "berth", key) in v) ? v[r, "berth", key] : ""
          c = ((r, "containerd", key) in v) ? v[r, "containerd", key] : ""
          if (b != "") bs[++nb] = b
          if (c != "") cs[++nc] = c
          printf "%-56s %5s %11s %11s %7s\n", label, r, fmt(b), fmt(c), ratio(b, c)
        }
        mb = nb ? median(bs, nb) : ""; mc = nc ? median(cs, nc) : ""
        printf "%-56s %5s %11s %11s %7s\n", label, "med", fmt(mb), fmt(mc), ratio(mb, mc)
      }
      printf "\nphysical floor (same run, p50 ms)\n"
      m = split("runc_create:runc create|runc_start:runc start|runc_total:runc create + start|cni_add:CNI ADD (loopback, bridge, portmap)|cni_del:CNI DEL", frows, "|")
      for (i = 1; i <= m; i++) {
        split(frows[i], kv, ":"); key = kv[1]
        if (!(key in seen)) continue
        nf = 0; line = ""
        for (r = 1; r <= rounds; r++) if ((r, "floor", key) in v) { fs[++nf] = v[r, "floor", key]; line = line " " fmt(v[r, "floor", key]) }
        printf "%-56s med %8s  (rounds:%s)\n", kv[2], fmt(median(fs, nf)), line
      }
    }' "$1"
}
if [ -n "$TABLE" ]; then
  [ -r "$TABLE" ] || die "--table: cannot read $TABLE"
  print_table "$TABLE"
  exit 0
fi
for n in "$ROUNDS" "$RUNS" "$PULL_RUNS" "$PODS_SMALL" "$PODS_LARGE" "$LIST_CONTAINERS"; do
  [[ "$n" =~ ^[1-9][0-9]*$ ]] || die "--rounds, --runs, --pull-runs, --pods and --containers expect positive numbers"
done
((PODS_LARGE > PODS_SMALL)) || die "--pods N,M needs N < M"
[ "$(id -u)" -eq 0 ] || die "must run as root (namespaces, mounts, runc)"
for tool in ip iptables iptables-save awk sort runc jq skopeo umoci openssl flock sha256sum; do
  command -v "$tool" >/dev/null || die "'$tool' not found (scripts/install-deps.sh test installs it)"
done
for plugin in bridge host-local loopback portmap; do
  [ -x "/usr/lib/cni/$plugin" ] || die "/usr/lib/cni/$plugin missing (containernetworking-plugins)"
done
RUNC=$(command -v runc)
CRUN_BIN=$(command -v crun || true)
[ -n "$CRUN_BIN" ] || CRUN=0

REGISTRY_ADDR=${BERTH_BENCH_REGISTRY_ADDR:-127.0.0.1:5012}
BUSYBOX=registry.k8s.io/e2e-test-images/busybox:1.29-2
WEB=registry.k8s.io/e2e-test-images/nginx:1.14-2
PAUSE=registry.k8s.io/pause:3.9
# The large image: 10 layers of 100 files of 1 MiB of incompressible data (1 GiB).
LARGE_LAYERS=10
LARGE_FILES=100
LARGE_FILE_BYTES=$((1024 * 1024))
LARGE_IMAGE=registry.k8s.io/bench/ten-layers:latest

# Two bench networks, one per daemon: bridges bqb<n> (berth) and bqc<n> (containerd) on two
# free subnets among 10.232.241-244.0/24.
SUFFIX=$(($$ % 10000))
OCTETS=()
for o in 241 242 243 244; do
  if ! ip -o -4 addr show | grep -q " 10\.232\.$o\."; then OCTETS+=("$o"); fi
done
[ "${#OCTETS[@]}" -ge 2 ] || die "no two free subnets among 10.232.241-244.0/24 for the bench networks"
declare -A BRIDGE=([berth]=bqb$SUFFIX [containerd]=bqc$SUFFIX)
declare -A OCTET_OF=([berth]=${OCTETS[0]} [containerd]=${OCTETS[1]})
declare -A NET_NAME=([berth]=bq-bench-berth-$SUFFIX [containerd]=bq-bench-containerd-$SUFFIX)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/berth-bench-compare.XXXXXX")
RESULTS=$WORK/results # round daemon key value
: > "$RESULTS"
bench_note_hostport_chains
# containerd's shims put their sockets in /run/containerd/s whatever the state directory;
# the directories go again on exit (when empty) if they were not there before.
RUN_CONTAINERD_EXISTED=0
if [ -e /run/containerd ]; then RUN_CONTAINERD_EXISTED=1; fi
PODSTART=
DAEMON=      # the daemon running now: berth or containerd
DAEMON_PID=
SOCKET=
FLOOR_NETNS=

now_ns() { date +%s%N; }
record() { echo "$ROUND $1 $2 $3" >> "$RESULTS"; } # daemon key value
# The p50 (second field) of a `result <key>` line of podstart's output in FILE.
result_of() { awk -v k="$2" '$1 == "result" && $2 == k {print $3}' "$1"; }
result_p99() { awk -v k="$2" '$1 == "result" && $2 == k {print $5}' "$1"; }

# PIDs of live shims of our daemons: berth-shim whose command line names the work directory,
# containerd-shim-runc-v2 (comm truncated to 15 characters) whose -address is ours.
bench_shims() {
  local dir pid comm cmdline
  for dir in /proc/[0-9]*; do
    pid=${dir#/proc/}
    comm=$(cat "$dir/comm" 2>/dev/null) || continue
    case "$comm" in berth-shim | containerd-shim) ;; *) continue ;; esac
    cmdline=$({ tr '\0' ' ' <"$dir/cmdline"; } 2>/dev/null) || continue
    case "$comm:$cmdline" in
      berth-shim:*"$WORK/"*) echo "$pid" ;;
      containerd-shim:*containerd-shim-runc-v2*"-address $WORK/"*) echo "$pid" ;;
    esac
  done
}

# Removes what a daemon's run may have left: its containers in the runtimes' roots, its shims
# (and containerd's shim sockets, which live in /run/containerd/s), the mounts under DIR.
clean_leftovers() { # dir
  local dir=$1 root id pid mnt cmdline addr sid
  for root in "$dir"/state/runc "$dir"/state/runtimes/crun "$dir"/runc/k8s.io; do
    [ -d "$root" ] || continue
    for id in $(ls "$root" 2>/dev/null); do
      [ -d "$root/$id" ] || continue
      if [[ $root == */crun ]]; then
        "$REPO/tests/runtimes/crun.sh" --root "$root" delete --force "$id" >/dev/null 2>&1 || true
      else
        "$RUNC" --root "$root" delete --force "$id" >/dev/null 2>&1 || true
      fi
    done
  done
  for pid in $(bench_shims); do
    cmdline=$({ tr '\0' '\n' <"/proc/$pid/cmdline"; } 2>/dev/null) || continue
    echo "warning: killing leftover shim $pid" >&2
    kill -KILL "$pid" 2>/dev/null || true
    addr=$(awk 'p {print; exit} $0 == "-address" {p = 1}' <<<"$cmdline")
    sid=$(awk 'p {print; exit} $0 == "-id" {p = 1}' <<<"$cmdline")
    if [ -n "$addr" ] && [ -n "$sid" ]; then
      rm -f "/run/containerd/s/$(printf '%s' "$addr/k8s.io/$sid" | sha256sum | cut -c1-64)"
    fi
  done
  { grep -F " $dir/" /proc/self/mountinfo || true; } | awk '{print $5}' | sort -r |
    while read -r mnt; do umount -l "$mnt" 2>/dev/null || true; done
}

stop_daemon() {
  [ -n "$DAEMON_PID" ] || return 0
  if kill -0 "$DAEMON_PID" 2>/dev/null; then
    # Pods (and their containers) go through the daemon, so CNI DEL releases what they hold.
    if [ -n "$PODSTART" ] && [ -S "$SOCKET" ]; then
      "$PODSTART" remove --socket "$SOCKET" >/dev/null 2>&1 ||
        echo "warning: could not remove every pod of $DAEMON" >&2
    fi
    kill -TERM "$DAEMON_PID" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$DAEMON_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$DAEMON_PID" 2>/dev/null || true
    wait "$DAEMON_PID" 2>/dev/null || true
  fi
  clean_leftovers "$WORK/$DAEMON"
  DAEMON_PID=
}

clean_network() { # daemon
  local d=$1
  NETWORK=${NET_NAME[$d]}
  OCTET=${OCTET_OF[$d]}
  bench_clean_iptables
  if [ -e "/sys/class/net/${BRIDGE[$d]}" ]; then ip link del "${BRIDGE[$d]}" 2>/dev/null || true; fi
  rm -f /var/lib/cni/results/"$NETWORK"-* 2>/dev/null || true
}

cleanup() {
  local rc=$? d
  trap - EXIT INT TERM
  stop_daemon || true
  if [ -d "$WORK/floor/runc" ]; then
    for id in $(ls "$WORK/floor/runc"); do "$RUNC" --root "$WORK/floor/runc" delete --force "$id" >/dev/null 2>&1 || true; done
  fi
  if [ -n "$FLOOR_NETNS" ]; then ip netns del "$FLOOR_NETNS" 2>/dev/null || true; fi
  for d in berth containerd; do clean_leftovers "$WORK/$d"; done
  { grep -F " $WORK/" /proc/self/mountinfo || true; } | awk '{print $5}' | sort -r |
    while read -r mnt; do umount -l "$mnt" 2>/dev/null || true; done
  for d in berth containerd; do clean_network "$d"; done
  if ((RUN_CONTAINERD_EXISTED == 0)) && [ -d /run/containerd ]; then
    rmdir /run/containerd/s /run/containerd 2>/dev/null || true
  fi
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
TARGET=${CARGO_TARGET_DIR:-$REPO/target}
if ((BUILD)); then
  echo "building: berthd (release), podstart (release), berth-shim (static, profile shim)"
  cargo build --release --quiet -p berthd
  cargo build --release --quiet -p berth-integration --example podstart
  SHIM=$(scripts/build-shim.sh static 2>/dev/null | tail -n 1)
else
  SHIM=$TARGET/$(rustc -vV | sed -n 's/^host: //p')/shim/berth-shim
  [ -x "$SHIM" ] || SHIM=$TARGET/shim/berth-shim
fi
BERTHD=$TARGET/release/berthd
PODSTART_BIN=$TARGET/release/examples/podstart
[ -x "$BERTHD" ] || die "$BERTHD missing (cargo build --release -p berthd)"
[ -x "$PODSTART_BIN" ] || die "$PODSTART_BIN missing (cargo build --release -p berth-integration --example podstart)"
[ -x "$SHIM" ] || die "$SHIM missing (scripts/build-shim.sh)"
CD_BIN=$(scripts/build-containerd.sh | tail -n 1)
CONTAINERD=$CD_BIN/containerd
CRITEST_BIN=
if ((CRITEST)); then CRITEST_BIN=$(scripts/build-cri-tools.sh | tail -n 1)/critest; fi
PODSTART=$PODSTART_BIN

echo "berthd:     $BERTHD, $("$BERTHD" --version)"
echo "berth-shim: $SHIM ($(stat -c %s "$SHIM") bytes)"
echo "containerd: $CONTAINERD, $("$CONTAINERD" --version)"
echo "runc:       $RUNC, $("$RUNC" --version | head -n 1)"
if ((CRUN)); then echo "crun:       $CRUN_BIN, $("$CRUN_BIN" --version | head -n 1) (through tests/runtimes/crun.sh)"; fi
echo "host:       $(nproc) CPUs ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)), $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
for d in berth containerd; do
  echo "network:    $d: ${NET_NAME[$d]}, bridge ${BRIDGE[$d]}, 10.232.${OCTET_OF[$d]}.0/24"
done

# --- Registry with the test images, as mirror of registry.k8s.io (and the others).
mkdir -p "$WORK/registry"
tests/images/registry.sh --addr "$REGISTRY_ADDR" start "$WORK/registry" >/dev/null
tests/images/build.sh "$REGISTRY_ADDR" | tail -n 1
tests/images/mirror-hosts.sh "$WORK/certs.d" "$REGISTRY_ADDR" >/dev/null
LARGE_BYTES=0
if ((LARGE)); then
  bench_image "$LARGE_LAYERS" "$LARGE_FILES" "$LARGE_FILE_BYTES" ten-layers
  skopeo --insecure-policy copy --quiet --dest-tls-verify=false \
    "oci:$BENCH_IMAGE_OCI:ten-layers" "docker://$REGISTRY_ADDR/${LARGE_IMAGE#registry.k8s.io/}"
  LARGE_BYTES=$(skopeo inspect --raw --tls-verify=false "docker://$REGISTRY_ADDR/${LARGE_IMAGE#registry.k8s.io/}" |
    jq '[.layers[].size] | add')
  echo "large image: $LARGE_IMAGE, $LARGE_LAYERS layers, $LARGE_BYTES bytes compressed"
fi

# --- The CNI configuration: one conflist, per daemon its own name, bridge, subnet, dataDir.
write_conflist() { # daemon dir
  bench_conflist "$2/10-bench.conflist" "${NET_NAME[$1]}" "${BRIDGE[$1]}" \
    "10.232.${OCTET_OF[$1]}.0/24" "$WORK/cni-ipam-$1"
}
write_conflist berth "$WORK/net.d-berth"
write_conflist containerd "$WORK/net.d-containerd"

wait_socket() {
  local i
  for ((i = 0; i < 600; i++)); do
    [ -S "$SOCKET" ] && return 0
    kill -0 "$DAEMON_PID" 2>/dev/null || break
    sleep 0.05
  done
  tail -n 30 "$WORK/$DAEMON.log" >&2
  die "$DAEMON did not start"
}

start_berth() {
  local dir=$WORK/berth
  DAEMON=berth
  mkdir -p "$dir"
  cat > "$dir/berth.toml" <<TOML
[cni]
conf_dir = "$WORK/net.d-berth"
bin_dirs = ["/usr/lib/cni"]
[registry]
config_path = "$WORK/certs.d"
[runtime]
shim_path = "$SHIM"
runc_path = "$RUNC"
cgroup_driver = "cgroupfs"
[runtime.handlers.crun]
path = "$REPO/tests/runtimes/crun.sh"
TOML
  SOCKET=$dir/berth.sock
  BERTH_CRUN=$CRUN_BIN "$BERTHD" --config "$dir/berth.toml" --listen "$SOCKET" --root "$dir/root" \
    --state "$dir/state" --log-level info > "$WORK/berth.log" 2>&1 &
  DAEMON_PID=$!
  wait_socket
}

start_containerd() {
  local dir=$WORK/containerd
  DAEMON=containerd
  mkdir -p "$dir"
  cat > "$dir/config.toml" <<TOML
version = 3
root = "$dir/root"
state = "$dir/state"
disabled_plugins = ["io.containerd.nri.v1.nri", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "$dir/containerd.sock"

[ttrpc]
  address = "$dir/containerd.sock.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "$dir/opt"

[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = "$PAUSE"
  [plugins."io.containerd.cri.v1.images".registry]
    config_path = "$WORK/certs.d"

[plugins."io.containerd.transfer.v1.local"]
  config_path = "$WORK/certs.d"

[plugins."io.containerd.cri.v1.runtime"]
  restrict_oom_score_adj = $RESTRICT_OOM
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = ["/usr/lib/cni"]
    conf_dir = "$WORK/net.d-containerd"
  [plugins."io.containerd.cri.v1.runtime".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
        BinaryName = "$RUNC"
        Root = "$dir/runc"
        SystemdCgroup = false

[plugins."io.containerd.grpc.v1.cri"]
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
TOML
  SOCKET=$dir/containerd.sock
  PATH="$CD_BIN:$PATH" "$CONTAINERD" --config "$dir/config.toml" --log-level info \
    > "$WORK/containerd.log" 2>&1 &
  DAEMON_PID=$!
  wait_socket
  # The CRI plugin answers a little after the socket exists; the pause image is pulled
  # (not timed) so that RunPodSandbox does not pull it.
  local i
  for ((i = 0; i < 50; i++)); do
    "$PODSTART" pull --socket "$SOCKET" --image "$PAUSE" --runs 1 >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  tail -n 30 "$WORK/containerd.log" >&2
  die "containerd's CRI plugin did not answer"
}

# berth's runtime.restrict_oom_score_adj = auto restricts when it lacks CAP_SYS_RESOURCE
# (as in a container); containerd is told the same, else runc fails to write the pause
# container's oom_score_adj of -998 there.
RESTRICT_OOM=false
if (( ($(awk '/^CapEff:/ {print "0x" $2}' /proc/self/status) >> 24) % 2 == 0 )); then RESTRICT_OOM=true; fi

vmrss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# Mean VmRSS and Pss (kB) of our shims per pod: the sum over every shim process divided by
# the number of pods (berth: one berth-shim per container; containerd: one shim per pod).
shim_memory() { # pods
  local pods=$1 pid rss=0 pss=0 n=0
  for pid in $(bench_shims); do
    rss=$((rss + $(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status")))
    pss=$((pss + $(awk '/^Pss:/ {print $2}' "/proc/$pid/smaps_rollup")))
    n=$((n + 1))
  done
  echo "$((rss / pods)) $((pss / pods)) $n"
}

podstart() { "$PODSTART" "$1" --socket "$SOCKET" "${@:2}"; }

# One daemon's share of a round.
run_workload() { # daemon
  local d=$1 out=$WORK/out-$d-$ROUND t0 t1 mem
  mkdir -p "$WORK/logs-$d"
  echo
  echo "== round $ROUND: $d"
  # Cold pulls first, while no container holds an image.
  podstart pull --image "$BUSYBOX" --runs "$PULL_RUNS" --cold > "$out.pull-busybox"
  record "$d" pull_busybox "$(result_of "$out.pull-busybox" pull)"
  podstart pull --image "$WEB" --runs "$PULL_RUNS" --cold > "$out.pull-web"
  record "$d" pull_web "$(result_of "$out.pull-web" pull)"
  echo "cold pull p50: busybox $(result_of "$out.pull-busybox" pull) ms, web $(result_of "$out.pull-web" pull) ms"
  if ((LARGE)); then
    podstart pull --image "$LARGE_IMAGE" --runs 1 --cold > "$out.pull-large"
    t0=$(result_of "$out.pull-large" pull)
    record "$d" pull_large_mbs "$(awk -v b="$LARGE_BYTES" -v ms="$t0" 'BEGIN { printf "%.1f", b / 1e6 / (ms / 1000) }')"
    echo "cold pull of the large image: $t0 ms"
    podstart pull --image "$LARGE_IMAGE" --runs 1 --cold > /dev/null # remove it again
  fi

  podstart start --image "$BUSYBOX" --runs "$RUNS" --log-dir "$WORK/logs-$d" > "$out.start" ||
    { tail -n 20 "$WORK/$d.log" >&2; die "$d: pod start runs failed"; }
  grep -E '^RunPodSandbox' "$out.start"
  for key in podstart runp create start teardown stop_container remove_container teardown_empty; do
    record "$d" "$key" "$(result_of "$out.start" "$key")"
  done
  if [ "$d" = berth ] && ((CRUN)); then
    podstart start --image "$BUSYBOX" --runs "$RUNS" --log-dir "$WORK/logs-$d" --handler crun > "$out.crun" ||
      { tail -n 20 "$WORK/$d.log" >&2; die "berth: pod start runs with crun failed"; }
    record "$d" podstart_crun "$(result_of "$out.crun" podstart)"
    record "$d" create_crun "$(result_of "$out.crun" create)"
    echo "crun handler: $(grep -E '^RunPodSandbox' "$out.crun")"
  fi

  # 50 pods of one idle container: daemon and shim memory, ListContainers.
  podstart idle --image "$BUSYBOX" --count 1 --pods "$PODS_SMALL" --log-dir "$WORK/logs-$d" > /dev/null
  sleep 2
  record "$d" rss50 "$(vmrss_kb "$DAEMON_PID")"
  read -r rss pss nshims <<<"$(shim_memory "$PODS_SMALL")"
  record "$d" shim_rss "$rss"
  record "$d" shim_pss "$pss"
  echo "$PODS_SMALL pods: daemon VmRSS $(vmrss_kb "$DAEMON_PID") kB; $nshims shims, per pod VmRSS $rss kB, Pss $pss kB"
  podstart list --runs "$LIST_CALLS" > "$out.list50"
  record "$d" list50 "$(result_of "$out.list50" list_containers)"
  # 200 pods: daemon memory; then 500 containers in them: the List RPCs.
  podstart idle --image "$BUSYBOX" --count 1 --pods $((PODS_LARGE - PODS_SMALL)) --first $((PODS_SMALL + 1)) \
    --log-dir "$WORK/logs-$d" > /dev/null
  sleep 2
  record "$d" rss200 "$(vmrss_kb "$DAEMON_PID")"
  echo "$PODS_LARGE pods: daemon VmRSS $(vmrss_kb "$DAEMON_PID") kB"
  podstart fill --image "$BUSYBOX" --count "$LIST_CONTAINERS" --log-dir "$WORK/logs-$d" > /dev/null
  podstart list --runs "$LIST_CALLS" > "$out.list500"
  grep -E '^List' "$out.list500"
  record "$d" list500_containers "$(result_of "$out.list500" list_containers)"
  record "$d" list500_containers_p99 "$(result_p99 "$out.list500" list_containers)"
  record "$d" list500_pods "$(result_of "$out.list500" list_pods)"
  record "$d" list500_pods_p99 "$(result_p99 "$out.list500" list_pods)"
  # The reply's size and what prost's encoding and decoding of it alone take here.
  record "$d" list500_reply_kb "$(awk '$1 == "result" && $2 == "list_reply_bytes" {print $3 / 1000}' "$out.list500")"
  record "$d" list500_encode "$(result_of "$out.list500" list_encode)"
  record "$d" list500_decode "$(result_of "$out.list500" list_decode)"
  t0=$(now_ns)
  podstart remove > /dev/null
  t1=$(now_ns)
  echo "removed $PODS_LARGE pods and $LIST_CONTAINERS containers in $(((t1 - t0) / 1000000)) ms"
}

# --- (a) The physical floor: bare runc create + start of the busybox bundle, and the CNI
# chain (loopback, bridge, portmap) ADD and DEL against a netns of our own.
floor_setup() {
  local f=$WORK/floor
  mkdir -p "$f"
  skopeo --insecure-policy copy --quiet --src-tls-verify=false \
    "docker://$REGISTRY_ADDR/${BUSYBOX#registry.k8s.io/}" "oci:$f/oci:busybox"
  umoci unpack --image "$f/oci:busybox" "$f/bundle" > /dev/null
  jq '.process.args = ["sleep", "1000000"] | .process.terminal = false' "$f/bundle/config.json" > "$f/config.json"
  mv "$f/config.json" "$f/bundle/config.json"
  write_conflist berth "$f/net.d"
}

# Runs one CNI plugin: cni_exec COMMAND TYPE CONFIG-JSON; prints its result.
cni_exec() {
  CNI_COMMAND=$1 CNI_CONTAINERID=bq-floor-$SUFFIX CNI_NETNS=/var/run/netns/$FLOOR_NETNS CNI_IFNAME=${4:-eth0} \
    CNI_PATH=/usr/lib/cni "/usr/lib/cni/$2" <<<"$3"
}

floor_runs() {
  local f=$WORK/floor i id t0 t1 t2 conf name ver bridge portmap res lo
  : > "$f/times"
  for ((i = 1; i <= RUNS; i++)); do
    id=bq-floor-$SUFFIX-$i
    t0=$(now_ns)
    "$RUNC" --root "$f/runc" create --bundle "$f/bundle" "$id" < /dev/null > /dev/null 2>&1
    t1=$(now_ns)
    "$RUNC" --root "$f/runc" start "$id"
    t2=$(now_ns)
    "$RUNC" --root "$f/runc" delete --force "$id"
    echo "runc $(((t1 - t0) / 1000)) $(((t2 - t1) / 1000)) $(((t2 - t0) / 1000))" >> "$f/times"
  done
  conf=$(cat "$f/net.d/10-bench.conflist")
  name=$(jq -r .name <<<"$conf")
  ver=$(jq -r .cniVersion <<<"$conf")
  bridge=$(jq -c --arg n "$name" --arg v "$ver" '.plugins[0] + {name: $n, cniVersion: $v}' <<<"$conf")
  lo=$(jq -nc --arg v "$ver" '{cniVersion: $v, name: "cni-loopback", type: "loopback"}')
  for ((i = 1; i <= RUNS; i++)); do
    FLOOR_NETNS=bq-floor-$SUFFIX
    ip netns add "$FLOOR_NETNS"
    t0=$(now_ns)
    cni_exec ADD loopback "$lo" lo > /dev/null
    res=$(cni_exec ADD bridge "$bridge")
    portmap=$(jq -c --arg n "$name" --arg v "$ver" --argjson r "$res" \
      '.plugins[1] + {name: $n, cniVersion: $v, prevResult: $r, runtimeConfig: {portMappings: []}}' <<<"$conf")
    cni_exec ADD portmap "$portmap" > /dev/null
    t1=$(now_ns)
    cni_exec DEL portmap "$portmap" > /dev/null
    cni_exec DEL bridge "$bridge" > /dev/null
    cni_exec DEL loopback "$lo" lo > /dev/null
    t2=$(now_ns)
    ip netns del "$FLOOR_NETNS"
    FLOOR_NETNS=
    echo "cni $(((t1 - t0) / 1000)) $(((t2 - t1) / 1000))" >> "$f/times"
  done
  p50() { sort -n | awk '{ v[NR] = $1 } END { printf "%.3f", v[int((NR + 1) / 2)] / 1000 }'; }
  record floor runc_create "$(awk '$1 == "runc" {print $2}' "$f/times" | p50)"
  record floor runc_start "$(awk '$1 == "runc" {print $3}' "$f/times" | p50)"
  record floor runc_total "$(awk '$1 == "runc" {print $4}' "$f/times" | p50)"
  record floor cni_add "$(awk '$1 == "cni" {print $2}' "$f/times" | p50)"
  record floor cni_del "$(awk '$1 == "cni" {print $3}' "$f/times" | p50)"
  echo
  echo "== round $ROUND: floor: runc create+start p50 $(awk '$1 == "runc" {print $4}' "$f/times" | p50) ms," \
    "CNI ADD p50 $(awk '$1 == "cni" {print $2}' "$f/times" | p50) ms, DEL p50 $(awk '$1 == "cni" {print $3}' "$f/times" | p50) ms"
}

# --- (d) critest -benchmark against the running daemon.
critest_bench() { # daemon
  local d=$1 dir=$WORK/critest-$d-$ROUND
  mkdir -p "$dir/out"
  cat > "$dir/params.yaml" <<YAML
containersNumber: 20
containersNumberParallel: 1
podsNumber: 20
podsNumberParallel: 1
imagesNumber: 10
imagesNumberParallel: 1
imagePullingBenchmarkImage: $BUSYBOX
YAML
  if ! "$CRITEST_BIN" -benchmark -runtime-endpoint "unix://$SOCKET" -image-endpoint "unix://$SOCKET" \
    -benchmarking-params-file "$dir/params.yaml" -benchmarking-output-dir "$dir/out" \
    -ginkgo.focus 'basic operations on Container|lifecycle of PodSandbox' > "$dir/critest.log" 2>&1; then
    echo "warning: critest -benchmark failed against $d (see the summary below)" >&2
    tail -n 15 "$dir/critest.log" >&2
    return 0
  fi
  echo "critest -benchmark against $d: $(sed 's/\x1b\[[0-9;]*m//g' "$dir/critest.log" | grep -oE 'Ran [0-9]+ of [0-9]+ Specs|(SUCCESS|FAIL)! [0-9.]+s' || echo 'no summary line')"
  critest_summary "$d" "$dir/out"
}

# Records the p50 of each operation's durations in critest's result files, as
# critest_<file>.<operation> (ms).
critest_summary() { # daemon dir
  local d=$1 dir=$2 f stem
  for f in "$dir"/*.json; do
    [ -e "$f" ] || continue
    stem=$(basename "$f" .json)
    stem=${stem%_benchmark_data}
    jq -r --arg s "$stem" '.operationsNames as $ops | .datapoints[] | .operationsDurationsNs
      | to_entries[] | "\($s).\($ops[.key]) \(.value)"' "$f" 2>/dev/null
  done | sort -k1,1 -k2,2n | awk '
    function flush() { if (n) printf "%s %.3f\n", key, v[int((n + 1) / 2)] / 1e6 }
    $1 != key { flush(); key = $1; n = 0 }
    { v[++n] = $2 }
    END { flush() }' |
    while read -r key value; do record "$d" "critest_$key" "$value"; done
}

if ((FLOOR)); then floor_setup; fi
for ((ROUND = 1; ROUND <= ROUNDS; ROUND++)); do
  for d in berth containerd; do
    rm -rf "${WORK:?}/$d" "$WORK/cni-ipam-$d"
    "start_$d"
    run_workload "$d"
    if ((CRITEST)); then critest_bench "$d"; fi
    stop_daemon
    rm -rf "${WORK:?}/$d"
  done
  if ((FLOOR)); then floor_runs; fi
done

# --- The table.
echo
echo "figures in ms unless named; p50 over the runs of a round; ratio = berth / containerd"
if [ -n "$KEEP_RESULTS" ]; then cp "$RESULTS" "$KEEP_RESULTS"; fi
print_table "$RESULTS" | tee "$WORK/table"
echo "load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
