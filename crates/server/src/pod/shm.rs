//! The pod's `/dev/shm`: a tmpfs of its own, shared by its containers, unless the pod uses
//! the host's IPC namespace.

use std::path::Path;

use nix::mount::{mount, umount2, MntFlags, MsFlags};

/// Size of a pod's /dev/shm (as docker and containerd default to).
const SHM_SIZE: &str = "size=65536k";

/// Mounts a tmpfs at `dir` (created if missing).
pub fn mount_shm(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    mount(
        Some("shm"),
        dir,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some(format!("mode=1777,{SHM_SIZE}").as_str()),
    )
    .map_err(std::io::Error::from)
}

/// Unmounts the tmpfs at `dir` if mounted; absent or not mounted is fine.
pub fn unmount_shm(dir: &Path) -> std::io::Result<()> {
    match umount2(dir, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::errno::Errno::EINVAL | nix::errno::Errno::ENOENT) => Ok(()),
        Err(err) => Err(err.into()),
    }
}
