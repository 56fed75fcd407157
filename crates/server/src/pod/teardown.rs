//! Stopping and removing a sandbox's host resources. Both are idempotent and tolerate any
//! part missing: they are the undo of a failed RunPodSandbox and the recovery of an
//! interrupted one as well as the work of StopPodSandbox and RemovePodSandbox. The runtime
//! core keeps the record.

use berth_net::ns::remove_pinned;
use berth_runtime::Step;
use berth_store::{SandboxIntent, SandboxRecord};
use cri_api::v1;

use crate::container::lifecycle::remove_tree;
use crate::daemon::Daemon;
use crate::error::ServiceError;
use crate::pod::convert::stored_config;
use crate::pod::create::{namespace_modes, ns_dir, pid_mode, sandbox_dir};
use crate::pod::pidns::{pid_namespace, stop_pid_init};
use crate::pod::shm::unmount_shm;

fn netns_path(daemon: &Daemon, record: &SandboxRecord) -> std::path::PathBuf {
    record
        .netns_path
        .as_ref()
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| ns_dir(daemon, &record.id).join("net"))
}

/// CNI DEL from the cached attachment, inside the pod's netns while it is still pinned: where
/// the record says, or where a creation interrupted before it recorded it put it (the
/// bridge plugin needs the netns to remove its masquerade rules).
fn release_network(daemon: &Daemon, record: &SandboxRecord) -> Result<(), ServiceError> {
    let netns = netns_path(daemon, record);
    Ok(daemon
        .cni
        .teardown(&record.id, Some(netns.as_path()).filter(|p| p.exists()))?)
}

/// Releases the sandbox's network (CNI DEL from the cached attachment, which lives under
/// `root` so it survives a reboot) and stops its PID init.
pub fn stop_sandbox(
    daemon: &Daemon,
    record: &SandboxRecord,
    step: Step<'_>,
) -> Result<(), ServiceError> {
    release_network(daemon, record)?;
    step("stop_pod_sandbox:network_released");
    stop_pid_init(&sandbox_dir(daemon, &record.id));
    Ok(())
}

/// Deletes everything the sandbox has: network, PID init, namespaces, shm, files.
pub fn remove_sandbox(
    daemon: &Daemon,
    record: &SandboxRecord,
    step: Step<'_>,
) -> Result<(), ServiceError> {
    if record.intent == Some(SandboxIntent::Creating) {
        // A pod that never ran: one more DEL, then its attachment is forgotten even if the
        // DEL failed (a plugin that cannot delete would otherwise keep the pod's namespaces
        // and mounts pinned forever); the failure is logged with what it may have left.
        if let Err(err) = daemon
            .cni
            .abandon(&record.id, Some(&netns_path(daemon, record)))
        {
            tracing::warn!(sandbox = %record.id, error = %err, "CNI DEL of a pod that never ran failed; what the plugin allocated for it may be left");
        }
    } else {
        release_network(daemon, record)?;
    }
    step("remove_pod_sandbox:network_released");
    let dir = sandbox_dir(daemon, &record.id);
    stop_pid_init(&dir);
    remove_pinned(&ns_dir(daemon, &record.id))?;
    step("remove_pod_sandbox:namespaces_removed");
    let shm = dir.join("shm");
    unmount_shm(&shm).map_err(|source| ServiceError::Io {
        action: "unmount",
        path: shm.clone(),
        source,
    })?;
    remove_tree(&dir)
}

/// Whether the sandbox's pinned namespaces, and its PID init when it has one, still exist
/// (after a reboot none do).
pub fn sandbox_alive(daemon: &Daemon, record: &SandboxRecord) -> bool {
    let config = stored_config(record);
    let (host_network, host_ipc, _) = namespace_modes(&config);
    let pins = ns_dir(daemon, &record.id);
    let pinned = |name: &str| berth_net::ns::is_pinned(&pins.join(name));
    if !(host_network || pinned("net") && pinned("uts")) {
        return false;
    }
    if !host_ipc && !pinned("ipc") {
        return false;
    }
    if pid_mode(&config) == v1::NamespaceMode::Pod as i32
        && pid_namespace(&sandbox_dir(daemon, &record.id)).is_none()
    {
        return false;
    }
    true
}
