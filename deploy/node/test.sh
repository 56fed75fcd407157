#!/usr/bin/env bash
# Boots the node image (deploy/node/build.sh) with systemd-nspawn and checks berth in it as a
# kind node runs its runtime: berthd as a systemd service with the systemd cgroup driver.
#
#   deploy/node/test.sh [--image DIR] [--cgroup hybrid|legacy|unified] [--no-critest] [--kubelet]
#                       [--registry-port PORT] [--logs DIR]
#
# --image     what build.sh printed (default ${BERTH_TEST_CACHE:-/var/cache/berth-test}/node)
# --cgroup    hybrid: the node gets the host's layout, v1 controllers + cgroup2 (default);
#             legacy: v1 only (SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=0);
#             unified: only the cgroup2 hierarchy (SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1)
# --kubelet   also kubelet inside the node, a service of the node's systemd with
#             cgroupDriver systemd, with static pods: web (init container, emptyDir, readiness
#             probe, served on its pod IP and a hostPort, CPU and memory limits read back from
#             its berth-<id>.scope in kubepods-burstable-pod<uid>.slice), guaranteed (its
#             slice, its oom_score_adj), crasher (CrashLoopBackOff), kubelet's stats
#             summary, every pod and scope gone once the manifests are; skipped (failed under
#             BERTH_TEST_NO_SKIP=1) when a kubelet, or a tests/run.sh or tests/node-e2e/run.sh
#             that did not start this test, runs on the host
# --logs      copies the node's journals (berthd, kubelet and berthd, all), the console and
#             critest's report there at the end; a failed run copies them to
#             /tmp/berth-node-logs.<node> without --logs
#
# BERTH_NODE_HOLD=1 keeps a failed node running (to look into it with nsenter) until the
# file the test names is removed.
#
# Checks, in the node: systemd reaches running (or degraded: the failed units are listed),
# berthd.service is active and `crictl info` reports the systemd cgroup driver (chosen by
# auto); crictl's lifecycle (runp, create, start, exec, stats, stop, rm) of a pod whose cgroup
# parent is a kubepods slice, its container in berth-<id>.scope under that slice
# (systemd-cgls is printed); `systemctl restart berthd` keeps the container (same PID);
# the memory limit and stats through the scope's cgroup; an OOM kill reported as OOMKilled;
# then critest, gated on tests/conformance/known-failures.txt, whose summary
# (`critest: passed N, failed M, …`) is printed. Prints "node: N passed, M failed"; exits
# non-zero on any failure.
#
# What the test starts it ends: the node (nspawn and everything in it, by PID), the registry
# (in the node's network namespace), the overlay mount and the copy-on-write layer of the
# image, the node's cgroups on the host.
set -uo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
prog=node-test

image=${BERTH_TEST_CACHE:-/var/cache/berth-test}/node
mode=hybrid run_critest=1 run_kubelet=0 port=5014 logs=
while (($#)); do
  case $1 in
    --image) image=$2; shift 2 ;;
    --cgroup) mode=$2; shift 2 ;;
    --no-critest) run_critest=0; shift ;;
    --kubelet) run_kubelet=1; shift ;;
    --registry-port) port=$2; shift 2 ;;
    --logs) logs=$2; shift 2 ;;
    *) sed -n '2,/^set -uo/{/^set -uo/d;s/^# \{0,1\}//;p}' "$0" >&2; exit 2 ;;
  esac
done
die() { echo "$prog: $*" >&2; exit 2; }
[[ $(id -u) == 0 ]] || die "needs root"
[[ $mode == hybrid || $mode == legacy || $mode == unified ]] || die "--cgroup hybrid|legacy|unified"
[[ -f $image/base/.berth-node-base && -x $image/berth/usr/local/bin/berthd ]] ||
  die "no node image in $image (run deploy/node/build.sh)"
for tool in systemd-nspawn nsenter jq; do
  command -v "$tool" >/dev/null || die "$tool is missing (deploy/node/build.sh installs systemd-container)"
done

name=bn$(($$ % 10000))
work=$(mktemp -d /tmp/berth-node.XXXXXX)
root=$work/root
# The node's cgroup on the host, in every hierarchy: nspawn keeps the cgroup it is started in
# (--keep-unit) and makes it the node's root through a cgroup namespace.
CG=berth-node-$name
nspawn_pid='' leader='' registry_up=0
passed=0 failed=0
# shellcheck source=tests/lib/kubelet-host.sh
. "$repo/tests/lib/kubelet-host.sh"

ok() { passed=$((passed + 1)); echo "ok   $*"; }
fail() { failed=$((failed + 1)); echo "FAIL $*"; return 1; }
check() { # check NAME COMMAND...: fails (returns 1) when COMMAND does
  # (not "name": the checked command sees check's locals, and $name is the node's name)
  local what=$1; shift
  if "$@"; then ok "$what"; else fail "$what"; fi
}
# nin COMMAND...: runs COMMAND in the node (every namespace of its init, a clean environment).
nin() {
  nsenter --target "$leader" --all \
    env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 "$@"
}
crictl() { nin crictl --timeout 30s "$@"; }

# Host sysctls the kubelet step set, and their values before.
declare -A sysctls_before=()
restore_sysctls() {
  local s
  for s in "${!sysctls_before[@]}"; do sysctl -qw "$s=${sysctls_before[$s]}" || true; done
}

cleanup() {
  local rc=$?
  if [[ -n $leader ]] && kill -0 "$leader" 2>/dev/null; then
    # BERTH_NODE_HOLD=1: a failed run keeps the node up until $work/hold is removed.
    if [[ -n ${BERTH_NODE_HOLD:-} ]] && ((rc != 0 || failed != 0)); then
      echo "holding the node (init PID $leader) until $work/hold is removed"
      touch "$work/hold"
      while [[ -e $work/hold ]]; do sleep 2; done
    fi
    # A failed run keeps the node's journals even without --logs.
    if [[ -z $logs ]] && ((rc != 0 || failed != 0)); then
      logs=/tmp/berth-node-logs.$name
    fi
    if [[ -n $logs ]]; then
      mkdir -p "$logs"
      nin journalctl -u berthd --no-pager >"$logs/berthd.journal" 2>&1
      nin journalctl -u kubelet -u berthd --no-pager >"$logs/kubelet-berthd.journal" 2>&1
      nin journalctl --no-pager >"$logs/node.journal" 2>&1
      cp "$work/console.log" "$logs/" 2>/dev/null
      cp -r "$root/var/tmp/critest" "$logs/" 2>/dev/null
      echo "node's journals and console in $logs"
    fi
    # Pods first, so runc removes its scopes while berthd runs.
    for pod in $(crictl pods -q 2>/dev/null); do crictl rmp -f "$pod" >/dev/null 2>&1; done
  fi
  ((registry_up)) && "$repo/tests/images/registry.sh" stop "$work/registry" >/dev/null
  restore_sysctls
  if [[ -n $nspawn_pid ]] && kill -0 "$nspawn_pid" 2>/dev/null; then
    # SIGTERM to nspawn is a clean poweroff of the node (SIGRTMIN+3 to its systemd).
    kill -TERM "$nspawn_pid"
    kh_wait_for 60 bash -c "! kill -0 $nspawn_pid 2>/dev/null" ||
      { kill -KILL "$leader" 2>/dev/null; kill -KILL "$nspawn_pid" 2>/dev/null; }
    wait "$nspawn_pid" 2>/dev/null
  fi
  kh_umount_under "$work/"
  local h
  for h in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do
    [[ -d $h$CG ]] && find "$h$CG" -depth -type d -exec rmdir {} + 2>/dev/null
  done
  rm -rf --one-file-system "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the node's root: the image's two layers under a copy-on-write layer of this run.
mkdir -p "$root" "$work/upper" "$work/overlay-work" "$work/berth-root" "$work/kubelet-root"
mount -t overlay overlay \
  -o "lowerdir=$image/berth:$image/base,upperdir=$work/upper,workdir=$work/overlay-work" "$root" ||
  die "cannot mount the image's overlay"
echo "$name" >"$root/etc/hostname"
# The test registry (started in the node's network namespace below) mirrors the registries
# critest's images come from.
"$repo/tests/images/mirror-hosts.sh" "$root/etc/berth/certs.d" "127.0.0.1:$port" >/dev/null

# --- boot.
for h in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do
  [[ -e ${h}cgroup.procs ]] || continue
  mkdir -p "$h$CG"
  # A new v1 cpuset has no CPUs or memory nodes: a process cannot join it before they are set.
  if [[ -e $h$CG/cpuset.cpus ]]; then
    cat "${h}cpuset.cpus" >"$h$CG/cpuset.cpus"
    cat "${h}cpuset.mems" >"$h$CG/cpuset.mems"
  fi
done
# nspawn gives the node the host's layout unless told otherwise.
case $mode in
  hybrid) nspawn_env=(SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=) ;;
  legacy) nspawn_env=(SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=0) ;;
  unified) nspawn_env=(SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1) ;;
esac
# Why each option:
#   --register=no --keep-unit  the host has no systemd (nor machined) to register the machine
#                         or create a scope for it: nspawn stays in the cgroup it starts in,
#                         $CG, made above in every hierarchy.
#   --private-network     the node's own network namespace (only lo): its CNI bridge, iptables
#                         rules and the test registry never touch the host's network, and
#                         127.0.0.1 in the node is the node's.
#   --capability=all      berthd and runc need capabilities nspawn drops by default
#                         (CAP_NET_ADMIN for CNI, CAP_SYS_RESOURCE for rlimits, ...).
#   SYSTEMD_SECCOMP=0     no seccomp filter of nspawn's on the node, as a kind node (a
#                         privileged container) has none: nspawn's filter denies keyctl (runc
#                         gives every container a session keyring) and bpf (runc's device
#                         controller on cgroup v2), and, being inherited by every process, it
#                         would make every container seccomp-filtered (critest's "unconfined"
#                         specs read Seccomp: 2 in /proc/self/status).
#   --bind …/var/lib/berth  berth's overlay snapshots need an upper directory that is not
#                         itself on overlayfs (the node's root is).
#   --bind-ro=/dev/kmsg   kubelet's OOM watcher reads the kernel log (nspawn gives the node none).
#   --console=pipe        no terminal: the console goes to $work/console.log.
start_ns=$(date +%s%N)
# shellcheck disable=SC2016 # the inner script's own variables, its arguments $0..$4
setsid env "${nspawn_env[@]}" SYSTEMD_SECCOMP=0 bash -c '
  for h in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do
    [[ -e $h$4/cgroup.procs ]] && echo $$ >"$h$4/cgroup.procs"
  done
  exec systemd-nspawn --quiet --boot --directory="$0" --machine="$1" \
    --register=no --keep-unit --private-network --capability=all \
    --bind="$2:/var/lib/berth" --bind="$3:/var/lib/kubelet" --bind-ro=/dev/kmsg --console=pipe' \
  "$root" "$name" "$work/berth-root" "$work/kubelet-root" "$CG" </dev/null >"$work/console.log" 2>&1 &
nspawn_pid=$!
# The node's init: nspawn's child once it runs systemd (before, nspawn's short-lived helpers).
find_leader() {
  leader=$(ps -o pid=,comm= --ppid "$nspawn_pid" | awk '$2 == "systemd" { print $1; exit }')
  [[ -n $leader ]]
}
kh_wait_for 30 find_leader || { cat "$work/console.log"; die "nspawn started no init"; }
system_up() {
  local s
  s=$(nin systemctl is-system-running 2>/dev/null)
  [[ $s == running || $s == degraded ]]
}
if ! kh_wait_for 120 system_up; then
  echo "node did not finish booting: $(nin systemctl is-system-running 2>&1)"
  nin systemctl list-jobs --no-pager 2>&1 | head -20
  tail -30 "$work/console.log"
  exit 1
fi
boot_ms=$((($(date +%s%N) - start_ns) / 1000000))
state=$(nin systemctl is-system-running)
echo "node $name booted ($mode cgroups) in $boot_ms ms: $state; nspawn PID $nspawn_pid, init PID $leader"
if [[ $state == degraded ]]; then
  echo "failed units:"
  nin systemctl --failed --no-legend --plain | sed 's/^/  /'
fi
echo "cgroups in the node:"
nin sh -c 'cat /proc/1/cgroup' | sed 's/^/  /'
v2=/sys/fs/cgroup/unified
[[ $mode == unified ]] && v2=/sys/fs/cgroup
if [[ $mode != legacy ]]; then
  controllers=$(nin cat "$v2/cgroup.controllers")
  echo "cgroup2 controllers in the node: ${controllers:-none}"
fi

# --- the test registry, in the node's network namespace (the host's 127.0.0.1 is not the
# node's); its files stay on the host.
mkdir -p "$work/registry"
nsenter --net="/proc/$leader/ns/net" "$repo/tests/images/registry.sh" --addr "127.0.0.1:$port" \
  start "$work/registry" >/dev/null || die "registry did not start"
registry_up=1
nsenter --net="/proc/$leader/ns/net" "$repo/tests/images/build.sh" "127.0.0.1:$port" 2>&1 | tail -n 1

# --- berthd as the service, with the systemd cgroup driver.
berthd_up() { [[ $(nin systemctl is-active berthd) == active ]] && crictl info >/dev/null 2>&1; }
check "berthd.service is active and answers" kh_wait_for 30 berthd_up
driver=$(crictl info 2>/dev/null | jq -r '.cgroup.driver')
echo "berthd in the node: cgroup driver $driver ($(crictl info | jq -r '.cgroup.mode') cgroups)"
check "berthd chose the systemd cgroup driver (cgroup_driver = auto)" test "$driver" == systemd

# --- crictl's lifecycle, in a kubepods slice.
t=/root/node-test
mkdir -p "$root$t"
POD_SLICE=kubepods-besteffort-podnodetest.slice
SLICE_DIR=kubepods.slice/kubepods-besteffort.slice/$POD_SLICE
cat >"$root$t/pod.json" <<JSON
{"metadata": {"name": "nodetest", "namespace": "berth-node", "uid": "nodetest", "attempt": 0},
 "log_directory": "$t/logs", "linux": {"cgroup_parent": "$POD_SLICE"}}
JSON
ctr_json() { # ctr_json NAME MEMORY-LIMIT COMMAND
  cat <<JSON
{"metadata": {"name": "$1"}, "image": {"image": "registry.k8s.io/e2e-test-images/busybox:1.29-2"},
 "command": ["sh", "-c", "$3"], "log_path": "$1.log",
 "linux": {"resources": {"memory_limit_in_bytes": $2}}}
JSON
}
ctr_json sleeper 67108864 "echo started; sleep 3600" >"$root$t/sleeper.json"
# dd is the container's init: the OOM killer's choice, and its death ends the container.
ctr_json hog 33554432 "echo hogging; exec dd if=/dev/zero of=/dev/null bs=128M count=1" >"$root$t/hog.json"

lifecycle() {
  crictl pull registry.k8s.io/e2e-test-images/busybox:1.29-2 >/dev/null || { fail "pull busybox"; return; }
  pod=$(crictl runp "$t/pod.json") || { fail "runp"; return; }
  ok "runp (cgroup parent $POD_SLICE)"
  # The rest needs a container: without one the lifecycle ends here (the pod is removed on exit).
  ctr=$(crictl create "$pod" "$t/sleeper.json" "$t/pod.json") || { fail "create"; return; }
  ok "create"
  check "start" crictl start "$ctr" || return
  exec_ok() { [[ $(crictl exec "$ctr" echo exec-ok 2>&1) == exec-ok ]]; }
  check "exec" exec_ok
  scope=berth-$ctr.scope
  cgroups_path=$(crictl inspect "$ctr" | jq -r '.info.runtimeSpec.linux.cgroupsPath')
  echo "cgroupsPath $cgroups_path"
  in_scope() {
    [[ $(nin systemctl show -P ControlGroup "$scope") == "/$SLICE_DIR/$scope" &&
      $(nin systemctl is-active "$scope") == active ]]
  }
  check "the container runs in $scope under $POD_SLICE" in_scope
  echo "systemd-cgls of the pod's slice:"
  nin systemd-cgls --no-pager --full -u kubepods.slice | sed 's/^/  /'
  memory_dir=/sys/fs/cgroup/memory/$SLICE_DIR/$scope
  [[ $mode == unified ]] && memory_dir=/sys/fs/cgroup/$SLICE_DIR/$scope
  limit() { nin sh -c "cat $memory_dir/memory.limit_in_bytes 2>/dev/null || cat $memory_dir/memory.max"; }
  check "memory limit 64Mi in the scope's cgroup ($memory_dir)" test "$(limit)" == 67108864
  stats_ok() {
    crictl stats -o json --id "$ctr" |
      jq -e '.stats[0] | (.memory.workingSetBytes.value | tonumber) > 0 and (.cpu.usageCoreNanoSeconds.value | tonumber) > 0' >/dev/null
  }
  check "stats: CPU and memory read through the scope's cgroup" kh_wait_for 10 stats_ok
  crictl stats --id "$ctr" | sed 's/\x1b\[[0-9;]*[A-Za-z]//g; s/^/  /'

  # systemctl restart berthd: the shim and the container are outside berthd's cgroup's main
  # process (KillMode=process) and keep running.
  pid_before=$(crictl inspect "$ctr" | jq -r '.info.pid')
  nin systemctl restart berthd
  check "systemctl restart berthd" kh_wait_for 30 berthd_up
  pid_after=$(crictl inspect "$ctr" | jq -r '.info.pid')
  state=$(crictl inspect "$ctr" | jq -r '.status.state')
  kept() { [[ $pid_before == "$pid_after" && $state == CONTAINER_RUNNING ]] && nin kill -0 "$pid_after"; }
  check "the container kept running across the restart (PID $pid_before → $pid_after, $state)" kept
  check "stats after the restart" kh_wait_for 10 stats_ok

  # An OOM kill through the systemd scope's cgroup.
  if ! hog=$(crictl create "$pod" "$t/hog.json" "$t/pod.json") || ! crictl start "$hog" >/dev/null; then
    fail "hog created and started"
  fi
  hog_exited() { [[ $(crictl inspect "$hog" | jq -r '.status.state') == CONTAINER_EXITED ]]; }
  kh_wait_for 30 hog_exited
  reason=$(crictl inspect "$hog" | jq -r '"\(.status.reason) \(.status.exitCode)"')
  check "a container over its memory limit is reported OOMKilled ($reason)" test "${reason%% *}" == OOMKilled

  check "stop" crictl stop "$ctr"
  check "rm" crictl rm "$ctr" "$hog"
  check "stopp" crictl stopp "$pod"
  check "rmp" crictl rmp "$pod"
  no_scope() { [[ -z $(nin systemctl list-units --all --plain --no-legend 'berth-*.scope') ]]; }
  check "no scope left under $POD_SLICE" no_scope
}
lifecycle

# --- critest inside the node, gated as make test gates it.
if ((run_critest)); then
  conf=/usr/local/share/berth/conformance
  nin "$conf/run-critest.sh" --critest /usr/local/bin/critest --endpoint unix:///run/berth/berth.sock \
    --known "$conf/known-failures.txt" --out /var/tmp/critest 2>"$work/critest.progress" |
    tee "$work/critest.summary"
  critest_rc=${PIPESTATUS[0]}
  grep -E '^critest \[[0-9]+/[0-9]+\] (failed|panicked|timedout)' "$work/critest.progress" | sed 's/^/  /'
  check "critest gate (systemd cgroup driver)" test "$critest_rc" == 0
fi

# --- kubelet in the node, standalone with static pods, systemd cgroup driver.
# One kubelet per host (tests/lib/kubelet-host.sh): the node's kubelet is a process named
# kubelet on the host too, and a kubelet test started meanwhile would refuse to run. So the
# step runs only when no kubelet and no run of tests/run.sh or tests/node-e2e/run.sh (whose
# kubelet steps may come later) is on the host, and it takes about two minutes. A run of
# tests/run.sh that started this test is no obstacle: it runs the node last, after its own
# kubelet steps.
# other_kubelet_user: prints what stands in the way and succeeds, if anything does.
other_kubelet_user() {
  local dir cmd pid=$BASHPID
  local -A ancestors=()
  while ((pid > 1)); do # this process (a subshell too) and its ancestors
    ancestors[$pid]=1
    pid=$(awk '{ print $4 }' "/proc/$pid/stat" 2>/dev/null) || break
  done
  for dir in /proc/[0-9]*; do
    [[ $(cat "$dir/comm" 2>/dev/null) == kubelet ]] && { echo "a kubelet (PID ${dir#/proc/})"; return 0; }
    [[ -n ${ancestors[${dir#/proc/}]:-} ]] && continue
    cmd=$({ tr '\0' ' ' <"$dir/cmdline"; } 2>/dev/null)
    if [[ $cmd == *tests/run.sh* || $cmd == *tests/node-e2e/run.sh* ]]; then
      echo "${cmd% } (PID ${dir#/proc/})"
      return 0
    fi
  done
  return 1
}
# Host sysctls kubelet insists on at start (it writes them when it may; the node's /proc/sys
# is read-only, so it would fail instead): set from here, restored on exit.
declare -A kubelet_sysctls=([vm.overcommit_memory]=1 [vm.panic_on_oom]=0 [kernel.panic]=10
  [kernel.panic_on_oops]=1 [kernel.keys.root_maxkeys]=1000000 [kernel.keys.root_maxbytes]=25000000)
# The kubelet step's pods: their namespace, image, web's hostPort (on the node's 127.0.0.1)
# and the node's address.
KNS=berth-node BUSYBOX=registry.k8s.io/e2e-test-images/busybox:1.29-2 HOST_PORT=30180 NODE_IP=10.231.0.2
kubelet_step() {
  local s blocker
  if blocker=$(other_kubelet_user); then
    # Under tests/run.sh (BERTH_TEST_NO_SKIP=1) a check that cannot run fails.
    if [[ ${BERTH_TEST_NO_SKIP:-} == 1 ]]; then
      fail "kubelet in the node: $blocker runs on the host (one kubelet per host)"
    else
      echo "skip kubelet in the node: $blocker runs on the host (one kubelet per host)"
    fi
    return 0
  fi
  for s in "${!kubelet_sysctls[@]}"; do
    sysctls_before[$s]=$(sysctl -n "$s")
    sysctl -qw "$s=${kubelet_sysctls[$s]}"
  done
  # The node's address: kubelet takes it from the interface of the default route, which a
  # node with only lo lacks (it would log "no default routes found" on every status sync). A
  # kind node has eth0 on the cluster network; this one gets eth0 in its own network namespace,
  # a veth pair with both ends there (gone with the node).
  if ! { nin ip link add eth0 type veth peer name eth0-peer && nin ip link set eth0-peer up &&
    nin ip addr add "$NODE_IP/24" dev eth0 && nin ip link set eth0 up &&
    nin ip route add default via "${NODE_IP%.*}.1" dev eth0; }; then
    fail "the node's eth0 ($NODE_IP) and default route"
    return
  fi
  mkdir -p "$root/etc/kubernetes/manifests"
  cat >"$root/etc/kubernetes/kubelet.yaml" <<'YAML'
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
staticPodPath: /etc/kubernetes/manifests
fileCheckFrequency: 1s
syncFrequency: 5s
containerRuntimeEndpoint: unix:///run/berth/berth.sock
imageServiceEndpoint: unix:///run/berth/berth.sock
cgroupDriver: systemd
failCgroupV1: false
failSwapOn: false
address: 127.0.0.1
readOnlyPort: 10255
healthzBindAddress: 127.0.0.1
authentication:
  anonymous: {enabled: true}
  webhook: {enabled: false}
authorization: {mode: AlwaysAllow}
evictionHard: {}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
featureGates:
  PodAndContainerStatsFromCRI: true
YAML
  # kubelet as a service of the node's systemd (transient here), as kind runs kubelet.service.
  # --node-ip as kind gives it: without one, kubelet looks its node name up in DNS each time
  # it builds the node's status (every stats summary of a standalone kubelet), and the
  # node's network reaches no name server: 10 s of resolver timeouts per lookup.
  nin systemd-run --quiet --unit=kubelet \
    /usr/local/bin/kubelet --config /etc/kubernetes/kubelet.yaml --hostname-override "$name" \
    --node-ip "$NODE_IP" --v=2 ||
    { fail "kubelet started in the node"; return; }
  # kubelet's endpoints and the pods are on the node's network: curl from the host in the
  # node's network namespace.
  kcurl() { nsenter --net="/proc/$leader/ns/net" curl -sf --max-time 5 "$@"; }
  healthy() { kcurl http://127.0.0.1:10248/healthz >/dev/null; }
  if ! check "kubelet is healthy (cgroupDriver systemd)" kh_wait_for 90 healthy; then
    nin journalctl -u kubelet --no-pager | grep -E '^.{0,40}[EF][0-9]{4}' | tail -n 15 | sed 's/^/  /'
    return
  fi
  # manifest NAME: the static pod NAME in $KNS whose spec is stdin, renamed into place whole
  # (kubelet watches the directory and ignores dot files).
  manifest() {
    local file=$root/etc/kubernetes/manifests/$1.yaml
    { printf 'apiVersion: v1\nkind: Pod\nmetadata: {name: %s, namespace: %s}\nspec:\n' "$1" "$KNS" && cat; } \
      >"${file%/*}/.$1.yaml" && mv "${file%/*}/.$1.yaml" "$file"
  }
  # web: an init container fills an emptyDir that busybox httpd serves, with a readiness
  # probe, a hostPort, and CPU and memory limits above its requests (Burstable).
  manifest web <<YAML
  initContainers:
  - name: content
    image: $BUSYBOX
    command: [sh, -c, "echo served-by-berth > /www/index.html"]
    volumeMounts: [{name: www, mountPath: /www}]
  containers:
  - name: httpd
    image: $BUSYBOX
    command: [httpd, -f, -p, "8080", -h, /www]
    ports: [{containerPort: 8080, hostPort: $HOST_PORT, hostIP: 127.0.0.1}]
    readinessProbe: {httpGet: {path: /index.html, port: 8080}, periodSeconds: 2}
    resources:
      limits: {cpu: 200m, memory: 64Mi}
      requests: {cpu: 100m, memory: 32Mi}
    volumeMounts: [{name: www, mountPath: /www}]
  volumes: [{name: www, emptyDir: {}}]
YAML
  manifest crasher <<YAML
  containers:
  - name: crash
    image: $BUSYBOX
    command: [sh, -c, "echo crashing; exit 1"]
YAML
  # guaranteed: limits equal to requests; its pod slice is right under kubepods.slice and
  # kubelet asks for oom_score_adj -997.
  manifest guaranteed <<YAML
  containers:
  - name: sleeper
    image: $BUSYBOX
    command: [sleep, "3600"]
    resources:
      limits: {cpu: 100m, memory: 32Mi}
      requests: {cpu: 100m, memory: 32Mi}
YAML
  pods_json() { kcurl http://127.0.0.1:10255/pods; }
  # pod_jq POD FILTER: FILTER holds for the pod's object in kubelet's /pods.
  pod_jq() { pods_json | jq -e --arg n "$1-$name" ".items[]? | select(.metadata.name == \$n) | $2" >/dev/null; }
  web_ready() { pod_jq web '.status.conditions[]? | select(.type == "Ready") | .status == "True"'; }
  if ! check "web: running and ready (readiness probe)" kh_wait_for 120 web_ready; then
    pods_json | jq -c '.items[] | {name: .metadata.name, status}' | cut -c1-2000 | sed 's/^/  /'
    crictl pods | sed 's/^/  /'
    crictl ps -a | sed 's/^/  /'
  else
    check "web: the init container ran to completion" \
      pod_jq web '.status.initContainerStatuses[0].state.terminated.reason == "Completed"'
    local pod_ip
    pod_ip=$(pods_json | jq -r --arg n "web-$name" '.items[] | select(.metadata.name == $n) | .status.podIP')
    served() { [[ $(kcurl "$1") == served-by-berth ]]; }
    check "web: served on its pod IP $pod_ip:8080 from the node" served "http://$pod_ip:8080/index.html"
    check "web: served on the node's hostPort 127.0.0.1:$HOST_PORT" kh_wait_for 20 served "http://127.0.0.1:$HOST_PORT/index.html"
    local id kscope
    id=$(crictl ps -q --name httpd | head -n 1)
    kscope=berth-$id.scope
    local path
    path=$(nin systemctl show -P ControlGroup "$kscope")
    echo "web's container: $path"
    in_pod_slice() {
      [[ $path =~ ^/kubepods\.slice/kubepods-burstable\.slice/kubepods-burstable-pod[0-9a-f_]+\.slice/$kscope$ &&
        $(nin systemctl is-active "$kscope") == active ]]
    }
    check "web: its container in $kscope, in kubepods-burstable-pod<uid>.slice" in_pod_slice
    cg() { # cg CONTROLLER FILE: the file of web's container cgroup in the node
      if [[ $mode == unified ]]; then nin cat "/sys/fs/cgroup$path/$2"; else nin cat "/sys/fs/cgroup/$1$path/$2"; fi
    }
    if [[ $mode == unified ]]; then
      check "web: memory.max 64Mi, cpu.max 20 ms per 100 ms in the scope" \
        test "$(cg memory memory.max) $(cg cpu cpu.max)" == "67108864 20000 100000"
    else
      check "web: memory limit 64Mi, CPU quota 20 ms per 100 ms in the scope" \
        test "$(cg memory memory.limit_in_bytes) $(cg cpu cpu.cfs_quota_us) $(cg cpu cpu.cfs_period_us)" == "67108864 20000 100000"
    fi
  fi
  g_ready() { pod_jq guaranteed '.status.conditions[]? | select(.type == "Ready") | .status == "True"'; }
  if check "guaranteed: running and ready" kh_wait_for 60 g_ready; then
    local gid gpath gpid
    gid=$(crictl ps -q --name sleeper | head -n 1)
    gpath=$(nin systemctl show -P ControlGroup "berth-$gid.scope")
    gpid=$(crictl inspect "$gid" | jq -r '.info.pid')
    echo "guaranteed's container: $gpath, PID $gpid"
    check "guaranteed: its container in kubepods-pod<uid>.slice" \
      bash -c "[[ '$gpath' =~ ^/kubepods\.slice/kubepods-pod[0-9a-f_]+\.slice/berth-$gid\.scope$ ]]"
    # kubelet asks -997 for a Guaranteed pod's containers. Where berthd may not lower
    # oom_score_adj (no CAP_SYS_RESOURCE: this host's containers lack it, and so does the
    # node), it raises it to its own (restrict_oom_score_adj = auto), and says so at start.
    local adj want=-997
    if [[ $(nin journalctl -u berthd --no-pager) == *"oom_score_adj is raised to berthd's own"* ]]; then
      want=$(nin cat "/proc/$(nin systemctl show -P MainPID berthd)/oom_score_adj")
    fi
    adj=$(nin cat "/proc/$gpid/oom_score_adj")
    check "guaranteed: oom_score_adj $adj (-997, or berthd's own where it may not lower it: $want)" \
      test "$adj" == "$want"
  fi
  crash_looping() {
    local state
    state=$(pods_json | jq -r --arg n "crasher-$name" \
      '.items[]? | select(.metadata.name == $n) | .status.containerStatuses[0] | "\(.restartCount) \(.state.waiting.reason // "")"')
    [[ $state =~ ^([2-9]|[1-9][0-9]+)\ CrashLoopBackOff$ ]]
  }
  check "crasher: restarted with back-off (CrashLoopBackOff, 2 restarts or more)" kh_wait_for 90 crash_looping
  echo "systemd-cgls of kubelet's pods:"
  nin systemd-cgls --no-pager --full -u kubepods.slice | grep -v '→' | sed 's/^/  /'
  summary() {
    kcurl http://127.0.0.1:10255/stats/summary |
      jq -e --arg ns "$KNS" '[.pods[] | select(.podRef.namespace == $ns and .podRef.name == "web-'"$name"'" and .memory.workingSetBytes != null and .cpu.usageNanoCores != null)] | length == 1' >/dev/null
  }
  check "kubelet's stats summary has web's CPU and memory" kh_wait_for 60 summary
  rm -f "$root"/etc/kubernetes/manifests/*.yaml
  no_pods() { [[ -z $(crictl pods -q) ]]; }
  check "manifests removed: kubelet removes every pod" kh_wait_for 90 no_pods
  no_scope() { [[ -z $(nin systemctl list-units --all --plain --no-legend 'berth-*.scope') ]]; }
  check "no berth-*.scope left" kh_wait_for 30 no_scope
  # A CRI call kubelet gave up on (canceled, or past its deadline) means that kubelet or
  # berth stalled: none is expected in this run.
  no_stalled_call() {
    ! nin journalctl -u kubelet --no-pager |
      grep -E 'service failed" err="rpc error: code = (Canceled|DeadlineExceeded)'
  }
  check "kubelet logged no CRI call that was canceled or ran out of time" no_stalled_call
  nin systemctl stop kubelet
}
((run_kubelet)) && kubelet_step

echo "node: $passed passed, $failed failed"
((failed == 0))
