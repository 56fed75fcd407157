//! Pod sandbox operations: run, stop, remove. Each runs in a task of its own under the pod's
//! exclusive lifecycle lock, intent first.

use std::sync::Arc;

use berth_store::{SandboxIntent, SandboxRecord, SandboxState};

use crate::error::{not_found, quote};
use crate::registry::SandboxEntry;
use crate::{failpoint, step, Host, Result, Runtime, RuntimeError, SIGKILL};

impl<H: Host> Runtime<H> {
    /// Writes `change` of the sandbox's record through to the store, then to memory.
    pub(crate) async fn persist_sandbox(
        &self,
        entry: &SandboxEntry,
        change: impl FnOnce(&mut SandboxRecord),
    ) -> Result<SandboxRecord, H> {
        let _write = entry.write.lock().await;
        let mut record = entry.record();
        change(&mut record);
        let store = self.store.clone();
        let stored = record.clone();
        self.blocking("persist", &entry.id, move || {
            store.sandboxes().put(&stored).map_err(RuntimeError::from)
        })
        .await?;
        entry.set(record.clone());
        Ok(record)
    }

    /// Forgets the sandbox: store, then registry.
    async fn forget_sandbox(&self, entry: &SandboxEntry) -> Result<(), H> {
        let _write = entry.write.lock().await;
        let store = self.store.clone();
        let id = entry.id.clone();
        self.blocking("forget", &entry.id, move || {
            store.sandboxes().remove(&id).map_err(RuntimeError::from)
        })
        .await?;
        self.registry.remove_sandbox(&entry.id);
        Ok(())
    }

    /// RunPodSandbox: `record` names the pod (its ID, name, config); the host creates it from
    /// `spec`. Returns the ready sandbox. Nothing is left behind when it fails.
    pub async fn run_pod(
        self: &Arc<Self>,
        mut record: SandboxRecord,
        spec: H::PodSpec,
    ) -> Result<SandboxRecord, H> {
        record.intent = Some(SandboxIntent::Creating);
        record.state = SandboxState::NotReady;
        let entry = self
            .registry
            .add_sandbox(record.clone())
            .map_err(|holder| RuntimeError::NameTaken {
                kind: "pod sandbox",
                name: quote(&crate::registry::pod_key(&record)),
                id: holder,
            })?;
        let lifecycle = entry.lifecycle.clone().write_owned().await;
        let store = self.store.clone();
        let intent = record.clone();
        if let Err(err) = self
            .blocking("RunPodSandbox", &record.id, move || {
                store
                    .sandboxes()
                    .insert(&intent)
                    .map_err(RuntimeError::from)
            })
            .await
        {
            self.registry.remove_sandbox(&record.id);
            return Err(err);
        }
        failpoint::reach("run_pod_sandbox:intent_recorded");
        let runtime = self.clone();
        let id = record.id.clone();
        Self::detached("RunPodSandbox", &id, async move {
            let _lifecycle = lifecycle;
            let host = runtime.host.clone();
            let created = runtime
                .blocking("RunPodSandbox", &entry.id, move || {
                    let mut record = record;
                    host.create_pod(&mut record, &spec, &step)
                        .map(|()| record)
                        .map_err(RuntimeError::Host)
                })
                .await;
            let mut record = match created {
                Ok(record) => record,
                Err(err) => {
                    runtime.undo_pod(&entry).await;
                    return Err(err);
                }
            };
            failpoint::reach("run_pod_sandbox:before_commit");
            record.intent = None;
            record.state = SandboxState::Ready;
            let committed = runtime.persist_sandbox(&entry, |r| *r = record).await;
            if let Err(err) = committed {
                runtime.undo_pod(&entry).await;
                return Err(err);
            }
            Ok(entry.record())
        })
        .await
    }

    /// Removes what a pod that will never exist may hold, then its record. When the host
    /// cannot remove everything, the record stays (hidden) for the next start to retry.
    pub(crate) async fn undo_pod(&self, entry: &SandboxEntry) {
        let host = self.host.clone();
        let record = entry.record();
        let removed = self
            .blocking("undo RunPodSandbox", &entry.id, move || {
                host.remove_pod(&record, &|_| {})
                    .map_err(RuntimeError::Host)
            })
            .await;
        match removed {
            Ok(()) => {
                if let Err(err) = self.forget_sandbox(entry).await {
                    tracing::error!(sandbox = %entry.id, error = %err, "cannot forget an undone pod sandbox; retried at the next start");
                }
            }
            Err(err) => {
                tracing::error!(sandbox = %entry.id, error = %err, "undo of a pod sandbox left resources behind; retried at the next start");
            }
        }
    }

    /// The pod's lifecycle lock for a stop or removal, which kill its containers: a
    /// container stop under way is told to kill now instead of waiting out its grace period
    /// while it holds the lock's read side.
    async fn lifecycle_hurrying(
        &self,
        entry: &Arc<crate::registry::SandboxEntry>,
    ) -> tokio::sync::OwnedRwLockWriteGuard<()> {
        let now = tokio::time::Instant::now();
        let containers = self.registry.containers_of(&entry.id);
        for container in &containers {
            container.hurry(now);
        }
        let lifecycle = entry.lifecycle.clone().write_owned().await;
        for container in &containers {
            container.withdraw_hurry(now);
        }
        lifecycle
    }

    /// StopPodSandbox: kills the pod's containers, releases its network, marks it NotReady.
    /// Idempotent: an unknown or stopped sandbox is fine.
    pub async fn stop_pod(self: &Arc<Self>, id: &str) -> Result<(), H> {
        let Some(entry) = self.sandbox_entry(id)? else {
            return Ok(());
        };
        let runtime = self.clone();
        let lifecycle = self.lifecycle_hurrying(&entry).await;
        Self::detached("StopPodSandbox", &entry.id.clone(), async move {
            let _lifecycle = lifecycle;
            runtime.stop_pod_locked(&entry).await
        })
        .await
    }

    pub(crate) async fn stop_pod_locked(&self, entry: &Arc<SandboxEntry>) -> Result<(), H> {
        if self.registry.sandbox_exact(&entry.id).is_none() {
            return Ok(());
        }
        let record = entry.record();
        if record.state == SandboxState::NotReady && record.intent.is_none() {
            return Ok(());
        }
        if record.intent.is_none() {
            self.persist_sandbox(entry, |r| r.intent = Some(SandboxIntent::Stopping))
                .await?;
        }
        failpoint::reach("stop_pod_sandbox:intent_recorded");
        // kubelet has stopped the containers with their grace periods: what is left gets none.
        // They are killed while the network is released (the CNI DEL is most of this RPC's
        // time, and a container being killed needs no network): both are done before the
        // pod is NotReady, and either may be cut short by a crash, after which the next
        // start finishes the stop.
        let containers = async {
            for container in self.registry.containers_of(&entry.id) {
                let _op = container.op.lock().await;
                self.stop_container_locked(&container, SIGKILL, std::time::Duration::ZERO)
                    .await?;
            }
            failpoint::reach("stop_pod_sandbox:containers_stopped");
            Ok(())
        };
        let host = self.host.clone();
        let network = async {
            self.blocking("StopPodSandbox", &entry.id, move || {
                host.stop_pod(&record, &step).map_err(RuntimeError::Host)
            })
            .await?;
            failpoint::reach("stop_pod_sandbox:network_released");
            Ok(())
        };
        let (stopped, released): (Result<(), H>, Result<(), H>) = tokio::join!(containers, network);
        stopped?;
        released?;
        self.persist_sandbox(entry, |r| {
            r.state = SandboxState::NotReady;
            if r.intent == Some(SandboxIntent::Stopping) {
                r.intent = None;
            }
        })
        .await?;
        Ok(())
    }

    /// RemovePodSandbox: removes the pod's containers and everything the pod holds, then its
    /// record. Idempotent under any number of concurrent calls.
    pub async fn remove_pod(self: &Arc<Self>, id: &str) -> Result<(), H> {
        let Some(entry) = self.sandbox_entry(id)? else {
            return Ok(());
        };
        let runtime = self.clone();
        let lifecycle = self.lifecycle_hurrying(&entry).await;
        Self::detached("RemovePodSandbox", &entry.id.clone(), async move {
            let _lifecycle = lifecycle;
            runtime.remove_pod_locked(&entry).await
        })
        .await
    }

    pub(crate) async fn remove_pod_locked(&self, entry: &Arc<SandboxEntry>) -> Result<(), H> {
        if self.registry.sandbox_exact(&entry.id).is_none() {
            return Ok(());
        }
        if entry.record().intent != Some(SandboxIntent::Removing) {
            self.persist_sandbox(entry, |r| r.intent = Some(SandboxIntent::Removing))
                .await?;
        }
        failpoint::reach("remove_pod_sandbox:intent_recorded");
        for container in self.registry.containers_of(&entry.id) {
            let _op = container.op.lock().await;
            self.remove_container_locked(&container).await?;
        }
        failpoint::reach("remove_pod_sandbox:containers_removed");
        let host = self.host.clone();
        let record = entry.record();
        self.blocking("RemovePodSandbox", &entry.id, move || {
            host.remove_pod(&record, &step).map_err(RuntimeError::Host)
        })
        .await?;
        self.forget_sandbox(entry).await?;
        tracing::info!(sandbox = %entry.id, "pod sandbox removed");
        Ok(())
    }

    /// Changes sandbox `id`'s record (its stored config, after UpdatePodSandboxResources):
    /// written through, then in memory. It holds the pod's lifecycle lock shared, as a
    /// container operation does: it never interleaves with the pod's run, stop or removal
    /// (so it cannot store a removed pod again), and it does not wait for a container stop
    /// that is waiting out its grace period. The record's own lock orders the writes.
    pub async fn update_sandbox_record(
        &self,
        id: &str,
        change: impl FnOnce(&mut SandboxRecord),
    ) -> Result<SandboxRecord, H> {
        let entry = self.existing_sandbox(id)?;
        let _lifecycle = entry.lifecycle.clone().read_owned().await;
        if self.registry.sandbox_exact(&entry.id).is_none() {
            return Err(not_found("pod sandbox", &entry.id));
        }
        self.persist_sandbox(&entry, change).await
    }
}
