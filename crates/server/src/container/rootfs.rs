//! A container's root filesystem: an overlay of the image's snapshots (top layer first) with
//! a writable upper directory of its own, mounted at the bundle's `rootfs`. In a pod with a
//! user namespace of its own, the snapshots are idmapped for it (see [`super::idmap`]) and
//! the upper directory belongs to the pod's root.
//!
//! The overlay is mounted `volatile` where the kernel has it (Linux 5.10+): overlayfs then
//! skips every sync of the upper directory, including the sync of the whole upper
//! filesystem it otherwise does at unmount (0.5–2.5 ms of RemoveContainer here, more when
//! other writers left the disk dirty). What a volatile overlay gives up is the durability
//! of writes to the container's own root filesystem across a host crash, which no
//! container has: berth never mounts a writable layer again once it was unmounted (a
//! container is not restarted; after a reboot its rootfs is gone and kubelet creates a new
//! container), so nothing reads a layer back after a crash.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use nix::mount::{mount, umount2, MntFlags, MsFlags};

use super::idmap::IdmappedLayers;

/// How the pod's user namespace maps the layers: its pin and the host (UID, GID) of its root.
#[derive(Debug, Clone, Copy)]
pub struct PodIdmap<'a> {
    pub userns: &'a Path,
    pub root: (u32, u32),
}

/// Mounts `lowers` (base layer first) with `upper`/`work` at `target`, idmapped for `idmap`'s
/// user namespace when given.
pub fn mount_rootfs(
    lowers: &[PathBuf],
    upper: &Path,
    work: &Path,
    target: &Path,
    idmap: Option<PodIdmap<'_>>,
) -> std::io::Result<()> {
    for dir in [upper, work, target] {
        std::fs::create_dir_all(dir)?;
    }
    if lowers.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "an image without layers has no root filesystem",
        ));
    }
    // Held until the overlay is mounted; the overlay keeps its own references.
    let mapped = match idmap {
        Some(map) => {
            std::os::unix::fs::chown(upper, Some(map.root.0), Some(map.root.1))?;
            Some(IdmappedLayers::new(lowers, map.userns)?)
        }
        None => None,
    };
    let lowers = mapped
        .as_ref()
        .map_or_else(|| lowers.to_vec(), IdmappedLayers::paths);
    let options = overlay_options(&lowers, upper, work);
    let mount_with = |options: &str| {
        mount(
            Some("overlay"),
            target,
            Some("overlay"),
            MsFlags::empty(),
            Some(options),
        )
    };
    let result = if VOLATILE.load(Ordering::Relaxed) {
        match mount_with(&format!("{options},volatile")) {
            Err(nix::errno::Errno::EINVAL) => {
                let plain = mount_with(&options);
                if plain.is_ok() {
                    // An older kernel: the option was the only thing it refused.
                    VOLATILE.store(false, Ordering::Relaxed);
                    tracing::info!("overlayfs has no volatile mounts here; container rootfs unmounts sync the upper filesystem");
                }
                plain
            }
            other => other,
        }
    } else {
        mount_with(&options)
    };
    result.map_err(|errno| {
        std::io::Error::new(
            std::io::Error::from(errno).kind(),
            format!(
                "mount overlay ({} layers) at {}: {errno}",
                lowers.len(),
                target.display()
            ),
        )
    })
}

/// Whether overlayfs takes the `volatile` option; cleared when a mount succeeds only
/// without it.
static VOLATILE: AtomicBool = AtomicBool::new(true);

/// The overlay mount options: overlayfs wants the topmost lower directory first.
pub fn overlay_options(lowers: &[PathBuf], upper: &Path, work: &Path) -> String {
    let lower: Vec<String> = lowers
        .iter()
        .rev()
        .map(|p| p.display().to_string())
        .collect();
    format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.join(":"),
        upper.display(),
        work.display()
    )
}

/// Unmounts the rootfs at `target`; not mounted or absent is fine.
pub fn unmount_rootfs(target: &Path) -> std::io::Result<()> {
    match umount2(target, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::errno::Errno::EINVAL | nix::errno::Errno::ENOENT) => Ok(()),
        Err(err) => Err(err.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_layer_comes_first() {
        let lowers = [PathBuf::from("/s/base/fs"), PathBuf::from("/s/top/fs")];
        assert_eq!(
            overlay_options(&lowers, Path::new("/c/upper"), Path::new("/c/work")),
            "lowerdir=/s/top/fs:/s/base/fs,upperdir=/c/upper,workdir=/c/work"
        );
    }
}
