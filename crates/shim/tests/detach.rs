//! The shim detaches: it is not the spawner's child, runs in its own session, and leaves no
//! zombie behind. In its own test binary so no other test's children are around to confuse the
//! zombie check.

#[macro_use]
mod common;

use std::fs;
use std::time::Duration;

use berth_shim::Status;
use common::{stat_field, TestContainer};

#[test]
fn shim_outlives_its_spawner_and_leaves_no_zombie() {
    require_root_and_runc!();
    let mut c = TestContainer::new("detach", &["sleep", "100"], |_| {});
    let s = c.spawn().unwrap();
    let me = std::process::id().to_string();

    let stat = fs::read_to_string(format!("/proc/{}/stat", s.shim_pid)).unwrap();
    let ppid = stat_field(&stat, 4).unwrap();
    let session = stat_field(&stat, 6).unwrap();
    assert_ne!(ppid, me, "the shim must not be our child");
    assert_eq!(
        session,
        s.shim_pid.to_string(),
        "the shim leads its own session"
    );

    // The container init is the shim's child (the shim is its subreaper).
    let init_stat = fs::read_to_string(format!("/proc/{}/stat", s.init_pid)).unwrap();
    assert_eq!(stat_field(&init_stat, 4).unwrap(), s.shim_pid.to_string());

    // Nothing of ours is left unreaped: no child of this process at all remains.
    let children: Vec<String> = fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| fs::read_to_string(e.path().join("stat")).ok())
        .filter(|st| stat_field(st, 4).as_deref() == Some(me.as_str()))
        .collect();
    assert!(children.is_empty(), "children left: {children:?}");

    // The shim's stdio is /dev/null.
    for fd in 0..3 {
        let target = fs::read_link(format!("/proc/{}/fd/{fd}", s.shim_pid)).unwrap();
        assert_eq!(target, std::path::Path::new("/dev/null"));
    }

    c.start();
    assert_eq!(c.client().state().unwrap().status, Status::Running);
    // SIGTERM to the shim is ignored: it keeps serving.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(s.shim_pid as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert!(common::alive(s.shim_pid));
    assert_eq!(c.client().state().unwrap().status, Status::Running);
    assert!(
        c.shim_log().contains("ignoring SIGTERM"),
        "{}",
        c.shim_log()
    );
}
