//! The cgroup driver, and the `linux.cgroupsPath` a container's spec gets with it: where runc
//! puts the container, under the pod's cgroup parent.
//!
//! - cgroupfs: `<parent>/<id>` as an absolute path (`/berth/<id>` when the pod has no parent).
//! - systemd: runc's `slice:prefix:name` form, `<parent slice>:berth:<id>`; the slice is the
//!   last element of the parent (kubelet passes `kubepods-burstable-pod<uid>.slice`, critest
//!   `/test.slice`), `system.slice` when the pod has none. runc names the scope
//!   `berth-<id>.scope`.

use std::path::Path;

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

/// Longest cgroup parent accepted (PATH_MAX).
pub const MAX_PARENT_LEN: usize = 4096;

/// Longest name of one cgroup (NAME_MAX).
const MAX_NAME_LEN: usize = 255;

/// A pod's cgroup parent that the driver cannot use. Only what kubelet sends is accepted:
/// for cgroupfs an absolute path of ordinary names (`/kubepods/burstable/pod<uid>`), for
/// systemd a slice (`kubepods-burstable-pod<uid>.slice`, or `/test.slice` as critest sends).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParentError {
    /// Longer than [`MAX_PARENT_LEN`], or a name in it longer than NAME_MAX.
    #[error("cgroup parent is {len} bytes long; at most {max} are allowed")]
    TooLong {
        /// Length of the parent or of the name.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// cgroupfs: not an absolute path.
    #[error("the cgroupfs driver needs an absolute cgroup parent (/kubepods/…)")]
    NotAbsolute,
    /// A character outside the cgroup names berth accepts (ASCII letters, digits, `-`, `_`,
    /// `.`, and `@` for systemd).
    #[error("character {found:?} at offset {offset} is not allowed in a cgroup parent")]
    BadCharacter {
        /// The character.
        found: char,
        /// Its byte offset.
        offset: usize,
    },
    /// An empty, `.` or `..` name (which would leave or alias the cgroup root).
    #[error("cgroup parent has an empty, `.` or `..` name at offset {offset}")]
    BadName {
        /// Byte offset of the name.
        offset: usize,
    },
    /// systemd: the parent's last name is not a slice (`name.slice` with `-`-separated
    /// non-empty parts).
    #[error("the systemd driver needs a slice (name.slice) as cgroup parent")]
    NotASlice,
}

/// Checks that `parent` (`""` for none) is a cgroup parent `driver` can use.
pub fn check_parent(driver: CgroupDriver, parent: &str) -> Result<(), ParentError> {
    if parent.is_empty() {
        return Ok(());
    }
    if parent.len() > MAX_PARENT_LEN {
        return Err(ParentError::TooLong {
            len: parent.len(),
            max: MAX_PARENT_LEN,
        });
    }
    let allowed = |c: char| {
        c.is_ascii_alphanumeric()
            || matches!(c, '-' | '_' | '.')
            || (c == '@' && driver == CgroupDriver::Systemd)
    };
    if let Some((offset, found)) = parent
        .char_indices()
        .find(|&(_, c)| c != '/' && !allowed(c))
    {
        return Err(ParentError::BadCharacter { found, offset });
    }
    let body = match driver {
        CgroupDriver::Cgroupfs => parent.strip_prefix('/').ok_or(ParentError::NotAbsolute)?,
        CgroupDriver::Systemd => parent.strip_prefix('/').unwrap_or(parent),
    };
    let skipped = parent.len() - body.len();
    // "/" alone is the root: the default parent is used.
    if body.is_empty() && driver == CgroupDriver::Cgroupfs {
        return Ok(());
    }
    let mut offset = skipped;
    for name in body.split('/') {
        if name.is_empty() || name == "." || name == ".." {
            return Err(ParentError::BadName { offset });
        }
        if name.len() > MAX_NAME_LEN {
            return Err(ParentError::TooLong {
                len: name.len(),
                max: MAX_NAME_LEN,
            });
        }
        offset += name.len() + 1;
    }
    if driver == CgroupDriver::Systemd {
        let last = body.rsplit('/').next().unwrap_or(body);
        if crate::path::expand_slice(last).is_none() || last == "-.slice" {
            return Err(ParentError::NotASlice);
        }
    }
    Ok(())
}

/// The `cgroupsPath` of container `container_id` in a pod whose cgroup parent is `parent`
/// (`""` for none); the parent is checked with [`check_parent`].
pub fn cgroups_path(
    driver: CgroupDriver,
    parent: &str,
    container_id: &str,
) -> Result<String, ParentError> {
    check_parent(driver, parent)?;
    match driver {
        CgroupDriver::Cgroupfs => {
            let parent = if parent.trim_matches('/').is_empty() {
                DEFAULT_CGROUPFS_PARENT
            } else {
                parent
            };
            Ok(format!("{}/{container_id}", parent.trim_end_matches('/')))
        }
        CgroupDriver::Systemd => {
            let slice = parent
                .rsplit('/')
                .find(|s| !s.is_empty())
                .unwrap_or(DEFAULT_SLICE);
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
        assert_eq!(
            cgroups_path(CgroupDriver::Cgroupfs, "/a/../../etc", "abc"),
            Err(ParentError::BadName { offset: 3 })
        );
    }

    #[test]
    fn only_what_kubelet_sends_is_a_parent() {
        use CgroupDriver::{Cgroupfs, Systemd};
        for ok in ["", "/", "/kubepods", "/kubepods/burstable/pod0a1b-2c_3.d"] {
            assert_eq!(check_parent(Cgroupfs, ok), Ok(()), "{ok}");
        }
        for ok in [
            "",
            "/test.slice",
            "kubepods-besteffort-pod0a1b_2c.slice",
            "/kubepods.slice/kubepods-burstable.slice",
            "user-1000.slice",
            "system-getty@x.slice",
        ] {
            assert_eq!(check_parent(Systemd, ok), Ok(()), "{ok}");
        }
        let refused = [
            (Cgroupfs, "kubepods/pod1", ParentError::NotAbsolute),
            (
                Cgroupfs,
                "/kubepods//pod1",
                ParentError::BadName { offset: 10 },
            ),
            (Cgroupfs, "/a/./b", ParentError::BadName { offset: 3 }),
            (Cgroupfs, "/a/..", ParentError::BadName { offset: 3 }),
            (
                Cgroupfs,
                "/a\nb",
                ParentError::BadCharacter {
                    found: '\n',
                    offset: 2,
                },
            ),
            (
                Cgroupfs,
                "/pödel",
                ParentError::BadCharacter {
                    found: 'ö',
                    offset: 2,
                },
            ),
            (
                Cgroupfs,
                "/a b",
                ParentError::BadCharacter {
                    found: ' ',
                    offset: 2,
                },
            ),
            (
                Cgroupfs,
                "/a@b",
                ParentError::BadCharacter {
                    found: '@',
                    offset: 2,
                },
            ),
            (Systemd, "/kubepods/pod1", ParentError::NotASlice),
            (
                Systemd,
                "a:b.slice",
                ParentError::BadCharacter {
                    found: ':',
                    offset: 1,
                },
            ),
            (Systemd, "a--b.slice", ParentError::NotASlice),
            (Systemd, "-.slice", ParentError::NotASlice),
            (Systemd, "/", ParentError::BadName { offset: 1 }),
        ];
        for (driver, parent, error) in refused {
            assert_eq!(check_parent(driver, parent), Err(error), "{parent:?}");
        }
        let long = format!("/{}", "a".repeat(MAX_PARENT_LEN));
        assert!(matches!(
            check_parent(Cgroupfs, &long),
            Err(ParentError::TooLong { .. })
        ));
        let long_name = format!("/{}", "a".repeat(256));
        assert_eq!(
            check_parent(Cgroupfs, &long_name),
            Err(ParentError::TooLong { len: 256, max: 255 })
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
        assert_eq!(p("/kubepods/pod1"), Err(ParentError::NotASlice));
        assert!(matches!(
            p("a:b.slice"),
            Err(ParentError::BadCharacter { .. })
        ));
    }
}
