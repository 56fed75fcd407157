#!/usr/bin/env bash
# Build containerd and containerd-shim-runc-v2 from the Go module proxy, for the side by
# side benchmark (bench/compare.sh).
#
#   bin=$(scripts/build-containerd.sh | tail -1)
#   "$bin/containerd" --version; "$bin/containerd-shim-runc-v2" -v
#
# Output: ${BERTH_TEST_CACHE:-/var/cache/berth-test}/containerd/<version>/bin/
#         {containerd,containerd-shim-runc-v2}
# The bin directory is printed as the last line on stdout; progress goes to stderr.
#
# If both binaries already exist and report the pinned version, nothing is rebuilt.
# Binaries are built under temporary names and renamed into place, so an interrupted build
# never leaves a partial binary behind. Concurrent runs serialise on a lock file.
#
# The build follows the release Makefile's flags where they matter: the version is linked
# in with -X, both binaries carry the urfave_cli_no_docs tag and the shim also no_grpc.
# Both are built with CGO_ENABLED=0 (the Makefile builds the shim that way; for the daemon
# it only drops the btrfs snapshotter, which the benchmark does not use).
#
# Environment:
#   BERTH_TEST_CACHE   cache root (default /var/cache/berth-test)
#   GO                 go command to use (default: go)
#   BERTH_CONTAINERD_REBUILD=1   rebuild even if the binaries are up to date
set -euo pipefail

CONTAINERD_VERSION=v2.4.2
# containerd v2.4.2's go.mod declares `go 1.26.6`.
GO_MIN_VERSION=1.26.6
MODULE=github.com/containerd/containerd/v2
LDFLAGS="-X ${MODULE}/version.Version=${CONTAINERD_VERSION} -X ${MODULE}/version.Package=${MODULE}"

cache_root=${BERTH_TEST_CACHE:-/var/cache/berth-test}
dest=${cache_root}/containerd/${CONTAINERD_VERSION}
bin=${dest}/bin
GO=${GO:-go}

log() { printf 'build-containerd: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# up_to_date: both binaries exist and report the pinned version.
up_to_date() {
    [[ -x ${bin}/containerd && -x ${bin}/containerd-shim-runc-v2 ]] || return 1
    local v
    v=$("${bin}/containerd" --version 2>/dev/null) || return 1
    [[ $v == "containerd ${MODULE} ${CONTAINERD_VERSION}"* ]] || return 1
    v=$("${bin}/containerd-shim-runc-v2" -v 2>/dev/null) || return 1
    grep -qF "Version:  ${CONTAINERD_VERSION}" <<<"$v" || return 1
}

if [[ ${BERTH_CONTAINERD_REBUILD:-0} != 1 ]] && up_to_date; then
    log "containerd ${CONTAINERD_VERSION} already built in ${bin}"
    printf '%s\n' "$bin"
    exit 0
fi

# shellcheck source=scripts/lib/go-toolchain.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/go-toolchain.sh"
go_toolchain_check "containerd ${CONTAINERD_VERSION}"

mkdir -p "$bin" || die "cannot create ${bin} (set BERTH_TEST_CACHE to a writable directory)"
exec 9>"${dest}/.lock"
flock 9
if [[ ${BERTH_CONTAINERD_REBUILD:-0} != 1 ]] && up_to_date; then
    log "containerd ${CONTAINERD_VERSION} was built by a concurrent run"
    printf '%s\n' "$bin"
    exit 0
fi
rm -rf "${dest}"/.build.*
tmp=$(mktemp -d "${dest}/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

export CGO_ENABLED=0 GO111MODULE=on
base_goflags=$(printf '%s\n' ${GOFLAGS:-} | grep -v '^-mod=' | tr '\n' ' ' || true)

# run_go LOGFILE ARGS...: run go, showing its output only when it fails.
run_go() {
    local logf=$1
    shift
    "$GO" "$@" >"$logf" 2>&1 && return 0
    sed 's/^/  | /' "$logf" >&2
    return 1
}

start=$SECONDS
# A throwaway module that requires only containerd, so the build list is containerd's own
# go.mod. `go install pkg@version` would also list the module's versions, which the proxy
# may refuse.
mod=${dest}/build-module
mkdir -p "$mod"
if [[ ! -f ${mod}/go.mod ]] || ! grep -qF "${MODULE} ${CONTAINERD_VERSION}" "${mod}/go.mod"; then
    log "fetching ${MODULE}@${CONTAINERD_VERSION} and its dependencies (go ${go_version}) ..."
    rm -f "${mod}/go.mod" "${mod}/go.sum"
    (cd "$mod" && run_go "${tmp}/init.log" mod init berth-containerd-build) || die "go mod init failed"
    (cd "$mod" && GOFLAGS="$base_goflags -mod=mod" \
        run_go "${tmp}/get.log" get "${MODULE}/cmd/containerd@${CONTAINERD_VERSION}" \
        "${MODULE}/cmd/containerd-shim-runc-v2@${CONTAINERD_VERSION}") ||
        die "fetching ${MODULE}@${CONTAINERD_VERSION} failed"
fi

log "building containerd ${CONTAINERD_VERSION} ..."
(cd "$mod" && GOFLAGS="$base_goflags -mod=mod" \
    run_go "${tmp}/containerd.log" build -trimpath -tags urfave_cli_no_docs -ldflags "$LDFLAGS" \
    -o "${tmp}/containerd" "${MODULE}/cmd/containerd") || die "building containerd failed"
log "building containerd-shim-runc-v2 ${CONTAINERD_VERSION} ..."
(cd "$mod" && GOFLAGS="$base_goflags -mod=mod" \
    run_go "${tmp}/shim.log" build -trimpath -tags "urfave_cli_no_docs no_grpc" -ldflags "$LDFLAGS" \
    -o "${tmp}/containerd-shim-runc-v2" "${MODULE}/cmd/containerd-shim-runc-v2") ||
    die "building containerd-shim-runc-v2 failed"

"${tmp}/containerd" --version >/dev/null 2>&1 || die "built containerd does not run"
mv -f "${tmp}/containerd" "${bin}/containerd"
mv -f "${tmp}/containerd-shim-runc-v2" "${bin}/containerd-shim-runc-v2"
up_to_date || die "installed binaries do not report version ${CONTAINERD_VERSION}"
log "built containerd and containerd-shim-runc-v2 ${CONTAINERD_VERSION} in $((SECONDS - start))s"
printf '%s\n' "$bin"
