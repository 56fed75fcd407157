//! `ContainerStatus`: state, times, exit code and reason, image, mounts and log path;
//! `verbose` adds the OCI spec and paths as JSON.

use std::collections::HashMap;
use std::sync::Arc;

use cri_api::v1;

use crate::container::convert::to_status;
use crate::container::paths::ContainerPaths;
use crate::container::state::observe;
use crate::daemon::Daemon;
use crate::error::ServiceError;

pub(super) async fn container_status(
    daemon: Arc<Daemon>,
    request: v1::ContainerStatusRequest,
) -> Result<v1::ContainerStatusResponse, ServiceError> {
    let record = daemon.find_container(&request.container_id)?;
    let paths = ContainerPaths::new(&daemon, &record.id);
    let observed = observe(&paths);
    let mut info = HashMap::new();
    if request.verbose {
        let spec: serde_json::Value = std::fs::read_to_string(paths.bundle().join("config.json"))
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default();
        let pid = std::fs::read_to_string(paths.shim().join("pid"))
            .ok()
            .and_then(|p| p.trim().parse::<u32>().ok());
        let verbose = serde_json::json!({
            "sandboxID": record.sandbox_id,
            "pid": pid,
            "bundle": paths.bundle(),
            "runtimeSpec": spec,
        });
        info.insert("info".to_owned(), verbose.to_string());
    }
    Ok(v1::ContainerStatusResponse {
        status: Some(to_status(&record, &observed)),
        info,
    })
}
