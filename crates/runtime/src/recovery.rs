//! Start-up: the registry is loaded from the store, then every object is reconciled with the
//! host before berthd serves.
//!
//! Containers first (a pod's removal needs its containers settled):
//!
//! | record says              | host says                        | outcome                                   |
//! |--------------------------|----------------------------------|-------------------------------------------|
//! | intent `Creating`        | anything                         | removed (host, then record)               |
//! | intent `Removing`        | anything                         | removal finished                          |
//! | intent `Starting`        | runc: running / stopped, or an   | started (then as below)                   |
//! |                          | exit file (the shim deleted it)  |                                           |
//! |                          | otherwise (shim being spawned,   | shim and runc's container ended: created  |
//! |                          | runc: created / missing / can't  | again, can be started; when they cannot   |
//! |                          | tell)                            | be ended, exited 128 `StartError`         |
//! | intent `Stopping`        | anything                         | intent cleared, SIGKILL if alive          |
//! | exit recorded            | —                                | exited                                    |
//! | never started, no exit   | rootfs and bundle there          | created (no shim expected, none watched)  |
//! |                          | rootfs or bundle gone (reboot)   | exited 255 `Unknown`                      |
//! | started, no exit         | shim runs                        | supervised                                |
//! |                          | shim gone, exit file             | exited with the file's code               |
//! |                          | shim gone, no exit file          | leftovers killed, exited 255 `Unknown`    |
//!
//! An interrupted start is undone rather than finished: kubelet saw its StartContainer fail
//! (the connection dropped) and either starts the container again or replaces it, and a
//! container left running that kubelet believes failed would run twice.
//!
//! Then sandboxes: `Creating` → removed; `Removing` → removal finished; `Stopping` → stop
//! finished; `Ready` whose namespaces (or PID init) are gone, as after a reboot → stopped:
//! CNI DEL with the cached result releases its IP and port mappings, and it is NotReady, so
//! kubelet recreates and removes it. Failures are logged and retried at the next start.

use std::sync::Arc;

use berth_store::{ContainerIntent, SandboxIntent, SandboxState};

use crate::containers::start_error;
use crate::registry::{ContainerEntry, SandboxEntry};
use crate::supervise::exit_lost;
use crate::{Host, Result, RuncView, Runtime, RuntimeError, SIGKILL};

impl<H: Host> Runtime<H> {
    /// Reads every record into the registry.
    pub(crate) async fn load(&self) -> Result<(), H> {
        let store = self.store.clone();
        let (sandboxes, containers) = self
            .blocking("load", "store", move || {
                Ok((
                    store.sandboxes().list_with_errors()?,
                    store.containers().list_with_errors()?,
                ))
            })
            .await?;
        for record in sandboxes {
            match record {
                Ok(record) => {
                    let id = record.id.clone();
                    if let Err(holder) = self.registry.add_sandbox(record) {
                        tracing::error!(sandbox = %id, holder = %holder, "two pod sandboxes with one name; the second is ignored");
                    }
                }
                Err(err) => tracing::error!(error = %err, "unreadable pod sandbox record skipped"),
            }
        }
        for record in containers {
            match record {
                Ok(record) => {
                    let id = record.id.clone();
                    if let Err(holder) = self.registry.add_container(record) {
                        tracing::error!(container = %id, holder = %holder, "two containers with one name; the second is ignored");
                    }
                }
                Err(err) => tracing::error!(error = %err, "unreadable container record skipped"),
            }
        }
        Ok(())
    }

    /// Reconciles every object with the host.
    pub(crate) async fn recover(self: &Arc<Self>) {
        for entry in self.registry.all_containers() {
            if let Err(err) = self.recover_container(&entry).await {
                tracing::error!(container = %entry.id, error = %err, "recovery failed; retried at the next start");
            }
        }
        for entry in self.registry.all_sandboxes() {
            if let Err(err) = self.recover_sandbox(&entry).await {
                tracing::error!(sandbox = %entry.id, error = %err, "recovery failed; retried at the next start");
            }
        }
        tracing::info!(
            sandboxes = self.registry.all_sandboxes().len(),
            containers = self.registry.all_containers().len(),
            "runtime state recovered"
        );
    }

    async fn recover_container(self: &Arc<Self>, entry: &Arc<ContainerEntry>) -> Result<(), H> {
        let record = entry.record();
        match record.intent {
            Some(ContainerIntent::Creating) => {
                tracing::info!(container = %entry.id, "undoing an interrupted CreateContainer");
                self.undo_container(entry).await;
                return Ok(());
            }
            Some(ContainerIntent::Removing) => {
                tracing::info!(container = %entry.id, "finishing an interrupted RemoveContainer");
                let _op = entry.op_lock().await;
                return self.remove_container_locked(entry).await;
            }
            Some(ContainerIntent::Starting) => {
                let probe = self.probe(entry).await;
                tracing::info!(container = %entry.id, runc = ?probe.runc, "settling an interrupted StartContainer");
                // The shim deletes runc's container once it recorded the exit, so a
                // container that ran to its end before the record was updated is missing
                // from runc but has an exit file.
                let ran = probe.exit.is_some()
                    || matches!(probe.runc, RuncView::Running | RuncView::Stopped);
                if ran {
                    self.persist_container(entry, |r| {
                        r.intent = None;
                        r.started_at = crate::now_nanos();
                    })
                    .await?;
                } else if self.reset(entry).await {
                    self.persist_container(entry, |r| r.intent = None).await?;
                } else {
                    self.persist_container(entry, |r| {
                        r.intent = None;
                        r.exit = Some(start_error(
                            "berthd restarted during StartContainer and could not end the half-started container",
                        ));
                    })
                    .await?;
                }
            }
            Some(ContainerIntent::Stopping) => {
                tracing::info!(container = %entry.id, "finishing an interrupted stop");
                self.persist_container(entry, |r| r.intent = None).await?;
                let host = self.host.clone();
                let record = entry.record();
                if let Err(err) = self
                    .blocking("kill", &entry.id, move || {
                        host.signal_container(&record, SIGKILL, true)
                            .map_err(RuntimeError::Host)
                    })
                    .await
                {
                    tracing::info!(container = %entry.id, error = %err, "nothing left to kill");
                }
            }
            None => {}
        }
        let record = entry.record();
        if record.exit.is_some() {
            return Ok(());
        }
        if record.started_at == 0 {
            // Created, never started: no shim to find. What CreateContainer prepared is
            // gone after a reboot, and such a container could never start.
            let host = self.host.clone();
            let prepared = self
                .blocking("probe", &entry.id, move || {
                    Ok(host.container_prepared(&record))
                })
                .await?;
            if !prepared {
                self.record_exit(
                    entry,
                    exit_lost(
                        "the container's rootfs or bundle was gone at start-up (node rebooted)",
                    ),
                )
                .await;
            }
            return Ok(());
        }
        let probe = self.probe(entry).await;
        if probe.shim_pid.is_some() {
            self.supervise(entry.clone());
            return Ok(());
        }
        match &probe.exit {
            Some(file) => {
                self.record_exit(entry, crate::supervise::exit_from_file(file))
                    .await
            }
            None => {
                self.kill_leftovers(entry, &probe).await;
                self.record_exit(
                    entry,
                    exit_lost("berth-shim was gone at start-up and left no exit file (node rebooted, or the shim was killed)"),
                )
                .await;
            }
        }
        Ok(())
    }

    async fn recover_sandbox(self: &Arc<Self>, entry: &Arc<SandboxEntry>) -> Result<(), H> {
        let record = entry.record();
        match record.intent {
            Some(SandboxIntent::Creating) => {
                tracing::info!(sandbox = %entry.id, "undoing an interrupted RunPodSandbox");
                self.undo_pod(entry).await;
                Ok(())
            }
            Some(SandboxIntent::Removing) => {
                tracing::info!(sandbox = %entry.id, "finishing an interrupted RemovePodSandbox");
                let _lifecycle = entry.lifecycle.clone().write_owned().await;
                self.remove_pod_locked(entry).await
            }
            Some(SandboxIntent::Stopping) => {
                tracing::info!(sandbox = %entry.id, "finishing an interrupted StopPodSandbox");
                let _lifecycle = entry.lifecycle.clone().write_owned().await;
                self.stop_pod_locked(entry).await
            }
            None if record.state == SandboxState::Ready => {
                let host = self.host.clone();
                let alive = self
                    .blocking("probe", &entry.id, move || Ok(host.pod_alive(&record)))
                    .await?;
                if alive {
                    return Ok(());
                }
                tracing::warn!(sandbox = %entry.id, "pod sandbox namespaces are gone; stopping it");
                let _lifecycle = entry.lifecycle.clone().write_owned().await;
                self.stop_pod_locked(entry).await
            }
            None => Ok(()),
        }
    }
}
