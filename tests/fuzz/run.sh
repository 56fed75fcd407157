#!/usr/bin/env bash
# A bounded run of the gRPC fuzzer (tests/fuzz, issue #13): builds berthd (with the
# failpoints feature, as the tests use it), berth-shim and berth-fuzz, then runs berth-fuzz,
# which contains itself in namespaces of its own (network with only lo, UTS, IPC, mount),
# starts its own registry and berthd there, and removes everything it started.
#
#   tests/fuzz/run.sh [berth-fuzz options...]
#
# Environment (options given on the command line win):
#   BERTH_FUZZ_SECONDS     load time, split between the fixed and a random seed (default
#                          100: about 3 minutes in all on 2 cores when nothing wedges)
#   BERTH_FUZZ_JOBS        concurrent requests (default 8)
#   BERTH_FUZZ_SEED        run only this seed (replay)
#   BERTH_FUZZ_ITERATIONS  iterations per seed
#   BERTH_FUZZ_REPLAY=1    only send every corpus file once (the regression mode)
#   BERTH_FUZZ_OUT         where findings' requests are saved (default target/fuzz-out)
#   BERTH_FUZZ_BUILD=0     use the binaries already built
# Exit status: berth-fuzz's (0 clean, 1 findings that fail the run, 77 skipped: not root).
set -euo pipefail
cd "$(dirname "$0")/../.."
target=${CARGO_TARGET_DIR:-$PWD/target}

if [[ ${BERTH_FUZZ_BUILD:-1} == 1 ]]; then
  cargo build --quiet -p berthd -p berth-shim -p berth-fuzz --features berthd/failpoints
fi

args=(--seconds "${BERTH_FUZZ_SECONDS:-100}" --jobs "${BERTH_FUZZ_JOBS:-8}")
[[ -n ${BERTH_FUZZ_SEED:-} ]] && args+=(--seed "$BERTH_FUZZ_SEED")
[[ -n ${BERTH_FUZZ_ITERATIONS:-} ]] && args+=(--iterations "$BERTH_FUZZ_ITERATIONS")
[[ ${BERTH_FUZZ_REPLAY:-0} == 1 ]] && args+=(--replay-corpus)
[[ -n ${BERTH_FUZZ_OUT:-} ]] && args+=(--out "$BERTH_FUZZ_OUT")

BERTHD=$target/debug/berthd exec "$target/debug/berth-fuzz" "${args[@]}" "$@"
