#!/usr/bin/env bash
# Build crictl and critest (kubernetes-sigs/cri-tools) from the Go module proxy.
#
#   bin=$(scripts/build-cri-tools.sh | tail -1)
#   "$bin/crictl" --version; "$bin/critest" -version
#
# Output: ${BERTH_TEST_CACHE:-/var/cache/berth-test}/cri-tools/<version>/bin/{crictl,critest}
# The bin directory is printed as the last line on stdout; progress goes to stderr.
#
# If both binaries already exist and report the pinned version, nothing is rebuilt.
# Binaries are built under temporary names and renamed into place, so an interrupted
# build never leaves a partial binary behind. Concurrent runs serialise on a lock file.
#
# Environment:
#   BERTH_TEST_CACHE   cache root (default /var/cache/berth-test)
#   GO                 go command to use (default: go)
#   BERTH_CRI_TOOLS_REBUILD=1   rebuild even if the binaries are up to date
set -euo pipefail

# Pinned cri-tools release. v1.36.0 is the newest release the Go module proxy we can
# reach will serve: v1.37.0 (and v1.35.0) are refused with 403 there. When changing this,
# re-check the image list and spec inventory critest uses (tests/conformance/README.md).
CRI_TOOLS_VERSION=v1.36.0
# cri-tools v1.36.0's go.mod declares `go 1.26.2`.
GO_MIN_VERSION=1.26.2

CRI_TOOLS_MODULE=sigs.k8s.io/cri-tools
VERSION_LDFLAGS="-X ${CRI_TOOLS_MODULE}/pkg/version.Version=${CRI_TOOLS_VERSION}"

cache_root=${BERTH_TEST_CACHE:-/var/cache/berth-test}
dest=${cache_root}/cri-tools/${CRI_TOOLS_VERSION}
bin=${dest}/bin
GO=${GO:-go}

log() { printf 'build-cri-tools: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# up_to_date: both binaries exist and report the pinned version.
up_to_date() {
    [[ -x ${bin}/crictl && -x ${bin}/critest ]] || return 1
    local v
    v=$("${bin}/crictl" --version 2>/dev/null) || return 1
    [[ $v == "crictl version ${CRI_TOOLS_VERSION}" ]] || return 1
    # critest is a Go test binary; -version prints "critest version: <v>" and returns.
    v=$("${bin}/critest" -version 2>/dev/null) || return 1
    grep -qxF "critest version: ${CRI_TOOLS_VERSION}" <<<"$v" || return 1
}

if [[ ${BERTH_CRI_TOOLS_REBUILD:-0} != 1 ]] && up_to_date; then
    log "crictl and critest ${CRI_TOOLS_VERSION} already built in ${bin}"
    printf '%s\n' "$bin"
    exit 0
fi

# --- Go toolchain checks ---------------------------------------------------------
# shellcheck source=scripts/lib/go-toolchain.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/go-toolchain.sh"
go_toolchain_check "cri-tools ${CRI_TOOLS_VERSION}"

mkdir -p "$bin" || die "cannot create ${bin} (set BERTH_TEST_CACHE to a writable directory)"

# Serialise concurrent builds; the second one finds the binaries up to date.
exec 9>"${dest}/.lock"
if command -v flock >/dev/null 2>&1; then
    flock 9
    if [[ ${BERTH_CRI_TOOLS_REBUILD:-0} != 1 ]] && up_to_date; then
        log "crictl and critest ${CRI_TOOLS_VERSION} were built by a concurrent run"
        printf '%s\n' "$bin"
        exit 0
    fi
fi

# Temporary build outputs from interrupted runs (we hold the lock, so none is in use).
rm -rf "${dest}"/.build.*
tmp=$(mktemp -d "${dest}/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

export CGO_ENABLED=0
export GO111MODULE=on
# Keep caller-provided flags (e.g. -buildvcs=false) but drop any -mod=... setting;
# it is set explicitly below where needed.
base_goflags=$(printf '%s\n' ${GOFLAGS:-} | grep -v '^-mod=' | tr '\n' ' ' || true)

# run_go LOGFILE ARGS...: run go; if it fails because the checksum database cannot be
# reached, retry once with GOSUMDB=off. (Normally the database is reached through the
# module proxy, which serves /sumdb/sum.golang.org.)
run_go() {
    local logf=$1
    shift
    if "$GO" "$@" >"$logf" 2>&1; then
        return 0
    fi
    # Only a network failure talking to the checksum database triggers the retry;
    # a checksum mismatch ("SECURITY ERROR") never does.
    if [[ ${GOSUMDB:-} != off ]] && ! grep -q 'SECURITY ERROR' "$logf" &&
        grep -E 'sum\.golang\.org|sumdb' "$logf" | grep -qiE 'dial|lookup|connect|timeout|refused|unreachable|40[34]|410|50[0-9]'; then
        log "checksum database unreachable; retrying with GOSUMDB=off"
        GOSUMDB=off "$GO" "$@" >"$logf" 2>&1 && return 0
    fi
    sed 's/^/  | /' "$logf" >&2
    return 1
}

start=$SECONDS

# --- scratch module ------------------------------------------------------------------
# Both tools are built from a throwaway module that requires only cri-tools, so the build
# list is exactly cri-tools' own go.mod (what `go install sigs.k8s.io/cri-tools/cmd/crictl@V`
# would use). `go install pkg@version` itself cannot be used: it also lists all versions of
# the module to look for deprecations, and the proxy refuses that list (403).
# critest is the test binary of cmd/critest, which `go install` could not build anyway;
# `go get -t` adds the test-only dependencies (ginkgo, gomega).
mod=${dest}/build-module
mkdir -p "$mod"
if [[ ! -f ${mod}/go.mod ]] || ! grep -qF "${CRI_TOOLS_MODULE} ${CRI_TOOLS_VERSION}" "${mod}/go.mod"; then
    log "fetching ${CRI_TOOLS_MODULE}@${CRI_TOOLS_VERSION} and its dependencies (go ${go_version}) ..."
    rm -f "${mod}/go.mod" "${mod}/go.sum"
    (cd "$mod" && run_go "${tmp}/init.log" mod init berth-cri-tools-build) || die "go mod init failed"
    (cd "$mod" && GOFLAGS="$base_goflags -mod=mod" \
        run_go "${tmp}/get.log" get -t "${CRI_TOOLS_MODULE}/cmd/critest@${CRI_TOOLS_VERSION}") ||
        die "fetching ${CRI_TOOLS_MODULE}@${CRI_TOOLS_VERSION} failed"
fi

log "building crictl ${CRI_TOOLS_VERSION} ..."
(cd "$mod" && GOFLAGS="$base_goflags -mod=mod" \
    run_go "${tmp}/crictl.log" build -trimpath -ldflags "$VERSION_LDFLAGS" \
    -o "${tmp}/crictl" "${CRI_TOOLS_MODULE}/cmd/crictl") ||
    die "building crictl failed"

log "building critest ${CRI_TOOLS_VERSION} ..."
(cd "$mod" && GOFLAGS="$base_goflags -mod=mod" \
    run_go "${tmp}/critest.log" test -c -trimpath -ldflags "$VERSION_LDFLAGS" \
    -o "${tmp}/critest" "${CRI_TOOLS_MODULE}/cmd/critest") ||
    die "building critest failed"

# --- install atomically --------------------------------------------------------------
"${tmp}/crictl" --version >/dev/null 2>&1 || die "built crictl does not run"
"${tmp}/critest" -version >/dev/null 2>&1 || die "built critest does not run"
# $tmp is inside $dest, i.e. on the same filesystem as $bin: mv is a rename(2).
mv -f "${tmp}/crictl" "${bin}/crictl"
mv -f "${tmp}/critest" "${bin}/critest"

up_to_date || die "installed binaries do not report version ${CRI_TOOLS_VERSION}"
log "built crictl and critest ${CRI_TOOLS_VERSION} in $((SECONDS - start))s"
printf '%s\n' "$bin"
