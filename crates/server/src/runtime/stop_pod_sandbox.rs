//! `StopPodSandbox`: kills the pod's containers, releases its network and marks it NotReady
//! (the runtime core's work). Idempotent: stopping an unknown or stopped sandbox succeeds.

use std::sync::Arc;

use cri_api::v1;

use crate::daemon::Daemon;
use crate::error::ServiceError;

pub(super) async fn stop_pod_sandbox(
    daemon: Arc<Daemon>,
    request: v1::StopPodSandboxRequest,
) -> Result<v1::StopPodSandboxResponse, ServiceError> {
    daemon.core().stop_pod(&request.pod_sandbox_id).await?;
    Ok(v1::StopPodSandboxResponse {})
}
