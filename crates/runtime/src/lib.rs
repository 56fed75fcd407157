//! berth's runtime core: every pod sandbox and container as a supervised object.
//!
//! - **Registry** ([`registry`]): the in-memory truth while berthd runs — by ID, ID prefix,
//!   name and sandbox — loaded from the store once at start-up and written through (persist
//!   first, then swap). List RPCs read it; nothing scans the store again.
//! - **Intent first**: each multi-step operation writes its intent into the object's record
//!   before it touches the host (`Creating`, `Starting`, `Stopping`, `Removing`) and clears
//!   it when done, so a berthd killed at any instant finishes or undoes it at the next start
//!   ([`recovery`]). A failed step is undone by the same idempotent removal recovery uses;
//!   an undo that fails keeps the record (hidden, intent `Creating`) and is retried at the
//!   next start.
//! - **Reconciliation** at start-up against the host, not files alone: a sandbox whose
//!   namespaces are gone is stopped (network released) and NotReady; a started container
//!   whose shim is gone is Exited with the shim's exit file, or with 255 / `Unknown`; a
//!   created one whose rootfs or bundle is gone (a reboot) is Exited 255 / `Unknown`.
//! - **Create, then start** (as containerd's CRI does): CreateContainer only prepares the
//!   container (rootfs, host paths, bundle) and commits its record; StartContainer spawns the
//!   shim (`runc create`: cgroup, namespaces, stdio) and runs `runc start`. A start that
//!   fails leaves the container Exited with code 128 and reason `StartError`.
//! - **Supervision** ([`supervise`]): a pidfd per shim, from StartContainer on; its death is
//!   noticed at once and becomes the container's exit, with the CONTAINER_STOPPED event.
//! - **Serialisation**: a per-pod lifecycle lock (container operations shared, pod
//!   operations exclusive) and a per-container operation lock. Operations run in tasks of
//!   their own, so a cancelled RPC never leaves them half-done, and its name stays reserved
//!   until the operation ends.
//! - **Host** ([`host::Host`]): everything touching the machine, called on blocking threads
//!   only; [`fake::FakeHost`] for unit tests.
//!
//! `unsafe` is denied except in [`pidfd`] (one syscall libc has no wrapper for).

#![deny(unsafe_code)]

pub mod error;
pub mod failpoint;
pub mod fake;
pub mod host;
mod pidfd;
pub mod registry;

mod containers;
mod events;
mod pods;
mod query;
pub mod recovery;
pub mod supervise;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod testutil;

use std::sync::Arc;

use berth_store::Store;
use tokio::sync::broadcast;

pub use containers::{START_ERROR, START_ERROR_CODE};
pub use error::{cut, quote, RuntimeError, QUOTE_MAX};
pub use events::{Event, EventKind};
pub use host::{ExitFile, Host, Probe, RuncView, Step};
pub use query::ContainerView;

/// SIGKILL.
pub const SIGKILL: i32 = 9;

/// How long to wait for a container's exit after SIGKILL.
pub const KILL_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Events kept for a slow subscriber.
pub const EVENT_CAPACITY: usize = 1024;

/// The runtime core over host `H`.
#[derive(Debug)]
pub struct Runtime<H: Host> {
    host: Arc<H>,
    store: Store,
    registry: registry::Registry,
    events: broadcast::Sender<Event>,
    /// The supervisor task of each watched container.
    supervisors: std::sync::Mutex<std::collections::HashMap<String, tokio::task::AbortHandle>>,
    /// Exits recorded with reason `OOMKilled` since the core opened (for metrics).
    oom_kills: std::sync::atomic::AtomicU64,
}

/// A result of the core.
pub type Result<T, H> = std::result::Result<T, RuntimeError<<H as Host>::Error>>;

/// Nanoseconds since the Unix epoch.
pub fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl<H: Host> Runtime<H> {
    /// Loads every record into the registry and reconciles each object with the host (see
    /// [`recovery`]); call before serving. Blocking work runs on blocking threads.
    pub async fn open(host: Arc<H>, store: Store) -> Result<Arc<Self>, H> {
        let runtime = Arc::new(Runtime {
            host,
            store,
            registry: registry::Registry::default(),
            events: broadcast::channel(EVENT_CAPACITY).0,
            supervisors: Default::default(),
            oom_kills: Default::default(),
        });
        runtime.load().await?;
        runtime.recover().await;
        Ok(runtime)
    }

    /// Stops supervising (berthd is stopping; the shims go on and are found again at the
    /// next start).
    pub fn shutdown(&self) {
        let mut supervisors = self.supervisors.lock().unwrap_or_else(|p| p.into_inner());
        for (_, task) in supervisors.drain() {
            task.abort();
        }
    }

    /// Container exits recorded with reason `OOMKilled` since the core opened (recovery
    /// included: a container the kernel killed while berthd was down counts once).
    pub fn oom_kills(&self) -> u64 {
        self.oom_kills.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Container shims being supervised: one per container whose process has not ended.
    pub fn supervised_shims(&self) -> usize {
        self.supervisors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }

    /// The host.
    pub fn host(&self) -> &Arc<H> {
        &self.host
    }

    /// Runs `f` on a blocking thread; a panic there becomes [`RuntimeError::Aborted`].
    async fn blocking<T, F>(&self, operation: &'static str, id: &str, f: F) -> Result<T, H>
    where
        T: Send + 'static,
        F: FnOnce() -> Result<T, H> + Send + 'static,
    {
        // The RPC's span goes along, so that the steps reached on the blocking thread are
        // logged (and timed) under the RPC that reached them.
        let span = tracing::Span::current();
        joined(
            operation,
            id,
            tokio::task::spawn_blocking(move || span.in_scope(f)).await,
        )
    }

    /// Runs `future` in a task of its own and waits for it: the operation goes on to its end
    /// (success or undo) even when the RPC that started it is cancelled.
    async fn detached<T, F>(operation: &'static str, id: &str, future: F) -> Result<T, H>
    where
        T: Send + 'static,
        F: std::future::Future<Output = Result<T, H>> + Send + 'static,
    {
        joined(
            operation,
            id,
            tokio::spawn(tracing::Instrument::in_current_span(future)).await,
        )
    }
}

/// The result of a task that ran an operation; a panic or cancellation of the task becomes
/// [`RuntimeError::Aborted`].
fn joined<T, E: std::error::Error>(
    operation: &'static str,
    id: &str,
    result: std::result::Result<std::result::Result<T, RuntimeError<E>>, tokio::task::JoinError>,
) -> std::result::Result<T, RuntimeError<E>> {
    result.map_err(|err| RuntimeError::Aborted {
        operation,
        id: id.to_owned(),
        reason: err.to_string(),
    })?
}

/// The step callback every host operation gets: traces the step and, in test builds, dies
/// there on request.
pub(crate) fn step(name: &'static str) {
    failpoint::reach(name);
}
