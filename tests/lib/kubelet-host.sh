# shellcheck shell=bash
# Shared by tests/kubelet/run.sh and tests/node-e2e/run.sh (sourced): a test berthd on a CNI
# network of its own for a real kubelet, and the host state kubelet changes.
#
# The caller sets, before calling anything here:
#   work        its temporary directory (0711); berthd's socket, root, state, CNI
#               configuration and IPAM data live under it
#   berthd_bin  the berthd binary
#   certs       the hosts.toml directory that mirrors the test registry
#   BRIDGE NETWORK OCTET   the CNI bridge, network name and subnet 10.232.$OCTET.0/24
# and calls kh_note_host before it changes anything, kh_end_leftovers and kh_restore_host
# on exit.

# shellcheck source=../../bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../../bench/lib.sh"

socket=$work/berth.sock
berthd_pid=
# Host sysctls kubelet sets at start when they differ (vm.overcommit_memory=1,
# vm.panic_on_oom=0, kernel.panic=10, kernel.panic_on_oops=1, kernel.keys.root_maxkeys=1000000,
# kernel.keys.root_maxbytes=25000000).
KH_SYSCTLS=(vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops
  kernel.keys.root_maxkeys kernel.keys.root_maxbytes)
declare -A kh_sysctl_before
kh_cgroups_before=

# kh_wait_for SECONDS COMMAND...: polls COMMAND every second for up to SECONDS.
kh_wait_for() {
  local seconds=$1 i
  shift
  for ((i = 0; i < seconds; i++)); do "$@" && return 0; sleep 1; done
  return 1
}

# kh_stop_pid PID: TERM, then KILL after 10 s.
kh_stop_pid() {
  local pid=$1
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null || true
}

# kh_other_kubelet: prints the PID of a kubelet running on this host and succeeds, if there
# is one. kubelet kills the processes of the pod cgroups under /kubepods it does not know
# (orphans), so two kubelets on one host kill each other's pods: one at a time.
kh_other_kubelet() {
  local dir
  for dir in /proc/[0-9]*; do
    if [[ $(cat "$dir/comm" 2>/dev/null) == kubelet ]]; then
      echo "${dir#/proc/}"
      return 0
    fi
  done
  return 1
}

# kh_note_host: what kh_restore_host puts back (sysctls, whether kubelet's QoS cgroups and
# portmap's shared chains existed).
kh_note_host() {
  local s
  for s in "${KH_SYSCTLS[@]}"; do kh_sysctl_before[$s]=$(sysctl -n "$s"); done
  kh_cgroups_before=$(ls -d /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/unified/kubepods 2>/dev/null || true)
  bench_note_hostport_chains
}

# kh_write_berth_config: the CNI network (bridge $BRIDGE, 10.232.$OCTET.0/24, portmap, IPAM
# data in the work directory) and berth.toml (that network, the registry mirror).
kh_write_berth_config() {
  mkdir -p "$work/net.d"
  cat >"$work/net.d/10-$NETWORK.conflist" <<JSON
{"cniVersion": "1.0.0", "name": "$NETWORK", "plugins": [
  {"type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": true, "hairpinMode": true,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.232.$OCTET.0/24"}]],
            "routes": [{"dst": "0.0.0.0/0"}], "dataDir": "$work/cni-ipam"}},
  {"type": "portmap", "capabilities": {"portMappings": true}}]}
JSON
  cat >"$work/berth.toml" <<TOML
[cni]
conf_dir = "$work/net.d"
bin_dirs = ["/usr/lib/cni"]
[registry]
config_path = "$certs"
TOML
}

# kh_start_berthd: starts berthd (log appended to $work/berthd.log; no drop-ins but those of
# $work/berth.d, which need not exist), sets berthd_pid, and waits up to 20 s for its socket.
kh_start_berthd() {
  "$berthd_bin" --config "$work/berth.toml" --config-dir "$work/berth.d" --listen "$socket" \
    --root "$work/root" --state "$work/state" --log-level info >>"$work/berthd.log" 2>&1 &
  berthd_pid=$!
  kh_wait_for 20 test -S "$socket"
}

# kh_pids_of COMM...: the PIDs of the processes named COMM whose command line names the
# work directory (so started by this run).
kh_pids_of() {
  local dir comm want
  for dir in /proc/[0-9]*; do
    comm=$(cat "$dir/comm" 2>/dev/null) || continue
    for want in "$@"; do
      [[ $comm == "$want" ]] || continue
      { tr '\0' ' ' <"$dir/cmdline"; } 2>/dev/null | grep -qF -- "$work/" && echo "${dir#/proc/}"
      break
    done
  done
}

# kh_end_leftovers: after berthd stopped, ends what a failed run left: containers and shims
# (they outlive berthd by design), mounts under the work directory.
kh_end_leftovers() {
  local id pid root
  # runc's root of the default handler, and those of other handlers the caller configured
  # under $work/state/runtimes.
  for root in "$work/state/runc" "$work"/state/runtimes/*; do
    for id in $(ls "$root" 2>/dev/null); do
      runc --root "$root" delete --force "$id" >/dev/null 2>&1 || true
    done
  done
  for pid in $(kh_pids_of berth-shim); do kill -KILL "$pid" 2>/dev/null || true; done
  kh_umount_under "$work/"
}

# kh_umount_under PREFIX: lazily unmounts every mount point below PREFIX, deepest first.
kh_umount_under() {
  { grep -F " $1" /proc/self/mountinfo || true; } | awk '{print $5}' | sort -r |
    while read -r mnt; do umount -l "$mnt" 2>/dev/null || true; done
}

# kh_restore_host: iptables rules of the network, the bridge, kubelet's sysctls and (when
# it made them) its QoS cgroups under every hierarchy, deepest first.
kh_restore_host() {
  local s top
  bench_clean_iptables
  [[ -e /sys/class/net/$BRIDGE ]] && ip link del "$BRIDGE" 2>/dev/null
  for s in "${KH_SYSCTLS[@]}"; do
    [[ -n ${kh_sysctl_before[$s]:-} ]] && { sysctl -qw "$s=${kh_sysctl_before[$s]}" || true; }
  done
  if [[ -z $kh_cgroups_before ]]; then
    for top in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/unified/kubepods; do
      [[ -d $top ]] && find "$top" -depth -type d -exec rmdir {} + 2>/dev/null
    done
  fi
  return 0
}
