//! Container lifecycle events for `GetContainerEvents` (kubelet's evented PLEG): each carries
//! the container's record and its sandbox's at that moment. Broadcast to every subscriber;
//! one that falls more than [`crate::EVENT_CAPACITY`] behind loses the oldest.

use berth_store::{ContainerRecord, SandboxRecord};
use tokio::sync::broadcast;

use crate::{ContainerView, Host, Runtime};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// CreateContainer finished.
    Created,
    /// StartContainer finished.
    Started,
    /// The process exited (once per container).
    Stopped,
    /// RemoveContainer finished.
    Deleted,
}

/// One event.
#[derive(Debug, Clone)]
pub struct Event {
    /// What happened.
    pub kind: EventKind,
    /// The container as it is now (as it was, for `Deleted`).
    pub container: ContainerView,
    /// Its sandbox, while it exists.
    pub sandbox: Option<SandboxRecord>,
    /// When, nanoseconds since the Unix epoch.
    pub at: i64,
}

impl<H: Host> Runtime<H> {
    /// A new subscription.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    pub(crate) fn emit(&self, kind: EventKind, record: ContainerRecord) {
        let sandbox = self
            .registry
            .sandbox_exact(&record.sandbox_id)
            .map(|s| s.record());
        // No subscriber is not an error.
        let _ = self.events.send(Event {
            kind,
            container: ContainerView {
                record,
                unknown: None,
            },
            sandbox,
            at: crate::now_nanos(),
        });
    }
}
