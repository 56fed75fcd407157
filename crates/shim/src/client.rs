//! The control-socket client berthd uses: one connection per request.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::ShimError;
use crate::exitfile::read_exit;
use crate::paths::{CONTROL_SOCKET, INIT_PID_FILE};
use crate::protocol::{decode, encode, ExecRequest, Request, Response, Status, MAX_LINE};
use crate::sockpath::SocketPath;

/// Default time allowed for one request (connect, write, reply).
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Talks to the shim whose state dir is `state_dir`.
#[derive(Debug, Clone)]
pub struct ShimClient {
    state_dir: PathBuf,
    timeout: Duration,
}

/// The container's state as reported by [`ShimClient::state`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShimState {
    /// The container init's PID (0 if unknown).
    pub pid: u32,
    pub status: Status,
    /// Set once `status` is [`Status::Exited`].
    pub exit_code: Option<i32>,
}

impl ShimClient {
    pub fn new(state_dir: impl Into<PathBuf>) -> Self {
        ShimClient {
            state_dir: state_dir.into(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Per-request timeout (default 5 s).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// Reopens the container log (for `ReopenContainerLog`). When this returns `Ok`, a file
    /// exists at the log path again.
    pub fn reopen_log(&self) -> Result<(), ShimError> {
        self.call(&Request::ReopenLog).map(drop)
    }

    /// The container's state. When the shim is gone but has left an exit file, this reports
    /// [`Status::Exited`] from that file instead of failing.
    pub fn state(&self) -> Result<ShimState, ShimError> {
        match self.call(&Request::State) {
            Ok(r) => Ok(ShimState {
                pid: r.pid.unwrap_or(0),
                status: r.status.ok_or_else(|| ShimError::Protocol {
                    message: "state reply without status".into(),
                })?,
                exit_code: r.exit_code,
            }),
            Err(ShimError::NotRunning { state_dir }) => match read_exit(&self.state_dir)? {
                Some(exit) => Ok(ShimState {
                    pid: read_init_pid(&self.state_dir).unwrap_or(0),
                    status: Status::Exited,
                    exit_code: Some(exit.exit_code),
                }),
                None => Err(ShimError::NotRunning { state_dir }),
            },
            Err(e) => Err(e),
        }
    }

    /// Sets the terminal size (TTY containers only; others answer [`ShimError::Rejected`]).
    pub fn resize(&self, width: u16, height: u16) -> Result<(), ShimError> {
        self.call(&Request::Resize { width, height }).map(drop)
    }

    /// Closes the container's stdin (the shim's write end of the pipe).
    pub fn close_stdin(&self) -> Result<(), ShimError> {
        self.call(&Request::CloseStdin).map(drop)
    }

    /// Attaches to the container's stdio: returns the connection, now carrying
    /// [`crate::protocol::frame`]s (see [`crate::protocol`]), in blocking mode without
    /// timeouts.
    pub fn attach(&self, stdin: bool, stdout: bool, stderr: bool) -> Result<UnixStream, ShimError> {
        let request = Request::Attach {
            stdin,
            stdout,
            stderr,
        };
        self.open_stream(&request, self.timeout).map(|(s, _)| s)
    }

    /// Runs a process in the container under the shim (see [`crate::protocol`]): waits up to
    /// `start_timeout` for runc to start it and returns its host PID and the connection, now
    /// carrying frames, in blocking mode without timeouts. runc's failure to start the process
    /// is [`ShimError::Rejected`] with runc's message.
    pub fn exec(
        &self,
        request: ExecRequest,
        start_timeout: Duration,
    ) -> Result<(UnixStream, u32), ShimError> {
        let (stream, reply) = self.open_stream(&Request::Exec(request), start_timeout)?;
        let pid = reply.pid.ok_or_else(|| ShimError::Protocol {
            message: "exec reply without pid".into(),
        })?;
        Ok((stream, pid))
    }

    /// Sends `request` and reads the reply line; on success the connection is switched to
    /// frames (blocking, no timeouts).
    fn open_stream(
        &self,
        request: &Request,
        reply_timeout: Duration,
    ) -> Result<(UnixStream, Response), ShimError> {
        let sock = self.state_dir.join(CONTROL_SOCKET);
        let io_err = |e: io::Error| self.map_io(&sock, e);
        let addr = SocketPath::new(&self.state_dir, CONTROL_SOCKET).map_err(io_err)?;
        let mut stream = UnixStream::connect(addr.path()).map_err(io_err)?;
        stream
            .set_read_timeout(Some(reply_timeout))
            .and_then(|_| stream.set_write_timeout(Some(self.timeout)))
            .map_err(io_err)?;
        stream.write_all(&encode(request)).map_err(io_err)?;
        // Byte by byte: frames follow the reply line at once.
        let mut reply = Vec::with_capacity(64);
        let mut byte = [0u8; 1];
        loop {
            let n = stream.read(&mut byte).map_err(io_err)?;
            if n == 0 {
                if reply.is_empty() {
                    return Err(ShimError::NotRunning {
                        state_dir: self.state_dir.clone(),
                    });
                }
                return Err(ShimError::Protocol {
                    message: "reply without newline".into(),
                });
            }
            if byte[0] == b'\n' {
                break;
            }
            reply.push(byte[0]);
            if reply.len() > MAX_LINE {
                return Err(ShimError::Protocol {
                    message: "reply too long".into(),
                });
            }
        }
        let resp: Response = decode(&reply).map_err(|e| ShimError::Protocol {
            message: format!("bad reply: {e}"),
        })?;
        if !resp.ok {
            return Err(ShimError::Rejected {
                message: resp.error.unwrap_or_else(|| "unspecified error".into()),
            });
        }
        stream
            .set_read_timeout(None)
            .and_then(|_| stream.set_write_timeout(None))
            .map_err(io_err)?;
        Ok((stream, resp))
    }

    /// Sends one request and returns the successful reply.
    fn call(&self, req: &Request) -> Result<Response, ShimError> {
        let sock = self.state_dir.join(CONTROL_SOCKET);
        let io_err = |e: io::Error| self.map_io(&sock, e);
        let addr = SocketPath::new(&self.state_dir, CONTROL_SOCKET).map_err(io_err)?;
        let mut stream = UnixStream::connect(addr.path()).map_err(io_err)?;
        stream
            .set_read_timeout(Some(self.timeout))
            .and_then(|_| stream.set_write_timeout(Some(self.timeout)))
            .map_err(io_err)?;
        stream.write_all(&encode(req)).map_err(io_err)?;

        let mut reply = Vec::with_capacity(128);
        let mut buf = [0u8; 1024];
        while !reply.contains(&b'\n') {
            let n = stream.read(&mut buf).map_err(io_err)?;
            if n == 0 {
                break;
            }
            reply.extend_from_slice(&buf[..n]);
            if reply.len() > MAX_LINE {
                return Err(ShimError::Protocol {
                    message: "reply too long".into(),
                });
            }
        }
        let line = match reply.iter().position(|b| *b == b'\n') {
            Some(i) => &reply[..i],
            None if reply.is_empty() => {
                // Accepted, then closed without a word: the shim is on its way out.
                return Err(ShimError::NotRunning {
                    state_dir: self.state_dir.clone(),
                });
            }
            None => {
                return Err(ShimError::Protocol {
                    message: "reply without newline".into(),
                })
            }
        };
        let resp: Response = decode(line).map_err(|e| ShimError::Protocol {
            message: format!("bad reply: {e}"),
        })?;
        if resp.ok {
            Ok(resp)
        } else {
            Err(ShimError::Rejected {
                message: resp.error.unwrap_or_else(|| "unspecified error".into()),
            })
        }
    }

    fn map_io(&self, sock: &Path, e: io::Error) -> ShimError {
        match e.kind() {
            io::ErrorKind::NotFound
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::BrokenPipe => ShimError::NotRunning {
                state_dir: self.state_dir.clone(),
            },
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => ShimError::Timeout {
                what: "shim control reply",
                after: self.timeout,
            },
            _ => ShimError::io("talk to shim at", sock, e),
        }
    }
}

fn read_init_pid(state_dir: &Path) -> Option<u32> {
    std::fs::read_to_string(state_dir.join(INIT_PID_FILE))
        .ok()?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exitfile::{write_exit, ExitStatus};
    use std::io::BufRead;
    use std::os::unix::net::UnixListener;

    /// Serves `replies` (one per connection) and returns the requests it saw.
    fn fake_shim(dir: &Path, replies: Vec<&'static [u8]>) -> std::thread::JoinHandle<Vec<String>> {
        let l = UnixListener::bind(dir.join(CONTROL_SOCKET)).unwrap();
        std::thread::spawn(move || {
            let mut seen = Vec::new();
            for reply in replies {
                let (s, _) = l.accept().unwrap();
                let mut line = String::new();
                std::io::BufReader::new(&s).read_line(&mut line).unwrap();
                seen.push(line);
                (&s).write_all(reply).unwrap();
            }
            seen
        })
    }

    #[test]
    fn requests_and_replies() {
        let dir = tempfile::tempdir().unwrap();
        let srv = fake_shim(
            dir.path(),
            vec![
                b"{\"ok\":true,\"pid\":9,\"status\":\"running\"}\n",
                b"{\"ok\":true}\n",
                b"{\"ok\":false,\"error\":\"no tty\"}\n",
                b"garbage\n",
                b"",
            ],
        );
        let c = ShimClient::new(dir.path());
        assert_eq!(
            c.state().unwrap(),
            ShimState {
                pid: 9,
                status: Status::Running,
                exit_code: None
            }
        );
        c.reopen_log().unwrap();
        match c.resize(80, 24) {
            Err(ShimError::Rejected { message }) => assert_eq!(message, "no tty"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(c.close_stdin(), Err(ShimError::Protocol { .. })));
        assert!(matches!(c.close_stdin(), Err(ShimError::NotRunning { .. })));
        let seen = srv.join().unwrap();
        assert_eq!(seen[0], "{\"op\":\"state\"}\n");
        assert_eq!(seen[2], "{\"op\":\"resize\",\"width\":80,\"height\":24}\n");
    }

    #[test]
    fn gone_shim_reports_exit_file() {
        let dir = tempfile::tempdir().unwrap();
        let c = ShimClient::new(dir.path());
        assert!(matches!(c.state(), Err(ShimError::NotRunning { .. })));
        assert!(matches!(c.reopen_log(), Err(ShimError::NotRunning { .. })));
        // A stale socket file with nobody listening: connection refused.
        drop(UnixListener::bind(dir.path().join(CONTROL_SOCKET)).unwrap());
        std::fs::write(dir.path().join(INIT_PID_FILE), "123").unwrap();
        write_exit(
            dir.path(),
            &ExitStatus {
                exit_code: 3,
                exited_at: 1,
                oom_killed: false,
            },
        )
        .unwrap();
        assert_eq!(
            c.state().unwrap(),
            ShimState {
                pid: 123,
                status: Status::Exited,
                exit_code: Some(3)
            }
        );
    }

    #[test]
    fn silent_shim_times_out() {
        let dir = tempfile::tempdir().unwrap();
        let _l = UnixListener::bind(dir.path().join(CONTROL_SOCKET)).unwrap();
        let c = ShimClient::new(dir.path()).with_timeout(Duration::from_millis(50));
        assert!(matches!(c.state(), Err(ShimError::Timeout { .. })));
    }
}
