//! Unix socket paths that may be longer than `sun_path` (108 bytes).
//!
//! A short `<dir>/<name>` is used as is. A long one goes through an open handle on the
//! directory: `/proc/self/fd/<n>/<name>` for our own bind/connect, and
//! `/proc/<pid>/fd/<n>/<name>` for another process (runc's `--console-socket`) while we keep
//! the handle open.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// `sun_path` is 108 bytes including the terminating NUL.
const SUN_PATH_MAX: usize = 107;

/// A socket path usable with bind/connect; keeps the directory handle alive if it needs one.
pub(crate) struct SocketPath {
    path: PathBuf,
    _dir: Option<File>,
}

impl SocketPath {
    /// The path for `dir/name` as seen by this process.
    pub(crate) fn new(dir: &Path, name: &str) -> io::Result<Self> {
        Self::for_pid(dir, name, None)
    }

    /// The path for `dir/name` as seen by another process of ours (`pid` is this process's
    /// PID, spelled out so that a child can resolve it while we hold the handle).
    pub(crate) fn for_children(dir: &Path, name: &str) -> io::Result<Self> {
        Self::for_pid(dir, name, Some(std::process::id()))
    }

    fn for_pid(dir: &Path, name: &str, pid: Option<u32>) -> io::Result<Self> {
        let direct = dir.join(name);
        if direct.as_os_str().len() <= SUN_PATH_MAX {
            return Ok(SocketPath {
                path: direct,
                _dir: None,
            });
        }
        let handle = File::open(dir)?;
        let fd = handle.as_raw_fd();
        let path = match pid {
            Some(pid) => PathBuf::from(format!("/proc/{pid}/fd/{fd}/{name}")),
            None => PathBuf::from(format!("/proc/self/fd/{fd}/{name}")),
        };
        Ok(SocketPath {
            path,
            _dir: Some(handle),
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::{UnixListener, UnixStream};

    #[test]
    fn long_directories_work() {
        let base = tempfile::tempdir().unwrap();
        let long = base.path().join("d".repeat(100)).join("e".repeat(40));
        std::fs::create_dir_all(&long).unwrap();
        let p = SocketPath::new(&long, "s.sock").unwrap();
        assert!(p.path().starts_with("/proc/self/fd"));
        let l = UnixListener::bind(p.path()).unwrap();
        assert!(long.join("s.sock").exists());
        let c = SocketPath::for_children(&long, "s.sock").unwrap();
        assert!(c
            .path()
            .starts_with(format!("/proc/{}/fd", std::process::id())));
        let _s = UnixStream::connect(c.path()).unwrap();
        drop(l);

        let short = SocketPath::new(base.path(), "x.sock").unwrap();
        assert_eq!(short.path(), base.path().join("x.sock"));
    }
}
