//! The container record, and the container state that is derived rather than stored.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::codec::{decode_json, Record};
use crate::error::DecodeError;
use crate::trees;

/// A container as CreateContainer created it, with what the runtime core learnt of its run
/// (tree `containers`, version 1).
///
/// The run state is written through by berthd's runtime core when it changes: `started_at`
/// by StartContainer, `exit` when the shim reports the exit (or its death); [`Self::state`]
/// derives the CRI state from them. `intent` marks an operation begun and not finished, so a
/// berthd killed in the middle finishes or undoes it at its next start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerRecord {
    /// Container id: 64 lowercase hex characters; the key.
    pub id: String,
    /// Id of the sandbox the container belongs to.
    pub sandbox_id: String,
    /// The runtime handler it runs under, its sandbox's (`SandboxRecord::handler`), kept
    /// here so every runtime command finds it without the sandbox. Empty in records written
    /// before handlers existed: the default handler.
    #[serde(default)]
    pub handler: String,
    /// Container name (`ContainerMetadata.name`).
    pub name: String,
    /// Attempt number (`ContainerMetadata.attempt`).
    pub attempt: u32,
    /// Creation time, nanoseconds since the Unix epoch.
    pub created_at: i64,
    /// Id of the image the container was created from (`sha256:<hex>`).
    pub image_ref: String,
    /// The image as the user named it (`ContainerConfig.image.image`).
    #[serde(default)]
    pub image_name: String,
    /// Labels from the container config.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Annotations from the container config.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// Absolute path of the container's CRI log file (sandbox log directory + `log_path`);
    /// empty when no log was requested.
    #[serde(default)]
    pub log_path: String,
    /// Directory holding the OCI bundle (`config.json`, rootfs mount point, shim files).
    pub bundle_dir: String,
    /// The `ContainerConfig` exactly as received, protobuf-encoded; opaque so a later version
    /// can re-derive fields this version does not store. Base64 in the JSON body.
    #[serde(default, with = "super::base64_bytes")]
    pub config: Vec<u8>,
    /// An operation begun and not finished; `None` at rest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intent: Option<ContainerIntent>,
    /// When the process was started, nanoseconds since the Unix epoch; 0 if never started.
    #[serde(default)]
    pub started_at: i64,
    /// How the process ended, once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit: Option<ContainerExit>,
}

impl ContainerRecord {
    /// The run state the record says: exited once an exit is known, running once started,
    /// else created.
    pub fn state(&self) -> ContainerState {
        ContainerState::observe(self.started_at > 0, self.exit.is_some())
    }
}

/// An operation on a container that berthd recorded before touching the host.
///
/// At start-up berthd finishes or undoes each one: `Creating` and `Removing` are undone /
/// finished by removing everything the container may hold; `Starting` is settled from the
/// exit file and runc's view (started, or the half-started shim ended and created again);
/// `Stopping` is finished with SIGKILL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContainerIntent {
    /// CreateContainer: rootfs and bundle may exist in part (no shim or runc container: those
    /// are StartContainer's).
    Creating,
    /// StartContainer: the shim (`runc create`) and `runc start` may have run.
    Starting,
    /// StopContainer / StopPodSandbox: the process may have been signalled.
    Stopping,
    /// RemoveContainer / RemovePodSandbox: its resources may be partly gone.
    Removing,
}

/// How a container's process ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerExit {
    /// Exit status, 128 + signal when killed, 128 when it failed to start, 255 when unknown.
    pub exit_code: i32,
    /// When it ended (or was found gone), nanoseconds since the Unix epoch.
    pub finished_at: i64,
    /// `Completed`, `Error`, `OOMKilled`, `StartError` or `Unknown`.
    pub reason: String,
    /// Why, when berth had to conclude the exit itself (the start failed, the shim was gone).
    #[serde(default)]
    pub message: String,
}

impl Record for ContainerRecord {
    const TREE: &'static str = trees::CONTAINERS;
    const VERSION: u16 = 1;

    fn key(&self) -> &str {
        &self.id
    }

    fn decode_version(version: u16, body: &[u8]) -> Result<Self, DecodeError> {
        match version {
            1 => decode_json(body),
            other => Err(DecodeError::UnknownVersion(other)),
        }
    }
}

/// Run state of a container, from the record's `started_at` and `exit` (see
/// [`ContainerRecord::state`]); `Unknown` while berthd cannot tell (its probe of the shim
/// and runc failed).
///
/// ```text
///  CreateContainer          StartContainer           process exits
///  ───────────────▶ Created ──────────────▶ Running ───────────────▶ Exited
///                                              │
///                                              └─ probe failed ─▶ Unknown
/// ```
///
/// A start that fails makes the container `Exited` with code 128 and reason `StartError`; a
/// shim that dies without recording the exit makes it `Exited` with code 255 and reason
/// `Unknown`. RemoveContainer is allowed in every state; a `Running` or `Unknown` container is stopped
/// first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContainerState {
    /// Prepared by CreateContainer (rootfs, bundle); no shim, runc container or cgroup yet.
    Created,
    /// The process has been started and has not exited.
    Running,
    /// The exit file exists.
    Exited,
    /// Started, but neither the shim nor an exit file says how it is.
    Unknown,
}

impl ContainerState {
    /// The state from two observations: whether the process was started and whether its exit
    /// file exists. An exit file wins, so a container that failed to start reads as `Exited`.
    pub fn observe(started: bool, exited: bool) -> ContainerState {
        match (started, exited) {
            (_, true) => ContainerState::Exited,
            (true, false) => ContainerState::Running,
            (false, false) => ContainerState::Created,
        }
    }

    /// StartContainer is allowed only from `Created`.
    pub fn can_start(self) -> bool {
        self == ContainerState::Created
    }

    /// There may be a process to signal (StopContainer does work, RemoveContainer stops first).
    pub fn can_stop(self) -> bool {
        matches!(self, ContainerState::Running | ContainerState::Unknown)
    }

    /// Exec, attach and port-forward need a running process.
    pub fn can_exec(self) -> bool {
        self == ContainerState::Running
    }
}

impl fmt::Display for ContainerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ContainerState::Created => "CONTAINER_CREATED",
            ContainerState::Running => "CONTAINER_RUNNING",
            ContainerState::Exited => "CONTAINER_EXITED",
            ContainerState::Unknown => "CONTAINER_UNKNOWN",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observe_prefers_exit_file() {
        assert_eq!(
            ContainerState::observe(false, false),
            ContainerState::Created
        );
        assert_eq!(
            ContainerState::observe(true, false),
            ContainerState::Running
        );
        assert_eq!(ContainerState::observe(true, true), ContainerState::Exited);
        assert_eq!(ContainerState::observe(false, true), ContainerState::Exited);
    }

    #[test]
    fn predicates() {
        use ContainerState::*;
        let start: Vec<_> = [Created, Running, Exited, Unknown]
            .into_iter()
            .filter(|s| s.can_start())
            .collect();
        assert_eq!(start, [Created]);
        assert!(Running.can_stop() && Unknown.can_stop());
        assert!(!Created.can_stop() && !Exited.can_stop());
        assert!(Running.can_exec() && !Exited.can_exec());
    }
}
