//! Pod namespaces created without a pause process and kept alive by bind mounts ("pins").
//!
//! [`create_pinned`] makes the pod's network, IPC and UTS namespaces on a dedicated,
//! short-lived thread (namespace membership is per thread, so the caller's thread and
//! the rest of the process never change namespace), sets the hostname and the pod's
//! sysctls from inside them, and bind-mounts `/proc/thread-self/ns/<kind>` onto empty
//! files `dir/{net,ipc,uts}` so the namespaces outlive the thread. Containers join them
//! through those paths.
//!
//! [`create_pinned_in_userns`] does the same for a pod with a user namespace of its own: the
//! user namespace (pinned at `dir/user`) and, owned by it, the network, IPC and UTS
//! namespaces, created by a single-threaded holder process (see its module).
//!
//! Assumptions and rules:
//! - Everything is validated (sysctl names, hostname) before anything is created.
//! - A failure after something was created undoes it (pins unmounted, `dir` removed)
//!   before the error is returned; `dir` must not exist beforehand.
//! - Sysctls are written to `/proc/sys/...` by the thread that is inside the new
//!   namespaces: `/proc/sys/net` and the IPC sysctls resolve the *current task's*
//!   namespaces, so this lands in the pod's namespaces, not the host's. (`/proc/net`
//!   by contrast is `/proc/self/net`, the thread-group leader's view: use
//!   `/proc/thread-self/net` inside [`in_netns`].)
//! - The new network namespace holds only `lo`, down; CNI (the `loopback` plugin)
//!   brings it up. Sysctls of interfaces CNI creates (`net.ipv4.conf.eth0.*`) cannot be
//!   set here: pass those to [`apply_sysctls`] after CNI setup.
//! - [`remove_pinned`] is idempotent and also cleans up a partial `dir`.
//! - The mounts live in the caller's mount namespace: berthd must not run in a private
//!   mount namespace that containers' runtimes cannot see.

mod enter;
mod error;
mod pin;
mod sys;
mod sysctl;
mod userns;

#[cfg(test)]
mod fake;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

pub use enter::{apply_sysctls, in_namespace, in_netns};
pub use error::NsError;
pub use userns::{create_pinned_in_userns, IdMap, UserNamespaceRequest, USER_PIN};

/// A kind of namespace berth pins for a pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NsKind {
    /// Network namespace.
    Net,
    /// System V IPC and POSIX message queue namespace.
    Ipc,
    /// Hostname namespace.
    Uts,
}

impl NsKind {
    /// Every kind, in pinning order.
    pub const ALL: [NsKind; 3] = [NsKind::Net, NsKind::Ipc, NsKind::Uts];

    /// The name the kernel uses under `/proc/<pid>/ns/`, also the pin file's name.
    pub fn name(self) -> &'static str {
        match self {
            NsKind::Net => "net",
            NsKind::Ipc => "ipc",
            NsKind::Uts => "uts",
        }
    }

    fn clone_flag(self) -> nix::sched::CloneFlags {
        use nix::sched::CloneFlags;
        match self {
            NsKind::Net => CloneFlags::CLONE_NEWNET,
            NsKind::Ipc => CloneFlags::CLONE_NEWIPC,
            NsKind::Uts => CloneFlags::CLONE_NEWUTS,
        }
    }
}

impl std::fmt::Display for NsKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Which namespaces a pod gets of its own, and what to set inside them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NamespaceRequest {
    /// A new network namespace (false: the pod uses the host network).
    pub net: bool,
    /// A new IPC namespace (false: host IPC).
    pub ipc: bool,
    /// A new UTS namespace (false: the host's hostname).
    pub uts: bool,
    /// Hostname to set in the new UTS namespace (needs `uts`).
    pub hostname: Option<String>,
    /// Sysctls, `a.b.c` or `a/b/c` spelling, with their values. Only namespaced ones are
    /// accepted: `net.*` with a new network namespace; `kernel.shm*`, `kernel.msg*`,
    /// `kernel.sem` and `fs.mqueue.*` with a new IPC namespace.
    pub sysctls: Vec<(String, String)>,
}

/// The pin files of a pod's namespaces; `None` for a kind that was not requested.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PinnedNamespaces {
    /// The network namespace pin (`dir/net`).
    pub net: Option<PathBuf>,
    /// The IPC namespace pin (`dir/ipc`).
    pub ipc: Option<PathBuf>,
    /// The UTS namespace pin (`dir/uts`).
    pub uts: Option<PathBuf>,
    /// The user namespace pin (`dir/user`), for pods with a user namespace of their own
    /// (see [`create_pinned_in_userns`]).
    pub user: Option<PathBuf>,
}

impl PinnedNamespaces {
    /// The pin of `kind`, if it was created.
    pub fn get(&self, kind: NsKind) -> Option<&Path> {
        match kind {
            NsKind::Net => self.net.as_deref(),
            NsKind::Ipc => self.ipc.as_deref(),
            NsKind::Uts => self.uts.as_deref(),
        }
    }
}

/// Creates the requested namespaces and pins them under `dir` (created with mode 0700;
/// its parent is created if missing). When no namespace is requested nothing is created.
/// On failure nothing is left behind.
pub fn create_pinned(dir: &Path, req: &NamespaceRequest) -> Result<PinnedNamespaces, NsError> {
    pin::create(&sys::LinuxNs, dir, req)
}

/// Whether `path` is a live namespace pin: a bind mount of a namespace file (nsfs). After
/// a reboot, or once unpinned, it is not.
pub fn is_pinned(path: &Path) -> bool {
    use nix::sys::statfs::{statfs, NSFS_MAGIC};
    statfs(path).is_ok_and(|fs| fs.filesystem_type() == NSFS_MAGIC)
}

/// Unpins and removes everything under `dir` that [`create_pinned`] makes, then `dir`
/// itself. Idempotent: an absent or partial `dir` is fine.
pub fn remove_pinned(dir: &Path) -> Result<(), NsError> {
    pin::remove(&sys::LinuxNs, dir)
}
