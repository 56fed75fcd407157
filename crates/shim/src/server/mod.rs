//! The `berth-shim` process (the binary's `main` is [`main`]).
//!
//! Lifecycle:
//! 1. As berthd's child: parse arguments, close stray inherited fds, take the readiness fd,
//!    point stdio at /dev/null, fork. The parent exits at once (berthd reaps it).
//! 2. In a new session: create the state dir, write `shim.pid`, become a child subreaper, block
//!    signals into a signalfd, bind `shim.sock`, open the container log, create the container's
//!    stdio, run `runc create` (from a short-lived helper child, see `create_container`; the
//!    init is re-parented to the shim when runc exits), receive the pty master (TTY), learn the
//!    init's PID, report readiness.
//! 3. Loop (`monitor`, with exec sessions in `exec`) until the init is reaped and its output
//!    drained (and exec processes, killed with the init, have ended); check the cgroup's OOM
//!    counter; write the exit file; remove the socket; exit 0.
//!
//! A failure in step 2 is reported through the readiness fd (`source` says whether runc or the
//! shim failed), the partly created container is deleted (`runc delete --force`) and the shim
//! exits 1.

mod control;
mod daemon;
mod diag;
mod exec;
mod log;
mod monitor;
mod oom;
mod reaper;
mod runc;
pub(crate) mod tty;

use std::ffi::OsString;
use std::fs::{self, DirBuilder, File};
use std::io::{self, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::unistd::{pipe2, Pid};

use crate::args::ShimArgs;
use crate::exitfile::{write_exit, ExitStatus};
use crate::paths::{EXIT_FILE, INIT_PID_FILE, RUNC_LOG, SHIM_LOG, SHIM_PID_FILE};
use crate::protocol::{encode, FailureSource, Ready};
use diag::Diag;
use log::{CriLog, Stream};
use monitor::{ContainerIo, Monitor, Source};
use reaper::Reaper;
use runc::{Runc, RuncStdio};

/// How long to wait for runc's pty master after `runc create` returned.
const CONSOLE_TIMEOUT: Duration = Duration::from_secs(5);

/// Entry point of the `berth-shim` binary; returns the process exit code.
pub fn main() -> i32 {
    let args = match ShimArgs::parse(std::env::args_os().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("berth-shim: {e}");
            return 2;
        }
    };
    // Best effort: a failure only means a stray fd may leak into runc.
    let _ = daemon::close_inherited_fds(args.ready_fd);
    let mut ready = match args.ready_fd.map(daemon::take_inherited_fd).transpose() {
        Ok(fd) => Readiness(fd),
        Err(e) => {
            eprintln!("berth-shim: --ready-fd: {e}");
            return 2;
        }
    };
    let args = match absolute(args) {
        Ok(a) => a,
        Err(e) => return ready.fail(FailureSource::Shim, format!("resolve paths: {e}")),
    };
    if let Err(e) = daemon::stdio_to_devnull() {
        return ready.fail(FailureSource::Shim, format!("redirect stdio: {e}"));
    }
    if let Err(e) = daemon::detach() {
        return ready.fail(FailureSource::Shim, format!("detach: {e}"));
    }
    // From here on: the long-lived shim, in its own session, parent gone.
    run(&args, &mut ready)
}

/// The readiness fd (absent when started by hand).
struct Readiness(Option<OwnedFd>);

impl Readiness {
    /// Writes the line and closes the fd.
    fn send(&mut self, r: &Ready) -> io::Result<()> {
        match self.0.take() {
            Some(fd) => File::from(fd).write_all(&encode(r)),
            None => Ok(()),
        }
    }

    fn fail(&mut self, source: FailureSource, message: String) -> i32 {
        let _ = self.send(&Ready::failure(source, message));
        1
    }
}

/// A startup failure, reported through the readiness fd.
struct Failure {
    source: FailureSource,
    message: String,
}

fn shim_err(context: &str, e: impl std::fmt::Display) -> Failure {
    Failure {
        source: FailureSource::Shim,
        message: format!("{context}: {e}"),
    }
}

/// Makes every path absolute before `detach` changes the working directory to `/`.
fn absolute(mut a: ShimArgs) -> io::Result<ShimArgs> {
    for p in [
        &mut a.bundle,
        &mut a.runc_root,
        &mut a.state_dir,
        &mut a.log_path,
    ] {
        *p = std::path::absolute(&*p)?;
    }
    // A bare runc name is looked up in PATH by exec; only a relative path needs fixing.
    if a.runc.components().count() > 1 {
        a.runc = std::path::absolute(&a.runc)?;
    }
    Ok(a)
}

fn run(args: &ShimArgs, ready: &mut Readiness) -> i32 {
    let state = args.state_dir.as_path();
    if let Err(e) = DirBuilder::new().recursive(true).mode(0o700).create(state) {
        return ready.fail(
            FailureSource::Shim,
            format!("create state dir {}: {e}", state.display()),
        );
    }
    let mut diag = Diag::open(&state.join(SHIM_LOG));
    diag.log(format_args!(
        "berth-shim {} starting for {} (pid {}, tty {}, stdin {}, stdin_once {}, systemd_cgroup {})",
        env!("CARGO_PKG_VERSION"),
        args.id,
        std::process::id(),
        args.tty,
        args.stdin,
        args.stdin_once,
        args.systemd_cgroup
    ));
    let runc = Runc::new(
        &args.runc,
        &args.runc_root,
        &state.join(RUNC_LOG),
        args.systemd_cgroup,
    );
    let code = match start(args, &runc, &mut diag) {
        Ok(started) => {
            let r = Ready::success(started.init_pid, std::process::id());
            match ready.send(&r) {
                Ok(()) => watch(args, &runc, started, &mut diag),
                Err(e) => {
                    // berthd gave up on us (timeout, crash): it treats the container as
                    // failed to create, so do not leave it behind.
                    diag.log(format_args!(
                        "readiness not delivered ({e}); deleting container"
                    ));
                    runc.delete_force(&args.id);
                    1
                }
            }
        }
        Err(f) => {
            diag.log(format_args!("start failed: {}", f.message));
            // Clean up before reporting: berthd may look at the state dir right away.
            let _ = fs::remove_file(state.join(SHIM_PID_FILE));
            return ready.fail(f.source, f.message);
        }
    };
    let _ = fs::remove_file(state.join(SHIM_PID_FILE));
    code
}

/// A created container and what the loop needs to watch it.
struct Started {
    init_pid: u32,
    reaper: Reaper,
    control: control::ControlSocket,
    log: CriLog,
    io: ContainerIo,
    cgroup: Option<PathBuf>,
}

/// Everything up to a created container. On error after `runc create` was attempted, the
/// container is deleted again.
fn start(args: &ShimArgs, runc: &Runc, diag: &mut Diag) -> Result<Started, Failure> {
    let state = args.state_dir.as_path();
    for stale in [EXIT_FILE, INIT_PID_FILE] {
        let _ = fs::remove_file(state.join(stale));
    }
    fs::write(
        state.join(SHIM_PID_FILE),
        format!("{}\n", std::process::id()),
    )
    .map_err(|e| shim_err("write shim.pid", e))?;
    let reaper = Reaper::new().map_err(|e| shim_err("set up signals and subreaper", e))?;
    let control = control::ControlSocket::bind(state).map_err(|e| shim_err("bind shim.sock", e))?;
    let log = CriLog::open(&args.log_path)
        .map_err(|e| shim_err(&format!("open log {}", args.log_path.display()), e))?;
    let pid_file = state.join(INIT_PID_FILE);
    let cgroup;
    let io = if args.tty {
        let console =
            tty::ConsoleSocket::bind(state).map_err(|e| shim_err("bind console socket", e))?;
        let (cap_r, cap_w) = nonblocking_pipe().map_err(|e| shim_err("create pipe", e))?;
        let stdio = RuncStdio {
            stdin: Stdio::null(),
            stdout: Stdio::null(),
            stderr: Stdio::from(cap_w),
        };
        cgroup = create_container(
            args,
            runc,
            &pid_file,
            Some(console.runc_path()),
            stdio,
            &cap_r,
        )?;
        let master = console
            .receive(CONSOLE_TIMEOUT)
            .map_err(|e| undo(runc, &args.id, shim_err("receive pty master from runc", e)))?;
        set_nonblocking(&master).map_err(|e| undo(runc, &args.id, shim_err("pty", e)))?;
        let reader = master
            .try_clone()
            .map_err(|e| undo(runc, &args.id, shim_err("dup pty", e)))?;
        ContainerIo {
            sources: vec![Source::new(Stream::Stdout, reader)],
            stdin: None,
            tty: Some(master),
            stdin_once: args.stdin_once,
        }
    } else {
        let (out_r, out_w) = nonblocking_pipe().map_err(|e| shim_err("create pipe", e))?;
        let (err_r, err_w) = nonblocking_pipe().map_err(|e| shim_err("create pipe", e))?;
        let (stdin_r, stdin_w) = if args.stdin {
            let (r, w) = pipe2(OFlag::O_CLOEXEC).map_err(|e| shim_err("create pipe", e))?;
            // Only the shim's end: writes from attached clients must never block the loop.
            set_nonblocking(&w).map_err(|e| shim_err("stdin pipe", e))?;
            (Stdio::from(r), Some(w))
        } else {
            (Stdio::null(), None)
        };
        let stdio = RuncStdio {
            stdin: stdin_r,
            stdout: Stdio::from(out_w),
            stderr: Stdio::from(err_w),
        };
        // On failure runc's stderr is the container's stderr pipe: what it said is there.
        cgroup = create_container(args, runc, &pid_file, None, stdio, &err_r)?;
        ContainerIo {
            sources: vec![
                Source::new(Stream::Stdout, out_r),
                Source::new(Stream::Stderr, err_r),
            ],
            stdin: stdin_w,
            tty: None,
            stdin_once: args.stdin_once,
        }
    };

    if cgroup.is_none() {
        diag.log(format_args!(
            "no usable linux.cgroupsPath in config.json: OOM kills will not be detected"
        ));
    }
    let init_pid = read_pid(&pid_file)
        .map_err(|e| undo(runc, &args.id, shim_err("read runc's pid file", e)))?;
    diag.log(format_args!("runc create done; init pid {init_pid}"));
    Ok(Started {
        init_pid,
        reaper,
        control,
        log,
        io,
        cgroup,
    })
}

/// Runs `runc create` in a short-lived child process and returns the container's cgroup (from
/// config.json) for the OOM check.
///
/// Why a child: a forked process starts without the parent's file-backed page mappings, and
/// only what it touches itself becomes resident. Spawning runc, parsing config.json and runc's
/// log is the bulk of the shim's code; doing it in a child that exits keeps that code out of
/// the long-lived shim's resident set, which is then little more than the main loop.
/// The container's stdio ends in `stdio` are closed here (in the shim) before returning.
fn create_container(
    args: &ShimArgs,
    runc: &Runc,
    pid_file: &Path,
    console: Option<&Path>,
    stdio: RuncStdio,
    runc_stderr: &OwnedFd,
) -> Result<Option<PathBuf>, Failure> {
    let outcome = daemon::run_in_child(move || {
        let cgroup = fs::read(args.bundle.join("config.json"))
            .ok()
            .and_then(|c| oom::cgroup_of(&c));
        runc.create(
            &args.id,
            &args.bundle,
            pid_file,
            console,
            stdio,
            &mut || drain_nonblocking(runc_stderr),
        )
        .map(|()| {
            cgroup
                .map(PathBuf::into_os_string)
                .unwrap_or_default()
                .into_vec()
        })
        .map_err(String::into_bytes)
    })
    .map_err(|e| shim_err("run runc create", e))?;
    match outcome {
        Ok(cgroup) if cgroup.is_empty() => Ok(None),
        Ok(cgroup) => Ok(Some(PathBuf::from(OsString::from_vec(cgroup)))),
        Err(message) => {
            runc.delete_force(&args.id);
            Err(Failure {
                source: FailureSource::Runc,
                message: String::from_utf8_lossy(&message).into_owned(),
            })
        }
    }
}

fn undo(runc: &Runc, id: &str, f: Failure) -> Failure {
    runc.delete_force(id);
    f
}

/// Watches the container to the end and writes the exit file. Returns the shim's exit code.
fn watch(args: &ShimArgs, runc: &Runc, s: Started, diag: &mut Diag) -> i32 {
    let init = Pid::from_raw(s.init_pid as i32);
    let cgroup = s.cgroup;
    let control = s.control;
    let exec = exec::ExecContext {
        runc,
        container_id: &args.id,
        state_dir: &args.state_dir,
    };
    let monitor = Monitor::new(init, s.reaper, s.log, s.io, &control, exec, diag);
    let exit = monitor.run();
    let oom_killed = cgroup.as_deref().is_some_and(oom::oom_killed);
    let status = ExitStatus {
        exit_code: exit.code,
        exited_at: exit.at.unix_nanos(),
        oom_killed,
    };
    let code = match write_exit(&args.state_dir, &status) {
        Ok(()) => {
            diag.log(format_args!(
                "exit file written: code {}, oom_killed {oom_killed}",
                status.exit_code
            ));
            // The exit is recorded: runc's container (its state and cgroup) is deleted now,
            // not when the container is removed, which may be much later. RemoveContainer
            // deletes it when this did not happen (the shim was killed first).
            runc.delete_force(&args.id);
            0
        }
        Err(e) => {
            diag.log(format_args!("writing exit file failed: {e}"));
            1
        }
    };
    // Only now stop answering: a client that cannot connect finds the exit file.
    drop(control);
    code
}

fn nonblocking_pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let (r, w) = pipe2(OFlag::O_CLOEXEC)?;
    set_nonblocking(&r)?;
    Ok((r, w))
}

fn set_nonblocking(fd: &OwnedFd) -> io::Result<()> {
    let flags = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL)?);
    fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    Ok(())
}

/// Whatever is buffered in a non-blocking pipe (at most 64 KiB).
fn drain_nonblocking(fd: &OwnedFd) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while out.len() < 64 * 1024 {
        match nix::unistd::read(fd.as_fd(), &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    out
}

fn read_pid(path: &Path) -> io::Result<u32> {
    fs::read_to_string(path)?
        .trim()
        .parse::<u32>()
        .ok()
        .filter(|p| *p > 1 && *p <= i32::MAX as u32)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "not a PID"))
}
