//! What a staged archive holds, as images: the OCI image layout (`index.json` with
//! descriptors into `blobs/sha256/`) and `docker save`'s `manifest.json` (`Config`,
//! `RepoTags`, `Layers` as archive paths: `<id>/layer.tar` and `<id>.json` in the classic
//! form, `blobs/sha256/<hex>` since docker 25). An archive with both (docker 25 writes both,
//! and so does berth's export) is read through `index.json`, with the `RepoTags` of
//! `manifest.json` added to the image of the same config.
//!
//! Every document is bounded by [`MAX_DOCUMENT_SIZE`](crate::manifest::MAX_DOCUMENT_SIZE),
//! every descriptor's size is checked against the blob, and blob digests were checked when
//! they were staged. A `docker save` image has no manifest: berth writes a Docker schema 2
//! manifest for it (deterministic: the same archive gives the same manifest digest), whose
//! layer media types say the compression found in each layer file's first bytes.
//!
//! Image names: an `index.json` entry is named by its `io.containerd.image.name` annotation,
//! and by `org.opencontainers.image.ref.name` when that is a whole reference (it holds only a
//! tag in the archives of containerd and docker). A name with a tag tags the image and, for
//! layout images, gives the repo digest `<name>@<entry digest>`, as a registry serving the
//! entry would; a name with a digest must name the entry's own digest. Entries for another
//! platform are skipped; a nested image index gives the manifest of this host's platform.

use serde::{Deserialize, Serialize};

use super::error::ArchiveError;
use super::names::normalise;
use super::stage::StagedArchive;
use crate::digest::{chain_ids, Digest};
use crate::error::ImageError;
use crate::manifest::{
    host_entry, host_platform, parse_document, select_platform, Descriptor, Document, ImageConfig,
    Manifest, DOCKER_MANIFEST,
};
use crate::reference::ImageReference;
use crate::unpack::Compression;

/// Annotation of containerd (and docker 25+) naming the image of an index entry.
pub const ANNOTATION_IMAGE_NAME: &str = "io.containerd.image.name";
/// The OCI annotation naming an index entry (a tag, or a whole reference).
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";

/// Media type of a Docker image config.
const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

/// One layer to unpack.
#[derive(Debug, Clone)]
pub(crate) struct LayerPlan {
    /// The layer blob.
    pub blob: Digest,
    /// Its size.
    pub size: u64,
    /// Its compression.
    pub compression: Compression,
    /// The digest of its tar (from the config).
    pub diff_id: Digest,
    /// The chain ID naming its snapshot.
    pub chain_id: Digest,
}

/// One image of the archive.
#[derive(Debug, Clone)]
pub(crate) struct ImagePlan {
    /// The config blob: the image ID.
    pub config: Digest,
    /// The config.
    pub config_bytes: Vec<u8>,
    /// The manifest blob.
    pub manifest: Digest,
    /// The manifest.
    pub manifest_bytes: Vec<u8>,
    /// Whether the manifest is berth's (a `docker save` image), not a blob of the archive.
    pub manifest_written: bool,
    /// The image index of the archive that led to the manifest, kept with it.
    pub index: Option<Digest>,
    /// The layers, base first.
    pub layers: Vec<LayerPlan>,
    /// Normalised tags.
    pub tags: Vec<String>,
    /// Normalised repo digests.
    pub repo_digests: Vec<String>,
}

impl ImagePlan {
    /// The image's size as the CRI reports it: config and layer blobs.
    pub fn size(&self) -> u64 {
        self.config_bytes.len() as u64 + self.layers.iter().map(|l| l.size).sum::<u64>()
    }

    /// Records `name` (from `referenced_by`) for this image; `digest` is the entry's, and
    /// `repo_digest` says whether a tag also gives the repo digest `<name>@<digest>`.
    fn add_name(
        &mut self,
        name: &str,
        referenced_by: &str,
        digest: &Digest,
        repo_digest: bool,
    ) -> Result<(), ArchiveError> {
        let reference =
            ImageReference::parse(name).map_err(|source| ArchiveError::BadReference {
                name: super::names::quoted(name.as_bytes()),
                referenced_by: referenced_by.to_owned(),
                source,
            })?;
        if let Some(named) = reference.digest() {
            if named != digest.as_str() {
                return Err(ArchiveError::ReferenceDigestMismatch {
                    name: name.to_owned(),
                    referenced_by: referenced_by.to_owned(),
                    named: named.to_owned(),
                    actual: digest.clone(),
                });
            }
            push_new(
                &mut self.repo_digests,
                reference.with_digest(digest.as_str()),
            );
        }
        if let Some(tag) = reference.tagged() {
            push_new(&mut self.tags, tag);
            if repo_digest {
                push_new(
                    &mut self.repo_digests,
                    reference.with_digest(digest.as_str()),
                );
            }
        }
        Ok(())
    }
}

fn push_new(list: &mut Vec<String>, value: String) {
    if !list.contains(&value) {
        list.push(value);
    }
}

/// The images of `archive`, in archive order, one per config.
pub(crate) fn plan(archive: &StagedArchive) -> Result<Vec<ImagePlan>, ImageError> {
    let index = archive.file("index.json")?.cloned();
    let docker = archive.file("manifest.json")?.cloned();
    if index.is_none() && docker.is_none() {
        return Err(ArchiveError::NotAnImageArchive.into());
    }
    let mut plans: Vec<ImagePlan> = Vec::new();
    if let Some(index) = &index {
        for image in plan_layout(archive, index)? {
            merge(&mut plans, image);
        }
    }
    if let Some(docker) = &docker {
        plan_docker(archive, docker, &mut plans)?;
    }
    if plans.is_empty() {
        return Err(ArchiveError::NoImages.into());
    }
    Ok(plans)
}

/// Adds `image` to `plans`, or its names to the plan of the same config.
fn merge(plans: &mut Vec<ImagePlan>, image: ImagePlan) {
    match plans.iter_mut().find(|p| p.config == image.config) {
        Some(existing) => {
            for tag in image.tags {
                push_new(&mut existing.tags, tag);
            }
            for digest in image.repo_digests {
                push_new(&mut existing.repo_digests, digest);
            }
        }
        None => plans.push(image),
    }
}

/// The images of an OCI image layout's `index.json`.
fn plan_layout(archive: &StagedArchive, index: &Digest) -> Result<Vec<ImagePlan>, ImageError> {
    let what = "index.json of the archive";
    let bytes = archive
        .read_document(what, index)?
        .ok_or_else(|| missing(index, what))?;
    let entries = match parse_document(what, &bytes)? {
        Document::Index(entries) => entries,
        Document::Manifest(_) => {
            return Err(ImageError::InvalidDocument {
                what: what.to_owned(),
                kind: "image index",
                reason: "it is an image manifest, not an index".into(),
            })
        }
    };
    let platform = host_platform();
    let mut plans = Vec::new();
    let mut other_platforms = Vec::new();
    for (n, entry) in entries.iter().enumerate() {
        let referenced_by = format!("index.json entry {n}");
        if entry.platform.is_some()
            && select_platform(std::slice::from_ref(entry), &platform).is_none()
        {
            tracing::info!(
                entry = n,
                "skipping an index.json entry for another platform"
            );
            other_platforms.push(entry.clone());
            continue;
        }
        let digest = entry.digest()?;
        let bytes = read_described(archive, entry, &referenced_by)?;
        let (manifest_digest, manifest_bytes, nested) =
            match parse_document(&referenced_by, &bytes)? {
                Document::Manifest(_) => (digest.clone(), bytes, None),
                Document::Index(platforms) => {
                    let chosen = host_entry(&platforms, &referenced_by)?;
                    let inner = format!("{referenced_by} ({platform} manifest)");
                    let bytes = read_described(archive, chosen, &inner)?;
                    (chosen.digest()?, bytes, Some(digest.clone()))
                }
            };
        let what = format!("{referenced_by}: manifest {manifest_digest}");
        let manifest = match parse_document(&what, &manifest_bytes)? {
            Document::Manifest(manifest) => manifest,
            Document::Index(_) => {
                return Err(ArchiveError::NestedTooDeep { referenced_by }.into());
            }
        };
        let mut image = plan_manifest(archive, &manifest, &what)?;
        image.manifest = manifest_digest;
        image.manifest_bytes = manifest_bytes;
        image.index = nested;
        for key in [ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME] {
            let Some(name) = entry.annotations.get(key) else {
                continue;
            };
            // containerd and docker put the tag alone here; only a whole reference names.
            if key == ANNOTATION_REF_NAME && !name.contains([':', '/', '@']) {
                continue;
            }
            image.add_name(name, &format!("{referenced_by} ({key})"), &digest, true)?;
        }
        plans.push(image);
    }
    if plans.is_empty() && !other_platforms.is_empty() {
        // Only images for other platforms: say so, naming them.
        host_entry(&other_platforms, what)?;
    }
    Ok(plans)
}

/// The image a manifest describes (manifest fields left for the caller).
fn plan_manifest(
    archive: &StagedArchive,
    manifest: &Manifest,
    what: &str,
) -> Result<ImagePlan, ImageError> {
    let config = manifest.config.digest()?;
    let config_bytes = read_described(archive, &manifest.config, &format!("{what} (config)"))?;
    let layers = manifest
        .layers
        .iter()
        .map(|layer| {
            let digest = layer.digest()?;
            let staged = archive
                .blob(&digest)
                .ok_or_else(|| missing(&digest, &format!("{what} (layers)")))?;
            check_size(&format!("layer {digest}"), layer.size, staged.len())?;
            let compression =
                Compression::from_media_type(&layer.media_type).map_err(|source| {
                    ImageError::Unpack {
                        layer: digest.clone(),
                        source,
                    }
                })?;
            Ok((digest, layer.size, compression))
        })
        .collect::<Result<Vec<_>, ImageError>>()?;
    image_plan(config, config_bytes, layers, what)
}

/// An image of config `config` with `layers` (blob, size, compression): the config is parsed
/// and its diff IDs paired with the layers.
fn image_plan(
    config: Digest,
    config_bytes: Vec<u8>,
    layers: Vec<(Digest, u64, Compression)>,
    what: &str,
) -> Result<ImagePlan, ImageError> {
    let parsed = ImageConfig::parse(&format!("config {config}"), &config_bytes)?;
    let diff_ids = parsed.diff_ids()?;
    if diff_ids.len() != layers.len() {
        return Err(ImageError::LayerCountMismatch {
            reference: what.to_owned(),
            layers: layers.len(),
            diff_ids: diff_ids.len(),
        });
    }
    let chain = chain_ids(&diff_ids);
    let layers = layers
        .into_iter()
        .zip(diff_ids.into_iter().zip(chain))
        .map(
            |((blob, size, compression), (diff_id, chain_id))| LayerPlan {
                blob,
                size,
                compression,
                diff_id,
                chain_id,
            },
        )
        .collect();
    Ok(ImagePlan {
        config,
        config_bytes,
        manifest: Digest::of(b""),
        manifest_bytes: Vec::new(),
        manifest_written: false,
        index: None,
        layers,
        tags: Vec::new(),
        repo_digests: Vec::new(),
    })
}

/// An entry of `docker save`'s `manifest.json`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    #[serde(default)]
    layers: Vec<String>,
}

/// Adds the images of `manifest.json` to `plans` (only the tags of those already there).
fn plan_docker(
    archive: &StagedArchive,
    docker: &Digest,
    plans: &mut Vec<ImagePlan>,
) -> Result<(), ImageError> {
    let what = "manifest.json of the archive";
    let bytes = archive
        .read_document(what, docker)?
        .ok_or_else(|| missing(docker, what))?;
    let entries: Vec<DockerEntry> =
        serde_json::from_slice(&bytes).map_err(|err| ImageError::InvalidDocument {
            what: what.to_owned(),
            kind: "docker save manifest",
            reason: err.to_string(),
        })?;
    for (n, entry) in entries.iter().enumerate() {
        let referenced_by = format!("manifest.json entry {n}");
        let config = file_digest(archive, &entry.config, &format!("{referenced_by} (Config)"))?;
        let tags = entry.repo_tags.as_deref().unwrap_or_default();
        if let Some(existing) = plans.iter_mut().find(|p| p.config == config) {
            let digest = existing.manifest.clone();
            for tag in tags {
                existing.add_name(tag, &format!("{referenced_by} (RepoTags)"), &digest, false)?;
            }
            continue;
        }
        let config_bytes = archive
            .read_document(&format!("{referenced_by} (Config)"), &config)?
            .ok_or_else(|| missing(&config, &referenced_by))?;
        let layers = entry
            .layers
            .iter()
            .map(|name| {
                let digest = file_digest(archive, name, &format!("{referenced_by} (Layers)"))?;
                let staged = archive
                    .blob(&digest)
                    .ok_or_else(|| missing(&digest, &referenced_by))?;
                Ok((digest, staged.len(), sniff(&staged.head)))
            })
            .collect::<Result<Vec<_>, ImageError>>()?;
        let mut image = image_plan(config.clone(), config_bytes, layers, &referenced_by)?;
        image.manifest_bytes = docker_manifest(&image);
        image.manifest = Digest::of(&image.manifest_bytes);
        image.manifest_written = true;
        let digest = image.manifest.clone();
        for tag in tags {
            image.add_name(tag, &format!("{referenced_by} (RepoTags)"), &digest, false)?;
        }
        plans.push(image);
    }
    Ok(())
}

/// The digest of the file an archive path names.
fn file_digest(
    archive: &StagedArchive,
    name: &str,
    referenced_by: &str,
) -> Result<Digest, ImageError> {
    let normalised = normalise(name.as_bytes())?;
    archive.file(&normalised)?.cloned().ok_or_else(|| {
        ArchiveError::MissingEntry {
            name: normalised,
            referenced_by: referenced_by.to_owned(),
        }
        .into()
    })
}

/// The content of the document `descriptor` describes, its size checked.
fn read_described(
    archive: &StagedArchive,
    descriptor: &Descriptor,
    referenced_by: &str,
) -> Result<Vec<u8>, ImageError> {
    let digest = descriptor.digest()?;
    let what = format!("{referenced_by}: {digest}");
    let bytes = archive
        .read_document(&what, &digest)?
        .ok_or_else(|| missing(&digest, referenced_by))?;
    check_size(&what, descriptor.size, bytes.len() as u64)?;
    Ok(bytes)
}

fn check_size(what: &str, expected: u64, actual: u64) -> Result<(), ImageError> {
    if expected != actual {
        return Err(ImageError::SizeMismatch {
            what: what.to_owned(),
            expected,
            actual,
        });
    }
    Ok(())
}

fn missing(digest: &Digest, referenced_by: &str) -> ImageError {
    ArchiveError::MissingBlob {
        digest: digest.clone(),
        referenced_by: referenced_by.to_owned(),
    }
    .into()
}

/// The compression of a layer file, from its first bytes.
pub(crate) fn sniff(head: &[u8]) -> Compression {
    if head.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else {
        Compression::None
    }
}

/// A descriptor as berth writes it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WrittenDescriptor<'a> {
    media_type: &'a str,
    size: u64,
    digest: &'a str,
}

/// A Docker schema 2 manifest as berth writes it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WrittenManifest<'a> {
    schema_version: u32,
    media_type: &'a str,
    config: WrittenDescriptor<'a>,
    layers: Vec<WrittenDescriptor<'a>>,
}

/// The Docker schema 2 manifest of a `docker save` image.
fn docker_manifest(image: &ImagePlan) -> Vec<u8> {
    let manifest = WrittenManifest {
        schema_version: 2,
        media_type: DOCKER_MANIFEST,
        config: WrittenDescriptor {
            media_type: DOCKER_CONFIG,
            size: image.config_bytes.len() as u64,
            digest: image.config.as_str(),
        },
        layers: image
            .layers
            .iter()
            .map(|layer| WrittenDescriptor {
                media_type: match layer.compression {
                    Compression::None => "application/vnd.docker.image.rootfs.diff.tar",
                    Compression::Gzip => "application/vnd.docker.image.rootfs.diff.tar.gzip",
                    Compression::Zstd => "application/vnd.docker.image.rootfs.diff.tar.zstd",
                },
                size: layer.size,
                digest: layer.blob.as_str(),
            })
            .collect(),
    };
    // Strings and integers only: serialisation cannot fail.
    serde_json::to_vec(&manifest).unwrap_or_default()
}
