//! `<state-dir>/exit`: `{"exit_code":N,"exited_at":<unix nanos>,"oom_killed":bool}`, written
//! once, atomically (temp file, fsync, rename, fsync dir: `berth_atomicfile::write`), after
//! the container's init was reaped.

use std::fs;
use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::ShimError;
use crate::paths::EXIT_FILE;

/// How the container's init ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitStatus {
    /// Exit status, or 128 + signal number when killed by a signal.
    pub exit_code: i32,
    /// When the shim reaped the init, in nanoseconds since the Unix epoch.
    pub exited_at: i64,
    /// The container's cgroup recorded an OOM kill.
    pub oom_killed: bool,
}

/// Reads the exit file; `Ok(None)` while the container has not exited (no file yet).
pub fn read_exit(state_dir: &Path) -> Result<Option<ExitStatus>, ShimError> {
    let path = state_dir.join(EXIT_FILE);
    let data = match fs::read(&path) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(ShimError::io("read exit file", path, e)),
    };
    serde_json::from_slice(&data)
        .map(Some)
        .map_err(|e| ShimError::Protocol {
            message: format!("bad exit file {}: {e}", path.display()),
        })
}

/// Writes the exit file atomically.
pub(crate) fn write_exit(state_dir: &Path, status: &ExitStatus) -> io::Result<()> {
    let mut body = serde_json::to_vec(status).map_err(io::Error::other)?;
    body.push(b'\n');
    berth_atomicfile::write(&state_dir.join(EXIT_FILE), &body, 0o644)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_exit(dir.path()).unwrap(), None);
        let st = ExitStatus {
            exit_code: 137,
            exited_at: 1_795_410_347_123_456_789,
            oom_killed: true,
        };
        write_exit(dir.path(), &st).unwrap();
        assert_eq!(read_exit(dir.path()).unwrap(), Some(st));
        let raw = fs::read_to_string(dir.path().join(EXIT_FILE)).unwrap();
        assert_eq!(
            raw,
            "{\"exit_code\":137,\"exited_at\":1795410347123456789,\"oom_killed\":true}\n"
        );
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [EXIT_FILE], "no temporary file is left");
    }

    #[test]
    fn corrupt_file_is_a_protocol_error() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(EXIT_FILE), b"{\"exit_code\":").unwrap();
        assert!(matches!(
            read_exit(dir.path()),
            Err(ShimError::Protocol { .. })
        ));
    }
}
