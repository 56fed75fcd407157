//! `UpdatePodSandboxResources`: kubelet tells the runtime the pod's new overhead and
//! resources after it resized the pod cgroup itself. berth has no pod-level process to
//! constrain beyond the containers (whose limits come with UpdateContainerResources), so it
//! records the values in the sandbox's stored config, which survives restarts.

use std::sync::Arc;

use cri_api::v1;
use prost::Message as _;

use crate::daemon::Daemon;
use crate::error::ServiceError;
use crate::pod::convert::stored_config;

pub(super) async fn update_pod_sandbox_resources(
    daemon: Arc<Daemon>,
    request: v1::UpdatePodSandboxResourcesRequest,
) -> Result<v1::UpdatePodSandboxResourcesResponse, ServiceError> {
    daemon
        .core()
        .update_sandbox_record(&request.pod_sandbox_id, |current| {
            let mut config = stored_config(current);
            let linux = config.linux.get_or_insert_with(Default::default);
            if request.overhead.is_some() {
                linux.overhead = request.overhead.clone();
            }
            if request.resources.is_some() {
                linux.resources = request.resources.clone();
            }
            current.config = config.encode_to_vec();
        })
        .await?;
    Ok(v1::UpdatePodSandboxResourcesResponse {})
}
