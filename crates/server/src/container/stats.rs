//! Container resource usage read from its cgroup (v1, hybrid or v2 hosts) and its writable
//! layer.

use std::path::{Path, PathBuf};

use berth_store::ContainerRecord;
use cri_api::v1;

use crate::clock::now_nanos;
use crate::container::paths::ContainerPaths;
use crate::daemon::Daemon;
use crate::fsusage::usage_of;

/// Where the cgroup hierarchies are mounted.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The container's cgroup path from its bundle's config.json, as a path below a hierarchy
/// root (the systemd form `slice:prefix:name` becomes `slice…/prefix-name.scope`).
pub fn cgroup_path(bundle: &Path) -> Option<String> {
    let text = std::fs::read_to_string(bundle.join("config.json")).ok()?;
    let spec: serde_json::Value = serde_json::from_str(&text).ok()?;
    let path = spec.pointer("/linux/cgroupsPath")?.as_str()?.to_owned();
    Some(match path.split(':').collect::<Vec<_>>().as_slice() {
        [slice, prefix, name] => format!("{}/{prefix}-{name}.scope", expand_slice(slice)),
        _ => path,
    })
}

/// `a-b.slice` lives at `a.slice/a-b.slice`.
fn expand_slice(slice: &str) -> String {
    let Some(stem) = slice.strip_suffix(".slice") else {
        return format!("/{slice}");
    };
    let mut path = String::new();
    let mut prefix = String::new();
    for part in stem.split('-') {
        if !prefix.is_empty() {
            prefix.push('-');
        }
        prefix.push_str(part);
        path.push('/');
        path.push_str(&prefix);
        path.push_str(".slice");
    }
    path
}

fn read_u64(path: PathBuf) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn stat_field(path: PathBuf, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// CPU time used, in nanoseconds.
fn cpu_usage(cgroup: &str) -> Option<u64> {
    let rel = cgroup.trim_start_matches('/');
    read_u64(
        Path::new(CGROUP_ROOT)
            .join("cpuacct")
            .join(rel)
            .join("cpuacct.usage"),
    )
    .or_else(|| {
        read_u64(
            Path::new(CGROUP_ROOT)
                .join("cpu,cpuacct")
                .join(rel)
                .join("cpuacct.usage"),
        )
    })
    .or_else(|| {
        stat_field(
            Path::new(CGROUP_ROOT).join(rel).join("cpu.stat"),
            "usage_usec",
        )
        .map(|us| us * 1000)
    })
}

/// Memory usage and working set (usage less inactive file cache), in bytes.
fn memory_usage(cgroup: &str) -> Option<(u64, u64)> {
    let rel = cgroup.trim_start_matches('/');
    let v1 = Path::new(CGROUP_ROOT).join("memory").join(rel);
    if let Some(usage) = read_u64(v1.join("memory.usage_in_bytes")) {
        let inactive = stat_field(v1.join("memory.stat"), "total_inactive_file").unwrap_or(0);
        return Some((usage, usage.saturating_sub(inactive)));
    }
    let v2 = Path::new(CGROUP_ROOT).join(rel);
    let usage = read_u64(v2.join("memory.current"))?;
    let inactive = stat_field(v2.join("memory.stat"), "inactive_file").unwrap_or(0);
    Some((usage, usage.saturating_sub(inactive)))
}

/// The stats of one container.
pub fn container_stats(daemon: &Daemon, record: &ContainerRecord) -> v1::ContainerStats {
    let paths = ContainerPaths::new(daemon, &record.id);
    let cgroup = cgroup_path(&paths.bundle()).unwrap_or_default();
    let now = now_nanos();
    let cpu = cpu_usage(&cgroup);
    let memory = memory_usage(&cgroup);
    let layer = usage_of(&paths.upper()).unwrap_or_default();
    v1::ContainerStats {
        attributes: Some(v1::ContainerAttributes {
            id: record.id.clone(),
            metadata: Some(v1::ContainerMetadata {
                name: record.name.clone(),
                attempt: record.attempt,
            }),
            labels: record.labels.clone().into_iter().collect(),
            annotations: record.annotations.clone().into_iter().collect(),
        }),
        cpu: Some(v1::CpuUsage {
            timestamp: now,
            usage_core_nano_seconds: cpu.map(|value| v1::UInt64Value { value }),
            ..Default::default()
        }),
        memory: Some(v1::MemoryUsage {
            timestamp: now,
            usage_bytes: memory.map(|(value, _)| v1::UInt64Value { value }),
            working_set_bytes: memory.map(|(_, value)| v1::UInt64Value { value }),
            ..Default::default()
        }),
        writable_layer: Some(v1::FilesystemUsage {
            timestamp: now,
            fs_id: Some(v1::FilesystemIdentifier {
                mountpoint: paths.upper().display().to_string(),
            }),
            used_bytes: Some(v1::UInt64Value { value: layer.bytes }),
            inodes_used: Some(v1::UInt64Value {
                value: layer.inodes,
            }),
        }),
        swap: None,
        io: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn systemd_cgroup_paths_expand() {
        assert_eq!(
            expand_slice("kubepods-besteffort.slice"),
            "/kubepods.slice/kubepods-besteffort.slice"
        );
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"linux":{"cgroupsPath":"kubepods.slice:berth:abc"}}"#,
        )
        .unwrap();
        assert_eq!(
            cgroup_path(dir.path()).unwrap(),
            "/kubepods.slice/berth-abc.scope"
        );
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"linux":{"cgroupsPath":"/berth/abc"}}"#,
        )
        .unwrap();
        assert_eq!(cgroup_path(dir.path()).unwrap(), "/berth/abc");
    }

    #[test]
    fn stat_fields_parse() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("memory.stat"),
            "cache 5\ntotal_inactive_file 42\n",
        )
        .unwrap();
        assert_eq!(
            stat_field(dir.path().join("memory.stat"), "total_inactive_file"),
            Some(42)
        );
        assert_eq!(stat_field(dir.path().join("memory.stat"), "missing"), None);
    }
}
