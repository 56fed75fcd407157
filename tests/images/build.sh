#!/usr/bin/env bash
# Builds every image critest pulls (see README.md) offline from Debian
# packages and pushes them to a local registry.
#
#   tests/images/build.sh [--node-e2e DIR] <registry-host:port>      e.g. 127.0.0.1:5000
#
# --node-e2e DIR adds the images Kubernetes' node conformance suite pulls (agnhost, busybox,
# nginx, nonewprivs, nonroot, pause under the tags of the release's image manifest); DIR is
# what scripts/build-node-e2e.sh prints (agnhost, localhost.crt, localhost.key).
#
# Images are built with umoci into an OCI layout cached under
#   ${BERTH_TEST_CACHE:-/var/cache/berth-test}/images/<hash of the inputs>
# so a second run only pushes (skopeo copy) to the registry.
#
# Environment:
#   BERTH_TEST_CACHE        cache root (default /var/cache/berth-test)
#   BERTH_REGISTRY_CREDS    USER:PASSWORD for a registry started with --htpasswd
#   BERTH_PUSH_JOBS         parallel pushes (default 4)
#   SOURCE_DATE_EPOCH       timestamp for files, configs and history
#                           (default 1704067200 = 2024-01-01T00:00:00Z)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PROG=build.sh

die() { echo "$PROG: error: $*" >&2; exit 1; }
usage() { echo "usage: $PROG [--node-e2e DIR] <registry-host:port>" >&2; exit 2; }

NODE_E2E=
if [ "${1:-}" = --node-e2e ]; then
  [ $# -ge 2 ] || usage
  NODE_E2E=$2
  shift 2
fi
[ $# -eq 1 ] || usage
REGISTRY=$1
case "$REGISTRY" in
  -h|--help) usage ;;
  */*|"") die "expected registry-host:port (e.g. 127.0.0.1:5000), got '$REGISTRY'" ;;
esac

[ "$(id -u)" -eq 0 ] || die "must run as root (image files must be owned by uid 0 and nnp must keep its setuid bit)"
for tool in umoci skopeo gcc ldd curl jq flock sha256sum; do
  command -v "$tool" >/dev/null || die "'$tool' not found (install the Debian packages listed in tests/images/DEPS)"
done

BUSYBOX=/bin/busybox
IPCS=/usr/bin/ipcs
[ -x "$BUSYBOX" ] || die "$BUSYBOX not found: install Debian's dynamic 'busybox' package"
[ -x "$IPCS" ] || die "$IPCS not found: install Debian's 'util-linux' package"
# busybox-static replaces /bin/busybox with a "standalone shell" build that runs
# applets even when /bin/ls is masked (critest's MaskedPaths spec then fails),
# and it lacks applets; only the dynamic build will do.
if [[ "$(ldd "$BUSYBOX" 2>&1 || true)" != *libc.so* ]]; then
  die "$BUSYBOX is not dynamically linked (busybox-static installed?); install Debian's 'busybox' package"
fi
BASH_BIN=/bin/bash
CURL_BIN=/usr/bin/curl
HOSTNAME_BIN=/bin/hostname
if [ -n "$NODE_E2E" ]; then
  for f in agnhost localhost.crt localhost.key; do
    [ -s "$NODE_E2E/$f" ] || die "$NODE_E2E/$f not found (build it with scripts/build-node-e2e.sh)"
  done
  [ -x "$BASH_BIN" ] || die "$BASH_BIN not found: install Debian's 'bash' package"
  [ -x "$CURL_BIN" ] || die "$CURL_BIN not found: install Debian's 'curl' package"
  [ -x "$HOSTNAME_BIN" ] || die "$HOSTNAME_BIN not found: install Debian's 'hostname' package"
fi

EPOCH=${SOURCE_DATE_EPOCH:-1704067200}
[[ "$EPOCH" =~ ^[0-9]+$ ]] || die "SOURCE_DATE_EPOCH must be a number of seconds, got '$EPOCH'"
CREATED=$(date -u -d "@$EPOCH" +%Y-%m-%dT%H:%M:%SZ)
PUSH_JOBS=${BERTH_PUSH_JOBS:-4}
CACHE_ROOT=${BERTH_TEST_CACHE:-/var/cache/berth-test}/images
PATH_ENV=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# ---------------------------------------------------------------------------
# What gets pushed: <local tag in the OCI layout> <repository:tag on the
# registry>.  Repository paths are the upstream ones without the registry host
# (the runtime mirrors registry.k8s.io, k8s.gcr.io and gcr.io to the local
# registry), so registry.k8s.io/pause:3.9 and k8s.gcr.io/pause:3.9 are one image.
PUSHES=(
  "busybox            e2e-test-images/busybox:1.29-2"
  "nginx              e2e-test-images/nginx:1.14-2"
  "httpd              e2e-test-images/httpd:2.4.39-4"
  "nonewprivs         e2e-test-images/nonewprivs:1.3"
  "pause              pause:3.9"
  "tag-test           k8s-staging-cri-tools/test-image-tag:test"
  "tag-all            k8s-staging-cri-tools/test-image-tag:all"
  "latest             k8s-staging-cri-tools/test-image-latest:latest"
  # critest pulls test-image-digest by a fixed upstream digest that cannot be
  # rebuilt, so that spec has to be skipped whatever is here.  A :latest tag
  # is pushed anyway: it is harmless (a by-digest pull asks the registry for
  # that digest only) and gives the repository content for by-digest pulls of
  # our own images.
  "digest             k8s-staging-cri-tools/test-image-digest:latest"
  "image-1            k8s-staging-cri-tools/test-image-1:latest"
  "image-2            k8s-staging-cri-tools/test-image-2:latest"
  "image-3            k8s-staging-cri-tools/test-image-3:latest"
  "tags               k8s-staging-cri-tools/test-image-tags:1"
  "tags               k8s-staging-cri-tools/test-image-tags:2"
  "tags               k8s-staging-cri-tools/test-image-tags:3"
  "user-uid           k8s-staging-cri-tools/test-image-user-uid:latest"
  "user-username      k8s-staging-cri-tools/test-image-user-username:latest"
  "user-uid-group     k8s-staging-cri-tools/test-image-user-uid-group:latest"
  "user-username-group k8s-staging-cri-tools/test-image-user-username-group:latest"
  "predefined-group   k8s-staging-cri-tools/test-image-predefined-group:latest"
  "hostnet-nginx      k8s-staging-cri-tools/hostnet-nginx-amd64:latest"
  # benchmark mode's default pull image, public.ecr.aws/docker/library/busybox
  "bench-busybox      docker/library/busybox:1.35.0-glibc"
)
# Kubernetes' node conformance suite (--node-e2e): the names and tags of
# test/utils/image/manifest.go of the release scripts/build-node-e2e.sh builds.
NODE_E2E_PUSHES=(
  "agnhost            e2e-test-images/agnhost:2.66.1"
  "agnhost-prev       e2e-test-images/agnhost:2.55"
  "busybox-1.37       e2e-test-images/busybox:1.37.0-2"
  "nginx-1.27         e2e-test-images/nginx:1.27.0-2"
  "nginx-1.28         e2e-test-images/nginx:1.28.0-2"
  "nonewprivs-1.4     e2e-test-images/nonewprivs:1.4"
  "nonroot            e2e-test-images/nonroot:1.5"
  "glibc-dns-testing  e2e-test-images/glibc-dns-testing:2.1.1"
  "pause              pause:3.10.2"
)
[ -z "$NODE_E2E" ] || PUSHES+=("${NODE_E2E_PUSHES[@]}")

# ---------------------------------------------------------------------------
# Cache key: everything the build reads.
shared_libs() { # prints the absolute paths ldd reports for $1
  ldd "$1" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'
}

cache_key() {
  {
    echo "format 1"
    echo "epoch $EPOCH"
    (cd "$HERE" && find build.sh DEPS src -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
    # shellcheck disable=SC2046
    sha256sum "$BUSYBOX" "$IPCS" $(shared_libs "$BUSYBOX") $(shared_libs "$IPCS")
    gcc -dumpfullversion -dumpversion
    umoci --version
    if [ -n "$NODE_E2E" ]; then
      echo "node-e2e"
      # shellcheck disable=SC2046
      sha256sum "$NODE_E2E"/agnhost "$NODE_E2E"/localhost.{crt,key} \
        "$BASH_BIN" $(shared_libs "$BASH_BIN") "$CURL_BIN" $(shared_libs "$CURL_BIN") \
        "$HOSTNAME_BIN" $(shared_libs "$HOSTNAME_BIN")
    fi
  } | sha256sum | cut -c1-16
}

# ---------------------------------------------------------------------------
# Build helpers.  All run with cwd-independent absolute paths.
OCI=""   # set to <stage>/oci
WORK=""  # scratch dir for bundles

log() { echo "  $*"; }

# Copies binary $1 to <root>$2 and every shared library it needs to the path
# ldd reports (real file contents, so no symlink into the host layout is
# needed; the dynamic loader goes to /lib64/ld-linux-x86-64.so.2).
install_dynamic() {
  local src=$1 dest=$2 root=$3 lib
  install -D -m 0755 "$src" "$root$dest"
  for lib in $(shared_libs "$src"); do
    if [ ! -e "$root$lib" ]; then
      install -D -m 0755 "$(readlink -f "$lib")" "$root$lib"
    fi
  done
}

# Sets every mtime in a rootfs to the epoch: reproducible layers, and umoci's
# mtree diff then only sees files whose content or metadata really changed.
settle() { find "$1" -exec touch -h -d "@$EPOCH" {} +; }

compile() { # name source [extra gcc flags...]
  local name=$1 src=$2
  shift 2
  gcc -static -O2 -s -Wall -Wextra -Werror "$@" -o "$STAGE/bin/$name" "$HERE/src/$src" ||
    die "compiling src/$src failed"
}

write_passwd() {
  cat > "$1/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
sync:x:4:65534:sync:/bin:/bin/sync
mail:x:8:8:mail:/var/mail:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
operator:x:37:37:Operator:/var:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
EOF
  cat > "$1/etc/group" <<'EOF'
root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
tty:x:5:
disk:x:6:
mail:x:8:
wheel:x:10:root
www-data:x:33:
operator:x:37:
staff:x:50:
users:x:100:
nobody:x:65534:
nogroup:x:65534:
EOF
  cat > "$1/etc/shadow" <<'EOF'
root:*:19000:0:99999:7:::
daemon:*:19000:0:99999:7:::
bin:*:19000:0:99999:7:::
sys:*:19000:0:99999:7:::
sync:*:19000:0:99999:7:::
mail:*:19000:0:99999:7:::
www-data:*:19000:0:99999:7:::
operator:*:19000:0:99999:7:::
nobody:*:19000:0:99999:7:::
EOF
  chmod 0644 "$1/etc/passwd" "$1/etc/group"
  chmod 0640 "$1/etc/shadow"
  printf 'passwd: files\ngroup: files\nshadow: files\nhosts: files dns\n' > "$1/etc/nsswitch.conf"
}

# The busybox base every image but pause starts from.
make_base_rootfs() {
  local root=$1 applet
  install -d -m 0755 "$root"/{bin,dev,etc,home,proc,root,run,sbin,sys,usr,usr/bin,usr/sbin} \
    "$root"/usr/local/{bin,sbin} "$root"/var "$root"/var/{log,run,www}
  chmod 0700 "$root/root"
  install -d -m 1777 "$root/tmp" "$root/var/tmp"

  install_dynamic "$BUSYBOX" /bin/busybox "$root"
  # Every applet as a symlink in /bin only (nothing else on PATH may provide
  # ls: critest masks /bin/ls and expects "/bin/sh: ls: Permission denied").
  for applet in $("$BUSYBOX" --list); do
    case "$applet" in
      ls) ;;
      *) ln -s busybox "$root/bin/$applet" ;;
    esac
  done
  # /bin/ls is a real file, so masking it (a bind mount of /dev/null on top)
  # hides ls without touching busybox itself.
  install -m 0755 "$BUSYBOX" "$root/bin/ls"
  ln -s ../../bin/busybox "$root/usr/bin/env"
  # Debian's busybox has no ipcs or pgrep: util-linux's ipcs (needs only
  # libc) and our own static pgrep.
  install_dynamic "$IPCS" /bin/ipcs "$root"
  install -m 0755 "$STAGE/bin/pgrep" "$root/bin/pgrep"

  write_passwd "$root"
}

# derive <parent tag> <new tag> <customize function> [umoci config flags...]
# Unpacks the parent, writes /etc/berth-test-image (so every image has its own
# layer and image ID), runs the customize function on the rootfs, repacks the
# difference as one new layer and applies the config flags.
derive() {
  local parent=$1 tag=$2 customize=$3 bundle
  shift 3
  bundle=$WORK/$tag
  umoci unpack --image "$OCI:$parent" "$bundle" >/dev/null
  printf '%s\n' "$tag" > "$bundle/rootfs/etc/berth-test-image"
  "$customize" "$bundle/rootfs"
  settle "$bundle/rootfs"
  umoci repack --history.created "$CREATED" \
    --history.created_by "tests/images/build.sh: $tag (from $parent)" \
    --image "$OCI:$tag" "$bundle"
  rm -rf "$bundle"
  umoci config --no-history --created "$CREATED" --image "$OCI:$tag" "$@"
}

# new_image <tag> <populate function> [umoci config flags...]: from scratch.
new_image() {
  local tag=$1 populate=$2 bundle
  shift 2
  bundle=$WORK/$tag
  umoci new --image "$OCI:$tag-empty"
  umoci unpack --image "$OCI:$tag-empty" "$bundle" >/dev/null
  "$populate" "$bundle/rootfs"
  settle "$bundle/rootfs"
  umoci repack --history.created "$CREATED" \
    --history.created_by "tests/images/build.sh: $tag" \
    --image "$OCI:$tag" "$bundle"
  rm -rf "$bundle"
  umoci rm --image "$OCI:$tag-empty"
  umoci config --no-history --created "$CREATED" --image "$OCI:$tag" "$@"
}

nothing() { :; }

add_nginx() { install -D -m 0755 "$STAGE/bin/nginx" "$1/usr/sbin/nginx"; }

add_httpd() {
  install -D -m 0755 "$STAGE/bin/httpd" "$1/usr/local/apache2/bin/httpd"
  cat > "$1/usr/local/apache2/bin/httpd-foreground" <<'EOF'
#!/bin/sh
# Runs the test httpd in the foreground (the image's default command).
exec httpd -DFOREGROUND "$@"
EOF
  chmod 0755 "$1/usr/local/apache2/bin/httpd-foreground"
  install -d -m 0755 "$1/usr/local/apache2/htdocs" "$1/usr/local/apache2/logs"
}

add_nnp() {
  install -D -m 0755 "$STAGE/bin/nnp" "$1/usr/local/bin/nnp"
  chown 0:0 "$1/usr/local/bin/nnp"
  chmod 4755 "$1/usr/local/bin/nnp"
}

add_pause() { install -m 0755 "$STAGE/bin/pause" "$1/pause"; }

add_default_user() {
  echo 'default-user:x:1000:1000:default-user:/home/default-user:/bin/sh' >> "$1/etc/passwd"
  echo 'default-user:*:19000:0:99999:7:::' >> "$1/etc/shadow"
  printf 'default-user:x:1000:\ngroup-defined-in-image:x:50000:default-user\n' >> "$1/etc/group"
  install -d -m 0755 -o 1000 -g 1000 "$1/home/default-user"
}

# agnhost as the upstream image has it: /agnhost (entrypoint, `pause` by default) and
# /agnhost-2, bash (specs run /bin/bash), curl (exec lifecycle hooks call the handler pod
# with it), nmeter (the Containers Lifecycle specs switch images between busybox and agnhost), the test certificate for HTTPS lifecycle hooks, /uploads, and the
# image-defined user and group some specs look for.
add_agnhost() {
  install -m 0755 "$NODE_E2E/agnhost" "$1/agnhost"
  ln -s agnhost "$1/agnhost-2"
  install_dynamic "$BASH_BIN" /bin/bash "$1"
  install_dynamic "$CURL_BIN" /usr/bin/curl "$1"
  add_nmeter "$1"
  install -m 0644 "$NODE_E2E/localhost.crt" "$1/localhost.crt"
  install -m 0600 "$NODE_E2E/localhost.key" "$1/localhost.key"
  install -d -m 0755 "$1/uploads"
  echo 'user-defined-in-image:x:1000:1000::/home/user-defined-in-image:/bin/sh' >> "$1/etc/passwd"
  echo 'user-defined-in-image:*:19000:0:99999:7:::' >> "$1/etc/shadow"
  printf 'user-defined-in-image:x:1000:\ngroup-defined-in-image:x:50000:user-defined-in-image\n' >> "$1/etc/group"
  install -d -m 0755 -o 1000 -g 1000 "$1/home/user-defined-in-image"
}

# The node e2e specs take millisecond timestamps with busybox's nmeter, which Debian's
# busybox lacks: our helper does its time directives.
add_nmeter() { install -m 0755 "$STAGE/bin/nmeter" "$1/bin/nmeter"; }

# glibc-dns-testing is Debian with glibc's resolver upstream; the specs run
# `hostname -f`, which Debian's hostname answers with getaddrinfo (busybox's applet differs).
add_glibc_hostname() {
  rm -f "$1/bin/hostname"
  install_dynamic "$HOSTNAME_BIN" /bin/hostname "$1"
}

build_node_e2e_images() {
  log "node e2e images"
  derive base agnhost add_agnhost \
    --config.entrypoint /agnhost --config.cmd pause \
    --config.exposedports 80/tcp --config.exposedports 8080/tcp --config.exposedports 8081/tcp \
    --config.exposedports 9376/tcp --config.exposedports 5000/tcp
  derive agnhost agnhost-prev nothing
  derive base busybox-1.37 add_nmeter
  local t
  for t in nginx-1.27 nginx-1.28; do derive nginx "$t" nothing; done
  derive nonewprivs nonewprivs-1.4 nothing
  derive base nonroot nothing --config.user 1234
  derive base glibc-dns-testing add_glibc_hostname
}

build_images() {
  mkdir -p "$STAGE/bin" "$WORK"
  log "compiling helpers"
  compile pause pause.c
  compile nnp nnp.c
  compile pgrep pgrep.c
  compile nmeter nmeter.c
  compile nginx httpserver.c -DFLAVOR_NGINX
  compile httpd httpserver.c

  umoci init --layout "$OCI"

  log "base (busybox $("$BUSYBOX" --help 2>&1 | sed -n '1s/^BusyBox \([^ ]*\).*/\1/p'))"
  new_image base make_base_rootfs --config.env "$PATH_ENV" --config.cmd sh

  log "e2e-test-images"
  derive base busybox nothing
  derive base nginx add_nginx \
    --config.cmd nginx --config.cmd -g --config.cmd 'daemon off;' --config.exposedports 80/tcp
  derive base httpd add_httpd \
    --config.env "PATH=/usr/local/apache2/bin:${PATH_ENV#PATH=}" \
    --config.workingdir /usr/local/apache2 \
    --config.cmd httpd-foreground --config.exposedports 80/tcp
  derive base nonewprivs add_nnp --config.cmd nnp

  log "pause"
  new_image pause add_pause --config.entrypoint /pause --config.user 65535:65535

  log "k8s-staging-cri-tools"
  local t
  for t in tag-test tag-all latest digest image-1 image-2 image-3 tags bench-busybox; do
    derive base "$t" nothing
  done
  derive base user-uid nothing --config.user 1002
  derive base user-username nothing --config.user www-data
  derive base user-uid-group nothing --config.user 1003:1004
  derive base user-username-group nothing --config.user www-data:1004
  derive base predefined-group add_default_user --config.user 1000
  derive nginx hostnet-nginx nothing \
    --config.cmd nginx --config.cmd -g --config.cmd 'daemon off;' \
    --config.cmd -l --config.cmd 12003 \
    --clear config.exposedports --config.exposedports 12003/tcp

  [ -z "$NODE_E2E" ] || build_node_e2e_images

  umoci gc --layout "$OCI"
  rm -rf "$WORK"
}

# ---------------------------------------------------------------------------
KEY=$(cache_key)
CACHE_DIR=$CACHE_ROOT/$KEY
START=$(date +%s.%N)

if [ ! -f "$CACHE_DIR/.complete" ]; then
  mkdir -p "$CACHE_ROOT"
  exec 9>"$CACHE_ROOT/.lock"
  flock 9
  if [ ! -f "$CACHE_DIR/.complete" ]; then
    # Builds hold the lock, so any staging dir left here is from a crash.
    rm -rf "$CACHE_ROOT"/.build-* "$CACHE_DIR"
    STAGE=$CACHE_ROOT/.build-$KEY.$$
    OCI=$STAGE/oci
    WORK=$STAGE/work
    trap 'rm -rf "$STAGE"' EXIT
    echo "$PROG: building images into $CACHE_DIR"
    umask 022
    build_images
    touch "$STAGE/.complete"
    mv "$STAGE" "$CACHE_DIR"
    trap - EXIT
    # Keep the three most recent builds.
    find "$CACHE_ROOT" -mindepth 1 -maxdepth 1 -type d -regex '.*/[0-9a-f]\{16\}' -printf '%T@ %p\n' |
      sort -rn | tail -n +4 | cut -d' ' -f2- | xargs -r rm -rf
  fi
  flock -u 9
  exec 9>&-
else
  echo "$PROG: using cached images in $CACHE_DIR"
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

SKOPEO_DEST=(--dest-tls-verify=false)
if [ -n "${BERTH_REGISTRY_CREDS:-}" ]; then
  SKOPEO_DEST+=(--dest-creds "$BERTH_REGISTRY_CREDS")
fi

PUSH_TMP=$(mktemp -d)
trap 'rm -rf "$PUSH_TMP"' EXIT

push_one() { # index local-tag ref
  local i=$1 tag=$2 ref=$3 attempt
  # docker-registry's filesystem driver can answer 500 when pushes to one repository (the
  # three test-image-tags tags) race on a shared blob; such a push is simply tried again.
  for attempt in 1 2 3; do
    if skopeo --insecure-policy copy --quiet --retry-times 2 "${SKOPEO_DEST[@]}" \
        --digestfile "$PUSH_TMP/$i.digest" \
        "oci:$OCI:$tag" "docker://$REGISTRY/$ref" > "$PUSH_TMP/$i.log" 2>&1; then
      echo "pushed $REGISTRY/$ref@$(cat "$PUSH_TMP/$i.digest")" > "$PUSH_TMP/$i.out"
      return 0
    fi
    sleep "$attempt"
  done
  { echo "$PROG: error: pushing $tag to $REGISTRY/$ref failed:"; cat "$PUSH_TMP/$i.log"; } > "$PUSH_TMP/$i.out"
  return 1
}

running=0
for i in "${!PUSHES[@]}"; do
  read -r tag ref <<< "${PUSHES[$i]}"
  push_one "$i" "$tag" "$ref" &
  running=$((running + 1))
  if [ "$running" -ge "$PUSH_JOBS" ]; then
    wait -n || true
    running=$((running - 1))
  fi
done
wait

failed=0
for i in "${!PUSHES[@]}"; do
  if [ -f "$PUSH_TMP/$i.digest" ] && grep -q '^pushed ' "$PUSH_TMP/$i.out" 2>/dev/null; then
    cat "$PUSH_TMP/$i.out"
  else
    failed=$((failed + 1))
    cat "$PUSH_TMP/$i.out" >&2 2>/dev/null || echo "$PROG: error: push of ${PUSHES[$i]} did not finish" >&2
  fi
done
elapsed=$(awk -v s="$START" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')
if [ "$failed" -ne 0 ]; then
  die "$failed of ${#PUSHES[@]} pushes failed"
fi
echo "images: ${#PUSHES[@]} pushed to $REGISTRY (${elapsed}s, cache $CACHE_DIR)"
