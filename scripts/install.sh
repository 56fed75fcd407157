#!/usr/bin/env bash
# Installs berth for `make install` and `make run`, as root:
#   - berthd (release build) and the small berth-shim (scripts/build-shim.sh: profile shim,
#     static) into $PREFIX/bin, side by side: berthd runs the berth-shim beside it
#     (`runtime.shim_path` empty);
#   - berthctl (release build: image import/export, info) into $PREFIX/bin;
#   - crictl (cri-tools, built by scripts/build-cri-tools.sh with Go) into $PREFIX/bin;
#   - /etc/crictl.yaml pointing crictl at berth's socket ($BERTH_SOCKET, default
#     /run/berth/berth.sock). One that already names another endpoint is left alone (a
#     node may run another runtime): this says so, and how to reach berth anyway.
# PREFIX defaults to /usr/local; CRICTL_YAML to /etc/crictl.yaml.
set -euo pipefail
cd "$(dirname "$0")/.."
prefix=${PREFIX:-/usr/local}
bindir=$prefix/bin
target_dir=${CARGO_TARGET_DIR:-$PWD/target}
socket=${BERTH_SOCKET:-/run/berth/berth.sock}
crictl_yaml=${CRICTL_YAML:-/etc/crictl.yaml}

log() { printf 'install: %s\n' "$*" >&2; }

cargo build --release -p berthd -p berthctl
shim=$(scripts/build-shim.sh static | tail -n 1)
crictl_dir=$(scripts/build-cri-tools.sh | tail -n 1)

install -D -m 0755 "$target_dir/release/berthd" "$bindir/berthd"
install -D -m 0755 "$shim" "$bindir/berth-shim"
install -D -m 0755 "$target_dir/release/berthctl" "$bindir/berthctl"
install -D -m 0755 "$crictl_dir/crictl" "$bindir/crictl"
log "installed $bindir/berthd, $bindir/berth-shim ($(stat -c %s "$shim") bytes), $bindir/berthctl, $bindir/crictl"

endpoint=unix://$socket
want="runtime-endpoint: $endpoint
image-endpoint: $endpoint
timeout: 10"
current=
[[ -e $crictl_yaml ]] &&
  current=$(sed -n 's/^[[:space:]]*runtime-endpoint:[[:space:]]*//p' "$crictl_yaml" | tr -d "\"' ")
if [[ ! -e $crictl_yaml ]]; then
  printf '# Written by berth (scripts/install.sh): crictl talks to berthd.\n%s\n' "$want" \
    >"$crictl_yaml"
  log "wrote $crictl_yaml: crictl talks to $endpoint"
elif [[ $current == "$endpoint" ]]; then
  log "$crictl_yaml already points at $endpoint"
elif [[ -z $current ]]; then
  printf '%s\n' "$want" >>"$crictl_yaml"
  log "added berth's endpoints to $crictl_yaml (it named no runtime endpoint)"
else
  log "NOTE: $crictl_yaml points crictl at $current, not at berth; left as it is."
  log "      use: crictl --runtime-endpoint $endpoint --image-endpoint $endpoint ..."
  log "      or replace it with deploy/crictl.yaml"
fi
