//! The host interface: everything the runtime core asks of the machine (namespaces, mounts,
//! CNI, runc, shims, cgroups) behind one small trait. berthd implements it for Linux in the
//! server crate; [`crate::fake::FakeHost`] records calls so the core's rollback and recovery
//! are unit-tested without root.
//!
//! Every method blocks (syscalls, processes): the core calls them on blocking threads only.
//! Every removal is idempotent and tolerates any part already missing, because it is both the
//! undo of a failed operation and the recovery of an interrupted one.

use berth_store::{ContainerRecord, SandboxRecord};

/// Called by the host before each named step of a multi-step operation; the core traces the
/// step and, in test builds, may abort there (see [`crate::failpoint`]).
pub type Step<'a> = &'a (dyn Fn(&'static str) + Sync);

/// What the host sees of a container now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// The shim's PID when it runs (checked to be this container's shim).
    pub shim_pid: Option<u32>,
    /// What the shim's exit file says, once written.
    pub exit: Option<ExitFile>,
    /// runc's view.
    pub runc: RuncView,
}

/// The shim's record of the container's exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitFile {
    /// Exit status, 128 + signal when killed.
    pub exit_code: i32,
    /// When the shim reaped the process, nanoseconds since the Unix epoch.
    pub exited_at: i64,
    /// The cgroup recorded an OOM kill.
    pub oom_killed: bool,
}

/// runc's view of a container (`runc state`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuncView {
    /// Created, not started.
    Created,
    /// The process runs (or is paused).
    Running,
    /// The process has ended.
    Stopped,
    /// runc does not know the container.
    Missing,
    /// runc could not be asked; the message says why.
    Unknown(String),
}

/// The host operations of berth's runtime core.
pub trait Host: Send + Sync + 'static {
    /// A host failure; the server maps it to a gRPC status.
    type Error: std::error::Error + Send + Sync + 'static;
    /// What RunPodSandbox asked for beyond the record (the checked CRI request).
    type PodSpec: Send + 'static;
    /// What CreateContainer asked for beyond the record.
    type ContainerSpec: Send + 'static;

    /// Creates everything the pod needs — directories and files, /dev/shm, pinned
    /// namespaces, PID-namespace init, network — and fills `record` (netns path, IPs,
    /// hostname). Calls `step` before each part. On error the core calls
    /// [`remove_pod`](Self::remove_pod).
    fn create_pod(
        &self,
        record: &mut SandboxRecord,
        spec: &Self::PodSpec,
        step: Step<'_>,
    ) -> Result<(), Self::Error>;

    /// Releases the pod's network (CNI DEL with the cached result) and stops its PID init.
    fn stop_pod(&self, record: &SandboxRecord, step: Step<'_>) -> Result<(), Self::Error>;

    /// Removes everything the pod may hold: network, PID init, namespaces, shm, files.
    fn remove_pod(&self, record: &SandboxRecord, step: Step<'_>) -> Result<(), Self::Error>;

    /// Whether the pod's namespaces and (when it has one) PID init still exist.
    fn pod_alive(&self, record: &SandboxRecord) -> bool;

    /// Prepares the container — rootfs, host paths of its mounts, OCI bundle — and fills
    /// `record` (bundle, log path). No process, runc container or cgroup exists yet: those
    /// are [`start_container`](Self::start_container)'s. Calls `step` before each part. On
    /// error the core calls [`remove_container`](Self::remove_container).
    fn create_container(
        &self,
        record: &mut ContainerRecord,
        sandbox: &SandboxRecord,
        spec: &Self::ContainerSpec,
        step: Step<'_>,
    ) -> Result<(), Self::Error>;

    /// Runs a prepared container: spawns its shim, which runs `runc create` (the cgroup, the
    /// namespaces, the stdio and the log), then `runc start`. Calls `step` before each part.
    /// On error the core calls [`reset_container`](Self::reset_container) and records the
    /// start as failed.
    fn start_container(&self, record: &ContainerRecord, step: Step<'_>) -> Result<(), Self::Error>;

    /// Ends what a failed or interrupted start left — runc's container (killing what runs),
    /// the shim and its state (exit file included) — and keeps what CreateContainer
    /// prepared, so that the container can be started again or removed. Idempotent.
    fn reset_container(&self, record: &ContainerRecord) -> Result<(), Self::Error>;

    /// Whether what CreateContainer prepared is still there (the rootfs mounted, the bundle
    /// written); it is not after a reboot.
    fn container_prepared(&self, record: &ContainerRecord) -> bool;

    /// Sends `signal` to the container's init (`all`: to every process in it).
    fn signal_container(
        &self,
        record: &ContainerRecord,
        signal: i32,
        all: bool,
    ) -> Result<(), Self::Error>;

    /// Removes everything the container may hold: runc's container (killing what runs),
    /// the shim, mounts, directories, and the log file when it was never written to.
    fn remove_container(&self, record: &ContainerRecord) -> Result<(), Self::Error>;

    /// What the host sees of the container now.
    fn probe_container(&self, record: &ContainerRecord) -> Probe;

    /// What the shim's exit file says, once written (the part of a probe that needs no
    /// runtime command: when the shim recorded the exit, runc's view adds nothing).
    fn exit_file(&self, record: &ContainerRecord) -> Option<ExitFile>;

    /// The shim's PID when it runs (cheaper than a full probe).
    fn shim_pid(&self, record: &ContainerRecord) -> Option<u32>;
}
