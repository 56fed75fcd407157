//! The main loop: one thread, one `poll(2)` over the signalfd, the control socket and the
//! container's output (two pipes, or the pty master).
//!
//! When the init is reaped the exit time is taken, and output is drained until every stream
//! reaches EOF or [`DRAIN_TIMEOUT`] passes (something outside the container's PID namespace may
//! hold a pipe open). Then the loop ends; the caller checks OOM and writes the exit file.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::unistd::Pid;

use super::control::ControlSocket;
use super::diag::Diag;
use super::log::{CriLog, LineBuffer, Stream, PARTIAL_LIMIT};
use super::reaper::{reap_all, Reaper};
use super::tty;
use crate::protocol::{Request, Response, Status};
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
}

impl Source {
    pub(crate) fn new(stream: Stream, fd: OwnedFd) -> Self {
        Source {
            fd,
            lines: LineBuffer::new(stream, PARTIAL_LIMIT),
        }
    }
}

/// The shim's side of the container's stdio.
pub(crate) struct ContainerIo {
    /// Output to log: stdout and stderr pipes, or the pty master (a dup of `tty`).
    pub sources: Vec<Source>,
    /// Write end of the stdin pipe (non-TTY `--stdin`).
    pub stdin: Option<OwnedFd>,
    /// The pty master (TTY containers).
    pub tty: Option<OwnedFd>,
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
}

impl<'a> Monitor<'a> {
    pub(crate) fn new(
        init: Pid,
        reaper: Reaper,
        log: CriLog,
        io: ContainerIo,
        control: &'a ControlSocket,
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
                if self.sources.is_empty() || Instant::now() >= until {
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
            for tag in ready {
                match tag {
                    Tag::Signals => self.on_signals(),
                    Tag::Control => self.on_control(),
                    Tag::Output(i) => self.on_output(i),
                }
            }
            self.sources.retain(Option::is_some);
        }
        // Whatever is left without a newline becomes a partial record.
        let mut clock = Timestamp::now;
        for s in self.sources.iter_mut().flatten() {
            s.lines.finish(&mut self.records, &mut clock);
        }
        self.flush();
        let (code, at) = self.exited.unwrap_or((255, Timestamp::now()));
        InitExit { code, at }
    }

    /// Polls; returns the ready sources.
    fn wait(&mut self) -> io::Result<Vec<Tag>> {
        let timeout = match self.drain_until {
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
        match poll(&mut fds, timeout) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
        Ok(tags
            .into_iter()
            .zip(fds.iter())
            .filter(|(_, f)| f.revents().is_some_and(|r| !r.is_empty()))
            .map(|(t, _)| t)
            .collect())
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
        if let Some(code) = reap_all(self.init) {
            if self.exited.is_none() {
                let at = Timestamp::now();
                self.diag.log(format_args!(
                    "container init {} exited with code {code}",
                    self.init
                ));
                self.exited = Some((code, at));
                self.drain_until = Some(Instant::now() + DRAIN_TIMEOUT);
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
                Ok(n) => src.lines.feed(&buf[..n], &mut self.records, &mut clock),
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
