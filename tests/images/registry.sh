#!/usr/bin/env bash
# Starts / stops a local image registry (Debian's docker-registry) for tests.
#
#   tests/images/registry.sh [--addr HOST:PORT] start <workdir> [--htpasswd FILE]
#   tests/images/registry.sh stop  <workdir>
#
# start: writes <workdir>/config.yml, keeps the storage in <workdir>/storage
# and the log in <workdir>/registry.log, listens on 127.0.0.1:5000 (override
# with --addr HOST:PORT, before or after the workdir, or with
# BERTH_REGISTRY_ADDR=HOST:PORT; the flag wins), writes the address to
# <workdir>/registry.addr and the PID to <workdir>/registry.pid and returns
# once http://ADDR/v2/ answers.
# --htpasswd FILE turns on basic auth with a bcrypt htpasswd file (then
# /v2/ answers 401, which also counts as ready).
# stop: kills exactly the PID in <workdir>/registry.pid and waits for it.
set -euo pipefail

PROG=registry.sh
ADDR=${BERTH_REGISTRY_ADDR:-127.0.0.1:5000}
START_TIMEOUT=20
STOP_TIMEOUT=10

die() { echo "$PROG: error: $*" >&2; exit 1; }
usage() {
  echo "usage: $PROG [--addr HOST:PORT] start <workdir> [--htpasswd FILE] [--addr HOST:PORT]" >&2
  echo "       $PROG stop <workdir>" >&2
  exit 2
}

set_addr() {
  case "$1" in
    *:*) ;;
    *) die "--addr expects HOST:PORT, got '$1'" ;;
  esac
  [[ "${1##*:}" =~ ^[0-9]+$ ]] || die "--addr expects HOST:PORT with a numeric port, got '$1'"
  ADDR=$1
}

# Is PID alive (and not a zombie)?
alive() {
  local state
  state=$(awk '{ sub(/.*\) /, ""); print $1 }' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

# Is PID the registry started for this workdir?
is_our_registry() {
  local cmdline
  cmdline=$(tr '\0' ' ' < "/proc/$1/cmdline" 2>/dev/null) || return 1
  [[ "$cmdline" == *docker-registry*"$WORKDIR/config.yml"* ]]
}

http_code() {
  curl -s -o /dev/null --max-time 2 -w '%{http_code}' "http://$ADDR/v2/" 2>/dev/null || true
}

show_log() {
  if [ -s "$WORKDIR/registry.log" ]; then
    echo "---- $WORKDIR/registry.log ----" >&2
    tail -n 50 "$WORKDIR/registry.log" >&2
    echo "----" >&2
  fi
}

cmd_start() {
  local htpasswd="" pid port i code
  while [ $# -gt 0 ]; do
    case "$1" in
      --htpasswd) [ $# -ge 2 ] || usage; htpasswd=$(readlink -f "$2"); shift 2 ;;
      --htpasswd=*) htpasswd=$(readlink -f "${1#*=}"); shift ;;
      --addr) [ $# -ge 2 ] || usage; set_addr "$2"; shift 2 ;;
      --addr=*) set_addr "${1#*=}"; shift ;;
      *) usage ;;
    esac
  done
  command -v docker-registry >/dev/null || die "docker-registry not found (apt-get install docker-registry)"
  command -v curl >/dev/null || die "curl not found"
  [ -d "$WORKDIR" ] || die "workdir $WORKDIR does not exist"
  if [ -n "$htpasswd" ] && [ ! -f "$htpasswd" ]; then
    die "htpasswd file $htpasswd not found"
  fi

  if [ -f "$WORKDIR/registry.pid" ]; then
    pid=$(cat "$WORKDIR/registry.pid")
    if alive "$pid" && is_our_registry "$pid"; then
      die "a registry for $WORKDIR is already running (PID $pid); stop it first"
    fi
    rm -f "$WORKDIR/registry.pid"
  fi

  port=${ADDR##*:}
  if command -v ss >/dev/null && [ -n "$(ss -Hltn "sport = :$port" 2>/dev/null)" ]; then
    die "port $port is already in use, cannot start the registry on $ADDR:
$(ss -ltnp "sport = :$port" 2>/dev/null)"
  fi
  code=$(http_code)
  if [ "$code" != 000 ]; then
    die "something already answers on http://$ADDR/ (HTTP $code); cannot start the registry there"
  fi

  mkdir -p "$WORKDIR/storage"
  {
    echo "version: 0.1"
    echo "log:"
    echo "  level: info"
    echo "  fields:"
    echo "    service: berth-test-registry"
    echo "storage:"
    echo "  filesystem:"
    echo "    rootdirectory: $WORKDIR/storage"
    echo "  delete:"
    echo "    enabled: true"
    echo "  cache:"
    echo "    blobdescriptor: inmemory"
    echo "http:"
    echo "  addr: $ADDR"
    echo "  headers:"
    echo "    X-Content-Type-Options: [nosniff]"
    if [ -n "$htpasswd" ]; then
      echo "auth:"
      echo "  htpasswd:"
      echo "    realm: berth-test-registry"
      echo "    path: $htpasswd"
    fi
  } > "$WORKDIR/config.yml"

  # A clean environment: docker-registry reads REGISTRY_* variables as config
  # overrides.  setsid detaches it from the caller's process group and
  # terminal; it is not a group leader here, so it execs in place and $! is
  # the registry's own PID.
  : > "$WORKDIR/registry.log"
  env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/ \
    setsid docker-registry serve "$WORKDIR/config.yml" \
    < /dev/null >> "$WORKDIR/registry.log" 2>&1 &
  pid=$!
  echo "$pid" > "$WORKDIR/registry.pid"
  echo "$ADDR" > "$WORKDIR/registry.addr"

  for ((i = 0; i < START_TIMEOUT * 5; i++)); do
    if ! alive "$pid"; then
      show_log
      rm -f "$WORKDIR/registry.pid"
      die "docker-registry (PID $pid) exited during start-up"
    fi
    code=$(http_code)
    if [ "$code" = 200 ] || { [ -n "$htpasswd" ] && [ "$code" = 401 ]; }; then
      echo "$PROG: registry listening on http://$ADDR (PID $pid, storage $WORKDIR/storage)"
      return 0
    fi
    sleep 0.2
  done
  show_log
  kill "$pid" 2>/dev/null || true
  rm -f "$WORKDIR/registry.pid"
  die "docker-registry (PID $pid) did not answer on http://$ADDR/v2/ within ${START_TIMEOUT}s (last HTTP code '$code')"
}

cmd_stop() {
  local pid i
  [ $# -eq 0 ] || usage
  if [ ! -f "$WORKDIR/registry.pid" ]; then
    echo "$PROG: no $WORKDIR/registry.pid, nothing to stop"
    return 0
  fi
  pid=$(cat "$WORKDIR/registry.pid")
  [[ "$pid" =~ ^[0-9]+$ ]] || die "$WORKDIR/registry.pid does not hold a PID"
  if ! alive "$pid"; then
    rm -f "$WORKDIR/registry.pid" "$WORKDIR/registry.addr"
    echo "$PROG: registry (PID $pid) was not running"
    return 0
  fi
  is_our_registry "$pid" || die "PID $pid is not the registry of $WORKDIR; not killing it"
  kill -TERM "$pid"
  for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
    alive "$pid" || break
    sleep 0.1
  done
  if alive "$pid"; then
    echo "$PROG: registry (PID $pid) ignored SIGTERM for ${STOP_TIMEOUT}s, sending SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
      alive "$pid" || break
      sleep 0.1
    done
    alive "$pid" && die "registry (PID $pid) did not exit"
  fi
  rm -f "$WORKDIR/registry.pid" "$WORKDIR/registry.addr"
  echo "$PROG: registry (PID $pid) stopped"
}

while [ $# -gt 0 ]; do
  case "$1" in
    --addr) [ $# -ge 2 ] || usage; set_addr "$2"; shift 2 ;;
    --addr=*) set_addr "${1#*=}"; shift ;;
    *) break ;;
  esac
done
[ $# -ge 2 ] || usage
ACTION=$1
WORKDIR=$(readlink -m "$2")
shift 2
case "$ACTION" in
  start) cmd_start "$@" ;;
  stop) cmd_stop "$@" ;;
  *) usage ;;
esac
