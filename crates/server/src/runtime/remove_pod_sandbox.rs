//! `RemovePodSandbox`: removes the pod's containers, stops it if needed and deletes its
//! namespaces, files and record.
//! Idempotent: removing an unknown sandbox succeeds, as the CRI requires.

use std::sync::Arc;

use cri_api::v1;

use crate::container::lifecycle::{containers_of, remove_container};
use crate::daemon::Daemon;
use crate::error::ServiceError;
use crate::pod::teardown::remove_sandbox;

pub(super) async fn remove_pod_sandbox(
    daemon: Arc<Daemon>,
    request: v1::RemovePodSandboxRequest,
) -> Result<v1::RemovePodSandboxResponse, ServiceError> {
    let Some(record) = daemon.find_sandbox_or_none(&request.pod_sandbox_id)? else {
        return Ok(v1::RemovePodSandboxResponse {});
    };
    let _guard = daemon.sandbox_locks.lock(&record.id).await;
    for container in containers_of(&daemon, &record.id)? {
        let _container = daemon.container_locks.lock(&container.id).await;
        remove_container(&daemon, &container).await?;
    }
    tokio::task::spawn_blocking(move || remove_sandbox(&daemon, &record)).await??;
    Ok(v1::RemovePodSandboxResponse {})
}
