//! Waiting for a process that is not berthd's child to exit: a pidfd (pidfd_open(2), Linux
//! 5.3+) becomes readable when the process ends. Neither std nor nix wraps pidfd_open, hence
//! the one `unsafe` block of this crate.

#![allow(unsafe_code)]

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// A handle on process `pid` that outlives PID reuse: once opened it names that process.
pub fn open(pid: u32) -> io::Result<OwnedFd> {
    let pid =
        libc::pid_t::try_from(pid).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: pidfd_open takes a PID and a flags word and returns a new fd or -1; it touches no
    // memory of ours.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0 as libc::c_uint) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = i32::try_from(fd).map_err(|_| io::Error::from(io::ErrorKind::InvalidData))?;
    // SAFETY: the kernel just returned `fd` as a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Resolves when the process behind `fd` has exited.
pub async fn exited(fd: OwnedFd) -> io::Result<()> {
    // SAFETY: the AsyncFd owns the OwnedFd, so the descriptor stays open and names the same
    // pidfd for the AsyncFd's whole life.
    let fd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }
        .map_err(|err| err.into_parts().1)?;
    let _ready = fd.readable().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn readable_when_the_process_exits() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let fd = open(child.id()).unwrap();
        let waiting = tokio::spawn(exited(fd));
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!waiting.is_finished());
        child.kill().unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(5), waiting)
            .await
            .expect("pidfd readable after exit")
            .unwrap()
            .unwrap();
        child.wait().unwrap();
    }

    #[test]
    fn a_gone_process_cannot_be_opened() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(open(pid).is_err());
    }
}
