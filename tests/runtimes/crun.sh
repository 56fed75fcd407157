#!/bin/sh
# crun, as berth's tests run it (the crun runtime handler's `path` in tests/it/handlers.rs and
# in tests/run.sh's critest run with crun as the default handler).
#
# crun 1.8 refuses every command on a host in cgroup "hybrid" mode (cgroup v1 controllers
# mounted under /sys/fs/cgroup, cgroup v2 at /sys/fs/cgroup/unified) when a controller is
# attached to the v2 hierarchy: "cgroups in hybrid mode not supported, drop all controllers
# from cgroupv2". That is the case on hosts whose v1 hierarchy lacks a controller (hugetlb on
# the test VMs), which stays with v2. There this runs crun in a private mount namespace of
# its own in which the v2 root's cgroup.controllers reads empty: crun then manages the v1
# controllers as it does on any hybrid host. The namespace keeps the host's mount propagation
# (shared mounts stay shared, so the containers' rshared/rslave volumes work); only its copy
# of the v2 mount is made private first, so the mask never reaches the host. Elsewhere it
# runs crun as it is.
# BERTH_CRUN names the crun binary (default: crun from PATH).
set -eu
crun=${BERTH_CRUN:-crun}
unified=/sys/fs/cgroup/unified
if [ "$(stat -f -c %T /sys/fs/cgroup 2>/dev/null)" = tmpfs ] &&
  [ -n "$(cat "$unified/cgroup.controllers" 2>/dev/null)" ]; then
  exec unshare --mount --propagation unchanged -- /bin/sh -c \
    'mount --make-private "$0" && mount --bind /dev/null "$0/cgroup.controllers" && exec "$@"' \
    "$unified" "$crun" "$@"
fi
exec "$crun" "$@"
