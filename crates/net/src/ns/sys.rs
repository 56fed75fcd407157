//! The OS seam of namespace pinning: the few privileged calls, behind a trait so the
//! create/undo logic is unit-tested with a recording fake (see `fake.rs`).

use std::fs::File;
use std::io::Write;
use std::path::Path;

use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::statvfs::{statvfs, FsFlags};

use super::{NsError, NsKind};

const PROC_SYS: &str = "/proc/sys";

/// The mount flags of a remount that keeps the per-mount flags `kept` (statvfs's) but
/// read-only.
fn remount_flags(kept: FsFlags) -> MsFlags {
    [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ]
    .into_iter()
    .filter(|(fs, _)| kept.contains(*fs))
    .fold(MsFlags::empty(), |flags, (_, ms)| flags | ms)
}

/// Privileged operations on the calling thread's namespaces and on pin mounts.
pub(crate) trait NsSys: Sync {
    /// Moves the calling thread into new namespaces of `kinds`.
    fn unshare(&self, kinds: &[NsKind]) -> Result<(), Errno>;
    /// Sets the hostname of the calling thread's UTS namespace.
    fn set_hostname(&self, hostname: &str) -> Result<(), Errno>;
    /// Writes `value` to a `/proc/sys` file, as seen by the calling thread.
    fn write_sysctl(&self, path: &Path, value: &str) -> std::io::Result<()>;
    /// Runs `write` with `/proc/sys` writable for the calling thread: in a mount namespace
    /// of the thread's own, where the `/proc/sys` mount is remounted read-write; the thread
    /// is back in its mount namespace when this returns `Ok` (pins made after it are seen by
    /// everyone).
    fn with_writable_proc_sys(
        &self,
        write: &mut dyn FnMut() -> Result<(), NsError>,
    ) -> Result<(), NsError>;
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

    fn with_writable_proc_sys(
        &self,
        write: &mut dyn FnMut() -> Result<(), NsError>,
    ) -> Result<(), NsError> {
        let failed = |step: &'static str| {
            move |e: Errno| NsError::ProcSysWritable {
                step,
                source: e.into(),
            }
        };
        let own =
            File::open("/proc/thread-self/ns/mnt").map_err(|source| NsError::ProcSysWritable {
                step: "open the thread's mount namespace",
                source,
            })?;
        // A mount namespace of this thread's own (CLONE_NEWNS unshares its filesystem
        // context too), nothing in it propagating back.
        unshare(CloneFlags::CLONE_NEWNS).map_err(failed("unshare the mount namespace"))?;
        let result = mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_REC | MsFlags::MS_SLAVE,
            None::<&str>,
        )
        .map_err(failed("make the mounts slaves"))
        .and_then(|()| {
            // The mount's other flags are kept; only read-only is dropped.
            let kept = statvfs(PROC_SYS)
                .map_err(failed("statvfs /proc/sys"))?
                .flags();
            mount(
                None::<&str>,
                PROC_SYS,
                None::<&str>,
                MsFlags::MS_REMOUNT | MsFlags::MS_BIND | remount_flags(kept),
                None::<&str>,
            )
            .map_err(failed("remount /proc/sys read-write"))
        })
        .and_then(|()| write());
        // Back in berthd's mount namespace whatever happened: the pins the thread makes next
        // must be where berthd sees them. A thread that cannot go back must not pin.
        setns(&own, CloneFlags::CLONE_NEWNS).map_err(failed("return to the mount namespace"))?;
        result
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
