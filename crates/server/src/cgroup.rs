//! Cgroup driver selection and detection of the host's cgroup layout.

use std::path::Path;

use berth_config::CgroupDriverSetting;
use cri_api::v1;

/// Where the cgroup hierarchies are mounted.
pub(crate) const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// Present when systemd is the init system (as sd_booted(3) checks).
const SYSTEMD_RUNTIME_DIR: &str = "/run/systemd/system";

/// The cgroup driver berth uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupDriver {
    /// systemd slices and scopes.
    Systemd,
    /// Directories under /sys/fs/cgroup.
    Cgroupfs,
}

impl CgroupDriver {
    /// The configured driver, or for `auto` systemd when it runs as init, else cgroupfs.
    pub fn resolve(setting: CgroupDriverSetting) -> CgroupDriver {
        Self::resolve_with(setting, Path::new(SYSTEMD_RUNTIME_DIR).is_dir())
    }

    fn resolve_with(setting: CgroupDriverSetting, systemd_booted: bool) -> CgroupDriver {
        match setting {
            CgroupDriverSetting::Systemd => CgroupDriver::Systemd,
            CgroupDriverSetting::Cgroupfs => CgroupDriver::Cgroupfs,
            CgroupDriverSetting::Auto if systemd_booted => CgroupDriver::Systemd,
            CgroupDriverSetting::Auto => CgroupDriver::Cgroupfs,
        }
    }

    /// The CRI enum value.
    pub fn to_cri(self) -> v1::CgroupDriver {
        match self {
            CgroupDriver::Systemd => v1::CgroupDriver::Systemd,
            CgroupDriver::Cgroupfs => v1::CgroupDriver::Cgroupfs,
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

/// How the host mounts cgroups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupMode {
    /// cgroup v2 only, mounted at /sys/fs/cgroup.
    Unified,
    /// cgroup v1 controllers, with a v2 hierarchy at /sys/fs/cgroup/unified.
    Hybrid,
    /// cgroup v1 only.
    Legacy,
    /// Nothing recognisable is mounted at /sys/fs/cgroup.
    Unavailable,
}

impl CgroupMode {
    /// Reads the filesystem types under `root` (normally /sys/fs/cgroup).
    pub fn detect(root: &Path) -> CgroupMode {
        use nix::sys::statfs::{statfs, CGROUP2_SUPER_MAGIC, TMPFS_MAGIC};
        let fs_type = |path: &Path| statfs(path).ok().map(|fs| fs.filesystem_type());
        match fs_type(root) {
            Some(t) if t == CGROUP2_SUPER_MAGIC => CgroupMode::Unified,
            Some(t) if t == TMPFS_MAGIC => match fs_type(&root.join("unified")) {
                Some(t) if t == CGROUP2_SUPER_MAGIC => CgroupMode::Hybrid,
                _ => CgroupMode::Legacy,
            },
            _ => CgroupMode::Unavailable,
        }
    }

    /// Lower-case name for status output.
    pub fn name(self) -> &'static str {
        match self {
            CgroupMode::Unified => "unified",
            CgroupMode::Hybrid => "hybrid",
            CgroupMode::Legacy => "legacy",
            CgroupMode::Unavailable => "unavailable",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_setting_wins_over_detection() {
        use CgroupDriverSetting as S;
        assert_eq!(
            CgroupDriver::resolve_with(S::Systemd, false),
            CgroupDriver::Systemd
        );
        assert_eq!(
            CgroupDriver::resolve_with(S::Cgroupfs, true),
            CgroupDriver::Cgroupfs
        );
        assert_eq!(
            CgroupDriver::resolve_with(S::Auto, true),
            CgroupDriver::Systemd
        );
        assert_eq!(
            CgroupDriver::resolve_with(S::Auto, false),
            CgroupDriver::Cgroupfs
        );
    }

    #[test]
    fn cri_values_match_the_proto() {
        assert_eq!(CgroupDriver::Systemd.to_cri() as i32, 0);
        assert_eq!(CgroupDriver::Cgroupfs.to_cri() as i32, 1);
    }

    #[test]
    fn a_plain_directory_is_not_a_cgroup_mount() {
        let dir = tempfile::tempdir().unwrap();
        assert_ne!(CgroupMode::detect(dir.path()), CgroupMode::Unified);
    }
}
