//! Namespace pinning: logic against the recording fake (no root), then the real thing
//! (root only; skipped by name otherwise, failed under `BERTH_TEST_NO_SKIP=1`).

use std::path::{Path, PathBuf};

use nix::errno::Errno;

use super::fake::{Call, FakeNs, Op};
use super::{pin, NamespaceRequest, NsError, NsKind};

fn full_request() -> NamespaceRequest {
    NamespaceRequest {
        net: true,
        ipc: true,
        uts: true,
        hostname: Some("test-hostname".into()),
        sysctls: vec![
            ("kernel.shm_rmid_forced".into(), "1".into()),
            ("fs.mqueue.msg_max".into(), "100".into()),
            ("net.ipv4.ip_unprivileged_port_start".into(), "0".into()),
        ],
    }
}

#[test]
fn creates_in_order_unshare_hostname_sysctls_pins() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ns").join("sandbox1");
    let fake = FakeNs::default();
    let pinned = pin::create(&fake, &dir, &full_request()).unwrap();

    assert_eq!(pinned.net, Some(dir.join("net")));
    assert_eq!(pinned.get(NsKind::Uts), Some(dir.join("uts").as_path()));
    assert_eq!(
        fake.calls(),
        vec![
            Call::Unshare(vec![NsKind::Net, NsKind::Ipc, NsKind::Uts]),
            Call::SetHostname("test-hostname".into()),
            Call::WriteSysctl("/proc/sys/kernel/shm_rmid_forced".into(), "1".into()),
            Call::WriteSysctl("/proc/sys/fs/mqueue/msg_max".into(), "100".into()),
            Call::WriteSysctl(
                "/proc/sys/net/ipv4/ip_unprivileged_port_start".into(),
                "0".into()
            ),
            Call::Pin(NsKind::Net, dir.join("net")),
            Call::Pin(NsKind::Ipc, dir.join("ipc")),
            Call::Pin(NsKind::Uts, dir.join("uts")),
        ]
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);

    pin::remove(&fake, &dir).unwrap();
    assert!(!dir.exists());
    assert!(fake.mounted().is_empty());
    pin::remove(&fake, &dir).unwrap();
}

#[test]
fn only_requested_kinds_are_created() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    let fake = FakeNs::default();
    let req = NamespaceRequest {
        ipc: true,
        ..Default::default()
    };
    let pinned = pin::create(&fake, &dir, &req).unwrap();
    assert_eq!((pinned.net, pinned.uts), (None, None));
    assert_eq!(pinned.ipc, Some(dir.join("ipc")));
    assert_eq!(fake.calls()[0], Call::Unshare(vec![NsKind::Ipc]));
    assert!(!dir.join("net").exists());
}

#[test]
fn nothing_requested_creates_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    let fake = FakeNs::default();
    let pinned = pin::create(&fake, &dir, &NamespaceRequest::default()).unwrap();
    assert_eq!(pinned, Default::default());
    assert!(fake.calls().is_empty());
    assert!(!dir.exists());
}

#[test]
fn invalid_input_is_refused_before_anything_is_created() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    let cases = [
        NamespaceRequest {
            net: false,
            sysctls: vec![("net.ipv4.ip_forward".into(), "1".into())],
            ..full_request()
        },
        NamespaceRequest {
            sysctls: vec![("kernel.hostname".into(), "x".into())],
            ..full_request()
        },
        NamespaceRequest {
            uts: false,
            ..full_request()
        },
        NamespaceRequest {
            hostname: Some("h".repeat(65)),
            ..full_request()
        },
    ];
    for req in cases {
        let fake = FakeNs::default();
        let err = pin::create(&fake, &dir, &req).unwrap_err();
        assert!(
            matches!(
                err,
                NsError::SysctlNotAllowed { .. } | NsError::InvalidHostname { .. }
            ),
            "{err:?}"
        );
        assert!(fake.calls().is_empty(), "{:?}", fake.calls());
        assert!(!dir.exists());
    }
}

#[test]
fn failures_midway_undo_everything() {
    let failures = [
        (Op::Unshare, 0),
        (Op::SetHostname, 0),
        (Op::WriteSysctl, 1),
        (Op::Pin, 0),
        (Op::Pin, 2),
    ];
    for (op, nth) in failures {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("s");
        let fake = FakeNs::failing(op, nth, Errno::EPERM);
        let err = pin::create(&fake, &dir, &full_request()).unwrap_err();
        match (op, &err) {
            (Op::Unshare, NsError::Unshare { kinds, .. }) => assert_eq!(kinds, "net,ipc,uts"),
            (Op::SetHostname, NsError::SetHostname { .. }) => {}
            (Op::WriteSysctl, NsError::Sysctl { name, .. }) => {
                assert_eq!(name, "fs.mqueue.msg_max")
            }
            (Op::Pin, NsError::Pin { kind, .. }) => {
                assert_eq!(*kind, NsKind::ALL[nth])
            }
            _ => panic!("{op:?}: unexpected {err:?}"),
        }
        assert!(!dir.exists(), "{op:?}: {} left behind", dir.display());
        assert!(fake.mounted().is_empty(), "{op:?}: pins left mounted");
    }
}

#[test]
fn read_only_proc_sys_is_written_through_a_writable_mount() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    let fake = FakeNs::failing(Op::WriteSysctl, 0, Errno::EROFS);
    pin::create(&fake, &dir, &full_request()).unwrap();
    let calls = fake.calls();
    let shm = Call::WriteSysctl("/proc/sys/kernel/shm_rmid_forced".into(), "1".into());
    // Every sysctl once more inside, then the pins back outside.
    assert_eq!(calls[2], shm);
    assert_eq!(calls[3], Call::WritableProcSys);
    assert_eq!(calls[4], shm);
    assert_eq!(calls[7], Call::WritableProcSysDone);
    assert!(matches!(calls[8], Call::Pin(NsKind::Net, _)), "{calls:?}");
    assert_eq!(calls.len(), 11, "{calls:?}");
}

#[test]
fn other_sysctl_errors_are_not_retried() {
    for errno in [Errno::ENOENT, Errno::EPERM, Errno::EINVAL] {
        let tmp = tempfile::tempdir().unwrap();
        let fake = FakeNs::failing(Op::WriteSysctl, 0, errno);
        let err = pin::create(&fake, &tmp.path().join("s"), &full_request()).unwrap_err();
        assert!(matches!(err, NsError::Sysctl { .. }), "{err:?}");
        assert!(!fake.calls().contains(&Call::WritableProcSys), "{errno}");
    }
}

#[test]
fn an_existing_dir_is_not_touched() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("keep"), "").unwrap();
    let fake = FakeNs::default();
    let err = pin::create(&fake, &dir, &full_request()).unwrap_err();
    assert!(matches!(err, NsError::DirExists { .. }), "{err:?}");
    assert!(dir.join("keep").exists());
}

#[test]
fn remove_handles_absent_and_partial_dirs() {
    let tmp = tempfile::tempdir().unwrap();
    let fake = FakeNs::default();
    pin::remove(&fake, &tmp.path().join("absent")).unwrap();

    let dir = tmp.path().join("partial");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("net"), "").unwrap();
    pin::remove(&fake, &dir).unwrap();
    assert!(!dir.exists());
}

// ---- root: the real kernel ----

fn is_root() -> bool {
    berth_testutil::need_root("namespaces, mounts and sysctls")
}

/// Removes the pins on drop, also when the test panics.
struct PinGuard(PathBuf);

impl Drop for PinGuard {
    fn drop(&mut self) {
        if let Err(err) = super::remove_pinned(&self.0) {
            eprintln!("cleanup of {} failed: {err}", self.0.display());
        }
    }
}

/// Filesystem types of the mounts at or under `prefix`, from `/proc/self/mountinfo`.
fn mounts_under(prefix: &Path) -> Vec<(PathBuf, String)> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    info.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let mount_point = PathBuf::from(fields.get(4)?);
            let after = line.split(" - ").nth(1)?;
            let fstype = after.split(' ').next()?.to_owned();
            mount_point
                .starts_with(prefix)
                .then_some((mount_point, fstype))
        })
        .collect()
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path).unwrap().trim().to_owned()
}

#[test]
fn root_pins_namespaces_with_hostname_and_sysctls() {
    if !is_root() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ns").join("sb");
    let _guard = PinGuard(dir.clone());
    let host = [
        read_trimmed("/proc/sys/kernel/shm_rmid_forced"),
        read_trimmed("/proc/sys/fs/mqueue/msg_max"),
        read_trimmed("/proc/sys/net/ipv4/ip_unprivileged_port_start"),
    ];
    let host_name = nix::unistd::gethostname().unwrap();

    let pinned = super::create_pinned(&dir, &full_request()).unwrap();
    let (net, ipc, uts) = (
        pinned.net.clone().unwrap(),
        pinned.ipc.clone().unwrap(),
        pinned.uts.clone().unwrap(),
    );
    let mut mounts = mounts_under(&dir);
    mounts.sort();
    assert_eq!(
        mounts,
        vec![
            (ipc.clone(), "nsfs".to_owned()),
            (net.clone(), "nsfs".to_owned()),
            (uts.clone(), "nsfs".to_owned()),
        ]
    );

    let hostname = super::in_namespace(&uts, NsKind::Uts, nix::unistd::gethostname).unwrap();
    assert_eq!(hostname.unwrap(), "test-hostname");

    let ipc_values = super::in_namespace(&ipc, NsKind::Ipc, || {
        [
            read_trimmed("/proc/sys/kernel/shm_rmid_forced"),
            read_trimmed("/proc/sys/fs/mqueue/msg_max"),
        ]
    })
    .unwrap();
    assert_eq!(ipc_values, ["1", "100"]);

    let (port_start, devices, links) = super::in_netns(&net, || {
        let devices = read_trimmed("/proc/thread-self/net/dev");
        let links = std::process::Command::new("ip")
            .args(["-o", "link", "show"])
            .output()
            .unwrap();
        (
            read_trimmed("/proc/sys/net/ipv4/ip_unprivileged_port_start"),
            devices,
            String::from_utf8(links.stdout).unwrap(),
        )
    })
    .unwrap();
    assert_eq!(port_start, "0");
    let names: Vec<&str> = devices
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(str::trim)
        .collect();
    assert_eq!(names, ["lo"], "{devices}");
    assert_eq!(links.lines().count(), 1, "{links}");
    let flags = links.split('<').nth(1).unwrap().split('>').next().unwrap();
    assert!(
        !flags.split(',').any(|f| f == "UP"),
        "lo must be down: {links}"
    );

    // Entering a UTS pin from a foreign tool works too.
    let nsenter = std::process::Command::new("nsenter")
        .arg(format!("--uts={}", uts.display()))
        .arg("hostname")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&nsenter.stdout).trim(),
        "test-hostname"
    );

    // The host kept its values.
    assert_eq!(
        host,
        [
            read_trimmed("/proc/sys/kernel/shm_rmid_forced"),
            read_trimmed("/proc/sys/fs/mqueue/msg_max"),
            read_trimmed("/proc/sys/net/ipv4/ip_unprivileged_port_start"),
        ]
    );
    assert_eq!(nix::unistd::gethostname().unwrap(), host_name);

    super::remove_pinned(&dir).unwrap();
    assert!(!dir.exists());
    assert!(mounts_under(&dir).is_empty());
    super::remove_pinned(&dir).unwrap();
}

#[test]
fn root_failing_sysctl_leaves_nothing() {
    if !is_root() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("sb");
    let _guard = PinGuard(dir.clone());
    let req = NamespaceRequest {
        sysctls: vec![("net.ipv4.no_such_thing".into(), "1".into())],
        ..full_request()
    };
    let err = super::create_pinned(&dir, &req).unwrap_err();
    assert!(
        matches!(&err, NsError::Sysctl { name, .. } if name == "net.ipv4.no_such_thing"),
        "{err:?}"
    );
    assert!(!dir.exists());
    assert!(mounts_under(tmp.path()).is_empty());
}

#[test]
fn root_entering_a_pin_of_the_wrong_kind_fails() {
    if !is_root() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("sb");
    let _guard = PinGuard(dir.clone());
    let req = NamespaceRequest {
        uts: true,
        ..Default::default()
    };
    let pinned = super::create_pinned(&dir, &req).unwrap();
    let err = super::in_netns(pinned.uts.as_ref().unwrap(), || ()).unwrap_err();
    assert!(
        matches!(
            err,
            NsError::Enter {
                kind: NsKind::Net,
                ..
            }
        ),
        "{err:?}"
    );
    let err = super::in_netns(&tmp.path().join("missing"), || ()).unwrap_err();
    assert!(matches!(err, NsError::Open { .. }), "{err:?}");
}

#[test]
fn root_apply_sysctls_after_creation() {
    if !is_root() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("sb");
    let _guard = PinGuard(dir.clone());
    let host = [
        read_trimmed("/proc/sys/net/ipv4/ip_unprivileged_port_start"),
        read_trimmed("/proc/sys/kernel/shmmni"),
    ];
    let req = NamespaceRequest {
        net: true,
        ipc: true,
        ..Default::default()
    };
    let pinned = super::create_pinned(&dir, &req).unwrap();
    super::apply_sysctls(
        &pinned,
        &[
            ("net/ipv4/ip_unprivileged_port_start".into(), "100".into()),
            ("kernel.shmmni".into(), "1000".into()),
        ],
    )
    .unwrap();
    let net = super::in_netns(pinned.net.as_ref().unwrap(), || {
        read_trimmed("/proc/sys/net/ipv4/ip_unprivileged_port_start")
    })
    .unwrap();
    let ipc = super::in_namespace(pinned.ipc.as_ref().unwrap(), NsKind::Ipc, || {
        read_trimmed("/proc/sys/kernel/shmmni")
    })
    .unwrap();
    assert_eq!((net.as_str(), ipc.as_str()), ("100", "1000"));
    assert_eq!(
        host,
        [
            read_trimmed("/proc/sys/net/ipv4/ip_unprivileged_port_start"),
            read_trimmed("/proc/sys/kernel/shmmni"),
        ]
    );

    let ipc_only = super::PinnedNamespaces {
        net: None,
        ..pinned
    };
    let err =
        super::apply_sysctls(&ipc_only, &[("net.ipv4.ip_forward".into(), "1".into())]).unwrap_err();
    assert!(matches!(err, NsError::SysctlNotAllowed { .. }), "{err:?}");
}

#[test]
fn root_sysctls_through_a_read_only_proc_sys() {
    use nix::mount::{mount, MsFlags};
    use nix::sched::{unshare, CloneFlags};
    use std::os::unix::fs::MetadataExt;

    if !is_root() {
        return;
    }
    // A thread of the test's own with /proc/sys read-only in its own mount namespace (as in a
    // node container) and an IPC namespace of its own, so nothing outside it changes.
    std::thread::spawn(|| {
        unshare(CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWIPC).unwrap();
        let none = None::<&str>;
        mount(none, "/", none, MsFlags::MS_REC | MsFlags::MS_SLAVE, none).unwrap();
        mount(Some("/proc/sys"), "/proc/sys", none, MsFlags::MS_BIND, none).unwrap();
        let ro = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY;
        mount(none, "/proc/sys", none, ro, none).unwrap();
        let mnt_ns = || std::fs::metadata("/proc/thread-self/ns/mnt").unwrap().ino();
        let before = mnt_ns();
        let value = if read_trimmed("/proc/sys/kernel/shmmni") == "1000" {
            "1001"
        } else {
            "1000"
        };
        let sysctls =
            super::sysctl::validate(&[("kernel.shmmni".into(), value.into())], false, true)
                .unwrap();
        super::sysctl::write_all(&super::sys::LinuxNs, &sysctls).unwrap();
        assert_eq!(read_trimmed("/proc/sys/kernel/shmmni"), value);
        // Back in the same mount namespace, where /proc/sys is still read-only.
        assert_eq!(mnt_ns(), before);
        let err = std::fs::OpenOptions::new()
            .write(true)
            .open("/proc/sys/kernel/shmmni")
            .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(Errno::EROFS as i32));
    })
    .join()
    .unwrap();
}
