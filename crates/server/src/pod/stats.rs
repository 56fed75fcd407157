//! Pod resource usage: the sum of its containers' CPU and memory, each container's stats,
//! and the network counters of the pod's interfaces read inside its network namespace.

use std::path::Path;

use berth_store::SandboxRecord;
use cri_api::v1;

use crate::clock::now_nanos;
use crate::container::stats::container_stats;
use crate::daemon::Daemon;
use crate::error::ServiceError;
use crate::pod::create::{ns_dir, POD_IFNAME};

/// The stats of one pod. Blocking (reads cgroup files, enters the netns).
pub fn pod_stats(
    daemon: &Daemon,
    record: &SandboxRecord,
) -> Result<v1::PodSandboxStats, ServiceError> {
    let containers: Vec<v1::ContainerStats> = daemon
        .core()
        .containers_of(&record.id)
        .iter()
        .map(|c| container_stats(daemon, &c.record))
        .collect();
    let now = now_nanos();
    let sum = |get: fn(&v1::ContainerStats) -> Option<u64>| -> Option<v1::UInt64Value> {
        let values: Vec<u64> = containers.iter().filter_map(get).collect();
        (!values.is_empty()).then(|| v1::UInt64Value {
            value: values.iter().sum(),
        })
    };
    let usage_core_nano_seconds = sum(|c| {
        c.cpu
            .as_ref()?
            .usage_core_nano_seconds
            .as_ref()
            .map(|v| v.value)
    });
    // Keyed apart from container IDs (a pod and a container never share an ID, but the
    // table is one).
    let usage_nano_cores = usage_core_nano_seconds
        .as_ref()
        .and_then(|total| {
            daemon
                .cpu_rates
                .rate(&format!("pod/{}", record.id), now, total.value)
        })
        .map(|value| v1::UInt64Value { value });
    let cpu = v1::CpuUsage {
        timestamp: now,
        usage_core_nano_seconds,
        usage_nano_cores,
        // The pod has no cgroup of its own to read pressure from (no pause container).
        psi: None,
    };
    let memory = v1::MemoryUsage {
        timestamp: now,
        working_set_bytes: sum(|c| {
            c.memory
                .as_ref()?
                .working_set_bytes
                .as_ref()
                .map(|v| v.value)
        }),
        usage_bytes: sum(|c| c.memory.as_ref()?.usage_bytes.as_ref().map(|v| v.value)),
        rss_bytes: sum(|c| c.memory.as_ref()?.rss_bytes.as_ref().map(|v| v.value)),
        page_faults: sum(|c| c.memory.as_ref()?.page_faults.as_ref().map(|v| v.value)),
        major_page_faults: sum(|c| {
            c.memory
                .as_ref()?
                .major_page_faults
                .as_ref()
                .map(|v| v.value)
        }),
        // The pod's own limit is its cgroup's, which berth does not read: none summed.
        ..Default::default()
    };
    let netns = ns_dir(daemon, &record.id).join("net");
    let network = network_usage(&netns).and_then(|interfaces| network_stats(interfaces, now));
    Ok(v1::PodSandboxStats {
        attributes: Some(v1::PodSandboxAttributes {
            id: record.id.clone(),
            metadata: Some(v1::PodSandboxMetadata {
                name: record.name.clone(),
                uid: record.uid.clone(),
                namespace: record.namespace.clone(),
                attempt: record.attempt,
            }),
            labels: record.labels.clone().into_iter().collect(),
            annotations: record.annotations.clone().into_iter().collect(),
        }),
        linux: Some(v1::LinuxPodSandboxStats {
            cpu: Some(cpu),
            memory: Some(memory),
            network,
            process: None,
            containers,
            io: None,
        }),
        windows: None,
    })
}

/// The pod's network stats, or none when it has no default interface (a stopped pod's netns
/// keeps only `lo`; kubelet's CRI stats path reads `default_interface` without checking).
fn network_stats(interfaces: Vec<v1::NetworkInterfaceUsage>, now: i64) -> Option<v1::NetworkUsage> {
    let default_interface = interfaces.iter().find(|i| i.name == POD_IFNAME).cloned()?;
    Some(v1::NetworkUsage {
        timestamp: now,
        default_interface: Some(default_interface),
        interfaces,
    })
}

/// Interface counters of the netns pinned at `netns` (none for a host-network pod).
fn network_usage(netns: &Path) -> Option<Vec<v1::NetworkInterfaceUsage>> {
    if !netns.exists() {
        return None;
    }
    let text = berth_net::ns::in_netns(netns, || {
        std::fs::read_to_string("/proc/thread-self/net/dev").ok()
    })
    .ok()
    .flatten()?;
    Some(parse_net_dev(&text))
}

/// Parses `/proc/net/dev`: receive bytes and errors are fields 1 and 3, transmit bytes and
/// errors fields 9 and 11 (after the interface name). The loopback is left out.
fn parse_net_dev(text: &str) -> Vec<v1::NetworkInterfaceUsage> {
    text.lines()
        .skip(2)
        .filter_map(|line| {
            let (name, counters) = line.split_once(':')?;
            let name = name.trim();
            let fields: Vec<u64> = counters
                .split_whitespace()
                .filter_map(|f| f.parse().ok())
                .collect();
            let value = |i: usize| fields.get(i).map(|&value| v1::UInt64Value { value });
            (name != "lo" && fields.len() >= 16).then(|| v1::NetworkInterfaceUsage {
                name: name.to_owned(),
                rx_bytes: value(0),
                rx_errors: value(2),
                tx_bytes: value(8),
                tx_errors: value(10),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_default_interface_means_no_network_stats() {
        assert_eq!(network_stats(Vec::new(), 1), None);
        let other = v1::NetworkInterfaceUsage {
            name: "net1".into(),
            ..Default::default()
        };
        assert_eq!(network_stats(vec![other.clone()], 1), None);
        let eth0 = v1::NetworkInterfaceUsage {
            name: POD_IFNAME.into(),
            ..Default::default()
        };
        let stats = network_stats(vec![eth0.clone(), other], 1).unwrap();
        assert_eq!(stats.default_interface, Some(eth0));
        assert_eq!(stats.interfaces.len(), 2);
    }

    #[test]
    fn net_dev_counters() {
        let text = "Inter-|   Receive                                                |  Transmit\n \
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    \
lo:     100       1    0    0    0     0          0         0      100       1    0    0    0     0       0          0\n  \
eth0:    5000      40    2    0    0     0          0         0     7000      50    3    0    0     0       0          0\n";
        let usage = parse_net_dev(text);
        assert_eq!(usage.len(), 1);
        assert_eq!(usage[0].name, "eth0");
        assert_eq!(usage[0].rx_bytes.unwrap().value, 5000);
        assert_eq!(usage[0].rx_errors.unwrap().value, 2);
        assert_eq!(usage[0].tx_bytes.unwrap().value, 7000);
        assert_eq!(usage[0].tx_errors.unwrap().value, 3);
    }
}
