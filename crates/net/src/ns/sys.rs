//! The OS seam of namespace pinning: the few privileged calls, behind a trait so the
//! create/undo logic is unit-tested with a recording fake (see `fake.rs`).

use std::io::Write;
use std::path::Path;

use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};

use super::NsKind;

/// Privileged operations on the calling thread's namespaces and on pin mounts.
pub(crate) trait NsSys: Sync {
    /// Moves the calling thread into new namespaces of `kinds`.
    fn unshare(&self, kinds: &[NsKind]) -> Result<(), Errno>;
    /// Sets the hostname of the calling thread's UTS namespace.
    fn set_hostname(&self, hostname: &str) -> Result<(), Errno>;
    /// Writes `value` to a `/proc/sys` file, as seen by the calling thread.
    fn write_sysctl(&self, path: &Path, value: &str) -> std::io::Result<()>;
    /// Bind-mounts the calling thread's namespace of `kind` onto the file `target`.
    fn pin(&self, kind: NsKind, target: &Path) -> Result<(), Errno>;
    /// Lazily unmounts `target` without following symlinks. `EINVAL` when it is not a
    /// mount point, `ENOENT` when it does not exist.
    fn unpin(&self, target: &Path) -> Result<(), Errno>;
}

/// The real thing.
pub(crate) struct LinuxNs;

impl NsSys for LinuxNs {
    fn unshare(&self, kinds: &[NsKind]) -> Result<(), Errno> {
        let flags = kinds
            .iter()
            .fold(CloneFlags::empty(), |flags, kind| flags | kind.clone_flag());
        unshare(flags)
    }

    fn set_hostname(&self, hostname: &str) -> Result<(), Errno> {
        nix::unistd::sethostname(hostname)
    }

    fn write_sysctl(&self, path: &Path, value: &str) -> std::io::Result<()> {
        // No O_CREAT/O_TRUNC: a missing sysctl must fail, not become a file.
        let mut file = std::fs::OpenOptions::new().write(true).open(path)?;
        file.write_all(value.as_bytes())
    }

    fn pin(&self, kind: NsKind, target: &Path) -> Result<(), Errno> {
        // thread-self, not self: namespaces were changed for this thread only.
        let source = Path::new("/proc/thread-self/ns").join(kind.name());
        mount(
            Some(&source),
            target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
    }

    fn unpin(&self, target: &Path) -> Result<(), Errno> {
        umount2(target, MntFlags::MNT_DETACH | MntFlags::UMOUNT_NOFOLLOW)
    }
}
