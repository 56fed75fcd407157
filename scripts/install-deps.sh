#!/usr/bin/env bash
# Installs what berth needs on Debian 12, as root.
#   scripts/install-deps.sh run    runtime and build dependencies (runc, CNI plugins, protoc, ...)
#   scripts/install-deps.sh test   the above plus every test dependency (registry, skopeo, umoci,
#                                  busybox, compilers for the test images, ...)
# Already-installed packages make this a quick no-op: apt is only called for what is missing.
# The Rust toolchain (cargo >= 1.85) and Go (>= 1.26.2, for crictl/critest) are expected on
# PATH; Debian 12's own packages of both are too old.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-run}
run_packages=(
  runc                         # the OCI runtime
  containernetworking-plugins  # bridge, host-local, portmap, loopback in /usr/lib/cni
  iptables                     # used by the bridge (ipMasq) and portmap plugins
  iproute2                     # ip netns / ip link
  util-linux                   # mount, nsenter, unshare, ipcmk
  protobuf-compiler            # protoc, for the cri-api crate's build script
  pkg-config
  cmake                        # aws-lc-sys (TLS for registry pulls) may build with it
  ca-certificates
)
test_packages=(
  docker-registry              # the local registry on 127.0.0.1:5000
  skopeo umoci                 # build and push test images
  busybox                      # the test images' userland (dynamic, with its libraries)
  crun                         # the second runtime handler (tests/it/handlers.rs, critest with crun)
  curl jq
  prometheus                   # promtool checks /metrics in the tests (the package also brings a server: unused)
  gcc libc6-dev make           # the test images' static helpers
)

case "$mode" in
  run) wanted=("${run_packages[@]}") ;;
  test)
    wanted=("${run_packages[@]}" "${test_packages[@]}")
    if [[ -f tests/images/DEPS ]]; then
      while read -r pkg; do
        pkg=${pkg%%#*}; pkg=${pkg//[[:space:]]/}
        [[ -n $pkg ]] && wanted+=("$pkg")
      done < tests/images/DEPS
    fi
    ;;
  *) echo "usage: $0 run|test" >&2; exit 2 ;;
esac

missing=()
for pkg in "${wanted[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [[ $status == "install ok installed" ]] || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

for tool in cargo rustc; do
  command -v "$tool" >/dev/null || { echo "install-deps: $tool not found; install Rust >= 1.85 (rustup)" >&2; exit 1; }
done
if [[ $mode == test ]]; then
  command -v go >/dev/null || { echo "install-deps: go not found; Go >= 1.26.2 builds crictl and critest" >&2; exit 1; }
  rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy rustfmt >/dev/null 2>&1 || true
fi
echo "install-deps ($mode): ok" >&2
