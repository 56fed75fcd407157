//! What the spec depends on that only the host can tell: detected once by the daemon and
//! passed in, so the builder itself never reads /proc or /sys and tests choose the host.

use std::path::Path;

/// The highest capability number berth knows (`CAP_CHECKPOINT_RESTORE`).
pub const LAST_KNOWN_CAP: u8 = 40;

/// Every capability berth knows, as a bit mask (bit n = capability n).
pub const ALL_CAPS: u64 = (1 << (LAST_KNOWN_CAP as u64 + 1)) - 1;

/// Facts about the host that change the spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostFeatures {
    /// cgroup v2 is mounted alone at /sys/fs/cgroup: containers get a cgroup namespace.
    pub cgroup_unified: bool,
    /// AppArmor is enabled (`/sys/module/apparmor/parameters/enabled` is `Y`).
    pub apparmor_enabled: bool,
    /// SELinux is enabled (selinuxfs is mounted).
    pub selinux_enabled: bool,
    /// The capabilities a container can be given, as a bit mask (bit n = capability n): the
    /// daemon's own effective set, within what the kernel knows (`cap_last_cap`). runc
    /// cannot grant more, so privileged and `ALL` mean these.
    pub capabilities: u64,
    /// The kernel's major and minor version, for `minKernel` in Docker seccomp profiles.
    pub kernel: Option<(u32, u32)>,
    /// The lowest `oom_score_adj` a container may get (containerd's
    /// `restrict_oom_score_adj`: the daemon's own value, where it may not go lower). `None`
    /// passes the requested value through.
    pub oom_score_adj_min: Option<i32>,
    /// Pods can have user namespaces: enabled (`user.max_user_namespaces` above 0) and Linux
    /// 5.19 or newer (overlayfs over idmapped layers).
    pub user_namespaces: bool,
    /// Hugepage limits can be set: the hugetlb controller exists (or the daemon was told not
    /// to tolerate its absence). When false the spec carries none.
    pub hugetlb: bool,
}

impl Default for HostFeatures {
    /// A cgroup v1 host without AppArmor or SELinux that knows every capability.
    fn default() -> Self {
        HostFeatures {
            cgroup_unified: false,
            apparmor_enabled: false,
            selinux_enabled: false,
            capabilities: ALL_CAPS,
            kernel: None,
            oom_score_adj_min: None,
            user_namespaces: false,
            hugetlb: true,
        }
    }
}

impl HostFeatures {
    /// Reads the running host's features from /proc and /sys. `oom_score_adj_min` stays
    /// `None`: whether to restrict it is configuration, see [`HostFeatures::own_oom_score_adj`].
    pub fn detect() -> HostFeatures {
        let read = |path: &str| std::fs::read_to_string(path).ok();
        let kernel = read("/proc/sys/kernel/osrelease").and_then(|v| parse_kernel(&v));
        HostFeatures {
            cgroup_unified: Path::new(berth_cgroups::CGROUP_ROOT)
                .join("cgroup.controllers")
                .exists(),
            apparmor_enabled: read("/sys/module/apparmor/parameters/enabled")
                .is_some_and(|v| v.trim_start().starts_with('Y')),
            selinux_enabled: Path::new("/sys/fs/selinux/enforce").exists(),
            capabilities: grantable(
                read("/proc/self/status").as_deref(),
                read("/proc/sys/kernel/cap_last_cap").as_deref(),
            ),
            kernel,
            oom_score_adj_min: None,
            user_namespaces: read("/proc/sys/user/max_user_namespaces")
                .and_then(|v| v.trim().parse::<u64>().ok())
                .is_some_and(|n| n > 0)
                && kernel.is_some_and(|version| version >= (5, 19)),
            hugetlb: hugetlb_controller(Path::new(berth_cgroups::CGROUP_ROOT)),
        }
    }

    /// Whether the calling process may lower its `oom_score_adj` (CAP_SYS_RESOURCE in its
    /// effective set).
    pub fn may_lower_oom_score_adj() -> bool {
        const CAP_SYS_RESOURCE: u32 = 24;
        let status = std::fs::read_to_string("/proc/self/status").ok();
        grantable(status.as_deref(), None) & (1 << CAP_SYS_RESOURCE) != 0
    }

    /// The calling process's own `oom_score_adj`, the floor to pass as `oom_score_adj_min`
    /// when the daemon runs where it may not lower it (in a container, in a user namespace).
    pub fn own_oom_score_adj() -> Option<i32> {
        std::fs::read_to_string("/proc/self/oom_score_adj")
            .ok()
            .and_then(|v| v.trim().parse().ok())
    }
}

/// The `CapEff` of a /proc/<pid>/status text, limited to `cap_last_cap` and to what berth
/// knows; everything berth knows when neither can be read.
pub(crate) fn grantable(status: Option<&str>, last_cap: Option<&str>) -> u64 {
    let effective = status
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("CapEff:")))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .unwrap_or(ALL_CAPS);
    let known = last_cap
        .and_then(|v| v.trim().parse::<u32>().ok())
        .filter(|n| *n < 63)
        .map_or(ALL_CAPS, |n| (1u64 << (n + 1)) - 1);
    effective & known & ALL_CAPS
}

/// Whether the hugetlb controller is there under `root`: a v1 hierarchy of its own, or
/// listed in the unified hierarchy's `cgroup.controllers` (cgroup v2 only hosts).
pub(crate) fn hugetlb_controller(root: &Path) -> bool {
    if root.join("hugetlb").is_dir() {
        return true;
    }
    std::fs::read_to_string(root.join("cgroup.controllers"))
        .is_ok_and(|list| list.split_whitespace().any(|c| c == "hugetlb"))
}

/// `"6.18.44-fc-v657"` → `(6, 18)`.
pub(crate) fn parse_kernel(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.trim().split(['.', '-', '+']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hugetlb_controller_is_found_in_either_hierarchy() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!hugetlb_controller(dir.path()));
        std::fs::write(
            dir.path().join("cgroup.controllers"),
            "cpu io memory pids\n",
        )
        .unwrap();
        assert!(!hugetlb_controller(dir.path()));
        std::fs::write(
            dir.path().join("cgroup.controllers"),
            "cpu hugetlb memory\n",
        )
        .unwrap();
        assert!(hugetlb_controller(dir.path()));
        let v1 = tempfile::tempdir().unwrap();
        std::fs::create_dir(v1.path().join("hugetlb")).unwrap();
        assert!(hugetlb_controller(v1.path()));
    }

    #[test]
    fn kernel_releases_parse() {
        assert_eq!(parse_kernel("6.18.44-fc-v657\n"), Some((6, 18)));
        assert_eq!(parse_kernel("5.4.0"), Some((5, 4)));
        assert_eq!(parse_kernel("4.8-rc1"), Some((4, 8)));
        assert_eq!(parse_kernel("garbage"), None);
    }

    #[test]
    fn grantable_capabilities() {
        let status = "Name:\tx\nCapPrm:\t000001fffeffffff\nCapEff:\t000001fffeffffff\n";
        // A daemon without CAP_SYS_RESOURCE (24) cannot grant it.
        assert_eq!(grantable(Some(status), Some("40\n")), 0x1fffeffffff);
        // An older kernel (cap_last_cap 37) knows fewer.
        assert_eq!(grantable(Some(status), Some("37")), 0x3ffeffffff);
        assert_eq!(grantable(None, None), ALL_CAPS);
        assert_eq!(ALL_CAPS.count_ones(), 41);
        assert_eq!(HostFeatures::detect().capabilities & !ALL_CAPS, 0);
    }
}
