//! The main loop: one thread, one `poll(2)` over the signalfd, the control socket, the
//! container's output (two pipes, or the pty master) and attached clients.
//!
//! Attached clients (see [`crate::protocol`]) get the output as it is read, in addition to
//! the log, through a bounded per-client queue; their stdin bytes go to the container's stdin
//! pipe or the pty master, which are non-blocking. While bytes wait for the container to read
//! them, no client's input is read, so at most one frame is held.
//!
//! When the init is reaped the exit time is taken, and output is drained until every stream
//! reaches EOF or [`DRAIN_TIMEOUT`] passes (something outside the container's PID namespace may
//! hold a pipe open). Then the loop ends; the caller checks OOM and writes the exit file.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::unistd::Pid;

use super::control::ControlSocket;
use super::diag::Diag;
use super::exec::{ExecContext, ExecTag, Sessions};
use super::log::{CriLog, LineBuffer, Stream, PARTIAL_LIMIT};
use super::reaper::{reap_all, Reaper};
use super::tty;
use crate::protocol::{frame, Request, Response, Status};
use crate::time::Timestamp;

/// How long output is drained after the init exited.
pub(crate) const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);
/// Bytes read per `read(2)`.
const READ_CHUNK: usize = 8 * 1024;
/// Reads per stream per wakeup, so one chatty stream cannot starve the others.
const READS_PER_WAKEUP: usize = 8;

/// One output stream of the container.
pub(crate) struct Source {
    fd: OwnedFd,
    lines: LineBuffer,
    /// Frame id for attached clients.
    frame_id: u8,
}

impl Source {
    pub(crate) fn new(stream: Stream, fd: OwnedFd) -> Self {
        let frame_id = match stream {
            Stream::Stdout => frame::STDOUT,
            Stream::Stderr => frame::STDERR,
        };
        Source {
            fd,
            lines: LineBuffer::new(stream, PARTIAL_LIMIT),
            frame_id,
        }
    }
}

/// One attached client.
struct Client {
    stream: UnixStream,
    stdin: bool,
    stdout: bool,
    stderr: bool,
    /// Received bytes not yet forming a whole frame.
    input: Vec<u8>,
    /// Frames not yet written to the client.
    output: Vec<u8>,
    /// Set when the client is to be dropped at the end of the round.
    gone: bool,
    /// poll reported a hang-up.
    hung_up: bool,
}

/// The shim's side of the container's stdio.
pub(crate) struct ContainerIo {
    /// Output to log: stdout and stderr pipes, or the pty master (a dup of `tty`).
    pub sources: Vec<Source>,
    /// Write end of the stdin pipe (non-TTY `--stdin`).
    pub stdin: Option<OwnedFd>,
    /// The pty master (TTY containers).
    pub tty: Option<OwnedFd>,
    /// Close stdin when the first attached client's input ends (`--stdin-once`).
    pub stdin_once: bool,
}

/// Everything the loop watches.
pub(crate) struct Monitor<'a> {
    init: Pid,
    reaper: Reaper,
    control: &'a ControlSocket,
    log: CriLog,
    diag: &'a mut Diag,
    /// Output streams still open (`None` once closed, until the end of the round).
    sources: Vec<Option<Source>>,
    /// Write end of the container's stdin pipe (non-TTY `--stdin`).
    stdin: Option<OwnedFd>,
    /// The pty master (TTY containers), for resize.
    tty: Option<OwnedFd>,
    stdin_once: bool,
    /// Client input the container has not read yet (at most one frame).
    stdin_pending: Vec<u8>,
    /// Close stdin once `stdin_pending` is written (`--stdin-once` and an input ended).
    close_stdin: bool,
    clients: Vec<Client>,
    exec: ExecContext<'a>,
    sessions: Sessions,
    exited: Option<(i32, Timestamp)>,
    drain_until: Option<Instant>,
    records: Vec<u8>,
    log_failing: bool,
}

/// How the init ended.
#[derive(Debug, Clone, Copy)]
pub(crate) struct InitExit {
    pub code: i32,
    pub at: Timestamp,
}

#[derive(Clone, Copy)]
enum Tag {
    Signals,
    Control,
    Output(usize),
    Client(usize),
    Stdin,
    Exec(ExecTag),
}

impl<'a> Monitor<'a> {
    pub(crate) fn new(
        init: Pid,
        reaper: Reaper,
        log: CriLog,
        io: ContainerIo,
        control: &'a ControlSocket,
        exec: ExecContext<'a>,
        diag: &'a mut Diag,
    ) -> Self {
        Monitor {
            init,
            reaper,
            control,
            log,
            diag,
            sources: io.sources.into_iter().map(Some).collect(),
            stdin: io.stdin,
            tty: io.tty,
            stdin_once: io.stdin_once,
            stdin_pending: Vec::new(),
            close_stdin: false,
            clients: Vec::new(),
            exec,
            sessions: Sessions::default(),
            exited: None,
            drain_until: None,
            records: Vec::new(),
            log_failing: false,
        }
    }

    /// Runs until the init has exited and its output is drained.
    pub(crate) fn run(mut self) -> InitExit {
        // The init may have died before the first SIGCHLD could be noticed.
        self.reap();
        loop {
            if let Some(until) = self.drain_until {
                let now = Instant::now();
                let drained = self.sources.is_empty() || now >= until;
                // Exec processes were killed with the init; their sessions get as long again.
                if drained && (self.sessions.is_empty() || now >= until + DRAIN_TIMEOUT) {
                    break;
                }
            }
            let ready = match self.wait() {
                Ok(r) => r,
                Err(e) => {
                    self.diag.log(format_args!("poll failed: {e}"));
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
            };
            for (tag, revents) in ready {
                match tag {
                    Tag::Signals => self.on_signals(),
                    Tag::Control => self.on_control(),
                    Tag::Output(i) => self.on_output(i),
                    Tag::Client(i) => self.on_client(i),
                    Tag::Stdin => self.write_stdin(&[]),
                    Tag::Exec(t) => self.sessions.on_ready(t, revents, self.diag),
                }
            }
            self.sources.retain(Option::is_some);
            self.clients.retain(|c| !c.gone);
            self.sessions.sweep();
        }
        self.sessions.close_all();
        // Whatever is left without a newline becomes a partial record.
        let mut clock = Timestamp::now;
        for s in self.sources.iter_mut().flatten() {
            s.lines.finish(&mut self.records, &mut clock);
        }
        self.flush();
        self.detach_all();
        let (code, at) = self.exited.unwrap_or((255, Timestamp::now()));
        InitExit { code, at }
    }

    /// Polls; returns the ready sources with what poll reported for each.
    fn wait(&mut self) -> io::Result<Vec<(Tag, PollFlags)>> {
        let deadline = match (self.drain_until, self.sessions.deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let timeout = match deadline {
            None => PollTimeout::NONE,
            Some(until) => {
                let left = until.saturating_duration_since(Instant::now());
                PollTimeout::try_from(left.as_millis().max(1) as u32).unwrap_or(PollTimeout::MAX)
            }
        };
        let mut tags = Vec::with_capacity(2 + self.sources.len());
        let mut fds = Vec::with_capacity(2 + self.sources.len());
        tags.push(Tag::Signals);
        fds.push(PollFd::new(self.reaper.fd(), PollFlags::POLLIN));
        tags.push(Tag::Control);
        fds.push(PollFd::new(self.control.fd(), PollFlags::POLLIN));
        for (i, s) in self.sources.iter().enumerate() {
            if let Some(s) = s {
                tags.push(Tag::Output(i));
                fds.push(PollFd::new(s.fd.as_fd(), PollFlags::POLLIN));
            }
        }
        let reading = self.stdin_pending.is_empty();
        for (i, c) in self.clients.iter().enumerate() {
            let mut events = PollFlags::empty();
            if reading {
                events |= PollFlags::POLLIN;
            }
            if !c.output.is_empty() {
                events |= PollFlags::POLLOUT;
            }
            tags.push(Tag::Client(i));
            fds.push(PollFd::new(c.stream.as_fd(), events));
        }
        if !reading {
            if let Some(fd) = self.stdin_target() {
                tags.push(Tag::Stdin);
                fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLOUT));
            }
        }
        self.sessions.register(&mut |fd, events, tag| {
            tags.push(Tag::Exec(tag));
            fds.push(PollFd::new(fd, events));
        });
        match poll(&mut fds, timeout) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
        let hup = PollFlags::POLLHUP | PollFlags::POLLERR;
        let mut hung_up = Vec::new();
        let ready: Vec<(Tag, PollFlags)> = tags
            .into_iter()
            .zip(fds.iter())
            .filter_map(|(t, f)| Some((t, f.revents().filter(|r| !r.is_empty())?)))
            .inspect(|(t, r)| {
                if let Tag::Client(i) = t {
                    if r.intersects(hup) {
                        hung_up.push(*i);
                    }
                }
            })
            .collect();
        drop(fds);
        for i in hung_up {
            self.clients[i].hung_up = true;
        }
        Ok(ready)
    }

    fn on_signals(&mut self) {
        match self.reaper.drain() {
            Ok(p) => {
                for s in p.ignored {
                    self.diag.log(format_args!("ignoring {s}"));
                }
                if p.child {
                    self.reap();
                }
            }
            Err(e) => self.diag.log(format_args!("signalfd read failed: {e}")),
        }
    }

    fn reap(&mut self) {
        let mut reaped = reap_all();
        self.sessions.on_exits(&mut reaped, self.diag);
        let init = reaped
            .iter()
            .find(|(pid, _)| *pid == self.init)
            .map(|(_, code)| *code);
        if let Some(code) = init {
            if self.exited.is_none() {
                let at = Timestamp::now();
                self.diag.log(format_args!(
                    "container init {} exited with code {code}",
                    self.init
                ));
                self.exited = Some((code, at));
                self.drain_until = Some(Instant::now() + DRAIN_TIMEOUT);
                self.sessions.kill_all();
            }
        }
    }

    fn on_control(&mut self) {
        // A few per wakeup; the rest wait in the backlog for the next round.
        for _ in 0..4 {
            let mut conn = match self.control.accept() {
                Ok(Some(c)) => c,
                Ok(None) => return,
                Err(e) => {
                    self.diag.log(format_args!("control accept failed: {e}"));
                    return;
                }
            };
            let resp = match conn.read_request() {
                Ok(Request::Attach {
                    stdin,
                    stdout,
                    stderr,
                }) => {
                    match conn.reply_and_keep(&Response::ok()) {
                        Ok(stream) => {
                            self.diag.log(format_args!(
                                "client attached (stdin {stdin}, stdout {stdout}, stderr {stderr})"
                            ));
                            self.clients.push(Client {
                                stream,
                                stdin,
                                stdout,
                                stderr,
                                input: Vec::new(),
                                output: Vec::new(),
                                gone: false,
                                hung_up: false,
                            });
                        }
                        Err(e) => self.diag.log(format_args!("attach reply failed: {e}")),
                    }
                    continue;
                }
                Ok(Request::Exec(req)) => {
                    if self.exited.is_some() {
                        Response::err("the container has exited")
                    } else {
                        self.sessions
                            .start(req, conn.defer(), &self.exec, self.diag);
                        continue;
                    }
                }
                Ok(req) => self.handle(req),
                Err(msg) => Response::err(msg),
            };
            if let Err(e) = conn.reply(&resp) {
                self.diag.log(format_args!("control reply failed: {e}"));
            }
        }
    }

    fn handle(&mut self, req: Request) -> Response {
        match req {
            Request::State => Response {
                pid: u32::try_from(self.init.as_raw()).ok(),
                status: Some(if self.exited.is_some() {
                    Status::Exited
                } else {
                    Status::Running
                }),
                exit_code: self.exited.map(|(c, _)| c),
                ..Response::ok()
            },
            Request::ReopenLog => {
                // Everything read so far goes to the old file first.
                self.flush();
                match self.log.reopen() {
                    Ok(()) => {
                        self.log_failing = false;
                        Response::ok()
                    }
                    Err(e) => {
                        self.diag.log(format_args!("reopen log failed: {e}"));
                        Response::err(format!("reopen log: {e}"))
                    }
                }
            }
            Request::Resize { width, height } => match &self.tty {
                Some(master) => match tty::resize(master, width, height) {
                    Ok(()) => Response::ok(),
                    Err(e) => Response::err(format!("resize: {e}")),
                },
                None => Response::err("container has no terminal"),
            },
            // Handled in `on_control`, which keeps the connection.
            Request::Attach { .. } | Request::Exec(_) => Response::err("not a one-shot request"),
            Request::CloseStdin => {
                // Dropping the write end gives the container EOF. On a TTY there is no separate
                // stdin to close; the request is accepted and has no effect.
                if self.stdin.take().is_some() {
                    self.diag.log(format_args!("stdin closed"));
                }
                Response::ok()
            }
        }
    }

    fn on_output(&mut self, i: usize) {
        let mut buf = [0u8; READ_CHUNK];
        let mut clock = Timestamp::now;
        let mut eof = false;
        let Some(src) = self.sources[i].as_mut() else {
            return;
        };
        for _ in 0..READS_PER_WAKEUP {
            match nix::unistd::read(&src.fd, &mut buf) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => {
                    src.lines.feed(&buf[..n], &mut self.records, &mut clock);
                    let id = src.frame_id;
                    for c in self.clients.iter_mut() {
                        c.send(id, &buf[..n]);
                    }
                }
                Err(Errno::EAGAIN) => break,
                Err(Errno::EINTR) => {}
                // EIO: the pty's last slave fd was closed. Anything else: give the stream up.
                Err(e) => {
                    if e != Errno::EIO {
                        self.diag.log(format_args!("reading container output: {e}"));
                    }
                    eof = true;
                    break;
                }
            }
        }
        if eof {
            src.lines.finish(&mut self.records, &mut clock);
            // Closes the fd; the slot is removed after this round so indices stay valid.
            self.sources[i] = None;
        }
        self.flush();
    }

    /// Where client input goes: the pty master or the stdin pipe.
    fn stdin_target(&self) -> Option<&OwnedFd> {
        self.tty.as_ref().or(self.stdin.as_ref())
    }

    /// Reads and writes what an attached client is ready for.
    fn on_client(&mut self, i: usize) {
        if self.clients[i].gone {
            return;
        }
        self.clients[i].flush();
        let mut ended = false;
        if self.stdin_pending.is_empty() {
            let mut buf = [0u8; 4096];
            // Stops after one frame's worth when the container does not read its input.
            while self.stdin_pending.is_empty() && !ended {
                let c = &mut self.clients[i];
                match c.stream.read(&mut buf) {
                    Ok(0) => ended = true,
                    Ok(n) => {
                        c.input.extend_from_slice(&buf[..n]);
                        ended = self.take_frames(i);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => ended = true,
                }
            }
        } else if self.clients[i].hung_up {
            // Not reading its input, and it hung up: poll would report that forever.
            ended = true;
        }
        if ended {
            let c = &mut self.clients[i];
            c.gone = true;
            if c.stdin {
                self.input_ended();
            }
            self.diag.log(format_args!("client detached"));
        }
    }

    /// Handles the whole frames in client `i`'s input; true when the client is to go.
    fn take_frames(&mut self, i: usize) -> bool {
        loop {
            let (id, end) = match frame::parse(&self.clients[i].input) {
                Ok(Some(f)) => f,
                Ok(None) => return false,
                Err(()) => return true,
            };
            let c = &mut self.clients[i];
            let wants_stdin = c.stdin;
            let payload: Vec<u8> = c.input[frame::HEADER..end].to_vec();
            c.input.drain(..end);
            match id {
                frame::STDIN if wants_stdin => self.write_stdin(&payload),
                frame::EOF if wants_stdin => {
                    self.clients[i].stdin = false;
                    self.input_ended();
                }
                _ => {}
            }
        }
    }

    /// A client's input ended: with `--stdin-once` the container's stdin is closed (once
    /// what is pending has been written).
    fn input_ended(&mut self) {
        if self.stdin_once && self.tty.is_none() {
            self.close_stdin = true;
            self.write_stdin(&[]);
        }
    }

    /// Writes `data` (after anything pending) to the container's input without blocking.
    fn write_stdin(&mut self, data: &[u8]) {
        self.stdin_pending.extend_from_slice(data);
        // The pty master or the stdin pipe (as `stdin_target`, borrowing only those fields).
        let Some(fd) = self.tty.as_ref().or(self.stdin.as_ref()) else {
            // No input to write to: the bytes are dropped.
            self.stdin_pending.clear();
            return;
        };
        write_pending(fd, &mut self.stdin_pending);
        if self.stdin_pending.is_empty() {
            self.stdin_pending = Vec::new();
            if self.close_stdin && self.stdin.take().is_some() {
                self.diag.log(format_args!("stdin closed (stdin_once)"));
            }
        }
    }

    /// Writes what is queued for each client (briefly blocking) and disconnects them all.
    fn detach_all(&mut self) {
        for mut c in self.clients.drain(..) {
            let _ = c.stream.set_nonblocking(false);
            let _ = c
                .stream
                .set_write_timeout(Some(super::control::CONN_TIMEOUT));
            let _ = c.stream.write_all(&c.output);
        }
    }

    /// Writes the collected records; on failure the output is dropped (logged once), never
    /// allowed to back up into the container.
    fn flush(&mut self) {
        if self.records.is_empty() {
            return;
        }
        match self.log.write(&self.records) {
            Ok(()) => self.log_failing = false,
            Err(e) => {
                if !self.log_failing {
                    self.diag.log(format_args!("writing container log: {e}"));
                }
                self.log_failing = true;
            }
        }
        self.records.clear();
        if self.records.capacity() > 64 * 1024 {
            self.records = Vec::new();
        }
    }
}

/// Writes as much of `pending` to the non-blocking `fd` as it takes now and removes it from
/// `pending`. A reader that is gone (EPIPE) takes everything: nothing will read it.
pub(crate) fn write_pending(fd: &OwnedFd, pending: &mut Vec<u8>) {
    let mut written = 0;
    while written < pending.len() {
        match nix::unistd::write(fd, &pending[written..]) {
            Ok(n) => written += n,
            Err(Errno::EINTR) => {}
            Err(Errno::EAGAIN) => break,
            Err(_) => written = pending.len(),
        }
    }
    pending.drain(..written);
}

impl Client {
    /// Queues output for the client if it asked for stream `id`; a client too far behind is
    /// dropped.
    fn send(&mut self, id: u8, data: &[u8]) {
        let wanted = match id {
            frame::STDOUT => self.stdout,
            frame::STDERR => self.stderr,
            _ => false,
        };
        if !wanted || self.gone {
            return;
        }
        if self.output.len() + data.len() > frame::OUTPUT_LIMIT {
            self.gone = true;
            return;
        }
        frame::push(&mut self.output, id, data);
        self.flush();
    }

    /// Writes as much queued output as the socket takes.
    fn flush(&mut self) {
        let mut written = 0;
        while written < self.output.len() {
            match self.stream.write(&self.output[written..]) {
                Ok(0) => {
                    self.gone = true;
                    break;
                }
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.gone = true;
                    break;
                }
            }
        }
        self.output.drain(..written);
        if self.output.is_empty() && self.output.capacity() > 4096 {
            self.output = Vec::new();
        }
    }
}
