//! Why an image operation failed. Each variant says what was being done and with what;
//! the CRI server maps them to gRPC codes in one place.

use std::path::PathBuf;

use crate::digest::{Digest, DigestError};
use crate::hosts::HostsError;
use crate::reference::ReferenceError;
use crate::unpack::UnpackError;

/// An image operation's failure.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The image name is not a valid reference.
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    /// The CRI credentials cannot be used.
    #[error(transparent)]
    Credentials(#[from] crate::registry::CredentialsError),
    /// The registry host configuration is unusable.
    #[error(transparent)]
    Hosts(#[from] HostsError),
    /// A registry request failed.
    #[error("{operation} {reference} from {endpoint}: {source}")]
    Registry {
        /// What was asked: `resolve`, `fetch manifest`, `fetch blob sha256:...`.
        operation: String,
        /// The reference as sent to the endpoint.
        reference: String,
        /// The endpoint URL.
        endpoint: String,
        /// The client error.
        source: Box<oci_client::errors::OciDistributionError>,
    },
    /// The registry refused the credentials, or asked for credentials that were not given.
    #[error("{operation} {reference} from {endpoint}: not authorized ({source})")]
    Unauthorized {
        /// What was asked.
        operation: String,
        /// The reference as sent to the endpoint.
        reference: String,
        /// The endpoint URL.
        endpoint: String,
        /// The client error.
        source: Box<oci_client::errors::OciDistributionError>,
    },
    /// No configured endpoint can serve the request.
    #[error("no registry endpoint of {registry} may {capability}")]
    NoEndpoint {
        /// The registry host.
        registry: String,
        /// `pull` or `resolve`.
        capability: &'static str,
    },
    /// A registry answered with a digest that is not sha256.
    #[error(transparent)]
    Digest(#[from] DigestError),
    /// Content did not hash to the digest that names it.
    #[error("{what}: digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        /// What was checked, e.g. `layer sha256:... of docker.io/library/busybox:latest`.
        what: String,
        /// The digest that names the content.
        expected: Digest,
        /// The digest of what was received.
        actual: Digest,
    },
    /// Content was not the size its descriptor says.
    #[error("{what}: size mismatch: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        /// What was checked.
        what: String,
        /// Descriptor size.
        expected: u64,
        /// Bytes received.
        actual: u64,
    },
    /// A manifest, index or config is not valid JSON of its kind.
    #[error("{what}: invalid {kind}: {reason}")]
    InvalidDocument {
        /// Where it came from.
        what: String,
        /// `manifest`, `image index`, `image config`.
        kind: &'static str,
        /// The parse error.
        reason: String,
    },
    /// A descriptor's media type is not one berth can handle.
    #[error("{what}: unsupported media type {media_type:?}")]
    UnsupportedMediaType {
        /// Where it was found.
        what: String,
        /// The media type.
        media_type: String,
    },
    /// An image index has no manifest for this host's platform.
    #[error(
        "{reference}: no manifest for platform {platform} in the image index (has: {available})"
    )]
    NoMatchingPlatform {
        /// The reference.
        reference: String,
        /// This host's platform, e.g. `linux/amd64`.
        platform: String,
        /// Platforms the index offers.
        available: String,
    },
    /// A document is larger than berth accepts.
    #[error("{what}: {size} bytes is more than the {limit} accepted")]
    TooLarge {
        /// What it is.
        what: String,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The layer count of the manifest and the config's diff IDs differ.
    #[error("{reference}: manifest has {layers} layers but the config lists {diff_ids} diff IDs")]
    LayerCountMismatch {
        /// The reference.
        reference: String,
        /// Layers in the manifest.
        layers: usize,
        /// Diff IDs in the config.
        diff_ids: usize,
    },
    /// A layer could not be unpacked (malformed or hostile content).
    #[error("layer {layer}: {source}")]
    Unpack {
        /// The layer's digest.
        layer: Digest,
        /// What was wrong.
        source: UnpackError,
    },
    /// No data arrived for too long.
    #[error("{what}: no data received for {seconds} s (registry.pull_progress_timeout)")]
    Stalled {
        /// What was being downloaded.
        what: String,
        /// The timeout.
        seconds: u64,
    },
    /// A filesystem operation failed.
    #[error("cannot {op} {}: {source}", path.display())]
    Io {
        /// The operation.
        op: &'static str,
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The trash and an image directory are on different filesystems, so nothing can be
    /// moved from one into the other.
    #[error(
        "{} and {} are on different filesystems: the image directories must share the \
         filesystem of the trash",
        trash.display(),
        other.display()
    )]
    TrashOnOtherFilesystem {
        /// The trash directory.
        trash: PathBuf,
        /// The store directory on another filesystem.
        other: PathBuf,
    },
    /// An image archive was refused.
    #[error(transparent)]
    Archive(#[from] crate::archive::ArchiveError),
    /// No image has this name.
    #[error("no image {name:?}")]
    UnknownImage {
        /// The name asked for.
        name: String,
    },
    /// A blob an image record needs is not in the content store.
    #[error("image {image}: blob {digest} is missing from the content store")]
    ContentMissing {
        /// The image ID.
        image: String,
        /// The missing blob.
        digest: Digest,
    },
    /// A container still uses the image.
    #[error("image {image} is used by container {container}; remove the container first")]
    InUse {
        /// The image ID.
        image: String,
        /// A container using it.
        container: String,
    },
    /// The metadata store failed.
    #[error("metadata store: {0}")]
    Store(#[from] berth_store::StoreError),
    /// A worker task died.
    #[error("internal task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl ImageError {
    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> ImageError {
        let path = path.into();
        move |source| ImageError::Io { op, path, source }
    }

    /// Whether the registry answered that it does not have what was asked for: HTTP 404,
    /// or an error envelope saying the manifest, blob, name or object is unknown.
    pub fn is_unknown_to_registry(&self) -> bool {
        use oci_client::errors::{OciDistributionError as E, OciErrorCode as C};
        let ImageError::Registry { source, .. } = self else {
            return false;
        };
        match source.as_ref() {
            E::ImageManifestNotFoundError(_) => true,
            E::ServerError { code, .. } => *code == 404,
            E::RegistryError { envelope, .. } => {
                !envelope.errors.is_empty()
                    && envelope.errors.iter().all(|error| {
                        matches!(
                            error.code,
                            C::ManifestUnknown
                                | C::NameUnknown
                                | C::NotFound
                                | C::BlobUnknown
                                | C::ManifestBlobUnknown
                        )
                    })
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_client::errors::{OciDistributionError, OciEnvelope, OciError, OciErrorCode};

    fn registry(source: OciDistributionError) -> ImageError {
        ImageError::Registry {
            operation: "resolve".into(),
            reference: "r/x:1".into(),
            endpoint: "http://127.0.0.1:1".into(),
            source: Box::new(source),
        }
    }

    fn envelope(code: OciErrorCode) -> OciDistributionError {
        OciDistributionError::RegistryError {
            envelope: OciEnvelope {
                errors: vec![OciError {
                    code,
                    message: String::new(),
                    detail: serde_json::Value::Null,
                }],
            },
            url: "http://127.0.0.1:1/v2/r/x/manifests/1".into(),
        }
    }

    #[test]
    fn what_the_registry_does_not_have_is_told_apart() {
        assert!(registry(envelope(OciErrorCode::ManifestUnknown)).is_unknown_to_registry());
        assert!(registry(envelope(OciErrorCode::NameUnknown)).is_unknown_to_registry());
        assert!(registry(OciDistributionError::ServerError {
            code: 404,
            url: String::new(),
            message: String::new(),
        })
        .is_unknown_to_registry());
        assert!(!registry(envelope(OciErrorCode::Toomanyrequests)).is_unknown_to_registry());
        assert!(!registry(OciDistributionError::ServerError {
            code: 503,
            url: String::new(),
            message: String::new(),
        })
        .is_unknown_to_registry());
    }
}
