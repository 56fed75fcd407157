//! `ListPodSandboxStats`: usage of the pods matching a filter (ID prefix, labels).

use std::sync::Arc;

use cri_api::v1;

use crate::daemon::Daemon;
use crate::error::ServiceError;
use crate::filter::id_and_labels_match;
use crate::pod::stats::pod_stats;

pub(super) async fn list_pod_sandbox_stats(
    daemon: Arc<Daemon>,
    request: v1::ListPodSandboxStatsRequest,
) -> Result<v1::ListPodSandboxStatsResponse, ServiceError> {
    let filter = request.filter.unwrap_or_default();
    let records: Vec<_> = daemon.core().list_sandboxes(|r| {
        id_and_labels_match(&r.id, &r.labels, &filter.id, &filter.label_selector).then(|| r.clone())
    });
    let stats = tokio::task::spawn_blocking(move || {
        records
            .iter()
            .map(|r| pod_stats(&daemon, r))
            .collect::<Result<Vec<_>, _>>()
    })
    .await??;
    Ok(v1::ListPodSandboxStatsResponse { stats })
}
