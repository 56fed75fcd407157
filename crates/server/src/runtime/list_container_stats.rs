//! `ListContainerStats`: usage of the containers matching a filter (ID prefix, sandbox,
//! labels).

use std::sync::Arc;

use cri_api::v1;

use crate::container::stats::container_stats;
use crate::daemon::Daemon;
use crate::error::ServiceError;
use crate::filter::id_and_labels_match;

pub(super) async fn list_container_stats(
    daemon: Arc<Daemon>,
    request: v1::ListContainerStatsRequest,
) -> Result<v1::ListContainerStatsResponse, ServiceError> {
    let filter = request.filter.unwrap_or_default();
    let records: Vec<_> = daemon.core().list_containers(|r, _| {
        (id_and_labels_match(&r.id, &r.labels, &filter.id, &filter.label_selector)
            && r.sandbox_id.starts_with(&filter.pod_sandbox_id))
        .then(|| r.clone())
    });
    let stats = tokio::task::spawn_blocking(move || {
        records
            .iter()
            .map(|r| container_stats(&daemon, r))
            .collect()
    })
    .await?;
    Ok(v1::ListContainerStatsResponse { stats })
}
