//! The runc commands the shim runs: `create`, `exec --detach` (exec sessions) and, on a failed
//! start, `delete --force`.
//!
//! Global flags: `runc --root <runc-root> --log <state-dir>/runc.log --log-format json`.
//! runc writes its errors both to that JSON log and to its stderr; the shim reports the last
//! `error`-level message logged during this `create`, else runc's stderr, else the exit status.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Deserialize;

/// A runc binary with the shim's global options.
pub(crate) struct Runc {
    binary: PathBuf,
    root: PathBuf,
    log: PathBuf,
}

/// Standard streams handed to `runc create`; for a non-TTY container runc passes them on to
/// the container's init.
pub(crate) struct RuncStdio {
    pub stdin: Stdio,
    pub stdout: Stdio,
    pub stderr: Stdio,
}

impl Runc {
    pub(crate) fn new(binary: &Path, root: &Path, log: &Path) -> Self {
        Runc {
            binary: binary.to_path_buf(),
            root: root.to_path_buf(),
            log: log.to_path_buf(),
        }
    }

    fn global_args(&self) -> Vec<OsString> {
        vec![
            "--root".into(),
            self.root.clone().into(),
            "--log".into(),
            self.log.clone().into(),
            "--log-format".into(),
            "json".into(),
        ]
    }

    /// `<global> <verb...> --pid-file <pid_file> [--console-socket <sock>] <id>`: the shape of
    /// both commands that start a process.
    fn start_args(
        &self,
        verb: &[&OsStr],
        pid_file: &Path,
        console_socket: Option<&Path>,
        id: &str,
    ) -> Vec<OsString> {
        let mut a = self.global_args();
        a.extend(verb.iter().map(|s| s.to_os_string()));
        a.extend(["--pid-file".into(), pid_file.into()]);
        if let Some(sock) = console_socket {
            a.extend(["--console-socket".into(), sock.into()]);
        }
        a.push(id.into());
        a
    }

    pub(crate) fn create_args(
        &self,
        id: &str,
        bundle: &Path,
        pid_file: &Path,
        console_socket: Option<&Path>,
    ) -> Vec<OsString> {
        let verb = ["create".as_ref(), "--bundle".as_ref(), bundle.as_os_str()];
        self.start_args(&verb, pid_file, console_socket, id)
    }

    /// A copy that logs to `log` (each exec session has its own log, so concurrent sessions
    /// do not read each other's errors).
    pub(crate) fn with_log(&self, log: &Path) -> Runc {
        Runc {
            binary: self.binary.clone(),
            root: self.root.clone(),
            log: log.to_path_buf(),
        }
    }

    pub(crate) fn exec_args(
        &self,
        id: &str,
        process: &Path,
        pid_file: &Path,
        console_socket: Option<&Path>,
    ) -> Vec<OsString> {
        let verb = [
            "exec".as_ref(),
            "--detach".as_ref(),
            "--process".as_ref(),
            process.as_os_str(),
        ];
        self.start_args(&verb, pid_file, console_socket, id)
    }

    /// Starts `runc exec --detach` without waiting for it: the shim reaps it in its loop (see
    /// `exec`), and the started process is re-parented to the shim when runc exits.
    pub(crate) fn spawn_exec(
        &self,
        id: &str,
        process: &Path,
        pid_file: &Path,
        console_socket: Option<&Path>,
        stdio: RuncStdio,
    ) -> io::Result<u32> {
        let child = self
            .command(self.exec_args(id, process, pid_file, console_socket))
            .stdin(stdio.stdin)
            .stdout(stdio.stdout)
            .stderr(stdio.stderr)
            .spawn()?;
        // Dropping the handle neither waits nor kills; the loop's waitpid reaps it.
        Ok(child.id())
    }

    /// Why a `runc exec` that exited with `code` failed: its log's last error, else what it
    /// wrote to `stderr`.
    pub(crate) fn exec_failure(&self, stderr: &[u8], code: i32) -> String {
        let log = read_from(&self.log, 0).unwrap_or_default();
        failure_message(
            &log,
            stderr,
            &format!("runc exec failed (exit code {code})"),
        )
    }

    pub(crate) fn delete_force_args(&self, id: &str) -> Vec<OsString> {
        let mut a = self.global_args();
        a.extend(["delete".into(), "--force".into(), id.into()]);
        a
    }

    fn command(&self, args: Vec<OsString>) -> Command {
        let mut c = Command::new(&self.binary);
        // runc would talk to systemd's notify socket if it found one in the environment.
        c.args(args).env_remove("NOTIFY_SOCKET");
        c
    }

    /// Runs `runc create` to completion. `Err` carries runc's message.
    pub(crate) fn create(
        &self,
        id: &str,
        bundle: &Path,
        pid_file: &Path,
        console_socket: Option<&Path>,
        stdio: RuncStdio,
        stderr_capture: &mut dyn FnMut() -> Vec<u8>,
    ) -> Result<(), String> {
        let log_start = std::fs::metadata(&self.log).map(|m| m.len()).unwrap_or(0);
        let mut cmd = self.command(self.create_args(id, bundle, pid_file, console_socket));
        cmd.stdin(stdio.stdin)
            .stdout(stdio.stdout)
            .stderr(stdio.stderr);
        let status = cmd
            .spawn()
            .and_then(|mut child| child.wait())
            .map_err(|e| format!("run {}: {e}", self.binary.display()))?;
        // Dropping the command closes our copies of the container's ends of the pipes.
        drop(cmd);
        if status.success() {
            return Ok(());
        }
        let log_tail = read_from(&self.log, log_start).unwrap_or_default();
        Err(failure_message(
            &log_tail,
            &stderr_capture(),
            &format!("runc create failed ({status})"),
        ))
    }

    /// `runc delete --force`, best effort (used to undo a failed start).
    pub(crate) fn delete_force(&self, id: &str) {
        let _ = self
            .command(self.delete_force_args(id))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn read_from(path: &Path, offset: u64) -> io::Result<String> {
    let mut f = File::open(path)?;
    f.seek(SeekFrom::Start(offset))?;
    let mut s = String::new();
    f.take(1 << 20).read_to_string(&mut s)?;
    Ok(s)
}

#[derive(Deserialize)]
struct LogLine {
    #[serde(default)]
    level: String,
    #[serde(default)]
    msg: String,
}

/// The last `error`-level (or worse) message in runc's JSON log.
pub(crate) fn last_error(log: &str) -> Option<String> {
    log.lines().rev().find_map(|l| {
        let line: LogLine = serde_json::from_str(l).ok()?;
        matches!(line.level.as_str(), "error" | "fatal" | "panic")
            .then_some(line.msg)
            .filter(|m| !m.is_empty())
    })
}

fn failure_message(log_tail: &str, stderr: &[u8], fallback: &str) -> String {
    if let Some(m) = last_error(log_tail) {
        return m;
    }
    let err = String::from_utf8_lossy(stderr);
    let err = err.trim();
    if !err.is_empty() {
        return err.chars().take(4096).collect();
    }
    fallback.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runc() -> Runc {
        Runc::new(
            Path::new("/usr/sbin/runc"),
            Path::new("/run/berth/runc"),
            Path::new("/s/runc.log"),
        )
    }

    fn strs(v: Vec<OsString>) -> Vec<String> {
        v.into_iter().map(|s| s.into_string().unwrap()).collect()
    }

    #[test]
    fn create_argv() {
        let r = runc();
        assert_eq!(
            strs(r.create_args("c1", Path::new("/b"), Path::new("/s/pid"), None)),
            [
                "--root",
                "/run/berth/runc",
                "--log",
                "/s/runc.log",
                "--log-format",
                "json",
                "create",
                "--bundle",
                "/b",
                "--pid-file",
                "/s/pid",
                "c1"
            ]
        );
        let tty = strs(r.create_args(
            "c1",
            Path::new("/b"),
            Path::new("/s/pid"),
            Some(Path::new("/s/console.sock")),
        ));
        assert_eq!(&tty[11..], ["--console-socket", "/s/console.sock", "c1"]);
        assert_eq!(
            &strs(r.delete_force_args("c1"))[6..],
            ["delete", "--force", "c1"]
        );
    }

    #[test]
    fn last_error_of_json_log() {
        let log = concat!(
            "{\"level\":\"warning\",\"msg\":\"w\",\"time\":\"t\"}\n",
            "{\"level\":\"error\",\"msg\":\"first\",\"time\":\"t\"}\n",
            "not json\n",
            "{\"level\":\"error\",\"msg\":\"exec: \\\"x\\\": executable file not found in $PATH\",\"time\":\"t\"}\n",
            "{\"level\":\"info\",\"msg\":\"later\",\"time\":\"t\"}\n",
        );
        assert_eq!(
            last_error(log).unwrap(),
            "exec: \"x\": executable file not found in $PATH"
        );
        assert_eq!(last_error("{\"level\":\"info\",\"msg\":\"x\"}\n"), None);
    }

    #[test]
    fn failure_message_fallbacks() {
        let st = "runc create failed (exit status: 1)";
        assert_eq!(
            failure_message("{\"level\":\"error\",\"msg\":\"boom\"}", b"other", st),
            "boom"
        );
        assert_eq!(failure_message("", b"  from stderr\n", st), "from stderr");
        assert_eq!(failure_message("", b"", st), st);
    }

    #[test]
    fn exec_argv() {
        let r = runc().with_log(Path::new("/s/exec-e1.log"));
        assert_eq!(
            strs(r.exec_args("c1", Path::new("/p.json"), Path::new("/s/e1.pid"), None)),
            [
                "--root",
                "/run/berth/runc",
                "--log",
                "/s/exec-e1.log",
                "--log-format",
                "json",
                "exec",
                "--detach",
                "--process",
                "/p.json",
                "--pid-file",
                "/s/e1.pid",
                "c1"
            ]
        );
        let tty = strs(r.exec_args(
            "c1",
            Path::new("/p.json"),
            Path::new("/s/e1.pid"),
            Some(Path::new("/s/e1.sock")),
        ));
        assert_eq!(&tty[12..], ["--console-socket", "/s/e1.sock", "c1"]);
    }

    #[test]
    fn create_with_fake_runc() {
        let dir = tempfile::tempdir().unwrap();
        let null = || RuncStdio {
            stdin: Stdio::null(),
            stdout: Stdio::null(),
            stderr: Stdio::null(),
        };
        let ok = Runc::new(Path::new("/bin/true"), dir.path(), &dir.path().join("l"));
        assert!(ok
            .create(
                "c",
                dir.path(),
                &dir.path().join("pid"),
                None,
                null(),
                &mut Vec::new
            )
            .is_ok());
        let bad = Runc::new(Path::new("/bin/false"), dir.path(), &dir.path().join("l"));
        let msg = bad
            .create(
                "c",
                dir.path(),
                &dir.path().join("pid"),
                None,
                null(),
                &mut || b"captured".to_vec(),
            )
            .unwrap_err();
        assert_eq!(msg, "captured");
        let missing = Runc::new(Path::new("/nonexistent/runc"), dir.path(), dir.path());
        let msg = missing
            .create(
                "c",
                dir.path(),
                &dir.path().join("pid"),
                None,
                null(),
                &mut Vec::new,
            )
            .unwrap_err();
        assert!(msg.contains("/nonexistent/runc"), "{msg}");
    }
}
