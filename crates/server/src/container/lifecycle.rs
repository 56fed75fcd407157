//! Stopping and removing containers, shared by the container RPCs and by StopPodSandbox /
//! RemovePodSandbox. Both are idempotent.

use std::time::{Duration, Instant};

use berth_store::{ContainerRecord, ContainerState};
use cri_api::v1;

use crate::container::paths::ContainerPaths;
use crate::container::rootfs::unmount_rootfs;
use crate::container::state::observe;
use crate::container::volumes::{ensure_nothing_mounted, unmount_volumes};
use crate::daemon::Daemon;
use crate::error::ServiceError;

/// How often the exit file is polled while waiting for a container to stop.
const POLL: Duration = Duration::from_millis(50);
/// How long to wait for the exit after SIGKILL.
const KILL_WAIT: Duration = Duration::from_secs(10);
/// SIGKILL.
pub const SIGKILL: i32 = 9;

/// Sends `signal`, waits up to `timeout` for the exit, then SIGKILLs and waits again.
/// A container that is not running is left as it is.
pub async fn stop_container(
    daemon: &Daemon,
    record: &ContainerRecord,
    signal: i32,
    timeout: Duration,
) -> Result<(), ServiceError> {
    let paths = ContainerPaths::new(daemon, &record.id);
    if observe(&paths).state != ContainerState::Running {
        return Ok(());
    }
    let runc = daemon.runc()?;
    if !timeout.is_zero() {
        match runc.kill(&record.id, signal, false).await {
            Ok(()) => {
                if wait_for_exit(&paths, timeout).await {
                    stopped(daemon, record);
                    return Ok(());
                }
            }
            Err(err) => {
                tracing::info!(container = %record.id, error = %err, "stop signal not delivered")
            }
        }
    }
    if let Err(err) = runc.kill(&record.id, SIGKILL, true).await {
        tracing::info!(container = %record.id, error = %err, "SIGKILL not delivered");
    }
    if !wait_for_exit(&paths, KILL_WAIT).await {
        return Err(ServiceError::StopTimeout {
            id: record.id.clone(),
            seconds: (timeout + KILL_WAIT).as_secs(),
        });
    }
    stopped(daemon, record);
    Ok(())
}

/// Publishes the stopped event (once per container).
fn stopped(daemon: &Daemon, record: &ContainerRecord) {
    daemon.events.emit(
        daemon,
        v1::ContainerEventType::ContainerStoppedEvent,
        &record.id,
    );
}

async fn wait_for_exit(paths: &ContainerPaths, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if observe(paths).state == ContainerState::Exited {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Kills the container if it runs, deletes it from runc, unmounts its rootfs and removes
/// its files and record.
pub async fn remove_container(
    daemon: &Daemon,
    record: &ContainerRecord,
) -> Result<(), ServiceError> {
    let paths = ContainerPaths::new(daemon, &record.id);
    stop_container(daemon, record, SIGKILL, Duration::ZERO).await?;
    match daemon.runc()?.delete(&record.id).await {
        Ok(()) => {}
        Err(err) if err.is_not_found() => {}
        Err(err) => return Err(err.into()),
    }
    // The shim writes the exit file and leaves once runc delete has killed a created
    // container; wait for that so its files can go.
    let _ = wait_for_exit(&paths, KILL_WAIT).await;
    let rootfs = paths.rootfs();
    unmount_rootfs(&rootfs).map_err(|source| ServiceError::Io {
        action: "unmount",
        path: rootfs,
        source,
    })?;
    unmount_volumes(&paths.volumes())?;
    ensure_nothing_mounted(&paths.state)?;
    for dir in [&paths.state, &paths.layer] {
        match std::fs::remove_dir_all(dir) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
                return Err(ServiceError::Io {
                    action: "remove",
                    path: dir.clone(),
                    source: err,
                })
            }
            _ => {}
        }
    }
    daemon.store.containers().remove(&record.id)?;
    tracing::info!(container = %record.id, "container removed");
    daemon.events.emit(
        daemon,
        v1::ContainerEventType::ContainerDeletedEvent,
        &record.id,
    );
    Ok(())
}

/// The containers of sandbox `sandbox_id`.
pub fn containers_of(
    daemon: &Daemon,
    sandbox_id: &str,
) -> Result<Vec<ContainerRecord>, ServiceError> {
    Ok(daemon
        .store
        .containers()
        .list()?
        .into_iter()
        .filter(|c| c.sandbox_id == sandbox_id)
        .collect())
}
