# shellcheck shell=bash
# Shared by scripts/build-kubelet.sh and scripts/build-node-e2e.sh: the pinned Kubernetes
# release and the throwaway Go module that builds parts of it from the module proxy.
#
# k8s.io/kubernetes points every k8s.io/* staging module at ./staging in its go.mod, so
# `go install k8s.io/kubernetes/...@<v>` cannot work: a throwaway module requires it and
# replaces each staging module by its published v0.<minor>.<patch> version.

# The newest k8s.io/kubernetes release the module proxy serves here.
KUBERNETES_VERSION=v1.37.2
STAGING_VERSION=v0.${KUBERNETES_VERSION#v1.}
KUBERNETES_MINOR=${KUBERNETES_VERSION#v1.}
KUBERNETES_MINOR=${KUBERNETES_MINOR%%.*}
# -X flags that make the built binaries report the release (kubelet --version, the
# node e2e framework's own version).
KUBERNETES_VERSION_LDFLAGS="-X k8s.io/component-base/version.gitVersion=${KUBERNETES_VERSION} \
-X k8s.io/component-base/version.gitMajor=1 \
-X k8s.io/component-base/version.gitMinor=${KUBERNETES_MINOR}"

# k8s_module_init DIR MODULE: writes DIR/go.mod for module MODULE requiring k8s.io/kubernetes
# at the pinned release with every staging module replaced, and sets K8S_SRC to the release's
# source in the module cache. Needs $GO; uses log/die of the caller. Never lets the go command fetch another toolchain (only the module proxy is reachable).
k8s_module_init() {
    local dir=$1 module=$2 src
    K8S_SRC=
    export GOTOOLCHAIN=local GOFLAGS=-mod=mod
    log "downloading k8s.io/kubernetes ${KUBERNETES_VERSION}"
    src=$(cd "$dir" && "$GO" mod download -json "k8s.io/kubernetes@${KUBERNETES_VERSION}" |
        sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$/\1/p')
    [[ -n $src && -f $src/go.mod ]] || die "k8s.io/kubernetes@${KUBERNETES_VERSION} not downloaded"
    {
        printf 'module %s\n\ngo 1.26.0\n\nrequire k8s.io/kubernetes %s\n\n' "$module" "$KUBERNETES_VERSION"
        grep -E '=> \./staging/' "$src/go.mod" |
            awk -v v="$STAGING_VERSION" '{print "replace " $1 " => " $1 " " v}'
    } >"$dir/go.mod"
    K8S_SRC=$src
}
