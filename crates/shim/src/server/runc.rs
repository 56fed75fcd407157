//! The runc commands the shim runs: `create`, `exec --detach` (exec sessions) and `delete
//! --force` (on a failed start, and once the container's exit is recorded). Their argv (global options included: `--root`, `--log <state-dir>/
//! runc.log --log-format json`, `--systemd-cgroup` with the systemd cgroup driver) and the
//! message of a failure come from berth-runc; the shim only owns how it spawns them: `create`
//! waited for in a helper child, `exec` not waited for at all (the main loop reaps it).
//!
//! runc writes its errors both to the JSON log and to its stderr; a failure is reported with
//! every error logged during this command, else runc's stderr, else the exit status.

use std::io;
use std::path::Path;
use std::process::Stdio;

use berth_runc::Op;

/// A runc binary with the shim's global options.
pub(crate) struct Runc(berth_runc::Runc);

/// Standard streams handed to `runc create`; for a non-TTY container runc passes them on to
/// the container's init.
pub(crate) struct RuncStdio {
    pub stdin: Stdio,
    pub stdout: Stdio,
    pub stderr: Stdio,
}

impl Runc {
    pub(crate) fn new(binary: &Path, root: &Path, log: &Path, systemd_cgroup: bool) -> Self {
        Runc(berth_runc::Runc {
            systemd_cgroup,
            ..berth_runc::Runc::new(binary, root).with_log(log)
        })
    }

    /// A copy that logs to `log` (each exec session has its own log, so concurrent sessions
    /// do not read each other's errors).
    pub(crate) fn with_log(&self, log: &Path) -> Runc {
        Runc(self.0.with_log(log))
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
        let op = Op::Exec {
            id,
            process,
            pid_file,
            console_socket,
        };
        let child = self
            .0
            .command(&op)
            .stdin(stdio.stdin)
            .stdout(stdio.stdout)
            .stderr(stdio.stderr)
            .spawn()?;
        // Dropping the handle neither waits nor kills; the loop's waitpid reaps it.
        Ok(child.id())
    }

    /// Why a `runc exec` that exited with `code` failed: the errors in its log (its own, from
    /// the start), else what it wrote to `stderr`.
    pub(crate) fn exec_failure(&self, stderr: &[u8], code: i32) -> String {
        self.0
            .failure_message("exec", 0, stderr, format_args!("exit code {code}"))
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
        let log_start = self.0.log_len();
        let op = Op::Create {
            id,
            bundle,
            pid_file,
            console_socket,
        };
        let mut cmd = self.0.command(&op);
        cmd.stdin(stdio.stdin)
            .stdout(stdio.stdout)
            .stderr(stdio.stderr);
        let status = cmd
            .spawn()
            .and_then(|mut child| child.wait())
            .map_err(|e| format!("run {}: {e}", self.0.binary.display()))?;
        // Dropping the command closes our copies of the container's ends of the pipes.
        drop(cmd);
        if status.success() {
            return Ok(());
        }
        Err(self
            .0
            .failure_message(op.name(), log_start, &stderr_capture(), status))
    }

    /// `runc delete --force`, best effort: undoes a failed start, and deletes the container
    /// once its exit is recorded.
    pub(crate) fn delete_force(&self, id: &str) {
        let _ = self
            .0
            .command(&Op::Delete { id })
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn null() -> RuncStdio {
        RuncStdio {
            stdin: Stdio::null(),
            stdout: Stdio::null(),
            stderr: Stdio::null(),
        }
    }

    #[test]
    fn global_options_carry_log_and_cgroup_driver() {
        let r = Runc::new(
            Path::new("/usr/sbin/runc"),
            Path::new("/run/berth/runc"),
            Path::new("/s/runc.log"),
            true,
        );
        // The options themselves and their order are berth-runc's (tested there).
        assert_eq!(
            r.0,
            berth_runc::Runc {
                binary: "/usr/sbin/runc".into(),
                root: "/run/berth/runc".into(),
                log: Some("/s/runc.log".into()),
                systemd_cgroup: true,
            }
        );
        let exec = r.with_log(Path::new("/s/exec-e1.log"));
        assert_eq!(exec.0.log.as_deref(), Some(Path::new("/s/exec-e1.log")));
        assert!(exec.0.systemd_cgroup);
    }

    #[test]
    fn create_with_fake_runc() {
        let dir = tempfile::tempdir().unwrap();
        let runc = |bin: &str| Runc::new(Path::new(bin), dir.path(), &dir.path().join("l"), false);
        let pid = dir.path().join("pid");
        assert!(runc("/bin/true")
            .create("c", dir.path(), &pid, None, null(), &mut Vec::new)
            .is_ok());
        let bad = runc("/bin/false");
        let msg = bad
            .create("c", dir.path(), &pid, None, null(), &mut || {
                b"captured".to_vec()
            })
            .unwrap_err();
        assert_eq!(msg, "captured");
        let msg = bad
            .create("c", dir.path(), &pid, None, null(), &mut Vec::new)
            .unwrap_err();
        assert!(
            msg.starts_with("create failed without an error message"),
            "{msg}"
        );
        // Only what runc logged during this create counts.
        std::fs::write(
            dir.path().join("l"),
            "{\"level\":\"error\",\"msg\":\"an earlier create\"}\n",
        )
        .unwrap();
        let msg = bad
            .create("c", dir.path(), &pid, None, null(), &mut || b"now".to_vec())
            .unwrap_err();
        assert_eq!(msg, "now");
        let msg = runc("/nonexistent/runc")
            .create("c", dir.path(), &pid, None, null(), &mut Vec::new)
            .unwrap_err();
        assert!(msg.contains("/nonexistent/runc"), "{msg}");
    }

    #[test]
    fn exec_failure_reads_the_sessions_log() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("exec-e1.log");
        let r = Runc::new(Path::new("/bin/false"), dir.path(), &log, false);
        assert_eq!(
            r.exec_failure(b"", 1),
            "exec failed without an error message (exit code 1)"
        );
        std::fs::write(
            &log,
            concat!(
                "{\"level\":\"error\",\"msg\":\"exec: \\\"x\\\": executable file not found in $PATH\"}\n",
                "{\"level\":\"error\",\"msg\":\"exec failed: unable to start container process\"}\n",
            ),
        )
        .unwrap();
        assert_eq!(
            r.exec_failure(b"ignored: the log has errors", 255),
            "exec: \"x\": executable file not found in $PATH; exec failed: unable to start container process"
        );
    }
}
