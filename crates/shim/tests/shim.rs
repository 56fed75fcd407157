//! End-to-end tests of berth-shim with the real runc (root only; skipped otherwise).

#[macro_use]
mod common;

use std::fs;
use std::time::{Duration, Instant};

use berth_shim::{ShimError, Status};
use common::TestContainer;
use serde_json::json;

const EXIT_TIMEOUT: Duration = Duration::from_secs(20);

#[test]
fn echo_goes_to_the_cri_log() {
    require_root_and_runc!();
    let mut c = TestContainer::new(
        "echo",
        &["sh", "-c", "echo hello; echo err >&2; printf partial"],
        |_| {},
    );
    let s = c.spawn().unwrap();
    assert!(s.init_pid > 1 && s.shim_pid > 1);
    // Created, not started: the shim reports it running (waiting at runc's exec fifo).
    let st = c.client().state().unwrap();
    assert_eq!(
        (st.pid, st.status, st.exit_code),
        (s.init_pid, Status::Running, None)
    );
    c.start();
    let exit = c.wait_exit(EXIT_TIMEOUT);
    assert_eq!(exit.exit_code, 0);
    assert!(!exit.oom_killed);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    assert!(exit.exited_at <= now && exit.exited_at > now - 60_000_000_000);

    let recs = c.records();
    for r in &recs {
        common::assert_timestamp(&r.ts);
    }
    let got: Vec<(&str, &str, &str)> = recs
        .iter()
        .map(|r| (r.stream.as_str(), r.flag.as_str(), r.content.as_str()))
        .collect();
    // stdout and stderr are separate pipes: their relative order is not fixed.
    assert_eq!(got.len(), 3, "{got:?}");
    assert!(got.contains(&("stdout", "F", "hello")), "{got:?}");
    assert!(got.contains(&("stderr", "F", "err")), "{got:?}");
    assert!(got.contains(&("stdout", "P", "partial")), "{got:?}");
    let hello = got.iter().position(|r| r.2 == "hello").unwrap();
    let partial = got.iter().position(|r| r.2 == "partial").unwrap();
    assert!(hello < partial);

    // The shim exits after the exit file; the client then answers from the file.
    assert!(c.wait_shim_gone(Duration::from_secs(5)));
    let st = c.client().state().unwrap();
    assert_eq!((st.status, st.exit_code), (Status::Exited, Some(0)));
    assert!(matches!(
        c.client().reopen_log(),
        Err(ShimError::NotRunning { .. })
    ));
    assert!(!c.state_dir.join("shim.sock").exists());
}

#[test]
fn exit_code_is_reported() {
    require_root_and_runc!();
    let mut c = TestContainer::new("exit3", &["sh", "-c", "exit 3"], |_| {});
    c.spawn().unwrap();
    c.start();
    assert_eq!(c.wait_exit(EXIT_TIMEOUT).exit_code, 3);
}

#[test]
fn sigkill_is_137() {
    require_root_and_runc!();
    let mut c = TestContainer::new("kill", &["sleep", "100"], |_| {});
    c.spawn().unwrap();
    c.start();
    let out = c.runc(&["kill", &c.id, "KILL"]);
    assert!(out.status.success(), "{out:?}");
    let exit = c.wait_exit(EXIT_TIMEOUT);
    assert_eq!(exit.exit_code, 137);
    assert!(!exit.oom_killed);
}

#[test]
fn never_started_container_exits_on_delete() {
    require_root_and_runc!();
    let mut c = TestContainer::new("unstarted", &["sleep", "100"], |_| {});
    c.spawn().unwrap();
    let out = c.runc(&["delete", "--force", &c.id]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(c.wait_exit(EXIT_TIMEOUT).exit_code, 137);
    assert!(c.wait_shim_gone(Duration::from_secs(5)));
}

#[test]
fn reopen_log_after_rotation() {
    require_root_and_runc!();
    let mut c = TestContainer::new(
        "reopen",
        &[
            "sh",
            "-c",
            "echo before; while [ ! -e /tmp/go ]; do sleep 0.05; done; echo after",
        ],
        |_| {},
    );
    c.spawn().unwrap();
    c.start();
    wait_for(|| c.records().iter().any(|r| r.content == "before"));

    let rotated = c.log_path.with_extension("log.1");
    fs::rename(&c.log_path, &rotated).unwrap();
    c.client().reopen_log().unwrap();
    assert!(
        c.log_path.exists(),
        "log path must exist right after reopen"
    );
    assert_eq!(fs::metadata(&c.log_path).unwrap().len(), 0);

    // Let the container go on: /tmp of the container is in its rootfs.
    fs::write(c.bundle.join("rootfs/tmp/go"), b"").unwrap();
    assert_eq!(c.wait_exit(EXIT_TIMEOUT).exit_code, 0);
    let new: Vec<String> = c.records().into_iter().map(|r| r.content).collect();
    assert_eq!(new, ["after"]);
    let old = common::parse_log(&fs::read_to_string(&rotated).unwrap());
    assert_eq!(old.len(), 1);
    assert_eq!(old[0].content, "before");
}

#[test]
fn runc_failure_is_reported() {
    require_root_and_runc!();
    let mut c = TestContainer::new("fail", &["berth-no-such-binary"], |_| {});
    let err = c.spawn().unwrap_err();
    match &err {
        ShimError::Runc { message } => {
            println!("runc's error as reported by spawn(): {message}");
            assert!(
                message.contains("executable file not found") || message.contains("no such file"),
                "{message}"
            )
        }
        other => panic!("expected a runc error, got {other:?}"),
    }
    // The shim cleaned up: no socket, no container left in runc.
    assert!(!c.state_dir.join("shim.sock").exists());
    assert!(!c.state_dir.join("shim.pid").exists());
    let out = c.runc(&["state", &c.id]);
    assert!(!out.status.success(), "container still exists: {out:?}");
}

#[test]
fn oom_kill_is_detected() {
    require_root_and_runc!();
    const LIMIT: i64 = 16 << 20;
    let mut c = TestContainer::new(
        "oom",
        &["sh", "-c", "dd if=/dev/zero of=/dev/null bs=64M count=1"],
        |cfg| {
            cfg["linux"]["resources"]["memory"] = json!({ "limit": LIMIT, "swap": LIMIT });
        },
    );
    c.spawn().unwrap();
    c.start();
    let exit = c.wait_exit(EXIT_TIMEOUT);
    assert!(exit.oom_killed, "{exit:?}; shim.log:\n{}", c.shim_log());
    assert_eq!(exit.exit_code, 137, "{exit:?}");
}

#[test]
fn stdin_pipe_and_close_stdin() {
    require_root_and_runc!();
    let mut c = TestContainer::new("stdin", &["sh", "-c", "cat; echo stdin-closed"], |_| {});
    let mut spec = c.spawn_spec();
    spec.stdin = true;
    c.spawn_with(&spec).unwrap();
    c.start();
    // cat blocks until the shim closes its end.
    std::thread::sleep(Duration::from_millis(200));
    assert!(common::read_exit_now(&c).is_none());
    c.client().close_stdin().unwrap();
    assert_eq!(c.wait_exit(EXIT_TIMEOUT).exit_code, 0);
    let recs = c.records();
    assert_eq!(recs.len(), 1, "{recs:?}");
    assert_eq!(recs[0].content, "stdin-closed");
}

#[test]
fn tty_output_and_resize() {
    require_root_and_runc!();
    let mut c = TestContainer::new("tty", &["sh", "-c", "stty size; echo tty-out"], |cfg| {
        cfg["process"]["terminal"] = json!(true);
    });
    let mut spec = c.spawn_spec();
    spec.tty = true;
    c.spawn_with(&spec).unwrap();
    c.client().resize(100, 30).unwrap();
    c.start();
    assert_eq!(c.wait_exit(EXIT_TIMEOUT).exit_code, 0);
    let recs = c.records();
    assert!(recs.iter().all(|r| r.stream == "stdout"), "{recs:?}");
    let lines: Vec<&str> = recs
        .iter()
        .map(|r| r.content.trim_end_matches('\r'))
        .collect();
    assert_eq!(lines, ["30 100", "tty-out"], "{recs:?}");
}

#[test]
fn resize_without_tty_is_refused() {
    require_root_and_runc!();
    let mut c = TestContainer::new("notty", &["sleep", "100"], |_| {});
    c.spawn().unwrap();
    match c.client().resize(80, 24) {
        Err(ShimError::Rejected { message }) => assert!(message.contains("terminal")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn idle_shim_rss() {
    require_root_and_runc!();
    let mut c = TestContainer::new("rss", &["sleep", "1000"], |_| {});
    let s = c.spawn().unwrap();
    c.start();
    c.client().state().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let status = fs::read_to_string(format!("/proc/{}/status", s.shim_pid)).unwrap();
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("{name} missing in {status}"))
    };
    let (rss, anon, file) = (field("VmRSS:"), field("RssAnon:"), field("RssFile:"));
    println!(
        "idle berth-shim ({}): VmRSS {rss} KiB (RssAnon {anon} KiB, RssFile {file} KiB)",
        common::shim_binary().display()
    );
    assert!(rss <= 2048, "VmRSS {rss} KiB > 2 MiB");
}

fn wait_for(cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "condition not met in time");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// berth-runc's client against the real runc: the state of a container the shim created,
/// started and saw exit, and runc's answer for one it does not know.
#[test]
fn runc_state_through_berth_runc() {
    require_root_and_runc!();
    let mut c = TestContainer::new("runcstate", &["sh", "-c", "read x; exit 3"], |_| {});
    let spec = berth_shim::ShimSpawn {
        stdin: true,
        ..c.spawn_spec()
    };
    let s = c.spawn_with(&spec).unwrap();
    let runc = berth_runc::Runc::new(common::RUNC, &c.runc_root);
    let timeout = Duration::from_secs(20);
    let st = runc.state(&c.id, timeout).unwrap();
    assert_eq!(
        (st.id.as_str(), st.status, st.pid),
        (c.id.as_str(), berth_runc::Status::Created, s.init_pid)
    );
    runc.run(&berth_runc::Op::Start { id: &c.id }, timeout)
        .unwrap();
    assert_eq!(
        runc.state(&c.id, timeout).unwrap().status,
        berth_runc::Status::Running
    );
    c.client().close_stdin().unwrap();
    assert_eq!(c.wait_exit(EXIT_TIMEOUT).exit_code, 3);
    // Once the exit file is written the shim deletes runc's container.
    let deadline = std::time::Instant::now() + timeout;
    loop {
        match runc.state(&c.id, timeout) {
            Err(err) if err.is_not_found() => break,
            Ok(st) => assert_eq!(st.status, berth_runc::Status::Stopped),
            Err(err) => panic!("{err:?}"),
        }
        assert!(
            std::time::Instant::now() < deadline,
            "runc still has {}",
            c.id
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    let err = runc.state("berth-no-such-container", timeout).unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
    assert_eq!(
        err.to_string(),
        "runc state berth-no-such-container: container does not exist"
    );
}
