//! `ListContainers`: containers matching an optional filter (ID prefix, sandbox, state,
//! labels).

use std::sync::Arc;

use cri_api::v1;

use crate::container::convert::{matches, to_container};
use crate::container::paths::ContainerPaths;
use crate::container::state::observe;
use crate::daemon::Daemon;
use crate::error::ServiceError;

pub(super) async fn list_containers(
    daemon: Arc<Daemon>,
    request: v1::ListContainersRequest,
) -> Result<v1::ListContainersResponse, ServiceError> {
    let filter = request.filter.unwrap_or_default();
    let mut containers = Vec::new();
    for record in daemon.store.containers().list()? {
        let observed = observe(&ContainerPaths::new(&daemon, &record.id));
        if matches(&record, &observed, &filter) {
            containers.push(to_container(&record, &observed));
        }
    }
    Ok(v1::ListContainersResponse { containers })
}
