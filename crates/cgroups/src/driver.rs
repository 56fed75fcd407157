//! The cgroup driver, and the `linux.cgroupsPath` a container's spec gets with it: where runc
//! puts the container, under the pod's cgroup parent.
//!
//! - cgroupfs: `<parent>/<id>` as an absolute path (`/berth/<id>` when the pod has no parent).
//! - systemd: runc's `slice:prefix:name` form, `<parent slice>:berth:<id>`; the slice is the
//!   last element of the parent (kubelet passes `kubepods-burstable-pod<uid>.slice`, critest
//!   `/test.slice`), `system.slice` when the pod has none. runc names the scope
//!   `berth-<id>.scope`.

use std::path::{Component, Path, PathBuf};

/// Present when systemd is the init system (as sd_booted(3) checks).
const SYSTEMD_RUNTIME_DIR: &str = "/run/systemd/system";

/// The parent used by cgroupfs when the pod gives none.
pub const DEFAULT_CGROUPFS_PARENT: &str = "/berth";

/// The slice used by systemd when the pod gives none.
pub const DEFAULT_SLICE: &str = "system.slice";

/// The scope prefix in the systemd form.
const SCOPE_PREFIX: &str = "berth";

/// The cgroup driver: who creates the cgroups runc puts containers in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupDriver {
    /// systemd slices and scopes.
    Systemd,
    /// Directories under /sys/fs/cgroup.
    Cgroupfs,
}

impl CgroupDriver {
    /// `requested`, or for `None` (`auto`) systemd when it runs as init, else cgroupfs.
    pub fn resolve(requested: Option<CgroupDriver>) -> CgroupDriver {
        Self::resolve_with(requested, Path::new(SYSTEMD_RUNTIME_DIR).is_dir())
    }

    fn resolve_with(requested: Option<CgroupDriver>, systemd_booted: bool) -> CgroupDriver {
        match requested {
            Some(driver) => driver,
            None if systemd_booted => CgroupDriver::Systemd,
            None => CgroupDriver::Cgroupfs,
        }
    }

    /// Lower-case name, as in the configuration file.
    pub fn name(self) -> &'static str {
        match self {
            CgroupDriver::Systemd => "systemd",
            CgroupDriver::Cgroupfs => "cgroupfs",
        }
    }
}

/// A pod's cgroup parent that cannot hold a container's cgroup.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParentError {
    /// cgroupfs: a `..` component would leave the cgroup root.
    #[error("cgroup parent {0:?} leaves the cgroup root (`..`)")]
    Escapes(String),
    /// systemd: the parent's last element is not `name.slice`, or holds a `:`.
    #[error("cgroup parent {0:?} is not a systemd slice (name.slice)")]
    NotASlice(String),
}

/// The `cgroupsPath` of container `container_id` in a pod whose cgroup parent is `parent`
/// (`""` for none).
pub fn cgroups_path(
    driver: CgroupDriver,
    parent: &str,
    container_id: &str,
) -> Result<String, ParentError> {
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
                    Component::ParentDir => return Err(ParentError::Escapes(parent.into())),
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
                return Err(ParentError::NotASlice(parent.into()));
            }
            Ok(format!("{slice}:{SCOPE_PREFIX}:{container_id}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_setting_wins_over_detection() {
        use CgroupDriver::{Cgroupfs, Systemd};
        assert_eq!(CgroupDriver::resolve_with(Some(Systemd), false), Systemd);
        assert_eq!(CgroupDriver::resolve_with(Some(Cgroupfs), true), Cgroupfs);
        assert_eq!(CgroupDriver::resolve_with(None, true), Systemd);
        assert_eq!(CgroupDriver::resolve_with(None, false), Cgroupfs);
    }

    #[test]
    fn names_are_the_configuration_values() {
        assert_eq!(CgroupDriver::Systemd.name(), "systemd");
        assert_eq!(CgroupDriver::Cgroupfs.name(), "cgroupfs");
    }

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
        assert_eq!(
            cgroups_path(CgroupDriver::Cgroupfs, "/a/../../etc", "abc"),
            Err(ParentError::Escapes("/a/../../etc".into()))
        );
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
        assert_eq!(
            p("/kubepods/pod1"),
            Err(ParentError::NotASlice("/kubepods/pod1".into()))
        );
        assert!(matches!(p("a:b.slice"), Err(ParentError::NotASlice(_))));
    }
}
