//! `ImageManager::export`: images as an OCI image layout archive that `docker load` reads
//! too. Layout:
//!
//! ```text
//! oci-layout                 {"imageLayoutVersion":"1.0.0"}
//! blobs/sha256/<hex>         every config, manifest and layer blob, once
//! index.json                 one manifest descriptor per name asked for, annotated with
//!                            io.containerd.image.name (the whole name) and
//!                            org.opencontainers.image.ref.name (its tag)
//! manifest.json              docker's form: per image its Config, RepoTags and Layers,
//!                            as paths into blobs/sha256
//! ```
//!
//! The blobs are the ones the image was pulled or imported with, so importing the archive
//! gives the same image ID and manifest digest. An image asked for by ID gets one entry per
//! tag (one without a name if it has none). The GC lock is held shared only while the
//! names are resolved and the blob files opened: a collection that runs during the
//! (possibly long) write cannot take an open file away.

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::{Read, Write};

use serde::Serialize;

use super::plan::{ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME};
use crate::digest::Digest;
use crate::error::ImageError;
use crate::manager::ImageManager;
use crate::manifest::{parse_document, Document, OCI_INDEX, OCI_MANIFEST};
use crate::reference::{is_image_id, ImageReference};

/// One entry of `index.json`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct IndexEntry {
    media_type: String,
    digest: String,
    size: u64,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    annotations: BTreeMap<&'static str, String>,
}

/// `index.json`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Index {
    schema_version: u32,
    media_type: &'static str,
    manifests: Vec<IndexEntry>,
}

/// One entry of docker's `manifest.json`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct DockerEntry {
    config: String,
    repo_tags: Vec<String>,
    layers: Vec<String>,
}

/// A blob to write, open before the GC lock was released.
#[derive(Debug)]
struct OpenBlob {
    digest: Digest,
    size: u64,
    file: File,
}

/// An image to write.
#[derive(Debug)]
struct ExportedImage {
    config: Digest,
    layers: Vec<Digest>,
    /// Tags `manifest.json` lists.
    tags: Vec<String>,
}

/// An export ready to be written: names resolved, blobs open.
#[derive(Debug)]
pub struct Export {
    blobs: Vec<OpenBlob>,
    index: Index,
    images: Vec<ExportedImage>,
}

impl Export {
    /// Writes the archive to `out`. Blocking (it reads every blob): call it off the async
    /// workers.
    pub fn write_to<W: Write>(self, out: W) -> Result<(), ImageError> {
        write_archive(out, self.blobs, &self.index, &self.images)
    }
}

impl ImageManager {
    /// Prepares the export of the images `names` name (tags, digests, IDs) as an OCI image
    /// layout archive with a docker `manifest.json`: an unknown name is
    /// [`ImageError::UnknownImage`] here, before anything is written.
    pub async fn export(&self, names: &[String]) -> Result<Export, ImageError> {
        let shared = self.gc_lock.read().await;
        let mut entries = Vec::new();
        let mut images: Vec<ExportedImage> = Vec::new();
        let mut blobs: Vec<OpenBlob> = Vec::new();
        let mut opened = HashSet::new();
        for name in names {
            let id = self
                .resolve(name)?
                .ok_or_else(|| ImageError::UnknownImage { name: name.clone() })?;
            let record = self.store.images().get(&id)?;
            let manifest_digest = Digest::parse(&record.manifest_digest)?;
            let what = format!("image {id}: manifest {manifest_digest}");
            let manifest_file = self.open_blob(&id, &manifest_digest)?;
            let manifest_bytes = self.content.read(&manifest_digest)?;
            let manifest = match parse_document(&what, &manifest_bytes)? {
                Document::Manifest(manifest) => manifest,
                Document::Index(_) => {
                    return Err(ImageError::InvalidDocument {
                        what,
                        kind: "manifest",
                        reason: "an image index where a platform manifest was expected".into(),
                    })
                }
            };
            let media_type = serde_json::from_slice::<serde_json::Value>(&manifest_bytes)
                .ok()
                .and_then(|v| v.get("mediaType")?.as_str().map(str::to_owned))
                .unwrap_or_else(|| OCI_MANIFEST.to_owned());
            let config = manifest.config.digest()?;
            let layers = manifest
                .layers
                .iter()
                .map(|layer| layer.digest())
                .collect::<Result<Vec<_>, _>>()?;
            let mut wanted = vec![(manifest_digest.clone(), manifest_bytes.len() as u64)];
            wanted.push((config.clone(), manifest.config.size));
            wanted.extend(
                layers
                    .iter()
                    .cloned()
                    .zip(manifest.layers.iter().map(|l| l.size)),
            );
            if opened.insert(manifest_digest.clone()) {
                blobs.push(OpenBlob {
                    digest: manifest_digest.clone(),
                    size: manifest_bytes.len() as u64,
                    file: manifest_file,
                });
            }
            for (digest, size) in wanted.into_iter().skip(1) {
                if !opened.insert(digest.clone()) {
                    continue;
                }
                let file = self.open_blob(&id, &digest)?;
                let actual = file
                    .metadata()
                    .map_err(ImageError::io("inspect", self.content.path(&digest)))?
                    .len();
                if actual != size {
                    return Err(ImageError::SizeMismatch {
                        what: format!("image {id}: blob {digest}"),
                        expected: size,
                        actual,
                    });
                }
                blobs.push(OpenBlob { digest, size, file });
            }

            let names = entry_names(name, &record.repo_tags);
            let image = match images.iter_mut().position(|i| i.config == config) {
                Some(n) => &mut images[n],
                None => {
                    images.push(ExportedImage {
                        config: config.clone(),
                        layers: layers.clone(),
                        tags: Vec::new(),
                    });
                    images.last_mut().expect("just pushed")
                }
            };
            let named: Vec<Option<ImageReference>> = if names.is_empty() {
                vec![None]
            } else {
                names.into_iter().map(Some).collect()
            };
            for reference in named {
                let mut annotations = BTreeMap::new();
                if let Some(reference) = reference {
                    let full = match (reference.tagged(), reference.digest()) {
                        (Some(tagged), _) => tagged,
                        (None, Some(digest)) => reference.with_digest(digest),
                        (None, None) => reference.name(),
                    };
                    if let Some(tag) = reference.tag() {
                        annotations.insert(ANNOTATION_REF_NAME, tag.to_owned());
                        if reference.digest().is_none() && !image.tags.contains(&full) {
                            image.tags.push(full.clone());
                        }
                    }
                    annotations.insert(ANNOTATION_IMAGE_NAME, full);
                }
                entries.push(IndexEntry {
                    media_type: media_type.clone(),
                    digest: manifest_digest.to_string(),
                    size: manifest_bytes.len() as u64,
                    annotations,
                });
            }
        }
        drop(shared);
        let index = Index {
            schema_version: 2,
            media_type: OCI_INDEX,
            manifests: entries,
        };
        Ok(Export {
            blobs,
            index,
            images,
        })
    }

    /// Opens the blob `digest` of image `id`.
    fn open_blob(&self, id: &str, digest: &Digest) -> Result<File, ImageError> {
        let path = self.content.path(digest);
        File::open(&path).map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => ImageError::ContentMissing {
                image: id.to_owned(),
                digest: digest.clone(),
            },
            _ => ImageError::Io {
                op: "open",
                path,
                source,
            },
        })
    }
}

/// The names an entry of `index.json` gets for the name `asked` of an image tagged `tags`:
/// the name itself when it is a reference of the image; every tag of the image when it was
/// asked for by ID.
fn entry_names(asked: &str, tags: &[String]) -> Vec<ImageReference> {
    if is_image_id(asked).is_none() {
        if let Ok(reference) = ImageReference::parse(asked) {
            let names_it = match reference.digest() {
                // A digest name of this image resolved to it: a repo digest.
                Some(_) => true,
                None => reference
                    .tagged()
                    .is_some_and(|tagged| tags.contains(&tagged)),
            };
            if names_it {
                return vec![reference];
            }
        }
    }
    tags.iter()
        .filter_map(|tag| ImageReference::parse(tag).ok())
        .collect()
}

/// Writes the archive.
fn write_archive<W: Write>(
    out: W,
    blobs: Vec<OpenBlob>,
    index: &Index,
    images: &[ExportedImage],
) -> Result<(), ImageError> {
    let mut builder = tar::Builder::new(out);
    let layout = br#"{"imageLayoutVersion":"1.0.0"}"#;
    append(&mut builder, "oci-layout", layout.len() as u64, &layout[..]).map_err(write_error)?;
    for dir in ["blobs/", "blobs/sha256/"] {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(tar::EntryType::Directory);
        header.set_mode(0o755);
        header.set_size(0);
        header.set_mtime(0);
        header.set_path(dir).map_err(write_error)?;
        header.set_cksum();
        builder
            .append(&header, std::io::empty())
            .map_err(write_error)?;
    }
    for blob in blobs {
        let path = format!("blobs/sha256/{}", blob.digest.hex());
        append(&mut builder, &path, blob.size, blob.file.take(blob.size)).map_err(write_error)?;
    }
    let index = serde_json::to_vec(index).unwrap_or_default();
    append(&mut builder, "index.json", index.len() as u64, &index[..]).map_err(write_error)?;
    let docker: Vec<DockerEntry> = images
        .iter()
        .map(|image| DockerEntry {
            config: format!("blobs/sha256/{}", image.config.hex()),
            repo_tags: image.tags.clone(),
            layers: image
                .layers
                .iter()
                .map(|layer| format!("blobs/sha256/{}", layer.hex()))
                .collect(),
        })
        .collect();
    let docker = serde_json::to_vec(&docker).unwrap_or_default();
    append(
        &mut builder,
        "manifest.json",
        docker.len() as u64,
        &docker[..],
    )
    .map_err(write_error)?;
    let mut out = builder.into_inner().map_err(write_error)?;
    out.flush().map_err(write_error)
}

fn write_error(source: std::io::Error) -> ImageError {
    ImageError::Io {
        op: "write",
        path: "the export archive".into(),
        source,
    }
}

/// Appends a regular file of `size` bytes read from `data`.
fn append<W: Write>(
    builder: &mut tar::Builder<W>,
    path: &str,
    size: u64,
    data: impl Read,
) -> std::io::Result<()> {
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_mode(0o644);
    header.set_size(size);
    header.set_mtime(0);
    header.set_path(path)?;
    header.set_cksum();
    builder.append(&header, data)
}
