//! Shim supervision: one task per started container whose process has not been seen to end
//! (a created container has no shim until StartContainer spawns it), waiting
//! on a pidfd of its shim. When the shim ends — normally after writing the exit file, or
//! killed — the container's exit is recorded at once: from the exit file, or, when the shim
//! died without writing one, as 255 / `Unknown` after what is left of the container is
//! killed. Kernels without pidfd fall back to checking the shim every [`POLL`].

use std::sync::Arc;
use std::time::Duration;

use berth_store::{ContainerExit, ContainerRecord};

use crate::host::{ExitFile, Probe};
use crate::registry::ContainerEntry;
use crate::{pidfd, Host, Runtime, RuntimeError, SIGKILL};

/// How often a shim is checked where pidfds are not available.
pub const POLL: Duration = Duration::from_millis(500);

/// The exit reason of a container the kernel killed for memory (kubelet's term).
pub const OOM_KILLED: &str = "OOMKilled";

/// The exit the shim recorded, in the record's terms.
pub fn exit_from_file(file: &ExitFile) -> ContainerExit {
    ContainerExit {
        exit_code: file.exit_code,
        finished_at: file.exited_at,
        reason: if file.oom_killed {
            OOM_KILLED
        } else if file.exit_code == 0 {
            "Completed"
        } else {
            "Error"
        }
        .into(),
        message: String::new(),
    }
}

/// The exit berth concludes when the shim is gone and left no exit file.
pub fn exit_lost(why: &str) -> ContainerExit {
    ContainerExit {
        exit_code: 255,
        finished_at: crate::now_nanos(),
        reason: "Unknown".into(),
        message: why.to_owned(),
    }
}

/// Whether the container has a shim to watch: it was started and its exit is not known.
fn watched(record: &ContainerRecord) -> bool {
    record.started_at > 0 && record.exit.is_none()
}

impl<H: Host> Runtime<H> {
    /// Starts watching the container's shim: once started (a created container has no
    /// shim yet, and one never seen must not be declared gone) and while its exit is
    /// unknown.
    pub(crate) fn supervise(self: &Arc<Self>, entry: Arc<ContainerEntry>) {
        if !watched(&entry.record()) {
            return;
        }
        let runtime = self.clone();
        let id = entry.id.clone();
        let task = tokio::spawn(async move {
            let id = entry.id.clone();
            runtime.clone().watch_shim(entry).await;
            runtime.supervisors().remove(&id);
        });
        self.supervisors().insert(id, task.abort_handle());
    }

    fn supervisors(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, tokio::task::AbortHandle>>
    {
        self.supervisors.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn shim_pid(&self, entry: &ContainerEntry) -> Option<u32> {
        let host = self.host.clone();
        let record = entry.record();
        self.blocking("find shim", &entry.id, move || Ok(host.shim_pid(&record)))
            .await
            .ok()
            .flatten()
    }

    async fn watch_shim(self: Arc<Self>, entry: Arc<ContainerEntry>) {
        if let Some(pid) = self.shim_pid(&entry).await {
            match pidfd::open(pid) {
                Ok(fd) => {
                    // The fd pins the process: check once more that it is still our shim
                    // (the PID could have been reused in between).
                    if self.shim_pid(&entry).await == Some(pid) {
                        if let Err(err) = pidfd::exited(fd).await {
                            tracing::warn!(container = %entry.id, error = %err, "cannot wait on the shim's pidfd; polling");
                            self.poll_shim(&entry, pid).await;
                        }
                    }
                }
                Err(err) if err.raw_os_error() == Some(libc::ESRCH) => {}
                Err(err) => {
                    tracing::debug!(container = %entry.id, error = %err, "no pidfd; polling the shim");
                    self.poll_shim(&entry, pid).await;
                }
            }
        }
        self.shim_gone(&entry).await;
    }

    async fn poll_shim(&self, entry: &ContainerEntry, pid: u32) {
        while self.registry.container_exact(&entry.id).is_some()
            && self.shim_pid(entry).await == Some(pid)
        {
            tokio::time::sleep(POLL).await;
        }
    }

    /// The shim is gone: records the container's exit from its file, or as lost.
    pub(crate) async fn shim_gone(&self, entry: &ContainerEntry) {
        if self.registry.container_exact(&entry.id).is_none() || !watched(&entry.record()) {
            return;
        }
        // The exit file alone when the shim wrote one (it does before it ends): a full probe
        // asks runc too, one more process on every container's exit.
        let exit = match self.exit_file(entry).await {
            Some(file) => exit_from_file(&file),
            None => {
                let probe = self.probe(entry).await;
                match &probe.exit {
                    Some(file) => exit_from_file(file),
                    None => {
                        self.kill_leftovers(entry, &probe).await;
                        exit_lost("berth-shim ended without recording the container's exit; what was left of the container was killed")
                    }
                }
            }
        };
        self.record_exit(entry, exit).await;
    }

    async fn exit_file(&self, entry: &ContainerEntry) -> Option<ExitFile> {
        let host = self.host.clone();
        let record = entry.record();
        self.blocking("read exit file", &entry.id, move || {
            Ok(host.exit_file(&record))
        })
        .await
        .ok()
        .flatten()
    }

    pub(crate) async fn probe(&self, entry: &ContainerEntry) -> Probe {
        let host = self.host.clone();
        let record = entry.record();
        let probed = self
            .blocking(
                "probe",
                &entry.id,
                move || Ok(host.probe_container(&record)),
            )
            .await;
        probed.unwrap_or_else(|err: RuntimeError<H::Error>| Probe {
            shim_pid: None,
            exit: None,
            runc: crate::RuncView::Unknown(err.to_string()),
        })
    }

    /// Kills the container's processes when runc still sees any (the shim that held them
    /// is gone, so nothing else would).
    pub(crate) async fn kill_leftovers(&self, entry: &ContainerEntry, probe: &Probe) {
        if matches!(
            probe.runc,
            crate::RuncView::Missing | crate::RuncView::Stopped
        ) {
            return;
        }
        let host = self.host.clone();
        let record = entry.record();
        let killed = self
            .blocking("kill", &entry.id, move || {
                host.signal_container(&record, SIGKILL, true)
                    .map_err(RuntimeError::Host)
            })
            .await;
        if let Err(err) = killed {
            tracing::info!(container = %entry.id, error = %err, "nothing left to kill");
        }
    }
}
