//! `ListContainers`: containers matching an optional filter (ID prefix, sandbox, state,
//! labels).

use std::sync::Arc;

use cri_api::v1;

use crate::container::convert::{matches, to_container};
use crate::daemon::Daemon;
use crate::error::ServiceError;

pub(super) async fn list_containers(
    daemon: Arc<Daemon>,
    request: v1::ListContainersRequest,
) -> Result<v1::ListContainersResponse, ServiceError> {
    let filter = request.filter.unwrap_or_default();
    let containers = daemon.core().list_containers(|record, state| {
        matches(record, state, &filter).then(|| to_container(record, state))
    });
    Ok(v1::ListContainersResponse { containers })
}
