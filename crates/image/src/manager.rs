//! The image manager: what the CRI ImageService calls. It owns the content store, the
//! snapshots and the image records, and keeps them consistent:
//!
//! - an image becomes visible (a record with its references) only after its config, its
//!   manifest and every layer are stored and unpacked;
//! - pulls hold the GC lock shared and removal holds it exclusively, so garbage collection
//!   never deletes a blob or snapshot that a running pull has written but not yet recorded;
//! - a layer is fetched once even when several pulls want it at the same time (a lock per
//!   chain ID; the second pull finds the snapshot in place).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_store::{ImageRecord, Store};

use crate::content::ContentStore;
use crate::digest::Digest;
use crate::error::ImageError;
use crate::hosts::RegistryHosts;
use crate::reference::{is_image_id, ImageReference};
use crate::snapshots::Snapshots;
use crate::unpack::Limits;

/// Settings of the image manager.
#[derive(Debug, Clone)]
pub struct ImageSettings {
    /// The daemon's root: content under `root/content`, snapshots under `root/snapshots`.
    pub root: PathBuf,
    /// certs.d directory of `hosts.toml` files.
    pub hosts_dir: PathBuf,
    /// Layers downloaded at once per pull.
    pub max_concurrent_downloads: usize,
    /// A download with no data for this long fails.
    pub stall_timeout: Duration,
    /// Limits on what a layer may contain.
    pub limits: Limits,
}

/// Images of the node.
#[derive(Debug)]
pub struct ImageManager {
    pub(crate) store: Store,
    pub(crate) content: ContentStore,
    pub(crate) snapshots: Snapshots,
    pub(crate) hosts: RegistryHosts,
    pub(crate) settings: ImageSettings,
    /// Shared by pulls, exclusive for removal and garbage collection.
    pub(crate) gc_lock: tokio::sync::RwLock<()>,
    /// Serialises the read-modify-write of image records at the end of pulls.
    pub(crate) record_lock: tokio::sync::Mutex<()>,
    /// One lock per chain ID being fetched.
    layer_locks: Mutex<HashMap<Digest, Arc<tokio::sync::Mutex<()>>>>,
}

impl ImageManager {
    /// Opens the image stores under `settings.root`, removing what interrupted pulls left.
    pub fn open(store: Store, settings: ImageSettings) -> Result<ImageManager, ImageError> {
        let content = ContentStore::open(&settings.root.join("content"))?;
        let snapshots = Snapshots::open(&settings.root.join("snapshots"))?;
        Ok(ImageManager {
            store,
            content,
            snapshots,
            hosts: RegistryHosts::new(settings.hosts_dir.clone()),
            settings,
            gc_lock: tokio::sync::RwLock::new(()),
            record_lock: tokio::sync::Mutex::new(()),
            layer_locks: Mutex::new(HashMap::new()),
        })
    }

    /// The overlay lower directory of a snapshot.
    pub fn snapshot_fs(&self, chain_id: &Digest) -> PathBuf {
        self.snapshots.fs(chain_id)
    }

    /// Directory of the content store.
    pub fn content_dir(&self) -> PathBuf {
        self.settings.root.join("content")
    }

    /// Directory of the snapshots.
    pub fn snapshots_dir(&self) -> PathBuf {
        self.settings.root.join("snapshots")
    }

    /// Every image.
    pub fn list(&self) -> Result<Vec<ImageRecord>, ImageError> {
        Ok(self.store.images().list()?)
    }

    /// The image `name` names: an image ID (`sha256:<hex>` or bare hex), a unique ID prefix,
    /// a tag (`busybox` → `docker.io/library/busybox:latest`) or a repo digest. `None` when
    /// there is no such image.
    pub fn status(&self, name: &str) -> Result<Option<ImageRecord>, ImageError> {
        match self.resolve(name)? {
            Some(id) => Ok(self.store.images().try_get(&id)?),
            None => Ok(None),
        }
    }

    /// The ID of the image `name` names (see [`status`](Self::status)).
    pub fn resolve(&self, name: &str) -> Result<Option<String>, ImageError> {
        if let Some(id) = is_image_id(name) {
            return Ok(self.store.images().contains(&id)?.then_some(id));
        }
        if let Ok(reference) = ImageReference::parse(name) {
            let key = match reference.digest() {
                Some(digest) => reference.with_digest(digest),
                None => reference.tagged().unwrap_or_else(|| reference.name()),
            };
            if let Some(id) = self.store.resolve_ref(&key)? {
                return Ok(Some(id));
            }
        }
        // A short ID, as crictl shows them.
        let hex = name.strip_prefix("sha256:").unwrap_or(name);
        if hex.len() >= 4 && hex.len() < 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            match self.store.images().find_by_prefix(&format!("sha256:{hex}")) {
                Ok(record) => return Ok(Some(record.id)),
                Err(err) if err.is_not_found() => {}
                Err(err) => return Err(err.into()),
            }
        }
        Ok(None)
    }

    /// Removes the image `name` names, with all its tags and digests, and then its blobs and
    /// snapshots that no other image uses. An unknown name is not an error.
    ///
    /// `user_of` says which container, if any, still runs on an image ID: such an image is
    /// kept (its snapshots are that container's root filesystem) and the call fails with
    /// [`ImageError::InUse`].
    pub async fn remove(
        &self,
        name: &str,
        user_of: impl FnOnce(&str) -> Option<String>,
    ) -> Result<bool, ImageError> {
        let _exclusive = self.gc_lock.write().await;
        let Some(id) = self.resolve(name)? else {
            return Ok(false);
        };
        if let Some(container) = user_of(&id) {
            return Err(ImageError::InUse {
                image: id,
                container,
            });
        }
        let existed = self.store.remove_image(&id)?;
        tracing::info!(image = %id, name, "image removed");
        self.collect_garbage()?;
        Ok(existed)
    }

    /// The lock serialising fetches of one layer.
    pub(crate) fn layer_lock(&self, chain_id: &Digest) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.layer_locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.retain(|_, lock| Arc::strong_count(lock) > 1);
        locks.entry(chain_id.clone()).or_default().clone()
    }

    /// Deletes blobs and snapshots no image references. Call with the GC lock held
    /// exclusively.
    fn collect_garbage(&self) -> Result<(), ImageError> {
        let mut live_blobs = std::collections::HashSet::new();
        let mut live_snapshots = std::collections::HashSet::new();
        for image in self.store.images().list()? {
            let mut add = |text: &str| {
                if let Ok(digest) = Digest::parse(text) {
                    live_blobs.insert(digest);
                }
            };
            add(&image.id);
            add(&image.manifest_digest);
            for repo_digest in &image.repo_digests {
                if let Some((_, digest)) = repo_digest.split_once('@') {
                    add(digest);
                }
            }
            for layer in self.layer_digests(&image)? {
                live_blobs.insert(layer);
            }
            for chain_id in &image.chain_ids {
                if let Ok(digest) = Digest::parse(chain_id) {
                    live_snapshots.insert(digest);
                }
            }
        }
        let (mut blobs, mut snapshots) = (0, 0);
        for digest in self.content.list()? {
            if !live_blobs.contains(&digest) {
                self.content.remove(&digest)?;
                blobs += 1;
            }
        }
        for chain_id in self.snapshots.list()? {
            if !live_snapshots.contains(&chain_id) {
                self.snapshots.remove(&chain_id)?;
                snapshots += 1;
            }
        }
        tracing::info!(blobs, snapshots, "garbage collected");
        Ok(())
    }

    /// Layer blob digests of an image, from its stored manifest.
    fn layer_digests(&self, image: &ImageRecord) -> Result<Vec<Digest>, ImageError> {
        let Ok(manifest_digest) = Digest::parse(&image.manifest_digest) else {
            return Ok(Vec::new());
        };
        if !self.content.contains(&manifest_digest) {
            return Ok(Vec::new());
        }
        let bytes = self.content.read(&manifest_digest)?;
        match crate::manifest::parse_document(&image.manifest_digest, &bytes)? {
            crate::manifest::Document::Manifest(manifest) => {
                manifest.layers.iter().map(|layer| layer.digest()).collect()
            }
            crate::manifest::Document::Index(_) => Ok(Vec::new()),
        }
    }
}

/// `root/content` and `root/snapshots`, for callers that only measure them.
pub fn image_dirs(root: &Path) -> [PathBuf; 2] {
    [root.join("content"), root.join("snapshots")]
}
