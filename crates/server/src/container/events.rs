//! Container lifecycle events for `GetContainerEvents` (kubelet's evented PLEG), converted
//! from the runtime core's events: created, started, stopped and deleted, each with the
//! container's status and its sandbox's at that moment.

use berth_runtime::{Event, EventKind};
use cri_api::v1;

use crate::container::convert::to_status;
use crate::container::state::Observed;

/// The CRI form of a core event.
pub fn to_cri(event: &Event) -> v1::ContainerEventResponse {
    let kind = match event.kind {
        EventKind::Created => v1::ContainerEventType::ContainerCreatedEvent,
        EventKind::Started => v1::ContainerEventType::ContainerStartedEvent,
        EventKind::Stopped => v1::ContainerEventType::ContainerStoppedEvent,
        EventKind::Deleted => v1::ContainerEventType::ContainerDeletedEvent,
    };
    let status = (event.kind != EventKind::Deleted)
        .then(|| to_status(&event.container.record, &Observed::of(&event.container)));
    v1::ContainerEventResponse {
        container_id: event.container.record.id.clone(),
        container_event_type: kind as i32,
        created_at: event.at,
        pod_sandbox_status: event.sandbox.as_ref().map(crate::pod::convert::to_status),
        containers_statuses: status.into_iter().collect(),
    }
}
