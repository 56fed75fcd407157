//! `ImageManager::import`: an archive stream → pending blobs ([`stage`](super::stage)) →
//! images ([`plan`](super::plan)) → layers unpacked into pending snapshots, each diff ID
//! checked against its config → everything committed → image records. Until the records
//! are written nothing of the archive is visible; a failure anywhere discards every pending
//! blob and snapshot, so a refused archive leaves nothing behind (a pull that fails after
//! some layers leaves those for the next garbage collection; an import does not).
//!
//! The stream is read on the async side (a chunk that does not come within the stall
//! timeout fails the import) and written on a blocking thread through a bounded channel.
//! The GC lock is taken shared once the stream has ended, as a pull holds it: from then
//! on no collection runs until the images are recorded.

use std::collections::HashSet;
use std::io::Read;
use std::time::Instant;

use berth_store::ImageRecord;
use bytes::Bytes;
use futures_util::{Stream, StreamExt as _};
use tokio::sync::mpsc;

use super::error::ArchiveError;
use super::plan::{plan, ImagePlan};
use super::stage::{stage, StagedArchive};
use crate::content::ContentStore;
use crate::digest::Digest;
use crate::error::ImageError;
use crate::layer::unpack;
use crate::manager::ImageManager;
use crate::record::RecordUpdate;
use crate::snapshots::{PendingSnapshot, Snapshots};
use crate::unpack::Limits;

/// Chunks buffered between the stream and the blocking reader.
const PIPELINE_DEPTH: usize = 16;

/// How an import is asked for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportOptions {
    /// Pin every image of the archive (`Image.pinned`).
    pub pin: bool,
}

impl ImageManager {
    /// Imports the images of the archive `stream` carries (`docker save` or OCI image
    /// layout, see [`crate::archive`]) and returns their records, in archive order.
    pub async fn import<S>(
        &self,
        mut stream: S,
        options: ImportOptions,
    ) -> Result<Vec<ImageRecord>, ImageError>
    where
        S: Stream<Item = Result<Bytes, std::io::Error>> + Unpin,
    {
        let started = Instant::now();
        let (tx, rx) = mpsc::channel::<Bytes>(PIPELINE_DEPTH);
        let content = self.content.clone();
        let worker = tokio::task::spawn_blocking(move || {
            let input = ChunkReader {
                rx,
                current: Bytes::new(),
            };
            stage(input, &content)
        });
        let stall = self.settings.stall_timeout;
        let mut received = 0u64;
        let sent: Result<(), ImageError> = async {
            loop {
                let next = tokio::time::timeout(stall, stream.next())
                    .await
                    .map_err(|_| ImageError::Stalled {
                        what: "the archive stream".into(),
                        seconds: stall.as_secs(),
                    })?;
                let chunk = match next {
                    None => return Ok(()),
                    Some(Ok(chunk)) => chunk,
                    Some(Err(source)) => return Err(ArchiveError::Read { source }.into()),
                };
                received += chunk.len() as u64;
                // The reader stops early only on an error, which it returns.
                if tx.send(chunk).await.is_err() {
                    return Ok(());
                }
            }
        }
        .await;
        drop(tx);
        let staged = worker.await?;
        sent?;
        let staged = staged?;

        let _shared = self.gc_lock.read().await;
        let (staged, plans) = tokio::task::spawn_blocking(move || {
            let plans = plan(&staged)?;
            Ok::<_, ImageError>((staged, plans))
        })
        .await??;
        let (content, snapshots, limits) = (
            self.content.clone(),
            self.snapshots.clone(),
            self.settings.limits,
        );
        let plans = tokio::task::spawn_blocking(move || {
            let pending = unpack_layers(&staged, &plans, &content, &snapshots, &limits)?;
            commit(staged, &plans, pending, &content, &snapshots)?;
            Ok::<_, ImageError>(plans)
        })
        .await??;

        let _records = self.record_lock.lock().await;
        let mut records = Vec::with_capacity(plans.len());
        for image in &plans {
            let chain: Vec<Digest> = image.layers.iter().map(|l| l.chain_id.clone()).collect();
            let record = self.write_record(&RecordUpdate {
                config: &image.config,
                config_bytes: &image.config_bytes,
                manifest: &image.manifest,
                size: image.size(),
                chain: &chain,
                tags: &image.tags,
                repo_digests: &image.repo_digests,
                pin: options.pin,
            })?;
            tracing::info!(
                image = %record.id,
                tags = ?record.repo_tags,
                layers = image.layers.len(),
                pinned = record.pinned,
                "image imported"
            );
            records.push(record);
        }
        tracing::info!(
            images = records.len(),
            bytes = received,
            seconds = format!("{:.2}", started.elapsed().as_secs_f64()),
            "archive imported"
        );
        Ok(records)
    }
}

/// Unpacks every layer of `plans` that is not in place yet into a pending snapshot and
/// checks its diff ID. A layer is in place when its snapshot and its blob are: the blob
/// was verified against the diff ID when that snapshot was made.
fn unpack_layers(
    staged: &StagedArchive,
    plans: &[ImagePlan],
    content: &ContentStore,
    snapshots: &Snapshots,
    limits: &Limits,
) -> Result<Vec<(Digest, PendingSnapshot)>, ImageError> {
    let mut pending = Vec::new();
    let mut seen = HashSet::new();
    for layer in plans.iter().flat_map(|image| &image.layers) {
        if !seen.insert(layer.chain_id.clone()) {
            continue;
        }
        if snapshots.contains(&layer.chain_id) && content.contains(&layer.blob) {
            tracing::debug!(layer = %layer.blob, "layer already present");
            continue;
        }
        let blob = staged
            .blob(&layer.blob)
            .ok_or_else(|| ArchiveError::MissingBlob {
                digest: layer.blob.clone(),
                referenced_by: "a layer of the archive".into(),
            })?;
        let path = blob.ingest.path();
        let file = std::fs::File::open(path).map_err(ImageError::io("open", path))?;
        let snapshot = snapshots.prepare()?;
        let diff_id = unpack(file, layer.compression, snapshot.fs(), limits, &layer.blob)?;
        if diff_id != layer.diff_id {
            return Err(ImageError::DigestMismatch {
                what: format!(
                    "uncompressed layer {} (diff ID from the image config)",
                    layer.blob
                ),
                expected: layer.diff_id.clone(),
                actual: diff_id,
            });
        }
        pending.push((layer.chain_id.clone(), snapshot));
    }
    Ok(pending)
}

/// Makes the snapshots and blobs of `plans` visible: snapshots, then layer blobs, then the
/// documents (a manifest that is present means its layers are). Staged files no image
/// uses are discarded when `staged` drops.
fn commit(
    mut staged: StagedArchive,
    plans: &[ImagePlan],
    pending: Vec<(Digest, PendingSnapshot)>,
    content: &ContentStore,
    snapshots: &Snapshots,
) -> Result<(), ImageError> {
    for (chain_id, snapshot) in pending {
        snapshots.commit(snapshot, &chain_id)?;
    }
    let mut commit_blob = |what: &str, digest: &Digest| -> Result<(), ImageError> {
        match staged.take(digest) {
            Some(blob) => {
                let size = blob.len();
                blob.ingest
                    .commit(&format!("{what} {digest}"), digest, size)
            }
            // Committed for an earlier image of the archive.
            None => Ok(()),
        }
    };
    for image in plans {
        for layer in &image.layers {
            commit_blob("layer", &layer.blob)?;
        }
    }
    for image in plans {
        commit_blob("image config", &image.config)?;
        if image.manifest_written {
            content.write_verified("manifest", &image.manifest, &image.manifest_bytes)?;
        } else {
            commit_blob("manifest", &image.manifest)?;
        }
        if let Some(index) = &image.index {
            commit_blob("image index", index)?;
        }
    }
    Ok(())
}

/// Reads the chunks the async side sends.
struct ChunkReader {
    rx: mpsc::Receiver<Bytes>,
    current: Bytes,
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(chunk) => self.current = chunk,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}
