# shellcheck shell=bash
# Shared by the scripts that build Go tools from the module proxy (build-cri-tools.sh,
# build-containerd.sh).

# go_toolchain_check WHAT: $GO exists and is at least $GO_MIN_VERSION, else die (the caller's)
# naming WHAT as the one that needs it. Sets go_version and GOTOOLCHAIN=local: the go command
# must never fetch another toolchain, only the module proxy is reachable.
go_toolchain_check() {
    local what=$1
    command -v "$GO" >/dev/null 2>&1 ||
        die "Go not found ('$GO'); install Go >= ${GO_MIN_VERSION} (https://go.dev/dl/) or set GO=/path/to/go"
    export GOTOOLCHAIN=local
    go_version=$("$GO" env GOVERSION 2>/dev/null) || die "'$GO env GOVERSION' failed; is '$GO' a working Go installation?"
    go_version=${go_version#go}
    version_ge "$go_version" "$GO_MIN_VERSION" ||
        die "Go ${go_version} is too old: ${what} needs Go >= ${GO_MIN_VERSION}"
}

version_ge() { # version_ge A B: A >= B (dotted numeric; pre-release suffixes ignored)
    local IFS=. i
    local -a a b
    read -r -a a <<<"${1%%[!0-9.]*}"
    read -r -a b <<<"${2%%[!0-9.]*}"
    for i in 0 1 2; do
        ((10#${a[i]:-0} > 10#${b[i]:-0})) && return 0
        ((10#${a[i]:-0} < 10#${b[i]:-0})) && return 1
    done
    return 0
}
