//! `StopPodSandbox`: kills the pod's containers, releases its network and marks it NotReady. Idempotent: stopping
//! an unknown or already stopped sandbox succeeds, as the CRI requires.

use std::sync::Arc;
use std::time::Duration;

use cri_api::v1;

use crate::container::lifecycle::{containers_of, stop_container, SIGKILL};
use crate::daemon::Daemon;
use crate::error::ServiceError;
use crate::pod::teardown::stop_sandbox;

pub(super) async fn stop_pod_sandbox(
    daemon: Arc<Daemon>,
    request: v1::StopPodSandboxRequest,
) -> Result<v1::StopPodSandboxResponse, ServiceError> {
    let Some(record) = daemon.find_sandbox_or_none(&request.pod_sandbox_id)? else {
        return Ok(v1::StopPodSandboxResponse {});
    };
    let _guard = daemon.sandbox_locks.lock(&record.id).await;
    // The pod's containers are killed first: kubelet has already stopped them with their
    // grace periods, so anything left gets none.
    for container in containers_of(&daemon, &record.id)? {
        let _container = daemon.container_locks.lock(&container.id).await;
        stop_container(&daemon, &container, SIGKILL, Duration::ZERO).await?;
    }
    tokio::task::spawn_blocking(move || stop_sandbox(&daemon, &record)).await??;
    Ok(v1::StopPodSandboxResponse {})
}
