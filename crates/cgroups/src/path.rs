//! The directory a spec's `linux.cgroupsPath` names, relative to a hierarchy root, in either
//! form runc accepts:
//! - cgroupfs: `/a/b/c` (relative paths are taken from the root too);
//! - systemd: `slice:prefix:name`, e.g. `kubepods-besteffort-pod1.slice:cri-berth:abc` →
//!   `kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1.slice/cri-berth-abc.scope`.

use std::path::{Component, PathBuf};

/// The cgroup's path relative to a hierarchy root (no leading `/`), or None if the value cannot
/// be a cgroup (empty, `..` components, malformed systemd triple).
pub fn relative_dir(cgroups_path: &str) -> Option<PathBuf> {
    let rel = if cgroups_path.starts_with('/') || !cgroups_path.contains(':') {
        PathBuf::from(cgroups_path.trim_start_matches('/'))
    } else {
        systemd_path(cgroups_path)?
    };
    let sane = rel.components().all(|c| matches!(c, Component::Normal(_)));
    (sane && !rel.as_os_str().is_empty()).then_some(rel)
}

/// `slice:prefix:name` → `<expanded slice>/<prefix>-<name>.scope`.
fn systemd_path(v: &str) -> Option<PathBuf> {
    let mut parts = v.split(':');
    let (slice, prefix, name) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || name.is_empty() {
        return None;
    }
    let mut path = expand_slice(if slice.is_empty() {
        "system.slice"
    } else {
        slice
    })?;
    let unit = if name.ends_with(".slice") {
        name.to_string()
    } else if prefix.is_empty() {
        format!("{name}.scope")
    } else {
        format!("{prefix}-{name}.scope")
    };
    path.push(unit);
    Some(path)
}

/// `a-b-c.slice` → `a.slice/a-b.slice/a-b-c.slice`; `-.slice` is the root.
pub(crate) fn expand_slice(slice: &str) -> Option<PathBuf> {
    let base = slice.strip_suffix(".slice")?;
    let mut path = PathBuf::new();
    if base == "-" {
        return Some(path);
    }
    if base.is_empty() || base.contains('/') || base.starts_with('-') || base.ends_with('-') {
        return None;
    }
    let mut prefix = String::new();
    for (i, part) in base.split('-').enumerate() {
        if part.is_empty() {
            return None;
        }
        if i > 0 {
            prefix.push('-');
        }
        prefix.push_str(part);
        path.push(format!("{prefix}.slice"));
    }
    Some(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{cgroups_path, CgroupDriver};

    #[test]
    fn cgroupfs_paths() {
        assert_eq!(
            relative_dir("/berth-shim-test/abc").unwrap(),
            PathBuf::from("berth-shim-test/abc")
        );
        assert_eq!(
            relative_dir("kubepods/pod1/abc").unwrap(),
            PathBuf::from("kubepods/pod1/abc")
        );
        assert!(relative_dir("/a/../../etc").is_none());
        assert!(relative_dir("/").is_none());
        assert!(relative_dir("").is_none());
        // An absolute path is a directory even when it holds colons.
        assert_eq!(relative_dir("/a:b:c").unwrap(), PathBuf::from("a:b:c"));
    }

    #[test]
    fn systemd_paths() {
        assert_eq!(
            relative_dir("kubepods-besteffort-pod1.slice:cri-berth:abc").unwrap(),
            PathBuf::from(
                "kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1.slice/cri-berth-abc.scope"
            )
        );
        assert_eq!(
            relative_dir("system.slice:runc:x").unwrap(),
            PathBuf::from("system.slice/runc-x.scope")
        );
        assert_eq!(
            relative_dir("-.slice::x").unwrap(),
            PathBuf::from("x.scope")
        );
        assert!(relative_dir("bad:x").is_none());
        assert!(relative_dir("a--b.slice:p:x").is_none());
    }

    #[test]
    fn systemd_nested_slices() {
        assert_eq!(
            expand_slice("kubepods-besteffort.slice").unwrap(),
            PathBuf::from("kubepods.slice/kubepods-besteffort.slice")
        );
        assert_eq!(
            expand_slice("a-b-c-d.slice").unwrap(),
            PathBuf::from("a.slice/a-b.slice/a-b-c.slice/a-b-c-d.slice")
        );
        assert_eq!(expand_slice("-.slice").unwrap(), PathBuf::new());
        for bad in ["kubepods", ".slice", "-a.slice", "a-.slice", "a/b.slice"] {
            assert!(expand_slice(bad).is_none(), "{bad}");
        }
        // No slice: systemd's default; a name that is itself a slice is not a scope.
        assert_eq!(
            relative_dir(":berth:abc").unwrap(),
            PathBuf::from("system.slice/berth-abc.scope")
        );
        assert_eq!(
            relative_dir("kubepods.slice::kubepods-pod1.slice").unwrap(),
            PathBuf::from("kubepods.slice/kubepods-pod1.slice")
        );
        assert!(relative_dir("a.slice:p:").is_none());
        assert!(relative_dir("a.slice:p:x:y").is_none());
    }

    #[test]
    fn what_berth_writes_names_the_expected_directory() {
        let rel = |driver, parent| relative_dir(&cgroups_path(driver, parent, "abc").unwrap());
        assert_eq!(
            rel(CgroupDriver::Cgroupfs, "").unwrap(),
            PathBuf::from("berth/abc")
        );
        assert_eq!(
            rel(CgroupDriver::Cgroupfs, "/kubepods/burstable/pod1").unwrap(),
            PathBuf::from("kubepods/burstable/pod1/abc")
        );
        assert_eq!(
            rel(CgroupDriver::Systemd, "").unwrap(),
            PathBuf::from("system.slice/berth-abc.scope")
        );
        assert_eq!(
            rel(
                CgroupDriver::Systemd,
                "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice"
            )
            .unwrap(),
            PathBuf::from(
                "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/berth-abc.scope"
            )
        );
    }
}
