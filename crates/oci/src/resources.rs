//! `linux.resources` (CPU, memory, hugepages, cgroup v2 `unified` keys) and the process's
//! `oomScoreAdj`, from `LinuxContainerResources`. Zero means "not set" in CRI, so only
//! non-zero values are written. No pids limit is set for containers (the pod's is kubelet's).

use cri_api::v1;
use oci_spec::runtime::{LinuxCpu, LinuxHugepageLimit, LinuxMemory, LinuxResources};

use crate::{HostFeatures, SpecError};

/// The cgroup limits for the container, without the device rules (see `devices`).
pub(crate) fn resources(
    res: Option<&v1::LinuxContainerResources>,
) -> Result<LinuxResources, SpecError> {
    let mut out = LinuxResources::default();
    let Some(res) = res else {
        return Ok(out);
    };

    let mut cpu = LinuxCpu::default();
    if res.cpu_shares != 0 {
        cpu.set_shares(Some(positive("cpu_shares", res.cpu_shares)?));
    }
    if res.cpu_quota != 0 {
        if res.cpu_quota < -1 {
            return Err(SpecError::Resource {
                field: "cpu_quota",
                value: res.cpu_quota,
            });
        }
        cpu.set_quota(Some(res.cpu_quota));
    }
    if res.cpu_period != 0 {
        cpu.set_period(Some(positive("cpu_period", res.cpu_period)?));
    }
    if !res.cpuset_cpus.is_empty() {
        cpu.set_cpus(Some(res.cpuset_cpus.clone()));
    }
    if !res.cpuset_mems.is_empty() {
        cpu.set_mems(Some(res.cpuset_mems.clone()));
    }
    if cpu != LinuxCpu::default() {
        out.set_cpu(Some(cpu));
    }

    let mut memory = LinuxMemory::default();
    if res.memory_limit_in_bytes != 0 {
        positive("memory_limit_in_bytes", res.memory_limit_in_bytes)?;
        memory.set_limit(Some(res.memory_limit_in_bytes));
    }
    if res.memory_swap_limit_in_bytes != 0 {
        // OCI `swap` is memory+swap, as CRI's field; -1 is unlimited.
        if res.memory_swap_limit_in_bytes < -1 {
            return Err(SpecError::Resource {
                field: "memory_swap_limit_in_bytes",
                value: res.memory_swap_limit_in_bytes,
            });
        }
        memory.set_swap(Some(res.memory_swap_limit_in_bytes));
    }
    if memory != LinuxMemory::default() {
        out.set_memory(Some(memory));
    }

    if !res.hugepage_limits.is_empty() {
        let limits = res
            .hugepage_limits
            .iter()
            .map(|h| {
                let limit = i64::try_from(h.limit).map_err(|_| SpecError::Resource {
                    field: "hugepage_limits.limit",
                    value: i64::MAX,
                })?;
                let mut l = LinuxHugepageLimit::default();
                l.set_page_size(h.page_size.clone());
                l.set_limit(limit);
                Ok(l)
            })
            .collect::<Result<Vec<_>, SpecError>>()?;
        out.set_hugepage_limits(Some(limits));
    }
    if !res.unified.is_empty() {
        out.set_unified(Some(res.unified.clone().into_iter().collect()));
    }
    Ok(out)
}

fn positive(field: &'static str, value: i64) -> Result<u64, SpecError> {
    u64::try_from(value)
        .ok()
        .filter(|v| *v > 0)
        .ok_or(SpecError::Resource { field, value })
}

/// The requested `oom_score_adj`, raised to the host's floor when it has one; `None` when
/// CRI leaves it at 0 (the process then inherits the shim's).
pub(crate) fn oom_score_adj(
    res: Option<&v1::LinuxContainerResources>,
    host: &HostFeatures,
) -> Result<Option<i32>, SpecError> {
    let Some(value) = res.map(|r| r.oom_score_adj).filter(|v| *v != 0) else {
        return Ok(None);
    };
    if !(-1000..=1000).contains(&value) {
        return Err(SpecError::OomScoreAdj(value));
    }
    let mut adj = value as i32;
    if let Some(min) = host.oom_score_adj_min {
        adj = adj.max(min);
    }
    Ok(Some(adj))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_set_gives_empty_resources() {
        assert_eq!(resources(None).unwrap(), LinuxResources::default());
        let res = v1::LinuxContainerResources::default();
        assert_eq!(resources(Some(&res)).unwrap(), LinuxResources::default());
    }

    #[test]
    fn every_field_maps() {
        let res = v1::LinuxContainerResources {
            cpu_period: 100_000,
            cpu_quota: 50_000,
            cpu_shares: 512,
            memory_limit_in_bytes: 15 << 20,
            memory_swap_limit_in_bytes: 15 << 20,
            oom_score_adj: 500,
            cpuset_cpus: "0-1".into(),
            cpuset_mems: "0".into(),
            hugepage_limits: vec![v1::HugepageLimit {
                page_size: "2MB".into(),
                limit: 4 << 21,
            }],
            unified: [("memory.high".to_string(), "10M".to_string())].into(),
        };
        let out = resources(Some(&res)).unwrap();
        let cpu = out.cpu().clone().unwrap();
        assert_eq!(
            (cpu.shares(), cpu.quota(), cpu.period()),
            (Some(512), Some(50_000), Some(100_000))
        );
        assert_eq!(
            (cpu.cpus().as_deref(), cpu.mems().as_deref()),
            (Some("0-1"), Some("0"))
        );
        let memory = out.memory().unwrap();
        assert_eq!(
            (memory.limit(), memory.swap()),
            (Some(15 << 20), Some(15 << 20))
        );
        let huge = &out.hugepage_limits().as_ref().unwrap()[0];
        assert_eq!((huge.page_size().as_str(), huge.limit()), ("2MB", 4 << 21));
        assert_eq!(out.unified().as_ref().unwrap()["memory.high"], "10M");
        assert!(out.pids().is_none());
    }

    #[test]
    fn unlimited_quota_and_swap_pass_through() {
        let res = v1::LinuxContainerResources {
            cpu_quota: -1,
            memory_swap_limit_in_bytes: -1,
            ..Default::default()
        };
        let out = resources(Some(&res)).unwrap();
        assert_eq!(out.cpu().as_ref().unwrap().quota(), Some(-1));
        assert_eq!(out.memory().unwrap().swap(), Some(-1));
    }

    #[test]
    fn invalid_values_fail() {
        for res in [
            v1::LinuxContainerResources {
                cpu_shares: -2,
                ..Default::default()
            },
            v1::LinuxContainerResources {
                cpu_period: -1,
                ..Default::default()
            },
            v1::LinuxContainerResources {
                memory_limit_in_bytes: -5,
                ..Default::default()
            },
        ] {
            assert!(
                matches!(resources(Some(&res)), Err(SpecError::Resource { .. })),
                "{res:?}"
            );
        }
    }

    #[test]
    fn oom_score_adj_range_and_floor() {
        let res = |v| v1::LinuxContainerResources {
            oom_score_adj: v,
            ..Default::default()
        };
        let host = HostFeatures::default();
        assert_eq!(oom_score_adj(None, &host).unwrap(), None);
        assert_eq!(oom_score_adj(Some(&res(0)), &host).unwrap(), None);
        assert_eq!(oom_score_adj(Some(&res(-998)), &host).unwrap(), Some(-998));
        assert!(matches!(
            oom_score_adj(Some(&res(1001)), &host),
            Err(SpecError::OomScoreAdj(1001))
        ));
        let floored = HostFeatures {
            oom_score_adj_min: Some(-500),
            ..Default::default()
        };
        assert_eq!(
            oom_score_adj(Some(&res(-998)), &floored).unwrap(),
            Some(-500)
        );
        assert_eq!(
            oom_score_adj(Some(&res(1000)), &floored).unwrap(),
            Some(1000)
        );
    }
}
