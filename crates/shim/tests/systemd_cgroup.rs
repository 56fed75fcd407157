//! The shim hands the cgroup driver on to runc: spawned with `systemd_cgroup`, its `runc
//! create` (and the `runc delete --force` that undoes a failed one) get `--systemd-cgroup`;
//! without it they do not. runc is a fake that records its argv and fails like runc does, so
//! this needs neither root nor runc. In its own test binary: the fake is a script written just
//! before it is executed, which must not race with forks in other test threads (ETXTBSY).

#[allow(unused_macros)] // only the binary lookup is used here
mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use berth_shim::{paths, spawn, ShimError, ShimSpawn};

/// Records each invocation's argv as one line (arguments separated by spaces) in `calls`, then
/// fails with two JSON error lines on stderr (runc logs to the --log file too, the fake does
/// not: the shim must find them on stderr).
fn write_fake_runc(dir: &Path) -> std::path::PathBuf {
    let script = dir.join("runc");
    let body = format!(
        r#"#!/bin/sh
echo "$*" >> '{calls}'
case "$*" in
  *" create "*)
    echo '{{"level":"fatal","msg":"nsexec-1[1]: failed to update /proc/self/oom_score_adj: Permission denied"}}' >&2
    echo '{{"level":"error","msg":"runc create failed: can'"'"'t get final child'"'"'s PID from pipe: EOF"}}' >&2
    exit 1 ;;
esac
exit 0
"#,
        calls = dir.join("calls").display()
    );
    std::fs::write(&script, body).unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script
}

fn calls(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("calls"))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn runc_gets_systemd_cgroup_exactly_when_the_shim_was_told() {
    let dir = tempfile::tempdir().unwrap();
    let runc = write_fake_runc(dir.path());
    let bundle = dir.path().join("bundle");
    std::fs::create_dir(&bundle).unwrap();
    std::fs::write(
        bundle.join("config.json"),
        r#"{"linux":{"cgroupsPath":"system.slice:berth:c1"}}"#,
    )
    .unwrap();

    for systemd_cgroup in [true, false] {
        let _ = std::fs::remove_file(dir.path().join("calls"));
        let state_dir = dir.path().join(format!("state-{systemd_cgroup}"));
        let spec = ShimSpawn {
            shim_binary: common::shim_binary(),
            id: "c1".into(),
            bundle: bundle.clone(),
            runc: runc.clone(),
            runc_root: dir.path().join("runc-root"),
            state_dir: state_dir.clone(),
            log_path: dir.path().join("c1.log"),
            stdin: false,
            stdin_once: false,
            tty: false,
            systemd_cgroup,
        };
        match spawn(&spec, Duration::from_secs(30)) {
            Err(ShimError::Runc { message }) => assert_eq!(
                message,
                "nsexec-1[1]: failed to update /proc/self/oom_score_adj: Permission denied; \
                 runc create failed: can't get final child's PID from pipe: EOF",
                "every error runc printed, in order"
            ),
            other => panic!("expected runc's failure, got {other:?}"),
        }
        let globals = format!(
            "--root {} --log {} --log-format json",
            dir.path().join("runc-root").display(),
            state_dir.join(paths::RUNC_LOG).display()
        );
        let flag = if systemd_cgroup {
            " --systemd-cgroup"
        } else {
            ""
        };
        assert_eq!(
            calls(dir.path()),
            [
                format!(
                    "{globals}{flag} create --bundle {} --pid-file {} c1",
                    bundle.display(),
                    state_dir.join(paths::INIT_PID_FILE).display()
                ),
                format!("{globals}{flag} delete --force c1"),
            ],
            "systemd_cgroup = {systemd_cgroup}"
        );
    }
}
