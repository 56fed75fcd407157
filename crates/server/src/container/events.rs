//! Container lifecycle events for `GetContainerEvents` (kubelet's evented PLEG): created,
//! started, stopped and deleted, each with the container's status at that moment.
//!
//! Events are broadcast to every subscriber; one that falls more than [`CAPACITY`] events
//! behind loses the oldest (kubelet then relists). Exits that happen on their own (not
//! through StopContainer) are noticed by [`watch_exits`].

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_store::ContainerState;
use cri_api::v1;
use tokio::sync::broadcast;

use crate::clock::now_nanos;
use crate::container::convert::to_status;
use crate::container::paths::ContainerPaths;
use crate::container::state::observe;
use crate::daemon::Daemon;

/// Events kept for a slow subscriber.
pub const CAPACITY: usize = 1024;

/// How often running containers are checked for an exit.
const EXIT_POLL: Duration = Duration::from_secs(1);

/// The event bus, plus the containers known to run (to notice their exit once).
#[derive(Debug)]
pub struct Events {
    tx: broadcast::Sender<v1::ContainerEventResponse>,
    running: Mutex<HashSet<String>>,
}

impl Default for Events {
    fn default() -> Self {
        Events {
            tx: broadcast::channel(CAPACITY).0,
            running: Mutex::default(),
        }
    }
}

impl Events {
    /// A new subscription.
    pub fn subscribe(&self) -> broadcast::Receiver<v1::ContainerEventResponse> {
        self.tx.subscribe()
    }

    fn running(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Publishes `kind` for container `id` with its current status (none once deleted).
    pub fn emit(&self, daemon: &Daemon, kind: v1::ContainerEventType, id: &str) {
        match kind {
            v1::ContainerEventType::ContainerStartedEvent => {
                self.running().insert(id.to_owned());
            }
            v1::ContainerEventType::ContainerStoppedEvent
            | v1::ContainerEventType::ContainerDeletedEvent => {
                if !self.running().remove(id)
                    && kind == v1::ContainerEventType::ContainerStoppedEvent
                {
                    // Already reported as stopped.
                    return;
                }
            }
            v1::ContainerEventType::ContainerCreatedEvent => {}
        }
        let record = daemon.store.containers().try_get(id).ok().flatten();
        let status = record
            .as_ref()
            .map(|r| to_status(r, &observe(&ContainerPaths::new(daemon, id))));
        let sandbox = record
            .as_ref()
            .and_then(|r| {
                daemon
                    .store
                    .sandboxes()
                    .try_get(&r.sandbox_id)
                    .ok()
                    .flatten()
            })
            .map(|s| crate::pod::convert::to_status(&s));
        // No subscriber is not an error.
        let _ = self.tx.send(v1::ContainerEventResponse {
            container_id: id.to_owned(),
            container_event_type: kind as i32,
            created_at: now_nanos(),
            pod_sandbox_status: sandbox,
            containers_statuses: status.into_iter().collect(),
        });
    }
}

/// Notices containers that exited on their own and publishes their stopped event. Runs for
/// the life of the daemon; containers running at startup are picked up first.
pub async fn watch_exits(daemon: Arc<Daemon>) {
    if let Ok(records) = daemon.store.containers().list() {
        for record in records {
            if observe(&ContainerPaths::new(&daemon, &record.id)).state == ContainerState::Running {
                daemon.events.running().insert(record.id);
            }
        }
    }
    loop {
        tokio::time::sleep(EXIT_POLL).await;
        let running: Vec<String> = daemon.events.running().iter().cloned().collect();
        for id in running {
            if observe(&ContainerPaths::new(&daemon, &id)).state == ContainerState::Exited {
                daemon
                    .events
                    .emit(&daemon, v1::ContainerEventType::ContainerStoppedEvent, &id);
            }
        }
    }
}
