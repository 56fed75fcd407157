//! `ListPodSandbox`: sandboxes matching an optional filter (ID prefix, state, labels).

use std::sync::Arc;

use cri_api::v1;

use crate::daemon::Daemon;
use crate::error::ServiceError;
use crate::pod::convert::{matches, to_pod_sandbox};

pub(super) async fn list_pod_sandbox(
    daemon: Arc<Daemon>,
    request: v1::ListPodSandboxRequest,
) -> Result<v1::ListPodSandboxResponse, ServiceError> {
    let filter = request.filter.unwrap_or_default();
    let items = daemon
        .core()
        .list_sandboxes(|record| matches(record, &filter).then(|| to_pod_sandbox(record)));
    Ok(v1::ListPodSandboxResponse { items })
}
