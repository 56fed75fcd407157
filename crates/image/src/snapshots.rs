//! Unpacked layers: one directory per layer, addressed by the layer's chain ID, each an
//! overlayfs lower directory: `<root>/snapshots/<chain-id hex>/fs`.
//!
//! A layer is unpacked into `<root>/snapshots/.tmp-<unique>/fs` and renamed into place only
//! after its content digest and diff ID matched, so a snapshot that exists is complete.
//! Temporary directories left by a crash are removed when the store opens.

use std::path::{Path, PathBuf};

use crate::content::unique_name;
use crate::digest::Digest;
use crate::error::ImageError;

/// Prefix of in-progress snapshot directories.
const TEMP_PREFIX: &str = ".tmp-";

/// The snapshot directories.
#[derive(Debug, Clone)]
pub struct Snapshots {
    dir: PathBuf,
}

impl Snapshots {
    /// Opens (creating) `dir` (`<root>/snapshots`) and removes interrupted unpacks.
    pub fn open(dir: &Path) -> Result<Snapshots, ImageError> {
        std::fs::create_dir_all(dir).map_err(ImageError::io("create", dir))?;
        let entries = std::fs::read_dir(dir).map_err(ImageError::io("list", dir))?;
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
                tracing::info!(path = %entry.path().display(), "removing interrupted unpack");
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        Ok(Snapshots {
            dir: dir.to_owned(),
        })
    }

    /// The directory of the committed snapshot `chain_id` (its `fs` is the overlay lower dir).
    pub fn path(&self, chain_id: &Digest) -> PathBuf {
        self.dir.join(chain_id.hex())
    }

    /// The overlay lower directory of `chain_id`.
    pub fn fs(&self, chain_id: &Digest) -> PathBuf {
        self.path(chain_id).join("fs")
    }

    /// Whether `chain_id` is unpacked.
    pub fn contains(&self, chain_id: &Digest) -> bool {
        self.fs(chain_id).is_dir()
    }

    /// A fresh temporary snapshot to unpack into; removed on drop unless committed.
    pub fn prepare(&self) -> Result<PendingSnapshot, ImageError> {
        let dir = self.dir.join(unique_name(TEMP_PREFIX));
        let fs = dir.join("fs");
        std::fs::create_dir_all(&fs).map_err(ImageError::io("create", fs.clone()))?;
        Ok(PendingSnapshot { dir: Some(dir), fs })
    }

    /// Makes `pending` the snapshot `chain_id`. If another pull committed it first, the
    /// pending copy is discarded.
    pub fn commit(
        &self,
        mut pending: PendingSnapshot,
        chain_id: &Digest,
    ) -> Result<(), ImageError> {
        let target = self.path(chain_id);
        let dir = pending
            .dir
            .take()
            .expect("pending snapshot not yet committed");
        if target.exists() {
            let _ = std::fs::remove_dir_all(&dir);
            return Ok(());
        }
        std::fs::rename(&dir, &target).map_err(ImageError::io("commit", target))
    }

    /// Removes the snapshot `chain_id`; absent is fine.
    pub fn remove(&self, chain_id: &Digest) -> Result<(), ImageError> {
        let path = self.path(chain_id);
        match std::fs::remove_dir_all(&path) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
                Err(ImageError::io("remove", path)(err))
            }
            _ => Ok(()),
        }
    }

    /// Chain IDs of every committed snapshot.
    pub fn list(&self) -> Result<Vec<Digest>, ImageError> {
        let entries =
            std::fs::read_dir(&self.dir).map_err(ImageError::io("list", self.dir.clone()))?;
        Ok(entries
            .flatten()
            .filter_map(|entry| {
                Digest::parse(&format!("sha256:{}", entry.file_name().to_string_lossy())).ok()
            })
            .collect())
    }
}

/// A snapshot being unpacked; removed on drop unless committed.
#[derive(Debug)]
pub struct PendingSnapshot {
    dir: Option<PathBuf>,
    fs: PathBuf,
}

impl PendingSnapshot {
    /// The directory to unpack into.
    pub fn fs(&self) -> &Path {
        &self.fs
    }
}

impl Drop for PendingSnapshot {
    fn drop(&mut self) {
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_makes_visible_drop_discards() {
        let dir = tempfile::tempdir().unwrap();
        let snapshots = Snapshots::open(dir.path()).unwrap();
        let id = Digest::of(b"layer");

        let pending = snapshots.prepare().unwrap();
        std::fs::write(pending.fs().join("f"), "x").unwrap();
        drop(pending);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);

        let pending = snapshots.prepare().unwrap();
        std::fs::write(pending.fs().join("f"), "x").unwrap();
        snapshots.commit(pending, &id).unwrap();
        assert!(snapshots.contains(&id));
        assert_eq!(snapshots.list().unwrap(), vec![id.clone()]);

        // A second commit of the same chain ID keeps the first.
        let pending = snapshots.prepare().unwrap();
        snapshots.commit(pending, &id).unwrap();
        assert!(snapshots.fs(&id).join("f").exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);

        snapshots.remove(&id).unwrap();
        snapshots.remove(&id).unwrap();
        assert!(!snapshots.contains(&id));
    }

    #[test]
    fn interrupted_unpacks_are_removed_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let snapshots = Snapshots::open(dir.path()).unwrap();
        std::mem::forget(snapshots.prepare().unwrap());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        Snapshots::open(dir.path()).unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
