//! Fetching one layer as a single pipeline: download → sha256 of the compressed bytes and a
//! copy into the content store → decompression → sha256 of the tar (the diff ID) → safe
//! unpack into a pending snapshot. Only the download runs on the async side; everything that
//! touches the disk (writing the blob, decompression, unpack, and the fsync and renames that
//! commit them) runs on blocking threads, fed through a bounded channel, so a layer is never
//! first downloaded and then unpacked and a slow disk never holds up an async worker. Blob
//! and snapshot become visible only after the compressed digest, the size and the diff ID
//! all matched.

use std::io::Read;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt as _;
use tokio::sync::mpsc;

use crate::content::{ContentStore, Ingest};
use crate::digest::{Digest, Hasher};
use crate::error::ImageError;
use crate::registry::Remote;
use crate::snapshots::Snapshots;
use crate::unpack::{apply_layer, decompress, Compression, Limits};

/// Chunks buffered between download and unpack (each is one HTTP body chunk, ≤ ~64 KiB).
const PIPELINE_DEPTH: usize = 64;

/// How often progress is logged while a layer downloads.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(5);

/// A layer to fetch.
#[derive(Debug, Clone)]
pub struct LayerJob {
    /// Digest of the compressed blob (from the manifest).
    pub digest: Digest,
    /// Its size (from the manifest).
    pub size: u64,
    /// Its media type.
    pub media_type: String,
    /// Digest of the uncompressed tar (from the config).
    pub diff_id: Digest,
    /// Chain ID naming its snapshot.
    pub chain_id: Digest,
}

/// Where a layer goes and how long a download may stall.
pub struct LayerSink<'a> {
    /// Blob store.
    pub content: &'a ContentStore,
    /// Snapshot store.
    pub snapshots: &'a Snapshots,
    /// Unpack limits.
    pub limits: &'a Limits,
    /// Longest time without data before the download fails.
    pub stall_timeout: Duration,
}

/// Reads the chunks sent by the download side, appending each to the blob first.
struct StoringReader {
    rx: mpsc::Receiver<Bytes>,
    current: Bytes,
    blob: Ingest,
    /// Why the blob could not be written; nothing is read after that.
    failed: Option<ImageError>,
}

impl StoringReader {
    /// The next chunk, stored in the blob; `None` at the end of the download.
    fn next_chunk(&mut self) -> Option<Bytes> {
        if self.failed.is_some() {
            return None;
        }
        let chunk = self.rx.blocking_recv()?;
        if let Err(err) = self.blob.write(&chunk) {
            self.failed = Some(err);
            return None;
        }
        Some(chunk)
    }

    /// Stores the rest of the download (the unpack may stop before its end).
    fn drain(&mut self) {
        while self.next_chunk().is_some() {}
    }
}

impl Read for StoringReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.next_chunk() {
                Some(chunk) => self.current = chunk,
                None if self.failed.is_some() => {
                    return Err(std::io::Error::other("the layer blob cannot be written"))
                }
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

/// Hashes what passes through.
struct HashingReader<R> {
    inner: R,
    hasher: Hasher,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// Fetches `job` from `remote` into `sink` unless its snapshot and blob are already there;
/// returns the bytes downloaded (0 for a layer already present).
pub async fn fetch_layer(
    remote: &Remote,
    job: &LayerJob,
    sink: &LayerSink<'_>,
) -> Result<u64, ImageError> {
    if sink.snapshots.contains(&job.chain_id) && sink.content.contains(&job.digest) {
        tracing::debug!(layer = %job.digest, "layer already present");
        return Ok(0);
    }
    let what = format!("layer {}", job.digest);
    let compression =
        Compression::from_media_type(&job.media_type).map_err(|source| ImageError::Unpack {
            layer: job.digest.clone(),
            source,
        })?;
    let pending = sink.snapshots.prepare()?;
    let blob = sink.content.ingest_direct()?;

    let (tx, rx) = mpsc::channel::<Bytes>(PIPELINE_DEPTH);
    let fs = pending.fs().to_owned();
    let limits = *sink.limits;
    let layer = job.digest.clone();
    let worker = tokio::task::spawn_blocking(move || {
        store_and_unpack(rx, blob, compression, &fs, &limits, &layer)
    });

    let started = Instant::now();
    let mut last_report = started;
    let mut stream = remote.blob_stream(&job.digest, job.size).await?;
    let mut received = 0u64;
    let download: Result<(), ImageError> = async {
        loop {
            let next = tokio::time::timeout(sink.stall_timeout, stream.next())
                .await
                .map_err(|_| ImageError::Stalled {
                    what: what.clone(),
                    seconds: sink.stall_timeout.as_secs(),
                })?;
            let Some(chunk) = next else { break };
            let chunk = match chunk {
                Ok(chunk) => chunk,
                // A whole (200) answer is hashed by the client too, which fails the stream's
                // end on a mismatch; all bytes arrived, so the comparison below reports it.
                Err(_) if received == job.size => break,
                Err(source) => {
                    return Err(ImageError::Io {
                        op: "download",
                        path: what.clone().into(),
                        source,
                    })
                }
            };
            received += chunk.len() as u64;
            if received > job.size {
                return Err(ImageError::SizeMismatch {
                    what: what.clone(),
                    expected: job.size,
                    actual: received,
                });
            }
            // The worker only stops receiving when the blob cannot be written; it says so.
            if tx.send(chunk).await.is_err() {
                break;
            }
            if last_report.elapsed() >= PROGRESS_INTERVAL {
                last_report = Instant::now();
                log_progress(&job.digest, received, job.size, started, "downloading");
            }
        }
        Ok(())
    }
    .await;
    drop(tx);
    let stored = worker.await?;
    download?;
    let (blob, unpacked) = stored?;
    verify(job, &blob, unpacked)?;
    let bytes = blob.len();
    let snapshots = sink.snapshots.clone();
    let (digest, size, chain_id) = (job.digest.clone(), job.size, job.chain_id.clone());
    tokio::task::spawn_blocking(move || {
        blob.commit(&what, &digest, size)?;
        snapshots.commit(pending, &chain_id)
    })
    .await??;
    log_progress(&job.digest, bytes, job.size, started, "unpacked");
    Ok(bytes)
}

/// The blocking side of a fetch: stores every chunk received on `rx` in `blob` and unpacks
/// the layer into `fs` as the chunks arrive. Returns the blob (holding the whole download,
/// whatever the unpack's outcome, so that its digest can be checked) and the unpack's
/// outcome: the diff ID, or why it failed. Fails only when the blob cannot be written.
pub(crate) fn store_and_unpack(
    rx: mpsc::Receiver<Bytes>,
    blob: Ingest,
    compression: Compression,
    fs: &std::path::Path,
    limits: &Limits,
    layer: &Digest,
) -> Result<(Ingest, Result<Digest, ImageError>), ImageError> {
    let mut input = StoringReader {
        rx,
        current: Bytes::new(),
        blob,
        failed: None,
    };
    let unpacked = unpack(&mut input, compression, fs, limits, layer);
    input.drain();
    match input.failed.take() {
        Some(err) => Err(err),
        None => Ok((input.blob, unpacked)),
    }
}

/// Checks a downloaded layer against the manifest's digest and the config's diff ID.
/// Integrity comes first: corrupted content explains any unpack failure it caused.
pub(crate) fn verify(
    job: &LayerJob,
    blob: &Ingest,
    unpacked: Result<Digest, ImageError>,
) -> Result<(), ImageError> {
    let what = format!("layer {}", job.digest);
    let actual = blob.digest();
    if actual != job.digest {
        return Err(ImageError::DigestMismatch {
            what,
            expected: job.digest.clone(),
            actual,
        });
    }
    let diff_id = unpacked?;
    if diff_id != job.diff_id {
        return Err(ImageError::DigestMismatch {
            what: format!("uncompressed {what} (diff ID from the image config)"),
            expected: job.diff_id.clone(),
            actual: diff_id,
        });
    }
    Ok(())
}

/// Decompresses `input` and unpacks it into `fs`; returns the diff ID (the sha256 of the
/// whole uncompressed stream).
pub(crate) fn unpack(
    input: impl Read,
    compression: Compression,
    fs: &std::path::Path,
    limits: &Limits,
    layer: &Digest,
) -> Result<Digest, ImageError> {
    let unpack_err = |source| ImageError::Unpack {
        layer: layer.clone(),
        source,
    };
    let tar = decompress(input, compression).map_err(unpack_err)?;
    let mut tar = HashingReader {
        inner: tar,
        hasher: Hasher::new(),
    };
    apply_layer(&mut tar, fs, limits).map_err(unpack_err)?;
    // Whatever follows the archive still belongs to the diff ID.
    std::io::copy(&mut tar, &mut std::io::sink()).map_err(ImageError::io("decompress", fs))?;
    Ok(tar.hasher.finish())
}

fn log_progress(layer: &Digest, bytes: u64, total: u64, started: Instant, stage: &str) {
    let seconds = started.elapsed().as_secs_f64();
    let rate_mb_s = if seconds > 0.0 {
        bytes as f64 / seconds / 1e6
    } else {
        0.0
    };
    tracing::info!(
        %layer,
        bytes,
        total,
        seconds = format!("{seconds:.2}"),
        rate_mb_s = format!("{rate_mb_s:.1}"),
        "layer {stage}"
    );
}
