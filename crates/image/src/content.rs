//! The content store: blobs (manifests, configs, compressed layers) by sha256 under
//! `<root>/content/blobs/sha256/<hex>`.
//!
//! A blob becomes visible only complete and verified: it is written to
//! `<root>/content/ingest/<unique>` and renamed into place after its digest and size
//! matched. Removed blobs, abandoned downloads and the ingest files a crash left are
//! renamed into the [`Trash`] and deleted there in the background.

use std::io::Write;
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
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(ImageError::io("create", path.clone()))?;
        Ok(Ingest {
            path,
            file: Some(file),
            hasher: Hasher::new(),
            blobs: self.blobs.clone(),
            trash: self.trash.clone(),
        })
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

/// A blob being written. Dropped without [`commit`](Ingest::commit), its file goes to the
/// trash.
#[derive(Debug)]
pub struct Ingest {
    path: PathBuf,
    file: Option<std::fs::File>,
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
        file.write_all(data)
            .map_err(ImageError::io("write", self.path.clone()))
    }

    /// Closes the file after the last write, keeping the blob pending: a caller that holds
    /// many pending blobs (an archive being imported) holds no descriptor for them. Nothing
    /// may be written after this; [`commit`](Ingest::commit) still checks and syncs.
    pub fn close(&mut self) {
        drop(self.file.take());
    }

    /// The file being written (to read a pending blob back).
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
