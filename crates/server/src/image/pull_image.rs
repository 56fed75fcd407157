//! `PullImage`: fetch an image into the content store and snapshots.

use std::sync::Arc;

use berth_image::Credentials;
use cri_api::v1;

use crate::daemon::Daemon;
use crate::error::ServiceError;

pub(super) async fn pull_image(
    daemon: Arc<Daemon>,
    request: v1::PullImageRequest,
) -> Result<v1::PullImageResponse, ServiceError> {
    // Validation guarantees an ImageSpec with a non-empty image.
    let image = request.image.map(|spec| spec.image).unwrap_or_default();
    let credentials = request
        .auth
        .map(|auth| Credentials {
            username: auth.username,
            password: auth.password,
            auth: auth.auth,
            identity_token: auth.identity_token,
            registry_token: auth.registry_token,
        })
        .unwrap_or_default();
    let record = daemon.images.pull(&image, &credentials).await?;
    Ok(v1::PullImageResponse {
        image_ref: record.id,
    })
}
