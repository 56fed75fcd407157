//! `mounts` and `linux.rootfsPropagation`.
//!
//! The defaults come first (/proc, /dev, /dev/pts, /dev/mqueue, /sys, /sys/fs/cgroup,
//! /dev/shm, then the pod's /etc/hosts, /etc/resolv.conf and /etc/hostname), then the CRI
//! mounts, parents before children. A CRI mount whose destination is a default's replaces
//! it (kubelet brings its own /etc/hosts). CRI mounts are recursive binds; host paths are
//! resolved through symlinks when they exist (the caller creates missing host directories
//! before building the spec, as kubelet expects of the runtime).

use std::path::{Component, Path, PathBuf};

use cri_api::v1;
use oci_spec::runtime::Mount;

use crate::error::MountProblem;
use crate::{SandboxView, SpecError};

/// The mounts of the spec and the rootfs propagation they need.
pub(crate) struct MountPlan {
    pub mounts: Vec<Mount>,
    pub rootfs_propagation: Option<&'static str>,
}

fn mount(destination: &str, typ: &str, source: impl AsRef<Path>, options: &[&str]) -> Mount {
    let mut m = Mount::default();
    m.set_destination(PathBuf::from(destination));
    m.set_typ(Some(typ.to_owned()));
    m.set_source(Some(source.as_ref().to_owned()));
    m.set_options(Some(options.iter().map(|o| o.to_string()).collect()));
    m
}

/// The mounts every container gets.
fn defaults(sandbox: &SandboxView, privileged: bool, readonly_rootfs: bool) -> Vec<Mount> {
    let ro_unless_privileged = if privileged { "rw" } else { "ro" };
    let pod_file = if readonly_rootfs { "ro" } else { "rw" };
    let shm = match (sandbox.shm, sandbox.ipc_ns) {
        (Some(dir), _) => mount(
            "/dev/shm",
            "bind",
            dir,
            &["rbind", "rprivate", "nosuid", "nodev", "noexec", "rw"],
        ),
        // Host IPC: the host's /dev/shm, so SysV and POSIX shm agree with the host.
        (None, None) => mount("/dev/shm", "bind", "/dev/shm", &["rbind", "rprivate", "rw"]),
        (None, Some(_)) => mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        ),
    };
    vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", ro_unless_privileged],
        ),
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &[
                "nosuid",
                "noexec",
                "nodev",
                "relatime",
                ro_unless_privileged,
            ],
        ),
        shm,
        mount(
            "/etc/hosts",
            "bind",
            sandbox.hosts,
            &["rbind", "rprivate", pod_file],
        ),
        mount(
            "/etc/resolv.conf",
            "bind",
            sandbox.resolv_conf,
            &["rbind", "rprivate", pod_file],
        ),
        mount(
            "/etc/hostname",
            "bind",
            sandbox.hostname_file,
            &["rbind", "rprivate", pod_file],
        ),
    ]
}

/// All mounts of the container.
pub(crate) fn mounts(
    container: &v1::ContainerConfig,
    sandbox: &SandboxView,
    privileged: bool,
    readonly_rootfs: bool,
) -> Result<MountPlan, SpecError> {
    let mut cri = Vec::with_capacity(container.mounts.len());
    let mut propagation = None;
    for m in &container.mounts {
        let (mount, needs) = cri_mount(m)?;
        propagation = match (propagation, needs) {
            (_, Some("rshared")) | (Some("rshared"), _) => Some("rshared"),
            (p, n) => n.or(p),
        };
        cri.push(mount);
    }
    refuse_below_bidirectional(&container.mounts)?;
    // Parents before children, keeping the CRI order otherwise.
    cri.sort_by_key(|m| m.destination().components().count());
    let mut all: Vec<Mount> = defaults(sandbox, privileged, readonly_rootfs)
        .into_iter()
        .filter(|d| !cri.iter().any(|m| m.destination() == d.destination()))
        .collect();
    all.extend(cri);
    Ok(MountPlan {
        mounts: all,
        rootfs_propagation: propagation,
    })
}

/// Refuses a CRI mount below a Bidirectional one (see [`MountProblem::BelowBidirectional`]).
fn refuse_below_bidirectional(mounts: &[v1::Mount]) -> Result<(), SpecError> {
    let shared = mounts
        .iter()
        .filter(|m| m.propagation == v1::MountPropagation::PropagationBidirectional as i32);
    for outer in shared {
        let outer_path = Path::new(&outer.container_path);
        // Another mount at the same path is stacked on it: the same propagation.
        if let Some(inner) = mounts.iter().find(|m| {
            !std::ptr::eq(*m, outer) && Path::new(&m.container_path).starts_with(outer_path)
        }) {
            return Err(SpecError::Mount {
                container_path: inner.container_path.clone(),
                problem: MountProblem::BelowBidirectional(outer.container_path.clone()),
            });
        }
    }
    Ok(())
}

/// One CRI mount, and the rootfs propagation it needs.
fn cri_mount(m: &v1::Mount) -> Result<(Mount, Option<&'static str>), SpecError> {
    let fail = |problem| SpecError::Mount {
        container_path: m.container_path.clone(),
        problem,
    };
    if m.image.as_ref().is_some_and(|i| !i.image.is_empty()) {
        return Err(SpecError::Unsupported("image volumes"));
    }
    if !m.uid_mappings.is_empty() || !m.gid_mappings.is_empty() {
        return Err(SpecError::Unsupported("ID-mapped mounts"));
    }
    let destination =
        clean(&m.container_path).ok_or_else(|| fail(MountProblem::ContainerPathNotAbsolute))?;
    let source = clean(&m.host_path)
        .ok_or_else(|| fail(MountProblem::HostPathNotAbsolute(m.host_path.clone())))?;
    // Symlinks in the host path are resolved on the host; a missing path stays as given.
    let source = std::fs::canonicalize(&source).unwrap_or(source);

    let (propagation, needs) = match v1::MountPropagation::try_from(m.propagation) {
        Ok(v1::MountPropagation::PropagationPrivate) => ("rprivate", None),
        Ok(v1::MountPropagation::PropagationHostToContainer) => ("rslave", Some("rslave")),
        Ok(v1::MountPropagation::PropagationBidirectional) => ("rshared", Some("rshared")),
        Err(_) => {
            return Err(SpecError::UnknownEnum {
                field: "mount.propagation",
                value: m.propagation,
            })
        }
    };
    if m.recursive_read_only {
        if !m.readonly {
            return Err(fail(MountProblem::RecursiveReadOnlyNotReadOnly));
        }
        if needs.is_some() {
            return Err(fail(MountProblem::RecursiveReadOnlyPropagation));
        }
    }
    let mut options = vec!["rbind", propagation, if m.readonly { "ro" } else { "rw" }];
    if m.recursive_read_only {
        options.push("rro");
    }
    for option in &m.mount_options {
        match option.as_str() {
            "noexec" | "nodev" | "nosuid" => options.push(option),
            other => return Err(fail(MountProblem::Option(other.to_owned()))),
        }
    }
    let dest = destination.to_string_lossy().into_owned();
    Ok((mount(&dest, "bind", source, &options), needs))
}

/// A lexically cleaned absolute path (`.`, `..` and repeated `/` removed, `..` stopping at
/// `/`); `None` when `path` is not absolute.
fn clean(path: &str) -> Option<PathBuf> {
    if !path.starts_with('/') {
        return None;
    }
    let mut out = PathBuf::from("/");
    for component in Path::new(path).components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::Pod;

    fn cri(host: &str, container: &str) -> v1::Mount {
        v1::Mount {
            host_path: host.into(),
            container_path: container.into(),
            ..Default::default()
        }
    }

    fn plan(mounts: Vec<v1::Mount>) -> Result<MountPlan, SpecError> {
        let pod = Pod::new();
        let container = v1::ContainerConfig {
            mounts,
            ..Default::default()
        };
        mounts_of(&container, &pod)
    }

    fn mounts_of(container: &v1::ContainerConfig, pod: &Pod) -> Result<MountPlan, SpecError> {
        mounts(container, &pod.view(), false, false)
    }

    fn opts(m: &Mount) -> Vec<&str> {
        m.options()
            .as_ref()
            .unwrap()
            .iter()
            .map(String::as_str)
            .collect()
    }

    fn find<'a>(plan: &'a MountPlan, dest: &str) -> &'a Mount {
        plan.mounts
            .iter()
            .find(|m| m.destination() == Path::new(dest))
            .unwrap()
    }

    #[test]
    fn defaults_in_order() {
        let plan = plan(vec![]).unwrap();
        let dests: Vec<_> = plan
            .mounts
            .iter()
            .map(|m| m.destination().to_str().unwrap())
            .collect();
        assert_eq!(
            dests,
            [
                "/proc",
                "/dev",
                "/dev/pts",
                "/dev/mqueue",
                "/sys",
                "/sys/fs/cgroup",
                "/dev/shm",
                "/etc/hosts",
                "/etc/resolv.conf",
                "/etc/hostname"
            ]
        );
        assert!(opts(find(&plan, "/sys")).contains(&"ro"));
        assert!(opts(find(&plan, "/sys/fs/cgroup")).contains(&"ro"));
        assert_eq!(
            opts(find(&plan, "/dev/pts")),
            [
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5"
            ]
        );
        assert!(opts(find(&plan, "/dev")).contains(&"size=65536k"));
        let shm = find(&plan, "/dev/shm");
        assert_eq!(
            shm.source().as_deref(),
            Some(Path::new("/run/berth/pods/pod/shm"))
        );
        assert_eq!(
            find(&plan, "/etc/hosts").source().as_deref(),
            Some(Path::new("/run/berth/pods/pod/hosts"))
        );
        assert!(opts(find(&plan, "/etc/resolv.conf")).contains(&"rw"));
        assert_eq!(plan.rootfs_propagation, None);
    }

    #[test]
    fn privileged_and_readonly_rootfs_change_defaults() {
        let pod = Pod::new();
        let plan = mounts(&Default::default(), &pod.view(), true, true).unwrap();
        assert!(opts(find(&plan, "/sys")).contains(&"rw"));
        assert!(opts(find(&plan, "/sys/fs/cgroup")).contains(&"rw"));
        assert!(opts(find(&plan, "/etc/hosts")).contains(&"ro"));
        assert!(opts(find(&plan, "/etc/hostname")).contains(&"ro"));
    }

    #[test]
    fn shm_follows_the_ipc_mode() {
        let mut pod = Pod::new();
        pod.shm = None;
        let plan = mounts_of(&Default::default(), &pod).unwrap();
        assert_eq!(find(&plan, "/dev/shm").typ().as_deref(), Some("tmpfs"));
        pod.ipc_ns = None;
        let plan = mounts_of(&Default::default(), &pod).unwrap();
        let shm = find(&plan, "/dev/shm");
        assert_eq!(
            (shm.typ().as_deref(), shm.source().as_deref()),
            (Some("bind"), Some(Path::new("/dev/shm")))
        );
    }

    #[test]
    fn propagation_modes() {
        for (mode, option, rootfs) in [
            (v1::MountPropagation::PropagationPrivate, "rprivate", None),
            (
                v1::MountPropagation::PropagationHostToContainer,
                "rslave",
                Some("rslave"),
            ),
            (
                v1::MountPropagation::PropagationBidirectional,
                "rshared",
                Some("rshared"),
            ),
        ] {
            let mut m = cri("/nonexistent/berth-test/a", "/mnt/a");
            m.propagation = mode as i32;
            let plan = plan(vec![m]).unwrap();
            let got = find(&plan, "/mnt/a");
            assert_eq!(got.typ().as_deref(), Some("bind"));
            assert_eq!(opts(got), ["rbind", option, "rw"], "{mode:?}");
            assert_eq!(plan.rootfs_propagation, rootfs, "{mode:?}");
        }
        let mut slave = cri("/nonexistent/s", "/s");
        slave.propagation = v1::MountPropagation::PropagationHostToContainer as i32;
        let mut shared = cri("/nonexistent/b", "/b");
        shared.propagation = v1::MountPropagation::PropagationBidirectional as i32;
        assert_eq!(
            plan(vec![shared.clone(), slave.clone()])
                .unwrap()
                .rootfs_propagation,
            Some("rshared")
        );
        assert_eq!(
            plan(vec![slave, shared]).unwrap().rootfs_propagation,
            Some("rshared")
        );
    }

    #[test]
    fn readonly_and_recursive_readonly() {
        let mut m = cri("/nonexistent/ro", "/ro");
        m.readonly = true;
        assert_eq!(
            opts(find(&plan(vec![m.clone()]).unwrap(), "/ro")),
            ["rbind", "rprivate", "ro"]
        );
        m.recursive_read_only = true;
        assert_eq!(
            opts(find(&plan(vec![m.clone()]).unwrap(), "/ro")),
            ["rbind", "rprivate", "ro", "rro"]
        );

        let rejected = |f: fn(&mut v1::Mount), problem: MountProblem| {
            let mut bad = m.clone();
            f(&mut bad);
            match plan(vec![bad]) {
                Err(SpecError::Mount {
                    container_path,
                    problem: got,
                }) => {
                    assert_eq!(container_path, "/ro");
                    assert_eq!(got, problem);
                }
                other => panic!("{:?}", other.map(|p| p.mounts)),
            }
        };
        rejected(
            |m| m.readonly = false,
            MountProblem::RecursiveReadOnlyNotReadOnly,
        );
        rejected(
            |m| m.propagation = v1::MountPropagation::PropagationHostToContainer as i32,
            MountProblem::RecursiveReadOnlyPropagation,
        );
        rejected(
            |m| m.propagation = v1::MountPropagation::PropagationBidirectional as i32,
            MountProblem::RecursiveReadOnlyPropagation,
        );
    }

    #[test]
    fn cri_mounts_replace_defaults_and_sort_parents_first() {
        let plan = plan(vec![
            cri("/nonexistent/a/b", "/data/a/b"),
            cri("/nonexistent/hosts", "/etc/hosts"),
            cri("/nonexistent/a", "/data/a/"),
        ])
        .unwrap();
        let hosts: Vec<_> = plan
            .mounts
            .iter()
            .filter(|m| m.destination() == Path::new("/etc/hosts"))
            .collect();
        assert_eq!(hosts.len(), 1);
        assert_eq!(
            hosts[0].source().as_deref(),
            Some(Path::new("/nonexistent/hosts"))
        );
        let dests: Vec<_> = plan
            .mounts
            .iter()
            .map(|m| m.destination().to_str().unwrap())
            .collect();
        let a = dests.iter().position(|d| *d == "/data/a").unwrap();
        let b = dests.iter().position(|d| *d == "/data/a/b").unwrap();
        assert!(a < b, "{dests:?}");
    }

    #[test]
    fn symlinked_host_paths_are_resolved() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        std::fs::create_dir(&real).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let plan = plan(vec![cri(link.to_str().unwrap(), "/mnt")]).unwrap();
        let expected = std::fs::canonicalize(&real).unwrap();
        assert_eq!(
            find(&plan, "/mnt").source().as_deref(),
            Some(expected.as_path())
        );
    }

    #[test]
    fn invalid_mounts() {
        assert!(matches!(
            plan(vec![cri("/x", "relative")]),
            Err(SpecError::Mount {
                problem: MountProblem::ContainerPathNotAbsolute,
                ..
            })
        ));
        assert!(matches!(
            plan(vec![cri("x", "/x")]),
            Err(SpecError::Mount {
                problem: MountProblem::HostPathNotAbsolute(_),
                ..
            })
        ));
        let mut image = cri("", "/img");
        image.image = Some(v1::ImageSpec {
            image: "busybox".into(),
            ..Default::default()
        });
        assert!(matches!(
            plan(vec![image]),
            Err(SpecError::Unsupported("image volumes"))
        ));
        let mut options = cri("/x", "/x");
        options.mount_options = vec!["nosuid".into(), "noexec".into()];
        assert_eq!(
            opts(find(&plan(vec![options.clone()]).unwrap(), "/x")),
            ["rbind", "rprivate", "rw", "nosuid", "noexec"]
        );
        options.mount_options = vec!["suid".into()];
        assert!(matches!(
            plan(vec![options]),
            Err(SpecError::Mount {
                problem: MountProblem::Option(_),
                ..
            })
        ));
    }

    #[test]
    fn selinux_relabel_is_tolerated() {
        let mut m = cri("/nonexistent/z", "/z");
        m.selinux_relabel = true;
        assert_eq!(
            opts(find(&plan(vec![m]).unwrap(), "/z")),
            ["rbind", "rprivate", "rw"]
        );
    }

    #[test]
    fn paths_are_cleaned() {
        assert_eq!(clean("/a//b/./c/"), Some(PathBuf::from("/a/b/c")));
        assert_eq!(clean("/a/../../b"), Some(PathBuf::from("/b")));
        assert_eq!(clean("a/b"), None);
        assert_eq!(clean(""), None);
    }

    #[test]
    fn nothing_may_be_mounted_below_a_bidirectional_mount() {
        let mut shared = cri("/srv/shared", "/data");
        shared.propagation = v1::MountPropagation::PropagationBidirectional as i32;
        let inner = cri("/srv/a", "/data/sub");
        match plan(vec![shared.clone(), inner.clone()]) {
            Err(SpecError::Mount {
                container_path,
                problem,
            }) => {
                assert_eq!(container_path, "/data/sub");
                assert_eq!(problem, MountProblem::BelowBidirectional("/data".into()));
            }
            other => panic!("{:?}", other.map(|p| p.mounts)),
        }
        // Another mount at the same path is stacked on it.
        match plan(vec![shared.clone(), cri("/srv/b", "/data")]) {
            Err(SpecError::Mount { problem, .. }) => {
                assert_eq!(problem, MountProblem::BelowBidirectional("/data".into()))
            }
            other => panic!("{:?}", other.map(|p| p.mounts)),
        }
        // Beside it, or below a private one, is fine; so is a name that only shares a prefix.
        assert!(plan(vec![shared.clone(), cri("/srv/b", "/elsewhere")]).is_ok());
        assert!(plan(vec![shared, cri("/srv/c", "/data2")]).is_ok());
        assert!(plan(vec![cri("/srv/shared", "/data"), inner]).is_ok());
    }
}
