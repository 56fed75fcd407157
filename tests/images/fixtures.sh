#!/usr/bin/env bash
# Pushes the special images the image-service tests pull to a local registry.
#
#   tests/images/fixtures.sh <registry-host:port> [--creds USER:PASSWORD]
#
# | repository:tag                   | what                                                   |
# |----------------------------------|--------------------------------------------------------|
# | berth-test/multiarch:latest      | OCI image index: linux/arm64/v8 first, then linux/amd64 |
# | berth-test/multiarch-docker:latest | the same two images as a Docker schema2 manifest list |
# | berth-test/small:latest          | one tiny gzip layer                                    |
# | berth-test/zstd:latest           | one zstd layer (OCI media type ...tar+zstd)            |
# | berth-test/uncompressed:latest   | one uncompressed layer (OCI media type ...tar)         |
# | berth-test/corrupt:latest        | one gzip layer of its own, for corrupt-blob.sh         |
# | berth-test/corrupt-tar:latest    | one uncompressed layer of its own, for corrupt-blob.sh --flip |
#
# Every image holds /etc/berth-test-image naming it, so every layer and image
# ID is distinct (corrupting one image's layer never touches another image).
# The multiarch images also hold /etc/berth-arch (amd64 or arm64) and Debian's
# busybox with its libraries (only the amd64 one can run; arm64 is never run).
# The config of every image sets os and architecture to match its platform.
#
# The per-platform manifests of the index and the list are pushed by digest
# only (no tag), the index and list are PUT with curl.  The uncompressed image
# is uploaded with curl too (skopeo always compresses for a registry).
#
# Images are built with umoci into
#   ${BERTH_TEST_CACHE:-/var/cache/berth-test}/fixtures/<hash of the inputs>
# With the same inputs and SOURCE_DATE_EPOCH, every digest is the same on
# every run.  Prints one `pushed <ref>@<digest>` line per reference, then
# `fixtures: N pushed to <registry>`.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PROG=fixtures.sh

die() { echo "$PROG: error: $*" >&2; exit 1; }
usage() { echo "usage: $PROG <registry-host:port> [--creds USER:PASSWORD]" >&2; exit 2; }

REGISTRY=""
CREDS=${BERTH_REGISTRY_CREDS:-}
while [ $# -gt 0 ]; do
  case "$1" in
    --creds) [ $# -ge 2 ] || usage; CREDS=$2; shift 2 ;;
    --creds=*) CREDS=${1#*=}; shift ;;
    -h|--help) usage ;;
    -*) usage ;;
    *) [ -z "$REGISTRY" ] || usage; REGISTRY=$1; shift ;;
  esac
done
[ -n "$REGISTRY" ] || usage
case "$REGISTRY" in
  */*) die "expected registry-host:port (e.g. 127.0.0.1:5001), got '$REGISTRY'" ;;
esac
if [ -n "$CREDS" ] && [[ "$CREDS" != *:* ]]; then
  die "--creds expects USER:PASSWORD"
fi

[ "$(id -u)" -eq 0 ] || die "must run as root (image files must be owned by uid 0)"
for tool in umoci skopeo curl jq flock sha256sum ldd gzip openssl; do
  command -v "$tool" >/dev/null || die "'$tool' not found (install the Debian packages listed in tests/images/DEPS)"
done
BUSYBOX=/bin/busybox
[ -x "$BUSYBOX" ] || die "$BUSYBOX not found: install Debian's 'busybox' package"

EPOCH=${SOURCE_DATE_EPOCH:-1704067200}
[[ "$EPOCH" =~ ^[0-9]+$ ]] || die "SOURCE_DATE_EPOCH must be a number of seconds, got '$EPOCH'"
CREATED=$(date -u -d "@$EPOCH" +%Y-%m-%dT%H:%M:%SZ)
CACHE_ROOT=${BERTH_TEST_CACHE:-/var/cache/berth-test}/fixtures

OCI_MANIFEST=application/vnd.oci.image.manifest.v1+json
OCI_INDEX=application/vnd.oci.image.index.v1+json
OCI_LAYER_TAR=application/vnd.oci.image.layer.v1.tar
OCI_LAYER_ZSTD=application/vnd.oci.image.layer.v1.tar+zstd
DOCKER_MANIFEST=application/vnd.docker.distribution.manifest.v2+json
DOCKER_LIST=application/vnd.docker.distribution.manifest.list.v2+json

shared_libs() {
  ldd "$1" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'
}

cache_key() {
  {
    echo "format 1"
    echo "epoch $EPOCH"
    sha256sum "$HERE/fixtures.sh" | cut -d' ' -f1
    # shellcheck disable=SC2046
    sha256sum "$BUSYBOX" $(shared_libs "$BUSYBOX")
    umoci --version
  } | sha256sum | cut -c1-16
}

# Deterministic pseudo-random bytes: AES-CTR of zeros under a key derived from $1.
prng() { # seed bytes
  local key
  key=$(printf '%s' "$1" | sha256sum | cut -c1-32)
  # openssl dies of SIGPIPE once head has enough; that is the expected end.
  { openssl enc -aes-128-ctr -nosalt -K "$key" -iv 00000000000000000000000000000000 \
      -in /dev/zero 2>/dev/null || true; } | head -c "$2"
}

# ---------------------------------------------------------------------------
# Build.
settle() { find "$1" -exec touch -h -d "@$EPOCH" {} +; }

with_busybox() { # rootfs
  local root=$1 lib
  install -d -m 0755 "$root"/{bin,etc,tmp}
  install -m 0755 "$BUSYBOX" "$root/bin/busybox"
  ln -s busybox "$root/bin/sh"
  ln -s busybox "$root/bin/cat"
  for lib in $(shared_libs "$BUSYBOX"); do
    [ -e "$root$lib" ] || install -D -m 0755 "$(readlink -f "$lib")" "$root$lib"
  done
}

populate_amd64() { with_busybox "$1"; echo amd64 > "$1/etc/berth-arch"; }
populate_arm64() { with_busybox "$1"; echo arm64 > "$1/etc/berth-arch"; }
populate_small() { install -d -m 0755 "$1/etc"; echo "hello from berth-test/small" > "$1/hello.txt"; }
populate_zstd() {
  install -d -m 0755 "$1/etc" "$1/data"
  # Compressible text, so the zstd layer is much smaller than the tar.
  seq 1 20000 > "$1/data/numbers.txt"
}
populate_uncompressed() { install -d -m 0755 "$1/etc" "$1/data"; seq 1 2000 > "$1/data/numbers.txt"; }
populate_corrupt() { install -d -m 0755 "$1/etc" "$1/data"; prng corrupt 32768 > "$1/data/payload"; }
# One large file: the middle of the uncompressed tar lies inside its data, so
# corrupt-blob.sh --flip keeps the tar well-formed and only the digest is wrong.
populate_corrupt_tar() { install -d -m 0755 "$1/etc" "$1/data"; prng corrupt-tar 65536 > "$1/data/payload"; }

# image <tag> <name for the marker> <populate function> <arch> [umoci config flags...]
image() {
  local tag=$1 name=$2 populate=$3 arch=$4 bundle
  shift 4
  bundle=$WORK/$tag
  umoci new --image "$OCI:$tag"
  umoci unpack --image "$OCI:$tag" "$bundle" >/dev/null
  "$populate" "$bundle/rootfs"
  install -d -m 0755 "$bundle/rootfs/etc"
  printf '%s\n' "$name" > "$bundle/rootfs/etc/berth-test-image"
  settle "$bundle/rootfs"
  umoci repack --history.created "$CREATED" \
    --history.created_by "tests/images/fixtures.sh: $name" \
    --image "$OCI:$tag" "$bundle"
  rm -rf "$bundle"
  umoci config --no-history --created "$CREATED" --image "$OCI:$tag" \
    --os linux --architecture "$arch" "$@"
}

build_fixtures() {
  mkdir -p "$WORK"
  umoci init --layout "$OCI"
  image amd64 "berth-test/multiarch linux/amd64" populate_amd64 amd64 --config.cmd sh
  image arm64 "berth-test/multiarch linux/arm64" populate_arm64 arm64 --config.cmd sh
  image small berth-test/small populate_small amd64 --config.cmd /hello.txt
  image zstd berth-test/zstd populate_zstd amd64
  image uncompressed berth-test/uncompressed populate_uncompressed amd64
  image corrupt berth-test/corrupt populate_corrupt amd64
  image corrupt-tar berth-test/corrupt-tar populate_corrupt_tar amd64
  umoci gc --layout "$OCI"
  rm -rf "$WORK"
}

KEY=$(cache_key)
CACHE_DIR=$CACHE_ROOT/$KEY
if [ ! -f "$CACHE_DIR/.complete" ]; then
  mkdir -p "$CACHE_ROOT"
  exec 9>"$CACHE_ROOT/.lock"
  flock 9
  if [ ! -f "$CACHE_DIR/.complete" ]; then
    rm -rf "$CACHE_ROOT"/.build-* "$CACHE_DIR"
    STAGE=$CACHE_ROOT/.build-$KEY.$$
    OCI=$STAGE/oci
    WORK=$STAGE/work
    trap 'rm -rf "$STAGE"' EXIT
    echo "$PROG: building fixtures into $CACHE_DIR"
    umask 022
    build_fixtures
    touch "$STAGE/.complete"
    mv "$STAGE" "$CACHE_DIR"
    trap - EXIT
    find "$CACHE_ROOT" -mindepth 1 -maxdepth 1 -type d -regex '.*/[0-9a-f]\{16\}' -printf '%T@ %p\n' |
      sort -rn | tail -n +4 | cut -d' ' -f2- | xargs -r rm -rf
  fi
  flock -u 9
  exec 9>&-
fi
touch "$CACHE_DIR"
OCI=$CACHE_DIR/oci

# ---------------------------------------------------------------------------
# Push.
code=$(curl -s -o /dev/null -w '%{http_code}' "http://$REGISTRY/v2/" || true)
case "$code" in
  200|401) ;;
  *) die "no registry answers at http://$REGISTRY/v2/ (HTTP code '$code'); start one with tests/images/registry.sh start <dir>" ;;
esac

SKOPEO=(skopeo --insecure-policy)
SKOPEO_DEST=(--dest-tls-verify=false)
CURL=(curl -sS --fail-with-body --max-time 60)
if [ -n "$CREDS" ]; then
  SKOPEO_DEST+=(--dest-creds "$CREDS")
  CURL+=(-u "$CREDS")
fi

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
PUSHED=0

pushed() { echo "pushed $REGISTRY/$1@$2"; PUSHED=$((PUSHED + 1)); }
sha256_of() { echo "sha256:$(sha256sum "$1" | cut -d' ' -f1)"; }
oci_blob() { echo "$OCI/blobs/${1/://}"; }
oci_manifest_digest() { # tag
  jq -r --arg t "$1" '.manifests[] | select(.annotations."org.opencontainers.image.ref.name" == $t) | .digest' "$OCI/index.json"
}

# skopeo_push <source> <repo> <tag or @digest> [skopeo flags...]: prints the pushed digest
skopeo_push() {
  local src=$1 repo=$2 ref=$3 dest
  shift 3
  case "$ref" in
    @*) dest=docker://$REGISTRY/$repo$ref ;;
    *) dest=docker://$REGISTRY/$repo:$ref ;;
  esac
  "${SKOPEO[@]}" copy --quiet --retry-times 2 "${SKOPEO_DEST[@]}" "$@" \
    --digestfile "$TMP/digest" "$src" "$dest" > "$TMP/skopeo.log" 2>&1 ||
    die "skopeo copy $src $dest failed: $(cat "$TMP/skopeo.log")"
  cat "$TMP/digest"
}

# upload_blob <repo> <file>: monolithic upload unless the registry has it.
upload_blob() {
  local repo=$1 file=$2 digest location sep
  digest=$(sha256_of "$file")
  if "${CURL[@]}" -o /dev/null -I "http://$REGISTRY/v2/$repo/blobs/$digest" 2>/dev/null; then
    return 0
  fi
  location=$("${CURL[@]}" -o /dev/null -D - -X POST "http://$REGISTRY/v2/$repo/blobs/uploads/" |
    awk 'tolower($1) == "location:" { sub(/\r$/, "", $2); print $2 }')
  [ -n "$location" ] || die "registry gave no upload location for $repo"
  case "$location" in
    /*) location=http://$REGISTRY$location ;;
  esac
  sep='?'
  [[ "$location" == *\?* ]] && sep='&'
  "${CURL[@]}" -o /dev/null -X PUT -H 'Content-Type: application/octet-stream' \
    --data-binary "@$file" "$location${sep}digest=$digest" ||
    die "uploading $digest to $repo failed"
}

# put_manifest <repo> <reference> <media type> <file>: prints the digest, checked
# against the registry's Docker-Content-Digest.
put_manifest() {
  local repo=$1 ref=$2 type=$3 file=$4 digest served
  digest=$(sha256_of "$file")
  served=$("${CURL[@]}" -o /dev/null -D - -X PUT -H "Content-Type: $type" \
      --data-binary "@$file" "http://$REGISTRY/v2/$repo/manifests/$ref" |
    awk 'tolower($1) == "docker-content-digest:" { sub(/\r$/, "", $2); print $2 }') ||
    die "PUT manifest $repo:$ref failed"
  [ "$served" = "$digest" ] || die "registry stored $repo:$ref as '$served', expected $digest"
  echo "$digest"
}

# (a) OCI index: each platform manifest by digest, then the index.
repo=berth-test/multiarch
for arch in arm64 amd64; do
  d=$(oci_manifest_digest "$arch")
  got=$(skopeo_push "oci:$OCI:$arch" "$repo" "@$d")
  [ "$got" = "$d" ] || die "pushing $arch changed its digest ($d -> $got)"
  pushed "$repo" "$d"
done
platform() { # arch -> JSON platform object
  case "$1" in
    arm64) echo '{"architecture":"arm64","os":"linux","variant":"v8"}' ;;
    amd64) echo '{"architecture":"amd64","os":"linux"}' ;;
  esac
}
entry() { # media type, digest, size, arch
  jq -cn --arg t "$1" --arg d "$2" --argjson s "$3" --argjson p "$(platform "$4")" \
    '{mediaType: $t, digest: $d, size: $s, platform: $p}'
}
entries=()
for arch in arm64 amd64; do
  d=$(oci_manifest_digest "$arch")
  entries+=("$(entry "$OCI_MANIFEST" "$d" "$(stat -c %s "$(oci_blob "$d")")" "$arch")")
done
printf '%s\n' "${entries[@]}" |
  jq -cs --arg t "$OCI_INDEX" '{schemaVersion: 2, mediaType: $t, manifests: .}' | tr -d '\n' > "$TMP/index.json"
d=$(put_manifest "$repo" latest "$OCI_INDEX" "$TMP/index.json")
pushed "$repo:latest" "$d"

# Docker schema2 manifest list of the same images, converted by skopeo.
repo=berth-test/multiarch-docker
entries=()
for arch in arm64 amd64; do
  rm -rf "$TMP/v2s2"
  "${SKOPEO[@]}" copy --quiet --format v2s2 "oci:$OCI:$arch" "dir:$TMP/v2s2" > "$TMP/skopeo.log" 2>&1 ||
    die "converting $arch to Docker schema2 failed: $(cat "$TMP/skopeo.log")"
  [ "$(jq -r .mediaType "$TMP/v2s2/manifest.json")" = "$DOCKER_MANIFEST" ] ||
    die "skopeo did not write a Docker schema2 manifest for $arch"
  d=$(sha256_of "$TMP/v2s2/manifest.json")
  got=$(skopeo_push "dir:$TMP/v2s2" "$repo" "@$d")
  [ "$got" = "$d" ] || die "pushing the schema2 $arch changed its digest ($d -> $got)"
  pushed "$repo" "$d"
  entries+=("$(entry "$DOCKER_MANIFEST" "$d" "$(stat -c %s "$TMP/v2s2/manifest.json")" "$arch")")
done
rm -rf "$TMP/v2s2"
printf '%s\n' "${entries[@]}" |
  jq -cs --arg t "$DOCKER_LIST" '{schemaVersion: 2, mediaType: $t, manifests: .}' | tr -d '\n' > "$TMP/list.json"
d=$(put_manifest "$repo" latest "$DOCKER_LIST" "$TMP/list.json")
pushed "$repo:latest" "$d"

# (b) small, zstd, uncompressed.
d=$(skopeo_push "oci:$OCI:small" berth-test/small latest)
pushed berth-test/small:latest "$d"

d=$(skopeo_push "oci:$OCI:zstd" berth-test/zstd latest --dest-compress-format zstd)
"${SKOPEO[@]}" inspect --raw --tls-verify=false ${CREDS:+--creds "$CREDS"} \
  "docker://$REGISTRY/berth-test/zstd@$d" > "$TMP/zstd.json"
[ "$(jq -r '.layers[0].mediaType' "$TMP/zstd.json")" = "$OCI_LAYER_ZSTD" ] ||
  die "berth-test/zstd was pushed without a zstd layer: $(cat "$TMP/zstd.json")"
pushed berth-test/zstd:latest "$d"

# Uncompressed: the umoci image with its gzip layer replaced by the tar itself.
# The config's diff_ids already name the tar, so the config stays as it is.
upload_uncompressed() { # tag repo
  local tag=$1 repo=$2 m layer config
  m=$(oci_blob "$(oci_manifest_digest "$tag")")
  [ "$(jq '.layers | length' "$m")" -eq 1 ] || die "$tag must have exactly one layer"
  layer=$(jq -r '.layers[0].digest' "$m")
  config=$(jq -r '.config.digest' "$m")
  gzip -dc < "$(oci_blob "$layer")" > "$TMP/layer.tar"
  [ "$(sha256_of "$TMP/layer.tar")" = "$(jq -r '.rootfs.diff_ids[0]' "$(oci_blob "$config")")" ] ||
    die "$tag: the decompressed layer does not match the config's diff_id"
  upload_blob "$repo" "$TMP/layer.tar"
  upload_blob "$repo" "$(oci_blob "$config")"
  jq -c --arg t "$OCI_LAYER_TAR" --arg d "$(sha256_of "$TMP/layer.tar")" \
    --argjson s "$(stat -c %s "$TMP/layer.tar")" \
    '.layers[0] = {mediaType: $t, digest: $d, size: $s}' "$m" | tr -d '\n' > "$TMP/manifest.json"
  rm -f "$TMP/layer.tar"
  put_manifest "$repo" latest "$OCI_MANIFEST" "$TMP/manifest.json"
}
d=$(upload_uncompressed uncompressed berth-test/uncompressed)
pushed berth-test/uncompressed:latest "$d"

# (c) images to corrupt (tests/images/corrupt-blob.sh).
d=$(skopeo_push "oci:$OCI:corrupt" berth-test/corrupt latest)
pushed berth-test/corrupt:latest "$d"
d=$(upload_uncompressed corrupt-tar berth-test/corrupt-tar)
pushed berth-test/corrupt-tar:latest "$d"

echo "fixtures: $PUSHED pushed to $REGISTRY (cache $CACHE_DIR)"
