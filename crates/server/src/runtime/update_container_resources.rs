//! `UpdateContainerResources`: new CPU, memory, hugepage and unified cgroup limits applied
//! with `runc update`, and kept in the container's record so its status shows them.

use std::sync::Arc;

use berth_store::ContainerState;
use cri_api::v1;
use prost::Message as _;
use serde_json::{json, Map, Value};

use crate::container::convert::stored_config;
use crate::container::paths::ContainerPaths;
use crate::daemon::Daemon;
use crate::error::{FieldProblem, ServiceError};

pub(super) async fn update_container_resources(
    daemon: Arc<Daemon>,
    request: v1::UpdateContainerResourcesRequest,
) -> Result<v1::UpdateContainerResourcesResponse, ServiceError> {
    let resources = request.linux.ok_or(ServiceError::InvalidArgument {
        field: "linux",
        problem: FieldProblem::Empty,
    })?;
    let id = daemon.find_container(&request.container_id)?.record.id;
    let core = daemon.core().clone();
    // Under the container's operation lock: never interleaved with start, stop or remove.
    core.with_container(&id, update(&daemon, &id, resources))
        .await??;
    Ok(v1::UpdateContainerResourcesResponse {})
}

async fn update(
    daemon: &Daemon,
    id: &str,
    resources: v1::LinuxContainerResources,
) -> Result<(), ServiceError> {
    let view = daemon.find_container(id)?;
    let record = view.record.clone();
    let paths = ContainerPaths::new(daemon, &record.id);
    if matches!(
        view.state(),
        ContainerState::Exited | ContainerState::Unknown
    ) {
        return Err(ServiceError::FailedPrecondition {
            what: format!("container {} is not running", record.id),
        });
    }
    let file = paths.state.join("resources.json");
    std::fs::write(
        &file,
        runc_resources(&resources, daemon.host_features.hugetlb).to_string(),
    )
    .map_err(|source| ServiceError::Io {
        action: "write",
        path: file.clone(),
        source,
    })?;
    let result = daemon
        .runc(&record.handler)?
        .update(&record.id, &file)
        .await;
    let _ = std::fs::remove_file(&file);
    result?;
    daemon
        .core()
        .update_container_record(&record.id, |current| {
            let mut config = stored_config(current);
            config.linux.get_or_insert_with(Default::default).resources = Some(resources);
            current.config = config.encode_to_vec();
        })
        .await?;
    Ok(())
}

/// The OCI `LinuxResources` JSON `runc update --resources` reads; zero CRI values mean
/// "unset" and are left out.
fn runc_resources(r: &v1::LinuxContainerResources, hugetlb: bool) -> Value {
    let mut cpu = Map::new();
    if r.cpu_shares > 0 {
        cpu.insert("shares".into(), json!(r.cpu_shares));
    }
    if r.cpu_quota != 0 {
        cpu.insert("quota".into(), json!(r.cpu_quota));
    }
    if r.cpu_period > 0 {
        cpu.insert("period".into(), json!(r.cpu_period));
    }
    if !r.cpuset_cpus.is_empty() {
        cpu.insert("cpus".into(), json!(r.cpuset_cpus));
    }
    if !r.cpuset_mems.is_empty() {
        cpu.insert("mems".into(), json!(r.cpuset_mems));
    }
    let mut memory = Map::new();
    if r.memory_limit_in_bytes > 0 {
        memory.insert("limit".into(), json!(r.memory_limit_in_bytes));
    }
    if r.memory_swap_limit_in_bytes > 0 {
        memory.insert("swap".into(), json!(r.memory_swap_limit_in_bytes));
    }
    let mut out = Map::new();
    out.insert("cpu".into(), Value::Object(cpu));
    out.insert("memory".into(), Value::Object(memory));
    if hugetlb && !r.hugepage_limits.is_empty() {
        let limits: Vec<Value> = r
            .hugepage_limits
            .iter()
            .map(|h| json!({ "pageSize": h.page_size, "limit": h.limit }))
            .collect();
        out.insert("hugepageLimits".into(), Value::Array(limits));
    }
    if !r.unified.is_empty() {
        out.insert("unified".into(), json!(r.unified));
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_values_are_left_out() {
        let resources = v1::LinuxContainerResources {
            cpu_shares: 512,
            memory_limit_in_bytes: 64 << 20,
            cpuset_cpus: "0".into(),
            ..Default::default()
        };
        assert_eq!(
            runc_resources(&resources, true),
            json!({ "cpu": { "shares": 512, "cpus": "0" }, "memory": { "limit": 67108864 } })
        );
    }

    #[test]
    fn hugepage_limits_only_where_the_controller_is() {
        let resources = v1::LinuxContainerResources {
            hugepage_limits: vec![v1::HugepageLimit {
                page_size: "2MB".into(),
                limit: 0,
            }],
            ..Default::default()
        };
        assert_eq!(
            runc_resources(&resources, true)["hugepageLimits"],
            json!([{ "pageSize": "2MB", "limit": 0 }])
        );
        assert!(runc_resources(&resources, false)
            .get("hugepageLimits")
            .is_none());
    }
}
