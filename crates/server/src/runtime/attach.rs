//! `Attach`: validates the container, then answers that attaching is not available yet
//! (the container's stdio is held by berth-shim, which has no attach operation so far).

use std::sync::Arc;

use berth_store::ContainerState;
use cri_api::v1;

use crate::container::paths::ContainerPaths;
use crate::container::state::observe;
use crate::daemon::Daemon;
use crate::error::ServiceError;

pub(super) async fn attach(
    daemon: Arc<Daemon>,
    request: v1::AttachRequest,
) -> Result<v1::AttachResponse, ServiceError> {
    super::exec::stream_options(request.stdin, request.stdout, request.stderr, request.tty)?;
    let record = daemon.find_container(&request.container_id)?;
    let paths = ContainerPaths::new(&daemon, &record.id);
    if observe(&paths).state != ContainerState::Running {
        return Err(ServiceError::FailedPrecondition {
            what: format!("container {} is not running", record.id),
        });
    }
    Err(ServiceError::Unimplemented { rpc: "Attach" })
}
