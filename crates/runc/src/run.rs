//! Running runc: a `Command` for callers that spawn themselves, and a blocking run with a
//! timeout.
//!
//! `run` sends runc's stdout and stderr to unlinked temporary files rather than pipes: runc
//! can be waited for with a deadline without reader threads, and a process runc left behind
//! holding the other end can never make berth wait.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::{error_message, Op, Runc, RuncError};

/// The most of runc's stdout kept (`runc state` prints well under 1 KiB).
const MAX_STDOUT: u64 = 1 << 20;
/// The most of runc's stderr and of its log file read for a message.
const MAX_ERROR_INPUT: u64 = 1 << 20;
/// The longest pause between two checks whether runc has exited.
const MAX_POLL: Duration = Duration::from_millis(20);

impl Runc {
    /// `runc <global options> <op>`, with no stdio set. runc would talk to systemd's notify
    /// socket if it found one in its environment, so `NOTIFY_SOCKET` is removed.
    pub fn command(&self, op: &Op<'_>) -> Command {
        let mut c = Command::new(&self.binary);
        c.args(self.argv(op)).env_remove("NOTIFY_SOCKET");
        c
    }

    /// Runs `op` to completion with stdin from /dev/null and returns its stdout. After
    /// `timeout` runc is killed and [`RuncError::Timeout`] returned.
    pub fn run(&self, op: &Op<'_>, timeout: Duration) -> Result<Vec<u8>, RuncError> {
        let log_start = self.log_len();
        let stdout = capture_file().map_err(|source| RuncError::Capture { source })?;
        let stderr = capture_file().map_err(|source| RuncError::Capture { source })?;
        let mut cmd = self.command(op);
        cmd.stdin(Stdio::null());
        for (file, set) in [
            (
                &stdout,
                Command::stdout as fn(&mut Command, Stdio) -> &mut Command,
            ),
            (&stderr, Command::stderr),
        ] {
            let copy = file
                .try_clone()
                .map_err(|source| RuncError::Capture { source })?;
            set(&mut cmd, Stdio::from(copy));
        }
        let mut child = cmd.spawn().map_err(|source| self.spawn_error(source))?;
        // Our copies of the files go with the command.
        drop(cmd);
        let status = match wait_timeout(&mut child, timeout) {
            Ok(Some(status)) => status,
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(RuncError::Timeout {
                    command: op.name(),
                    id: op.id().to_owned(),
                    timeout,
                });
            }
            Err(source) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(self.spawn_error(source));
            }
        };
        if status.success() {
            return read_start(stdout, MAX_STDOUT).map_err(|source| RuncError::Capture { source });
        }
        let said = read_start(stderr, MAX_ERROR_INPUT).unwrap_or_default();
        Err(self.failure(op, log_start, &said, status))
    }

    /// How long the log file is now: the offset a following command's lines start at (see
    /// [`Runc::failure`]). 0 without a log file.
    pub fn log_len(&self) -> u64 {
        self.log
            .as_deref()
            .and_then(|l| fs::metadata(l).ok())
            .map_or(0, |m| m.len())
    }

    /// The error of `op`, which ended with `status` after writing `stderr`: its message is
    /// [`Runc::failure_message`].
    pub fn failure(
        &self,
        op: &Op<'_>,
        log_start: u64,
        stderr: &[u8],
        status: impl fmt::Display,
    ) -> RuncError {
        RuncError::Failed {
            command: op.name(),
            id: op.id().to_owned(),
            message: self.failure_message(op.name(), log_start, stderr, status),
        }
    }

    /// What runc said when `command` failed with `status`: [`error_message`] of the log
    /// file's lines after `log_start` (see [`Runc::log_len`]) and of `stderr`, else a note
    /// naming `status`.
    pub fn failure_message(
        &self,
        command: &str,
        log_start: u64,
        stderr: &[u8],
        status: impl fmt::Display,
    ) -> String {
        let log = self
            .log
            .as_deref()
            .and_then(|l| read_log(l, log_start).ok())
            .unwrap_or_default();
        error_message(&log, stderr)
            .unwrap_or_else(|| format!("{command} failed without an error message ({status})"))
    }

    fn spawn_error(&self, source: io::Error) -> RuncError {
        RuncError::Spawn {
            runc: self.binary.display().to_string(),
            source,
        }
    }
}

/// `Some(status)` once `child` exited, `None` if it still runs at `timeout`.
fn wait_timeout(child: &mut Child, timeout: Duration) -> io::Result<Option<ExitStatus>> {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        std::thread::sleep(pause.min(left));
        pause = (pause * 2).min(MAX_POLL);
    }
}

/// A new, already unlinked file in the temporary directory.
fn capture_file() -> io::Result<File> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir();
    let mut last = None;
    for _ in 0..16 {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!(".berth-runc-{}-{n}", std::process::id()));
        match OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(file) => {
                fs::remove_file(&path)?;
                return Ok(file);
            }
            // Left by an earlier process with our PID.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no capture file")))
}

/// At most `max` bytes from the start of `file`.
fn read_start(mut file: File, max: u64) -> io::Result<Vec<u8>> {
    file.seek(SeekFrom::Start(0))?;
    let mut out = Vec::new();
    file.take(max).read_to_end(&mut out)?;
    Ok(out)
}

/// The log file from `offset` on (at most [`MAX_ERROR_INPUT`] bytes).
fn read_log(path: &Path, offset: u64) -> io::Result<String> {
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(offset))?;
    let mut out = Vec::new();
    file.take(MAX_ERROR_INPUT).read_to_end(&mut out)?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::path::PathBuf;
    use std::sync::RwLock;

    /// A fork of this test process holds every fd open at that moment until it execs; one
    /// that holds the fake script open for writing makes exec of it fail (ETXTBSY). Scripts
    /// are written under the write lock, runc is run under the read lock.
    static FORKS: RwLock<()> = RwLock::new(());

    /// Runs `f`, which may fork, while no fake runc is being written.
    pub(crate) fn forking<T>(f: impl FnOnce() -> T) -> T {
        let _guard = FORKS.read().unwrap_or_else(|e| e.into_inner());
        f()
    }

    /// A fake runc in `dir`: records its argv (one per line) in `dir/argv`, appends the file
    /// `dir/log-lines` to the file after `--log` if given, prints `dir/stdout` and
    /// `dir/stderr`, sleeps `dir/sleep` seconds if that exists, and exits with `dir/code`
    /// (default 0).
    pub(crate) fn fake_runc(dir: &Path) -> Runc {
        let script = dir.join("runc");
        let body = format!(
            r#"#!/bin/sh
d='{d}'
printf '%s\n' "$@" > "$d/argv"
log=
while [ $# -gt 0 ]; do
  if [ "$1" = --log ]; then log="$2"; fi
  shift
done
if [ -n "$log" ] && [ -f "$d/log-lines" ]; then cat "$d/log-lines" >> "$log"; fi
[ -f "$d/stdout" ] && cat "$d/stdout"
[ -f "$d/stderr" ] && cat "$d/stderr" >&2
[ -f "$d/sleep" ] && exec sleep "$(cat "$d/sleep")"
exit "$(cat "$d/code" 2>/dev/null || echo 0)"
"#,
            d = dir.display()
        );
        let _guard = FORKS.write().unwrap_or_else(|e| e.into_inner());
        fs::write(&script, body).unwrap();
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
        Runc::new(script, dir.join("root"))
    }

    pub(crate) fn recorded_argv(dir: &Path) -> Vec<String> {
        fs::read_to_string(dir.join("argv"))
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn put(dir: &Path, name: &str, content: &str) {
        fs::write(dir.join(name), content).unwrap();
    }

    #[test]
    fn success_returns_stdout_and_passes_the_argv() {
        let dir = tempfile::tempdir().unwrap();
        let runc = Runc {
            systemd_cgroup: true,
            ..fake_runc(dir.path())
        };
        put(dir.path(), "stdout", "hello\n");
        put(dir.path(), "stderr", "ignored on success\n");
        let op = Op::Kill {
            id: "c1",
            signal: 9,
            all: true,
        };
        let out = forking(|| runc.run(&op, Duration::from_secs(10))).unwrap();
        assert_eq!(out, b"hello\n");
        let root = dir.path().join("root").display().to_string();
        assert_eq!(
            recorded_argv(dir.path()),
            [
                "--root",
                &root,
                "--log-format",
                "json",
                "--systemd-cgroup",
                "kill",
                "--all",
                "c1",
                "9"
            ]
        );
    }

    #[test]
    fn failure_carries_every_error_line_of_stderr() {
        let dir = tempfile::tempdir().unwrap();
        let runc = fake_runc(dir.path());
        put(dir.path(), "code", "1");
        put(
            dir.path(),
            "stderr",
            concat!(
                "{\"level\":\"fatal\",\"msg\":\"nsexec-1[7]: failed to update /proc/self/oom_score_adj: Permission denied\"}\n",
                "{\"level\":\"error\",\"msg\":\"can't get final child's PID from pipe: EOF\"}\n",
            ),
        );
        let err =
            forking(|| runc.run(&Op::Start { id: "c1" }, Duration::from_secs(10))).unwrap_err();
        match &err {
            RuncError::Failed {
                command: "start",
                id,
                message,
            } => {
                assert_eq!(id, "c1");
                assert_eq!(
                    message,
                    "nsexec-1[7]: failed to update /proc/self/oom_score_adj: Permission denied; \
                     can't get final child's PID from pipe: EOF"
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(!err.is_not_found());
    }

    #[test]
    fn failure_reads_only_this_runs_part_of_the_log_file() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("runc.log");
        put(
            dir.path(),
            "runc.log",
            "{\"level\":\"error\",\"msg\":\"from an earlier run\"}\n",
        );
        let runc = fake_runc(dir.path()).with_log(&log);
        put(dir.path(), "code", "1");
        put(
            dir.path(),
            "log-lines",
            "{\"level\":\"error\",\"msg\":\"container does not exist\"}\n",
        );
        // runc repeats its last error as a plain stderr line when it logs to a file.
        put(dir.path(), "stderr", "container does not exist\n");
        let err =
            forking(|| runc.run(&Op::Delete { id: "c1" }, Duration::from_secs(10))).unwrap_err();
        assert_eq!(err.to_string(), "runc delete c1: container does not exist");
        assert!(err.is_not_found());
        let argv = recorded_argv(dir.path());
        assert_eq!(argv[2..4], ["--log".to_owned(), log.display().to_string()]);
    }

    #[test]
    fn failure_without_a_message_names_the_exit_status() {
        let dir = tempfile::tempdir().unwrap();
        let runc = fake_runc(dir.path());
        put(dir.path(), "code", "3");
        let err =
            forking(|| runc.run(&Op::State { id: "c1" }, Duration::from_secs(10))).unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("runc state c1: state failed without an error message ("),
            "{text}"
        );
        assert!(text.contains('3'), "{text}");
    }

    #[test]
    fn a_runc_that_hangs_is_killed_at_the_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let runc = fake_runc(dir.path());
        put(dir.path(), "sleep", "30");
        let started = Instant::now();
        let err =
            forking(|| runc.run(&Op::Start { id: "c1" }, Duration::from_millis(300))).unwrap_err();
        assert!(
            matches!(
                err,
                RuncError::Timeout {
                    command: "start",
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn a_missing_binary_is_a_spawn_error() {
        let runc = Runc::new(PathBuf::from("/nonexistent/runc"), "/tmp");
        let err =
            forking(|| runc.run(&Op::Start { id: "c1" }, Duration::from_secs(1))).unwrap_err();
        assert!(matches!(err, RuncError::Spawn { .. }), "{err:?}");
        assert!(err.to_string().contains("/nonexistent/runc"));
    }

    #[test]
    fn capture_files_are_unlinked_and_distinct() {
        use std::io::Write;
        let mut a = capture_file().unwrap();
        let b = capture_file().unwrap();
        a.write_all(b"abc").unwrap();
        assert_eq!(read_start(a, 2).unwrap(), b"ab");
        assert_eq!(read_start(b, 10).unwrap(), b"");
    }
}
