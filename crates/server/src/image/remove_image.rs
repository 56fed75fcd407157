//! `RemoveImage`: removes an image with all its tags and digests (kubelet removes images,
//! not single tags), then the blobs and snapshots no other image uses. Removing an image
//! that does not exist succeeds, as the CRI requires; one a container still uses is kept
//! (FailedPrecondition) until the container is removed.

use std::sync::Arc;

use cri_api::v1;

use crate::daemon::Daemon;
use crate::error::ServiceError;

pub(super) async fn remove_image(
    daemon: Arc<Daemon>,
    request: v1::RemoveImageRequest,
) -> Result<v1::RemoveImageResponse, ServiceError> {
    let name = request.image.map(|spec| spec.image).unwrap_or_default();
    let core = daemon.core().clone();
    daemon
        .images
        .remove(&name, |id| core.image_user(id))
        .await?;
    Ok(v1::RemoveImageResponse {})
}
