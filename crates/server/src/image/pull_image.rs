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
    // The pull runs as a task of its own: the registry client panics on some answers a
    // hostile registry can give (a token that cannot be a header), and a panic must end as
    // an Internal status for this pull, not as a reset stream. The task is aborted when the
    // client goes away, as the pull was before.
    let mut task = AbortOnDrop(tokio::spawn(async move {
        daemon.images.pull(&image, &credentials).await
    }));
    let record = (&mut task.0).await??;
    Ok(v1::PullImageResponse {
        image_ref: record.id,
    })
}

/// Aborts the task when dropped (the RPC's future dropped with its client).
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
