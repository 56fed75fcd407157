//! How the host mounts cgroups.

use std::path::Path;

/// The host's cgroup layout.
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
    /// Reads the filesystem types under `root` (normally [`crate::CGROUP_ROOT`]).
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
    fn a_plain_directory_is_not_a_cgroup_mount() {
        let dir = tempfile::tempdir().unwrap();
        assert_ne!(CgroupMode::detect(dir.path()), CgroupMode::Unified);
    }

    #[test]
    fn a_missing_root_is_unavailable() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            CgroupMode::detect(&dir.path().join("none")),
            CgroupMode::Unavailable
        );
    }
}
