//! Running crictl against a test daemon's socket (crictl on PATH, as tests/run.sh arranges).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

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
