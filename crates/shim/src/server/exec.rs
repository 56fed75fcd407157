//! Exec sessions: the `exec` control op (see [`crate::protocol`]).
//!
//! A session starts `runc exec --detach` from the main loop without waiting for it. When the
//! loop reaps that runc, the process it started has been re-parented to the shim (a child
//! subreaper): the session reads its PID from the pid file (and, for a TTY, takes the pty
//! master runc sent to the session's console socket), replies to the client and relays the
//! streams. When the process is reaped, its output is drained and the client gets the `exit`
//! frame.
//!
//! Unlike attach, exec output is never dropped while the client is there: when more than
//! [`frame::OUTPUT_LIMIT`] bytes wait for the client, the command's output is not read, so the
//! command waits. Once the client has gone, output is read and discarded.
//!
//! Each session's files live in the state dir as `exec-<id>.{pid,sock,log}` and are removed
//! when the session ends.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::PollFlags;
use nix::sys::signal::{kill, Signal};
use nix::unistd::{pipe2, Pid};

use super::control::CONN_TIMEOUT;
use super::diag::Diag;
use super::monitor::{write_pending, DRAIN_TIMEOUT};
use super::runc::{Runc, RuncStdio};
use super::tty::{self, ConsoleSocket};
use super::{nonblocking_pipe, read_pid, set_nonblocking};
use crate::protocol::{encode, frame, ExecRequest, Response};

/// Bytes read from a command's output per `read(2)`.
const READ_CHUNK: usize = 8 * 1024;
/// Unclaimed child exits kept while sessions start.
const MAX_UNCLAIMED: usize = 256;
/// How long to wait for runc's pty master once `runc exec` has exited.
const CONSOLE_WAIT: Duration = Duration::from_millis(500);

/// What the sessions need from the container.
pub(crate) struct ExecContext<'a> {
    pub runc: &'a Runc,
    pub container_id: &'a str,
    pub state_dir: &'a Path,
}

/// Names a pollable part of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ExecTag {
    session: usize,
    part: Part,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    /// The client connection.
    Client,
    /// Output stream `n` of the command.
    Output(usize),
    /// The command's input, when bytes wait to be written.
    Input,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// `runc exec` (this PID) is starting the process.
    Starting(Pid),
    Running(Pid),
    Exited(i32),
}

/// One output stream of a command.
struct Output {
    fd: OwnedFd,
    frame_id: u8,
}

struct Session {
    id: String,
    client: Option<UnixStream>,
    phase: Phase,
    /// Read ends of stdout/stderr (or the pty master); `None` once at EOF.
    outputs: Vec<Option<Output>>,
    /// Where input goes: the stdin pipe's write end, or the pty master.
    stdin: Option<OwnedFd>,
    /// The pty master, for resize.
    tty: Option<OwnedFd>,
    /// Client bytes not yet forming a whole frame.
    input: Vec<u8>,
    /// Input the command has not read yet (at most one frame).
    stdin_pending: Vec<u8>,
    /// Close stdin once `stdin_pending` is written (the client sent `eof`).
    close_stdin: bool,
    /// Frames not yet written to the client.
    queue: Vec<u8>,
    /// Where runc sends the pty master (TTY sessions, until it is received).
    console: Option<ConsoleSocket>,
    runc: Runc,
    files: [PathBuf; 3],
    drain_until: Option<Instant>,
    /// Kill the process as soon as it is known (the container's init has exited).
    doomed: bool,
    done: bool,
}

/// The running exec sessions of the container.
#[derive(Default)]
pub(crate) struct Sessions {
    list: Vec<Session>,
    /// Exits of children no session claimed while some session was starting: runc's
    /// intermediate process can exit before `runc exec` does, re-parenting the started
    /// process to the shim, which may reap it before its PID is known.
    unclaimed: Vec<(Pid, i32)>,
}

impl Sessions {
    pub(crate) fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Starts a session for `req` on `client` (a connection still waiting for its reply).
    pub(crate) fn start(
        &mut self,
        req: ExecRequest,
        client: UnixStream,
        ctx: &ExecContext<'_>,
        diag: &mut Diag,
    ) {
        if !req.valid_id() {
            reply(
                &client,
                &Response::err("exec_id must be 1 to 64 of [A-Za-z0-9_-]"),
            );
            return;
        }
        if !req.process.is_absolute() {
            reply(&client, &Response::err("process must be an absolute path"));
            return;
        }
        if self.list.iter().any(|s| s.id == req.exec_id) {
            reply(
                &client,
                &Response::err(format!("exec session {} already exists", req.exec_id)),
            );
            return;
        }
        match Session::start(&req, ctx) {
            Ok(mut s) => {
                diag.log(format_args!(
                    "exec {} starting (tty {}, stdin {}, stdout {}, stderr {})",
                    req.exec_id, req.tty, req.stdin, req.stdout, req.stderr
                ));
                s.client = Some(client);
                self.list.push(s);
            }
            Err(e) => {
                diag.log(format_args!("exec {} failed to start: {e}", req.exec_id));
                reply(&client, &Response::err(format!("start runc exec: {e}")));
            }
        }
    }

    /// Offers every pollable fd with the events it waits for.
    pub(crate) fn register<'s>(&'s self, out: &mut impl FnMut(BorrowedFd<'s>, PollFlags, ExecTag)) {
        for (i, s) in self.list.iter().enumerate() {
            let tag = |part| ExecTag { session: i, part };
            let started = !matches!(s.phase, Phase::Starting(_));
            if let Some(c) = &s.client {
                let mut ev = PollFlags::empty();
                if started && s.stdin_pending.is_empty() {
                    ev |= PollFlags::POLLIN;
                }
                if !s.queue.is_empty() {
                    ev |= PollFlags::POLLOUT;
                }
                out(c.as_fd(), ev, tag(Part::Client));
            }
            if !started {
                continue;
            }
            let room = s.client.is_none() || s.queue.len() < frame::OUTPUT_LIMIT;
            if room {
                for (j, o) in s.outputs.iter().enumerate() {
                    if let Some(o) = o {
                        out(o.fd.as_fd(), PollFlags::POLLIN, tag(Part::Output(j)));
                    }
                }
            }
            if !s.stdin_pending.is_empty() {
                if let Some(fd) = &s.stdin {
                    out(fd.as_fd(), PollFlags::POLLOUT, tag(Part::Input));
                }
            }
        }
    }

    /// Handles readiness reported for `tag`.
    pub(crate) fn on_ready(&mut self, tag: ExecTag, revents: PollFlags, diag: &mut Diag) {
        let Some(s) = self.list.get_mut(tag.session) else {
            return;
        };
        match tag.part {
            Part::Client => s.on_client(revents, diag),
            Part::Output(j) => s.on_output(j),
            Part::Input => s.write_stdin(&[]),
        }
    }

    /// Takes the exits that belong to sessions out of `reaped`: first every `runc exec`
    /// (which makes the started process known), then the processes themselves.
    pub(crate) fn on_exits(&mut self, reaped: &mut Vec<(Pid, i32)>, diag: &mut Diag) {
        reaped.retain(|&(pid, code)| {
            let Some(s) = self
                .list
                .iter_mut()
                .find(|s| s.phase == Phase::Starting(pid))
            else {
                return true;
            };
            s.runc_exited(code, diag);
            false
        });
        let mut exits = std::mem::take(&mut self.unclaimed);
        exits.append(reaped);
        for (pid, code) in exits {
            match self
                .list
                .iter_mut()
                .find(|s| s.phase == Phase::Running(pid))
            {
                Some(s) => {
                    diag.log(format_args!("exec {} exited with code {code}", s.id));
                    s.phase = Phase::Exited(code);
                    s.drain_until = Some(Instant::now() + DRAIN_TIMEOUT);
                }
                None => reaped.push((pid, code)),
            }
        }
        if self
            .list
            .iter()
            .any(|s| matches!(s.phase, Phase::Starting(_)))
        {
            // Bounded: a burst of orphans cannot grow it without end.
            let keep = reaped.len().min(MAX_UNCLAIMED);
            self.unclaimed = reaped[reaped.len() - keep..].to_vec();
        }
    }

    /// Kills every exec process (the container's init has exited); those still starting are
    /// killed as soon as they run.
    pub(crate) fn kill_all(&mut self) {
        for s in &mut self.list {
            s.doomed = true;
            if let Phase::Running(pid) = s.phase {
                let _ = kill(pid, Signal::SIGKILL);
            }
        }
    }

    /// The earliest time a draining session gives up waiting for output.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.list.iter().filter_map(|s| s.drain_until).min()
    }

    /// Ends the sessions whose process has exited and whose output is drained (or waited for
    /// long enough), and drops finished ones.
    pub(crate) fn sweep(&mut self) {
        let now = Instant::now();
        for s in &mut self.list {
            if let Phase::Exited(code) = s.phase {
                let drained = s.outputs.iter().all(Option::is_none);
                if drained || s.drain_until.is_some_and(|t| now >= t) {
                    s.finish(code);
                }
            }
        }
        self.list.retain(|s| !s.done);
    }

    /// Ends every session at once (the shim is exiting): clients of a finished process get
    /// its exit code, the others a closed connection.
    pub(crate) fn close_all(&mut self) {
        for mut s in self.list.drain(..) {
            if let Phase::Exited(code) = s.phase {
                s.finish(code);
            } else {
                s.remove_files();
            }
        }
    }
}

/// Writes a reply on a connection that is still blocking (with [`CONN_TIMEOUT`]).
fn reply(client: &UnixStream, resp: &Response) {
    let mut c = client;
    let _ = c.write_all(&encode(resp));
}

impl Session {
    fn start(req: &ExecRequest, ctx: &ExecContext<'_>) -> io::Result<Session> {
        let name = |ext: &str| format!("exec-{}.{ext}", req.exec_id);
        let files = [
            ctx.state_dir.join(name("pid")),
            ctx.state_dir.join(name("sock")),
            ctx.state_dir.join(name("log")),
        ];
        for f in &files {
            let _ = std::fs::remove_file(f);
        }
        let runc = ctx.runc.with_log(&files[2]);
        let mut s = Session {
            id: req.exec_id.clone(),
            client: None,
            phase: Phase::Exited(0),
            outputs: Vec::new(),
            stdin: None,
            tty: None,
            input: Vec::new(),
            stdin_pending: Vec::new(),
            close_stdin: false,
            queue: Vec::new(),
            console: None,
            runc,
            files,
            drain_until: None,
            doomed: false,
            done: false,
        };
        let stdio = if req.tty {
            s.console = Some(ConsoleSocket::bind_named(ctx.state_dir, &name("sock"))?);
            RuncStdio {
                stdin: Stdio::null(),
                stdout: Stdio::null(),
                stderr: Stdio::null(),
            }
        } else {
            let mut out = |wanted: bool, id: u8| -> io::Result<Stdio> {
                if !wanted {
                    return Ok(Stdio::null());
                }
                let (r, w) = nonblocking_pipe()?;
                s.outputs.push(Some(Output {
                    fd: r,
                    frame_id: id,
                }));
                Ok(Stdio::from(w))
            };
            let stdout = out(req.stdout, frame::STDOUT)?;
            let stderr = out(req.stderr, frame::STDERR)?;
            let stdin = if req.stdin {
                let (r, w) = pipe2(OFlag::O_CLOEXEC)?;
                set_nonblocking(&w)?;
                s.stdin = Some(w);
                Stdio::from(r)
            } else {
                Stdio::null()
            };
            RuncStdio {
                stdin,
                stdout,
                stderr,
            }
        };
        let console = s.console.as_ref().map(ConsoleSocket::runc_path);
        let pid = s
            .runc
            .spawn_exec(ctx.container_id, &req.process, &s.files[0], console, stdio)?;
        s.phase = Phase::Starting(Pid::from_raw(pid as i32));
        Ok(s)
    }

    /// `runc exec` ended: the process runs (code 0) or runc failed.
    fn runc_exited(&mut self, code: i32, diag: &mut Diag) {
        let started = if code == 0 {
            read_pid(&self.files[0]).map_err(|e| format!("read runc's pid file: {e}"))
        } else {
            // A non-TTY session's stderr pipe holds what runc said, if stderr was asked for.
            let said = self
                .outputs
                .iter()
                .flatten()
                .find(|o| o.frame_id == frame::STDERR)
                .map(|o| super::drain_nonblocking(&o.fd))
                .unwrap_or_default();
            Err(self.runc.exec_failure(&said, code))
        };
        let pid = match started {
            Ok(pid) => Pid::from_raw(pid as i32),
            Err(message) => {
                diag.log(format_args!("exec {} failed: {message}", self.id));
                if let Some(c) = &self.client {
                    reply(c, &Response::err(message));
                }
                self.client = None;
                self.remove_files();
                self.done = true;
                return;
            }
        };
        self.phase = Phase::Running(pid);
        if let Some(console) = self.console.take() {
            match console.receive(CONSOLE_WAIT).and_then(|master| {
                set_nonblocking(&master)?;
                Ok((master.try_clone()?, master.try_clone()?, master))
            }) {
                Ok((reader, writer, master)) => {
                    self.outputs.push(Some(Output {
                        fd: reader,
                        frame_id: frame::STDOUT,
                    }));
                    self.stdin = Some(writer);
                    self.tty = Some(master);
                }
                Err(e) => diag.log(format_args!("exec {}: no pty master: {e}", self.id)),
            }
        }
        if self.doomed {
            let _ = kill(pid, Signal::SIGKILL);
        }
        diag.log(format_args!("exec {} running as pid {pid}", self.id));
        let ok = Response {
            pid: u32::try_from(pid.as_raw()).ok(),
            ..Response::ok()
        };
        let sent = self.client.as_ref().map(|c| {
            let mut c = c;
            c.write_all(&encode(&ok))
                .and_then(|()| c.set_nonblocking(true))
        });
        if let Some(Err(e)) = sent {
            diag.log(format_args!("exec {}: reply failed: {e}", self.id));
            self.client_gone(diag);
        }
    }

    fn on_client(&mut self, revents: PollFlags, diag: &mut Diag) {
        if self.client.is_none() {
            return;
        }
        if !self.flush() {
            self.client_gone(diag);
            return;
        }
        if matches!(self.phase, Phase::Starting(_)) {
            // Input waits in the socket until the reply is sent; only a hang-up matters now.
            if revents.intersects(PollFlags::POLLHUP | PollFlags::POLLERR) {
                self.client_gone(diag);
            }
            return;
        }
        let mut buf = [0u8; 4096];
        let mut ended = false;
        // Stops after one frame's worth when the command does not read its input.
        while self.stdin_pending.is_empty() && !ended {
            let Some(c) = self.client.as_mut() else {
                return;
            };
            match c.read(&mut buf) {
                Ok(0) => ended = true,
                Ok(n) => {
                    self.input.extend_from_slice(&buf[..n]);
                    ended = !self.take_frames();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => ended = true,
            }
        }
        // Not reading its input while the command is busy, and it hung up.
        ended |= revents.intersects(PollFlags::POLLHUP | PollFlags::POLLERR)
            && !self.stdin_pending.is_empty();
        if ended {
            self.client_gone(diag);
        }
    }

    /// Handles the whole frames received; false when the client sent something invalid.
    fn take_frames(&mut self) -> bool {
        loop {
            let (id, end) = match frame::parse(&self.input) {
                Ok(Some(f)) => f,
                Ok(None) => return true,
                Err(()) => return false,
            };
            let payload: Vec<u8> = self.input[frame::HEADER..end].to_vec();
            self.input.drain(..end);
            match id {
                frame::STDIN => self.write_stdin(&payload),
                frame::EOF => {
                    if self.tty.is_none() {
                        self.close_stdin = true;
                        self.write_stdin(&[]);
                    }
                }
                frame::RESIZE if payload.len() == 4 => {
                    if let Some(master) = &self.tty {
                        let width = u16::from_be_bytes([payload[0], payload[1]]);
                        let height = u16::from_be_bytes([payload[2], payload[3]]);
                        let _ = tty::resize(master, width, height);
                    }
                }
                frame::SIGNAL if payload.len() == 1 => {
                    if let (Phase::Running(pid), Ok(sig)) =
                        (self.phase, Signal::try_from(i32::from(payload[0])))
                    {
                        let _ = kill(pid, sig);
                    }
                }
                _ => return false,
            }
        }
    }

    /// Writes `data` (after anything pending) to the command's input without blocking.
    fn write_stdin(&mut self, data: &[u8]) {
        self.stdin_pending.extend_from_slice(data);
        let Some(fd) = &self.stdin else {
            self.stdin_pending.clear();
            return;
        };
        write_pending(fd, &mut self.stdin_pending);
        if self.stdin_pending.is_empty() && self.close_stdin {
            self.stdin = None;
        }
    }

    fn on_output(&mut self, j: usize) {
        let Some(Some(out)) = self.outputs.get(j) else {
            return;
        };
        let mut buf = [0u8; READ_CHUNK];
        let eof = loop {
            if self.client.is_some() && self.queue.len() >= frame::OUTPUT_LIMIT {
                break false;
            }
            match nix::unistd::read(&out.fd, &mut buf) {
                Ok(0) => break true,
                Ok(n) => {
                    if self.client.is_some() {
                        frame::push(&mut self.queue, out.frame_id, &buf[..n]);
                    }
                }
                Err(Errno::EAGAIN) => break false,
                Err(Errno::EINTR) => {}
                // EIO: the pty's last slave fd was closed.
                Err(_) => break true,
            }
        };
        if eof {
            self.outputs[j] = None;
        }
        if self.client.is_some() && !self.flush() {
            self.client = None;
            self.queue = Vec::new();
        }
    }

    /// Writes as much queued output as the client takes; false if the client is gone.
    fn flush(&mut self) -> bool {
        let Some(c) = self.client.as_mut() else {
            return false;
        };
        let mut written = 0;
        let mut alive = true;
        while written < self.queue.len() {
            match c.write(&self.queue[written..]) {
                Ok(0) => {
                    alive = false;
                    break;
                }
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    alive = false;
                    break;
                }
            }
        }
        self.queue.drain(..written);
        alive
    }

    /// The client went away: the command keeps running, its input ends (a TTY hangs up) and
    /// its output is discarded from now on.
    fn client_gone(&mut self, diag: &mut Diag) {
        if self.client.take().is_some() {
            diag.log(format_args!("exec {}: client gone", self.id));
        }
        self.queue = Vec::new();
        self.input = Vec::new();
        if self.tty.take().is_some() {
            // Closing every master fd hangs the terminal up (SIGHUP to its session).
            self.stdin = None;
            self.stdin_pending.clear();
            self.outputs.clear();
        } else {
            // What the client sent is still delivered, then the command sees EOF.
            self.close_stdin = true;
            self.write_stdin(&[]);
        }
    }

    /// Sends what is queued and the exit frame (briefly blocking), then closes.
    fn finish(&mut self, code: i32) {
        // Gone before the client hears of the end.
        self.remove_files();
        if let Some(mut c) = self.client.take() {
            frame::push(&mut self.queue, frame::EXIT, &code.to_be_bytes());
            let _ = c.set_nonblocking(false);
            let _ = c.set_write_timeout(Some(CONN_TIMEOUT));
            let _ = c.write_all(&self.queue);
        }
        self.done = true;
    }

    fn remove_files(&self) {
        for f in &self.files {
            let _ = std::fs::remove_file(f);
        }
    }
}
