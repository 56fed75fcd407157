//! Wire formats: the control socket and the readiness line.
//!
//! **Control socket** (`<state-dir>/shim.sock`): one request per connection. The client writes
//! one JSON object and a `\n`; the shim answers one JSON object and a `\n`, then closes.
//!
//! ```text
//! {"op":"state"}                        → {"ok":true,"pid":42,"status":"running"}
//!                                         {"ok":true,"pid":42,"status":"exited","exit_code":0}
//! {"op":"reopen_log"}                   → {"ok":true}
//! {"op":"resize","width":80,"height":24}→ {"ok":true}  (TTY only, else ok:false)
//! {"op":"close_stdin"}                  → {"ok":true}
//! {"op":"attach","stdin":true,"stdout":true,"stderr":true}
//!                                       → {"ok":true}, then framed streams (below)
//! {"op":"exec","exec_id":"ab12","process":"/path/process.json","tty":false,
//!  "stdin":true,"stdout":true,"stderr":true}
//!                                       → {"ok":true,"pid":77} once the process runs, then
//!                                         framed streams; or {"ok":false,"error":"<runc's>"}
//! anything else                         → {"ok":false,"error":"..."}
//! ```
//!
//! **Attach**: after the `{"ok":true}` line the connection stays open and carries
//! [`frame`]s both ways: the shim sends the container's output (`stdout`, `stderr`; a TTY's
//! output is `stdout`) to every attached client that asked for it, as well as to the log; the
//! client sends `stdin` bytes for the container and `eof` when its input ended. With
//! `--stdin-once`, the end of a client's input (an `eof` frame or a closed connection) closes
//! the container's stdin. When the container has exited and its output is drained, the shim
//! closes the connection. A client that falls more than [`frame::OUTPUT_LIMIT`] bytes behind
//! is disconnected, so the container is never slowed down by it.
//!
//! **Exec**: the shim runs `runc exec --detach` with the given process JSON, so the command is
//! the shim's child (not berthd's) and its stdio (pipes, or a pty master for `tty`) is held
//! by the shim. The reply comes when runc has started the process (or failed: runc's message).
//! Then the shim sends the command's `stdout`/`stderr` frames (never dropping output: a client
//! that does not read holds the command back) and finally one `exit` frame carrying the exit
//! code (128 + signal when killed) before closing. The client sends `stdin`, `eof` (closes the
//! command's stdin), `resize` and `signal` frames. If the client goes away, the command keeps
//! running under the shim: its stdin is closed (a TTY's master: the terminal hangs up) and its
//! output is read and dropped until it ends. When the container's init exits, remaining exec
//! processes are killed.
//!
//! New operations add variants to [`Request`] and optional fields to
//! [`Response`]; an old shim answers an unknown op with `ok:false`, so a newer berthd can tell.
//!
//! **Readiness** (`--ready-fd`): exactly one [`Ready`] line, then the fd is closed:
//! `{"ok":true,"pid":<init pid>,"shim_pid":<shim pid>}` or
//! `{"ok":false,"error":"<message>","source":"runc"|"shim"}`.

use serde::{Deserialize, Serialize};

/// Longest line either side accepts.
pub const MAX_LINE: usize = 64 * 1024;

/// A control request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Close and reopen the log path (after kubelet renamed the file).
    ReopenLog,
    /// The container's state.
    State,
    /// Set the pty's window size.
    Resize { width: u16, height: u16 },
    /// Close the shim's end of the container's stdin.
    CloseStdin,
    /// Switch the connection to framed streams (see the module docs).
    Attach {
        #[serde(default)]
        stdin: bool,
        #[serde(default)]
        stdout: bool,
        #[serde(default)]
        stderr: bool,
    },
    /// Run a process in the container and switch the connection to its streams.
    Exec(ExecRequest),
}

/// The parameters of an `exec` request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecRequest {
    /// Names the session's files in the state dir: 1 to 64 of `[A-Za-z0-9_-]`.
    pub exec_id: String,
    /// The OCI process JSON for `runc exec --process` (absolute path).
    pub process: std::path::PathBuf,
    #[serde(default)]
    pub tty: bool,
    #[serde(default)]
    pub stdin: bool,
    #[serde(default)]
    pub stdout: bool,
    #[serde(default)]
    pub stderr: bool,
}

impl ExecRequest {
    /// Whether `exec_id` is safe to put in a file name.
    pub fn valid_id(&self) -> bool {
        (1..=64).contains(&self.exec_id.len())
            && self
                .exec_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    }
}

/// The framing of an attach connection: a 1-byte stream id, the payload length as a
/// big-endian `u32`, the payload.
pub mod frame {
    /// Client → shim: bytes for the container's stdin.
    pub const STDIN: u8 = 0;
    /// Shim → client: the container's stdout (or the TTY's output).
    pub const STDOUT: u8 = 1;
    /// Shim → client: the container's stderr.
    pub const STDERR: u8 = 2;
    /// Client → shim: the client's input ended (empty payload).
    pub const EOF: u8 = 3;
    /// Client → shim (exec with a TTY): new terminal size, width and height as big-endian
    /// `u16`s.
    pub const RESIZE: u8 = 4;
    /// Client → shim (exec): send the signal numbered by the 1-byte payload to the command.
    pub const SIGNAL: u8 = 5;
    /// Shim → client (exec): the command's exit code as a big-endian `i32`; the last frame.
    pub const EXIT: u8 = 6;
    /// Header length.
    pub const HEADER: usize = 5;
    /// Largest payload either side sends or accepts.
    pub const MAX_PAYLOAD: usize = 16 * 1024;
    /// Output bytes the shim queues for one client before disconnecting it.
    pub const OUTPUT_LIMIT: usize = 64 * 1024;

    /// The header of a frame.
    pub fn header(id: u8, len: usize) -> [u8; HEADER] {
        let n = (len as u32).to_be_bytes();
        [id, n[0], n[1], n[2], n[3]]
    }

    /// Appends frames carrying `data` (split at [`MAX_PAYLOAD`]) to `out`.
    pub fn push(out: &mut Vec<u8>, id: u8, data: &[u8]) {
        if data.is_empty() {
            out.extend_from_slice(&header(id, 0));
        }
        for chunk in data.chunks(MAX_PAYLOAD) {
            out.extend_from_slice(&header(id, chunk.len()));
            out.extend_from_slice(chunk);
        }
    }

    /// A complete frame at the front of `buf`: `Ok(Some((id, payload range end)))`, `Ok(None)`
    /// when more bytes are needed, `Err(())` for a payload over [`MAX_PAYLOAD`].
    #[allow(clippy::result_unit_err)]
    pub fn parse(buf: &[u8]) -> Result<Option<(u8, usize)>, ()> {
        if buf.len() < HEADER {
            return Ok(None);
        }
        let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
        if len > MAX_PAYLOAD {
            return Err(());
        }
        if buf.len() < HEADER + len {
            return Ok(None);
        }
        Ok(Some((buf[0], HEADER + len)))
    }
}

/// Container state as the shim sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Running,
    Exited,
}

/// A control reply. `ok` is always present; the rest depends on the request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
}

impl Response {
    pub fn ok() -> Self {
        Response {
            ok: true,
            ..Default::default()
        }
    }

    pub fn err(message: impl Into<String>) -> Self {
        Response {
            ok: false,
            error: Some(message.into()),
            ..Default::default()
        }
    }
}

/// Where a startup failure came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureSource {
    /// `runc create` failed; the message is runc's.
    Runc,
    /// The shim itself failed before or around runc.
    Shim,
}

/// The readiness line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ready {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shim_pid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<FailureSource>,
}

impl Ready {
    pub fn success(init_pid: u32, shim_pid: u32) -> Self {
        Ready {
            ok: true,
            pid: Some(init_pid),
            shim_pid: Some(shim_pid),
            error: None,
            source: None,
        }
    }

    pub fn failure(source: FailureSource, message: impl Into<String>) -> Self {
        Ready {
            ok: false,
            pid: None,
            shim_pid: None,
            error: Some(message.into()),
            source: Some(source),
        }
    }
}

/// One JSON line (object + `\n`).
pub fn encode<T: Serialize>(msg: &T) -> Vec<u8> {
    // Serialising these plain structs cannot fail (no maps with non-string keys, no I/O).
    let mut v = serde_json::to_vec(msg).unwrap_or_else(|_| b"{\"ok\":false}".to_vec());
    v.push(b'\n');
    v
}

/// Parses one line (a trailing `\n` is allowed).
pub fn decode<'a, T: Deserialize<'a>>(line: &'a [u8]) -> Result<T, serde_json::Error> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    serde_json::from_slice(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_on_the_wire() {
        let cases = [
            (Request::ReopenLog, r#"{"op":"reopen_log"}"#),
            (Request::State, r#"{"op":"state"}"#),
            (
                Request::Resize {
                    width: 80,
                    height: 24,
                },
                r#"{"op":"resize","width":80,"height":24}"#,
            ),
            (Request::CloseStdin, r#"{"op":"close_stdin"}"#),
            (
                Request::Attach {
                    stdin: true,
                    stdout: true,
                    stderr: false,
                },
                r#"{"op":"attach","stdin":true,"stdout":true,"stderr":false}"#,
            ),
        ];
        for (req, wire) in cases {
            let enc = encode(&req);
            assert_eq!(enc, format!("{wire}\n").as_bytes());
            assert_eq!(decode::<Request>(&enc).unwrap(), req);
            assert_eq!(decode::<Request>(wire.as_bytes()).unwrap(), req);
        }
        let exec = Request::Exec(ExecRequest {
            exec_id: "e1".into(),
            process: "/s/e1.json".into(),
            tty: true,
            stdin: true,
            stdout: true,
            stderr: false,
        });
        let wire = r#"{"op":"exec","exec_id":"e1","process":"/s/e1.json","tty":true,"stdin":true,"stdout":true,"stderr":false}"#;
        assert_eq!(encode(&exec), format!("{wire}\n").as_bytes());
        assert_eq!(decode::<Request>(wire.as_bytes()).unwrap(), exec);
        assert!(decode::<Request>(br#"{"op":"exec"}"#).is_err());
        assert!(decode::<Request>(br#"{"op":"teleport"}"#).is_err());
        assert!(decode::<Request>(br#"{"op":"resize","width":-1,"height":2}"#).is_err());
        assert!(decode::<Request>(b"not json").is_err());
    }

    #[test]
    fn responses_on_the_wire() {
        assert_eq!(encode(&Response::ok()), b"{\"ok\":true}\n");
        assert_eq!(
            encode(&Response::err("no tty")),
            b"{\"ok\":false,\"error\":\"no tty\"}\n"
        );
        let st = Response {
            pid: Some(7),
            status: Some(Status::Exited),
            exit_code: Some(137),
            ..Response::ok()
        };
        let enc = encode(&st);
        assert_eq!(
            enc,
            b"{\"ok\":true,\"pid\":7,\"status\":\"exited\",\"exit_code\":137}\n"
        );
        assert_eq!(decode::<Response>(&enc).unwrap(), st);
        // Fields a newer shim adds are ignored by an older client.
        let newer: Response = decode(br#"{"ok":true,"attach":"x"}"#).unwrap();
        assert_eq!(newer, Response::ok());
    }

    #[test]
    fn exec_ids() {
        let mut r = ExecRequest {
            exec_id: "A-b_9".into(),
            process: "/p".into(),
            tty: false,
            stdin: false,
            stdout: true,
            stderr: true,
        };
        assert!(r.valid_id());
        for bad in ["", "../x", "a/b", "a.b", &"x".repeat(65)] {
            r.exec_id = bad.into();
            assert!(!r.valid_id(), "{bad}");
        }
    }

    #[test]
    fn frames_round_trip() {
        let mut out = Vec::new();
        frame::push(&mut out, frame::STDOUT, b"hello");
        frame::push(&mut out, frame::EOF, b"");
        assert_eq!(&out[..5], &[1, 0, 0, 0, 5]);
        let (id, end) = frame::parse(&out).unwrap().unwrap();
        assert_eq!((id, &out[5..end]), (frame::STDOUT, &b"hello"[..]));
        assert_eq!(frame::parse(&out[end..]).unwrap(), Some((frame::EOF, 5)));
        assert_eq!(frame::parse(&out[..7]).unwrap(), None);
        let big = frame::header(frame::STDIN, frame::MAX_PAYLOAD + 1);
        assert!(frame::parse(&big).is_err());
        let mut split = Vec::new();
        frame::push(&mut split, frame::STDIN, &vec![7u8; frame::MAX_PAYLOAD + 3]);
        assert_eq!(split.len(), frame::MAX_PAYLOAD + 3 + 2 * frame::HEADER);
    }

    #[test]
    fn ready_lines() {
        let ok = Ready::success(42, 41);
        let enc = encode(&ok);
        assert_eq!(enc, b"{\"ok\":true,\"pid\":42,\"shim_pid\":41}\n");
        assert_eq!(decode::<Ready>(&enc).unwrap(), ok);
        let bad = Ready::failure(FailureSource::Runc, "exec: \"x\": not found");
        let enc = encode(&bad);
        assert_eq!(decode::<Ready>(&enc).unwrap(), bad);
        assert!(String::from_utf8(enc)
            .unwrap()
            .contains("\"source\":\"runc\""));
    }
}
