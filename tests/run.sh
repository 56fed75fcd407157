#!/usr/bin/env bash
# Every test of berth, as `make test` runs it (root, Debian 12; dependencies installed by
# scripts/install-deps.sh test):
#   1. cargo fmt --check, clippy -D warnings, and the gate's own self-test;
#   2. crictl and critest v1.36.0 and kubelet v1.37.2 built (cached under $BERTH_TEST_CACHE);
#   3. a local docker-registry on 127.0.0.1:5000 with every test image critest pulls,
#      built here from Debian's busybox and small static helpers, and checked;
#   4. cargo test for the workspace: unit tests, then integration tests (tests/it/) that
#      start real berthd daemons on temporary sockets and pull from that registry (and
#      from extra registries they start on 127.0.0.1:5001.. for auth and corruption cases);
#   5. one berthd on a temporary socket/root/state, with the registry as mirror of the
#      upstream registries (hosts.toml), driven by crictl (tests/crictl-smoke.sh) and then
#      by critest (and its streaming specs once more over WebSocket), gated on
#      tests/conformance/known-failures.txt; then critest once more, whole, against a second
#      berthd whose default runtime handler is crun (tests/runtimes/crun.sh), same gate;
#   6. a real kubelet, standalone with static pods, against a berthd of its own
#      (tests/kubelet/run.sh);
#   7. a bounded run of the gRPC fuzzer (tests/fuzz/run.sh: hostile requests for every RPC
#      against a berthd in namespaces of its own; BERTH_FUZZ_SECONDS, default 100);
#   8. the core of Kubernetes' node conformance suite v1.37.2 (tests/node-e2e/run.sh --core:
#      64 specs, about 13 minutes; the suite built by scripts/build-node-e2e.sh, cached),
#      against a berthd, registry (127.0.0.1:5001) and node address of its own, gated on
#      tests/node-e2e/known-failures.txt;
#   9. the kind-style node (deploy/node/build.sh --binaries target/debug, deploy/node/test.sh
#      --kubelet): a Debian 12 image with systemd booted by systemd-nspawn (the image's Debian
#      base cached under $BERTH_TEST_CACHE/node), berthd as its systemd service with the
#      systemd cgroup driver, crictl's lifecycle, restart, OOM and stats checks, critest
#      inside it (same gate), then kubelet as the node's service with static pods. Last: its
#      kubelet is the host's only one then. Everything it uses is in the node's own network
#      namespace (registry 127.0.0.1:5014, kubelet's ports, the CNI bridge cni0).
# Everything started is stopped by PID and every temporary directory removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

export BERTH_TEST_CACHE=${BERTH_TEST_CACHE:-/var/cache/berth-test}
registry_addr=127.0.0.1:5000
work=$(mktemp -d /tmp/berth-test.XXXXXX)
# mktemp makes it 0700; the unprivileged root of a pod with a user namespace must be able to
# reach the state directory below it (containerd keeps its own directories 0711 likewise).
chmod 0711 "$work"
out=${BERTH_TEST_OUT:-$repo/target/test-output}
mkdir -p "$out"
berthd_pid=
crun_berthd_pid=

step() { printf '\n== %s\n' "$*"; }

# start_berthd CONFIG DIR LOG: a berthd on DIR/berth.sock with root and state in DIR and no
# drop-ins; sets started_pid; fails with the log when the socket does not appear.
start_berthd() {
  local config=$1 dir=$2 log=$3
  "$repo/target/debug/berthd" --config "$config" --config-dir "$dir/berth.d" \
    --listen "$dir/berth.sock" --root "$dir/root" --state "$dir/state" --log-level info \
    >"$log" 2>&1 &
  started_pid=$!
  for _ in $(seq 200); do [[ -S $dir/berth.sock ]] && return 0; sleep 0.05; done
  echo "berthd did not start:" >&2
  cat "$log" >&2
  return 1
}

# stop_berthd PID SOCKET LOG: SIGTERM; it must exit 0 and remove its socket.
stop_berthd() {
  local pid=$1 socket=$2 log=$3 rc=0
  kill -TERM "$pid"
  wait "$pid" || rc=$?
  if ((rc != 0)); then
    echo "berthd exited with $rc on SIGTERM; log: $log" >&2
    exit 1
  fi
  [[ ! -e $socket ]] || { echo "berthd left its socket $socket behind" >&2; exit 1; }
}

# kill_berthd PID: TERM, then KILL after 10 s (cleanup after a failure).
kill_berthd() {
  local pid=$1
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
}

# remove_leftover_pods ENDPOINT: critest leaves the pods of specs that failed half-way;
# remove them through the CRI so their namespaces, mounts, veths and IP allocations go too.
remove_leftover_pods() {
  local endpoint=$1 leftover pod
  leftover=$(crictl --runtime-endpoint "$endpoint" pods -q 2>/dev/null || true)
  [[ -n $leftover ]] || return 0
  echo "removing $(wc -w <<<"$leftover") pod(s) left by failed critest specs"
  for pod in $leftover; do
    crictl --runtime-endpoint "$endpoint" rmp --force "$pod" >/dev/null 2>&1 ||
      echo "warning: could not remove pod $pod" >&2
  done
}

cleanup() {
  local rc=$?
  kill_berthd "$berthd_pid"
  kill_berthd "$crun_berthd_pid"
  [[ -f $work/registry/registry.pid ]] && tests/images/registry.sh stop "$work/registry" || true
  # Whatever berthd still had mounted under the work dir (a run that failed half-way).
  { grep -F " $work/" /proc/self/mountinfo || true; } | awk '{print $5}' | sort -r |
    while read -r mnt; do umount -l "$mnt" 2>/dev/null || true; done
  rm -rf "$work"
  # runc removes each container's cgroup but not the shared parent berth puts them under
  # (`/berth` when kubelet gives no cgroup parent); remove it when empty.
  for dir in /sys/fs/cgroup/*/berth /sys/fs/cgroup/berth; do
    [[ -d $dir ]] && rmdir "$dir" 2>/dev/null || true
  done
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step "static checks"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
bash tests/conformance/selftest.sh | tail -n 1

step "crictl, critest, kubelet and the node e2e suite"
bin=$(scripts/build-cri-tools.sh | tail -n 1)
export PATH=$bin:$PATH
kubelet=$(scripts/build-kubelet.sh | tail -n 1)
scripts/build-node-e2e.sh | tail -n 1

step "local registry and test images"
mkdir -p "$work/registry"
tests/images/registry.sh start "$work/registry"
tests/images/build.sh "$registry_addr"
tests/images/check.sh "$registry_addr" | tail -n 1
tests/images/mirror-hosts.sh "$work/certs.d" "$registry_addr"

# Every test runs here: a test that would skip (not root, a tool or the registry missing)
# fails instead (berth-testutil, tests/src/registry.rs).
export BERTH_TEST_REGISTRY=$registry_addr BERTH_REQUIRE_REGISTRY=1 BERTH_TEST_NO_SKIP=1

step "cargo test (unit and integration)"
# The test build of berthd has failpoints (BERTH_FAIL_AT=<step> aborts it there) for the
# crash tests; both commands name the feature so that cargo test does not rebuild berthd
# without it.
features=(--features berthd/failpoints)
cargo build --workspace --quiet "${features[@]}"
# cargo's own exit status decides (a test binary that crashes prints no "test result"
# line); the summary lines only add to it. pipefail is off for this one pipeline so that
# PIPESTATUS keeps cargo's status.
set +o pipefail
BERTHD=$repo/target/debug/berthd cargo test --workspace --quiet "${features[@]}" 2>&1 | tee "$out/cargo-test.log" |
  { grep -E '^(test result|failures:|    [a-z_:]+$|---- )' || true; }
cargo_rc=${PIPESTATUS[0]}
set -o pipefail
if ((cargo_rc != 0)) || grep -q '^test result: FAILED' "$out/cargo-test.log" ||
  ! grep -q '^test result: ok' "$out/cargo-test.log"; then
  echo "cargo test failed (exit $cargo_rc); see $out/cargo-test.log" >&2
  exit 1
fi
unit_counts=$(awk '/^test result:/ {p+=$4; f+=$6} END {print p " passed, " f " failed"}' "$out/cargo-test.log")
echo "cargo test: $unit_counts"

step "berthd"
mkdir -p "$work/net.d"
cat >"$work/berth.toml" <<TOML
[registry]
config_path = "$work/certs.d"
[cni]
conf_dir = "$work/net.d"
TOML
socket=$work/berth.sock
start_berthd "$work/berth.toml" "$work" "$out/berthd.log"
berthd_pid=$started_pid
endpoint=unix://$socket

step "crictl smoke test"
tests/crictl-smoke.sh "$endpoint"

step "critest"
critest_rc=0
tests/conformance/run-critest.sh --critest "$bin/critest" --endpoint "$endpoint" \
  --known tests/conformance/known-failures.txt --out "$out/critest" || critest_rc=$?

step "critest streaming specs over WebSocket"
# The default run above uses SPDY; critest offers WebSocket for exec, attach and port-forward.
tests/conformance/run-critest.sh --critest "$bin/critest" --endpoint "$endpoint" \
  --known tests/conformance/known-failures.txt --out "$out/critest-websocket" \
  --extra-critest-args -ginkgo.focus Streaming -websocket-exec -websocket-attach -websocket-portforward ||
  critest_rc=$?

remove_leftover_pods "$endpoint"

step "kubelet (standalone, static pods) against its own berthd"
kubelet_rc=0
tests/kubelet/run.sh --kubelet "$kubelet" --berthd "$repo/target/debug/berthd" \
  --crictl "$bin/crictl" --certs "$work/certs.d" 2>&1 | tee "$out/kubelet.log" || kubelet_rc=$?

stop_berthd "$berthd_pid" "$socket" "$out/berthd.log"
berthd_pid=

step "critest with crun as the default runtime handler"
# A second berthd (the first one has stopped: one built-in pod network at a time), the same
# registry mirror and CNI directory, whose pods run under crun
# (through tests/runtimes/crun.sh: crun 1.8 refuses hybrid cgroup hosts whose v2 hierarchy
# holds a controller, as the test VMs' does). The whole suite: it takes about 2 minutes.
mkdir -p "$work/crun"
chmod 0711 "$work/crun"
cat >"$work/crun/berth.toml" <<TOML
[registry]
config_path = "$work/certs.d"
[cni]
conf_dir = "$work/net.d"
[runtime]
default_handler = "crun"
[runtime.handlers.crun]
path = "$repo/tests/runtimes/crun.sh"
TOML
start_berthd "$work/crun/berth.toml" "$work/crun" "$out/berthd-crun.log"
crun_berthd_pid=$started_pid
crun_endpoint=unix://$work/crun/berth.sock
tests/conformance/run-critest.sh --critest "$bin/critest" --endpoint "$crun_endpoint" \
  --known tests/conformance/known-failures.txt --out "$out/critest-crun" || critest_rc=$?
remove_leftover_pods "$crun_endpoint"
stop_berthd "$crun_berthd_pid" "$work/crun/berth.sock" "$out/berthd-crun.log"
crun_berthd_pid=

step "gRPC fuzzer (bounded run)"
fuzz_rc=0
BERTH_FUZZ_BUILD=0 BERTH_FUZZ_OUT=$out/fuzz tests/fuzz/run.sh 2>&1 | tee "$out/fuzz.log" ||
  fuzz_rc=${PIPESTATUS[0]}
step "Kubernetes node conformance core (tests/node-e2e/run.sh --core)"
# After the kubelet test: one kubelet per host. Its own registry: 127.0.0.1:5000 is this
# script's.
node_e2e_rc=0
tests/node-e2e/run.sh --core --registry 127.0.0.1:5001 --berthd "$repo/target/debug/berthd" \
  --out "$out/node-e2e" 2>&1 | tee "$out/node-e2e.log" || node_e2e_rc=${PIPESTATUS[0]}
step "kind-style node: berth and kubelet under systemd with the systemd cgroup driver (deploy/node)"
# Last: the node's kubelet may be the only one on the host. berthd, berth-shim and berthctl
# are those the cargo step built.
node_rc=0
node_start=$SECONDS
{ deploy/node/build.sh --binaries "$repo/target/debug" &&
  deploy/node/test.sh --kubelet --logs "$out/node"; } 2>&1 | tee "$out/node.log" || node_rc=${PIPESTATUS[0]}
echo "kind-style node: $((SECONDS - node_start)) s"
if ((critest_rc != 0)); then
  echo "critest gate failed (exit $critest_rc); details in $out/critest*" >&2
  exit 1
fi
if ((kubelet_rc != 0)); then
  echo "kubelet test failed (exit $kubelet_rc); see $out/kubelet.log" >&2
  exit 1
fi
if ((node_e2e_rc != 0)); then
  echo "node e2e core failed (exit $node_e2e_rc); see $out/node-e2e.log and $out/node-e2e" >&2
  exit 1
fi
if ((node_rc != 0)); then
  echo "kind-style node test failed (exit $node_rc); see $out/node.log and $out/node" >&2
  exit 1
fi
if ((fuzz_rc != 0)); then
  echo "fuzzer failed (exit $fuzz_rc); see $out/fuzz.log and the requests under $out/fuzz" >&2
  exit 1
fi
step "all tests passed (cargo test: $unit_counts; critest gate ok; logs in $out)"
