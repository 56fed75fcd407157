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
    let records: Vec<_> = daemon
        .store
        .containers()
        .list()?
        .into_iter()
        .filter(|r| id_and_labels_match(&r.id, &r.labels, &filter.id, &filter.label_selector))
        .filter(|r| r.sandbox_id.starts_with(&filter.pod_sandbox_id))
        .collect();
    let stats = tokio::task::spawn_blocking(move || {
        records
            .iter()
            .map(|r| container_stats(&daemon, r))
            .collect()
    })
    .await?;
    Ok(v1::ListContainerStatsResponse { stats })
}
