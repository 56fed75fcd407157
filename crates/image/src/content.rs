//! The content store: blobs (manifests, configs, compressed layers) by sha256 under
//! `<root>/content/blobs/sha256/<hex>`.
//!
//! A blob becomes visible only complete and verified: it is written to
//! `<root>/content/ingest/<unique>` and renamed into place after its digest and size
//! matched. Removed blobs, abandoned downloads and the ingest files a crash left are
//! renamed into the [`Trash`] and deleted there in the background.
//!
//! A layer's blob is written with direct I/O ([`ContentStore::ingest_direct`]): nothing reads
//! it back during a pull, and copying a gigabyte into the page cache only to sync it out
//! again was a third of berthd's CPU in a large pull (bench/README.md). The commit protocol
//! (write, sync, rename) is the same either way.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::digest::{Digest, Hasher};
use crate::error::ImageError;
use crate::trash::Trash;

/// Unique suffix source for temporary names within this process.
static UNIQUE: AtomicU64 = AtomicU64::new(0);

/// A name no other writer in this or another berthd process uses.
pub(crate) fn unique_name(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}{}-{}-{nanos}",
        std::process::id(),
        UNIQUE.fetch_add(1, Ordering::Relaxed)
    )
}

/// The blob store.
#[derive(Debug, Clone)]
pub struct ContentStore {
    blobs: PathBuf,
    ingest: PathBuf,
    trash: Trash,
}

impl ContentStore {
    /// Opens (creating) the store under `dir` (`<root>/content`, on the filesystem of
    /// `trash`) and moves stale ingests into the trash.
    pub fn open(dir: &Path, trash: Trash) -> Result<ContentStore, ImageError> {
        let store = ContentStore {
            blobs: dir.join("blobs/sha256"),
            ingest: dir.join("ingest"),
            trash,
        };
        for path in [&store.blobs, &store.ingest] {
            std::fs::create_dir_all(path).map_err(ImageError::io("create", path.clone()))?;
            store.trash.check_same_filesystem(path)?;
        }
        let stale = std::fs::read_dir(&store.ingest)
            .map_err(ImageError::io("list", store.ingest.clone()))?;
        for entry in stale.flatten() {
            tracing::info!(path = %entry.path().display(), "removing interrupted download");
            store.trash.put(&entry.path())?;
        }
        Ok(store)
    }

    /// Where the blob `digest` lives.
    pub fn path(&self, digest: &Digest) -> PathBuf {
        self.blobs.join(digest.hex())
    }

    /// Whether the blob is present.
    pub fn contains(&self, digest: &Digest) -> bool {
        self.path(digest).is_file()
    }

    /// Reads a whole (small) blob.
    pub fn read(&self, digest: &Digest) -> Result<Vec<u8>, ImageError> {
        let path = self.path(digest);
        std::fs::read(&path).map_err(ImageError::io("read", path))
    }

    /// Stores `data` as the blob `digest` after checking that it hashes to it.
    pub fn write_verified(
        &self,
        what: &str,
        digest: &Digest,
        data: &[u8],
    ) -> Result<(), ImageError> {
        let actual = Digest::of(data);
        if &actual != digest {
            return Err(ImageError::DigestMismatch {
                what: what.to_owned(),
                expected: digest.clone(),
                actual,
            });
        }
        if self.contains(digest) {
            return Ok(());
        }
        let mut ingest = self.ingest()?;
        ingest.write(data)?;
        ingest.commit(what, digest, data.len() as u64)
    }

    /// Starts writing a blob whose digest is checked at [`Ingest::commit`].
    pub fn ingest(&self) -> Result<Ingest, ImageError> {
        let path = self.ingest.join(unique_name("blob-"));
        let file = create_new(&path, false).map_err(ImageError::io("create", path.clone()))?;
        Ok(self.pending(path, file, None))
    }

    /// Like [`ingest`](ContentStore::ingest), but the data goes to the disk without the
    /// page cache (`O_DIRECT`) in aligned blocks of [`DIRECT_BLOCK`], gathered in memory.
    /// For a large blob written once and not read back before its commit. Where the
    /// filesystem refuses direct I/O (tmpfs), the blob is written as by `ingest`.
    pub fn ingest_direct(&self) -> Result<Ingest, ImageError> {
        let path = self.ingest.join(unique_name("blob-"));
        match create_new(&path, true) {
            Ok(file) => Ok(self.pending(path, file, Some(DirectBuffer::new()))),
            Err(err) if err.raw_os_error() == Some(nix::errno::Errno::EINVAL as i32) => {
                // The kernel checks the flag after creating the file: it may exist, empty.
                self.trash.put(&path)?;
                self.ingest()
            }
            Err(err) => Err(ImageError::io("create", path)(err)),
        }
    }

    fn pending(&self, path: PathBuf, file: std::fs::File, direct: Option<DirectBuffer>) -> Ingest {
        Ingest {
            path,
            file: Some(file),
            direct,
            hasher: Hasher::new(),
            blobs: self.blobs.clone(),
            trash: self.trash.clone(),
        }
    }

    /// Removes a blob at once (into the trash); absent is fine.
    pub fn remove(&self, digest: &Digest) -> Result<(), ImageError> {
        self.trash.put(&self.path(digest)).map(|_| ())
    }

    /// Every stored blob.
    pub fn list(&self) -> Result<Vec<Digest>, ImageError> {
        let entries =
            std::fs::read_dir(&self.blobs).map_err(ImageError::io("list", self.blobs.clone()))?;
        Ok(entries
            .flatten()
            .filter_map(|entry| {
                let name = entry.file_name();
                Digest::parse(&format!("sha256:{}", name.to_string_lossy())).ok()
            })
            .collect())
    }
}

/// Creates `path`, which must not exist, for writing; with `O_DIRECT` if `direct`.
fn create_new(path: &Path, direct: bool) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    if direct {
        options.custom_flags(nix::fcntl::OFlag::O_DIRECT.bits());
    }
    options.open(path)
}

/// Size and alignment of direct writes: a multiple of every logical block size in use
/// (512 and 4096 bytes), large enough that a write costs little next to its data.
pub const DIRECT_BLOCK: usize = 1 << 20;

/// Alignment of the direct-write buffer in memory.
const DIRECT_ALIGN: usize = 4096;

/// The bytes of a direct-I/O blob not yet written: up to one [`DIRECT_BLOCK`], kept at an
/// aligned address inside an over-allocated vector.
struct DirectBuffer {
    bytes: Vec<u8>,
    start: usize,
    filled: usize,
}

impl DirectBuffer {
    fn new() -> DirectBuffer {
        let bytes = vec![0; DIRECT_BLOCK + DIRECT_ALIGN];
        let start = bytes.as_ptr().align_offset(DIRECT_ALIGN).min(DIRECT_ALIGN);
        DirectBuffer {
            bytes,
            start,
            filled: 0,
        }
    }

    /// Appends what fits of `data`; returns how much did.
    fn fill(&mut self, data: &[u8]) -> usize {
        let n = (DIRECT_BLOCK - self.filled).min(data.len());
        let at = self.start + self.filled;
        self.bytes[at..at + n].copy_from_slice(&data[..n]);
        self.filled += n;
        n
    }

    fn pending(&self) -> &[u8] {
        &self.bytes[self.start..self.start + self.filled]
    }
}

impl std::fmt::Debug for DirectBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectBuffer")
            .field("filled", &self.filled)
            .finish_non_exhaustive()
    }
}

/// Writes all of `data` to `file`, which has `O_DIRECT` set. If the filesystem refuses a
/// direct write (`EINVAL`: it opened the file but cannot write it so, or wants a larger
/// alignment), direct I/O is switched off on `file` and the rest is written through the
/// page cache; returns whether `file` is still direct.
fn write_direct(file: &mut std::fs::File, data: &[u8]) -> std::io::Result<bool> {
    let mut done = 0;
    while done < data.len() {
        match file.write(&data[done..]) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => done += n,
            Err(err) if err.raw_os_error() == Some(nix::errno::Errno::EINVAL as i32) => {
                end_direct(file)?;
                file.write_all(&data[done..])?;
                return Ok(false);
            }
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(true)
}

/// Clears `O_DIRECT` on `file`: what follows goes through the page cache.
fn end_direct(file: &std::fs::File) -> std::io::Result<()> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let flags = OFlag::from_bits_truncate(fcntl(file, FcntlArg::F_GETFL)?);
    fcntl(file, FcntlArg::F_SETFL(flags - OFlag::O_DIRECT))?;
    Ok(())
}

/// A blob being written. Dropped without [`commit`](Ingest::commit), its file goes to the
/// trash.
#[derive(Debug)]
pub struct Ingest {
    path: PathBuf,
    file: Option<std::fs::File>,
    /// With direct I/O: the bytes not yet written (less than one block).
    direct: Option<DirectBuffer>,
    hasher: Hasher,
    blobs: PathBuf,
    trash: Trash,
}

impl Ingest {
    /// Appends `data`.
    pub fn write(&mut self, data: &[u8]) -> Result<(), ImageError> {
        self.hasher.update(data);
        let file = self
            .file
            .as_mut()
            .expect("ingest file open until closed or committed");
        let Some(direct) = self.direct.as_mut() else {
            return file
                .write_all(data)
                .map_err(ImageError::io("write", self.path.clone()));
        };
        let mut rest = data;
        while !rest.is_empty() {
            rest = &rest[direct.fill(rest)..];
            if direct.filled == DIRECT_BLOCK {
                let still_direct = write_direct(file, direct.pending())
                    .map_err(ImageError::io("write", self.path.clone()))?;
                direct.filled = 0;
                if !still_direct {
                    self.direct = None;
                    return file
                        .write_all(rest)
                        .map_err(ImageError::io("write", self.path.clone()));
                }
            }
        }
        Ok(())
    }

    /// Writes what a direct-I/O blob still holds in memory (less than one aligned block,
    /// so through the page cache); the file is complete afterwards.
    fn finish_direct(&mut self) -> Result<(), ImageError> {
        let (Some(direct), Some(file)) = (self.direct.take(), self.file.as_mut()) else {
            return Ok(());
        };
        if direct.filled == 0 {
            return Ok(());
        }
        end_direct(file)
            .and_then(|()| file.write_all(direct.pending()))
            .map_err(ImageError::io("write", self.path.clone()))
    }

    /// Closes the file after the last write, keeping the blob pending: a caller that holds
    /// many pending blobs (an archive being imported) holds no descriptor for them. Nothing
    /// may be written after this; [`commit`](Ingest::commit) still checks and syncs.
    pub fn close(&mut self) -> Result<(), ImageError> {
        self.finish_direct()?;
        drop(self.file.take());
        Ok(())
    }

    /// The file being written (to read a pending blob back after [`close`](Ingest::close)).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Digest of what was written so far.
    pub fn digest(&self) -> Digest {
        self.hasher.clone().finish()
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.hasher.len()
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.hasher.is_empty()
    }

    /// Checks digest and size, syncs, and moves the blob into place. The sync waits for the
    /// disk: call it off the async workers.
    pub fn commit(mut self, what: &str, digest: &Digest, size: u64) -> Result<(), ImageError> {
        self.finish_direct()?;
        let actual = std::mem::take(&mut self.hasher);
        let written = actual.len();
        let actual = actual.finish();
        if &actual != digest {
            return Err(ImageError::DigestMismatch {
                what: what.to_owned(),
                expected: digest.clone(),
                actual,
            });
        }
        if written != size {
            return Err(ImageError::SizeMismatch {
                what: what.to_owned(),
                expected: size,
                actual: written,
            });
        }
        let file = match self.file.take() {
            Some(file) => file,
            None => std::fs::File::open(&self.path)
                .map_err(ImageError::io("reopen", self.path.clone()))?,
        };
        file.sync_all()
            .map_err(ImageError::io("sync", self.path.clone()))?;
        drop(file);
        let target = self.blobs.join(digest.hex());
        std::fs::rename(&self.path, &target).map_err(ImageError::io("commit", target))
    }
}

impl Drop for Ingest {
    fn drop(&mut self) {
        drop(self.file.take());
        if let Err(err) = self.trash.put(&self.path) {
            // Left in place, it is moved to the trash at the next start.
            tracing::warn!(error = %err, "cannot discard an unfinished download");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trash::tests::wait_until_empty;

    /// A content store in `<dir>/content` with the trash in `<dir>/trash`.
    fn open(dir: &Path) -> ContentStore {
        let trash = Trash::open(&dir.join("trash")).unwrap();
        ContentStore::open(&dir.join("content"), trash).unwrap()
    }

    fn entries(dir: &Path) -> usize {
        std::fs::read_dir(dir).unwrap().count()
    }

    #[test]
    fn verified_write_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let digest = Digest::of(b"hello");
        store.write_verified("test", &digest, b"hello").unwrap();
        assert!(store.contains(&digest));
        assert_eq!(store.read(&digest).unwrap(), b"hello");
        assert_eq!(store.list().unwrap(), vec![digest.clone()]);
        store.remove(&digest).unwrap();
        // Gone from the store at once; the trash never shows as a blob.
        assert!(!store.contains(&digest));
        assert_eq!(store.list().unwrap(), Vec::<Digest>::new());
        store.remove(&digest).unwrap();
        wait_until_empty(&dir.path().join("trash"));
    }

    #[test]
    fn mismatching_content_is_never_stored() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let digest = Digest::of(b"expected");
        let err = store
            .write_verified("blob", &digest, b"corrupted")
            .unwrap_err();
        assert!(matches!(err, ImageError::DigestMismatch { .. }), "{err}");
        assert!(!store.contains(&digest));

        let mut ingest = store.ingest().unwrap();
        ingest.write(b"expected").unwrap();
        let err = ingest.commit("blob", &digest, 99).unwrap_err();
        assert!(matches!(err, ImageError::SizeMismatch { .. }), "{err}");
        assert!(!store.contains(&digest));
        assert_eq!(entries(&dir.path().join("content/ingest")), 0);
        wait_until_empty(&dir.path().join("trash"));
    }

    /// Bytes that differ from block to block, so that a block written twice or out of
    /// place changes the digest.
    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 4093) as u8).collect()
    }

    /// Writes `data` in pieces of `piece` bytes through a direct ingest and commits it.
    fn direct_round_trip(dir: &Path, data: &[u8], piece: usize) {
        let store = open(dir);
        let digest = Digest::of(data);
        let mut ingest = store.ingest_direct().unwrap();
        for chunk in data.chunks(piece) {
            ingest.write(chunk).unwrap();
        }
        assert_eq!(ingest.len(), data.len() as u64);
        ingest.commit("layer", &digest, data.len() as u64).unwrap();
        assert_eq!(store.read(&digest).unwrap(), data);
        assert_eq!(entries(&dir.join("content/ingest")), 0);
    }

    #[test]
    fn direct_ingest_stores_whole_blocks_and_the_tail() {
        let dir = tempfile::tempdir().unwrap();
        // Two and a half blocks in odd pieces: pieces straddle block boundaries.
        direct_round_trip(dir.path(), &pattern(DIRECT_BLOCK * 5 / 2 + 17), 100_003);
        // Exactly one block in one piece: no tail.
        let other = tempfile::tempdir().unwrap();
        direct_round_trip(other.path(), &pattern(DIRECT_BLOCK), DIRECT_BLOCK);
    }

    #[test]
    fn direct_ingest_on_tmpfs_if_dev_shm_exists() {
        // tmpfs refuses O_DIRECT on older kernels and accepts it on newer ones: either way
        // the blob must come out whole.
        let Ok(dir) = tempfile::tempdir_in("/dev/shm") else {
            eprintln!("skipped: no /dev/shm");
            return;
        };
        direct_round_trip(dir.path(), &pattern(DIRECT_BLOCK + 4099), 65_536);
    }

    #[test]
    fn direct_ingest_checks_the_digest_like_any_other() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let data = pattern(DIRECT_BLOCK + 1);
        let mut ingest = store.ingest_direct().unwrap();
        ingest.write(&data).unwrap();
        let err = ingest
            .commit("layer", &Digest::of(b"other"), data.len() as u64)
            .unwrap_err();
        assert!(matches!(err, ImageError::DigestMismatch { .. }), "{err}");
        assert_eq!(store.list().unwrap(), Vec::<Digest>::new());
        assert_eq!(entries(&dir.path().join("content/ingest")), 0);
        wait_until_empty(&dir.path().join("trash"));
    }

    #[test]
    fn a_misaligned_direct_write_still_stores_its_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob");
        let mut file = match create_new(&path, true) {
            Ok(file) => file,
            Err(err) => {
                eprintln!("skipped: the temporary directory has no direct I/O: {err}");
                return;
            }
        };
        // One byte past an aligned address: the filesystem refuses it (EINVAL, and the
        // write goes on through the page cache) or quietly does it buffered (ext4).
        let buffer = DirectBuffer::new();
        let data = pattern(8192);
        let mut bytes = buffer.bytes;
        let at = buffer.start + 1;
        bytes[at..at + 4096].copy_from_slice(&data[..4096]);
        let still_direct = write_direct(&mut file, &bytes[at..at + 4096]).unwrap();
        if still_direct {
            end_direct(&file).unwrap();
        }
        file.write_all(&data[4096..]).unwrap();
        drop(file);
        assert_eq!(std::fs::read(&path).unwrap(), data);
    }

    #[test]
    fn stale_ingests_are_removed_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let mut ingest = store.ingest().unwrap();
        ingest.write(b"partial").unwrap();
        std::mem::forget(ingest); // as if the daemon was killed mid-download
        assert_eq!(entries(&dir.path().join("content/ingest")), 1);
        open(dir.path());
        assert_eq!(entries(&dir.path().join("content/ingest")), 0);
        wait_until_empty(&dir.path().join("trash"));
    }
}
