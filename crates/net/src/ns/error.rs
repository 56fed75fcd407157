//! Errors of namespace creation, pinning and entering.

use std::path::PathBuf;

use nix::errno::Errno;

use super::NsKind;

/// Why namespaces cannot be created, pinned, removed or entered.
#[derive(Debug, thiserror::Error)]
pub enum NsError {
    /// A sysctl is not namespaced, not allowed for this pod, or malformed.
    #[error("sysctl {name:?} is not allowed: {reason}")]
    SysctlNotAllowed {
        /// The sysctl as requested.
        name: String,
        /// Why not.
        reason: &'static str,
    },
    /// The hostname cannot be set.
    #[error("invalid hostname {hostname:?}: {reason}")]
    InvalidHostname {
        /// The hostname as requested.
        hostname: String,
        /// Why not.
        reason: &'static str,
    },
    /// The pin directory exists already (a leftover, or an id used twice).
    #[error("namespace directory {} already exists", dir.display())]
    DirExists {
        /// The directory.
        dir: PathBuf,
    },
    /// The pin directory cannot be created.
    #[error("cannot create namespace directory {}: {source}", dir.display())]
    CreateDir {
        /// The directory.
        dir: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// An empty pin file cannot be created.
    #[error("cannot create namespace pin file {}: {source}", path.display())]
    CreatePinFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The worker thread cannot be started.
    #[error("cannot start a namespace thread: {source}")]
    Spawn {
        /// The I/O error.
        source: std::io::Error,
    },
    /// The namespace-creating thread panicked.
    #[error("the namespace-creating thread panicked")]
    WorkerPanicked,
    /// `unshare(2)` failed.
    #[error("cannot create {kinds} namespace(s): unshare: {source}")]
    Unshare {
        /// The kinds requested, comma-separated.
        kinds: String,
        /// The errno.
        source: Errno,
    },
    /// `sethostname(2)` failed.
    #[error("cannot set hostname {hostname:?}: {source}")]
    SetHostname {
        /// The hostname.
        hostname: String,
        /// The errno.
        source: Errno,
    },
    /// A sysctl cannot be written (for instance, it does not exist in the namespace).
    #[error("cannot set sysctl {name:?} ({}): {source}", path.display())]
    Sysctl {
        /// The sysctl as requested.
        name: String,
        /// Its `/proc/sys` file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// /proc/sys is read-only where berthd runs and the thread's own mount namespace, in
    /// which it is remounted writable for the pod's sysctls, could not be set up or left.
    #[error("cannot make /proc/sys writable for the pod's sysctls ({step}): {source}")]
    ProcSysWritable {
        /// What failed.
        step: &'static str,
        /// The error.
        source: std::io::Error,
    },
    /// The bind mount of a namespace onto its pin file failed.
    #[error("cannot pin the {kind} namespace at {}: {source}", path.display())]
    Pin {
        /// The namespace kind.
        kind: NsKind,
        /// The pin file.
        path: PathBuf,
        /// The errno.
        source: Errno,
    },
    /// A pin cannot be unmounted.
    #[error("cannot unmount namespace pin {}: {source}", path.display())]
    Unpin {
        /// The pin file.
        path: PathBuf,
        /// The errno.
        source: Errno,
    },
    /// A pin file cannot be removed.
    #[error("cannot remove namespace pin file {}: {source}", path.display())]
    RemoveFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The pin directory cannot be removed.
    #[error("cannot remove namespace directory {}: {source}", dir.display())]
    RemoveDir {
        /// The directory.
        dir: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A namespace pin cannot be opened to enter it.
    #[error("cannot open namespace {}: {source}", path.display())]
    Open {
        /// The pin (or `/proc/.../ns/...` file).
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// `setns(2)` into a pin failed (for instance, it is not a namespace of that kind).
    #[error("cannot enter the {kind} namespace {}: {source}", path.display())]
    Enter {
        /// The namespace kind.
        kind: NsKind,
        /// The pin.
        path: PathBuf,
        /// The errno.
        source: Errno,
    },
    /// A pod user namespace needs the pod's own network, IPC and UTS namespaces.
    #[error("a pod user namespace needs the pod's own network, IPC and UTS namespaces")]
    UsernsNeedsPodNamespaces,
    /// The namespace holder process (`berth-shim ns-holder`) cannot be run or talked to.
    #[error("cannot run the namespace holder {}: {source}", program.display())]
    Holder {
        /// The program.
        program: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The namespace holder could not create the namespaces.
    #[error("the namespace holder failed: {message}")]
    HolderFailed {
        /// What it said.
        message: String,
    },
    /// A holder's namespace cannot be bind-mounted onto its pin file.
    #[error("cannot pin the {name} namespace at {}: {source}", path.display())]
    PinFrom {
        /// The namespace's name under `/proc/<pid>/ns`.
        name: &'static str,
        /// The pin file.
        path: PathBuf,
        /// The errno.
        source: Errno,
    },
    /// A user namespace's ID map cannot be written.
    #[error("cannot write the ID map {}: {source}", path.display())]
    IdMap {
        /// `/proc/<pid>/uid_map` or `gid_map`.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}
