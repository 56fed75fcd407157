//! `PodSandboxStats`: CPU, memory and network usage of one pod and its containers.

use std::sync::Arc;

use cri_api::v1;

use crate::daemon::Daemon;
use crate::error::ServiceError;
use crate::pod::stats::pod_stats;

pub(super) async fn pod_sandbox_stats(
    daemon: Arc<Daemon>,
    request: v1::PodSandboxStatsRequest,
) -> Result<v1::PodSandboxStatsResponse, ServiceError> {
    let record = daemon.find_sandbox(&request.pod_sandbox_id)?;
    let stats = tokio::task::spawn_blocking(move || pod_stats(&daemon, &record)).await??;
    Ok(v1::PodSandboxStatsResponse { stats: Some(stats) })
}
