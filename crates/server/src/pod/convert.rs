//! CRI views of a sandbox record: `PodSandbox` (lists), `PodSandboxStatus`, and list filters.

use berth_store::{SandboxRecord, SandboxState};
use cri_api::v1;
use prost::Message as _;

use crate::filter::id_and_labels_match;

/// The CRI state of a record.
pub fn cri_state(state: SandboxState) -> v1::PodSandboxState {
    match state {
        SandboxState::Ready => v1::PodSandboxState::SandboxReady,
        SandboxState::NotReady => v1::PodSandboxState::SandboxNotready,
    }
}

/// The config the sandbox was created with (stored as protobuf bytes).
pub fn stored_config(record: &SandboxRecord) -> v1::PodSandboxConfig {
    v1::PodSandboxConfig::decode(record.config.as_slice()).unwrap_or_default()
}

fn metadata(record: &SandboxRecord) -> v1::PodSandboxMetadata {
    v1::PodSandboxMetadata {
        name: record.name.clone(),
        uid: record.uid.clone(),
        namespace: record.namespace.clone(),
        attempt: record.attempt,
    }
}

/// The list entry of a sandbox.
pub fn to_pod_sandbox(record: &SandboxRecord) -> v1::PodSandbox {
    v1::PodSandbox {
        id: record.id.clone(),
        metadata: Some(metadata(record)),
        state: cri_state(record.state) as i32,
        created_at: record.created_at,
        labels: record.labels.clone().into_iter().collect(),
        annotations: record.annotations.clone().into_iter().collect(),
        runtime_handler: record.runtime_handler.clone(),
    }
}

/// The status of a sandbox.
pub fn to_status(record: &SandboxRecord) -> v1::PodSandboxStatus {
    let config = stored_config(record);
    let namespace_options = config
        .linux
        .as_ref()
        .and_then(|l| l.security_context.as_ref())
        .and_then(|s| s.namespace_options.clone());
    v1::PodSandboxStatus {
        id: record.id.clone(),
        metadata: Some(metadata(record)),
        state: cri_state(record.state) as i32,
        created_at: record.created_at,
        network: Some(v1::PodSandboxNetworkStatus {
            ip: record.ip.clone().unwrap_or_default(),
            additional_ips: record
                .additional_ips
                .iter()
                .map(|ip| v1::PodIp { ip: ip.clone() })
                .collect(),
        }),
        linux: Some(v1::LinuxPodSandboxStatus {
            namespaces: Some(v1::Namespace {
                options: namespace_options,
            }),
        }),
        labels: record.labels.clone().into_iter().collect(),
        annotations: record.annotations.clone().into_iter().collect(),
        runtime_handler: record.runtime_handler.clone(),
    }
}

/// Whether `record` passes `filter` (ID prefix, state, all selector labels equal).
pub fn matches(record: &SandboxRecord, filter: &v1::PodSandboxFilter) -> bool {
    let state_ok = filter
        .state
        .as_ref()
        .is_none_or(|state| cri_state(record.state) as i32 == state.state);
    state_ok
        && id_and_labels_match(
            &record.id,
            &record.labels,
            &filter.id,
            &filter.label_selector,
        )
}
