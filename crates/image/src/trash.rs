//! The trash: `<root>/trash/<unique>`, where unreferenced snapshots and blobs, discarded
//! unpacks and interrupted downloads go before they are deleted.
//!
//! Deleting a snapshot of 100 000 files takes seconds to minutes; a rename takes
//! microseconds. So whoever discards something renames it into the trash (atomic: from that
//! moment no lookup, listing or pull sees it) and returns; one deleter thread per trash
//! then deletes the entries one after the other, holding no lock of the image manager, never
//! running on the async runtime's workers, and at a lower CPU priority (nice
//! [`DELETER_NICE`]) so that the kernel time of unlinking goes to serving calls first. The
//! thread is a plain one rather than a `spawn_blocking` task because the runtime waits for
//! those when it shuts down, and a daemon asked to stop must not wait for a deletion: an
//! entry left half-deleted is simply deleted again at the next start, when [`Trash::open`]
//! queues every entry it finds.
//!
//! The trash lies outside `<root>/snapshots` and `<root>/content`, so it is never mistaken for
//! a snapshot or a blob and ImageFsInfo does not count it (it is no image's any more and only
//! shrinks), but on the same filesystem, which the rename needs: [`Trash::check_same_filesystem`]
//! refuses a store directory that is a mount of its own.

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::content::unique_name;
use crate::error::ImageError;

/// Where discarded snapshots and blobs wait for their deletion.
#[derive(Debug, Clone)]
pub struct Trash {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    /// Entries for the deleter thread; the thread ends when the last `Trash` is dropped.
    queue: Mutex<mpsc::Sender<PathBuf>>,
    /// Disk space the deleter freed so far (allocated bytes of what it deleted).
    freed: Arc<AtomicU64>,
}

impl Trash {
    /// Opens (creating) the trash `dir`, starts its deleter thread and hands it every entry
    /// a previous run left (a crash or a stop during a deletion).
    pub fn open(dir: &Path) -> Result<Trash, ImageError> {
        std::fs::create_dir_all(dir).map_err(ImageError::io("create", dir))?;
        let leftovers: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(ImageError::io("list", dir))?
            .flatten()
            .map(|entry| entry.path())
            .collect();
        let (tx, rx) = mpsc::channel::<PathBuf>();
        let freed = Arc::new(AtomicU64::new(0));
        let counter = freed.clone();
        std::thread::Builder::new()
            .name("berth-trash".into())
            .spawn(move || {
                lower_priority();
                for path in rx {
                    counter.fetch_add(delete(&path), Ordering::Relaxed);
                }
            })
            .map_err(ImageError::io("start the deleter of", dir))?;
        if !leftovers.is_empty() {
            tracing::info!(
                entries = leftovers.len(),
                trash = %dir.display(),
                "deleting what the previous run left in the trash"
            );
        }
        for path in leftovers {
            // The receiver lives as long as the thread, which has just started.
            let _ = tx.send(path);
        }
        Ok(Trash {
            inner: Arc::new(Inner {
                dir: dir.to_owned(),
                queue: Mutex::new(tx),
                freed,
            }),
        })
    }

    /// The trash directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Disk space freed by the deletions done so far: the allocated bytes of each entry
    /// deleted completely (each inode counted once), measured just before its deletion.
    pub fn freed_bytes(&self) -> u64 {
        self.inner.freed.load(Ordering::Relaxed)
    }

    /// Fails unless `other` is on the trash's filesystem (a rename between them works).
    pub fn check_same_filesystem(&self, other: &Path) -> Result<(), ImageError> {
        let device = |path: &Path| {
            std::fs::metadata(path)
                .map(|meta| meta.dev())
                .map_err(ImageError::io("stat", path))
        };
        if device(self.dir())? != device(other)? {
            return Err(ImageError::TrashOnOtherFilesystem {
                trash: self.dir().to_owned(),
                other: other.to_owned(),
            });
        }
        Ok(())
    }

    /// Moves `path` (a directory or a file) into the trash and queues its deletion. From
    /// its return on, `path` does not exist. `false` when there was nothing at `path`.
    pub fn put(&self, path: &Path) -> Result<bool, ImageError> {
        let target = self.inner.dir.join(unique_name(""));
        match std::fs::rename(path, &target) {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(err) => return Err(ImageError::io("move to the trash", path)(err)),
        }
        tracing::debug!(path = %path.display(), trash = %target.display(), "moved to the trash");
        let queue = self.inner.queue.lock().unwrap_or_else(|p| p.into_inner());
        // The thread only ends when every sender is gone, and this one is alive.
        let _ = queue.send(target);
        Ok(true)
    }
}

/// Niceness of the deleter thread: deleting is background work, and the CPU time its
/// syscalls take (unlinking a layer's files is mostly kernel time) goes to serving calls first.
const DELETER_NICE: i32 = 10;

/// Lowers the calling thread's CPU priority to [`DELETER_NICE`] (on Linux the nice value of
/// a thread ID applies to that thread alone). A failure only costs latency elsewhere.
fn lower_priority() {
    let thread = rustix::thread::gettid();
    if let Err(err) = rustix::process::setpriority_process(Some(thread), DELETER_NICE) {
        tracing::debug!(error = %err, "cannot lower the trash deleter's priority");
    }
}

/// Deletes one trash entry; returns the disk space that freed (0 when the deletion failed).
/// A failure is logged; the entry stays for the next start.
fn delete(path: &Path) -> u64 {
    let started = Instant::now();
    // Walking the entry once more costs an lstat per file, next to the unlink each needs.
    let bytes = crate::fsusage::usage_of(path).map_or(0, |usage| usage.bytes);
    let result = match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(err) => Err(err),
    };
    match result {
        Ok(()) => {
            tracing::info!(
                path = %path.display(),
                bytes,
                seconds = format!("{:.2}", started.elapsed().as_secs_f64()),
                "trash entry deleted"
            );
            bytes
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => 0,
        Err(err) => {
            tracing::warn!(
                path = %path.display(),
                error = %err,
                "cannot delete trash entry; it is tried again at the next start"
            );
            0
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::time::Duration;

    /// Waits (at most 10 s) until the trash directory `dir` is empty.
    pub(crate) fn wait_until_empty(dir: &Path) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::fs::read_dir(dir).unwrap().next().is_some() {
            assert!(
                Instant::now() < deadline,
                "trash {} not emptied within 10 s",
                dir.display()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn tree(dir: &Path, files: usize) {
        std::fs::create_dir_all(dir.join("a/b")).unwrap();
        for n in 0..files {
            std::fs::write(dir.join("a/b").join(n.to_string()), "x").unwrap();
        }
    }

    #[test]
    fn put_renames_at_once_and_deletes_in_the_background() {
        let root = tempfile::tempdir().unwrap();
        let trash = Trash::open(&root.path().join("trash")).unwrap();
        let victim = root.path().join("snapshot");
        tree(&victim, 500);
        let file = root.path().join("blob");
        std::fs::write(&file, "blob").unwrap();

        assert!(trash.put(&victim).unwrap());
        assert!(trash.put(&file).unwrap());
        // Gone from where they were as soon as put returns.
        assert!(!victim.exists() && !file.exists());
        wait_until_empty(trash.dir());
        // Nothing there: nothing to do.
        assert!(!trash.put(&victim).unwrap());
    }

    #[test]
    fn the_space_freed_is_counted() {
        let root = tempfile::tempdir().unwrap();
        let trash = Trash::open(&root.path().join("trash")).unwrap();
        assert_eq!(trash.freed_bytes(), 0);
        let victim = root.path().join("snapshot");
        std::fs::create_dir(&victim).unwrap();
        std::fs::write(victim.join("a"), vec![1u8; 256 * 1024]).unwrap();
        // A hard link frees its inode once.
        std::fs::hard_link(victim.join("a"), victim.join("b")).unwrap();
        let blob = root.path().join("blob");
        std::fs::write(&blob, vec![2u8; 64 * 1024]).unwrap();
        let expected = crate::fsusage::usage_of(&victim).unwrap().bytes
            + crate::fsusage::usage_of(&blob).unwrap().bytes;
        assert!(expected >= 320 * 1024, "{expected}");
        assert!(
            expected < 2 * 320 * 1024,
            "{expected}: the link counted twice?"
        );
        trash.put(&victim).unwrap();
        trash.put(&blob).unwrap();
        wait_until_empty(trash.dir());
        // The counter is updated right after the last entry is gone.
        let deadline = Instant::now() + Duration::from_secs(5);
        while trash.freed_bytes() != expected && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(trash.freed_bytes(), expected);
    }

    #[test]
    fn leftovers_of_a_previous_run_are_deleted_at_open() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("trash");
        std::fs::create_dir_all(&dir).unwrap();
        // As a crash leaves it: one entry half-deleted, one not started, one file.
        tree(&dir.join("1-2-3"), 50);
        tree(&dir.join("4-5-6"), 50);
        std::fs::write(dir.join("7-8-9"), "blob").unwrap();
        let trash = Trash::open(&dir).unwrap();
        wait_until_empty(trash.dir());
        assert!(dir.is_dir(), "the trash directory itself stays");
    }

    #[test]
    fn another_filesystem_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let trash = Trash::open(&root.path().join("trash")).unwrap();
        trash.check_same_filesystem(root.path()).unwrap();
        // /proc is never the filesystem of a temporary directory.
        let err = trash
            .check_same_filesystem(Path::new("/proc/self"))
            .unwrap_err();
        assert!(
            matches!(err, ImageError::TrashOnOtherFilesystem { .. }),
            "{err}"
        );
    }
}
