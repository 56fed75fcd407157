//! Pod and container metrics for `ListMetricDescriptors` / `ListPodSandboxMetrics`, named as
//! cAdvisor names them so kubelet can serve them in place of cAdvisor's.
//!
//! Units: CPU time in nanoseconds (kubelet divides by 1e9 for the `_seconds_total` counter),
//! memory and network in bytes.

use cri_api::v1;

use crate::clock::now_nanos;

/// Labels of container metrics.
const CONTAINER_LABELS: [&str; 4] = ["container", "id", "pod", "namespace"];
/// Labels of pod network metrics.
const NETWORK_LABELS: [&str; 3] = ["interface", "pod", "namespace"];

/// One metric berth reports: name, help, labels, type.
struct Descriptor {
    name: &'static str,
    help: &'static str,
    labels: &'static [&'static str],
    kind: v1::MetricType,
}

const CPU: Descriptor = Descriptor {
    name: "container_cpu_usage_seconds_total",
    help: "Cumulative cpu time consumed by the container in core-nanoseconds",
    labels: &CONTAINER_LABELS,
    kind: v1::MetricType::Counter,
};
const MEMORY_USAGE: Descriptor = Descriptor {
    name: "container_memory_usage_bytes",
    help: "Current memory usage of the container in bytes, including all memory",
    labels: &CONTAINER_LABELS,
    kind: v1::MetricType::Gauge,
};
const MEMORY_WORKING_SET: Descriptor = Descriptor {
    name: "container_memory_working_set_bytes",
    help: "Current working set of the container in bytes",
    labels: &CONTAINER_LABELS,
    kind: v1::MetricType::Gauge,
};
const NETWORK_RX: Descriptor = Descriptor {
    name: "container_network_receive_bytes_total",
    help: "Cumulative count of bytes received by the pod's interface",
    labels: &NETWORK_LABELS,
    kind: v1::MetricType::Counter,
};
const NETWORK_TX: Descriptor = Descriptor {
    name: "container_network_transmit_bytes_total",
    help: "Cumulative count of bytes transmitted by the pod's interface",
    labels: &NETWORK_LABELS,
    kind: v1::MetricType::Counter,
};

/// Every metric berth reports.
const ALL: [&Descriptor; 5] = [
    &CPU,
    &MEMORY_USAGE,
    &MEMORY_WORKING_SET,
    &NETWORK_RX,
    &NETWORK_TX,
];

/// The descriptors of every metric berth reports.
pub fn descriptors() -> Vec<v1::MetricDescriptor> {
    ALL.iter()
        .map(|d| v1::MetricDescriptor {
            name: d.name.to_owned(),
            help: d.help.to_owned(),
            label_keys: d.labels.iter().map(|l| (*l).to_owned()).collect(),
        })
        .collect()
}

fn metric(
    d: &Descriptor,
    timestamp: i64,
    labels: Vec<String>,
    value: Option<u64>,
) -> Option<v1::Metric> {
    Some(v1::Metric {
        name: d.name.to_owned(),
        timestamp,
        metric_type: d.kind as i32,
        label_values: labels,
        value: Some(v1::UInt64Value { value: value? }),
    })
}

/// The metrics of one pod, from its stats.
pub fn pod_metrics(stats: &v1::PodSandboxStats) -> v1::PodSandboxMetrics {
    let now = now_nanos();
    let attributes = stats.attributes.clone().unwrap_or_default();
    let pod_meta = attributes.metadata.unwrap_or_default();
    let linux = stats.linux.clone().unwrap_or_default();
    let metrics = linux
        .network
        .iter()
        .flat_map(|network| network.interfaces.iter())
        .flat_map(|interface| {
            let labels = vec![
                interface.name.clone(),
                pod_meta.name.clone(),
                pod_meta.namespace.clone(),
            ];
            [
                metric(
                    &NETWORK_RX,
                    now,
                    labels.clone(),
                    interface.rx_bytes.as_ref().map(|v| v.value),
                ),
                metric(
                    &NETWORK_TX,
                    now,
                    labels,
                    interface.tx_bytes.as_ref().map(|v| v.value),
                ),
            ]
        })
        .flatten()
        .collect();
    let container_metrics = linux
        .containers
        .iter()
        .map(|container| {
            let attributes = container.attributes.clone().unwrap_or_default();
            let name = attributes.metadata.map(|m| m.name).unwrap_or_default();
            let labels = vec![
                name,
                attributes.id.clone(),
                pod_meta.name.clone(),
                pod_meta.namespace.clone(),
            ];
            let cpu = container
                .cpu
                .as_ref()
                .and_then(|c| c.usage_core_nano_seconds.as_ref())
                .map(|v| v.value);
            let memory = container.memory.unwrap_or_default();
            let metrics = [
                metric(&CPU, now, labels.clone(), cpu),
                metric(
                    &MEMORY_USAGE,
                    now,
                    labels.clone(),
                    memory.usage_bytes.map(|v| v.value),
                ),
                metric(
                    &MEMORY_WORKING_SET,
                    now,
                    labels,
                    memory.working_set_bytes.map(|v| v.value),
                ),
            ];
            v1::ContainerMetrics {
                container_id: attributes.id,
                metrics: metrics.into_iter().flatten().collect(),
            }
        })
        .collect();
    v1::PodSandboxMetrics {
        pod_sandbox_id: attributes.id,
        metrics,
        container_metrics,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptors_match_the_metrics_reported() {
        let descriptors = descriptors();
        assert_eq!(descriptors.len(), 5);
        let stats = v1::PodSandboxStats {
            attributes: Some(v1::PodSandboxAttributes {
                id: "p".into(),
                metadata: Some(v1::PodSandboxMetadata {
                    name: "web".into(),
                    namespace: "ns".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            linux: Some(v1::LinuxPodSandboxStats {
                network: Some(v1::NetworkUsage {
                    interfaces: vec![v1::NetworkInterfaceUsage {
                        name: "eth0".into(),
                        rx_bytes: Some(v1::UInt64Value { value: 10 }),
                        tx_bytes: Some(v1::UInt64Value { value: 20 }),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
                containers: vec![v1::ContainerStats {
                    attributes: Some(v1::ContainerAttributes {
                        id: "c".into(),
                        ..Default::default()
                    }),
                    cpu: Some(v1::CpuUsage {
                        usage_core_nano_seconds: Some(v1::UInt64Value { value: 5 }),
                        ..Default::default()
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            windows: None,
        };
        let metrics = pod_metrics(&stats);
        assert_eq!(metrics.pod_sandbox_id, "p");
        assert_eq!(metrics.metrics.len(), 2);
        assert_eq!(metrics.metrics[0].label_values, ["eth0", "web", "ns"]);
        let container = &metrics.container_metrics[0];
        assert_eq!(container.container_id, "c");
        // Memory was not measured: only the CPU counter is reported.
        assert_eq!(container.metrics.len(), 1);
        assert_eq!(container.metrics[0].value.unwrap().value, 5);
        for m in metrics.metrics.iter().chain(&container.metrics) {
            let d = descriptors.iter().find(|d| d.name == m.name).unwrap();
            assert_eq!(d.label_keys.len(), m.label_values.len(), "{}", m.name);
        }
    }
}
