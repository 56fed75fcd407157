//! Writing image records: the last step of a pull and of an import, after every blob and
//! snapshot of the image is in place. An existing record of the same image ID keeps its
//! tags, digests and pin and gains the new ones.

use berth_store::ImageRecord;

use crate::digest::Digest;
use crate::error::ImageError;
use crate::manager::ImageManager;

/// What a pull or an import learnt about one image.
#[derive(Debug)]
pub(crate) struct RecordUpdate<'a> {
    /// The config blob: the image ID.
    pub config: &'a Digest,
    /// The config.
    pub config_bytes: &'a [u8],
    /// The platform manifest.
    pub manifest: &'a Digest,
    /// Config and layer blob sizes.
    pub size: u64,
    /// Chain IDs, base first.
    pub chain: &'a [Digest],
    /// Normalised tags to add.
    pub tags: &'a [String],
    /// Normalised repo digests to add.
    pub repo_digests: &'a [String],
    /// Pin the image (never unpins).
    pub pin: bool,
}

impl ImageManager {
    /// Creates or updates the record of `update.config`. Call with the record lock held.
    pub(crate) fn write_record(
        &self,
        update: &RecordUpdate<'_>,
    ) -> Result<ImageRecord, ImageError> {
        let id = update.config.to_string();
        let config: serde_json::Value =
            serde_json::from_slice(update.config_bytes).map_err(|err| {
                ImageError::InvalidDocument {
                    what: format!("config {id}"),
                    kind: "image config",
                    reason: err.to_string(),
                }
            })?;
        let mut record = match self.store.images().try_get(&id)? {
            Some(existing) => existing,
            None => ImageRecord {
                id: id.clone(),
                repo_tags: Vec::new(),
                repo_digests: Vec::new(),
                size: update.size,
                manifest_digest: update.manifest.to_string(),
                config: serde_json::Value::Null,
                pinned: false,
                created_at: now_nanos(),
                chain_ids: Vec::new(),
            },
        };
        record.size = update.size;
        record.manifest_digest = update.manifest.to_string();
        record.config = config;
        record.chain_ids = update.chain.iter().map(ToString::to_string).collect();
        record.pinned |= update.pin;
        for tag in update.tags {
            if !record.repo_tags.contains(tag) {
                record.repo_tags.push(tag.clone());
            }
        }
        for digest in update.repo_digests {
            if !record.repo_digests.contains(digest) {
                record.repo_digests.push(digest.clone());
            }
        }
        self.store.put_image_with_refs(&record)?;
        Ok(record)
    }
}

fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}
