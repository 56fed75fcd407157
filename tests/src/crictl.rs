//! Running crictl against a test daemon's socket (crictl on PATH, as tests/run.sh arranges).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::pods::{is_root, PodEnv};
use crate::registry::{shared_registry, skip_or_panic};
use crate::Layout;

/// A daemon for a crictl test: root, the shared registry (mirrored) and crictl on PATH are
/// needed; without them `test` prints a note and `None` is returned (or it panics when
/// `BERTH_REQUIRE_REGISTRY=1`). `slot` is the test's network slot in its binary.
pub fn start_env(test: &str, slot: u8) -> Option<PodEnv> {
    start_env_in(test, slot, Layout::new)
}

/// [`start_env`] in the layout `layout()` makes (for a test that needs its own config keys).
pub fn start_env_in(test: &str, slot: u8, layout: impl FnOnce() -> Layout) -> Option<PodEnv> {
    if !is_root() {
        crate::registry::skip_or_panic(test, "pods need root");
        return None;
    }
    let registry = shared_registry(test)?;
    if !available() {
        skip_or_panic(test, "crictl is not on PATH");
        return None;
    }
    let layout = layout();
    layout.mirror_to(&registry);
    Some(PodEnv::start_in(layout, slot))
}

/// Whether crictl can be run.
pub fn available() -> bool {
    Command::new("crictl").arg("--version").output().is_ok()
}

/// Runs `crictl <args>` against `socket`, feeding `stdin` if given.
pub fn crictl(socket: &Path, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new("crictl")
        .arg("--runtime-endpoint")
        .arg(format!("unix://{}", socket.display()))
        .arg("--timeout")
        .arg("60s")
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run crictl");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(input).unwrap();
    }
    child.wait_with_output().unwrap()
}

/// Runs crictl, asserts success and returns its stdout.
pub fn ok(socket: &Path, args: &[&str]) -> String {
    let out = crictl(socket, args, None);
    assert!(
        out.status.success(),
        "crictl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `crictl runp <pod_json>`: the new pod's ID.
pub fn run_pod(socket: &Path, pod_json: &Path) -> String {
    ok(socket, &["runp", pod_json.to_str().unwrap()])
        .trim()
        .to_owned()
}

/// `crictl create` then `crictl start`: the running container's ID.
pub fn create_started(socket: &Path, pod: &str, ctr_json: &Path, pod_json: &Path) -> String {
    let ctr = ok(
        socket,
        &[
            "create",
            pod,
            ctr_json.to_str().unwrap(),
            pod_json.to_str().unwrap(),
        ],
    )
    .trim()
    .to_owned();
    ok(socket, &["start", &ctr]);
    ctr
}

/// Writes `pod.json` (pod `name` in namespace `berth-it`, logs under `dir/logs`) and
/// `ctr.json` (container `box` of `image` running `top`) into `dir`; returns their paths.
pub fn top_pod_configs(dir: &Path, name: &str, image: &str) -> (PathBuf, PathBuf) {
    let pod_json = dir.join("pod.json");
    std::fs::write(
        &pod_json,
        format!(
            r#"{{"metadata":{{"name":"{name}","namespace":"berth-it","uid":"uid-{name}"}},"log_directory":"{}","linux":{{}}}}"#,
            dir.join("logs").display()
        ),
    )
    .unwrap();
    let ctr_json = dir.join("ctr.json");
    std::fs::write(
        &ctr_json,
        format!(r#"{{"metadata":{{"name":"box"}},"image":{{"image":"{image}"}},"command":["top"],"log_path":"box.log","linux":{{}}}}"#),
    )
    .unwrap();
    (pod_json, ctr_json)
}
