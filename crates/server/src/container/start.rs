//! Running a prepared container (StartContainer's host work): the shim, which runs
//! `runc create` (cgroup, namespaces, stdio, the CRI log), then `runc start`. CreateContainer
//! only prepared the rootfs and the bundle, as containerd's does, so that creating stays
//! cheap and a container that never starts never holds a process or a cgroup. There is no
//! undo here: the runtime core runs [`reset_container`](crate::container::lifecycle::reset_container)
//! when a part fails, and at start-up when berthd died in the middle.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::Duration;

use berth_runtime::Step;
use berth_shim::ShimSpawn;
use berth_store::ContainerRecord;

use crate::container::convert::stored_config;
use crate::container::paths::ContainerPaths;
use crate::container::shim::block_on;
use crate::daemon::Daemon;
use crate::error::ServiceError;

/// How long the shim may take to report `runc create`'s outcome.
const SHIM_READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Spawns the container's shim, waits for its `runc create`, then runs `runc start`;
/// blocking. `step` is called before each part.
pub fn start_container(
    daemon: &Daemon,
    record: &ContainerRecord,
    step: Step<'_>,
) -> Result<(), ServiceError> {
    let id = &record.id;
    let paths = ContainerPaths::new(daemon, id);
    let config = stored_config(record);
    let runc = daemon.runc(&record.handler)?;
    step("start_container:shim");
    let spawned = berth_shim::spawn(
        &ShimSpawn {
            shim_binary: daemon.shim_binary(),
            id: id.clone(),
            bundle: paths.bundle(),
            runc: runc.binary.clone(),
            runc_root: runc.root.clone(),
            state_dir: paths.shim(),
            log_path: PathBuf::from(&record.log_path),
            stdin: config.stdin,
            stdin_once: config.stdin_once,
            tty: config.tty,
            systemd_cgroup: runc.systemd_cgroup,
        },
        SHIM_READY_TIMEOUT,
    )?;
    tracing::debug!(container = %id, init_pid = spawned.init_pid, "container created by runc");
    step("start_container:runc_start");
    Ok(block_on(runc.start(id))?)
}

/// Whether what CreateContainer prepared is there: the bundle's config.json, and the rootfs
/// mounted (a device of its own: the overlay). Neither survives a reboot (the rootfs is a
/// mount, the bundle under the state directory).
pub fn prepared(daemon: &Daemon, record: &ContainerRecord) -> bool {
    let paths = ContainerPaths::new(daemon, &record.id);
    let rootfs = paths.rootfs();
    let device = |path: &std::path::Path| std::fs::metadata(path).map(|m| m.dev()).ok();
    let mounted = match (device(&rootfs), rootfs.parent().and_then(device)) {
        (Some(own), Some(parent)) => own != parent,
        _ => false,
    };
    mounted && paths.bundle().join("config.json").is_file()
}
