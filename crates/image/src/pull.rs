//! Pulling an image: resolve the reference on the registry's endpoints, pick the manifest of
//! this host's platform, fetch the config, fetch and unpack the layers in parallel (bounded),
//! then record the image with its tag and repo digest.

use std::time::Instant;

use berth_store::ImageRecord;
use bytes::Bytes;
use futures_util::TryStreamExt as _;

use crate::digest::{chain_ids, Digest};
use crate::error::ImageError;
use crate::layer::{fetch_layer, LayerJob, LayerSink};
use crate::manager::ImageManager;
use crate::manifest::{host_entry, parse_document, Document, ImageConfig, Manifest};
use crate::record::RecordUpdate;
use crate::reference::ImageReference;
use crate::registry::{resolve, Credentials};

impl ImageManager {
    /// Pulls `name` with `credentials` and returns the image's record.
    pub async fn pull(
        &self,
        name: &str,
        credentials: &Credentials,
    ) -> Result<ImageRecord, ImageError> {
        let started = Instant::now();
        let reference = ImageReference::parse(name)?;
        let auth = credentials.to_registry_auth()?;
        let endpoints = self.hosts.endpoints(reference.registry())?;
        let _shared = self.gc_lock.read().await;

        let (remote, top_bytes, top_digest) = resolve(&endpoints, &reference, &auth).await?;
        let what = |digest: &Digest| format!("{}@{digest}", reference.name());
        let (manifest_bytes, manifest_digest) =
            match parse_document(&what(&top_digest), &top_bytes)? {
                Document::Manifest(_) => (top_bytes.clone(), top_digest.clone()),
                Document::Index(entries) => {
                    let digest = host_entry(&entries, &reference.to_string())?.digest()?;
                    (remote.manifest_by_digest(&digest).await?, digest)
                }
            };
        let manifest: Manifest = match parse_document(&what(&manifest_digest), &manifest_bytes)? {
            Document::Manifest(manifest) => manifest,
            Document::Index(_) => {
                return Err(ImageError::InvalidDocument {
                    what: what(&manifest_digest),
                    kind: "manifest",
                    reason: "an image index where a platform manifest was expected".into(),
                })
            }
        };

        let config_digest = manifest.config.digest()?;
        let config_bytes = remote
            .small_blob(&config_digest, manifest.config.size)
            .await?;
        let config = ImageConfig::parse(&format!("config {config_digest}"), &config_bytes)?;
        let diff_ids = config.diff_ids()?;
        if diff_ids.len() != manifest.layers.len() {
            return Err(ImageError::LayerCountMismatch {
                reference: reference.to_string(),
                layers: manifest.layers.len(),
                diff_ids: diff_ids.len(),
            });
        }
        let chain = chain_ids(&diff_ids);
        let jobs = manifest
            .layers
            .iter()
            .zip(diff_ids.iter().zip(&chain))
            .map(|(layer, (diff_id, chain_id))| {
                Ok(LayerJob {
                    digest: layer.digest()?,
                    size: layer.size,
                    media_type: layer.media_type.clone(),
                    diff_id: diff_id.clone(),
                    chain_id: chain_id.clone(),
                })
            })
            .collect::<Result<Vec<_>, ImageError>>()?;

        let sink = LayerSink {
            content: &self.content,
            snapshots: &self.snapshots,
            limits: &self.settings.limits,
            stall_timeout: self.settings.stall_timeout,
        };
        futures_util::stream::iter(jobs.iter().map(Ok))
            .try_for_each_concurrent(self.settings.max_concurrent_downloads.max(1), |job| {
                let sink = &sink;
                let remote = &remote;
                async move {
                    let lock = self.layer_lock(&job.chain_id);
                    let _fetching = lock.lock().await;
                    let downloaded = fetch_layer(remote, job, sink).await?;
                    self.pulled_bytes
                        .fetch_add(downloaded, std::sync::atomic::Ordering::Relaxed);
                    Ok::<(), ImageError>(())
                }
            })
            .await?;

        // Documents last: a present manifest means its layers are in place. Each is synced
        // to disk, hence the blocking thread.
        let mut documents = vec![
            (
                "image config",
                config_digest.clone(),
                Bytes::from(config_bytes.clone()),
            ),
            ("manifest", manifest_digest.clone(), manifest_bytes),
        ];
        if top_digest != manifest_digest {
            documents.push(("image index", top_digest.clone(), top_bytes));
        }
        let content = self.content.clone();
        tokio::task::spawn_blocking(move || {
            documents
                .iter()
                .try_for_each(|(what, digest, bytes)| content.write_verified(what, digest, bytes))
        })
        .await??;

        let size = manifest.config.size + manifest.layers.iter().map(|l| l.size).sum::<u64>();
        let record = self
            .record(
                &reference,
                &top_digest,
                &manifest_digest,
                &config_digest,
                &config_bytes,
                size,
                &chain,
            )
            .await?;
        tracing::info!(
            image = %record.id,
            reference = %reference,
            layers = jobs.len(),
            bytes = size,
            seconds = format!("{:.2}", started.elapsed().as_secs_f64()),
            "image pulled"
        );
        Ok(record)
    }

    /// Creates or updates the image record with this pull's tag and repo digest.
    #[allow(clippy::too_many_arguments)]
    async fn record(
        &self,
        reference: &ImageReference,
        top_digest: &Digest,
        manifest_digest: &Digest,
        config_digest: &Digest,
        config_bytes: &[u8],
        size: u64,
        chain: &[Digest],
    ) -> Result<ImageRecord, ImageError> {
        let _records = self.record_lock.lock().await;
        let tags: Vec<String> = reference.tagged().into_iter().collect();
        let repo_digests = [reference.with_digest(top_digest.as_str())];
        self.write_record(&RecordUpdate {
            config: config_digest,
            config_bytes,
            manifest: manifest_digest,
            size,
            chain,
            tags: &tags,
            repo_digests: &repo_digests,
            pin: false,
        })
    }
}
