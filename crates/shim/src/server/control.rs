//! The control socket, `<state-dir>/shim.sock`: one request per connection (see
//! [`crate::protocol`]). Connections are served one at a time from the main loop with a short
//! I/O timeout, so a stuck client delays the loop by at most [`CONN_TIMEOUT`].

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::stat::{umask, Mode};

use crate::paths::CONTROL_SOCKET;
use crate::protocol::{decode, encode, Request, Response};
use crate::sockpath::SocketPath;

/// Longest time one client may take to send its request or read the reply.
pub(crate) const CONN_TIMEOUT: Duration = Duration::from_secs(1);
/// Requests are tiny; anything longer is refused.
const MAX_REQUEST: usize = 4096;

/// Binds `dir/name` (replacing a stale socket) so that only the owner can connect (mode 0600).
pub(crate) fn bind_private(dir: &Path, name: &str) -> io::Result<UnixListener> {
    let file = dir.join(name);
    match std::fs::remove_file(&file) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let addr = SocketPath::new(dir, name)?;
    // The mode of a socket file comes from the umask at bind time; the shim is
    // single-threaded, so changing it around the bind affects nothing else.
    let old = umask(Mode::from_bits_truncate(0o177));
    let res = UnixListener::bind(addr.path());
    umask(old);
    res
}

/// The listening control socket; its file is removed when dropped.
pub(crate) struct ControlSocket {
    listener: UnixListener,
    file: PathBuf,
}

impl ControlSocket {
    pub(crate) fn bind(state_dir: &Path) -> io::Result<Self> {
        let listener = bind_private(state_dir, CONTROL_SOCKET)?;
        listener.set_nonblocking(true)?;
        Ok(ControlSocket {
            listener,
            file: state_dir.join(CONTROL_SOCKET),
        })
    }

    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.listener.as_fd()
    }

    /// Accepts one pending connection, if any.
    pub(crate) fn accept(&self) -> io::Result<Option<Conn>> {
        match self.listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false)?;
                stream.set_read_timeout(Some(CONN_TIMEOUT))?;
                stream.set_write_timeout(Some(CONN_TIMEOUT))?;
                Ok(Some(Conn { stream }))
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(None),
            // The peer gave up between connect and accept.
            Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => Ok(None),
            Err(e) => Err(e),
        }
    }
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.file);
    }
}

/// One client connection.
pub(crate) struct Conn {
    stream: UnixStream,
}

impl Conn {
    /// Reads one request line. `Err` is the message to send back.
    pub(crate) fn read_request(&mut self) -> Result<Request, String> {
        let mut buf = Vec::with_capacity(64);
        let mut chunk = [0u8; 256];
        loop {
            let n = self
                .stream
                .read(&mut chunk)
                .map_err(|e| format!("read request: {e}"))?;
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
            if buf.contains(&b'\n') {
                break;
            }
            if buf.len() > MAX_REQUEST {
                return Err("request too long".into());
            }
        }
        let line = buf.split(|b| *b == b'\n').next().unwrap_or_default();
        decode(line).map_err(|e| format!("unsupported request: {e}"))
    }

    /// Sends the reply and keeps the connection (attach).
    pub(crate) fn reply_and_keep(mut self, resp: &Response) -> io::Result<UnixStream> {
        self.stream.write_all(&encode(resp))?;
        self.stream.set_nonblocking(true)?;
        Ok(self.stream)
    }

    /// Keeps the connection without replying yet (exec: the reply comes once runc has
    /// started the process). Still blocking, with [`CONN_TIMEOUT`].
    pub(crate) fn defer(self) -> UnixStream {
        self.stream
    }

    /// Sends the reply and closes the connection.
    pub(crate) fn reply(mut self, resp: &Response) -> io::Result<()> {
        self.stream.write_all(&encode(resp))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufRead;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn serves_one_request_per_connection() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(CONTROL_SOCKET), b"stale").unwrap();
        let cs = ControlSocket::bind(dir.path()).unwrap();
        let file = dir.path().join(CONTROL_SOCKET);
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(cs.accept().unwrap().is_none());

        let mut c = UnixStream::connect(&file).unwrap();
        c.write_all(b"{\"op\":\"resize\",\"width\":3,\"height\":4}\n")
            .unwrap();
        let mut conn = cs.accept().unwrap().unwrap();
        assert_eq!(
            conn.read_request().unwrap(),
            Request::Resize {
                width: 3,
                height: 4
            }
        );
        conn.reply(&Response::ok()).unwrap();
        let mut line = String::new();
        io::BufReader::new(&c).read_line(&mut line).unwrap();
        assert_eq!(line, "{\"ok\":true}\n");

        let mut c = UnixStream::connect(&file).unwrap();
        c.write_all(b"{\"op\":\"teleport\"}\n").unwrap();
        let mut conn = cs.accept().unwrap().unwrap();
        assert!(conn.read_request().unwrap_err().contains("unsupported"));

        drop(cs);
        assert!(!file.exists());
    }
}
