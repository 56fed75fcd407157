//! Running `berthctl` against a test daemon's socket. The binary is `$BERTHCTL` when set,
//! else `berthctl` beside the berthd under test (both are built by
//! `cargo build --workspace`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// Path of the berthctl binary under test.
pub fn binary() -> PathBuf {
    if let Some(path) = std::env::var_os("BERTHCTL") {
        return PathBuf::from(path);
    }
    let berthd = crate::berthd_binary();
    let binary = berthd.with_file_name("berthctl");
    assert!(
        binary.is_file(),
        "{} is missing: run `cargo build --workspace` first or set BERTHCTL",
        binary.display()
    );
    binary
}

/// Where berthctl's standard input comes from and its standard output goes.
pub enum Io<'a> {
    /// Nothing in; output captured.
    None,
    /// Input from a file; output captured.
    StdinFrom(&'a Path),
    /// No input; output written to a file.
    StdoutTo(&'a Path),
}

/// Runs `berthctl --socket <socket> <args>`.
pub fn run(socket: &Path, args: &[&str], io: Io<'_>) -> Output {
    let mut command = Command::new(binary());
    command.arg("--socket").arg(socket).args(args);
    command.stdin(Stdio::null()).stdout(Stdio::piped());
    match io {
        Io::None => {}
        Io::StdinFrom(path) => {
            command.stdin(std::fs::File::open(path).unwrap());
        }
        Io::StdoutTo(path) => {
            command.stdout(std::fs::File::create(path).unwrap());
        }
    }
    command
        .stderr(Stdio::piped())
        .output()
        .expect("run berthctl")
}

/// Runs berthctl, asserts it succeeded and returns its stdout.
pub fn ok(socket: &Path, args: &[&str]) -> String {
    let out = run(socket, args, Io::None);
    assert_success(args, &out);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Panics with berthctl's output unless it exited 0.
pub fn assert_success(args: &[&str], out: &Output) {
    assert!(
        out.status.success(),
        "berthctl {args:?} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs berthctl, asserts it failed with status 1 and returns its stderr.
pub fn fails(socket: &Path, args: &[&str]) -> String {
    let out = run(socket, args, Io::None);
    assert_eq!(
        out.status.code(),
        Some(1),
        "berthctl {args:?} should fail:\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}
