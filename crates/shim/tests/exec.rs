//! Exec sessions through the shim with the real runc (root only; skipped otherwise): the
//! command runs as the shim's child, its streams and exit code come over the connection.

#[macro_use]
mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

use berth_shim::protocol::{frame, ExecRequest};
use berth_shim::ShimError;
use common::TestContainer;
use serde_json::{json, Value};

const START: Duration = Duration::from_secs(30);

/// A running `sleep` container.
fn running(name: &str) -> TestContainer {
    let mut c = TestContainer::new(name, &["sleep", "100"], |_| {});
    c.spawn().unwrap();
    c.start();
    c
}

/// Writes the container's process JSON with `args` (and `terminal`) for an exec.
fn process_file(c: &TestContainer, name: &str, args: &[&str], terminal: bool) -> PathBuf {
    let cfg: Value =
        serde_json::from_slice(&std::fs::read(c.bundle.join("config.json")).unwrap()).unwrap();
    let mut process = cfg["process"].clone();
    process["args"] = json!(args);
    process["terminal"] = json!(terminal);
    let path = c.path().join(format!("{name}.json"));
    std::fs::write(&path, process.to_string()).unwrap();
    path
}

fn request(id: &str, process: PathBuf, tty: bool, stdin: bool) -> ExecRequest {
    ExecRequest {
        exec_id: id.into(),
        process,
        tty,
        stdin,
        stdout: true,
        stderr: !tty,
    }
}

/// Reads frames to the exit frame: (stdout, stderr, exit code).
fn collect(mut s: UnixStream) -> (String, String, i32) {
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut buf = Vec::new();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let mut chunk = [0u8; 4096];
    loop {
        while let Some((id, end)) = frame::parse(&buf).unwrap() {
            let payload = buf[frame::HEADER..end].to_vec();
            buf.drain(..end);
            match id {
                frame::STDOUT => out.extend(payload),
                frame::STDERR => err.extend(payload),
                frame::EXIT => {
                    let code = i32::from_be_bytes(payload.try_into().unwrap());
                    let text = |v: Vec<u8>| String::from_utf8_lossy(&v).into_owned();
                    return (text(out), text(err), code);
                }
                other => panic!("unexpected frame {other}"),
            }
        }
        let n = s.read(&mut chunk).expect("read from shim");
        assert!(n > 0, "connection closed before the exit frame");
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[test]
fn output_and_exit_code() {
    require_root_and_runc!();
    let c = running("exec-out");
    let p = process_file(
        &c,
        "e1",
        &["sh", "-c", "echo out; echo err >&2; exit 3"],
        false,
    );
    let (s, pid) = c
        .client()
        .exec(request("e1", p, false, false), START)
        .unwrap();
    assert!(pid > 1);
    assert_eq!(collect(s), ("out\n".into(), "err\n".into(), 3));
    // Quick commands, one after the other: each exit is matched to its session.
    for i in 0..5 {
        let id = format!("q{i}");
        let p = process_file(&c, &id, &["sh", "-c", &format!("exit {i}")], false);
        let (s, _) = c
            .client()
            .exec(request(&id, p, false, false), START)
            .unwrap();
        assert_eq!(collect(s).2, i);
    }
    let files: Vec<_> = std::fs::read_dir(&c.state_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("exec-"))
        .collect();
    assert!(files.is_empty(), "session files left: {files:?}");
}

#[test]
fn stdin_then_eof() {
    require_root_and_runc!();
    let c = running("exec-stdin");
    let p = process_file(&c, "cat", &["cat"], false);
    let (mut s, _) = c
        .client()
        .exec(request("cat", p, false, true), START)
        .unwrap();
    let mut frames = Vec::new();
    frame::push(&mut frames, frame::STDIN, b"hello via shim");
    frame::push(&mut frames, frame::EOF, b"");
    s.write_all(&frames).unwrap();
    assert_eq!(collect(s), ("hello via shim".into(), String::new(), 0));
}

#[test]
fn tty_with_resize() {
    require_root_and_runc!();
    let c = running("exec-tty");
    let p = process_file(&c, "t", &["sh", "-c", "sleep 0.5; stty size"], true);
    let (mut s, _) = c
        .client()
        .exec(request("t", p, true, false), START)
        .unwrap();
    let mut frames = Vec::new();
    let (w, h) = (120u16.to_be_bytes(), 40u16.to_be_bytes());
    frame::push(&mut frames, frame::RESIZE, &[w[0], w[1], h[0], h[1]]);
    s.write_all(&frames).unwrap();
    let (out, _, code) = collect(s);
    assert_eq!((out.trim_end(), code), ("40 120", 0));
}

#[test]
fn signal_frame_kills() {
    require_root_and_runc!();
    let c = running("exec-kill");
    let p = process_file(&c, "k", &["sleep", "60"], false);
    let (mut s, _) = c
        .client()
        .exec(request("k", p, false, false), START)
        .unwrap();
    let mut frames = Vec::new();
    frame::push(&mut frames, frame::SIGNAL, &[9]);
    s.write_all(&frames).unwrap();
    assert_eq!(collect(s).2, 137);
}

#[test]
fn start_failure_is_runcs_message() {
    require_root_and_runc!();
    let c = running("exec-missing");
    let p = process_file(&c, "m", &["/no/such/binary"], false);
    match c.client().exec(request("m", p, false, false), START) {
        Err(ShimError::Rejected { message }) => {
            assert!(message.contains("no such file"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    // Bad IDs never reach the file system.
    let p = process_file(&c, "x", &["true"], false);
    match c.client().exec(request("../x", p, false, false), START) {
        Err(ShimError::Rejected { message }) => assert!(message.contains("exec_id")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn command_outlives_its_client() {
    require_root_and_runc!();
    let c = running("exec-gone");
    let p = process_file(&c, "g", &["sleep", "60"], false);
    let (s, pid) = c
        .client()
        .exec(request("g", p, false, false), START)
        .unwrap();
    drop(s);
    std::thread::sleep(Duration::from_millis(300));
    // Still running, and a child of the shim (not of this process).
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    assert_eq!(
        common::stat_field(&stat, 4),
        c.shim_pid.map(|p| p.to_string())
    );
    // The container's end ends it too; the shim then exits.
    let out = c.runc(&["kill", &c.id, "KILL"]);
    assert!(out.status.success(), "{out:?}");
    assert!(c.wait_shim_gone(Duration::from_secs(10)));
    assert!(!common::alive(pid));
}
