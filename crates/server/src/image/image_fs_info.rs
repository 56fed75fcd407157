//! `ImageFsInfo`: bytes and inodes used by image content and snapshots.
//!
//! The figure is measured by walking the image directories under `root` (content store and
//! snapshots), so it is the real usage of berth's image filesystem, not the disk's. The trash
//! (`<root>/trash`: removed blobs and snapshots whose files are still being deleted after
//! RemoveImage answered) is not counted: it belongs to no image any more and only shrinks,
//! so an image's usage drops as soon as the image is removed.

use std::sync::Arc;

use cri_api::v1;

use crate::clock::now_nanos;
use crate::daemon::Daemon;
use crate::error::ServiceError;
use berth_image::fsusage::{usage_of, Usage};

pub(super) async fn image_fs_info(
    daemon: Arc<Daemon>,
    _request: v1::ImageFsInfoRequest,
) -> Result<v1::ImageFsInfoResponse, ServiceError> {
    let usage = tokio::task::spawn_blocking(move || measure_image_fs(&daemon)).await??;
    Ok(v1::ImageFsInfoResponse {
        image_filesystems: vec![usage],
        container_filesystems: Vec::new(),
    })
}

fn measure_image_fs(daemon: &Daemon) -> Result<v1::FilesystemUsage, ServiceError> {
    let mut total = Usage::default();
    let snapshots = daemon.images.snapshots_dir();
    for dir in [daemon.images.content_dir(), snapshots.clone()] {
        total.add(usage_of(&dir).map_err(|source| ServiceError::Io {
            action: "measure",
            path: dir.clone(),
            source,
        })?);
    }
    Ok(v1::FilesystemUsage {
        timestamp: now_nanos(),
        fs_id: Some(v1::FilesystemIdentifier {
            mountpoint: snapshots.display().to_string(),
        }),
        used_bytes: Some(v1::UInt64Value { value: total.bytes }),
        inodes_used: Some(v1::UInt64Value {
            value: total.inodes,
        }),
    })
}
