//! Removing a container's host resources: idempotent and tolerant of any part missing, as
//! it is the undo of a failed CreateContainer and the recovery of an interrupted one as well
//! as RemoveContainer's work; and resetting one whose start failed (runc's container and the
//! shim only). The runtime core has stopped the process and keeps the record.

use std::path::Path;
use std::time::{Duration, Instant};

use berth_store::ContainerRecord;

use crate::container::paths::ContainerPaths;
use crate::container::rootfs::unmount_rootfs;
use crate::container::runc::Runc;
use crate::container::shim::{block_on, exit_file, shim_pid};
use crate::container::volumes::{ensure_nothing_mounted, unmount_volumes};
use crate::daemon::Daemon;
use crate::error::ServiceError;

/// How long the shim may take to leave after `runc delete`.
const SHIM_EXIT_WAIT: Duration = Duration::from_secs(10);

/// Deletes the container from runc (killing what runs), ends its shim, unmounts its rootfs
/// and volumes, moves its directories into the trash (see [`super::trash`]), and removes
/// its log file when nothing was ever written to it (a container that never ran must not
/// look like one that did to kubelet).
pub fn remove_container(daemon: &Daemon, record: &ContainerRecord) -> Result<(), ServiceError> {
    let paths = ContainerPaths::new(daemon, &record.id);
    end_in_runtime(daemon, record, &paths)?;
    let rootfs = paths.rootfs();
    unmount_rootfs(&rootfs).map_err(|source| ServiceError::Io {
        action: "unmount",
        path: rootfs,
        source,
    })?;
    unmount_volumes(&paths.volumes())?;
    // Never delete through a mount that could not be removed.
    ensure_nothing_mounted(&[&paths.state, &paths.layer])?;
    daemon.container_trash.discard(&paths)?;
    if record.started_at == 0 && !record.log_path.is_empty() {
        let log = Path::new(&record.log_path);
        if std::fs::metadata(log).is_ok_and(|m| m.is_file() && m.len() == 0) {
            let _ = std::fs::remove_file(log);
        }
    }
    Ok(())
}

/// Ends what a failed or interrupted StartContainer left — runc's container, the shim and
/// its state directory (an exit file there would be read as the next start's) — and keeps
/// the rootfs and the bundle CreateContainer prepared.
pub fn reset_container(daemon: &Daemon, record: &ContainerRecord) -> Result<(), ServiceError> {
    let paths = ContainerPaths::new(daemon, &record.id);
    end_in_runtime(daemon, record, &paths)?;
    remove_tree(&paths.shim())
}

/// Removes `dir` and everything in it; one already gone is fine.
pub fn remove_tree(dir: &Path) -> Result<(), ServiceError> {
    match std::fs::remove_dir_all(dir) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(ServiceError::Io {
            action: "remove",
            path: dir.to_owned(),
            source: err,
        }),
        _ => Ok(()),
    }
}

/// Deletes the container from runc (killing what runs) and ends its shim. A container
/// that was never started has neither: nothing runs then but a look at runc's state
/// directory.
fn end_in_runtime(
    daemon: &Daemon,
    record: &ContainerRecord,
    paths: &ContainerPaths,
) -> Result<(), ServiceError> {
    let runc = daemon.runc(&record.handler)?;
    // A running container is killed by `runc delete --force`; its shim then records the
    // exit and leaves. A shim that is past that (exit file written) deletes runc's
    // container itself before it leaves, so it is only waited for.
    if shim_pid(daemon, &record.id).is_some() && exit_file(paths).is_none() {
        delete_in_runc(&runc, &record.id)?;
    }
    // A shim that does not leave is killed (it is checked to be this container's shim).
    let deadline = Instant::now() + SHIM_EXIT_WAIT;
    while let Some(pid) = shim_pid(daemon, &record.id) {
        if Instant::now() >= deadline {
            tracing::warn!(container = %record.id, pid, "shim did not leave after runc delete; killing it");
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    // runc still has the container when its shim was killed, or never started it.
    if runc.has_container(&record.id) {
        delete_in_runc(&runc, &record.id)?;
    }
    Ok(())
}

/// `runc delete --force`; a container runc does not know is fine.
fn delete_in_runc(runc: &Runc, id: &str) -> Result<(), ServiceError> {
    match block_on(runc.delete(id)) {
        Err(err) if !err.is_not_found() => Err(err.into()),
        _ => Ok(()),
    }
}
