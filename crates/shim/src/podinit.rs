//! `berth-shim pod-init`: the init process of a pod's shared PID namespace.
//!
//! berthd starts it as `unshare --pid --fork -- berth-shim pod-init`, so it is PID 1 of a
//! new PID namespace that the pod's containers then join. It does what a PID 1 must: reap
//! every orphan that is re-parented to it, and otherwise wait. SIGTERM or SIGINT end it
//! (and with it the namespace, once the pod's containers are gone).

use nix::errno::Errno;
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};

/// Runs the reaper loop; returns the process exit code.
pub fn main() -> i32 {
    let mut signals = SigSet::empty();
    for signal in [
        Signal::SIGCHLD,
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
    ] {
        signals.add(signal);
    }
    if nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&signals), None).is_err() {
        return 1;
    }
    loop {
        match signals.wait() {
            Ok(Signal::SIGCHLD) => reap_all(),
            Ok(Signal::SIGTERM | Signal::SIGINT) => return 0,
            Ok(_) | Err(_) => {}
        }
    }
}

/// Collects every exited child without blocking.
fn reap_all() {
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return,
            Ok(_) => {}
            Err(Errno::EINTR) => {}
            Err(_) => return,
        }
    }
}
