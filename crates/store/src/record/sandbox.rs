//! The pod sandbox record and its state machine.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::codec::{decode_json, Record};
use crate::error::{DecodeError, StoreError};
use crate::trees;

/// A pod sandbox as RunPodSandbox created it (tree `sandboxes`, version 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxRecord {
    /// Sandbox id: 64 lowercase hex characters; the key.
    pub id: String,
    /// Pod name (`PodSandboxMetadata.name`).
    pub name: String,
    /// Pod namespace (`PodSandboxMetadata.namespace`).
    pub namespace: String,
    /// Pod UID (`PodSandboxMetadata.uid`).
    pub uid: String,
    /// Attempt number (`PodSandboxMetadata.attempt`).
    pub attempt: u32,
    /// Creation time, nanoseconds since the Unix epoch.
    pub created_at: i64,
    /// Labels from the sandbox config.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Annotations from the sandbox config.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// Runtime handler (RuntimeClass) as RunPodSandbox named it; empty for the default.
    #[serde(default)]
    pub runtime_handler: String,
    /// The configured handler the pod and its containers run under: `runtime_handler`, or
    /// the default handler's name when that was empty. Kept, so a pod keeps its runtime when
    /// the default changes. Empty in records written before handlers existed: the default.
    #[serde(default)]
    pub handler: String,
    /// Path of the pinned network namespace (under `/run/berth/ns/`); `None` for host network.
    #[serde(default)]
    pub netns_path: Option<String>,
    /// Primary pod IP from CNI; `None` for host network or before networking is set up.
    #[serde(default)]
    pub ip: Option<String>,
    /// Further pod IPs from CNI (dual stack).
    #[serde(default)]
    pub additional_ips: Vec<String>,
    /// Lifecycle state; see [`SandboxState`].
    pub state: SandboxState,
    /// Directory for the logs of the pod's containers (`PodSandboxConfig.log_directory`).
    #[serde(default)]
    pub log_directory: String,
    /// Hostname of the pod.
    #[serde(default)]
    pub hostname: String,
    /// Parent cgroup of the pod (`LinuxPodSandboxConfig.cgroup_parent`).
    #[serde(default)]
    pub cgroup_parent: String,
    /// The `PodSandboxConfig` exactly as received, protobuf-encoded. Kept opaque so a later
    /// version can re-derive fields this version does not store. Base64 in the JSON body.
    #[serde(default, with = "super::base64_bytes")]
    pub config: Vec<u8>,
    /// An operation begun and not finished; `None` at rest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intent: Option<SandboxIntent>,
}

/// An operation on a sandbox that berthd recorded before touching the host.
///
/// A sandbox being created is written first with `Creating` (and every resource it may come
/// to hold is named by its ID), so a crash at any step is undone at the next start by an
/// idempotent teardown; `Stopping` and `Removing` are finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SandboxIntent {
    /// RunPodSandbox: directories, shm, namespaces, PID init and network may exist in part.
    Creating,
    /// StopPodSandbox: containers killed and network released in part.
    Stopping,
    /// RemovePodSandbox: containers and resources removed in part.
    Removing,
}

impl SandboxRecord {
    /// Move to `to` if the state machine allows it (see [`SandboxState::can_become`]).
    pub fn transition(&mut self, to: SandboxState) -> Result<(), StoreError> {
        if !self.state.can_become(to) {
            return Err(StoreError::InvalidTransition {
                id: self.id.clone(),
                from: self.state,
                to,
            });
        }
        self.state = to;
        Ok(())
    }
}

impl Record for SandboxRecord {
    const TREE: &'static str = trees::SANDBOXES;
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

/// Stored sandbox state.
///
/// ```text
///  RunPodSandbox          StopPodSandbox, or a failed setup/recovery     RemovePodSandbox
///  (all set up) ──▶ Ready ─────────────────────────────────────▶ NotReady ──────────────▶ (removed)
/// ```
///
/// A sandbox is written as `Ready` only once everything it needs exists; the only transition is
/// `Ready → NotReady`. Stopping a `NotReady` sandbox again is a no-op, which `can_become`
/// allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SandboxState {
    /// Namespaces and network are set up; containers can be created in it.
    Ready,
    /// Stopped, or its resources are gone or unknown; it only awaits removal.
    NotReady,
}

impl SandboxState {
    /// Whether a record in this state may be set to `to`. Staying in the same state is allowed
    /// (idempotent stop); the only change is `Ready → NotReady`.
    pub fn can_become(self, to: SandboxState) -> bool {
        self == to || matches!((self, to), (SandboxState::Ready, SandboxState::NotReady))
    }

    /// Whether containers may be created in the sandbox.
    pub fn can_create_containers(self) -> bool {
        self == SandboxState::Ready
    }
}

impl fmt::Display for SandboxState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SandboxState::Ready => "SANDBOX_READY",
            SandboxState::NotReady => "SANDBOX_NOTREADY",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions() {
        use SandboxState::*;
        assert!(Ready.can_become(NotReady));
        assert!(NotReady.can_become(NotReady));
        assert!(Ready.can_become(Ready));
        assert!(!NotReady.can_become(Ready));
        assert!(Ready.can_create_containers());
        assert!(!NotReady.can_create_containers());
    }

    #[test]
    fn state_is_snake_case_in_json() {
        assert_eq!(
            serde_json::to_string(&SandboxState::NotReady).unwrap(),
            r#""not_ready""#
        );
    }
}
