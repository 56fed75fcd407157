//! `StopPodSandbox`: releases the pod's network and marks it NotReady. Idempotent: stopping
//! an unknown or already stopped sandbox succeeds, as the CRI requires.

use std::sync::Arc;

use cri_api::v1;

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
    tokio::task::spawn_blocking(move || stop_sandbox(&daemon, &record)).await??;
    Ok(v1::StopPodSandboxResponse {})
}
