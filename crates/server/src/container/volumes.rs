//! Volumes of containers in a pod with its own user namespace: each CRI mount with private
//! propagation is bound from an idmapped clone of its host path, attached at
//! `<state>/containers/<id>/volumes/<n>` (see [`super::idmap::bind_idmapped`]), so that files
//! host root owns are root's inside the pod, as they are in other pods. Where the host path's
//! file system cannot be idmapped, or the mount propagates (an idmapped clone is a new mount
//! outside the host path's peer group), the host path is bound as it is, and files host root
//! owns appear as nobody's.
//!
//! Removal unmounts these before the container's directory goes, and refuses to remove a
//! directory that still has a mount below it: removing it would reach into the volume.

use std::path::{Path, PathBuf};

use cri_api::v1;
use nix::mount::{umount2, MntFlags};

use super::idmap::bind_idmapped;
use crate::error::ServiceError;

/// Idmaps what it can of `config.mounts` for the user namespace pinned at `userns`,
/// pointing each such mount's `host_path` at its clone under `dir`.
pub fn idmap_volumes(
    config: &mut v1::ContainerConfig,
    dir: &Path,
    userns: &Path,
) -> Result<(), ServiceError> {
    for (n, mount) in config.mounts.iter_mut().enumerate() {
        if mount.propagation != v1::MountPropagation::PropagationPrivate as i32
            || mount.host_path.is_empty()
        {
            continue;
        }
        let Ok(source) = std::fs::canonicalize(&mount.host_path) else {
            continue;
        };
        let Ok(meta) = std::fs::metadata(&source) else {
            continue;
        };
        std::fs::create_dir_all(dir).map_err(ServiceError::io("create", dir))?;
        let target = dir.join(n.to_string());
        if meta.is_dir() {
            std::fs::create_dir(&target)
        } else {
            std::fs::File::create(&target).map(drop)
        }
        .map_err(ServiceError::io("create", &target))?;
        match bind_idmapped(&source, userns, &target) {
            Ok(()) => mount.host_path = target.display().to_string(),
            Err(err) => {
                tracing::warn!(
                    host_path = %berth_runtime::quote(&source.to_string_lossy()),
                    error = %err,
                    "volume not idmapped; bound as it is"
                );
                remove_mountpoint(&target);
            }
        }
    }
    Ok(())
}

/// Unmounts the idmapped volumes under `dir` and removes their mount points; absent is fine.
pub fn unmount_volumes(dir: &Path) -> Result<(), ServiceError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(ServiceError::Io {
                action: "list",
                path: dir.to_owned(),
                source,
            })
        }
    };
    for entry in entries.flatten() {
        let target = entry.path();
        match umount2(&target, MntFlags::MNT_DETACH | MntFlags::UMOUNT_NOFOLLOW) {
            Ok(()) | Err(nix::errno::Errno::EINVAL | nix::errno::Errno::ENOENT) => {}
            Err(errno) => {
                return Err(ServiceError::Io {
                    action: "unmount",
                    path: target,
                    source: errno.into(),
                })
            }
        }
        remove_mountpoint(&target);
    }
    Ok(())
}

fn remove_mountpoint(target: &Path) {
    let _ = std::fs::remove_dir(target).or_else(|_| std::fs::remove_file(target));
}

/// Fails if anything is still mounted at or below one of `dirs` (from one read of
/// `/proc/self/mountinfo`).
pub fn ensure_nothing_mounted(dirs: &[&Path]) -> Result<(), ServiceError> {
    let info = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(ServiceError::io("read", Path::new("/proc/self/mountinfo")))?;
    for dir in dirs {
        if let Some(mounted) = mounts_below(&info, dir).into_iter().next() {
            return Err(ServiceError::FailedPrecondition {
                what: format!(
                    "{} is still mounted; not removing {} while a volume may be reachable through it",
                    mounted.display(),
                    dir.display()
                ),
            });
        }
    }
    Ok(())
}

/// The mount points at or below `dir` in a mountinfo text (octal escapes decoded).
fn mounts_below(mountinfo: &str, dir: &Path) -> Vec<PathBuf> {
    mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|field| PathBuf::from(unescape(field)))
        .filter(|point| point.starts_with(dir))
        .collect()
}

/// Decodes mountinfo's `\NNN` octal escapes (space, tab, newline, backslash).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).filter(|_| bytes[i] == b'\\');
        match octal.and_then(|d| u8::from_str_radix(std::str::from_utf8(d).ok()?, 8).ok()) {
            Some(byte) => {
                out.push(byte);
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts_below_a_directory() {
        let info = "\
36 25 0:32 / /run/berth/containers/c1/bundle/rootfs rw - overlay overlay rw
37 25 8:1 /data /run/berth/containers/c1/volumes/0 rw - ext4 /dev/sda1 rw
38 25 8:1 /x /run/berth/containers/c10/volumes/0 rw - ext4 /dev/sda1 rw
39 25 8:1 /y /run/berth/containers/c1/volumes/with\\040space rw - ext4 /dev/sda1 rw
";
        let found = mounts_below(info, Path::new("/run/berth/containers/c1"));
        assert_eq!(
            found,
            [
                PathBuf::from("/run/berth/containers/c1/bundle/rootfs"),
                PathBuf::from("/run/berth/containers/c1/volumes/0"),
                PathBuf::from("/run/berth/containers/c1/volumes/with space"),
            ]
        );
        assert!(mounts_below(info, Path::new("/run/berth/containers/c2")).is_empty());
    }

    #[test]
    fn private_mounts_only_and_nothing_for_absent_paths() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = v1::ContainerConfig {
            mounts: vec![
                v1::Mount {
                    host_path: "/nonexistent/volume".into(),
                    container_path: "/v".into(),
                    ..Default::default()
                },
                v1::Mount {
                    host_path: dir.path().display().to_string(),
                    container_path: "/w".into(),
                    propagation: v1::MountPropagation::PropagationHostToContainer as i32,
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let before = config.clone();
        idmap_volumes(&mut config, &dir.path().join("volumes"), Path::new("/x")).unwrap();
        assert_eq!(config, before);
        assert!(!dir.path().join("volumes").exists());
        unmount_volumes(&dir.path().join("volumes")).unwrap();
    }
}
