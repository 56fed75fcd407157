//! A container's root filesystem: an overlay of the image's snapshots (top layer first) with
//! a writable upper directory of its own, mounted at the bundle's `rootfs`.

use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};

/// Mounts `lowers` (base layer first) with `upper`/`work` at `target`.
pub fn mount_rootfs(
    lowers: &[PathBuf],
    upper: &Path,
    work: &Path,
    target: &Path,
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
    let options = overlay_options(lowers, upper, work);
    mount(
        Some("overlay"),
        target,
        Some("overlay"),
        MsFlags::empty(),
        Some(options.as_str()),
    )
    .map_err(|errno| {
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
