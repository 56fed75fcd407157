//! `berth-shim ns-holder`: creates a pod's user namespace and, owned by it, the pod's network,
//! IPC and UTS namespaces, then holds them until berthd has pinned them.
//!
//! berthd cannot do this itself: the kernel lets only a single-threaded process create a
//! user namespace, and berthd has many threads. The holder does one `unshare(2)` with all four
//! flags (the new namespaces are then owned by the new user namespace), prints `ready` on
//! stdout, and waits for EOF on stdin. Meanwhile berthd bind-mounts
//! `/proc/<holder>/ns/{user,net,ipc,uts}` onto the pod's pin files and writes the ID maps to
//! `/proc/<holder>/{uid,gid}_map`; then it closes the holder's stdin and the holder exits.
//! On failure the holder prints `error: <reason>` and exits 1.

use std::io::{Read, Write};

use nix::sched::{unshare, CloneFlags};

/// Runs the holder; returns the process exit code.
pub fn main() -> i32 {
    let flags = CloneFlags::CLONE_NEWUSER
        | CloneFlags::CLONE_NEWNET
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWUTS;
    let mut out = std::io::stdout();
    if let Err(errno) = unshare(flags) {
        let _ = writeln!(
            out,
            "error: unshare user, net, ipc and uts namespaces: {errno}"
        );
        return 1;
    }
    if writeln!(out, "ready").and_then(|()| out.flush()).is_err() {
        return 1;
    }
    // Whatever arrives before EOF is ignored; EOF (or an error) ends the wait.
    let mut sink = [0u8; 64];
    let mut stdin = std::io::stdin();
    while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
    0
}
