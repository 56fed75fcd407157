//! The image manager: what the CRI ImageService calls. It owns the content store, the
//! snapshots and the image records, and keeps them consistent:
//!
//! - an image becomes visible (a record with its references) only after its config, its
//!   manifest and every layer are stored and unpacked;
//! - pulls hold the GC lock shared and removal holds it exclusively, so garbage collection
//!   never deletes a blob or snapshot that a running pull has written but not yet recorded;
//! - removal never delays other calls: the decision (which image, is it in use, the store
//!   transaction) is quick, the scan for unreferenced blobs and snapshots runs on a blocking
//!   thread, and these are only renamed into the trash there (which hides them at once); a
//!   thread of the trash deletes their files later, holding no lock (see [`crate::trash`]).
//!   RemoveImage thus answers before the space is free;
//! - a layer is fetched once even when several pulls want it at the same time (a lock per
//!   chain ID; the second pull finds the snapshot in place).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_store::{ImageRecord, Store};

use crate::content::ContentStore;
use crate::digest::Digest;
use crate::error::ImageError;
use crate::hosts::RegistryHosts;
use crate::reference::{is_image_id, ImageReference};
use crate::snapshots::Snapshots;
use crate::trash::Trash;
use crate::unpack::Limits;

/// Settings of the image manager.
#[derive(Debug, Clone)]
pub struct ImageSettings {
    /// The daemon's root: content under `root/content`, snapshots under `root/snapshots`, what
    /// is being deleted under `root/trash` (all on one filesystem).
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
    /// Shared by pulls, exclusive for removal and garbage collection (owned by the blocking
    /// task that collects, so it stays held until the collection ends even if the caller
    /// goes away).
    pub(crate) gc_lock: Arc<tokio::sync::RwLock<()>>,
    /// Serialises the read-modify-write of image records at the end of pulls.
    pub(crate) record_lock: tokio::sync::Mutex<()>,
    /// One lock per chain ID being fetched.
    layer_locks: Mutex<HashMap<Digest, Arc<tokio::sync::Mutex<()>>>>,
    /// Where removed blobs and snapshots are deleted (it counts the space freed).
    trash: Trash,
    /// Compressed layer bytes pulls downloaded.
    pub(crate) pulled_bytes: AtomicU64,
    /// Garbage collections done.
    gc_runs: AtomicU64,
}

/// What the image manager did since it opened, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImageStats {
    /// Compressed layer bytes pulls downloaded (layers already present are not fetched).
    pub pulled_bytes: u64,
    /// Garbage collections completed (each image removal runs one).
    pub gc_runs: u64,
    /// Disk space the trash freed by deleting what garbage collection and interrupted
    /// pulls left there.
    pub freed_bytes: u64,
}

impl ImageManager {
    /// Opens the image stores under `settings.root`. What interrupted pulls and deletions
    /// left is moved into the trash and deleted there by the trash's own thread, so opening
    /// takes no longer with a full trash (and blocks no async worker).
    pub fn open(store: Store, settings: ImageSettings) -> Result<ImageManager, ImageError> {
        let trash = Trash::open(&settings.root.join("trash"))?;
        let content = ContentStore::open(&settings.root.join("content"), trash.clone())?;
        let snapshots = Snapshots::open(&settings.root.join("snapshots"), trash.clone())?;
        Ok(ImageManager {
            store,
            content,
            snapshots,
            hosts: RegistryHosts::new(settings.hosts_dir.clone()),
            settings,
            gc_lock: Arc::new(tokio::sync::RwLock::new(())),
            record_lock: tokio::sync::Mutex::new(()),
            layer_locks: Mutex::new(HashMap::new()),
            trash,
            pulled_bytes: AtomicU64::new(0),
            gc_runs: AtomicU64::new(0),
        })
    }

    /// What the manager did since it opened.
    pub fn stats(&self) -> ImageStats {
        ImageStats {
            pulled_bytes: self.pulled_bytes.load(Ordering::Relaxed),
            gc_runs: self.gc_runs.load(Ordering::Relaxed),
            freed_bytes: self.trash.freed_bytes(),
        }
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
    /// The blobs and snapshots are gone when this returns, but their files may still be in
    /// the trash, being deleted.
    ///
    /// `user_of` says which container, if any, still runs on an image ID: such an image is
    /// kept (its snapshots are that container's root filesystem) and the call fails with
    /// [`ImageError::InUse`].
    pub async fn remove(
        &self,
        name: &str,
        user_of: impl FnOnce(&str) -> Option<String>,
    ) -> Result<bool, ImageError> {
        let exclusive = self.gc_lock.clone().write_owned().await;
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
        let (store, content, snapshots) = (
            self.store.clone(),
            self.content.clone(),
            self.snapshots.clone(),
        );
        tokio::task::spawn_blocking(move || {
            let _exclusive = exclusive;
            collect_garbage(&store, &content, &snapshots)
        })
        .await??;
        self.gc_runs.fetch_add(1, Ordering::Relaxed);
        Ok(existed)
    }

    /// The lock serialising fetches of one layer.
    pub(crate) fn layer_lock(&self, chain_id: &Digest) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.layer_locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.retain(|_, lock| Arc::strong_count(lock) > 1);
        locks.entry(chain_id.clone()).or_default().clone()
    }
}

/// Moves the blobs and snapshots no image references into the trash. Call with the GC lock
/// held exclusively, off the async workers (it lists directories and reads manifests).
fn collect_garbage(
    store: &Store,
    content: &ContentStore,
    snapshots: &Snapshots,
) -> Result<(), ImageError> {
    let mut live_blobs = std::collections::HashSet::new();
    let mut live_snapshots = std::collections::HashSet::new();
    for image in store.images().list()? {
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
        for layer in layer_digests(content, &image)? {
            live_blobs.insert(layer);
        }
        for chain_id in &image.chain_ids {
            if let Ok(digest) = Digest::parse(chain_id) {
                live_snapshots.insert(digest);
            }
        }
    }
    let (mut blobs, mut unpacked) = (0, 0);
    for digest in content.list()? {
        if !live_blobs.contains(&digest) {
            content.remove(&digest)?;
            blobs += 1;
        }
    }
    for chain_id in snapshots.list()? {
        if !live_snapshots.contains(&chain_id) {
            snapshots.remove(&chain_id)?;
            unpacked += 1;
        }
    }
    tracing::info!(
        blobs,
        snapshots = unpacked,
        "garbage collected (moved to the trash)"
    );
    Ok(())
}

/// Layer blob digests of an image, from its stored manifest.
fn layer_digests(content: &ContentStore, image: &ImageRecord) -> Result<Vec<Digest>, ImageError> {
    let Ok(manifest_digest) = Digest::parse(&image.manifest_digest) else {
        return Ok(Vec::new());
    };
    if !content.contains(&manifest_digest) {
        return Ok(Vec::new());
    }
    let bytes = content.read(&manifest_digest)?;
    match crate::manifest::parse_document(&image.manifest_digest, &bytes)? {
        crate::manifest::Document::Manifest(manifest) => {
            manifest.layers.iter().map(|layer| layer.digest()).collect()
        }
        crate::manifest::Document::Index(_) => Ok(Vec::new()),
    }
}

/// `root/content` and `root/snapshots`, for callers that only measure them.
pub fn image_dirs(root: &Path) -> [PathBuf; 2] {
    [root.join("content"), root.join("snapshots")]
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::trash::tests::wait_until_empty;

    /// An image manager over a store and image directories in `root`.
    pub(crate) fn open(root: &Path) -> ImageManager {
        let store = Store::open(root).unwrap();
        ImageManager::open(
            store,
            ImageSettings {
                root: root.to_owned(),
                hosts_dir: root.join("certs.d"),
                max_concurrent_downloads: 1,
                stall_timeout: Duration::from_secs(5),
                limits: Limits::default(),
            },
        )
        .unwrap()
    }

    fn chain_id(layer: &str) -> Digest {
        Digest::of(format!("chain {layer}").as_bytes())
    }

    fn layer_blob(layer: &str) -> Digest {
        Digest::of(format!("blob {layer}").as_bytes())
    }

    /// Records the image `tag` of `layers`, each a blob and a snapshot of `files` files, as a
    /// pull would leave it; returns its ID.
    fn add_image(images: &ImageManager, tag: &str, layers: &[&str], files: usize) -> String {
        let mut descriptors = Vec::new();
        for layer in layers {
            let data = format!("blob {layer}");
            let digest = layer_blob(layer);
            images
                .content
                .write_verified("layer", &digest, data.as_bytes())
                .unwrap();
            descriptors.push(serde_json::json!({
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": digest.to_string(),
                "size": data.len(),
            }));
            if !images.snapshots.contains(&chain_id(layer)) {
                let pending = images.snapshots.prepare().unwrap();
                for n in 0..files {
                    std::fs::write(pending.fs().join(n.to_string()), layer).unwrap();
                }
                images.snapshots.commit(pending, &chain_id(layer)).unwrap();
            }
        }
        let config = serde_json::json!({ "architecture": "amd64", "os": "linux", "tag": tag });
        let config_bytes = config.to_string();
        let config_digest = Digest::of(config_bytes.as_bytes());
        images
            .content
            .write_verified("config", &config_digest, config_bytes.as_bytes())
            .unwrap();
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest.to_string(),
                "size": config_bytes.len(),
            },
            "layers": descriptors,
        })
        .to_string();
        let manifest_digest = Digest::of(manifest.as_bytes());
        images
            .content
            .write_verified("manifest", &manifest_digest, manifest.as_bytes())
            .unwrap();
        let record = ImageRecord {
            id: config_digest.to_string(),
            repo_tags: vec![tag.to_owned()],
            repo_digests: Vec::new(),
            size: 1,
            manifest_digest: manifest_digest.to_string(),
            config,
            pinned: false,
            created_at: 0,
            chain_ids: layers.iter().map(|l| chain_id(l).to_string()).collect(),
        };
        images.store.put_image_with_refs(&record).unwrap();
        record.id
    }

    fn sorted(mut digests: Vec<Digest>) -> Vec<Digest> {
        digests.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        digests
    }

    #[tokio::test]
    async fn removal_hides_what_no_image_uses_at_once_and_deletes_it_later() {
        let root = tempfile::tempdir().unwrap();
        let images = open(root.path());
        let a = add_image(&images, "docker.io/library/a:1", &["base", "a"], 300);
        let b = add_image(&images, "docker.io/library/b:1", &["base", "b"], 300);

        assert!(images
            .remove("docker.io/library/a:1", |_| None)
            .await
            .unwrap());
        assert!(images.status(&a).unwrap().is_none());
        assert_eq!(images.stats().gc_runs, 1);
        // a's own layer is gone from the stores as soon as RemoveImage returns; the shared
        // one and b's stay, files and all.
        assert_eq!(
            sorted(images.snapshots.list().unwrap()),
            sorted(vec![chain_id("base"), chain_id("b")])
        );
        assert!(!images.snapshots.path(&chain_id("a")).exists());
        let blobs = images.content.list().unwrap();
        assert!(!blobs.contains(&layer_blob("a")));
        assert!(blobs.contains(&layer_blob("base")) && blobs.contains(&layer_blob("b")));
        wait_until_empty(&root.path().join("trash"));
        for layer in ["base", "b"] {
            let files = std::fs::read_dir(images.snapshots.fs(&chain_id(layer))).unwrap();
            assert_eq!(files.count(), 300, "{layer}");
        }

        assert!(images.remove(&b, |_| None).await.unwrap());
        assert!(images.snapshots.list().unwrap().is_empty());
        assert!(images.content.list().unwrap().is_empty());
        wait_until_empty(&root.path().join("trash"));
        assert_eq!(
            std::fs::read_dir(root.path().join("snapshots"))
                .unwrap()
                .count(),
            0
        );
        // Unknown now: not an error, and no collection.
        assert!(!images.remove(&b, |_| None).await.unwrap());
        let stats = images.stats();
        assert_eq!((stats.gc_runs, stats.pulled_bytes), (2, 0));
        // Three snapshots of 300 files and their blobs: well over 900 blocks' worth (the
        // counter is added to right after each deletion, so it may trail the empty trash).
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while images.stats().freed_bytes < 900 * 512 && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(
            images.stats().freed_bytes >= 900 * 512,
            "{:?}",
            images.stats()
        );
    }

    #[tokio::test]
    async fn an_image_in_use_is_kept_whole() {
        let root = tempfile::tempdir().unwrap();
        let images = open(root.path());
        let id = add_image(&images, "docker.io/library/a:1", &["a"], 3);
        let err = images
            .remove(&id, |_| Some("c1".to_owned()))
            .await
            .unwrap_err();
        assert!(matches!(err, ImageError::InUse { .. }), "{err}");
        assert!(images.status(&id).unwrap().is_some());
        assert_eq!(images.snapshots.list().unwrap(), vec![chain_id("a")]);
        assert_eq!(images.content.list().unwrap().len(), 3);
        assert_eq!(images.stats().gc_runs, 0);
    }

    #[test]
    fn open_deletes_what_a_crash_left() {
        let root = tempfile::tempdir().unwrap();
        // A deletion cut short, an unpack and a download interrupted.
        let leftover = root.path().join("trash/123-0-456/fs/d");
        std::fs::create_dir_all(&leftover).unwrap();
        std::fs::write(leftover.join("f"), "x").unwrap();
        let unpack = root.path().join("snapshots/.tmp-123-1-456/fs");
        std::fs::create_dir_all(&unpack).unwrap();
        std::fs::write(unpack.join("f"), "x").unwrap();
        std::fs::create_dir_all(root.path().join("content/ingest")).unwrap();
        std::fs::write(root.path().join("content/ingest/blob-123-2-456"), "x").unwrap();

        let images = open(root.path());
        assert!(images.snapshots.list().unwrap().is_empty());
        assert_eq!(
            std::fs::read_dir(root.path().join("snapshots"))
                .unwrap()
                .count(),
            0
        );
        assert_eq!(
            std::fs::read_dir(root.path().join("content/ingest"))
                .unwrap()
                .count(),
            0
        );
        wait_until_empty(&root.path().join("trash"));
    }
}
