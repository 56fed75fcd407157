//! The image record (tree `images`, version 2) and the reading of version 1.

use serde::{Deserialize, Serialize};

use crate::codec::{decode_json, Record};
use crate::error::DecodeError;
use crate::trees;

/// A pulled and unpacked image (tree `images`, version 2).
///
/// `repo_tags` and `repo_digests` are mirrored by the `image_refs` index; change them only
/// through the [`crate::Store`] image methods, which keep both in one transaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// Image id: the config digest, `sha256:<64 hex>`; the key.
    pub id: String,
    /// Normalised tag references (`docker.io/library/busybox:latest`) naming this image.
    #[serde(default)]
    pub repo_tags: Vec<String>,
    /// Normalised digest references (`docker.io/library/busybox@sha256:<hex>`).
    #[serde(default)]
    pub repo_digests: Vec<String>,
    /// Size in bytes, as reported to the CRI (`Image.size`).
    pub size: u64,
    /// Digest of the manifest that was pulled for this platform.
    pub manifest_digest: String,
    /// The image config (OCI image config JSON), as fetched.
    #[serde(default)]
    pub config: serde_json::Value,
    /// Pinned images are never garbage collected (`Image.pinned`). Added in version 2.
    #[serde(default)]
    pub pinned: bool,
    /// When the image was stored, nanoseconds since the Unix epoch.
    pub created_at: i64,
    /// Layer chain ids, base layer first. The last one is the key of the top snapshot; each is
    /// the key of the snapshot holding the layers up to and including it.
    #[serde(default)]
    pub chain_ids: Vec<String>,
}

impl ImageRecord {
    /// Every reference (tags, then digests) that names this image.
    pub fn references(&self) -> impl Iterator<Item = &str> {
        self.repo_tags
            .iter()
            .chain(&self.repo_digests)
            .map(String::as_str)
    }

    /// Add `reference` to `repo_digests` if it contains `@`, else to `repo_tags`, unless it is
    /// there already.
    pub(crate) fn add_reference(&mut self, reference: &str) {
        let list = if is_digest_reference(reference) {
            &mut self.repo_digests
        } else {
            &mut self.repo_tags
        };
        if !list.iter().any(|r| r == reference) {
            list.push(reference.to_owned());
        }
    }

    /// Drop `reference` from both lists. Returns whether it was there.
    pub(crate) fn remove_reference(&mut self, reference: &str) -> bool {
        let before = self.repo_tags.len() + self.repo_digests.len();
        self.repo_tags.retain(|r| r != reference);
        self.repo_digests.retain(|r| r != reference);
        before != self.repo_tags.len() + self.repo_digests.len()
    }
}

/// A digest reference (`repo@sha256:...`) as opposed to a tag reference.
pub(crate) fn is_digest_reference(reference: &str) -> bool {
    reference.contains('@')
}

impl Record for ImageRecord {
    const TREE: &'static str = trees::IMAGES;
    const VERSION: u16 = 2;

    fn key(&self) -> &str {
        &self.id
    }

    fn decode_version(version: u16, body: &[u8]) -> Result<Self, DecodeError> {
        match version {
            1 => decode_json::<ImageRecordV1>(body)?.upgrade(),
            2 => decode_json(body),
            other => Err(DecodeError::UnknownVersion(other)),
        }
    }
}

/// Version 1 of the image record: `size` was a decimal string (so JSON readers that hold
/// numbers as doubles cannot round it) and there was no `pinned` flag.
#[derive(Debug, Deserialize)]
struct ImageRecordV1 {
    id: String,
    #[serde(default)]
    repo_tags: Vec<String>,
    #[serde(default)]
    repo_digests: Vec<String>,
    size: String,
    manifest_digest: String,
    #[serde(default)]
    config: serde_json::Value,
    created_at: i64,
    #[serde(default)]
    chain_ids: Vec<String>,
}

impl ImageRecordV1 {
    /// Version 2 from version 1: parse `size`; images were never pinned in version 1.
    fn upgrade(self) -> Result<ImageRecord, DecodeError> {
        let size = self
            .size
            .parse()
            .map_err(|source| DecodeError::BadInteger {
                field: "size",
                source,
            })?;
        Ok(ImageRecord {
            id: self.id,
            repo_tags: self.repo_tags,
            repo_digests: self.repo_digests,
            size,
            manifest_digest: self.manifest_digest,
            config: self.config,
            pinned: false,
            created_at: self.created_at,
            chain_ids: self.chain_ids,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_body_upgrades() {
        let body = br#"{"id":"sha256:aa","repo_tags":["docker.io/library/busybox:latest"],
            "repo_digests":[],"size":"18446744073709551615","manifest_digest":"sha256:bb",
            "config":{"architecture":"amd64"},"created_at":5,"chain_ids":["sha256:cc"]}"#;
        let image = ImageRecord::decode_version(1, body).unwrap();
        assert_eq!(image.size, u64::MAX);
        assert!(!image.pinned);
        assert_eq!(image.config["architecture"], "amd64");
    }

    #[test]
    fn v1_bad_size_names_field() {
        let body =
            br#"{"id":"sha256:aa","size":"12kB","manifest_digest":"sha256:bb","created_at":5}"#;
        let err = ImageRecord::decode_version(1, body).unwrap_err();
        assert!(
            matches!(err, DecodeError::BadInteger { field: "size", .. }),
            "{err}"
        );
    }

    #[test]
    fn references_sorted_into_lists() {
        let mut image: ImageRecord = decode_json(
            br#"{"id":"sha256:aa","size":1,"manifest_digest":"sha256:bb","created_at":0}"#,
        )
        .unwrap();
        image.add_reference("docker.io/library/busybox:latest");
        image.add_reference("docker.io/library/busybox@sha256:dd");
        image.add_reference("docker.io/library/busybox:latest");
        assert_eq!(image.repo_tags, ["docker.io/library/busybox:latest"]);
        assert_eq!(image.repo_digests, ["docker.io/library/busybox@sha256:dd"]);
        assert!(image.remove_reference("docker.io/library/busybox:latest"));
        assert!(!image.remove_reference("docker.io/library/busybox:latest"));
        assert_eq!(image.references().count(), 1);
    }
}
