#!/usr/bin/env bash
# Kubernetes' node conformance suite (k8s.io/kubernetes/test/e2e_node, the [NodeConformance]
# specs) against a test berthd, gated on tests/node-e2e/known-failures.txt.
#
#   tests/node-e2e/run.sh [--core|--full] [--registry HOST:PORT] [--berthd BIN]
#                         [--nodes N] [--timeout MINUTES] [--out DIR] [--known FILE]
#                         [--focus REGEX] [--write-known]
#
# --core (default) runs a bounded core of the non-serial [NodeConformance] set: container
# runtime, probes, security context, pods, container log path, exec/attach/port-forward;
# --full runs the whole non-serial set (432 specs in v1.37.2). --focus narrows either to
# the specs whose name also matches REGEX instead of the core's areas (for developers;
# listed specs that do not run only warn). --write-known rewrites the known-failures file from this run's failures.
#
# What it sets up, all of it its own and removed on exit:
#   - the suite, ginkgo, agnhost and kubelet (scripts/build-node-e2e.sh, cached);
#   - a docker-registry on --registry (default 127.0.0.1:5000) with the test images built
#     here (tests/images/build.sh --node-e2e), mirrored for registry.k8s.io & co. by hosts.toml;
#   - berthd with its default configuration but its own socket, root, state, the registry
#     mirror and a CNI network of its own (bridge be<pid%10000>, 10.232.241.0/24, portmap);
#   - the node's address 10.232.242.1/32 on an empty bridge bn<pid%10000> the run creates
#     (the apiserver reaches kubelet there; the host's own interfaces are never used);
#   - e2e_node.test (through ginkgo, --nodes processes) starts etcd, kube-apiserver on
#     127.0.0.1:6443 and kubelet (ports 10248, 10250, 10255; root /var/lib/kubelet and pod
#     logs /var/log/pods, which specs expect) with a PATH that hides systemd-run and
#     systemctl, the cgroupfs driver and cgroupsPerQOS under /.
# One run at a time, and no other kubelet on the host: those ports are fixed, and kubelets
# kill the pods of each other's /kubepods cgroups. kubelet's sysctls are restored; the mounts
# it made under /var/lib/kubelet are unmounted; its QoS cgroups, /var/lib/kubelet and
# /var/log/pods are removed when the run created them; every process started is stopped
# by PID.
#
# Prints "node-e2e: passed N, failed M, skipped K" (K: selected specs that skipped
# themselves) and the gate's verdict; exits 0 when the gate passed, 1 when it did not, 2 on
# a usage or setup error. Output: --out (default target/node-e2e): ginkgo.log, report.json,
# summary.txt, gate.txt, kubelet.log, berthd.log.
set -uo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
prog=node-e2e

# The selection: as SIG Node's CI selects the non-serial node conformance specs.
FOCUS='\[NodeConformance\]'
SKIP='\[Serial\]|\[Flaky\]|\[Slow\]|\[Disruptive\]|\[Feature:.+\]|\[NodeFeature:.+\]'
# The core (--core): the specs of these areas, within the selection above (exec and logs
# over WebSocket are among the Pods specs; the suite has no attach or port-forward spec).
CORE='\[sig-node\] (Container Runtime|Probing container|Security Context|Pods |ContainerLogPath|Container Lifecycle Hook|Kubelet when scheduling)'

mode=core registry=127.0.0.1:5000 berthd_bin= nodes=4 timeout_min= out= known= focus= write_known=0
usage() {
  sed -n '2,/^set -uo/{/^set -uo/d;s/^# \{0,1\}//;p}' "$0" >&2
  exit 2
}
while (($#)); do
  case $1 in
    --core) mode=core; shift ;;
    --full) mode=full; shift ;;
    --registry) registry=${2-}; shift 2 || usage ;;
    --berthd) berthd_bin=${2-}; shift 2 || usage ;;
    --nodes) nodes=${2-}; shift 2 || usage ;;
    --timeout) timeout_min=${2-}; shift 2 || usage ;;
    --out) out=${2-}; shift 2 || usage ;;
    --known) known=${2-}; shift 2 || usage ;;
    --focus) focus=${2-}; shift 2 || usage ;;
    --write-known) write_known=1; shift ;;
    -h | --help) usage ;;
    *) echo "$prog: unknown argument: $1" >&2; usage ;;
  esac
done
die() { echo "$prog: error: $*" >&2; exit 2; }
log() { echo "$prog: $*"; }

[[ $(id -u) == 0 ]] || die "needs root"
[[ $nodes =~ ^[1-9][0-9]?$ ]] || die "--nodes takes a number, got '$nodes'"
[[ -z $timeout_min ]] && { [[ $mode == full ]] && timeout_min=180 || timeout_min=40; }
[[ $timeout_min =~ ^[1-9][0-9]*$ ]] || die "--timeout takes whole minutes, got '$timeout_min'"
berthd_bin=${berthd_bin:-${CARGO_TARGET_DIR:-$repo/target}/debug/berthd}
known=${known:-$repo/tests/node-e2e/known-failures.txt}
out=${out:-${CARGO_TARGET_DIR:-$repo/target}/node-e2e}
[[ -x $berthd_bin ]] || die "no berthd at $berthd_bin (cargo build -p berthd -p berth-shim, or --berthd BIN)"
for tool in jq curl ip ss runc iptables-save sysctl umoci skopeo docker-registry; do
  command -v "$tool" >/dev/null || die "'$tool' not found (scripts/install-deps.sh test)"
done
# Fixed ports of the suite and kubelet, and the registry's: a run that finds one taken
# would talk to someone else's server.
for port in 6443 10248 10250 10255 "${registry##*:}"; do
  if ss -Hltn "sport = :$port" | grep -q .; then
    die "port $port is in use (another kubelet, apiserver or registry runs here); one run at a time"
  fi
done

suite=$("$repo/scripts/build-node-e2e.sh" | tail -n 1) || die "building the suite failed"
crictl_bin=$("$repo/scripts/build-cri-tools.sh" | tail -n 1)/crictl || die "building crictl failed"
mkdir -p "$out" && out=$(cd "$out" && pwd) || die "cannot create $out"
rm -f "$out"/{ginkgo.log,report.json,summary.txt,gate.txt,kubelet.log,berthd.log}

work=$(mktemp -d /tmp/berth-node-e2e.XXXXXX)
chmod 0711 "$work"
certs=$work/certs.d
BRIDGE=be$(($$ % 10000))
NETWORK=berth-node-e2e-$BRIDGE
OCTET=241
NODE_BRIDGE=bn$(($$ % 10000))
NODE_IP=10.232.242.1
NODE=berth-node-e2e
# shellcheck source=../lib/kubelet-host.sh
. "$repo/tests/lib/kubelet-host.sh"
ginkgo_pid= progress_pid= registry_started=0
kubelet_root_existed=0 pod_logs_existed=0
[[ -e /var/lib/kubelet ]] && kubelet_root_existed=1
[[ -e /var/log/pods ]] && pod_logs_existed=1
kubelet_mounts_before=$(awk '$5 ~ "^/var/lib/kubelet/" {print $5}' /proc/self/mountinfo | sort)
if other=$(kh_other_kubelet); then
  rm -rf "$work"
  die "a kubelet runs here already (PID $other); one kubelet per host"
fi
kh_note_host

crictl() { "$crictl_bin" --runtime-endpoint "unix://$socket" --image-endpoint "unix://$socket" --timeout 20s "$@"; }

cleanup() {
  local rc=$? pid pods
  trap - EXIT INT TERM
  if [[ -n $ginkgo_pid ]] && kill -0 "$ginkgo_pid" 2>/dev/null; then
    # ginkgo stops its processes on an interrupt, after the running specs' cleanup.
    log "interrupting ginkgo (PID $ginkgo_pid)"
    kill -INT "$ginkgo_pid" 2>/dev/null
    for _ in $(seq 60); do kill -0 "$ginkgo_pid" 2>/dev/null || break; sleep 1; done
    kill -KILL "$ginkgo_pid" 2>/dev/null
  fi
  # What ginkgo did not stop: its processes, the suite's services process and kubelet (each
  # names the work directory on its command line).
  for pid in $(kh_pids_of e2e_node.test kubelet); do kh_stop_pid "$pid"; done
  [[ -n $progress_pid ]] && kill "$progress_pid" 2>/dev/null
  # kubelet leaves the pods of the last specs; remove them through the CRI.
  if [[ -n $berthd_pid ]] && kill -0 "$berthd_pid" 2>/dev/null; then
    pods=$(crictl pods -q 2>/dev/null)
    [[ -n $pods ]] && log "removing $(wc -w <<<"$pods") pod(s) left behind"
    for pid in $pods; do crictl rmp -f "$pid" >/dev/null 2>&1; done
  fi
  kh_stop_pid "$berthd_pid"
  [[ -f $work/berthd.log ]] && cp "$work/berthd.log" "$out/berthd.log"
  kh_end_leftovers
  # kubelet's mounts of this run (volumes of pods it did not get to clean up), deepest first.
  comm -13 <(echo "$kubelet_mounts_before") \
    <(awk '$5 ~ "^/var/lib/kubelet/" {print $5}' /proc/self/mountinfo | sort) | sort -r |
    while read -r mnt; do umount -l "$mnt" 2>/dev/null; done
  if ((!kubelet_root_existed)); then
    # kubelet makes its root a shared mount of itself.
    while grep -q ' /var/lib/kubelet ' /proc/self/mountinfo; do umount -l /var/lib/kubelet || break; done
    rm -rf /var/lib/kubelet
  fi
  ((pod_logs_existed)) || rm -rf /var/log/pods
  [[ -e /sys/class/net/$NODE_BRIDGE ]] && ip link del "$NODE_BRIDGE"
  kh_restore_host
  ((registry_started)) && "$repo/tests/images/registry.sh" stop "$work/registry" >/dev/null
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- registry and images.
log "registry on $registry with the node e2e test images"
mkdir -p "$work/registry"
"$repo/tests/images/registry.sh" --addr "$registry" start "$work/registry" >/dev/null ||
  die "cannot start the registry on $registry"
registry_started=1
"$repo/tests/images/build.sh" --node-e2e "$suite" "$registry" | tail -n 1 || die "building the test images failed"
"$repo/tests/images/mirror-hosts.sh" "$certs" "$registry" >/dev/null

# --- the node's address, berthd.
ip link add "$NODE_BRIDGE" type bridge && ip addr add "$NODE_IP/32" dev "$NODE_BRIDGE" &&
  ip link set "$NODE_BRIDGE" up || die "cannot create the node bridge $NODE_BRIDGE"
kh_write_berth_config
# The runtime handler the suite's RuntimeClass specs name (e2eruntimeclass's preconfigured
# "test-handler"; SIG Node's CI configures it in containerd the same way): runc.
cat >>"$work/berth.toml" <<TOML
[runtime.handlers.test-handler]
path = "$(command -v runc)"
root = "$work/state/runtimes/test-handler"
TOML
kh_start_berthd || { tail -20 "$work/berthd.log"; die "berthd did not start"; }
log "berthd $("$berthd_bin" --version 2>/dev/null) (PID $berthd_pid) on $socket"

# --- kubelet's configuration: the suite's defaults (test/e2e_node/jenkins), with what this
# host needs: cgroupfs, cgroup v1 allowed, QoS cgroups under /, the node address; image GC
# and eviction thresholds that a shared, nearly full build disk does not trip.
mkdir -p "$work/e2e"
cat >"$work/e2e/kubeletconfig.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
cgroupDriver: cgroupfs
cgroupRoot: /
cgroupsPerQOS: true
failCgroupV1: false
failSwapOn: false
podCIDR: 10.232.$OCTET.0/24
volumeStatsAggPeriod: 10s
serializeImagePulls: false
fileCheckFrequency: 10s
evictionPressureTransitionPeriod: 30s
evictionHard: {memory.available: 250Mi, nodefs.available: 1Gi, imagefs.available: 1Gi, nodefs.inodesFree: 1%}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
YAML

# A PATH without systemd-run and systemctl (with them the suite starts kubelet as a systemd
# unit, which this host's init cannot run): every other command of PATH, linked.
mkdir -p "$work/path"
IFS=: read -r -a path_dirs <<<"$PATH"
for dir in "${path_dirs[@]}"; do
  for f in "$dir"/*; do
    name=${f##*/}
    [[ -x $f && ! -d $f && $name != systemd-run && $name != systemctl && ! -e $work/path/$name ]] &&
      ln -s "$f" "$work/path/$name"
  done
done

# ginkgo's regular expressions have no look-ahead: "A and B" is "A.*B|B.*A".
area=
[[ $mode == core ]] && area=$CORE
[[ -n $focus ]] && area=$focus
select_focus=$FOCUS
[[ -n $area ]] && select_focus="($area).*$FOCUS|$FOCUS.*($area)"
log "suite $suite ($mode, $nodes processes, timeout ${timeout_min}m); log in $out/ginkgo.log"
args=(
  --nodes="$nodes" --timeout="${timeout_min}m" --no-color -v
  --focus="$select_focus" --skip="$SKIP"
  --output-dir="$out" --json-report=report.json
  "$work/e2e/e2e_node.test" --
  --container-runtime-endpoint="unix://$socket" --image-service-endpoint="unix://$socket"
  --node-name="$NODE" --prepull-images=false --report-dir="$work/report"
  --kubelet-config-file="$work/e2e/kubeletconfig.yaml"
  --kubelet-flags="--node-ip=$NODE_IP --runtime-cgroups= --kubelet-cgroups= --system-cgroups="
)
# ginkgo runs a suite binary in the binary's directory, where the suite writes its scratch
# files (kubeconfig, tokens, kubelet configuration, static pods): a link in the work
# directory keeps them there; kubelet is looked for beside it.
ln -s "$suite/e2e_node.test" "$suite/kubelet" "$work/e2e/"
start=$SECONDS
(cd "$work/e2e" && exec env PATH="$work/path" "$suite/ginkgo" "${args[@]}") >"$out/ginkgo.log" 2>&1 &
ginkgo_pid=$!
# One line per finished spec, from ginkgo's verbose output: "• [N seconds]", "• [FAILED] ...",
# "S [SKIPPED] ..." and then the spec's name on the next line.
tail -n +1 --pid="$ginkgo_pid" -F "$out/ginkgo.log" 2>/dev/null | awk '
  /^• \[[0-9.]+ seconds\]$/ { st = "pass"; want = 1; next }
  /^• \[(FAILED|PANICKED!|TIMEDOUT|INTERRUPTED)\]/ { st = tolower($2); gsub(/[][!]/, "", st); want = 1; next }
  /^S \[SKIPPED\]/ { st = "skip"; want = 1; next }
  want { want = 0; n++; sub(/ \[[^][]*\]$/, ""); printf "node-e2e [%d] %s %s\n", n, st, $0; fflush(); next }
  /^(Will run|Ran) [0-9]+ of [0-9]+ [Ss]pecs/ { print "node-e2e: " $0; fflush(); next }
  /^\[(SynchronizedBeforeSuite|BeforeSuite)\] (FAILED|PANICKED)/ { print "node-e2e: " $0; fflush() }' &
progress_pid=$!
# (wait returns at once on a signal, so an interrupt stops the run without waiting for ginkgo)
wait "$ginkgo_pid"
ginkgo_rc=$?
ginkgo_pid=
wait "$progress_pid"
progress_pid=
log "ginkgo exited with status $ginkgo_rc after $((SECONDS - start)) s"
cp "$work/report/kubelet.log" "$out/kubelet.log" 2>/dev/null
[[ -s $out/report.json ]] || { tail -40 "$out/ginkgo.log"; die "ginkgo wrote no report"; }

# --- counts and the gate.
jq -r --arg f "$select_focus" --arg s "$SKIP" '
  [.[].SpecReports[]? | select(.LeafNodeType == "It")
   | {name: ([(.ContainerHierarchyTexts // [])[], .LeafNodeText] | join(" ")), state: .State}
   | select((.name | test($f)) and (.name | test($s) | not))]
  | "node-e2e: passed \(map(select(.state == "passed")) | length), failed \(map(select(.state != "passed" and .state != "skipped" and .state != "pending")) | length), skipped \(map(select(.state == "skipped" or .state == "pending")) | length)"
' "$out/report.json" || die "cannot read $out/report.json"
gate_args=(--report "$out/report.json" --known "$known" --out "$out" --label node-e2e)
((write_known)) && gate_args+=(--write-known)
"$repo/tests/conformance/gate.sh" "${gate_args[@]}"
