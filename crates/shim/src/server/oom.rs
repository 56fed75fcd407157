//! Did the kernel OOM-kill something in the container's cgroup?
//!
//! The cgroup comes from the bundle's `config.json` (`linux.cgroupsPath`), in either form runc
//! accepts:
//! - cgroupfs: `/a/b/c` (relative paths are taken from the root too);
//! - systemd: `slice:prefix:name`, e.g. `kubepods-besteffort-pod1.slice:cri-berth:abc` →
//!   `/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1.slice/cri-berth-abc.scope`.
//!
//! The counter is `oom_kill` in cgroup v1's `memory.oom_control` (`<root>/memory/<path>/`) or in
//! v2's `memory.events` (`<root>/<path>/` on a unified host, `<root>/unified/<path>/` on a
//! hybrid one). Every candidate that exists is read; any count above zero means OOM-killed.
//! The files outlive the container's processes (runc removes the cgroup on `runc delete`), so
//! they can be read after the init was reaped.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The cgroup filesystem root on a real host.
pub(crate) const CGROUP_ROOT: &str = "/sys/fs/cgroup";

#[derive(Deserialize)]
struct Config {
    #[serde(default)]
    linux: Option<Linux>,
}

#[derive(Deserialize)]
struct Linux {
    #[serde(default, rename = "cgroupsPath")]
    cgroups_path: Option<String>,
}

/// `linux.cgroupsPath` from a config.json, if set.
pub(crate) fn cgroups_path(config_json: &[u8]) -> Option<String> {
    let c: Config = serde_json::from_slice(config_json).ok()?;
    c.linux?.cgroups_path.filter(|p| !p.is_empty())
}

/// The cgroup's path relative to a hierarchy root (no leading `/`), or None if the value cannot
/// be a cgroup (`..` components, malformed systemd triple).
pub(crate) fn cgroup_relative(cgroups_path: &str) -> Option<PathBuf> {
    let rel = if cgroups_path.starts_with('/') || !cgroups_path.contains(':') {
        PathBuf::from(cgroups_path.trim_start_matches('/'))
    } else {
        systemd_path(cgroups_path)?
    };
    let sane = rel
        .components()
        .all(|c| matches!(c, std::path::Component::Normal(_)));
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
fn expand_slice(slice: &str) -> Option<PathBuf> {
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

/// The files that may hold the OOM-kill counter, in the order checked.
pub(crate) fn counter_files(root: &Path, rel: &Path) -> [PathBuf; 3] {
    [
        root.join("memory").join(rel).join("memory.oom_control"),
        root.join("unified").join(rel).join("memory.events"),
        root.join(rel).join("memory.events"),
    ]
}

/// The `oom_kill` field of `memory.oom_control` (v1) or `memory.events` (v2).
pub(crate) fn parse_oom_kill(contents: &str) -> Option<u64> {
    contents.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == "oom_kill").then(|| v.trim().parse().ok())?
    })
}

/// True if any existing counter file of the cgroup reports an OOM kill.
pub(crate) fn oom_killed(root: &Path, rel: &Path) -> bool {
    counter_files(root, rel).iter().any(|f| {
        std::fs::read_to_string(f)
            .ok()
            .and_then(|c| parse_oom_kill(&c))
            .is_some_and(|n| n > 0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_v1_and_v2() {
        let v1 = "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n";
        let v2 = "low 0\nhigh 0\nmax 7\noom 1\noom_kill 1\noom_group_kill 0\n";
        let none = "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n";
        assert_eq!(parse_oom_kill(v1), Some(2));
        assert_eq!(parse_oom_kill(v2), Some(1));
        assert_eq!(parse_oom_kill(none), Some(0));
        // Old kernels have no oom_kill line; `oom_kill_disable` must not match.
        assert_eq!(parse_oom_kill("oom_kill_disable 1\nunder_oom 0\n"), None);
    }

    #[test]
    fn cgroupfs_paths() {
        assert_eq!(
            cgroup_relative("/berth-shim-test/abc").unwrap(),
            PathBuf::from("berth-shim-test/abc")
        );
        assert_eq!(
            cgroup_relative("kubepods/pod1/abc").unwrap(),
            PathBuf::from("kubepods/pod1/abc")
        );
        assert!(cgroup_relative("/a/../../etc").is_none());
        assert!(cgroup_relative("/").is_none());
        let files = counter_files(Path::new("/sys/fs/cgroup"), Path::new("a/b"));
        assert_eq!(
            files,
            [
                PathBuf::from("/sys/fs/cgroup/memory/a/b/memory.oom_control"),
                PathBuf::from("/sys/fs/cgroup/unified/a/b/memory.events"),
                PathBuf::from("/sys/fs/cgroup/a/b/memory.events"),
            ]
        );
    }

    #[test]
    fn systemd_paths() {
        assert_eq!(
            cgroup_relative("kubepods-besteffort-pod1.slice:cri-berth:abc").unwrap(),
            PathBuf::from(
                "kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1.slice/cri-berth-abc.scope"
            )
        );
        assert_eq!(
            cgroup_relative("system.slice:runc:x").unwrap(),
            PathBuf::from("system.slice/runc-x.scope")
        );
        assert_eq!(
            cgroup_relative("-.slice::x").unwrap(),
            PathBuf::from("x.scope")
        );
        assert!(cgroup_relative("bad:x").is_none());
        assert!(cgroup_relative("a--b.slice:p:x").is_none());
    }

    #[test]
    fn config_json() {
        let c = br#"{"ociVersion":"1.0.2","linux":{"cgroupsPath":"/k/p/c","namespaces":[]}}"#;
        assert_eq!(cgroups_path(c).as_deref(), Some("/k/p/c"));
        assert_eq!(cgroups_path(br#"{"linux":{}}"#), None);
        assert_eq!(cgroups_path(br#"{"process":{}}"#), None);
        assert_eq!(cgroups_path(b"nope"), None);
    }

    #[test]
    fn reads_whichever_files_exist() {
        let root = tempfile::tempdir().unwrap();
        let rel = Path::new("t/c");
        assert!(!oom_killed(root.path(), rel));
        let v1 = root.path().join("memory/t/c");
        std::fs::create_dir_all(&v1).unwrap();
        std::fs::write(v1.join("memory.oom_control"), "oom_kill 0\n").unwrap();
        assert!(!oom_killed(root.path(), rel));
        let v2 = root.path().join("t/c");
        std::fs::create_dir_all(&v2).unwrap();
        std::fs::write(v2.join("memory.events"), "oom 1\noom_kill 1\n").unwrap();
        assert!(oom_killed(root.path(), rel));
    }
}
