//! Starting a shim from berthd.
//!
//! ```text
//! berthd (spawn)          shim #1 (our child)           shim #2 (long-lived)
//!   pipe2(O_CLOEXEC) ─┐
//!   fork/exec ────────┼─▶ parse args, fd → /dev/null
//!                     │   fork ─────────────────────────▶ setsid, subreaper, runc create
//!   waitpid(#1) ◀─────┼── exit(0)                         │
//!   read ready line ◀─┴───────────────────────────────────┘ {"ok":true,"pid":..,"shim_pid":..}
//! ```
//!
//! The readiness pipe's write end reaches the shim as an inherited fd: its `FD_CLOEXEC` flag is
//! cleared in the child only (between fork and exec), so concurrent spawns in other berthd
//! threads never inherit it. The intermediate process is reaped here, so berthd is left with no
//! zombie; the long-lived shim is re-parented to the nearest subreaper (init, unless berthd
//! made itself a subreaper, which it must not).

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::args::ShimArgs;
use crate::error::ShimError;
use crate::protocol::{decode, FailureSource, Ready, MAX_LINE};

/// What berthd asks for: one shim for one container.
#[derive(Debug, Clone)]
pub struct ShimSpawn {
    pub shim_binary: PathBuf,
    pub id: String,
    pub bundle: PathBuf,
    pub runc: PathBuf,
    pub runc_root: PathBuf,
    pub state_dir: PathBuf,
    pub log_path: PathBuf,
    pub stdin: bool,
    pub stdin_once: bool,
    pub tty: bool,
    /// The systemd cgroup driver is used (runc gets `--systemd-cgroup`).
    pub systemd_cgroup: bool,
}

/// A shim that reported readiness: the container is created (`runc create` succeeded) and waits
/// for `runc start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spawned {
    pub shim_pid: u32,
    pub init_pid: u32,
}

/// Starts a shim and waits (at most `timeout`) until it reports that `runc create` finished.
///
/// On [`ShimError::Timeout`] the shim is killed; the container may still have been created, so
/// the caller should `runc delete --force` it. On [`ShimError::Runc`] the shim has already
/// cleaned up after runc and exited.
pub fn spawn(s: &ShimSpawn, timeout: Duration) -> Result<Spawned, ShimError> {
    let deadline = Instant::now() + timeout;
    let (ready_r, ready_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC)
        .map_err(|e| ShimError::io("create readiness pipe for", &s.state_dir, e.into()))?;
    let args = ShimArgs {
        id: s.id.clone(),
        bundle: s.bundle.clone(),
        runc: s.runc.clone(),
        runc_root: s.runc_root.clone(),
        state_dir: s.state_dir.clone(),
        log_path: s.log_path.clone(),
        stdin: s.stdin,
        stdin_once: s.stdin_once,
        tty: s.tty,
        systemd_cgroup: s.systemd_cgroup,
        ready_fd: Some(ready_w.as_raw_fd()),
    };
    let mut cmd = Command::new(&s.shim_binary);
    cmd.args(args.to_args())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .env_remove("NOTIFY_SOCKET");
    child_fd::inherit(&mut cmd, ready_w.as_fd());
    let child = cmd.spawn().map_err(|e| ShimError::Spawn {
        message: format!("exec {}: {e}", s.shim_binary.display()),
    })?;
    drop(cmd);
    // Only the shim may hold the write end now, or we would never see EOF.
    drop(ready_w);

    let intermediate = reap_intermediate(child, deadline);
    match read_ready(&ready_r, deadline) {
        Ok(Some(line)) => parse_ready(&line),
        Ok(None) => Err(ShimError::Spawn {
            message: match intermediate {
                Some(st) if !st.success() => {
                    format!("berth-shim exited without reporting readiness ({st})")
                }
                _ => "berth-shim exited without reporting readiness".into(),
            },
        }),
        Err(ReadErr::Timeout) => {
            kill_shim(&s.state_dir, &s.shim_binary, &s.id);
            Err(ShimError::Timeout {
                what: "berth-shim readiness",
                after: timeout,
            })
        }
        Err(ReadErr::Io(e)) => Err(ShimError::io("read readiness of shim in", &s.state_dir, e)),
    }
}

/// Waits for the short-lived first shim process; kills it if it outlives the deadline (then
/// it is not a shim at all). Never leaves a zombie.
fn reap_intermediate(mut child: Child, deadline: Instant) -> Option<std::process::ExitStatus> {
    loop {
        match child.try_wait() {
            Ok(Some(st)) => return Some(st),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(2)),
            Ok(None) | Err(_) => {
                let _ = child.kill();
                return child.wait().ok();
            }
        }
    }
}

enum ReadErr {
    Timeout,
    Io(io::Error),
}

/// Reads up to the first `\n`; `Ok(None)` on EOF before a full line.
fn read_ready(fd: &OwnedFd, deadline: Instant) -> Result<Option<Vec<u8>>, ReadErr> {
    let mut line = Vec::with_capacity(256);
    let mut buf = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ReadErr::Timeout);
        }
        let ms = PollTimeout::try_from(left.as_millis().clamp(1, 60_000) as u32)
            .unwrap_or(PollTimeout::MAX);
        let mut pfd = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut pfd, ms) {
            Ok(0) => continue,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(ReadErr::Io(e.into())),
        }
        match nix::unistd::read(fd, &mut buf) {
            Ok(0) => return Ok(None),
            Ok(n) => {
                line.extend_from_slice(&buf[..n]);
                if let Some(i) = line.iter().position(|b| *b == b'\n') {
                    line.truncate(i);
                    return Ok(Some(line));
                }
                if line.len() > MAX_LINE {
                    return Err(ReadErr::Io(io::Error::other("readiness line too long")));
                }
            }
            Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => {}
            Err(e) => return Err(ReadErr::Io(e.into())),
        }
    }
}

fn parse_ready(line: &[u8]) -> Result<Spawned, ShimError> {
    let r: Ready = decode(line).map_err(|e| ShimError::Protocol {
        message: format!("bad readiness line: {e}"),
    })?;
    if r.ok {
        match (r.pid, r.shim_pid) {
            (Some(init_pid), Some(shim_pid)) => Ok(Spawned { shim_pid, init_pid }),
            _ => Err(ShimError::Protocol {
                message: "readiness line without pids".into(),
            }),
        }
    } else {
        let message = r.error.unwrap_or_else(|| "unspecified error".into());
        Err(match r.source {
            Some(FailureSource::Runc) => ShimError::Runc { message },
            _ => ShimError::Spawn { message },
        })
    }
}

/// Best effort after a timeout: the shim wrote its PID before running runc. The PID is only
/// signalled if that process still is this container's shim (the file may be stale).
fn kill_shim(state_dir: &std::path::Path, binary: &std::path::Path, id: &str) {
    if let Some(pid) = crate::live_shim_pid(state_dir, binary, id) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// Lets exactly one fd survive `exec` in the child.
#[allow(unsafe_code)]
mod child_fd {
    use std::os::fd::{AsRawFd, BorrowedFd};
    use std::os::unix::process::CommandExt;
    use std::process::Command;

    use nix::fcntl::{fcntl, FcntlArg, FdFlag};

    /// Clears `FD_CLOEXEC` on `fd` in the child between fork and exec. The parent's flag is
    /// untouched, so other threads' children never see the fd. The caller keeps `fd` open until
    /// `spawn` has returned.
    pub(super) fn inherit(cmd: &mut Command, fd: BorrowedFd<'_>) {
        let raw = fd.as_raw_fd();
        // SAFETY: the closure runs in the forked child before exec. It only calls fcntl(2),
        // which is async-signal-safe, allocates nothing and takes no lock. `raw` is open in the
        // child: fork copied the parent's table, where the caller keeps the fd open across
        // `spawn`, and the borrow below lasts only for this call.
        unsafe {
            cmd.pre_exec(move || {
                let fd = BorrowedFd::borrow_raw(raw);
                fcntl(fd, FcntlArg::F_SETFD(FdFlag::empty()))?;
                Ok(())
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_lines_map_to_results() {
        assert_eq!(
            parse_ready(br#"{"ok":true,"pid":10,"shim_pid":9}"#).unwrap(),
            Spawned {
                shim_pid: 9,
                init_pid: 10
            }
        );
        match parse_ready(br#"{"ok":false,"error":"exec failed","source":"runc"}"#) {
            Err(ShimError::Runc { message }) => assert_eq!(message, "exec failed"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse_ready(br#"{"ok":false,"error":"x","source":"shim"}"#),
            Err(ShimError::Spawn { .. })
        ));
        assert!(matches!(
            parse_ready(br#"{"ok":true}"#),
            Err(ShimError::Protocol { .. })
        ));
    }

    fn spawn_of(binary: &str, dir: &std::path::Path) -> ShimSpawn {
        ShimSpawn {
            shim_binary: binary.into(),
            id: "x".into(),
            bundle: dir.into(),
            runc: "/bin/false".into(),
            runc_root: dir.into(),
            state_dir: dir.into(),
            log_path: dir.join("log"),
            stdin: false,
            stdin_once: false,
            tty: false,
            systemd_cgroup: false,
        }
    }

    #[test]
    fn binary_that_never_reports() {
        let dir = tempfile::tempdir().unwrap();
        // /bin/true ignores its arguments and exits: EOF, no readiness line.
        let err = spawn(&spawn_of("/bin/true", dir.path()), Duration::from_secs(5)).unwrap_err();
        assert!(matches!(err, ShimError::Spawn { .. }), "{err:?}");
        let err = spawn(
            &spawn_of("/nonexistent/berth-shim", dir.path()),
            Duration::from_secs(5),
        )
        .unwrap_err();
        assert!(matches!(err, ShimError::Spawn { .. }), "{err:?}");
    }
}
