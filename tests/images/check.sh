#!/usr/bin/env bash
# Self-test of the images build.sh pushed: checks what can be checked without
# a container runtime.
#
#   tests/images/check.sh <registry-host:port>
#
# 1. `skopeo inspect` of every reference: User, Entrypoint, Cmd, platform, and
#    which references must share an image ID and which must not.
# 2. Pulls the images that run something into a temporary OCI layout, unpacks
#    them with umoci and runs them with chroot inside fresh PID, mount, network,
#    IPC and UTS namespaces (unshare), checking the behaviours critest relies on.
#    All traffic stays on the loopback device of a network namespace created
#    here; every process started here is stopped by PID.
#
# Must run as root.  Prints "N passed, M failed"; exits 1 if anything failed.
# BERTH_REGISTRY_CREDS=USER:PASSWORD is passed to skopeo when set.
# The namespace scripts below are single-quoted on purpose (they expand $R
# inside the namespace).
# shellcheck disable=SC2016
set -euo pipefail

PROG=check.sh
die() { echo "$PROG: error: $*" >&2; exit 2; }
[ $# -eq 1 ] || { echo "usage: $PROG <registry-host:port>" >&2; exit 2; }
REGISTRY=$1
[ "$(id -u)" -eq 0 ] || die "must run as root (chroot, namespaces, setuid checks)"
for tool in skopeo umoci jq curl unshare nsenter chroot setpriv ipcmk ip tar sha256sum; do
  command -v "$tool" >/dev/null || die "'$tool' not found (see tests/images/DEPS)"
done

SKOPEO_SRC=(--tls-verify=false)         # for skopeo inspect
SKOPEO_COPY=(--src-tls-verify=false)    # for skopeo copy
if [ -n "${BERTH_REGISTRY_CREDS:-}" ]; then
  SKOPEO_SRC+=(--creds "$BERTH_REGISTRY_CREDS")
  SKOPEO_COPY+=(--src-creds "$BERTH_REGISTRY_CREDS")
fi
IMAGE_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
CHROOT=$(command -v chroot)

TMP=$(mktemp -d "${TMPDIR:-/var/tmp}/berth-image-check.XXXXXX")
UPIDS=()   # unshare processes started here (each is the parent of one "container")

cleanup() {
  local p
  for p in "${UPIDS[@]}"; do
    if kill -0 "$p" 2>/dev/null; then
      kill -KILL "$p" 2>/dev/null || true   # its PID namespace dies with it
      wait "$p" 2>/dev/null || true
    fi
  done
  rm -rf "$TMP"
}
trap cleanup EXIT

PASSED=0
FAILED=0
pass() { PASSED=$((PASSED + 1)); echo "ok   - $1"; }
fail() {
  FAILED=$((FAILED + 1))
  echo "FAIL - $1"
  if [ $# -gt 1 ] && [ -n "$2" ]; then printf '%s\n' "$2" | sed 's/^/       /'; fi
}
expect_eq() { # description expected actual
  if [ "$2" = "$3" ]; then pass "$1"; else fail "$1" "expected: $(printf '%q' "$2")
got:      $(printf '%q' "$3")"; fi
}
expect_contains() { # description needle haystack
  if [[ "$3" == *"$2"* ]]; then pass "$1"; else fail "$1" "expected to contain: $2
got: $3"; fi
}
expect_true() { # description command...
  local d=$1
  shift
  if "$@"; then pass "$d"; else fail "$d"; fi
}

# ---------------------------------------------------------------------------
# 1. Registry metadata.
#    ref | User | Entrypoint (JSON) | Cmd (JSON) | ID group (refs with the same
#    group must share one image ID; different groups must not)
IMAGES=(
  'e2e-test-images/busybox:1.29-2||null|["sh"]|busybox'
  'e2e-test-images/nginx:1.14-2||null|["nginx","-g","daemon off;"]|nginx'
  'e2e-test-images/httpd:2.4.39-4||null|["httpd-foreground"]|httpd'
  'e2e-test-images/nonewprivs:1.3||null|["nnp"]|nonewprivs'
  'pause:3.9|65535:65535|["/pause"]|null|pause'
  'k8s-staging-cri-tools/test-image-tag:test||null|["sh"]|tag-test'
  'k8s-staging-cri-tools/test-image-tag:all||null|["sh"]|tag-all'
  'k8s-staging-cri-tools/test-image-latest:latest||null|["sh"]|latest'
  'k8s-staging-cri-tools/test-image-digest:latest||null|["sh"]|digest'
  'k8s-staging-cri-tools/test-image-1:latest||null|["sh"]|image-1'
  'k8s-staging-cri-tools/test-image-2:latest||null|["sh"]|image-2'
  'k8s-staging-cri-tools/test-image-3:latest||null|["sh"]|image-3'
  'k8s-staging-cri-tools/test-image-tags:1||null|["sh"]|tags'
  'k8s-staging-cri-tools/test-image-tags:2||null|["sh"]|tags'
  'k8s-staging-cri-tools/test-image-tags:3||null|["sh"]|tags'
  'k8s-staging-cri-tools/test-image-user-uid:latest|1002|null|["sh"]|user-uid'
  'k8s-staging-cri-tools/test-image-user-username:latest|www-data|null|["sh"]|user-username'
  'k8s-staging-cri-tools/test-image-user-uid-group:latest|1003:1004|null|["sh"]|user-uid-group'
  'k8s-staging-cri-tools/test-image-user-username-group:latest|www-data:1004|null|["sh"]|user-username-group'
  'k8s-staging-cri-tools/test-image-predefined-group:latest|1000|null|["sh"]|predefined-group'
  'k8s-staging-cri-tools/hostnet-nginx-amd64:latest||null|["nginx","-g","daemon off;","-l","12003"]|hostnet-nginx'
  'docker/library/busybox:1.35.0-glibc||null|["sh"]|bench-busybox'
)

echo "# registry metadata ($REGISTRY)"
declare -A ID_OF_GROUP=() GROUP_OF_ID=() MANIFEST_OF_GROUP=()
for entry in "${IMAGES[@]}"; do
  IFS='|' read -r ref user entrypoint cmd group <<< "$entry"
  if ! raw=$(skopeo inspect "${SKOPEO_SRC[@]}" --raw "docker://$REGISTRY/$ref" 2>"$TMP/err") ||
     ! config=$(skopeo inspect "${SKOPEO_SRC[@]}" --config "docker://$REGISTRY/$ref" 2>>"$TMP/err"); then
    fail "$ref: inspect" "$(cat "$TMP/err")"
    continue
  fi
  manifest_digest=sha256:$(printf '%s' "$raw" | sha256sum | cut -d' ' -f1)
  id=$(jq -r .config.digest <<< "$raw")
  got=$(jq -c '[.architecture, .os, (.config.User // ""), .config.Entrypoint, .config.Cmd]' <<< "$config")
  want=$(jq -cn --arg u "$user" --argjson e "$entrypoint" --argjson c "$cmd" '["amd64", "linux", $u, $e, $c]')
  expect_eq "$ref: [arch, os, User, Entrypoint, Cmd]" "$want" "$got"

  if [ -n "${ID_OF_GROUP[$group]:-}" ]; then
    expect_eq "$ref: same image ID as the other $group tags" "${ID_OF_GROUP[$group]}" "$id"
    expect_eq "$ref: same manifest as the other $group tags" "${MANIFEST_OF_GROUP[$group]}" "$manifest_digest"
  elif [ -n "${GROUP_OF_ID[$id]:-}" ]; then
    fail "$ref: image ID distinct from the other images" "$id is also ${GROUP_OF_ID[$id]}"
  else
    pass "$ref: image ID distinct from the other images (${id:7:12})"
    ID_OF_GROUP[$group]=$id
    GROUP_OF_ID[$id]=$group
    MANIFEST_OF_GROUP[$group]=$manifest_digest
  fi
done

# ---------------------------------------------------------------------------
# 2. Unpack and run.
echo "# unpacked images"
OCI=$TMP/oci
pull_unpack() { # name ref
  if skopeo --insecure-policy copy --quiet "${SKOPEO_COPY[@]}" \
       "docker://$REGISTRY/$2" "oci:$OCI:$1" > "$TMP/err" 2>&1 &&
     umoci unpack --image "$OCI:$1" "$TMP/$1" > "$TMP/err" 2>&1; then
    return 0
  fi
  fail "$2: pull and unpack" "$(cat "$TMP/err")"
  return 1
}

# ns_run ROOT SCRIPT: runs bash SCRIPT (with $R = ROOT) in new PID, mount, net,
# IPC and UTS namespaces, with /proc (of the new PID namespace) and /dev
# mounted in ROOT.  Everything it starts dies with it.
ns_run() {
  unshare --pid --fork --mount --propagation private --net --ipc --uts /bin/bash -c '
    set -e
    R=$1
    mount -t proc proc "$R/proc"
    mount -t sysfs sysfs "$R/sys"
    mount --bind /dev "$R/dev"
    ip link set lo up
    export PATH='"$IMAGE_PATH"'
    '"$2" ns_run "$1"
}

# Host PID of the first child of PID $1 (PID 1 of the namespace unshare made).
child_of() {
  local i c
  for ((i = 0; i < 50; i++)); do
    c=$(awk '{print $1}' "/proc/$1/task/$1/children" 2>/dev/null)
    if [ -n "$c" ]; then echo "$c"; return 0; fi
    sleep 0.1
  done
  return 1
}

# start_container NAME BUNDLE [CMD...]: runs the image's process (args, env,
# cwd and uid:gid from the config.json umoci wrote; CMD replaces the args) as
# PID 1 of new namespaces, chrooted into BUNDLE/rootfs, like a runtime would.
# Sets UPID (the unshare process) and CPID (host PID of the container's
# PID 1); output goes to $TMP/NAME.log.
start_container() {
  local name=$1 bundle=$2 cwd userspec
  local -a env args
  shift 2
  mapfile -t env < <(jq -r '.process.env[]' "$bundle/config.json")
  if [ $# -gt 0 ]; then args=("$@"); else mapfile -t args < <(jq -r '.process.args[]' "$bundle/config.json"); fi
  cwd=$(jq -r '.process.cwd' "$bundle/config.json")
  userspec=$(jq -r '"\(.process.user.uid):\(.process.user.gid)"' "$bundle/config.json")
  unshare --pid --fork --mount --propagation private --net --ipc --uts /bin/bash -c '
    R=$1 U=$2 W=$3 N=$4
    shift 4
    ENV=("${@:1:N}")
    shift "$N"
    mount -t proc proc "$R/proc"
    mount -t sysfs sysfs "$R/sys"
    mount --bind /dev "$R/dev"
    ip link set lo up
    if [ "$W" != / ]; then
      exec env -i "${ENV[@]}" '"$CHROOT"' --userspec="$U" "$R" /bin/sh -c "cd \"\$0\" && exec \"\$@\"" "$W" "$@"
    fi
    exec env -i "${ENV[@]}" '"$CHROOT"' --userspec="$U" "$R" "$@"
  ' start_container "$bundle/rootfs" "$userspec" "$cwd" "${#env[@]}" "${env[@]}" "${args[@]}" \
    < /dev/null > "$TMP/$name.log" 2>&1 &
  UPID=$!
  UPIDS+=("$UPID")
  CPID=$(child_of "$UPID") || CPID=""
}

# cexec CPID BUNDLE CMD...: runs CMD chrooted in BUNDLE/rootfs, in the
# namespaces of CPID, with the image's environment.
cexec() {
  local cpid=$1 bundle=$2
  local -a env
  shift 2
  mapfile -t env < <(jq -r '.process.env[]' "$bundle/config.json")
  nsenter -t "$cpid" -p -m -n -i -u -- env -i "${env[@]}" "$CHROOT" "$bundle/rootfs" "$@"
}

# http_get CPID PORT: HTTP status of GET / on 127.0.0.1:PORT in CPID's netns,
# retried for up to 5 s while the server starts.
http_get() {
  local i code=000
  for ((i = 0; i < 25; i++)); do
    code=$(nsenter -t "$1" -n -- curl -s -o /dev/null --max-time 2 -w '%{http_code}' "http://127.0.0.1:$2/" || true)
    [ "$code" = 000 ] || break
    sleep 0.2
  done
  echo "$code"
}

# stop_container [SIGNAL]: signals the container's PID 1 and waits (10 s)
# for it; sets STOP_RC to its exit status, or "timeout".
stop_container() {
  local i
  kill "-${1:-TERM}" "$CPID" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    kill -0 "$UPID" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$UPID" 2>/dev/null; then
    kill -KILL "$UPID" 2>/dev/null || true
    wait "$UPID" 2>/dev/null || true
    STOP_RC=timeout
    return 0
  fi
  STOP_RC=0
  wait "$UPID" || STOP_RC=$?
}

# --- busybox (the default test image) --------------------------------------
if pull_unpack busybox e2e-test-images/busybox:1.29-2; then
  R=$TMP/busybox/rootfs
  expect_eq "busybox: echo -n hello" hello "$(ns_run "$R" 'chroot "$R" echo -n hello')"
  expect_eq "busybox: sh -c 'echo -n hello'" hello "$(ns_run "$R" 'chroot "$R" /bin/sh -c "echo -n hello"')"
  missing=""
  for a in sh top echo sleep pgrep ls cat hostname id grep touch mount mkdir dd brctl netstat ipcs \
           pidof ping chmod seq test [ nc httpd; do
    [ -e "$R/bin/$a" ] || missing+=" $a"
  done
  expect_eq "busybox: commands critest runs are in /bin" "" "$missing"
  missing=""
  for a in $(chroot "$R" /bin/busybox --list); do
    [ -e "$R/bin/$a" ] || missing+=" $a"
  done
  expect_eq "busybox: every applet of 'busybox --list' is in /bin" "" "$missing"
  expect_true "busybox: /bin/ls is a regular file, not a symlink" test -f "$R/bin/ls" -a ! -L "$R/bin/ls"
  others=$(ls -d "$R"/{usr/local/sbin,usr/local/bin,usr/sbin,usr/bin,sbin}/ls 2>/dev/null || true)
  expect_eq "busybox: no other ls on PATH" "" "$others"
  expect_eq "busybox: /tmp mode" "1777 0 0" "$(stat -c '%a %u %g' "$R/tmp")"
  expect_true "busybox: /etc /root /var/run /proc /sys /dev are directories" \
    test -d "$R/etc" -a -d "$R/root" -a -d "$R/var/run" -a -d "$R/proc" -a -d "$R/sys" -a -d "$R/dev"
  expect_eq "busybox: file owners are all 0:0" "" "$(find "$R" \( ! -uid 0 -o ! -gid 0 \) -print | head -3)"
  expect_eq "busybox: id -nu as uid 65534" nobody "$(ns_run "$R" 'chroot --userspec=65534:65534 "$R" id -nu')"
  expect_eq "busybox: id -u / id -g as 1001:1002" "1001:1002" \
    "$(ns_run "$R" 'chroot --userspec=1001:1002 "$R" /bin/sh -c "echo \$(id -u):\$(id -g)"')"
  expect_eq "busybox: id -u www-data" 33 "$(ns_run "$R" 'chroot "$R" id -u www-data')"
  expect_eq "busybox: masked /bin/ls (MaskedPaths)" "/bin/sh: ls: Permission denied" \
    "$(ns_run "$R" 'mount --bind /dev/null "$R/bin/ls"; chroot "$R" /bin/sh -c ls 2>&1 >/dev/null || true')"
  expect_eq "busybox: read-only /tmp (ReadonlyPaths)" "touch: /tmp/test: Read-only file system" \
    "$(ns_run "$R" 'mount --bind "$R/tmp" "$R/tmp"; mount -o remount,bind,ro "$R/tmp"
                    chroot "$R" touch /tmp/test 2>&1 || true')"
  expect_eq "busybox: read-only rootfs (ReadOnlyRootfs)" "touch: test.go: Read-only file system" \
    "$(ns_run "$R" 'mount --bind "$R" "$R"; mount -o remount,bind,ro "$R"
                    chroot "$R" /bin/sh -c "cd / && touch test.go" 2>&1 || true')"
  expect_eq "busybox: writable rootfs (touch test.go in /)" ok \
    "$(ns_run "$R" 'chroot "$R" /bin/sh -c "cd / && touch test.go && rm test.go && echo ok"')"
  expect_eq "busybox: pgrep sleep || true with no sleep (no output at all)" "" \
    "$(ns_run "$R" 'chroot "$R" /bin/sh -c "pgrep sleep || true" 2>&1')"
  expect_eq "busybox: pgrep finds a running sleep" found \
    "$(ns_run "$R" 'chroot "$R" /bin/sh -c "sleep 30 & p=\$!; sleep 0.2; [ \"\$(pgrep sleep)\" = \"\$p\" ] && pgrep -x sleep >/dev/null && echo found; kill \$p"')"
  expect_eq "busybox: sleep infinity" alive \
    "$(ns_run "$R" 'chroot "$R" /bin/sh -c "sleep infinity & p=\$!; sleep 0.3; kill -0 \$p && echo alive; kill \$p"')"
  out=$(ns_run "$R" 'id=$(ipcmk -M 1048576 | sed "s/^Shared memory id: //"); echo "id=$id"; chroot "$R" ipcs -m')
  shm_id=$(sed -n 's/^id=//p' <<< "$out")
  expect_true "busybox: ipcs -m lists a segment made with ipcmk -M 1048576" \
    grep -Eq "^0x[0-9a-f]+ +$shm_id +root +644 +1048576" <<< "$out"
  expect_contains "busybox: shell loop and \$(...)" 3 \
    "$(ns_run "$R" 'chroot "$R" /bin/sh -c "i=0; while [ \$i -lt 3 ]; do i=\$((i+1)); done; echo \$(echo \$i)"')"
  expect_eq "busybox: hostname" berth-check \
    "$(ns_run "$R" 'hostname berth-check; chroot "$R" hostname')"
  expect_eq "busybox: top -b -n 1, mount, netstat -ln, pidof, brctl, seq, dd, ping" ok \
    "$(ns_run "$R" 'chroot "$R" /bin/sh -ec "
        top -b -n 1 | grep -q PID
        mount | grep -q proc
        netstat -ln >/dev/null
        sleep 30 & p=\$!; sleep 0.2; [ \"\$(pidof sleep)\" = \"\$p\" ]; kill \$p
        brctl addbr berthbr0 && brctl delbr berthbr0
        [ \"\$(seq 3 | tr -d \"\\n\")\" = 123 ]
        dd if=/dev/zero of=/dev/null bs=1M count=1 2>/dev/null
        ping -c 1 -W 2 127.0.0.1 >/dev/null
        echo ok" 2>&1')"

  out=$(ns_run "$R" 'setpriv --bounding-set=-net_raw --inh-caps=-net_raw \
                       chroot "$R" ping -c 1 -W 1 127.0.0.1 2>&1 >/dev/null || true')
  expect_contains "busybox: ping without CAP_NET_RAW fails with 'permission denied'" "permission denied" "$out"

  # The default container command: top as PID 1, no TTY, must stop on SIGTERM.
  start_container top "$TMP/busybox" top
  sleep 0.5
  if [ -n "$CPID" ] && kill -0 "$CPID" 2>/dev/null; then
    pass "busybox: top runs as PID 1 without a TTY"
    # busybox top catches SIGTERM and exits with 128+15 (as PID 1 it cannot
    # re-raise the signal on itself).
    stop_container TERM
    expect_eq "busybox: top as PID 1 exits on SIGTERM" 143 "$STOP_RC"
  else
    fail "busybox: top runs as PID 1 without a TTY" "$(cat "$TMP/top.log")"
  fi
fi

# --- nginx and hostnet-nginx ------------------------------------------------
check_nginx() { # name ref port
  local name=$1 ref=$2 port=$3 R out
  pull_unpack "$name" "$ref" || return 0
  R=$TMP/$name/rootfs
  start_container "$name" "$TMP/$name"
  if [ -z "$CPID" ]; then fail "$ref: start" "$(cat "$TMP/$name.log")"; return 0; fi
  expect_eq "$ref: GET / on :$port answers 200" 200 "$(http_get "$CPID" "$port")"
  expect_eq "$ref: /var/run/nginx.pid holds PID 1" 1 "$(cexec "$CPID" "$TMP/$name" cat /var/run/nginx.pid 2>&1)"
  expect_contains "$ref: /proc/1/cmdline contains 'master process'" "master process" \
    "$(cexec "$CPID" "$TMP/$name" cat /proc/1/cmdline 2>&1 | tr '\0' ' ')"
  expect_eq "$ref: comm of PID 1" nginx "$(cexec "$CPID" "$TMP/$name" cat /proc/1/comm 2>&1)"
  expect_eq "$ref: pidof nginx" 1 "$(cexec "$CPID" "$TMP/$name" pidof nginx 2>&1)"
  expect_eq "$ref: nginx seen from the host PID namespace (HostPID)" nginx "$(cat "/proc/$CPID/comm")"
  expect_eq "$ref: sh, cat, sleep, grep present" ok \
    "$(cexec "$CPID" "$TMP/$name" /bin/sh -c 'echo x | grep -q x && sleep 0 && cat /dev/null && echo ok' 2>&1)"
  stop_container TERM
  expect_eq "$ref: exits 0 on SIGTERM" 0 "$STOP_RC"
}
check_nginx nginx e2e-test-images/nginx:1.14-2 80
check_nginx hostnet-nginx k8s-staging-cri-tools/hostnet-nginx-amd64:latest 12003

# --- httpd -------------------------------------------------------------------
if pull_unpack httpd e2e-test-images/httpd:2.4.39-4; then
  R=$TMP/httpd/rootfs
  start_container httpd "$TMP/httpd"
  if [ -n "$CPID" ]; then
    expect_eq "httpd: GET / on :80 answers 200" 200 "$(http_get "$CPID" 80)"
    expect_eq "httpd: echo httpd" httpd "$(cexec "$CPID" "$TMP/httpd" echo httpd 2>&1)"
    codes=$(for i in $(seq 1 40); do
              nsenter -t "$CPID" -n -- curl -s -o /dev/null --max-time 5 -w '%{http_code}\n' http://127.0.0.1:80/ &
            done; wait)
    expect_eq "httpd: 40 concurrent GETs all answer 200" 40 "$(grep -c '^200$' <<< "$codes" || true)"
    stop_container TERM
    expect_eq "httpd: exits 0 on SIGTERM" 0 "$STOP_RC"
    expect_contains "httpd: log mentions httpd" httpd "$(cat "$TMP/httpd.log")"
  else
    fail "httpd: start" "$(cat "$TMP/httpd.log")"
  fi
fi

# --- nonewprivs -------------------------------------------------------------
if pull_unpack nonewprivs e2e-test-images/nonewprivs:1.3; then
  R=$TMP/nonewprivs/rootfs
  manifest=$(jq -r '.manifests[] | select(.annotations."org.opencontainers.image.ref.name" == "nonewprivs") | .digest' "$OCI/index.json")
  top_layer=$(jq -r '.layers[-1].digest' "$OCI/blobs/${manifest/://}")
  listing=$(tar -tvzf "$OCI/blobs/${top_layer/://}" | grep ' usr/local/bin/nnp$' || true)
  expect_true "nonewprivs: layer entry usr/local/bin/nnp is -rwsr-xr-x 0/0" grep -q '^-rwsr-xr-x 0/0 ' <<< "$listing"
  expect_eq "nonewprivs: unpacked nnp mode and owner" "4755 0 0" "$(stat -c '%a %u %g' "$R/usr/local/bin/nnp")"
  expect_eq "nonewprivs: nnp as root" "Effective uid: 0" "$(ns_run "$R" 'chroot "$R" nnp')"
  expect_eq "nonewprivs: nnp as uid 1000 (setuid works)" "Effective uid: 0" \
    "$(ns_run "$R" 'chroot --userspec=1000:1000 "$R" nnp')"
  expect_eq "nonewprivs: nnp as uid 1000 with no_new_privs" "Effective uid: 1000" \
    "$(ns_run "$R" 'setpriv --no-new-privs chroot --userspec=1000:1000 "$R" nnp')"
fi

# --- pause -------------------------------------------------------------------
if pull_unpack pause pause:3.9; then
  R=$TMP/pause/rootfs
  expect_eq "pause: rootfs is just /pause" "./pause" "$(cd "$R" && find . -mindepth 1 | sort | tr '\n' ' ' | sed 's/ $//')"
  start_container pause "$TMP/pause"
  sleep 0.3
  if [ -n "$CPID" ] && kill -0 "$CPID" 2>/dev/null; then
    pass "pause: runs as PID 1 (uid 65535)"
    stop_container TERM
    expect_eq "pause: exits 0 on SIGTERM" 0 "$STOP_RC"
  else
    fail "pause: runs as PID 1 (uid 65535)" "$(cat "$TMP/pause.log")"
  fi
fi

# --- users and groups ------------------------------------------------------
if pull_unpack predefined-group k8s-staging-cri-tools/test-image-predefined-group:latest; then
  R=$TMP/predefined-group/rootfs
  expect_eq "predefined-group: id default-user" \
    "uid=1000(default-user) gid=1000(default-user) groups=1000(default-user),50000(group-defined-in-image)" \
    "$(ns_run "$R" 'chroot "$R" id default-user')"
  expect_eq "predefined-group: uid 1000 is default-user" default-user \
    "$(ns_run "$R" 'chroot --userspec=1000:1000 "$R" id -un')"
fi
if pull_unpack user-username k8s-staging-cri-tools/test-image-user-username:latest; then
  R=$TMP/user-username/rootfs
  expect_eq "user-username: www-data resolves" "33:33" \
    "$(ns_run "$R" 'chroot "$R" /bin/sh -c "echo \$(id -u www-data):\$(id -g www-data)"')"
fi

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
