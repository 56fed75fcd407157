//! `linux.cgroupsPath`: where runc puts the container, under the pod's cgroup parent.
//!
//! - cgroupfs: `<parent>/<id>` as an absolute path (`/berth/<id>` when the pod has no parent).
//! - systemd: runc's `slice:prefix:name` form, `<parent slice>:berth:<id>`; the slice is the
//!   last element of the parent (kubelet passes `kubepods-burstable-pod<uid>.slice`, critest
//!   `/test.slice`), `system.slice` when the pod has none. runc names the scope
//!   `berth-<id>.scope`.

use std::path::{Component, Path, PathBuf};

use crate::SpecError;

/// The cgroup driver the spec is written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupDriver {
    /// systemd slices and scopes.
    Systemd,
    /// Directories under /sys/fs/cgroup.
    Cgroupfs,
}

/// The parent used by cgroupfs when the pod gives none.
pub const DEFAULT_CGROUPFS_PARENT: &str = "/berth";

/// The slice used by systemd when the pod gives none.
pub const DEFAULT_SLICE: &str = "system.slice";

/// The scope prefix in the systemd form.
const SCOPE_PREFIX: &str = "berth";

/// The container's `cgroupsPath`.
pub fn cgroups_path(
    driver: CgroupDriver,
    parent: &str,
    container_id: &str,
) -> Result<String, SpecError> {
    match driver {
        CgroupDriver::Cgroupfs => {
            let parent = if parent.trim_matches('/').is_empty() {
                DEFAULT_CGROUPFS_PARENT
            } else {
                parent
            };
            let mut path = PathBuf::from("/");
            for component in Path::new(parent).components() {
                match component {
                    Component::Normal(part) => path.push(part),
                    Component::ParentDir => return Err(SpecError::CgroupParent(parent.into())),
                    _ => {}
                }
            }
            path.push(container_id);
            Ok(path.to_string_lossy().into_owned())
        }
        CgroupDriver::Systemd => {
            let slice = parent
                .rsplit('/')
                .find(|s| !s.is_empty())
                .unwrap_or(DEFAULT_SLICE);
            if !slice.ends_with(".slice") || slice.contains(':') {
                return Err(SpecError::CgroupParent(parent.into()));
            }
            Ok(format!("{slice}:{SCOPE_PREFIX}:{container_id}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroupfs_paths() {
        let p = |parent| cgroups_path(CgroupDriver::Cgroupfs, parent, "abc").unwrap();
        assert_eq!(p(""), "/berth/abc");
        assert_eq!(p("/"), "/berth/abc");
        assert_eq!(
            p("/kubepods/burstable/pod1"),
            "/kubepods/burstable/pod1/abc"
        );
        assert_eq!(p("kubepods/pod1/"), "/kubepods/pod1/abc");
        assert!(cgroups_path(CgroupDriver::Cgroupfs, "/a/../../etc", "abc").is_err());
    }

    #[test]
    fn systemd_paths() {
        let p = |parent| cgroups_path(CgroupDriver::Systemd, parent, "abc");
        assert_eq!(p("").unwrap(), "system.slice:berth:abc");
        assert_eq!(p("/test.slice").unwrap(), "test.slice:berth:abc");
        assert_eq!(
            p("kubepods-burstable-pod1.slice").unwrap(),
            "kubepods-burstable-pod1.slice:berth:abc"
        );
        assert!(matches!(
            p("/kubepods/pod1"),
            Err(SpecError::CgroupParent(_))
        ));
    }
}
