//! Container operations: create, start, stop, remove. Each holds its pod's lifecycle lock
//! shared and the container's operation lock, intent first.

use std::sync::Arc;
use std::time::Duration;

use berth_store::{ContainerExit, ContainerIntent, ContainerRecord, SandboxIntent, SandboxState};

use crate::error::{not_found, quote};
use crate::events::EventKind;
use crate::registry::ContainerEntry;
use crate::supervise::OOM_KILLED;
use crate::{failpoint, step, Host, Result, Runtime, RuntimeError, KILL_WAIT, SIGKILL};

impl<H: Host> Runtime<H> {
    /// Writes `change` of the container's record through to the store, then to memory.
    /// Does nothing (`Ok(None)`) once the container is forgotten.
    pub(crate) async fn persist_container(
        &self,
        entry: &ContainerEntry,
        change: impl FnOnce(&mut ContainerRecord),
    ) -> Result<Option<ContainerRecord>, H> {
        let _write = entry.write.lock().await;
        if self.registry.container_exact(&entry.id).is_none() {
            return Ok(None);
        }
        let mut record = entry.record();
        change(&mut record);
        let store = self.store.clone();
        let stored = record.clone();
        self.blocking("persist", &entry.id, move || {
            store.containers().put(&stored).map_err(RuntimeError::from)
        })
        .await?;
        entry.set(record.clone());
        Ok(Some(record))
    }

    /// Forgets the container: store, then registry.
    async fn forget_container(&self, entry: &ContainerEntry) -> Result<(), H> {
        let _write = entry.write.lock().await;
        let store = self.store.clone();
        let id = entry.id.clone();
        self.blocking("forget", &entry.id, move || {
            store.containers().remove(&id).map_err(RuntimeError::from)
        })
        .await?;
        self.registry.remove_container(&entry.id);
        Ok(())
    }

    /// Records how the container ended, once; publishes the stopped event.
    pub(crate) async fn record_exit(&self, entry: &ContainerEntry, exit: ContainerExit) {
        if entry.record().exit.is_some() {
            return;
        }
        let mut first = false;
        let recorded = self
            .persist_container(entry, |r| {
                if r.exit.is_none() {
                    r.exit = Some(exit);
                    first = true;
                }
            })
            .await;
        match recorded {
            Ok(Some(record)) if first => {
                entry.set_unknown(None);
                if record.exit.as_ref().is_some_and(|e| e.reason == OOM_KILLED) {
                    self.oom_kills
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                tracing::info!(container = %entry.id, code = record.exit.as_ref().map(|e| e.exit_code), "container exited");
                self.emit(EventKind::Stopped, record);
            }
            Ok(_) => {}
            Err(err) => {
                tracing::error!(container = %entry.id, error = %err, "cannot record the container's exit")
            }
        }
    }

    /// CreateContainer: `record` names the container (ID, sandbox ID, name, config); the
    /// host creates it from `spec`. Nothing is left behind when it fails.
    pub async fn create_container(
        self: &Arc<Self>,
        mut record: ContainerRecord,
        spec: H::ContainerSpec,
    ) -> Result<ContainerRecord, H> {
        let sandbox = self
            .registry
            .sandbox_exact(&record.sandbox_id)
            .ok_or_else(|| not_found("pod sandbox", &record.sandbox_id))?;
        let lifecycle = sandbox.lifecycle.clone().read_owned().await;
        // Checked under the lock: a pod being stopped or removed takes no new container.
        if self.registry.sandbox_exact(&sandbox.id).is_none() {
            return Err(not_found("pod sandbox", &sandbox.id));
        }
        let pod = sandbox.record();
        let why = match (pod.state, pod.intent) {
            (_, Some(SandboxIntent::Removing)) => Some("being removed"),
            (_, Some(SandboxIntent::Stopping)) => Some("being stopped"),
            (_, Some(SandboxIntent::Creating)) => Some("being created"),
            (SandboxState::NotReady, None) => Some("not ready"),
            (SandboxState::Ready, None) => None,
        };
        if let Some(why) = why {
            return Err(RuntimeError::SandboxNotReady {
                id: sandbox.id.clone(),
                why,
            });
        }
        record.intent = Some(ContainerIntent::Creating);
        let entry = self
            .registry
            .add_container(record.clone())
            .map_err(|holder| RuntimeError::NameTaken {
                kind: "container",
                name: quote(&crate::registry::container_key(&record)),
                id: holder,
            })?;
        let store = self.store.clone();
        let intent = record.clone();
        let id = record.id.clone();
        if let Err(err) = self
            .blocking("CreateContainer", &id, move || {
                store
                    .containers()
                    .insert(&intent)
                    .map_err(RuntimeError::from)
            })
            .await
        {
            self.registry.remove_container(&id);
            return Err(err);
        }
        failpoint::reach("create_container:intent_recorded");
        let runtime = self.clone();
        Self::detached("CreateContainer", &id, async move {
            let _lifecycle = lifecycle;
            let host = runtime.host.clone();
            let created = runtime
                .blocking("CreateContainer", &entry.id, move || {
                    host.create_container(&mut record, &pod, &spec, &step)
                        .map(|()| record)
                        .map_err(RuntimeError::Host)
                })
                .await;
            let mut record = match created {
                Ok(record) => record,
                Err(err) => {
                    runtime.undo_container(&entry).await;
                    return Err(err);
                }
            };
            failpoint::reach("create_container:before_commit");
            record.intent = None;
            if let Err(err) = runtime.persist_container(&entry, |r| *r = record).await {
                runtime.undo_container(&entry).await;
                return Err(err);
            }
            // Nothing runs yet: the shim is spawned, and supervised, by StartContainer.
            let record = entry.record();
            runtime.emit(EventKind::Created, record.clone());
            tracing::info!(container = %entry.id, sandbox = %entry.sandbox_id, "container created");
            Ok(record)
        })
        .await
    }

    /// Removes what a container that will never exist may hold, then its record; when the
    /// host cannot, the record stays (hidden) for the next start to retry.
    pub(crate) async fn undo_container(&self, entry: &ContainerEntry) {
        let host = self.host.clone();
        let record = entry.record();
        let removed = self
            .blocking("undo CreateContainer", &entry.id, move || {
                host.remove_container(&record).map_err(RuntimeError::Host)
            })
            .await;
        match removed {
            Ok(()) => {
                if let Err(err) = self.forget_container(entry).await {
                    tracing::error!(container = %entry.id, error = %err, "cannot forget an undone container; retried at the next start");
                }
            }
            Err(err) => {
                tracing::error!(container = %entry.id, error = %err, "undo of a container left resources behind; retried at the next start");
            }
        }
    }

    /// Takes the pod's lifecycle lock shared and the container's operation lock; `None`
    /// when the container is gone by then.
    async fn lock_container(&self, entry: Arc<ContainerEntry>) -> Option<ContainerGuard> {
        let lifecycle = match self.registry.sandbox_exact(&entry.sandbox_id) {
            Some(sandbox) => Some(sandbox.lifecycle.clone().read_owned().await),
            None => None,
        };
        let op = entry.op_lock().await;
        self.registry.container_exact(&entry.id)?;
        Some(ContainerGuard {
            _lifecycle: lifecycle,
            _op: op,
            entry,
        })
    }

    /// StartContainer: the host spawns the shim (`runc create`) and runs `runc start`. When
    /// that fails, what it left is ended and the container is Exited with code
    /// [`START_ERROR_CODE`] and reason [`START_ERROR`] (kubelet restarts it per policy).
    pub async fn start_container(self: &Arc<Self>, id: &str) -> Result<(), H> {
        let entry = self.existing_container(id)?;
        let runtime = self.clone();
        Self::detached("StartContainer", &entry.id.clone(), async move {
            let Some(guard) = runtime.lock_container(entry.clone()).await else {
                return Err(not_found("container", &entry.id));
            };
            let entry = &guard.entry;
            let record = entry.record();
            let state = record.state();
            if !state.can_start() || record.intent.is_some() {
                return Err(RuntimeError::WrongState {
                    id: entry.id.clone(),
                    state,
                    wanted: "created",
                });
            }
            runtime
                .persist_container(entry, |r| r.intent = Some(ContainerIntent::Starting))
                .await?;
            failpoint::reach("start_container:intent_recorded");
            // Taken before runc start: a process that exits at once must not look started
            // after it finished.
            let started_at = crate::now_nanos();
            let host = runtime.host.clone();
            let started = runtime
                .blocking("StartContainer", &entry.id, move || {
                    host.start_container(&record, &step)
                        .map_err(RuntimeError::Host)
                })
                .await;
            if let Err(err) = started {
                runtime.start_failed(entry, &err).await?;
                return Err(err);
            }
            failpoint::reach("start_container:started");
            let record = runtime
                .persist_container(entry, |r| {
                    r.intent = None;
                    r.started_at = started_at;
                })
                .await?;
            if let Some(record) = record {
                tracing::info!(container = %entry.id, "container started");
                runtime.emit(EventKind::Started, record);
                runtime.supervise(entry.clone());
            }
            Ok(())
        })
        .await
    }

    /// A start that failed: what it left on the host is ended and the container is Exited
    /// with [`START_ERROR`] and why (the record keeps it when the host cannot end it;
    /// RemoveContainer removes it all).
    async fn start_failed(
        &self,
        entry: &ContainerEntry,
        err: &RuntimeError<H::Error>,
    ) -> Result<(), H> {
        tracing::warn!(container = %entry.id, error = %err, "StartContainer failed");
        self.reset(entry).await;
        let exit = start_error(&err.to_string());
        if let Some(record) = self
            .persist_container(entry, |r| {
                r.intent = None;
                r.exit.get_or_insert(exit);
            })
            .await?
        {
            entry.set_unknown(None);
            self.emit(EventKind::Stopped, record);
        }
        Ok(())
    }

    /// Ends what a failed or interrupted start left on the host; false (logged) when the
    /// host could not.
    pub(crate) async fn reset(&self, entry: &ContainerEntry) -> bool {
        let host = self.host.clone();
        let record = entry.record();
        let reset = self
            .blocking("reset", &entry.id, move || {
                host.reset_container(&record).map_err(RuntimeError::Host)
            })
            .await;
        if let Err(err) = &reset {
            tracing::error!(container = %entry.id, error = %err, "cannot end what a failed start left; RemoveContainer retries");
        }
        reset.is_ok()
    }

    /// StopContainer: `signal`, `timeout`, then SIGKILL. Idempotent: an unknown or stopped
    /// container is fine.
    pub async fn stop_container(
        self: &Arc<Self>,
        id: &str,
        signal: i32,
        timeout: Duration,
    ) -> Result<(), H> {
        // A stop already under way with a longer grace period is cut short to this one's.
        let deadline = deadline_after(timeout);
        self.on_locked_container(
            "StopContainer",
            id,
            Some(deadline),
            move |runtime, entry| async move {
                runtime.stop_container_locked(&entry, signal, timeout).await
            },
        )
        .await
    }

    /// Runs `work` in a task of its own with the container's locks held; an unknown
    /// container, or one gone by the time the locks are taken, is fine (Stop and Remove are
    /// idempotent). `hurry`: the time by which a stop holding the lock must give up waiting
    /// for the container to exit and kill it, so that this operation is not held up by a
    /// long grace period it did not ask for.
    async fn on_locked_container<F, Fut>(
        self: &Arc<Self>,
        operation: &'static str,
        id: &str,
        hurry: Option<tokio::time::Instant>,
        work: F,
    ) -> Result<(), H>
    where
        F: FnOnce(Arc<Self>, Arc<ContainerEntry>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<(), H>> + Send,
    {
        let Some(entry) = self.container_entry(id)? else {
            return Ok(());
        };
        if let Some(deadline) = hurry {
            entry.hurry(deadline);
        }
        let runtime = self.clone();
        Self::detached(operation, &entry.id.clone(), async move {
            let asked = entry.clone();
            let guard = runtime.lock_container(entry).await;
            if let Some(deadline) = hurry {
                asked.withdraw_hurry(deadline);
            }
            let Some(guard) = guard else {
                return Ok(());
            };
            let entry = guard.entry.clone();
            let result = work(runtime, entry).await;
            drop(guard);
            result
        })
        .await
    }

    /// Stops a container whose operation lock the caller holds.
    pub(crate) async fn stop_container_locked(
        &self,
        entry: &ContainerEntry,
        signal: i32,
        timeout: Duration,
    ) -> Result<(), H> {
        let record = entry.record();
        let state = crate::ContainerView {
            record: record.clone(),
            unknown: entry.with(|_, u| u.map(str::to_owned)),
        }
        .state();
        if !state.can_stop() {
            return Ok(());
        }
        let own_intent = record.intent.is_none();
        if own_intent {
            self.persist_container(entry, |r| r.intent = Some(ContainerIntent::Stopping))
                .await?;
            failpoint::reach("stop_container:intent_recorded");
        }
        let mut changes = entry.subscribe();
        let mut stopped = false;
        if !timeout.is_zero() {
            match self.signal(entry, signal, false).await {
                Ok(()) => stopped = self.wait_for_exit(entry, &mut changes, timeout, true).await,
                Err(err) => {
                    tracing::info!(container = %entry.id, error = %err, "stop signal not delivered")
                }
            }
        }
        if own_intent {
            failpoint::reach("stop_container:signalled");
        }
        if !stopped {
            if let Err(err) = self.signal(entry, SIGKILL, true).await {
                tracing::info!(container = %entry.id, error = %err, "SIGKILL not delivered");
            }
            stopped = self
                .wait_for_exit(entry, &mut changes, KILL_WAIT, false)
                .await;
        }
        if own_intent {
            self.persist_container(entry, |r| {
                if r.intent == Some(ContainerIntent::Stopping) {
                    r.intent = None;
                }
            })
            .await?;
        }
        if !stopped {
            return Err(RuntimeError::StopTimeout {
                id: entry.id.clone(),
                seconds: (timeout + KILL_WAIT).as_secs(),
            });
        }
        Ok(())
    }

    async fn signal(&self, entry: &ContainerEntry, signal: i32, all: bool) -> Result<(), H> {
        let host = self.host.clone();
        let record = entry.record();
        self.blocking("signal", &entry.id, move || {
            host.signal_container(&record, signal, all)
                .map_err(RuntimeError::Host)
        })
        .await
    }

    /// Waits until the container's exit is recorded (by the supervisor) or `timeout` passes;
    /// with `hurried`, also until a deadline posted with [`ContainerEntry::hurry`] passes.
    async fn wait_for_exit(
        &self,
        entry: &ContainerEntry,
        changes: &mut tokio::sync::watch::Receiver<u64>,
        timeout: Duration,
        hurried: bool,
    ) -> bool {
        let own = deadline_after(timeout);
        loop {
            if entry.record().exit.is_some() {
                return true;
            }
            let deadline = match entry.hurry_deadline() {
                Some(hurry) if hurried => own.min(hurry),
                _ => own,
            };
            if tokio::time::timeout_at(deadline, changes.changed())
                .await
                .map_or(true, |changed| changed.is_err())
            {
                return entry.record().exit.is_some();
            }
        }
    }

    /// RemoveContainer: kills it if it runs, then removes everything it holds and its
    /// record. Idempotent: an unknown container is fine.
    pub async fn remove_container(self: &Arc<Self>, id: &str) -> Result<(), H> {
        // Removal kills a running container: a stop waiting out its grace period kills now.
        let now = tokio::time::Instant::now();
        self.on_locked_container(
            "RemoveContainer",
            id,
            Some(now),
            |runtime, entry| async move { runtime.remove_container_locked(&entry).await },
        )
        .await
    }

    /// Removes a container whose operation lock the caller holds.
    pub(crate) async fn remove_container_locked(&self, entry: &ContainerEntry) -> Result<(), H> {
        if self.registry.container_exact(&entry.id).is_none() {
            return Ok(());
        }
        if entry.record().intent != Some(ContainerIntent::Removing) {
            self.persist_container(entry, |r| r.intent = Some(ContainerIntent::Removing))
                .await?;
            failpoint::reach("remove_container:intent_recorded");
        }
        if let Err(err) = self
            .stop_container_locked(entry, SIGKILL, Duration::ZERO)
            .await
        {
            // runc's forced delete below kills what is left.
            tracing::warn!(container = %entry.id, error = %err, "removing a container that did not stop");
        }
        let host = self.host.clone();
        let record = entry.record();
        self.blocking("RemoveContainer", &entry.id, move || {
            host.remove_container(&record).map_err(RuntimeError::Host)
        })
        .await?;
        failpoint::reach("remove_container:host_removed");
        let record = entry.record();
        self.forget_container(entry).await?;
        tracing::info!(container = %entry.id, "container removed");
        self.emit(EventKind::Deleted, record);
        Ok(())
    }

    /// Runs `f` with the container's operation lock held (UpdateContainerResources,
    /// ReopenContainerLog): it never interleaves with start, stop or remove.
    pub async fn with_container<T>(
        &self,
        id: &str,
        f: impl std::future::Future<Output = T>,
    ) -> Result<T, H> {
        let entry = self.existing_container(id)?;
        let Some(_guard) = self.lock_container(entry.clone()).await else {
            return Err(not_found("container", &entry.id));
        };
        Ok(f.await)
    }
}

impl<H: Host> Runtime<H> {
    /// Changes container `id`'s record (its stored config, after UpdateContainerResources):
    /// written through, then in memory.
    pub async fn update_container_record(
        &self,
        id: &str,
        change: impl FnOnce(&mut ContainerRecord),
    ) -> Result<ContainerRecord, H> {
        let entry = self.existing_container(id)?;
        self.persist_container(&entry, change)
            .await?
            .ok_or_else(|| not_found("container", &entry.id))
    }
}

/// The locks of one container operation.
pub(crate) struct ContainerGuard {
    _lifecycle: Option<tokio::sync::OwnedRwLockReadGuard<()>>,
    _op: tokio::sync::OwnedMutexGuard<()>,
    pub(crate) entry: Arc<ContainerEntry>,
}

/// The exit code of a container whose start failed (as containerd reports it).
pub const START_ERROR_CODE: i32 = 128;

/// The exit reason of a container whose start failed.
pub const START_ERROR: &str = "StartError";

/// The exit of a container whose start failed for `why`.
pub(crate) fn start_error(why: &str) -> ContainerExit {
    ContainerExit {
        exit_code: START_ERROR_CODE,
        finished_at: crate::now_nanos(),
        reason: START_ERROR.into(),
        message: why.to_owned(),
    }
}

/// Now plus `timeout`; a timeout beyond what a clock can add (a client may ask for
/// 2^63 - 1 seconds) waits ten years instead.
fn deadline_after(timeout: Duration) -> tokio::time::Instant {
    let now = tokio::time::Instant::now();
    now.checked_add(timeout)
        .unwrap_or_else(|| now + Duration::from_secs(10 * 365 * 24 * 3600))
}
