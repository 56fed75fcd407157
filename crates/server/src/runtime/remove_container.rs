//! `RemoveContainer`: kills it if running, deletes it from runc and removes its rootfs,
//! files and record (the runtime core's work). Idempotent: removing an unknown container
//! succeeds.

use std::sync::Arc;

use cri_api::v1;

use crate::daemon::Daemon;
use crate::error::ServiceError;

pub(super) async fn remove_container(
    daemon: Arc<Daemon>,
    request: v1::RemoveContainerRequest,
) -> Result<v1::RemoveContainerResponse, ServiceError> {
    daemon
        .core()
        .remove_container(&request.container_id)
        .await?;
    Ok(v1::RemoveContainerResponse {})
}
