//! `ContainerStats`: CPU, memory and writable-layer usage of one container.

use std::sync::Arc;

use cri_api::v1;

use crate::container::stats::container_stats as stats;
use crate::daemon::Daemon;
use crate::error::ServiceError;

pub(super) async fn container_stats(
    daemon: Arc<Daemon>,
    request: v1::ContainerStatsRequest,
) -> Result<v1::ContainerStatsResponse, ServiceError> {
    let record = daemon.find_container(&request.container_id)?.record;
    let stats = tokio::task::spawn_blocking(move || stats(&daemon, &record)).await?;
    Ok(v1::ContainerStatsResponse { stats: Some(stats) })
}
