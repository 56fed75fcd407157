//! `ListPodSandboxMetrics`: CPU, memory and network metrics of every ready pod and its
//! containers.

use std::sync::Arc;

use berth_store::SandboxState;
use cri_api::v1;

use crate::daemon::Daemon;
use crate::error::ServiceError;
use crate::pod::metrics::pod_metrics;
use crate::pod::stats::pod_stats;

pub(super) async fn list_pod_sandbox_metrics(
    daemon: Arc<Daemon>,
    _request: v1::ListPodSandboxMetricsRequest,
) -> Result<v1::ListPodSandboxMetricsResponse, ServiceError> {
    let records: Vec<_> = daemon
        .core()
        .list_sandboxes(|r| (r.state == SandboxState::Ready).then(|| r.clone()));
    let pod_metrics = tokio::task::spawn_blocking(move || {
        records
            .iter()
            .map(|r| pod_stats(&daemon, r).map(|stats| pod_metrics(&stats)))
            .collect::<Result<Vec<_>, _>>()
    })
    .await??;
    Ok(v1::ListPodSandboxMetricsResponse { pod_metrics })
}
