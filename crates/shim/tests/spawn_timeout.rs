//! `spawn()` against a "shim" that never reports: it times out and leaves no zombie. In its
//! own test binary: the fake shim is a script written just before it is executed, which must not
//! race with forks in other test threads (ETXTBSY). Needs neither root nor runc.

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use berth_shim::{spawn, ShimError, ShimSpawn};

#[test]
fn hung_binary_times_out_and_is_reaped() {
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("hangs");
    std::fs::write(&fake, "#!/bin/sh\nexec sleep 30\n").unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let spec = ShimSpawn {
        shim_binary: fake,
        id: "x".into(),
        bundle: dir.path().into(),
        runc: "/bin/false".into(),
        runc_root: dir.path().into(),
        state_dir: dir.path().join("state"),
        log_path: dir.path().join("log"),
        stdin: false,
        stdin_once: false,
        tty: false,
        systemd_cgroup: false,
    };
    let t0 = Instant::now();
    let err = spawn(&spec, Duration::from_millis(300)).unwrap_err();
    assert!(matches!(err, ShimError::Timeout { .. }), "{err:?}");
    assert!(t0.elapsed() < Duration::from_secs(5));
    // The hung process was our direct child: it was killed and reaped, nothing is left.
    assert!(matches!(
        nix::sys::wait::waitpid(None, Some(nix::sys::wait::WaitPidFlag::WNOHANG)),
        Err(nix::errno::Errno::ECHILD)
    ));
}
