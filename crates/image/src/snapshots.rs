//! Unpacked layers: one directory per layer, addressed by the layer's chain ID, each an
//! overlayfs lower directory: `<root>/snapshots/<chain-id hex>/fs`.
//!
//! A layer is unpacked into `<root>/snapshots/.tmp-<unique>/fs` and renamed into place only
//! after its content digest and diff ID matched, so a snapshot that exists is complete.
//! What is removed (an unreferenced snapshot, a discarded or interrupted unpack, including
//! those a crash left) is renamed into the [`Trash`] and deleted there in the background, so
//! no caller waits for the deletion of a layer's files.

use std::path::{Path, PathBuf};

use crate::content::unique_name;
use crate::digest::Digest;
use crate::error::ImageError;
use crate::trash::Trash;

/// Prefix of in-progress snapshot directories.
const TEMP_PREFIX: &str = ".tmp-";

/// The snapshot directories.
#[derive(Debug, Clone)]
pub struct Snapshots {
    dir: PathBuf,
    trash: Trash,
}

impl Snapshots {
    /// Opens (creating) `dir` (`<root>/snapshots`, on the filesystem of `trash`) and moves
    /// interrupted unpacks into the trash.
    pub fn open(dir: &Path, trash: Trash) -> Result<Snapshots, ImageError> {
        std::fs::create_dir_all(dir).map_err(ImageError::io("create", dir))?;
        trash.check_same_filesystem(dir)?;
        let entries = std::fs::read_dir(dir).map_err(ImageError::io("list", dir))?;
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
                tracing::info!(path = %entry.path().display(), "removing interrupted unpack");
                trash.put(&entry.path())?;
            }
        }
        Ok(Snapshots {
            dir: dir.to_owned(),
            trash,
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

    /// A fresh temporary snapshot to unpack into; moved to the trash on drop unless
    /// committed.
    pub fn prepare(&self) -> Result<PendingSnapshot, ImageError> {
        let dir = self.dir.join(unique_name(TEMP_PREFIX));
        let fs = dir.join("fs");
        std::fs::create_dir_all(&fs).map_err(ImageError::io("create", fs.clone()))?;
        Ok(PendingSnapshot {
            dir: Some(dir),
            fs,
            trash: self.trash.clone(),
        })
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
            self.trash.put(&dir)?;
            return Ok(());
        }
        std::fs::rename(&dir, &target).map_err(ImageError::io("commit", target))
    }

    /// Removes the snapshot `chain_id` at once (into the trash); absent is fine.
    pub fn remove(&self, chain_id: &Digest) -> Result<(), ImageError> {
        self.trash.put(&self.path(chain_id)).map(|_| ())
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

/// A snapshot being unpacked; moved to the trash on drop unless committed.
#[derive(Debug)]
pub struct PendingSnapshot {
    dir: Option<PathBuf>,
    fs: PathBuf,
    trash: Trash,
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
            if let Err(err) = self.trash.put(dir) {
                // Left in place, it is moved to the trash at the next start.
                tracing::warn!(error = %err, "cannot discard a pending snapshot");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trash::tests::wait_until_empty;

    /// Snapshots in `<dir>/snapshots` with the trash in `<dir>/trash`.
    fn open(dir: &Path) -> Snapshots {
        let trash = Trash::open(&dir.join("trash")).unwrap();
        Snapshots::open(&dir.join("snapshots"), trash).unwrap()
    }

    fn entries(dir: &Path) -> usize {
        std::fs::read_dir(dir).unwrap().count()
    }

    #[test]
    fn commit_makes_visible_drop_discards() {
        let dir = tempfile::tempdir().unwrap();
        let snapshots = open(dir.path());
        let snapshots_dir = dir.path().join("snapshots");
        let id = Digest::of(b"layer");

        let pending = snapshots.prepare().unwrap();
        std::fs::write(pending.fs().join("f"), "x").unwrap();
        drop(pending);
        assert_eq!(entries(&snapshots_dir), 0);

        let pending = snapshots.prepare().unwrap();
        std::fs::write(pending.fs().join("f"), "x").unwrap();
        snapshots.commit(pending, &id).unwrap();
        assert!(snapshots.contains(&id));
        assert_eq!(snapshots.list().unwrap(), vec![id.clone()]);

        // A second commit of the same chain ID keeps the first.
        let pending = snapshots.prepare().unwrap();
        snapshots.commit(pending, &id).unwrap();
        assert!(snapshots.fs(&id).join("f").exists());
        assert_eq!(entries(&snapshots_dir), 1);

        snapshots.remove(&id).unwrap();
        snapshots.remove(&id).unwrap();
        assert!(!snapshots.contains(&id));
        wait_until_empty(&dir.path().join("trash"));
    }

    #[test]
    fn removal_hides_at_once_and_deletes_later() {
        let dir = tempfile::tempdir().unwrap();
        let snapshots = open(dir.path());
        let (kept, removed) = (Digest::of(b"kept"), Digest::of(b"removed"));
        for id in [&kept, &removed] {
            let pending = snapshots.prepare().unwrap();
            for n in 0..200 {
                std::fs::write(pending.fs().join(n.to_string()), "x").unwrap();
            }
            snapshots.commit(pending, id).unwrap();
        }
        snapshots.remove(&removed).unwrap();
        // Neither a lookup nor the listing sees it, whether or not its files are deleted yet.
        assert!(!snapshots.contains(&removed));
        assert!(!snapshots.path(&removed).exists());
        assert_eq!(snapshots.list().unwrap(), vec![kept.clone()]);
        wait_until_empty(&dir.path().join("trash"));
        assert_eq!(snapshots.list().unwrap(), vec![kept.clone()]);
        assert_eq!(entries(&snapshots.fs(&kept)), 200);
    }

    #[test]
    fn trash_entries_are_never_snapshots() {
        let dir = tempfile::tempdir().unwrap();
        let snapshots = open(dir.path());
        // Trash entries live outside the snapshot directory, under names that are no chain
        // ID even if they were listed.
        let name = unique_name("");
        assert!(Digest::parse(&format!("sha256:{name}")).is_err(), "{name}");
        assert!(!dir
            .path()
            .join("trash")
            .starts_with(dir.path().join("snapshots")));
        let id = Digest::of(b"layer");
        let pending = snapshots.prepare().unwrap();
        snapshots.commit(pending, &id).unwrap();
        snapshots.remove(&id).unwrap();
        assert_eq!(snapshots.list().unwrap(), Vec::<Digest>::new());
    }

    #[test]
    fn interrupted_unpacks_are_removed_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let snapshots = open(dir.path());
        let snapshots_dir = dir.path().join("snapshots");
        std::mem::forget(snapshots.prepare().unwrap());
        assert_eq!(entries(&snapshots_dir), 1);
        open(dir.path());
        assert_eq!(entries(&snapshots_dir), 0);
        wait_until_empty(&dir.path().join("trash"));
    }
}
