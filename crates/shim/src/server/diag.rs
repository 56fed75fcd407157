//! The shim's own diagnostics, `<state-dir>/shim.log`: one timestamped line per event
//! (start, runc result, exit, reopen, errors). Appended, never rotated; writing stops at
//! [`MAX_SIZE`] so a misbehaving client cannot fill the disk through it.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::time::Timestamp;

/// Size past which nothing more is written.
pub(crate) const MAX_SIZE: u64 = 256 * 1024;

pub(crate) struct Diag {
    file: Option<File>,
    size: u64,
}

impl Diag {
    /// Opens (appends to) `path`; if it cannot be opened, messages are dropped.
    pub(crate) fn open(path: &Path) -> Self {
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(path)
            .ok();
        let size = file
            .as_ref()
            .and_then(|f| f.metadata().ok())
            .map_or(0, |m| m.len());
        Diag { file, size }
    }

    pub(crate) fn log(&mut self, msg: fmt::Arguments<'_>) {
        let Some(f) = self.file.as_mut() else { return };
        if self.size >= MAX_SIZE {
            return;
        }
        let mut line = Vec::with_capacity(128);
        Timestamp::now().write_rfc3339_nano(&mut line);
        line.push(b' ');
        let _ = write!(line, "{msg}");
        line.push(b'\n');
        if f.write_all(&line).is_ok() {
            self.size += line.len() as u64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_and_caps() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("shim.log");
        let mut d = Diag::open(&p);
        d.log(format_args!("started pid {}", 7));
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.ends_with(" started pid 7\n"), "{text}");
        for _ in 0..10_000 {
            d.log(format_args!("{}", "x".repeat(100)));
        }
        let len = std::fs::metadata(&p).unwrap().len();
        assert!(len <= MAX_SIZE + 200, "{len}");
        Diag::open(&dir.path().join("missing/shim.log")).log(format_args!("dropped"));
    }
}
