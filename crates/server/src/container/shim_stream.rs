//! The framed side of a shim connection (attach and exec, see `berth_shim::protocol`), on
//! tokio: a reader that yields whole frames and a writer that sends them.

use std::path::Path;

use berth_shim::protocol::frame;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

use crate::error::ServiceError;

/// Incoming frames.
pub struct FrameReader {
    half: OwnedReadHalf,
    buffer: Vec<u8>,
}

/// Outgoing frames.
pub struct FrameWriter {
    half: OwnedWriteHalf,
    scratch: Vec<u8>,
}

/// Splits a connection the shim has switched to frames.
pub fn split(
    stream: std::os::unix::net::UnixStream,
    shim_dir: &Path,
) -> Result<(FrameReader, FrameWriter), ServiceError> {
    let stream = stream
        .set_nonblocking(true)
        .and_then(|()| tokio::net::UnixStream::from_std(stream))
        .map_err(|source| ServiceError::Io {
            action: "use the shim connection at",
            path: shim_dir.to_owned(),
            source,
        })?;
    let (half, write) = stream.into_split();
    Ok((
        FrameReader {
            half,
            buffer: Vec::with_capacity(frame::HEADER + frame::MAX_PAYLOAD),
        },
        FrameWriter {
            half: write,
            scratch: Vec::new(),
        },
    ))
}

impl FrameReader {
    /// The next frame: `Ok(None)` when the shim closed the connection (or it broke).
    pub async fn next(&mut self) -> Result<Option<(u8, Vec<u8>)>, ServiceError> {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match frame::parse(&self.buffer) {
                Ok(Some((id, end))) => {
                    let payload = self.buffer[frame::HEADER..end].to_vec();
                    self.buffer.drain(..end);
                    return Ok(Some((id, payload)));
                }
                Ok(None) => {}
                Err(()) => {
                    return Err(ServiceError::Shim(berth_shim::ShimError::Protocol {
                        message: "oversized frame from the shim".into(),
                    }))
                }
            }
            match self.half.read(&mut chunk).await {
                Ok(0) | Err(_) => return Ok(None),
                Ok(n) => self.buffer.extend_from_slice(&chunk[..n]),
            }
        }
    }
}

impl FrameWriter {
    /// Sends `data` as frames of stream `id`; `false` once the connection is gone.
    pub async fn send(&mut self, id: u8, data: &[u8]) -> bool {
        self.scratch.clear();
        frame::push(&mut self.scratch, id, data);
        self.half.write_all(&self.scratch).await.is_ok()
    }
}
