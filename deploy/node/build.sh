#!/usr/bin/env bash
# Builds the node image: a Debian 12 root filesystem with systemd as init and berth as the
# container runtime, the way a kind node image carries containerd. No Docker daemon: the base
# comes from debootstrap, and the image boots with systemd-nspawn (deploy/node/test.sh).
#
#   deploy/node/build.sh [--out DIR] [--binaries DIR]
#
# --binaries takes berthd, berth-shim and berthctl from DIR instead of building them
# (tests/run.sh: its cargo step built the workspace already).
#
# DIR (default ${BERTH_TEST_CACHE:-/var/cache/berth-test}/node) holds two layers:
#   DIR/base    debootstrap of bookworm (systemd, dbus, runc, the CNI plugins, iptables,
#               iproute2, ca-certificates, procps, jq), from the Debian mirror the host's apt
#               sources name. Built once; DIR/base/.berth-node-base records the package list,
#               and a different list rebuilds it.
#   DIR/berth   what berth adds, as a directory to lay over base (an overlayfs lower layer,
#               or copied on top of it): berthd, berth-shim and berthctl built from this
#               checkout, crictl, critest, kubelet, berthd.service (enabled), /etc/crictl.yaml,
#               the CNI network, the critest gate scripts under /usr/local/share/berth, and
#               deploy/node/rootfs (berth-node-cgroups.service: the cgroup mounts writable).
#               Rebuilt on every run (seconds), without touching base.
# Prints the size of each layer and the time taken.
#
# Environment:
#   BERTH_TEST_CACHE     cache root (default /var/cache/berth-test)
#   CARGO_TARGET_DIR     where cargo puts the binaries (default: target/ of the checkout)
#   BERTH_NODE_MIRROR    Debian mirror (default: the first bookworm URI of the host's apt sources)
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
prog=build.sh
die() { echo "$prog: error: $*" >&2; exit 1; }
log() { echo "$prog: $*" >&2; }

out=${BERTH_TEST_CACHE:-/var/cache/berth-test}/node
binaries=
while (($#)); do
  case $1 in
    --out) out=${2:?--out DIR}; shift 2 ;;
    --binaries) binaries=${2:?--binaries DIR}; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
    *) die "unknown argument $1 (usage: $prog [--out DIR] [--binaries DIR])" ;;
  esac
done
[[ $(id -u) == 0 ]] || die "needs root (debootstrap)"

SUITE=bookworm
# What kind's node image has besides containerd, from Debian: systemd as init, D-Bus (runc's
# systemd cgroup driver talks to systemd over it), runc, the CNI plugins, iptables and
# iproute2 for CNI, ca-certificates, procps; jq for the critest gate run inside.
PACKAGES=systemd,systemd-sysv,dbus,runc,containernetworking-plugins,iptables,iproute2,ca-certificates,procps,jq
start=$SECONDS

# --- the host's own needs.
need=()
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v systemd-nspawn >/dev/null || need+=(systemd-container)
if ((${#need[@]})); then
  log "installing ${need[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null; } ||
    die "cannot install ${need[*]}"
fi

# mirror: the first URI the host's apt sources give for the suite (deb822 or one-line form).
mirror() {
  local f uri
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -f $f ]] || continue
    uri=$(awk -v s="$SUITE" '
      /^URIs:/ { u = $2 } /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == s) found = 1 }
      /^$/ { if (found && u != "") { print u; exit } u = ""; found = 0 }
      END { if (found && u != "") print u }' "$f" | head -n 1)
    [[ -n $uri ]] && { echo "$uri"; return; }
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -f $f ]] || continue
    uri=$(awk -v s="$SUITE" '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { if ($(i + 1) == s) { print $i; exit } } }' "$f")
    [[ -n $uri ]] && { echo "$uri"; return; }
  done
  return 1
}

# --- the Debian base, cached.
base=$out/base
stamp="$SUITE $PACKAGES"
if [[ -f $base/.berth-node-base && $(cat "$base/.berth-node-base") == "$stamp" ]]; then
  log "Debian base cached in $base"
else
  uri=${BERTH_NODE_MIRROR:-$(mirror)} || die "no $SUITE source in the host's apt sources (set BERTH_NODE_MIRROR)"
  log "debootstrap $SUITE from $uri into $base (a few minutes)"
  mkdir -p "$out"
  rm -rf "$base.tmp"
  t0=$SECONDS
  debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$base.tmp" "$uri" >"$out/debootstrap.log" 2>&1 ||
    { tail -n 20 "$out/debootstrap.log" >&2; die "debootstrap failed (log: $out/debootstrap.log)"; }
  # A node boots many times from this one base: no machine-id (systemd makes one per boot,
  # as for an image), no package caches.
  rm -f "$base.tmp/etc/machine-id" "$base.tmp/var/lib/dbus/machine-id"
  : >"$base.tmp/etc/machine-id"
  rm -rf "$base.tmp"/var/cache/apt/archives/*.deb "$base.tmp"/var/lib/apt/lists/*
  echo "$stamp" >"$base.tmp/.berth-node-base"
  rm -rf "$base"
  mv "$base.tmp" "$base"
  log "debootstrap took $((SECONDS - t0)) s"
fi

# --- berth and the test tools, built or cached.
if [[ -n $binaries ]]; then
  target=$binaries
  log "berthd, berth-shim, berthctl from $target"
else
  log "building berthd, berth-shim, berthctl"
  (cd "$repo" && nice -n 19 cargo build --quiet -p berthd -p berth-shim -p berthctl) || die "cargo build failed"
  target=${CARGO_TARGET_DIR:-$repo/target}/debug
fi
crictl_dir=$("$repo/scripts/build-cri-tools.sh" 2>/dev/null | tail -n 1) || die "scripts/build-cri-tools.sh failed"
kubelet=$("$repo/scripts/build-kubelet.sh" 2>/dev/null | tail -n 1) || die "scripts/build-kubelet.sh failed"
[[ -d $kubelet ]] && kubelet=$kubelet/kubelet
for b in "$target/berthd" "$target/berth-shim" "$target/berthctl" "$crictl_dir/crictl" "$crictl_dir/critest" "$kubelet"; do
  [[ -x $b ]] || die "$b is missing"
done

# --- the berth layer.
layer=$out/berth
rm -rf "$layer.tmp"
install -d "$layer.tmp/usr/local/bin" "$layer.tmp/etc/systemd/system/multi-user.target.wants" \
  "$layer.tmp/etc/berth/berth.d" "$layer.tmp/etc/cni/net.d" "$layer.tmp/usr/local/share/berth/conformance"
install -m 0755 "$target/berthd" "$target/berth-shim" "$target/berthctl" \
  "$crictl_dir/crictl" "$crictl_dir/critest" "$kubelet" "$layer.tmp/usr/local/bin/"
# The debug build's DWARF is most of berthd's size: the node keeps symbols, not debug info.
if command -v strip >/dev/null; then
  strip --strip-debug "$layer.tmp"/usr/local/bin/{berthd,berth-shim,berthctl}
fi
install -m 0644 "$repo/deploy/berthd.service" "$layer.tmp/etc/systemd/system/berthd.service"
ln -s ../berthd.service "$layer.tmp/etc/systemd/system/multi-user.target.wants/berthd.service"
# What a node container needs besides berth (deploy/node/rootfs): its cgroup mounts writable.
cp -a "$repo/deploy/node/rootfs/." "$layer.tmp/"
install -d "$layer.tmp/etc/systemd/system/berthd.service.wants"
for wants in multi-user.target.wants berthd.service.wants; do
  ln -s ../berth-node-cgroups.service "$layer.tmp/etc/systemd/system/$wants/berth-node-cgroups.service"
done
install -m 0644 "$repo/deploy/crictl.yaml" "$layer.tmp/etc/crictl.yaml"
install -m 0755 "$repo/tests/conformance/run-critest.sh" "$repo/tests/conformance/gate.sh" \
  "$layer.tmp/usr/local/share/berth/conformance/"
install -m 0644 "$repo/tests/conformance/known-failures.txt" "$layer.tmp/usr/local/share/berth/conformance/"
# The pod network: Debian's CNI plugins live in /usr/lib/cni. berth's default configuration
# looks there and in /opt/cni/bin.
cat >"$layer.tmp/etc/cni/net.d/10-berth-node.conflist" <<'JSON'
{"cniVersion": "1.0.0", "name": "berth-node", "plugins": [
  {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": true, "hairpinMode": true,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.88.0.0/16"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
  {"type": "portmap", "capabilities": {"portMappings": true}}]}
JSON
rm -rf "$layer"
mv "$layer.tmp" "$layer"

size() { du -sh --apparent-size "$1" | cut -f1; }
log "base $(size "$base"), berth layer $(size "$layer") in $out; $((SECONDS - start)) s"
echo "$out"
