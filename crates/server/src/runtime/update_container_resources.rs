//! `UpdateContainerResources`: new CPU, memory, hugepage and unified cgroup limits applied
//! with `runc update` to a running container, or written into the bundle's spec of a created
//! one (StartContainer creates its cgroup from it), and kept in the container's record so
//! its status shows them.

use std::path::Path;
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
    let limits = runc_resources(&resources, daemon.host_features.hugetlb);
    match view.state() {
        ContainerState::Exited | ContainerState::Unknown => {
            return Err(ServiceError::FailedPrecondition {
                what: format!("container {} is not running", record.id),
            })
        }
        // No runc container yet: StartContainer creates it from the bundle.
        ContainerState::Created => update_bundle(&paths.bundle().join("config.json"), limits)?,
        ContainerState::Running => {
            let file = paths.state.join("resources.json");
            std::fs::write(&file, limits.to_string()).map_err(|source| ServiceError::Io {
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
        }
    }
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

/// Writes `limits` into the bundle's spec (`linux.resources`) as `runc update` would apply
/// them: what is given replaces, what is not stays.
fn update_bundle(config: &Path, limits: Value) -> Result<(), ServiceError> {
    let io = |action: &'static str| {
        move |source: std::io::Error| ServiceError::Io {
            action,
            path: config.to_owned(),
            source,
        }
    };
    let text = std::fs::read(config).map_err(io("read"))?;
    let mut spec: Value = serde_json::from_slice(&text).map_err(|err| io("decode")(err.into()))?;
    let resources = spec
        .as_object_mut()
        .map(|spec| spec.entry("linux").or_insert_with(|| json!({})))
        .and_then(Value::as_object_mut)
        .map(|linux| linux.entry("resources").or_insert_with(|| json!({})))
        .ok_or_else(|| io("decode")(std::io::Error::other("the spec's linux is not an object")))?;
    merge(resources, limits);
    let bytes = serde_json::to_vec_pretty(&spec).map_err(|err| io("encode")(err.into()))?;
    berth_atomicfile::write(config, &bytes, 0o644).map_err(io("write"))
}

/// Merges `new` into `old`: objects key by key, anything else replaced.
fn merge(old: &mut Value, new: Value) {
    match (old, new) {
        (Value::Object(old), Value::Object(new)) => {
            for (key, value) in new {
                merge(old.entry(key).or_insert(Value::Null), value);
            }
        }
        (old, new) => *old = new,
    }
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
    fn a_created_containers_bundle_gets_the_new_limits_and_keeps_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.json");
        std::fs::write(
            &config,
            json!({
                "ociVersion": "1.0.2",
                "linux": {
                    "cgroupsPath": "/berth/abc",
                    "resources": { "cpu": { "shares": 2, "period": 100000 }, "memory": { "limit": 1 } }
                }
            })
            .to_string(),
        )
        .unwrap();
        let resources = v1::LinuxContainerResources {
            cpu_shares: 512,
            memory_limit_in_bytes: 64 << 20,
            unified: [("memory.high".to_owned(), "1M".to_owned())].into(),
            ..Default::default()
        };
        update_bundle(&config, runc_resources(&resources, false)).unwrap();
        let spec: Value = serde_json::from_slice(&std::fs::read(&config).unwrap()).unwrap();
        assert_eq!(
            spec["linux"],
            json!({
                "cgroupsPath": "/berth/abc",
                "resources": {
                    "cpu": { "shares": 512, "period": 100000 },
                    "memory": { "limit": 67108864 },
                    "unified": { "memory.high": "1M" }
                }
            })
        );
        assert_eq!(spec["ociVersion"], "1.0.2");
        // A spec that cannot be read is an error, not a silent start without the limits.
        std::fs::write(&config, "{").unwrap();
        assert!(update_bundle(&config, runc_resources(&resources, false)).is_err());
    }

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
