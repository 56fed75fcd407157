//! Replacing a file atomically and durably.
//!
//! [`write`] puts the bytes into a new temporary file in the target's directory, fsyncs it,
//! renames it over the target and fsyncs the directory. A reader sees the old file or the
//! complete new one, never a part; after a crash the file is the old or the new one.

#![deny(unsafe_code)]

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Replaces `path` with `bytes`; the file gets exactly `mode` (the umask does not apply).
///
/// The temporary file is `.<name>.<pid>.<n>.tmp` beside `path` (so concurrent writers of one
/// path do not collide); it is removed again when anything fails before the rename. A
/// failing fsync of the directory after the rename is not reported: the new content is in
/// place by then, only its durability across a crash is less certain.
pub fn write(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let (dir, name) = split(path)?;
    let (tmp, mut file) = create_temp(dir, name, mode)?;
    let written = (|| {
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// The directory and file name of `path` (`.` for a bare name).
fn split(path: &Path) -> io::Result<(&Path, &str)> {
    let name = path.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{}: not a UTF-8 file name", path.display()),
        )
    })?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    Ok((dir, name))
}

fn create_temp(dir: &Path, name: &str, mode: u32) -> io::Result<(PathBuf, File)> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let pid = std::process::id();
    let mut attempts = 0;
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!(".{name}.{pid}.{n}.tmp"));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
        {
            Ok(file) => return Ok((tmp, file)),
            // Left behind by a crashed process that had our PID: take the next number.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempts < 64 => attempts += 1,
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn writes_and_replaces_with_the_exact_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        write(&path, b"first", 0o600).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"first");
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o7777,
            0o600
        );
        write(&path, b"second, longer", 0o644).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second, longer");
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o7777,
            0o644
        );
        write(&path, b"", 0o640).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"");
        assert_eq!(entries(dir.path()), ["state.json"]);
    }

    #[test]
    fn the_old_inode_is_replaced_not_rewritten() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        write(&path, b"old", 0o644).unwrap();
        // A reader holding the old file keeps seeing the old content.
        let held = File::open(&path).unwrap();
        let old_ino = held.metadata().unwrap().ino();
        write(&path, b"new", 0o644).unwrap();
        assert_ne!(fs::metadata(&path).unwrap().ino(), old_ino);
        let mut s = String::new();
        io::Read::read_to_string(&mut &held, &mut s).unwrap();
        assert_eq!(s, "old");
    }

    #[test]
    fn a_failed_rename_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        // A non-empty directory cannot be replaced by a file.
        let target = dir.path().join("busy");
        fs::create_dir(&target).unwrap();
        fs::write(target.join("inside"), b"x").unwrap();
        assert!(write(&target, b"data", 0o644).is_err());
        assert_eq!(entries(dir.path()), ["busy"]);
    }

    #[test]
    fn a_missing_directory_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = write(&dir.path().join("no/such/f"), b"x", 0o644).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(write(Path::new("/"), b"x", 0o644).is_err());
    }

    #[test]
    fn a_bare_name_is_written_in_the_current_directory() {
        assert_eq!(split(Path::new("f")).unwrap(), (Path::new("."), "f"));
        assert_eq!(split(Path::new("/a/b")).unwrap(), (Path::new("/a"), "b"));
    }

    #[test]
    fn concurrent_writers_of_one_path_do_not_collide() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shared");
        std::thread::scope(|s| {
            for i in 0..8u8 {
                let path = &path;
                s.spawn(move || {
                    for _ in 0..20 {
                        write(path, &[i; 64], 0o644).unwrap();
                    }
                });
            }
        });
        let content = fs::read(&path).unwrap();
        assert_eq!(content.len(), 64);
        assert!(content.iter().all(|b| *b == content[0]));
        assert_eq!(entries(dir.path()), ["shared"]);
    }
}
