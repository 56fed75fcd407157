//! `PodSandboxStatus`: state, creation time, IPs and namespace options of one sandbox;
//! `verbose` adds the paths berth uses and the stored config as JSON.

use std::collections::HashMap;
use std::sync::Arc;

use cri_api::v1;

use crate::daemon::Daemon;
use crate::error::ServiceError;
use crate::pod::convert::to_status;
use crate::pod::create::{ns_dir, sandbox_dir};

pub(super) async fn pod_sandbox_status(
    daemon: Arc<Daemon>,
    request: v1::PodSandboxStatusRequest,
) -> Result<v1::PodSandboxStatusResponse, ServiceError> {
    let record = daemon.find_sandbox(&request.pod_sandbox_id)?;
    let mut info = HashMap::new();
    if request.verbose {
        let verbose = serde_json::json!({
            "id": record.id,
            "netns": record.netns_path,
            "namespaces": ns_dir(&daemon, &record.id),
            "directory": sandbox_dir(&daemon, &record.id),
            "hostname": record.hostname,
            "cgroupParent": record.cgroup_parent,
            "logDirectory": record.log_directory,
        });
        info.insert("info".to_owned(), verbose.to_string());
    }
    Ok(v1::PodSandboxStatusResponse {
        status: Some(to_status(&record)),
        info,
        containers_statuses: Vec::new(),
        timestamp: 0,
    })
}
