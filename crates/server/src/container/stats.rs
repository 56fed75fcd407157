//! Container resource usage read from its cgroup (v1, hybrid or v2 hosts) and its writable
//! layer.

use std::path::Path;

use berth_cgroups::{Cgroup, PressureKind, PressureLine, CGROUP_ROOT};
use berth_store::ContainerRecord;
use cri_api::v1;

use crate::clock::now_nanos;
use crate::container::paths::ContainerPaths;
use crate::daemon::Daemon;
use berth_image::fsusage::usage_of;

/// The container's cgroup, from `linux.cgroupsPath` in its bundle's config.json (either
/// form runc accepts, see [`berth_cgroups::relative_dir`]).
pub fn cgroup_of(bundle: &Path) -> Option<Cgroup> {
    let text = std::fs::read_to_string(bundle.join("config.json")).ok()?;
    let spec: serde_json::Value = serde_json::from_str(&text).ok()?;
    Cgroup::from_spec(CGROUP_ROOT, spec.pointer("/linux/cgroupsPath")?.as_str()?)
}

/// The stats of one container.
pub fn container_stats(daemon: &Daemon, record: &ContainerRecord) -> v1::ContainerStats {
    let paths = ContainerPaths::new(daemon, &record.id);
    let cgroup = cgroup_of(&paths.bundle());
    let now = now_nanos();
    let cpu = cgroup.as_ref().and_then(Cgroup::cpu_usage_nanos);
    let memory = cgroup.as_ref().and_then(Cgroup::memory_usage);
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
            usage_nano_cores: cpu
                .and_then(|value| daemon.cpu_rates.rate(&record.id, now, value))
                .map(|value| v1::UInt64Value { value }),
            psi: psi(cgroup.as_ref(), PressureKind::Cpu),
        }),
        memory: Some(v1::MemoryUsage {
            timestamp: now,
            usage_bytes: memory.map(|m| v1::UInt64Value {
                value: m.usage_bytes,
            }),
            working_set_bytes: memory.map(|m| v1::UInt64Value {
                value: m.working_set_bytes,
            }),
            available_bytes: memory
                .and_then(|m| m.available_bytes())
                .map(|value| v1::UInt64Value { value }),
            rss_bytes: memory
                .and_then(|m| m.rss_bytes)
                .map(|value| v1::UInt64Value { value }),
            page_faults: memory
                .and_then(|m| m.page_faults)
                .map(|value| v1::UInt64Value { value }),
            major_page_faults: memory
                .and_then(|m| m.major_page_faults)
                .map(|value| v1::UInt64Value { value }),
            psi: psi(cgroup.as_ref(), PressureKind::Memory),
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
        io: psi(cgroup.as_ref(), PressureKind::Io).map(|psi| v1::IoUsage {
            timestamp: now,
            psi: Some(psi),
        }),
    }
}

/// The cgroup's pressure stall information of `kind`, where the kernel keeps it (a cgroup
/// v2 hierarchy). The kernel counts stall time in microseconds, the CRI in nanoseconds.
fn psi(cgroup: Option<&Cgroup>, kind: PressureKind) -> Option<v1::PsiStats> {
    let pressure = cgroup?.pressure(kind)?;
    let data = |line: PressureLine| v1::PsiData {
        total: line.total_us.saturating_mul(1000),
        avg10: line.avg10,
        avg60: line.avg60,
        avg300: line.avg300,
    };
    Some(v1::PsiStats {
        full: pressure.full.map(data),
        some: Some(data(pressure.some)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn systemd_cgroup_paths_expand() {
        let dir = tempfile::tempdir().unwrap();
        let rel = |spec: &str| {
            std::fs::write(dir.path().join("config.json"), spec).unwrap();
            cgroup_of(dir.path()).map(|c| c.relative().to_owned())
        };
        assert_eq!(
            rel(r#"{"linux":{"cgroupsPath":"kubepods-besteffort.slice:berth:abc"}}"#).unwrap(),
            Path::new("kubepods.slice/kubepods-besteffort.slice/berth-abc.scope")
        );
        assert_eq!(
            rel(r#"{"linux":{"cgroupsPath":"kubepods.slice:berth:abc"}}"#).unwrap(),
            Path::new("kubepods.slice/berth-abc.scope")
        );
        assert_eq!(
            rel(r#"{"linux":{"cgroupsPath":"/berth/abc"}}"#).unwrap(),
            Path::new("berth/abc")
        );
        // No cgroup named: nothing is read (not the root's counters).
        assert_eq!(rel(r#"{"linux":{}}"#), None);
        assert_eq!(rel("{"), None);
    }
}
