#!/usr/bin/env bash
# crictl against a running berthd: what an operator sees first.
#   tests/crictl-smoke.sh unix:///path/to/berth.sock
# Prints "N passed, N failed" and exits non-zero on any failure.
set -uo pipefail
endpoint=${1:?usage: $0 unix:///path/to/berth.sock}
crictl=(crictl --runtime-endpoint "$endpoint" --image-endpoint "$endpoint" --timeout 10s)
passed=0 failed=0

check() { # check NAME COMMAND... ; the command's output is in $output
  local name=$1; shift
  if output=$("$@" 2>&1); then
    passed=$((passed + 1)); echo "ok   $name"
  else
    failed=$((failed + 1)); echo "FAIL $name"; printf '%s\n' "$output" | sed 's/^/     /'
  fi
}

check "crictl version names berth" \
  bash -c '"$@" version | grep -E "^RuntimeName:[[:space:]]+berth$"' _ "${crictl[@]}"
check "crictl version reports API v1" \
  bash -c '"$@" version | grep -E "^RuntimeApiVersion:[[:space:]]+v1$"' _ "${crictl[@]}"
check "crictl info shows RuntimeReady and NetworkReady true" \
  bash -c 'info=$("$@" info) && for t in RuntimeReady NetworkReady; do
             jq -e --arg t "$t" ".status.conditions[] | select(.type == \$t) | .status == true" <<<"$info" >/dev/null || exit 1
           done' _ "${crictl[@]}"
check "crictl info carries the effective config" \
  bash -c 'sock=$1; shift; "$@" info | jq -e --arg s "$sock" ".config.listen == \$s" >/dev/null' _ "${endpoint#unix://}" "${crictl[@]}"
check "crictl images prints an empty table" \
  bash -c 'out=$("$@" images) && [[ $(wc -l <<<"$out") -eq 1 ]] && grep -q "^IMAGE" <<<"$out"' _ "${crictl[@]}"
check "crictl imagefsinfo reports usage" \
  bash -c '"$@" imagefsinfo | jq -e ".status.imageFilesystems[0].usedBytes.value != null" >/dev/null' _ "${crictl[@]}"
check "crictl runtime-config reports the cgroup driver" \
  bash -c '"$@" runtime-config | grep -Eiq "cgroup.?driver.*(systemd|cgroupfs)"' _ "${crictl[@]}"

# A pod's life through crictl: runp, pods, inspectp, stopp, rmp.
pod_config=$(mktemp /tmp/berth-smoke-pod.XXXXXX.json)
trap 'rm -f "$pod_config"' EXIT
log_dir=$(mktemp -d /tmp/berth-smoke-logs.XXXXXX)
cat >"$pod_config" <<JSON
{"metadata": {"name": "smoke", "namespace": "berth-test", "uid": "smoke-uid", "attempt": 1},
 "hostname": "smoke-host", "log_directory": "$log_dir",
 "dns_config": {"servers": ["10.10.10.10"], "searches": ["example.test"], "options": ["ndots:2"]}}
JSON
export pod_config_file=$pod_config
check "crictl runp starts a pod" bash -c '"$@" runp "$pod_config_file" 2>/dev/null' _ "${crictl[@]}"
pod=$(tail -n 1 <<<"$output")
export pod
check "crictl pods lists it Ready" \
  bash -c '"$@" pods --id "$pod" -o json | jq -e ".items[0].state == \"SANDBOX_READY\"" >/dev/null' _ "${crictl[@]}"
check "crictl inspectp shows its IP and hostname" \
  bash -c 'out=$("$@" inspectp "$pod") && jq -e ".status.network.ip | test(\"^[0-9.]+$\")" <<<"$out" >/dev/null &&
           jq -e ".info.hostname == \"smoke-host\"" <<<"$out" >/dev/null' _ "${crictl[@]}"
# A container in it: create, start, logs, exec, ps, stop, rm.
image=registry.k8s.io/e2e-test-images/busybox:1.29-2
ctr_config=$(mktemp /tmp/berth-smoke-ctr.XXXXXX.json)
trap 'rm -rf "$pod_config" "$ctr_config" "$log_dir"' EXIT
cat >"$ctr_config" <<JSON
{"metadata": {"name": "smoke-ctr"}, "image": {"image": "$image"},
 "command": ["sh", "-c", "echo smoke-out; sleep 1000"], "log_path": "smoke-ctr.log"}
JSON
export image ctr_config_file=$ctr_config
check "crictl pull fetches the image through the mirror" bash -c '"$@" pull "$image" >/dev/null' _ "${crictl[@]}"
check "crictl create makes a container" bash -c '"$@" create "$pod" "$ctr_config_file" "$pod_config_file" 2>/dev/null' _ "${crictl[@]}"
ctr=$(tail -n 1 <<<"$output")
export ctr
check "crictl start and ps show it running" \
  bash -c '"$@" start "$ctr" >/dev/null && "$@" ps --id "$ctr" -o json | jq -e ".containers[0].state == \"CONTAINER_RUNNING\"" >/dev/null' _ "${crictl[@]}"
check "crictl logs shows its output" \
  bash -c 'for _ in $(seq 50); do [[ $("$@" logs "$ctr" 2>/dev/null) == smoke-out ]] && exit 0; sleep 0.1; done; exit 1' _ "${crictl[@]}"
check "crictl exec -s runs a command in it" \
  bash -c '[[ $("$@" exec -s "$ctr" sh -c "echo -n \$((6*7))") == 42 ]]' _ "${crictl[@]}"
check "crictl inspect shows its pid and log path" \
  bash -c 'out=$("$@" inspect "$ctr") && jq -e ".info.pid > 0 and (.status.logPath | endswith(\"smoke-ctr.log\"))" <<<"$out" >/dev/null' _ "${crictl[@]}"
check "crictl stats and statsp report it" \
  bash -c '"$@" stats -o json --id "$ctr" | jq -e ".stats[0].memory.workingSetBytes.value | tonumber > 0" >/dev/null &&
           "$@" statsp -o json --id "$pod" | jq -e ".stats[0].linux.network.defaultInterface.name == \"eth0\"" >/dev/null' _ "${crictl[@]}"
check "crictl metricdescs and metricsp report pod metrics" \
  bash -c '"$@" metricdescs | grep -q container_memory_working_set_bytes &&
           "$@" metricsp | grep -q "$pod"' _ "${crictl[@]}"
check "crictl stop and rm remove it" \
  bash -c '"$@" stop -t 1 "$ctr" >/dev/null && "$@" rm "$ctr" >/dev/null && [[ -z $("$@" ps -a -q --id "$ctr") ]]' _ "${crictl[@]}"
check "crictl stopp stops it" \
  bash -c '"$@" stopp "$pod" >/dev/null && "$@" pods --id "$pod" -o json | jq -e ".items[0].state == \"SANDBOX_NOTREADY\"" >/dev/null' _ "${crictl[@]}"
check "crictl rmp removes it" \
  bash -c '"$@" rmp "$pod" >/dev/null && [[ $("$@" pods -q --id "$pod") == "" ]]' _ "${crictl[@]}"

echo "crictl smoke: $passed passed, $failed failed"
((failed == 0))
