//! Did the kernel OOM-kill something in the container's cgroup?
//!
//! The cgroup comes from the bundle's `config.json` (`linux.cgroupsPath`, in either form runc
//! accepts); `berth-cgroups` turns it into a directory and reads the `oom_kill` counter from
//! whichever hierarchy holds it (v1 `memory.oom_control`, v2 `memory.events` on a unified or
//! hybrid host). The files outlive the container's processes (runc removes the cgroup on
//! `runc delete`), so they can be read after the init was reaped.

use std::path::{Path, PathBuf};

use berth_cgroups::{Cgroup, CGROUP_ROOT};
use serde::Deserialize;

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
fn cgroups_path(config_json: &[u8]) -> Option<String> {
    let c: Config = serde_json::from_slice(config_json).ok()?;
    c.linux?.cgroups_path.filter(|p| !p.is_empty())
}

/// The container's cgroup below a hierarchy root, from its config.json; None when the spec
/// names none (or nothing a cgroup can be).
pub(crate) fn cgroup_of(config_json: &[u8]) -> Option<PathBuf> {
    berth_cgroups::relative_dir(&cgroups_path(config_json)?)
}

/// True if the host's counters of cgroup `rel` report an OOM kill.
pub(crate) fn oom_killed(rel: &Path) -> bool {
    Cgroup::new(CGROUP_ROOT, rel).oom_killed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_json() {
        let c = br#"{"ociVersion":"1.0.2","linux":{"cgroupsPath":"/k/p/c","namespaces":[]}}"#;
        assert_eq!(cgroups_path(c).as_deref(), Some("/k/p/c"));
        assert_eq!(cgroups_path(br#"{"linux":{}}"#), None);
        assert_eq!(cgroups_path(br#"{"process":{}}"#), None);
        assert_eq!(cgroups_path(b"nope"), None);
        assert_eq!(
            cgroup_of(br#"{"linux":{"cgroupsPath":"kubepods.slice:berth:c"}}"#),
            Some(PathBuf::from("kubepods.slice/berth-c.scope"))
        );
        assert_eq!(cgroup_of(br#"{"linux":{"cgroupsPath":""}}"#), None);
    }
}
