//! `ReopenContainerLog`: the shim closes and reopens the log file (kubelet rotated it).

use std::sync::Arc;

use berth_shim::ShimClient;
use berth_store::ContainerState;
use cri_api::v1;

use crate::container::paths::ContainerPaths;
use crate::daemon::Daemon;
use crate::error::ServiceError;

pub(super) async fn reopen_container_log(
    daemon: Arc<Daemon>,
    request: v1::ReopenContainerLogRequest,
) -> Result<v1::ReopenContainerLogResponse, ServiceError> {
    let view = daemon.find_container(&request.container_id)?;
    let state = view.state();
    let record = view.record;
    let paths = ContainerPaths::new(&daemon, &record.id);
    if state != ContainerState::Running {
        return Err(ServiceError::FailedPrecondition {
            what: format!("container {} is not running", record.id),
        });
    }
    let client = ShimClient::new(paths.shim());
    tokio::task::spawn_blocking(move || client.reopen_log()).await??;
    Ok(v1::ReopenContainerLogResponse {})
}
