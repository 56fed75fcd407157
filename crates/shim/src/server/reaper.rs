//! Signals and reaping. The shim is a child subreaper: the container's init is re-parented to
//! it when `runc create` exits, and so is anything else that gets orphaned below it. SIGCHLD,
//! SIGTERM, SIGINT and SIGHUP are blocked and read from a signalfd in the main loop.
//!
//! SIGTERM, SIGINT and SIGHUP are logged and ignored: a shim lives exactly as long as its
//! container (stop the container with `runc kill`; SIGKILL still ends a shim). Children do not
//! inherit the blocked mask: std's `Command` resets the mask in the child before exec.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};

use nix::errno::Errno;
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

/// The signalfd, with the handled signals blocked.
pub(crate) struct Reaper {
    sfd: SignalFd,
}

/// What one drain of the signalfd found.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    pub child: bool,
    pub ignored: Vec<Signal>,
}

impl Reaper {
    /// Becomes a child subreaper and starts receiving signals through a signalfd.
    pub(crate) fn new() -> io::Result<Self> {
        nix::sys::prctl::set_child_subreaper(true)?;
        let mut mask = SigSet::empty();
        for s in [
            Signal::SIGCHLD,
            Signal::SIGTERM,
            Signal::SIGINT,
            Signal::SIGHUP,
        ] {
            mask.add(s);
        }
        mask.thread_block()?;
        let sfd = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)?;
        Ok(Reaper { sfd })
    }

    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.sfd.as_fd()
    }

    /// Reads every queued signal.
    pub(crate) fn drain(&mut self) -> io::Result<Pending> {
        let mut p = Pending::default();
        loop {
            match self.sfd.read_signal() {
                Ok(Some(info)) => match Signal::try_from(info.ssi_signo as i32) {
                    Ok(Signal::SIGCHLD) => p.child = true,
                    Ok(s) => p.ignored.push(s),
                    Err(_) => {}
                },
                Ok(None) => return Ok(p),
                Err(Errno::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// Reaps every child that has exited; returns each one's PID and exit code.
pub(crate) fn reap_all() -> Vec<(Pid, i32)> {
    let mut reaped = Vec::new();
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return reaped,
            Ok(status) => {
                if let (Some(pid), Some(code)) = (status.pid(), exit_code(&status)) {
                    reaped.push((pid, code));
                }
            }
            Err(Errno::EINTR) => {}
            Err(_) => return reaped,
        }
    }
}

/// Exit status, or 128 + signal for a process killed by a signal (the shell convention that
/// kubelet expects: SIGKILL → 137).
pub(crate) fn exit_code(status: &WaitStatus) -> Option<i32> {
    match *status {
        WaitStatus::Exited(_, code) => Some(code),
        WaitStatus::Signaled(_, sig, _) => Some(128 + sig as i32),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes() {
        let p = Pid::from_raw(5);
        assert_eq!(exit_code(&WaitStatus::Exited(p, 3)), Some(3));
        assert_eq!(
            exit_code(&WaitStatus::Signaled(p, Signal::SIGKILL, false)),
            Some(137)
        );
        assert_eq!(
            exit_code(&WaitStatus::Signaled(p, Signal::SIGTERM, true)),
            Some(143)
        );
        assert_eq!(exit_code(&WaitStatus::Stopped(p, Signal::SIGSTOP)), None);
    }
}
