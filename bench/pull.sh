#!/usr/bin/env bash
# Cold pull of a 5-layer, ~100 MB image from a local registry: berth (berthd + crictl pull)
# next to skopeo copy + umoci unpack of the same image. See bench/README.md.
#
#   bench/pull.sh [--runs N] [--tools berth,skopeo]
#
# Environment:
#   BERTH_TEST_CACHE   cache root (default /var/cache/berth-test); the image is built once
#                      into $BERTH_TEST_CACHE/bench/<key>/oci
#   BERTH_BENCH_ADDR   registry address (default 127.0.0.1:5010)
#   BERTHD             berthd binary (default target/release/berthd, else target/debug/berthd,
#                      else built with `cargo build --release -p berthd`)
#   CRICTL             crictl binary (default: PATH, else the one scripts/build-cri-tools.sh
#                      builds)
#   TMPDIR             where the per-run stores go (default /tmp)
#
# Every run is cold: berth gets a fresh --root/--state and a new daemon (started before the
# clock starts), skopeo a fresh OCI layout and umoci a fresh bundle. The registry's files
# may be in the page cache for both tools alike. Everything started is stopped by PID and
# every temporary directory removed on exit.
set -euo pipefail

PROG=pull.sh
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$REPO/bench/lib.sh"
die() { echo "$PROG: error: $*" >&2; exit 1; }
usage() { echo "usage: $PROG [--runs N] [--tools berth,skopeo]" >&2; exit 2; }

RUNS=3
TOOLS=berth,skopeo
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) [ $# -ge 2 ] || usage; RUNS=$2; shift 2 ;;
    --tools) [ $# -ge 2 ] || usage; TOOLS=$2; shift 2 ;;
    -h|--help) usage ;;
    *) usage ;;
  esac
done
[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || die "--runs expects a positive number"
RUN_BERTH=0
RUN_SKOPEO=0
for tool in ${TOOLS//,/ }; do
  case "$tool" in
    berth) RUN_BERTH=1 ;;
    skopeo) RUN_SKOPEO=1 ;;
    *) die "unknown tool '$tool' (berth, skopeo)" ;;
  esac
done

[ "$(id -u)" -eq 0 ] || die "must run as root (berthd, umoci unpack)"
for tool in docker-registry skopeo umoci openssl curl jq sha256sum flock; do
  command -v "$tool" >/dev/null || die "'$tool' not found (scripts/install-deps.sh test installs it)"
done

# Image: 5 layers, each 20 files of 1 MiB of AES-CTR keystream (incompressible, fixed seed).
LAYERS=5
FILES_PER_LAYER=20
FILE_BYTES=$((1024 * 1024))
ADDR=${BERTH_BENCH_ADDR:-127.0.0.1:5010}
IMAGE_PATH=bench/five-layers:latest
IMAGE=$ADDR/$IMAGE_PATH

WORK=$(mktemp -d "${TMPDIR:-/tmp}/berth-bench.XXXXXX")
BERTHD_PID=
cleanup() {
  local rc=$?
  if [ -n "$BERTHD_PID" ] && kill -0 "$BERTHD_PID" 2>/dev/null; then
    kill -TERM "$BERTHD_PID" 2>/dev/null || true
    wait "$BERTHD_PID" 2>/dev/null || true
  fi
  if [ -f "$WORK/registry/registry.pid" ]; then
    "$REPO/tests/images/registry.sh" stop "$WORK/registry" >/dev/null || true
  fi
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now() { date +%s.%N; }
elapsed() { awk -v s="$1" -v e="$2" 'BEGIN { printf "%.3f", e - s }'; }

# --- the image (cached) -----------------------------------------------------------------
bench_image "$LAYERS" "$FILES_PER_LAYER" "$FILE_BYTES" five-layers
OCI=$BENCH_IMAGE_OCI

# --- the registry ---------------------------------------------------------------------
mkdir -p "$WORK/registry"
"$REPO/tests/images/registry.sh" --addr "$ADDR" start "$WORK/registry" >/dev/null
skopeo --insecure-policy copy --quiet --dest-tls-verify=false \
  --digestfile "$WORK/digest" "oci:$OCI:five-layers" "docker://$IMAGE"
MANIFEST_DIGEST=$(cat "$WORK/digest")
skopeo inspect --raw --tls-verify=false "docker://$IMAGE" > "$WORK/manifest.json"
CONFIG_DIGEST=$(jq -r .config.digest "$WORK/manifest.json")
COMPRESSED=$(jq '[.layers[].size] | add' "$WORK/manifest.json")
NLAYERS=$(jq '.layers | length' "$WORK/manifest.json")
MB=$(awk -v b="$COMPRESSED" 'BEGIN { printf "%.1f", b / 1e6 }')

cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
echo "image:    $IMAGE ($MANIFEST_DIGEST)"
echo "          $NLAYERS layers, $COMPRESSED bytes compressed ($MB MB), $((LAYERS * FILES_PER_LAYER * FILE_BYTES)) bytes of file data"
echo "host:     $(nproc) CPUs ($cpu), $(uname -r), stores in ${TMPDIR:-/tmp}"

# --- the tools ---------------------------------------------------------------------------
if ((RUN_BERTH)); then
  bench_find_berthd
  bench_find_crictl
  bench_print_tools
fi
if ((RUN_SKOPEO)); then
  echo "skopeo:   $(skopeo --version), umoci: $(umoci --version)"
fi

RESULTS=$WORK/results # tool run seconds
: > "$RESULTS"
FAILED=0

# berth: a fresh daemon, then crictl pull timed.
run_berth() { # run
  local run=$1 dir=$WORK/berth-$1 socket start end out rc=0 i
  mkdir -p "$dir/certs.d" "$dir/net.d"
  # An empty crictl config: no /etc/crictl.yaml lookup, no warning about it.
  : > "$dir/crictl.yaml"
  cat > "$dir/berth.toml" <<TOML
[registry]
config_path = "$dir/certs.d"
[cni]
conf_dir = "$dir/net.d"
TOML
  socket=$dir/berth.sock
  "$berthd" --config "$dir/berth.toml" --listen "$socket" --root "$dir/root" \
    --state "$dir/state" --log-level info > "$dir/berthd.log" 2>&1 &
  BERTHD_PID=$!
  for ((i = 0; i < 400; i++)); do [ -S "$socket" ] && break; sleep 0.05; done
  [ -S "$socket" ] || { cat "$dir/berthd.log" >&2; die "berthd did not start"; }
  start=$(now)
  out=$("$crictl" --config "$dir/crictl.yaml" --runtime-endpoint "unix://$socket" \
    --image-endpoint "unix://$socket" --timeout 600s pull "$IMAGE" 2> "$dir/crictl.err") || rc=$?
  end=$(now)
  kill -TERM "$BERTHD_PID"
  wait "$BERTHD_PID" || true
  BERTHD_PID=
  if [ "$rc" -ne 0 ] || [ "$out" != "Image is up to date for $CONFIG_DIGEST" ]; then
    echo "berth run $run failed (crictl exit $rc): $out $(cat "$dir/crictl.err")" >&2
    tail -n 5 "$dir/berthd.log" >&2
    FAILED=1
    echo "berth $run failed" >> "$RESULTS"
  else
    echo "berth $run $(elapsed "$start" "$end")" >> "$RESULTS"
  fi
  rm -rf "$dir"
}

# skopeo copy into a fresh OCI layout, then umoci unpack into a fresh bundle, timed together.
run_skopeo() { # run
  local run=$1 dir=$WORK/skopeo-$1 start mid end
  mkdir -p "$dir"
  start=$(now)
  skopeo --insecure-policy copy --quiet --src-tls-verify=false \
    "docker://$IMAGE" "oci:$dir/oci:latest"
  mid=$(now)
  umoci unpack --image "$dir/oci:latest" "$dir/bundle" > /dev/null
  end=$(now)
  echo "skopeo+umoci $run $(elapsed "$start" "$end") $(elapsed "$start" "$mid") $(elapsed "$mid" "$end")" >> "$RESULTS"
  rm -rf "$dir"
}

for ((run = 1; run <= RUNS; run++)); do
  if ((RUN_BERTH)); then run_berth "$run"; fi
  if ((RUN_SKOPEO)); then run_skopeo "$run"; fi
done

# --- the table ----------------------------------------------------------------------------
echo
awk -v bytes="$COMPRESSED" '
  function mbs(s) { return s > 0 ? sprintf("%.1f", bytes / 1e6 / s) : "-" }
  function median(a, n,   i, j, t) {
    for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  BEGIN { printf "%-14s %4s %9s %8s  %s\n", "tool", "run", "seconds", "MB/s", "detail" }
  {
    if ($3 == "failed") { printf "%-14s %4s %9s %8s  %s\n", $1, $2, "failed", "-", ""; next }
    detail = NF >= 5 ? sprintf("copy %.3f s + unpack %.3f s", $4, $5) : ""
    printf "%-14s %4s %9.3f %8s  %s\n", $1, $2, $3, mbs($3), detail
    n[$1]++; t[$1, n[$1]] = $3; order[$1] = order[$1] ? order[$1] : ++tools; name[tools] = $1
  }
  END {
    for (k = 1; k <= tools; k++) {
      tool = name[k]; m = n[tool]
      for (i = 1; i <= m; i++) v[i] = t[tool, i]
      med = median(v, m)
      printf "%-14s %4s %9.3f %8s  %s\n", tool, "med", med, mbs(med), sprintf("median of %d", m)
    }
  }' "$RESULTS"

if ((FAILED)); then
  echo "$PROG: some berth runs failed (is PullImage implemented in this berthd?)" >&2
  exit 1
fi
