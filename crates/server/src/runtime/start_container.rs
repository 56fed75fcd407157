//! `StartContainer`: the shim (`runc create`) and `runc start` of a created container (the
//! runtime core's work; a failed start leaves it Exited 128 `StartError`).

use std::sync::Arc;

use cri_api::v1;

use crate::daemon::Daemon;
use crate::error::ServiceError;

pub(super) async fn start_container(
    daemon: Arc<Daemon>,
    request: v1::StartContainerRequest,
) -> Result<v1::StartContainerResponse, ServiceError> {
    daemon.core().start_container(&request.container_id).await?;
    Ok(v1::StartContainerResponse {})
}
