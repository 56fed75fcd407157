//! Stopping and removing a sandbox. Both are idempotent and tolerate what a failed or
//! partial creation, or a restart, left behind.

use std::path::Path;

use berth_net::ns::remove_pinned;
use berth_store::{SandboxRecord, SandboxState};

use crate::daemon::Daemon;
use crate::error::ServiceError;
use crate::pod::create::{ns_dir, sandbox_dir};
use crate::pod::pidns::stop_pid_init;
use crate::pod::shm::unmount_shm;

/// Releases the sandbox's network and marks it NotReady.
pub fn stop_sandbox(daemon: &Daemon, record: &SandboxRecord) -> Result<(), ServiceError> {
    let netns = record.netns_path.as_deref().map(Path::new);
    daemon
        .cni
        .teardown(&record.id, netns.filter(|p| p.exists()))?;
    stop_pid_init(&sandbox_dir(daemon, &record.id));
    if record.state != SandboxState::NotReady {
        daemon.store.sandboxes().update(&record.id, |mut current| {
            current.state = SandboxState::NotReady;
            Ok::<_, ServiceError>(current)
        })?;
    }
    Ok(())
}

/// Stops the sandbox and deletes everything it had: namespaces, shm, files, record.
pub fn remove_sandbox(daemon: &Daemon, record: &SandboxRecord) -> Result<(), ServiceError> {
    stop_sandbox(daemon, record)?;
    remove_pinned(&ns_dir(daemon, &record.id))?;
    let dir = sandbox_dir(daemon, &record.id);
    let shm = dir.join("shm");
    unmount_shm(&shm).map_err(|source| ServiceError::Io {
        action: "unmount",
        path: shm.clone(),
        source,
    })?;
    match std::fs::remove_dir_all(&dir) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
            return Err(ServiceError::Io {
                action: "remove",
                path: dir,
                source: err,
            })
        }
        _ => {}
    }
    daemon.store.sandboxes().remove(&record.id)?;
    Ok(())
}
