# Shared by the bench scripts (sourced, after they set PROG and REPO).

# Sets `berthd` and `berthd_kind`: $BERTHD, else target/release/berthd, else
# target/debug/berthd, else a release build made now. berthd runs the berth-shim beside its
# binary (no `runtime.shim_path` in the bench configs), so a build directory counts only
# with both.
bench_find_berthd() {
  local dir
  if [ -n "${BERTHD:-}" ]; then
    berthd=$BERTHD
    berthd_kind="\$BERTHD"
    case "$berthd" in
      */release/*) berthd_kind="release, from \$BERTHD" ;;
      */debug/*) berthd_kind="debug (unoptimised), from \$BERTHD" ;;
    esac
    return
  fi
  for dir in release debug; do
    if [ -x "$REPO/target/$dir/berthd" ] && [ -x "$REPO/target/$dir/berth-shim" ]; then
      berthd=$REPO/target/$dir/berthd
      berthd_kind=release
      [ "$dir" = release ] ||
        berthd_kind="debug (unoptimised: build with cargo build --release -p berthd -p berth-shim for real figures)"
      return
    fi
  done
  echo "$PROG: no berthd with a berth-shim beside it; building them (cargo build --release -p berthd -p berth-shim)"
  (cd "$REPO" && cargo build --release --quiet -p berthd -p berth-shim)
  berthd=$REPO/target/release/berthd
  berthd_kind=release
}

# Sets `crictl`: $CRICTL, else the one on PATH, else the one scripts/build-cri-tools.sh builds.
bench_find_crictl() {
  crictl=${CRICTL:-$(command -v crictl || true)}
  if [ -z "$crictl" ]; then
    crictl=$("$REPO/scripts/build-cri-tools.sh" | tail -n 1)/crictl
  fi
}

# Prints which berthd and crictl run.
bench_print_tools() {
  echo "berthd:   $berthd ($berthd_kind), $("$berthd" --version)"
  echo "crictl:   $crictl ($("$crictl" --version 2>&1 | head -n 1))"
}

# Notes whether portmap's shared chains exist before the script creates pods
# (bench_clean_iptables removes them only when the script created them).
# Writes the bench network's conflist to FILE: bridge (gateway, masquerade, hairpin) with
# host-local IPAM on SUBNET keeping its allocations in IPAM_DIR (never /var/lib/cni), and
# portmap. Every bench script and both daemons of compare.sh use this one network shape.
bench_conflist() { # file network bridge subnet ipam_dir
  mkdir -p "$(dirname "$1")"
  cat > "$1" <<JSON
{
  "cniVersion": "1.0.0",
  "name": "$2",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$3",
      "isGateway": true,
      "ipMasq": true,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{ "subnet": "$4" }]],
        "routes": [{ "dst": "0.0.0.0/0" }],
        "dataDir": "$5"
      }
    },
    { "type": "portmap", "capabilities": { "portMappings": true } }
  ]
}
JSON
}

bench_note_hostport_chains() {
  HOSTPORT_CHAINS_EXISTED=0
  if iptables -t nat -S CNI-HOSTPORT-DNAT >/dev/null 2>&1; then HOSTPORT_CHAINS_EXISTED=1; fi
}

# Deletes the nat rules naming the bench network ($NETWORK) or its subnet (10.232.$OCTET.),
# then the per-pod chains they jumped to; portmap's shared chains too when the script created
# them and nobody uses them.
bench_clean_iptables() {
  local line chain chains=()
  while IFS= read -r line; do
    chain=$(sed -nE 's/.* -j (CNI-[A-Za-z0-9-]+)( .*)?$/\1/p' <<<"$line")
    [[ -n $chain && $chain != CNI-HOSTPORT-* ]] && chains+=("$chain")
    eval "iptables -t nat -D ${line#-A }" 2>/dev/null || true
  done < <(iptables-save -t nat | grep -E '^-A ' | grep -F -e "\"$NETWORK\"" -e "10.232.$OCTET." || true)
  for chain in "${chains[@]}"; do
    iptables -t nat -F "$chain" 2>/dev/null || true
    iptables -t nat -X "$chain" 2>/dev/null || true
  done
  if ((HOSTPORT_CHAINS_EXISTED == 0)) && iptables -t nat -S CNI-HOSTPORT-DNAT >/dev/null 2>&1 &&
    ! iptables -t nat -S CNI-HOSTPORT-DNAT | grep -q '^-A '; then
    while IFS= read -r line; do
      eval "iptables -t nat -D ${line#-A }" 2>/dev/null || true
    done < <(iptables-save -t nat | grep -E '^-A (PREROUTING|OUTPUT|POSTROUTING) .*-j CNI-HOSTPORT-' || true)
    for chain in CNI-HOSTPORT-DNAT CNI-HOSTPORT-MASQ CNI-HOSTPORT-SETMARK; do
      iptables -t nat -F "$chain" 2>/dev/null || true
      iptables -t nat -X "$chain" 2>/dev/null || true
    done
  fi
}

# bench_image LAYERS FILES_PER_LAYER FILE_BYTES TAG: the benchmark image of LAYERS layers,
# each FILES_PER_LAYER files of FILE_BYTES bytes of AES-128-CTR keystream from a fixed key
# (deterministic, incompressible), built once with umoci into
# ${BERTH_TEST_CACHE:-/var/cache/berth-test}/bench/<key>/oci (tag TAG) and kept there. Sets
# BENCH_IMAGE_OCI to that layout. The last two other builds stay cached, older ones go.
bench_image() {
  local layers=$1 files=$2 bytes=$3 tag=$4 epoch created cache_root key cache_dir stage
  epoch=${SOURCE_DATE_EPOCH:-1704067200}
  created=$(date -u -d "@$epoch" +%Y-%m-%dT%H:%M:%SZ)
  cache_root=${BERTH_TEST_CACHE:-/var/cache/berth-test}/bench
  key=$( { echo "format 2 $layers $files $bytes $epoch $tag"; umoci --version; } | sha256sum | cut -c1-16)
  cache_dir=$cache_root/$key
  BENCH_IMAGE_OCI=$cache_dir/oci
  [ -f "$cache_dir/.complete" ] && return 0
  mkdir -p "$cache_root"
  exec 9>"$cache_root/.lock"
  flock 9
  if [ ! -f "$cache_dir/.complete" ]; then
    rm -rf "$cache_root"/.build-* "$cache_dir"
    stage=$cache_root/.build-$key.$$
    mkdir -p "$stage"
    echo "$PROG: building the benchmark image $tag into $cache_dir (once)"
    if ! bench_build_image "$stage" "$layers" "$files" "$bytes" "$tag" "$epoch" "$created"; then
      rm -rf "$stage"
      echo "$PROG: error: building the image failed" >&2
      exit 1
    fi
    touch "$stage/.complete"
    mv "$stage" "$cache_dir"
    find "$cache_root" -mindepth 1 -maxdepth 1 -type d -regex '.*/[0-9a-f]\{16\}' -printf '%T@ %p\n' |
      sort -rn | tail -n +4 | cut -d' ' -f2- | xargs -r rm -rf
  fi
  flock -u 9
  exec 9>&-
}

# prng SEED BYTES: BYTES of AES-128-CTR keystream keyed by SEED's hash.
bench_prng() {
  local key
  key=$(printf '%s' "$1" | sha256sum | cut -c1-32)
  { openssl enc -aes-128-ctr -nosalt -K "$key" -iv 00000000000000000000000000000000 \
      -in /dev/zero 2>/dev/null || true; } | head -c "$2"
}

bench_build_image() { # stage layers files bytes tag epoch created
  local stage=$1 layers=$2 files=$3 bytes=$4 tag=$5 epoch=$6 created=$7 oci=$1/oci layer file dir
  umoci init --layout "$oci"
  umoci new --image "$oci:$tag"
  for ((layer = 1; layer <= layers; layer++)); do
    dir=$stage/layer$layer
    mkdir -p "$dir"
    for ((file = 1; file <= files; file++)); do
      bench_prng "berth-bench layer $layer file $file" "$bytes" > "$dir/$(printf 'blob-%02d' "$file")"
    done
    find "$dir" -exec touch -h -d "@$epoch" {} +
    umoci insert --history.created "$created" \
      --history.created_by "bench: $tag layer $layer" \
      --image "$oci:$tag" "$dir" "/data/layer$layer"
    rm -rf "$dir"
  done
  umoci config --no-history --created "$created" --image "$oci:$tag" \
    --os linux --architecture amd64 --config.cmd /bin/true
  umoci gc --layout "$oci"
}
