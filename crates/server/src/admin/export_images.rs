//! `ExportImages`: the names are resolved and the blobs opened first (an unknown name is the
//! RPC's NotFound); then the archive is written on a blocking thread into a writer that
//! sends it to the client in chunks of [`CHUNK_SIZE`], and a failure after that ends the
//! stream with its status. A client that stops reading holds no lock: the blobs were
//! opened before the GC lock was released.

use std::sync::Arc;

use berth_admin_api::{v1, CHUNK_SIZE};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use crate::daemon::Daemon;
use crate::error::ServiceError;
use crate::runtime::BoxStream;

/// Chunks buffered for a client that reads slowly.
const BUFFERED_CHUNKS: usize = 4;

pub(super) async fn export_images(
    daemon: Arc<Daemon>,
    request: v1::ExportImagesRequest,
) -> Result<BoxStream<v1::ExportImagesResponse>, ServiceError> {
    // Unknown names and missing blobs are answered here, before any byte is sent.
    let export = daemon.images.export(&request.refs).await?;
    let (tx, rx) = mpsc::channel(BUFFERED_CHUNKS);
    let writer = ChunkWriter {
        tx: tx.clone(),
        buffer: Vec::with_capacity(CHUNK_SIZE),
    };
    tokio::task::spawn_blocking(move || {
        if let Err(err) = export.write_to(writer) {
            let err = ServiceError::from(err);
            tracing::error!(
                rpc = "ExportImages",
                error = err.bounded_message(),
                "failed"
            );
            // Gone when the client is: nobody to tell.
            let _ = tx.blocking_send(Err(Status::from(err)));
        }
    });
    Ok(Box::pin(ReceiverStream::new(rx)))
}

/// Sends what is written in chunks of [`CHUNK_SIZE`]; fails once the client is gone.
struct ChunkWriter {
    tx: mpsc::Sender<Result<v1::ExportImagesResponse, Status>>,
    buffer: Vec<u8>,
}

impl ChunkWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let data = std::mem::replace(&mut self.buffer, Vec::with_capacity(CHUNK_SIZE));
        self.tx
            .blocking_send(Ok(v1::ExportImagesResponse { data }))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client left"))
    }
}

impl std::io::Write for ChunkWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = buf.len().min(CHUNK_SIZE - self.buffer.len());
        self.buffer.extend_from_slice(&buf[..n]);
        if self.buffer.len() == CHUNK_SIZE {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}
