#!/usr/bin/env bash
# Corrupts one layer blob of an image in a local test registry's storage, so
# the registry serves bytes whose digest does not match the manifest.
#
#   tests/images/corrupt-blob.sh [--layer N] [--flip] <registry-workdir> <repo:tag>
#
# <registry-workdir> is the directory given to `registry.sh start`; the blob is
# <workdir>/storage/docker/registry/v2/blobs/sha256/<xx>/<hex>/data.  The tag
# must name a single-platform manifest (OCI or Docker schema2).
#   default   the whole blob is overwritten with the same number of bytes of
#             garbage (the registry's recorded size stays right; the content,
#             and so its gzip/zstd framing, is wrong from the first byte)
#   --flip    only 16 bytes in the middle of the blob are inverted: for an
#             uncompressed layer holding one large file (berth-test/corrupt-tar)
#             the tar stays well-formed and only the digest check can notice
#   --layer N the N-th layer (0-based, default 0)
# Prints `corrupted <repo>:<tag> layer <N> <expected digest> -> <actual digest> (<size> bytes)`.
#
# Blobs are shared between repositories of one registry: corrupt only images
# whose layers are their own (fixtures.sh gives every image its own layer).
set -euo pipefail

PROG=corrupt-blob.sh
die() { echo "$PROG: error: $*" >&2; exit 1; }
usage() { echo "usage: $PROG [--layer N] [--flip] <registry-workdir> <repo:tag>" >&2; exit 2; }

LAYER=0
MODE=garbage
ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --layer) [ $# -ge 2 ] || usage; LAYER=$2; shift 2 ;;
    --flip) MODE=flip; shift ;;
    -*) usage ;;
    *) ARGS+=("$1"); shift ;;
  esac
done
[ ${#ARGS[@]} -eq 2 ] || usage
[[ "$LAYER" =~ ^[0-9]+$ ]] || die "--layer expects a number"
WORKDIR=${ARGS[0]}
REF=${ARGS[1]}
[[ "$REF" == *:* && "$REF" != *@* ]] || die "expected <repo:tag>, got '$REF'"
REPO=${REF%:*}
TAG=${REF##*:}
V2=$WORKDIR/storage/docker/registry/v2
[ -d "$V2" ] || die "$V2 does not exist (not a registry.sh workdir, or nothing pushed yet)"
command -v jq >/dev/null || die "jq not found"

blob_path() { # sha256:<hex>
  local hex=${1#sha256:}
  [[ "$hex" =~ ^[0-9a-f]{64}$ ]] || die "not a sha256 digest: $1"
  echo "$V2/blobs/sha256/${hex:0:2}/$hex/data"
}

link=$V2/repositories/$REPO/_manifests/tags/$TAG/current/link
[ -f "$link" ] || die "no tag $REF in $WORKDIR ($link missing)"
manifest=$(blob_path "$(cat "$link")")
layers=$(jq 'if (.layers | type) == "array" then .layers | length else -1 end' "$manifest" 2>/dev/null) ||
  die "manifest of $REF is not JSON"
[ "$layers" -ge 0 ] || die "$REF is not a single-platform manifest (an index or list?): $(head -c 300 "$manifest")"
[ "$LAYER" -lt "$layers" ] || die "$REF has $layers layers; cannot corrupt layer $LAYER"
expected=$(jq -r ".layers[$LAYER].digest" "$manifest")
data=$(blob_path "$expected")
[ -f "$data" ] || die "blob $expected of $REF is not in $V2/blobs"
size=$(stat -c %s "$data")

case "$MODE" in
  garbage)
    # Repeating text: never a valid gzip/zstd header, deterministic.
    { yes 'berth-test corrupted blob' || true; } | head -c "$size" > "$data.corrupt"
    ;;
  flip)
    [ "$size" -ge 64 ] || die "blob $expected is too small to flip bytes in the middle"
    cp "$data" "$data.corrupt"
    offset=$((size / 2))
    head -c 16 < <(tail -c +"$((offset + 1))" "$data") | perl -0777 -pe '$_ = ~$_' |
      dd of="$data.corrupt" bs=1 seek="$offset" conv=notrunc status=none
    ;;
esac
[ "$(stat -c %s "$data.corrupt")" -eq "$size" ] || die "corrupted copy has the wrong size"
mv "$data.corrupt" "$data"
actual="sha256:$(sha256sum "$data" | cut -d' ' -f1)"
[ "$actual" != "$expected" ] || die "blob $expected is unchanged"
echo "corrupted $REF layer $LAYER $expected -> $actual ($size bytes)"
