//! Device nodes and the device cgroup rules.
//!
//! An unprivileged container may use only the devices runc creates in every container
//! (null, zero, full, random, urandom, tty, the pty devices) and the CRI `devices` it was
//! given; each of those is looked up on the host (`stat`, following symlinks; a directory
//! contributes every device under it). A privileged container gets every device node of
//! the host's /dev and may use any device.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use cri_api::v1;
use oci_spec::runtime::{LinuxDevice, LinuxDeviceCgroup, LinuxDeviceType};

use crate::error::DeviceProblem;
use crate::SpecError;

/// Directories under /dev whose nodes a privileged container does not get (they are
/// mounted anew in the container or are per-session).
const SKIPPED_DEV_DIRS: &[&str] = &["pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"];

/// Devices the container gets, with their cgroup rules.
pub(crate) struct Devices {
    pub nodes: Vec<LinuxDevice>,
    pub rules: Vec<LinuxDeviceCgroup>,
}

/// `type major:minor access` rules every unprivileged container gets, after "deny all".
const DEFAULT_RULES: &[(LinuxDeviceType, Option<i64>, Option<i64>, &str)] = &[
    (LinuxDeviceType::C, None, None, "m"), // mknod of any char device
    (LinuxDeviceType::B, None, None, "m"), // mknod of any block device
    (LinuxDeviceType::C, Some(1), Some(3), "rwm"), // /dev/null
    (LinuxDeviceType::C, Some(1), Some(5), "rwm"), // /dev/zero
    (LinuxDeviceType::C, Some(1), Some(7), "rwm"), // /dev/full
    (LinuxDeviceType::C, Some(1), Some(8), "rwm"), // /dev/random
    (LinuxDeviceType::C, Some(1), Some(9), "rwm"), // /dev/urandom
    (LinuxDeviceType::C, Some(5), Some(0), "rwm"), // /dev/tty
    (LinuxDeviceType::C, Some(5), Some(2), "rwm"), // /dev/ptmx
    (LinuxDeviceType::C, Some(136), None, "rwm"), // /dev/pts/*
];

fn rule(
    allow: bool,
    typ: Option<LinuxDeviceType>,
    major: Option<i64>,
    minor: Option<i64>,
    access: &str,
) -> LinuxDeviceCgroup {
    let mut rule = LinuxDeviceCgroup::default();
    rule.set_allow(allow);
    rule.set_typ(typ);
    rule.set_major(major);
    rule.set_minor(minor);
    rule.set_access(Some(access.to_owned()));
    rule
}

/// The devices and rules of a container.
pub(crate) fn devices(
    container: &v1::ContainerConfig,
    privileged: bool,
) -> Result<Devices, SpecError> {
    let mut nodes = Vec::new();
    let mut rules = Vec::new();
    if privileged {
        nodes = host_devices(Path::new("/dev"), Path::new("/dev"))?;
        rules.push(rule(true, None, None, None, "rwm"));
    } else {
        rules.push(rule(false, None, None, None, "rwm"));
        for (typ, major, minor, access) in DEFAULT_RULES {
            rules.push(rule(true, Some(*typ), *major, *minor, access));
        }
    }
    for device in &container.devices {
        let access = permissions(device)?;
        let host = Path::new(&device.host_path);
        if !device.container_path.starts_with('/') {
            return Err(SpecError::Device {
                path: host.to_owned(),
                problem: DeviceProblem::ContainerPathNotAbsolute(device.container_path.clone()),
            });
        }
        let meta = std::fs::metadata(host).map_err(|e| SpecError::Device {
            path: host.to_owned(),
            problem: DeviceProblem::Stat(e),
        })?;
        let found = if meta.is_dir() {
            host_devices(host, Path::new(&device.container_path))?
        } else {
            vec![
                node(&meta, Path::new(&device.container_path)).ok_or_else(|| {
                    SpecError::Device {
                        path: host.to_owned(),
                        problem: DeviceProblem::NotADevice,
                    }
                })?,
            ]
        };
        for found in found {
            if !privileged {
                rules.push(rule(
                    true,
                    Some(found.typ()),
                    Some(found.major()),
                    Some(found.minor()),
                    &access,
                ));
            }
            nodes.retain(|n| n.path() != found.path());
            nodes.push(found);
        }
    }
    Ok(Devices { nodes, rules })
}

/// CRI permissions ("r", "rw", "rwm"…; empty means all).
fn permissions(device: &v1::Device) -> Result<String, SpecError> {
    let p = &device.permissions;
    if p.is_empty() {
        return Ok("rwm".into());
    }
    if p.chars().all(|c| "rwm".contains(c)) {
        return Ok(p.clone());
    }
    Err(SpecError::Device {
        path: PathBuf::from(&device.host_path),
        problem: DeviceProblem::Permissions(p.clone()),
    })
}

/// The OCI device for a host node, placed at `container_path`; `None` if not a device.
fn node(meta: &std::fs::Metadata, container_path: &Path) -> Option<LinuxDevice> {
    let file_type = meta.file_type();
    let typ = if file_type.is_char_device() {
        LinuxDeviceType::C
    } else if file_type.is_block_device() {
        LinuxDeviceType::B
    } else {
        return None;
    };
    let rdev = meta.rdev();
    let mut device = LinuxDevice::default();
    device.set_path(container_path.to_owned());
    device.set_typ(typ);
    device.set_major(major(rdev) as i64);
    device.set_minor(minor(rdev) as i64);
    device.set_file_mode(Some(meta.mode() & 0o7777));
    device.set_uid(Some(meta.uid()));
    device.set_gid(Some(meta.gid()));
    Some(device)
}

/// glibc's `gnu_dev_major`.
fn major(rdev: u64) -> u64 {
    ((rdev >> 32) & 0xffff_f000) | ((rdev >> 8) & 0x0fff)
}

/// glibc's `gnu_dev_minor`.
fn minor(rdev: u64) -> u64 {
    ((rdev >> 12) & 0xffff_ff00) | (rdev & 0x00ff)
}

/// Every device node under `dir` (not following symlinks, skipping the per-container
/// directories), placed under `container_dir`.
fn host_devices(dir: &Path, container_dir: &Path) -> Result<Vec<LinuxDevice>, SpecError> {
    let mut out = Vec::new();
    let mut pending = vec![(dir.to_owned(), container_dir.to_owned())];
    while let Some((dir, target)) = pending.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|e| SpecError::Device {
            path: dir.clone(),
            problem: DeviceProblem::Stat(e),
        })?;
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Ok(meta) = entry.path().symlink_metadata() else {
                continue;
            };
            if meta.is_dir() {
                if !SKIPPED_DEV_DIRS.iter().any(|s| name == *s) {
                    pending.push((entry.path(), target.join(&name)));
                }
            } else if name != "console" {
                out.extend(node(&meta, &target.join(&name)));
            }
        }
    }
    out.sort_by(|a, b| a.path().cmp(b.path()));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_devices(devices: Vec<v1::Device>) -> v1::ContainerConfig {
        v1::ContainerConfig {
            devices,
            ..Default::default()
        }
    }

    fn device(host: &str, container: &str, perms: &str) -> v1::Device {
        v1::Device {
            host_path: host.into(),
            container_path: container.into(),
            permissions: perms.into(),
        }
    }

    #[test]
    fn dev_numbers_decode() {
        assert_eq!((major(0x103), minor(0x103)), (1, 3));
        // A large minor: makedev(259, 65536) with the glibc encoding.
        let (maj, min) = (259u64, 65536u64);
        let rdev = ((maj & 0xfff) << 8) | (min & 0xff) | ((min & !0xff) << 12);
        assert_eq!((major(rdev), minor(rdev)), (259, 65536));
    }

    #[test]
    fn unprivileged_default_rules() {
        let d = devices(&Default::default(), false).unwrap();
        assert!(d.nodes.is_empty());
        assert_eq!(d.rules[0].to_string(), "a *:* rwm");
        assert!(!d.rules[0].allow());
        let allowed: Vec<String> = d.rules[1..].iter().map(|r| r.to_string()).collect();
        assert!(allowed.contains(&"c 1:3 rwm".to_string()));
        assert!(allowed.contains(&"c 136:* rwm".to_string()));
        assert!(d.rules[1..].iter().all(|r| r.allow()));
    }

    #[test]
    fn a_cri_device_is_stat_ed_on_the_host() {
        let d = devices(
            &with_devices(vec![device("/dev/null", "/dev/mynull", "rw")]),
            false,
        )
        .unwrap();
        assert_eq!(d.nodes.len(), 1);
        let node = &d.nodes[0];
        assert_eq!(node.path(), Path::new("/dev/mynull"));
        assert_eq!(
            (node.typ(), node.major(), node.minor()),
            (LinuxDeviceType::C, 1, 3)
        );
        assert_eq!(d.rules.last().unwrap().to_string(), "c 1:3 rw");
    }

    #[test]
    fn bad_devices_name_the_path() {
        let file = tempfile::NamedTempFile::new().unwrap();
        let file = file.path().to_str().unwrap();
        let cases = [
            device("/nonexistent/dev", "/dev/x", ""),
            device(file, "/dev/x", ""),
            device("/dev/null", "relative", ""),
            device("/dev/null", "/dev/x", "rwx"),
        ];
        for case in cases {
            match devices(&with_devices(vec![case.clone()]), false) {
                Err(SpecError::Device { path, .. }) => assert_eq!(path, Path::new(&case.host_path)),
                Err(other) => panic!("{case:?}: {other}"),
                Ok(_) => panic!("{case:?} accepted"),
            }
        }
    }

    #[test]
    fn privileged_gets_host_devices_and_allow_all() {
        let d = devices(&Default::default(), true).unwrap();
        assert_eq!(d.rules.len(), 1);
        assert_eq!(d.rules[0].to_string(), "a *:* rwm");
        assert!(d.rules[0].allow());
        assert!(d.nodes.iter().any(|n| n.path() == Path::new("/dev/null")));
        assert!(!d.nodes.iter().any(|n| n.path().starts_with("/dev/pts")));
        assert!(!d
            .nodes
            .iter()
            .any(|n| n.path() == Path::new("/dev/console")));
    }
}
