//! `RuntimeConfig`: settings kubelet must match, today the cgroup driver.

use cri_api::v1;

use crate::daemon::Daemon;
use crate::error::ServiceError;

pub(super) async fn runtime_config(
    daemon: &Daemon,
    _request: v1::RuntimeConfigRequest,
) -> Result<v1::RuntimeConfigResponse, ServiceError> {
    Ok(v1::RuntimeConfigResponse {
        linux: Some(v1::LinuxRuntimeConfiguration {
            cgroup_driver: daemon.cgroup_driver.to_cri() as i32,
        }),
    })
}
