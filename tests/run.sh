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
#      tests/conformance/known-failures.txt;
#   6. a real kubelet, standalone with static pods, against a berthd of its own
#      (tests/kubelet/run.sh);
#   7. a bounded run of the gRPC fuzzer (tests/fuzz/run.sh: hostile requests for every RPC
#      against a berthd in namespaces of its own; BERTH_FUZZ_SECONDS, default 100).
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

step() { printf '\n== %s\n' "$*"; }

cleanup() {
  local rc=$?
  if [[ -n $berthd_pid ]] && kill -0 "$berthd_pid" 2>/dev/null; then
    kill -TERM "$berthd_pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$berthd_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$berthd_pid" 2>/dev/null || true
  fi
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

step "crictl, critest and kubelet"
bin=$(scripts/build-cri-tools.sh | tail -n 1)
export PATH=$bin:$PATH
kubelet=$(scripts/build-kubelet.sh | tail -n 1)

step "local registry and test images"
mkdir -p "$work/registry"
tests/images/registry.sh start "$work/registry"
tests/images/build.sh "$registry_addr"
tests/images/check.sh "$registry_addr" | tail -n 1
tests/images/mirror-hosts.sh "$work/certs.d" "$registry_addr"

export BERTH_TEST_REGISTRY=$registry_addr BERTH_REQUIRE_REGISTRY=1

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
"$repo/target/debug/berthd" --config "$work/berth.toml" --listen "$socket" \
  --root "$work/root" --state "$work/state" --log-level info >"$out/berthd.log" 2>&1 &
berthd_pid=$!
for _ in $(seq 200); do [[ -S $socket ]] && break; sleep 0.05; done
[[ -S $socket ]] || { echo "berthd did not start:" >&2; cat "$out/berthd.log" >&2; exit 1; }
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

# critest leaves the pods of specs that failed half-way; remove them through the CRI so
# their namespaces, mounts, veths and IP allocations go too.
leftover=$(crictl --runtime-endpoint "$endpoint" pods -q 2>/dev/null || true)
if [[ -n $leftover ]]; then
  echo "removing $(wc -w <<<"$leftover") pod(s) left by failed critest specs"
  for pod in $leftover; do
    crictl --runtime-endpoint "$endpoint" rmp --force "$pod" >/dev/null 2>&1 ||
      echo "warning: could not remove pod $pod" >&2
  done
fi

step "kubelet (standalone, static pods) against its own berthd"
kubelet_rc=0
tests/kubelet/run.sh --kubelet "$kubelet" --berthd "$repo/target/debug/berthd" \
  --crictl "$bin/crictl" --certs "$work/certs.d" 2>&1 | tee "$out/kubelet.log" || kubelet_rc=$?

kill -TERM "$berthd_pid"
berthd_rc=0
wait "$berthd_pid" || berthd_rc=$?
berthd_pid=
if ((berthd_rc != 0)); then
  echo "berthd exited with $berthd_rc on SIGTERM; log: $out/berthd.log" >&2
  exit 1
fi
[[ ! -e $socket ]] || { echo "berthd left its socket behind" >&2; exit 1; }

step "gRPC fuzzer (bounded run)"
fuzz_rc=0
BERTH_FUZZ_BUILD=0 BERTH_FUZZ_OUT=$out/fuzz tests/fuzz/run.sh 2>&1 | tee "$out/fuzz.log" ||
  fuzz_rc=${PIPESTATUS[0]}
if ((critest_rc != 0)); then
  echo "critest gate failed (exit $critest_rc); details in $out/critest" >&2
  exit 1
fi
if ((kubelet_rc != 0)); then
  echo "kubelet test failed (exit $kubelet_rc); see $out/kubelet.log" >&2
  exit 1
fi
if ((fuzz_rc != 0)); then
  echo "fuzzer failed (exit $fuzz_rc); see $out/fuzz.log and the requests under $out/fuzz" >&2
  exit 1
fi
step "all tests passed (cargo test: $unit_counts; critest gate ok; logs in $out)"
