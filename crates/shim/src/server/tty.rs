//! TTY containers: receiving the pty master from runc (`--console-socket`) and resizing it.
//!
//! One of the few modules allowed `unsafe` (see the crate docs): taking ownership of the fds the
//! kernel installs for us with `SCM_RIGHTS`, and the `TIOCSWINSZ` ioctl.

#![allow(unsafe_code)]

use std::io::{self, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::pty::Winsize;
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};

use crate::paths::CONSOLE_SOCKET;
use crate::sockpath::SocketPath;

nix::ioctl_write_ptr_bad!(tiocswinsz, nix::libc::TIOCSWINSZ, Winsize);

/// The listening socket runc connects to; removed from the state dir when dropped.
pub(crate) struct ConsoleSocket {
    listener: UnixListener,
    file: PathBuf,
    for_runc: SocketPath,
}

impl ConsoleSocket {
    /// Binds `<state-dir>/console.sock` with mode 0600.
    pub(crate) fn bind(state_dir: &Path) -> io::Result<Self> {
        Self::bind_named(state_dir, CONSOLE_SOCKET)
    }

    /// Binds `<state-dir>/<name>` with mode 0600 (one per TTY exec session).
    pub(crate) fn bind_named(state_dir: &Path, name: &str) -> io::Result<Self> {
        let file = state_dir.join(name);
        let listener = super::control::bind_private(state_dir, name)?;
        listener.set_nonblocking(true)?;
        Ok(ConsoleSocket {
            listener,
            file,
            for_runc: SocketPath::for_children(state_dir, name)?,
        })
    }

    /// The path to give runc as `--console-socket`.
    pub(crate) fn runc_path(&self) -> &Path {
        self.for_runc.path()
    }

    /// Accepts runc's connection and takes the pty master it sends. runc has already exited
    /// when this is called: its connection and message wait in the socket's queue.
    pub(crate) fn receive(self, timeout: Duration) -> io::Result<OwnedFd> {
        let mut pfd = [PollFd::new(self.listener.as_fd(), PollFlags::POLLIN)];
        let ms = PollTimeout::try_from(timeout).unwrap_or(PollTimeout::MAX);
        if poll(&mut pfd, ms)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "runc did not connect to the console socket",
            ));
        }
        let (conn, _) = self.listener.accept()?;
        conn.set_nonblocking(false)?;
        conn.set_read_timeout(Some(timeout))?;
        let mut name = [0u8; 256];
        let mut iov = [IoSliceMut::new(&mut name)];
        // Room for a few fds: anything beyond the first is closed, never leaked.
        let mut space = nix::cmsg_space!([RawFd; 4]);
        let msg = recvmsg::<()>(
            conn.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )?;
        let mut fds: Vec<OwnedFd> = Vec::new();
        for cmsg in msg.cmsgs()? {
            if let ControlMessageOwned::ScmRights(raw) = cmsg {
                for fd in raw {
                    // SAFETY: the kernel installed `fd` in our table for this message just now
                    // (SCM_RIGHTS); nothing else in the process knows its number, so the
                    // OwnedFd is its only owner.
                    fds.push(unsafe { OwnedFd::from_raw_fd(fd) });
                }
            }
        }
        let mut fds = fds.into_iter();
        fds.next().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                "console socket message carried no fd",
            )
        })
    }
}

impl Drop for ConsoleSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.file);
    }
}

/// Sets the terminal size of the pty behind `master` (public as [`crate::pty::resize`]).
pub fn resize(master: impl AsFd, width: u16, height: u16) -> io::Result<()> {
    let ws = Winsize {
        ws_row: height,
        ws_col: width,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: `master` is an open fd borrowed for the duration of the call and `ws` is a valid,
    // initialised winsize that the kernel only reads.
    unsafe { tiocswinsz(master.as_fd().as_raw_fd(), &ws) }?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::socket::{sendmsg, ControlMessage};
    use std::io::IoSlice;
    use std::os::unix::net::UnixStream;

    #[test]
    fn receives_an_fd_over_the_socket() {
        let dir = tempfile::tempdir().unwrap();
        let cs = ConsoleSocket::bind(dir.path()).unwrap();
        let sock_file = dir.path().join(CONSOLE_SOCKET);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&sock_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);

        let pty = nix::pty::openpty(None, None).unwrap();
        let c = UnixStream::connect(cs.runc_path()).unwrap();
        let fds = [pty.master.as_raw_fd()];
        sendmsg::<()>(
            c.as_raw_fd(),
            &[IoSlice::new(b"/dev/pts/x")],
            &[ControlMessage::ScmRights(&fds)],
            MsgFlags::empty(),
            None,
        )
        .unwrap();
        let master = cs.receive(Duration::from_secs(2)).unwrap();
        assert!(!sock_file.exists());
        resize(&master, 120, 40).unwrap();
        let mut ws = Winsize {
            ws_row: 0,
            ws_col: 0,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        nix::ioctl_read_bad!(tiocgwinsz, nix::libc::TIOCGWINSZ, Winsize);
        unsafe { tiocgwinsz(pty.slave.as_raw_fd(), &mut ws) }.unwrap();
        assert_eq!((ws.ws_col, ws.ws_row), (120, 40));
    }

    #[test]
    fn times_out_without_runc() {
        let dir = tempfile::tempdir().unwrap();
        let cs = ConsoleSocket::bind(dir.path()).unwrap();
        let err = cs.receive(Duration::from_millis(20)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }
}
