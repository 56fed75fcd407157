//! `ListImages`: the images of the metadata store, optionally filtered by one reference.

use std::sync::Arc;

use berth_store::ImageRecord;
use cri_api::v1;

use crate::daemon::Daemon;
use crate::error::ServiceError;

pub(super) async fn list_images(
    daemon: Arc<Daemon>,
    request: v1::ListImagesRequest,
) -> Result<v1::ListImagesResponse, ServiceError> {
    let wanted = request
        .filter
        .and_then(|filter| filter.image)
        .map(|spec| spec.image)
        .filter(|image| !image.is_empty());
    let records = tokio::task::spawn_blocking(move || daemon.store.images().list()).await??;
    let images = records
        .into_iter()
        .filter(|record| wanted.as_deref().is_none_or(|image| matches(record, image)))
        .map(to_cri_image)
        .collect();
    Ok(v1::ListImagesResponse { images })
}

/// Whether `image` names `record` exactly: its ID, one of its tags or one of its digests.
/// Reference normalisation (`busybox` → `docker.io/library/busybox:latest`) comes with image
/// pulling.
fn matches(record: &ImageRecord, image: &str) -> bool {
    record.id == image
        || record.repo_tags.iter().any(|tag| tag == image)
        || record.repo_digests.iter().any(|digest| digest == image)
}

/// The CRI view of a stored image.
pub(crate) fn to_cri_image(record: ImageRecord) -> v1::Image {
    v1::Image {
        id: record.id,
        repo_tags: record.repo_tags,
        repo_digests: record.repo_digests,
        size: record.size,
        pinned: record.pinned,
        ..Default::default()
    }
}
