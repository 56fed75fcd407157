#!/usr/bin/env bash
# Build kubelet from the Go module proxy, for the kubelet test (tests/kubelet/run.sh).
#
#   kubelet=$(scripts/build-kubelet.sh | tail -1)
#   "$kubelet" --version
#
# Output: ${BERTH_TEST_CACHE:-/var/cache/berth-test}/kubelet/<version>/kubelet; its path is the
# last line on stdout, progress goes to stderr. Nothing is rebuilt when the binary exists and
# reports the pinned version. The binary is built under a temporary name and renamed into
# place; concurrent runs serialise on a lock file.
#
# The release and the throwaway module that builds it: scripts/lib/k8s-module.sh.
#
# Environment:
#   BERTH_TEST_CACHE   cache root (default /var/cache/berth-test)
#   GO                 go command (default: go)
set -euo pipefail
# shellcheck source=lib/k8s-module.sh
. "$(dirname "$0")/lib/k8s-module.sh"

cache_root=${BERTH_TEST_CACHE:-/var/cache/berth-test}
dest=${cache_root}/kubelet/${KUBERNETES_VERSION}
kubelet=${dest}/kubelet
GO=${GO:-go}

log() { printf 'build-kubelet: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

up_to_date() {
    [[ -x $kubelet ]] && [[ $("$kubelet" --version 2>/dev/null) == "Kubernetes ${KUBERNETES_VERSION}" ]]
}

if up_to_date; then
    log "kubelet ${KUBERNETES_VERSION} already built: ${kubelet}"
    printf '%s\n' "$kubelet"
    exit 0
fi

command -v "$GO" >/dev/null 2>&1 || die "Go not found ('$GO')"
mkdir -p "$dest"
exec 9>"${dest}/.lock"
flock 9
if up_to_date; then
    printf '%s\n' "$kubelet"
    exit 0
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/berth-kubelet-build.XXXXXX")
trap 'rm -rf "$work"' EXIT
started=$(date +%s)
k8s_module_init "$work" berthkubeletbuild
cat > "$work/tools.go" <<'GO'
//go:build tools

package tools

import _ "k8s.io/kubernetes/cmd/kubelet"
GO
log "resolving modules"
(cd "$work" && "$GO" mod tidy >&2)
log "building kubelet (about 10 minutes on 2 cores)"
(cd "$work" && "$GO" build -trimpath -ldflags "-s -w ${KUBERNETES_VERSION_LDFLAGS}" \
    -o "${kubelet}.tmp" k8s.io/kubernetes/cmd/kubelet)
mv "${kubelet}.tmp" "$kubelet"
up_to_date || die "built kubelet does not report ${KUBERNETES_VERSION}: $("$kubelet" --version 2>&1)"
log "built ${kubelet} in $(($(date +%s) - started)) s"
printf '%s\n' "$kubelet"
