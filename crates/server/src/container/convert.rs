//! CRI views of a container record and its derived state: `Container` (lists),
//! `ContainerStatus`, and list filters.

use berth_store::{ContainerRecord, ContainerState};
use cri_api::v1;
use prost::Message as _;

use crate::container::state::Observed;
use crate::filter::id_and_labels_match;

/// The CRI state.
pub fn cri_state(state: ContainerState) -> v1::ContainerState {
    match state {
        ContainerState::Created => v1::ContainerState::ContainerCreated,
        ContainerState::Running => v1::ContainerState::ContainerRunning,
        ContainerState::Exited => v1::ContainerState::ContainerExited,
        ContainerState::Unknown => v1::ContainerState::ContainerUnknown,
    }
}

/// The config the container was created with.
pub fn stored_config(record: &ContainerRecord) -> v1::ContainerConfig {
    v1::ContainerConfig::decode(record.config.as_slice()).unwrap_or_default()
}

fn metadata(record: &ContainerRecord) -> v1::ContainerMetadata {
    v1::ContainerMetadata {
        name: record.name.clone(),
        attempt: record.attempt,
    }
}

fn image_spec(record: &ContainerRecord) -> v1::ImageSpec {
    v1::ImageSpec {
        image: record.image_name.clone(),
        user_specified_image: record.image_name.clone(),
        ..Default::default()
    }
}

/// The list entry of a container.
pub fn to_container(record: &ContainerRecord, state: ContainerState) -> v1::Container {
    v1::Container {
        id: record.id.clone(),
        pod_sandbox_id: record.sandbox_id.clone(),
        metadata: Some(metadata(record)),
        image: Some(image_spec(record)),
        image_ref: record.image_ref.clone(),
        state: cri_state(state) as i32,
        created_at: record.created_at,
        labels: record.labels.clone().into_iter().collect(),
        annotations: record.annotations.clone().into_iter().collect(),
        image_id: record.image_ref.clone(),
    }
}

/// The status of a container.
pub fn to_status(record: &ContainerRecord, observed: &Observed) -> v1::ContainerStatus {
    let config = stored_config(record);
    let mounts = config
        .mounts
        .iter()
        .map(|m| v1::Mount {
            container_path: m.container_path.clone(),
            host_path: m.host_path.clone(),
            readonly: m.readonly,
            selinux_relabel: false,
            propagation: m.propagation,
            ..Default::default()
        })
        .collect();
    v1::ContainerStatus {
        id: record.id.clone(),
        metadata: Some(metadata(record)),
        state: cri_state(observed.state) as i32,
        created_at: record.created_at,
        started_at: observed.started_at,
        finished_at: observed.finished_at,
        exit_code: observed.exit_code,
        image: Some(image_spec(record)),
        image_ref: record.image_ref.clone(),
        reason: observed.reason.clone(),
        message: observed.message.clone(),
        labels: record.labels.clone().into_iter().collect(),
        annotations: record.annotations.clone().into_iter().collect(),
        mounts,
        log_path: record.log_path.clone(),
        resources: config
            .linux
            .as_ref()
            .and_then(|l| l.resources.clone())
            .map(|r| v1::ContainerResources {
                linux: Some(r),
                windows: None,
            }),
        image_id: record.image_ref.clone(),
        user: None,
        stop_signal: config.stop_signal,
    }
}

/// Whether the container passes `filter`.
pub fn matches(
    record: &ContainerRecord,
    state: ContainerState,
    filter: &v1::ContainerFilter,
) -> bool {
    let state_ok = filter
        .state
        .as_ref()
        .is_none_or(|wanted| cri_state(state) as i32 == wanted.state);
    state_ok
        && record.sandbox_id.starts_with(&filter.pod_sandbox_id)
        && id_and_labels_match(
            &record.id,
            &record.labels,
            &filter.id,
            &filter.label_selector,
        )
}
