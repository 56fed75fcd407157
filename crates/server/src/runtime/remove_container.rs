//! `RemoveContainer`: kills it if running, deletes it from runc and removes its rootfs,
//! files and record. Idempotent: removing an unknown container succeeds.

use std::sync::Arc;

use cri_api::v1;

use crate::container::lifecycle::remove_container as remove;
use crate::daemon::Daemon;
use crate::error::ServiceError;

pub(super) async fn remove_container(
    daemon: Arc<Daemon>,
    request: v1::RemoveContainerRequest,
) -> Result<v1::RemoveContainerResponse, ServiceError> {
    let Some(record) = daemon.find_container_or_none(&request.container_id)? else {
        return Ok(v1::RemoveContainerResponse {});
    };
    let _guard = daemon.container_locks.lock(&record.id).await;
    remove(&daemon, &record).await?;
    Ok(v1::RemoveContainerResponse {})
}
