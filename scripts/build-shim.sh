#!/usr/bin/env bash
# Builds the small berth-shim, the one to install: cargo profile `shim` (opt-level z, LTO,
# one codegen unit, panic=abort, stripped), linked statically by default.
#
#   shim=$(scripts/build-shim.sh [static|dynamic] | tail -n 1)
#
# static   (default) glibc linked in (-C target-feature=+crt-static, --target <host>): no
#          dynamic loader or libc mapping per shim; falls back to dynamic when the toolchain
#          cannot link statically.
# dynamic  linked against the system's libc.
# The path of the binary is printed as the last line on stdout; cargo's output goes to stderr.
# Honours CARGO_TARGET_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
kind=${1:-static}
target_dir=${CARGO_TARGET_DIR:-$PWD/target}

case $kind in
  static)
    triple=$(rustc -vV | sed -n 's/^host: //p')
    if RUSTFLAGS="-C target-feature=+crt-static" \
      cargo build --profile shim -p berth-shim --target "$triple" >&2; then
      printf '%s\n' "$target_dir/$triple/shim/berth-shim"
      exit 0
    fi
    echo "build-shim: the static build failed; building the dynamic one" >&2
    ;;
  dynamic) ;;
  *) echo "usage: $0 [static|dynamic]" >&2; exit 2 ;;
esac
cargo build --profile shim -p berth-shim >&2
printf '%s\n' "$target_dir/shim/berth-shim"
