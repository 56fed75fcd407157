#!/usr/bin/env bash
# A real kubelet, standalone with static pods, against a test berthd.
#
#   tests/kubelet/run.sh --kubelet BIN --berthd BIN --crictl BIN --certs DIR
#                        [--cri-stats true|false] [--steady SECONDS]
#
# --cri-stats sets kubelet's PodAndContainerStatsFromCRI gate (default true: kubelet reads
# every stat through the CRI; false: from cAdvisor, with the CRI for what it lacks).
# --steady keeps the pods running that long before they are removed and reports every CRI
# error line kubelet logged in that time (make test: 0; the closing notes: 300).
#
# --certs is the hosts.toml directory that makes the test registry a mirror of
# registry.k8s.io (tests/images/mirror-hosts.sh). The script starts its own berthd (own
# socket, root, state and CNI network: bridge bk<pid%10000>, 10.232.240.0/24, portmap) and
# kubelet (its own --root-dir, pod log dir and ports 10248/10250/10255 on 127.0.0.1, or
# BERTH_KUBELET_HEALTHZ_PORT / _PORT / _READ_ONLY_PORT), then
# checks what kubelet does on a node:
#   web       init container writing into a shared emptyDir, busybox httpd serving it with
#             an HTTP readiness probe and a hostPort reached from the host, CPU and memory
#             limits checked in the container's cgroup files
#   prober    an exec liveness probe that keeps passing (no restart)
#   crasher   a container that exits 1: CrashLoopBackOff, restarts counted with back-off
#   secure    runAsUser 1000 and readOnlyRootFilesystem, its log read back through
#             kubelet's /containerLogs endpoint
# then kubelet's stats summary (CPU and memory of every pod) with the PodAndContainerStatsFromCRI
# gate as --cri-stats says and again after a kubelet restart with the gate flipped, a kill -9
# and restart of berthd (no container restarted), the removal of every manifest with nothing left behind,
# and every CRI error line kubelet logged. kubelet's host sysctls are restored, every
# process started is stopped by PID, mounts, cgroups, network and files removed.
# Prints "kubelet: N passed, M failed"; exits non-zero on any failure.
set -uo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)

kubelet_bin= berthd_bin= crictl_bin= certs= cri_stats=true steady=0
while (($#)); do
  case $1 in
    --cri-stats) cri_stats=$2; shift 2 ;;
    --steady) steady=$2; shift 2 ;;
    --kubelet) kubelet_bin=$2; shift 2 ;;
    --berthd) berthd_bin=$2; shift 2 ;;
    --crictl) crictl_bin=$2; shift 2 ;;
    --certs) certs=$2; shift 2 ;;
    *) echo "usage: $0 --kubelet BIN --berthd BIN --crictl BIN --certs DIR [--cri-stats true|false] [--steady SECONDS]" >&2; exit 2 ;;
  esac
done
for b in "$kubelet_bin" "$berthd_bin" "$crictl_bin"; do
  [[ -x $b ]] || { echo "kubelet test: $b is not executable" >&2; exit 2; }
done
[[ -d $certs ]] || { echo "kubelet test: no hosts.toml directory $certs" >&2; exit 2; }
[[ $(id -u) == 0 ]] || { echo "kubelet test: needs root" >&2; exit 2; }
[[ $cri_stats == true || $cri_stats == false ]] || { echo "kubelet test: --cri-stats true|false" >&2; exit 2; }
[[ $steady =~ ^[0-9]+$ ]] || { echo "kubelet test: --steady SECONDS" >&2; exit 2; }

BUSYBOX=registry.k8s.io/e2e-test-images/busybox:1.29-2
NODE=berth-kubelet-test
NS=berth-it
HOST_PORT=30180
KUBELET_PORT=${BERTH_KUBELET_PORT:-10250}
READ_ONLY_PORT=${BERTH_KUBELET_READ_ONLY_PORT:-10255}
HEALTHZ_PORT=${BERTH_KUBELET_HEALTHZ_PORT:-10248}
work=$(mktemp -d /tmp/berth-kubelet.XXXXXX)
chmod 0711 "$work"
BRIDGE=bk$(($$ % 10000))
NETWORK=berth-kubelet-$BRIDGE
OCTET=240
# shellcheck source=../lib/kubelet-host.sh
. "$repo/tests/lib/kubelet-host.sh"
if other=$(kh_other_kubelet); then
  rm -rf "$work"
  echo "kubelet test: a kubelet runs here already (PID $other); one kubelet per host" >&2
  exit 2
fi
kh_note_host
kubelet_pid=
passed=0 failed=0
# kubelet's cgroups go below a root of the test's own in every hierarchy (cgroupRoot): a
# kubelet already on the host (or a node e2e run) never sees these pods' cgroups, which it
# would clean up as orphans, killing their processes; and this kubelet never touches its.
CGROUP_ROOT=/berth-kubelet-$BRIDGE
cgroup_roots=()
for hierarchy in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do
  [[ -e $hierarchy/cgroup.procs ]] || continue
  cgroup_roots+=("${hierarchy%/}$CGROUP_ROOT")
done

crictl() { "$crictl_bin" --config "$work/crictl.yaml" --timeout 20s "$@"; }
ok() { passed=$((passed + 1)); echo "ok   $*"; }
fail() { failed=$((failed + 1)); echo "FAIL $*"; }
check() { # check NAME COMMAND...
  local name=$1; shift
  if "$@"; then ok "$name"; else fail "$name"; fi
}
wait_for() { kh_wait_for "$@"; }

cleanup() {
  local rc=$?
  kh_stop_pid "$kubelet_pid"
  kubelet_pid=
  if [[ -n $berthd_pid ]] && kill -0 "$berthd_pid" 2>/dev/null; then
    for pod in $(crictl pods -q 2>/dev/null); do crictl rmp -f "$pod" >/dev/null 2>&1; done
  fi
  kh_stop_pid "$berthd_pid"
  kh_end_leftovers
  kh_restore_host
  # The test's cgroup root with kubelet's QoS and pod cgroups below it, deepest first.
  for top in "${cgroup_roots[@]}"; do
    [[ -d $top ]] && find "$top" -depth -type d -exec rmdir {} + 2>/dev/null
  done
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the cgroup root kubelet requires to exist, in every hierarchy.
for top in "${cgroup_roots[@]}"; do mkdir -p "$top"; done

# --- berthd on a network of its own.
mkdir -p "$work/manifests" "$work/pod-logs" "$work/kubelet"
printf 'runtime-endpoint: unix://%s\nimage-endpoint: unix://%s\n' "$socket" "$socket" >"$work/crictl.yaml"
kh_write_berth_config
kh_start_berthd || { echo "berthd did not start"; tail -20 "$work/berthd.log"; exit 1; }
crictl pull "$BUSYBOX" >/dev/null || { echo "cannot pull $BUSYBOX"; exit 1; }

# --- kubelet, standalone.
# write_kubelet_config GATE: kubelet's configuration with PodAndContainerStatsFromCRI=GATE.
write_kubelet_config() {
cat >"$work/kubelet.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
staticPodPath: $work/manifests
fileCheckFrequency: 1s
syncFrequency: 5s
containerRuntimeEndpoint: unix://$socket
imageServiceEndpoint: unix://$socket
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
address: 127.0.0.1
port: $KUBELET_PORT
readOnlyPort: $READ_ONLY_PORT
healthzBindAddress: 127.0.0.1
healthzPort: $HEALTHZ_PORT
authentication:
  anonymous: {enabled: true}
  webhook: {enabled: false}
authorization: {mode: AlwaysAllow}
podLogsDir: $work/pod-logs
cgroupRoot: $CGROUP_ROOT
evictionHard: {}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
featureGates:
  PodAndContainerStatsFromCRI: $1
YAML
}
# start_kubelet GATE: kubelet with that stats gate, its log appended to kubelet.log.
start_kubelet() {
  write_kubelet_config "$1"
  "$kubelet_bin" --config "$work/kubelet.yaml" --root-dir "$work/kubelet" \
    --hostname-override "$NODE" --v=2 >>"$work/kubelet.log" 2>&1 &
  kubelet_pid=$!
  wait_for 60 curl -sf http://127.0.0.1:$HEALTHZ_PORT/healthz >/dev/null ||
    { echo "kubelet did not become healthy"; tail -30 "$work/kubelet.log"; exit 1; }
}
start_kubelet "$cri_stats"
echo "kubelet: $("$kubelet_bin" --version) (PID $kubelet_pid), berthd PID $berthd_pid"

cat >"$work/manifests/web.yaml" <<YAML
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: $NS}
spec:
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
      requests: {cpu: 200m, memory: 64Mi}
    volumeMounts: [{name: www, mountPath: /www}]
  volumes: [{name: www, emptyDir: {}}]
YAML
cat >"$work/manifests/prober.yaml" <<YAML
apiVersion: v1
kind: Pod
metadata: {name: prober, namespace: $NS}
spec:
  containers:
  - name: main
    image: $BUSYBOX
    command: [sh, -c, "touch /tmp/healthy; sleep 3600"]
    livenessProbe: {exec: {command: [cat, /tmp/healthy]}, periodSeconds: 2, failureThreshold: 2}
YAML
cat >"$work/manifests/crasher.yaml" <<YAML
apiVersion: v1
kind: Pod
metadata: {name: crasher, namespace: $NS}
spec:
  containers:
  - name: main
    image: $BUSYBOX
    command: [sh, -c, "echo crashing; exit 1"]
YAML
cat >"$work/manifests/secure.yaml" <<YAML
apiVersion: v1
kind: Pod
metadata: {name: secure, namespace: $NS}
spec:
  securityContext: {runAsUser: 1000, runAsGroup: 1000}
  containers:
  - name: main
    image: $BUSYBOX
    command: [sh, -c, "echo uid=\$(id -u); touch /probe-write 2>/dev/null || echo rootfs-read-only; sleep 3600"]
    securityContext: {readOnlyRootFilesystem: true, allowPrivilegeEscalation: false}
YAML

pods_json() { curl -sf http://127.0.0.1:$READ_ONLY_PORT/pods; }
# status FIELD-FILTER for pod $1: jq over the pod's status.
pod_jq() { pods_json | jq -e --arg n "$1-$NODE" ".items[] | select(.metadata.name == \$n) | $2" >/dev/null; }
ready() { pod_jq "$1" '.status.conditions[]? | select(.type == "Ready") | .status == "True"'; }
restarts() { pods_json | jq -r --arg n "$1-$NODE" '[.items[] | select(.metadata.name == $n) | .status.containerStatuses[]?.restartCount] | add // 0'; }
ctr_id() { pods_json | jq -r --arg n "$1-$NODE" '.items[] | select(.metadata.name == $n) | .status.containerStatuses[0].containerID // ""'; }

for p in web prober secure; do
  check "$p: running and ready" wait_for 120 ready "$p"
done
check "web: the init container ran to completion" \
  pod_jq web '.status.initContainerStatuses[0].state.terminated.reason == "Completed"'
check "web: served through the hostPort from the host (emptyDir shared with the init container)" \
  wait_for 20 bash -c "curl -sf http://127.0.0.1:$HOST_PORT/index.html | grep -qx served-by-berth"

web_ctr=$(crictl ps -q --name httpd | head -n 1)
cgroups_path=$(crictl inspect "$web_ctr" 2>/dev/null | jq -r '.info.runtimeSpec.linux.cgroupsPath')
check "web: memory limit 64Mi in the container's cgroup" \
  bash -c "[[ \$(cat /sys/fs/cgroup/memory$cgroups_path/memory.limit_in_bytes) == 67108864 ]]"
check "web: CPU limit 200m as a 20 ms quota per 100 ms" \
  bash -c "[[ \$(cat /sys/fs/cgroup/cpu$cgroups_path/cpu.cfs_quota_us) == 20000 && \$(cat /sys/fs/cgroup/cpu$cgroups_path/cpu.cfs_period_us) == 100000 ]]"

crash_looping() {
  local state
  state=$(pods_json | jq -r --arg n "crasher-$NODE" \
    '.items[] | select(.metadata.name == $n) | .status.containerStatuses[0] | "\(.restartCount) \(.state.waiting.reason // "")"')
  [[ $state =~ ^([2-9]|[1-9][0-9]+)\ CrashLoopBackOff$ ]]
}
check "crasher: restarted with back-off (CrashLoopBackOff)" wait_for 90 crash_looping
check "crasher: its log read back through kubelet" \
  bash -c "curl -skf https://127.0.0.1:$KUBELET_PORT/containerLogs/$NS/crasher-$NODE/main | grep -qx crashing"
check "secure: runs as uid 1000 on a read-only root filesystem (log through kubelet)" \
  bash -c "logs=\$(curl -skf https://127.0.0.1:$KUBELET_PORT/containerLogs/$NS/secure-$NODE/main) && grep -qx uid=1000 <<<\"\$logs\" && grep -qx rootfs-read-only <<<\"\$logs\""
prober_not_restarted() { sleep 6; [[ $(restarts prober) == 0 ]]; }
check "prober: the exec liveness probe keeps passing (no restart)" prober_not_restarted
summary_lists_pods() {
  curl -sf http://127.0.0.1:$READ_ONLY_PORT/stats/summary |
    jq -e --arg ns "$NS" '[.pods[] | select(.podRef.namespace == $ns and .memory.workingSetBytes != null and .cpu.usageNanoCores != null)] | length >= 3' >/dev/null
}
check "stats summary (PodAndContainerStatsFromCRI=$cri_stats) lists the pods with CPU and memory" \
  wait_for 30 summary_lists_pods
# The other side of the gate: kubelet restarted with it flipped (the pods keep running).
other_gate=$([[ $cri_stats == true ]] && echo false || echo true)
kh_stop_pid "$kubelet_pid"
start_kubelet "$other_gate"
check "stats summary after a kubelet restart with PodAndContainerStatsFromCRI=$other_gate" \
  wait_for 60 summary_lists_pods
check "kubelet restart: no container restarted" \
  test "$(restarts web)$(restarts prober)$(restarts secure)" == 000

# kill -9 of berthd and a restart: every container keeps running, none is restarted.
before=""
for p in web prober secure; do before+="$p=$(ctr_id "$p"):$(restarts "$p") "; done
kill -KILL "$berthd_pid"; wait "$berthd_pid" 2>/dev/null
kh_start_berthd || fail "berthd restarted"
sleep 15
after=""
for p in web prober secure; do after+="$p=$(ctr_id "$p"):$(restarts "$p") "; done
check "kill -9 and restart of berthd: no container restarted ($after)" test "$before" == "$after"
check "web still served after the restart" \
  bash -c "curl -sf http://127.0.0.1:$HOST_PORT/index.html | grep -qx served-by-berth"

# A steady run: the pods keep running, kubelet keeps probing, syncing and reading stats.
if ((steady > 0)); then
  cri_errors() { grep -E 'rpc error|RemoteRuntime|remote_runtime' "$work/kubelet.log" | grep -ciE 'error' || true; }
  errors_before=$(cri_errors)
  lines_before=$(wc -l <"$work/kubelet.log")
  echo "steady run: ${steady} s with every pod running"
  sleep "$steady"
  steady_errors=$(($(cri_errors) - errors_before))
  echo "steady run: kubelet logged $steady_errors CRI error line(s) in ${steady} s"
  tail -n "+$((lines_before + 1))" "$work/kubelet.log" | grep -E 'rpc error' |
    sed -E 's/^.{0,30}//' | sort | uniq -c | sort -rn | head -n 10 | sed 's/^/  /'
  check "steady run: the pods kept running (no restart after $steady s)" \
    test "$(restarts web)$(restarts prober)$(restarts secure)" == 000
fi

# Removing every manifest removes every pod, with nothing left behind.
rm -f "$work"/manifests/*.yaml
no_pods() { [[ -z $(crictl pods -q) ]]; }
no_containers() { [[ -z $(crictl ps -aq) ]]; }
check "manifests deleted: kubelet removes every pod" wait_for 120 no_pods
check "no container left" wait_for 60 no_containers
check "no mount, pin or IP allocation left" bash -c "
  ! grep -qF ' $work/state/' /proc/self/mountinfo && [[ -z \$(ls '$work/state/ns' 2>/dev/null) ]] &&
  [[ -z \$(ls '$work/cni-ipam/$NETWORK' 2>/dev/null | grep -E '^10\\.') ]]"

errors=$(grep -E 'rpc error|RemoteRuntime|remote_runtime' "$work/kubelet.log" | grep -ciE 'error' || true)
echo "kubelet logged $errors CRI error line(s)"
grep -E 'rpc error' "$work/kubelet.log" | sed -E 's/^.{0,30}//' | sort | uniq -c | sort -rn | head -n 10 | sed 's/^/  /'

echo "kubelet: $passed passed, $failed failed"
((failed == 0))
