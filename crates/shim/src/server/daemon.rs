//! Process plumbing at startup: taking over inherited fds and detaching from berthd.
//!
//! This is one of the few modules allowed `unsafe` (see the crate docs): `fork(2)`, and turning
//! inherited fd numbers into owned fds. Everything here runs before the shim has started any
//! thread or child.

#![allow(unsafe_code)]

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use nix::sys::wait::waitpid;
use nix::unistd::{dup2_stderr, dup2_stdin, dup2_stdout, fork, pipe2, setsid, ForkResult};

/// Closes every inherited fd above 2 except `keep`, so runc and the container inherit nothing
/// from berthd by accident (berthd's fds are close-on-exec, but a shim started by hand may not
/// be so lucky).
pub(crate) fn close_inherited_fds(keep: Option<RawFd>) -> io::Result<()> {
    // Collect first, close after: the directory stream has an fd of its own.
    let fds: Vec<RawFd> = std::fs::read_dir("/proc/self/fd")?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    for fd in fds {
        if fd > 2 && Some(fd) != keep && is_open(fd) {
            // SAFETY: nothing in this process owns `fd`: the shim has not opened any file
            // yet (this runs first thing in main, single-threaded), the read_dir stream above
            // is already closed (is_open filters out its number), and `keep` is skipped.
            // Wrapping it in an OwnedFd and dropping it closes it exactly once.
            drop(unsafe { OwnedFd::from_raw_fd(fd) });
        }
    }
    Ok(())
}

fn is_open(fd: RawFd) -> bool {
    // SAFETY: F_GETFD only inspects the descriptor table; a closed `fd` yields EBADF and no
    // I/O-safety assumption is relied on for the duration of this call.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    fcntl(fd, FcntlArg::F_GETFD).is_ok()
}

/// Takes ownership of the readiness fd named on the command line and marks it close-on-exec.
pub(crate) fn take_inherited_fd(fd: RawFd) -> io::Result<OwnedFd> {
    if fd <= 2 || !is_open(fd) {
        return Err(io::Error::from_raw_os_error(nix::libc::EBADF));
    }
    // SAFETY: berthd passed `fd` to us for this purpose (checked open just above). It was
    // excluded from close_inherited_fds and nothing else in this process refers to it, so this
    // OwnedFd is its only owner.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    fcntl(&owned, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))?;
    Ok(owned)
}

/// Points stdin, stdout and stderr at /dev/null.
pub(crate) fn stdio_to_devnull() -> io::Result<()> {
    let null = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")?;
    dup2_stdin(&null)?;
    dup2_stdout(&null)?;
    dup2_stderr(&null)?;
    debug_assert!(null.as_raw_fd() > 2);
    Ok(())
}

/// Forks; the parent (berthd's direct child) exits at once so berthd can reap it, and the child
/// continues in a new session. Returns in the child only.
pub(crate) fn detach() -> io::Result<()> {
    // SAFETY: the process is single-threaded here (no thread has been spawned and std starts
    // none on its own), so the child's copy of every lock and allocator state is consistent.
    // The parent only calls exit.
    match unsafe { fork() }? {
        ForkResult::Parent { .. } => std::process::exit(0),
        ForkResult::Child => {}
    }
    setsid()?;
    // Do not pin whatever mount berthd's working directory is on.
    nix::unistd::chdir("/")?;
    Ok(())
}

/// Runs `f` in a forked child and returns its result to the parent (through a pipe), then
/// reaps the child. `Err(io)` if the child could not be forked or died without answering.
///
/// The shim is single-threaded when it calls this, which is what makes `fork` sound; the child
/// ends with `exit` and never returns into the caller.
pub(crate) fn run_in_child<F>(f: F) -> io::Result<Result<Vec<u8>, Vec<u8>>>
where
    F: FnOnce() -> Result<Vec<u8>, Vec<u8>>,
{
    let (r, w) = pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    // SAFETY: single-threaded process (see above): the child gets consistent copies of the
    // allocator and every lock. The child only runs `f` (ordinary code, including spawning
    // runc) and exits; it never returns into the caller's frames.
    match unsafe { fork() }? {
        ForkResult::Child => {
            drop(r);
            let (tag, body) = match f() {
                Ok(b) => (b'+', b),
                Err(b) => (b'-', b),
            };
            let mut out = File::from(w);
            let ok = out.write_all(&[tag]).and_then(|()| out.write_all(&body));
            std::process::exit(if ok.is_ok() { 0 } else { 1 });
        }
        ForkResult::Parent { child } => {
            drop(w);
            // The child owns what `f` captured (e.g. the container's ends of its pipes); our
            // copies must go now.
            drop(f);
            let mut msg = Vec::new();
            let read = File::from(r).read_to_end(&mut msg);
            while let Err(Errno::EINTR) = waitpid(child, None) {}
            read?;
            match msg.split_first() {
                Some((b'+', body)) => Ok(Ok(body.to_vec())),
                Some((b'-', body)) => Ok(Err(body.to_vec())),
                _ => Err(io::Error::other("helper process died without an answer")),
            }
        }
    }
}
