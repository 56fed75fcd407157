# Shared by the bench scripts (sourced, after they set PROG and REPO).

# Sets `berthd` and `berthd_kind`: $BERTHD, else target/release/berthd, else
# target/debug/berthd, else a release build made now.
bench_find_berthd() {
  if [ -n "${BERTHD:-}" ]; then
    berthd=$BERTHD
    berthd_kind="\$BERTHD"
    case "$berthd" in
      */release/*) berthd_kind="release, from \$BERTHD" ;;
      */debug/*) berthd_kind="debug (unoptimised), from \$BERTHD" ;;
    esac
  elif [ -x "$REPO/target/release/berthd" ]; then
    berthd=$REPO/target/release/berthd
    berthd_kind=release
  elif [ -x "$REPO/target/debug/berthd" ]; then
    berthd=$REPO/target/debug/berthd
    berthd_kind="debug (unoptimised: build with cargo build --release -p berthd for real figures)"
  else
    echo "$PROG: no berthd binary; building it (cargo build --release -p berthd)"
    (cd "$REPO" && cargo build --release --quiet -p berthd)
    berthd=$REPO/target/release/berthd
    berthd_kind=release
  fi
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
