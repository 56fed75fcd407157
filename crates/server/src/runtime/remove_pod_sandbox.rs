//! `RemovePodSandbox`: removes the pod's containers and everything the pod holds (the
//! runtime core's work). Idempotent under any number of concurrent calls: removing an
//! unknown sandbox succeeds, as the CRI requires.

use std::sync::Arc;

use cri_api::v1;

use crate::daemon::Daemon;
use crate::error::ServiceError;

pub(super) async fn remove_pod_sandbox(
    daemon: Arc<Daemon>,
    request: v1::RemovePodSandboxRequest,
) -> Result<v1::RemovePodSandboxResponse, ServiceError> {
    daemon.core().remove_pod(&request.pod_sandbox_id).await?;
    Ok(v1::RemovePodSandboxResponse {})
}
