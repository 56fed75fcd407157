#!/usr/bin/env bash
# Writes containerd-style hosts.toml files that make the local test registry a
# plain-HTTP pull mirror for the registries critest's images come from.
#
#   tests/images/mirror-hosts.sh <certs.d-dir> <registry-host:port>
#
# Creates <certs.d-dir>/<host>/hosts.toml for registry.k8s.io, k8s.gcr.io,
# gcr.io, public.ecr.aws and docker.io.  A mirror keeps the repository path
# and drops the host: registry.k8s.io/pause:3.9 is pulled from
# http://<registry-host:port>/v2/pause/manifests/3.9; build.sh pushes the
# images under exactly those paths.
set -euo pipefail

PROG=mirror-hosts.sh
if [ $# -ne 2 ]; then
  echo "usage: $PROG <certs.d-dir> <registry-host:port>" >&2
  exit 2
fi
DIR=$1
MIRROR=$2
case "$MIRROR" in
  */*|"") echo "$PROG: error: expected registry-host:port, got '$MIRROR'" >&2; exit 1 ;;
esac

# <directory name> <upstream server>
UPSTREAMS=(
  "registry.k8s.io https://registry.k8s.io"
  "k8s.gcr.io https://k8s.gcr.io"
  "gcr.io https://gcr.io"
  "public.ecr.aws https://public.ecr.aws"
  "docker.io https://registry-1.docker.io"
)

for entry in "${UPSTREAMS[@]}"; do
  read -r host server <<< "$entry"
  mkdir -p "$DIR/$host"
  cat > "$DIR/$host/hosts.toml.tmp" <<EOF
# Written by tests/images/mirror-hosts.sh: pull $host images from the local
# test registry over plain HTTP. The upstream ($server) is replaced by the
# local registry too, so a pull the mirror cannot serve fails instead of
# leaving this machine.
server = "http://$MIRROR"

[host."http://$MIRROR"]
  capabilities = ["pull", "resolve"]
EOF
  mv "$DIR/$host/hosts.toml.tmp" "$DIR/$host/hosts.toml"
done
echo "$PROG: wrote ${#UPSTREAMS[@]} hosts.toml files under $DIR (mirror http://$MIRROR)"
