//! `StartContainer`: `runc start` of a created container.

use std::sync::Arc;

use berth_store::ContainerState;
use cri_api::v1;

use crate::clock::now_nanos;
use crate::container::paths::ContainerPaths;
use crate::container::state::{mark_started, observe};
use crate::daemon::Daemon;
use crate::error::ServiceError;

pub(super) async fn start_container(
    daemon: Arc<Daemon>,
    request: v1::StartContainerRequest,
) -> Result<v1::StartContainerResponse, ServiceError> {
    let record = daemon.find_container(&request.container_id)?;
    let _guard = daemon.container_locks.lock(&record.id).await;
    let paths = ContainerPaths::new(&daemon, &record.id);
    let state = observe(&paths).state;
    if state != ContainerState::Created {
        return Err(ServiceError::FailedPrecondition {
            what: format!("container {} is {state:?}, not created", record.id),
        });
    }
    // Taken before runc start: a process that exits at once must not look started after
    // it finished.
    let started_at = now_nanos();
    daemon.runc()?.start(&record.id).await?;
    mark_started(&paths, started_at).map_err(|source| ServiceError::Io {
        action: "record start of",
        path: paths.started(),
        source,
    })?;
    tracing::info!(container = %record.id, "container started");
    daemon.events.emit(
        &daemon,
        v1::ContainerEventType::ContainerStartedEvent,
        &record.id,
    );
    Ok(v1::StartContainerResponse {})
}
