#!/usr/bin/env bash
# Build Kubernetes' node conformance suite from the Go module proxy, for tests/node-e2e/run.sh.
#
#   dir=$(scripts/build-node-e2e.sh | tail -1)
#   ls "$dir"   # e2e_node.test ginkgo agnhost kubelet
#
# Output: ${BERTH_TEST_CACHE:-/var/cache/berth-test}/node-e2e/<version>/ with
#   e2e_node.test  the suite (k8s.io/kubernetes/test/e2e_node compiled with `go test -c`);
#   ginkgo         the ginkgo CLI of the suite's own ginkgo version (parallel runs);
#   agnhost        the static agnhost binary the agnhost test image is built from, with
#   localhost.crt, localhost.key  the release's test certificate the image carries
#                  (lifecycle hooks over HTTPS); tests/images/build.sh --node-e2e DIR;
#   kubelet        scripts/build-kubelet.sh's kubelet, linked beside the suite (the framework
#                  looks for it there).
# Its path is the last line on stdout; progress goes to stderr. Nothing is rebuilt when every
# binary exists and the stamp names the pinned release. Binaries are built under temporary
# names and renamed into place; concurrent runs serialise on a lock file. About 6 minutes on
# 2 cores with a warm Go build cache (3.6 GB peak memory while linking e2e_node.test).
#
# Environment:
#   BERTH_TEST_CACHE   cache root (default /var/cache/berth-test)
#   GO                 go command (default: go)
set -euo pipefail
cd "$(dirname "$0")"
scripts=$PWD
# shellcheck source=lib/k8s-module.sh
. lib/k8s-module.sh

cache_root=${BERTH_TEST_CACHE:-/var/cache/berth-test}
dest=${cache_root}/node-e2e/${KUBERNETES_VERSION}
GO=${GO:-go}
BINARIES=(e2e_node.test ginkgo agnhost kubelet)
FILES=(localhost.crt localhost.key)

log() { printf 'build-node-e2e: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

up_to_date() {
    local b
    for b in "${BINARIES[@]}"; do [[ -x $dest/$b ]] || return 1; done
    for b in "${FILES[@]}"; do [[ -s $dest/$b ]] || return 1; done
    [[ $(cat "$dest/.stamp" 2>/dev/null) == "$KUBERNETES_VERSION" ]]
}

if up_to_date; then
    log "node e2e ${KUBERNETES_VERSION} already built: ${dest}"
    printf '%s\n' "$dest"
    exit 0
fi

command -v "$GO" >/dev/null 2>&1 || die "Go not found ('$GO')"
kubelet=$("$scripts/build-kubelet.sh" | tail -n 1)
mkdir -p "$dest"
exec 9>"${dest}/.lock"
flock 9
if up_to_date; then
    printf '%s\n' "$dest"
    exit 0
fi
rm -f "$dest/.stamp"

work=$(mktemp -d "${TMPDIR:-/tmp}/berth-node-e2e-build.XXXXXX")
trap 'rm -rf "$work" "$dest"/*.tmp' EXIT
started=$(date +%s)
k8s_module_init "$work" berthnodee2ebuild
log "resolving modules (with the suite's test-only dependencies)"
# -t brings the test-only dependencies (ginkgo, gomega, kubectl, ...). No `go mod tidy`
# afterwards: it would drop the test dependencies of dependencies.
(cd "$work" && "$GO" get -t "k8s.io/kubernetes/test/e2e_node@${KUBERNETES_VERSION}" >&2)

# -trimpath like build-kubelet.sh, so that the packages both share come from the build cache.
log "building e2e_node.test"
(cd "$work" && "$GO" test -c -vet=off -trimpath -ldflags "-s -w ${KUBERNETES_VERSION_LDFLAGS}" \
    -o "$dest/e2e_node.test.tmp" k8s.io/kubernetes/test/e2e_node)
log "building ginkgo"
(cd "$work" && "$GO" build -trimpath -o "$dest/ginkgo.tmp" github.com/onsi/ginkgo/v2/ginkgo)
log "building agnhost"
(cd "$work" && CGO_ENABLED=0 "$GO" build -trimpath -ldflags "-s -w" \
    -o "$dest/agnhost.tmp" k8s.io/kubernetes/test/images/agnhost)
for b in e2e_node.test ginkgo agnhost; do mv "$dest/$b.tmp" "$dest/$b"; done
for b in "${FILES[@]}"; do install -m 0644 "$K8S_SRC/test/images/agnhost/porter/$b" "$dest/$b"; done
ln -f "$kubelet" "$dest/kubelet" 2>/dev/null || cp "$kubelet" "$dest/kubelet"
printf '%s\n' "$KUBERNETES_VERSION" >"$dest/.stamp"
log "built ${dest} in $(($(date +%s) - started)) s"
printf '%s\n' "$dest"
