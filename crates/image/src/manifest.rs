//! The registry documents berth reads: image indexes (OCI index, Docker manifest list),
//! image manifests (OCI, Docker schema 2) and image configs, and the choice of a manifest
//! for this host's platform.
//!
//! Only the fields berth uses are parsed; unknown fields are ignored, as the OCI image spec
//! requires of readers. Docker schema 2 documents have the same shape as their OCI
//! counterparts and differ in media types only.

use serde::Deserialize;

use crate::digest::Digest;
use crate::error::ImageError;

/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// Docker manifest list.
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker schema 2 manifest.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Media types asked for when resolving a reference, most preferred first.
pub const ACCEPTED_MANIFESTS: [&str; 4] = [OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST];

/// Largest manifest, index or config accepted (they are small JSON documents).
pub const MAX_DOCUMENT_SIZE: u64 = 8 << 20;

/// Refuses a document (`what`) of `size` bytes over [`MAX_DOCUMENT_SIZE`].
pub fn check_document_size(what: impl FnOnce() -> String, size: u64) -> Result<(), ImageError> {
    if size > MAX_DOCUMENT_SIZE {
        return Err(ImageError::TooLarge {
            what: what(),
            size,
            limit: MAX_DOCUMENT_SIZE,
        });
    }
    Ok(())
}

/// A content descriptor.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// Media type of the content.
    #[serde(default)]
    pub media_type: String,
    /// Its digest (checked to be sha256 by [`Descriptor::digest`]).
    #[serde(rename = "digest")]
    pub digest_text: String,
    /// Its size in bytes.
    pub size: u64,
    /// The platform, in index entries.
    #[serde(default)]
    pub platform: Option<Platform>,
}

impl Descriptor {
    /// The validated digest.
    pub fn digest(&self) -> Result<Digest, ImageError> {
        Ok(Digest::parse(&self.digest_text)?)
    }
}

/// An index entry's platform.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Platform {
    /// e.g. `linux`.
    pub os: String,
    /// e.g. `amd64`.
    pub architecture: String,
    /// e.g. `v8`.
    #[serde(default)]
    pub variant: Option<String>,
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        match &self.variant {
            Some(variant) if !variant.is_empty() => write!(f, "/{variant}"),
            _ => Ok(()),
        }
    }
}

/// A manifest or an index, as resolved from a reference.
#[derive(Debug, Clone)]
pub enum Document {
    /// A list of per-platform manifests.
    Index(Vec<Descriptor>),
    /// One image.
    Manifest(Manifest),
}

/// An image manifest.
#[derive(Debug, Clone, Deserialize)]
pub struct Manifest {
    /// The image config.
    pub config: Descriptor,
    /// The layers, base first.
    pub layers: Vec<Descriptor>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Probe {
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
}

/// Parses a manifest or index (`what` names it in errors).
pub fn parse_document(what: &str, bytes: &[u8]) -> Result<Document, ImageError> {
    let invalid = |kind, err: serde_json::Error| ImageError::InvalidDocument {
        what: what.to_owned(),
        kind,
        reason: err.to_string(),
    };
    let probe: Probe = serde_json::from_slice(bytes).map_err(|e| invalid("manifest", e))?;
    match (probe.media_type.as_deref(), probe.manifests) {
        (Some(OCI_INDEX | DOCKER_LIST) | None, Some(manifests)) => Ok(Document::Index(manifests)),
        (Some(OCI_MANIFEST | DOCKER_MANIFEST) | None, None) => Ok(Document::Manifest(
            serde_json::from_slice(bytes).map_err(|e| invalid("manifest", e))?,
        )),
        (Some(other), _) => Err(ImageError::UnsupportedMediaType {
            what: what.to_owned(),
            media_type: other.to_owned(),
        }),
    }
}

/// The parts of an image config berth uses.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct ImageConfig {
    /// `architecture`
    #[serde(default)]
    pub architecture: String,
    /// `os`
    #[serde(default)]
    pub os: String,
    /// `config` (the runtime defaults), absent in some images.
    #[serde(default)]
    pub config: Option<RunConfig>,
    /// `rootfs`
    pub rootfs: RootFs,
}

/// `config` of an image config.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct RunConfig {
    /// `User`: `uid`, `name`, `uid:gid` or `name:group`.
    #[serde(default)]
    pub user: Option<String>,
}

/// `rootfs` of an image config.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct RootFs {
    /// Uncompressed layer digests, base first.
    #[serde(default)]
    pub diff_ids: Vec<String>,
}

impl ImageConfig {
    /// Parses a config blob.
    pub fn parse(what: &str, bytes: &[u8]) -> Result<ImageConfig, ImageError> {
        serde_json::from_slice(bytes).map_err(|err| ImageError::InvalidDocument {
            what: what.to_owned(),
            kind: "image config",
            reason: err.to_string(),
        })
    }

    /// The validated diff IDs.
    pub fn diff_ids(&self) -> Result<Vec<Digest>, ImageError> {
        self.rootfs
            .diff_ids
            .iter()
            .map(|id| Ok(Digest::parse(id)?))
            .collect()
    }
}

/// The platform of this host, in OCI terms.
pub fn host_platform() -> Platform {
    let (architecture, variant) = match std::env::consts::ARCH {
        "x86_64" => ("amd64", None),
        "aarch64" => ("arm64", Some("v8")),
        "arm" => ("arm", Some("v7")),
        "x86" => ("386", None),
        "powerpc64" => ("ppc64le", None),
        "s390x" => ("s390x", None),
        "riscv64" => ("riscv64", None),
        other => (other, None),
    };
    Platform {
        os: std::env::consts::OS.to_owned(),
        architecture: architecture.to_owned(),
        variant: variant.map(str::to_owned),
    }
}

/// Picks the entry of an index for `platform`: same OS and architecture, and the same
/// variant when both name one. An exact variant match wins over an entry without variant;
/// `arm64` entries without variant match a `v8` host.
pub fn select_platform<'a>(
    entries: &'a [Descriptor],
    platform: &Platform,
) -> Option<&'a Descriptor> {
    let candidates = entries.iter().filter(|entry| {
        entry
            .platform
            .as_ref()
            .is_some_and(|p| p.os == platform.os && p.architecture == platform.architecture)
    });
    let mut fallback = None;
    for entry in candidates {
        let variant = entry.platform.as_ref().and_then(|p| p.variant.as_deref());
        match (
            variant.filter(|v| !v.is_empty()),
            platform.variant.as_deref(),
        ) {
            (Some(v), Some(host)) if v == host => return Some(entry),
            (Some(_), Some(_)) => {}
            _ => {
                fallback.get_or_insert(entry);
            }
        }
    }
    fallback
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(arch: &str, variant: Option<&str>, n: u8) -> Descriptor {
        Descriptor {
            media_type: OCI_MANIFEST.into(),
            digest_text: format!("sha256:{}", format!("{n:02x}").repeat(32)),
            size: 1,
            platform: Some(Platform {
                os: "linux".into(),
                architecture: arch.into(),
                variant: variant.map(Into::into),
            }),
        }
    }

    #[test]
    fn selects_the_host_platform() {
        let entries = [
            entry("arm64", Some("v8"), 1),
            entry("amd64", None, 2),
            entry("arm", Some("v7"), 3),
        ];
        let amd64 = Platform {
            os: "linux".into(),
            architecture: "amd64".into(),
            variant: None,
        };
        assert_eq!(select_platform(&entries, &amd64).unwrap().size, 1);
        assert!(select_platform(&entries, &amd64)
            .unwrap()
            .digest_text
            .ends_with("02"));
        let arm64 = Platform {
            os: "linux".into(),
            architecture: "arm64".into(),
            variant: Some("v8".into()),
        };
        assert!(select_platform(&entries, &arm64)
            .unwrap()
            .digest_text
            .ends_with("01"));
        let armv6 = Platform {
            os: "linux".into(),
            architecture: "arm".into(),
            variant: Some("v6".into()),
        };
        assert!(select_platform(&entries, &armv6).is_none());
        let s390 = Platform {
            os: "linux".into(),
            architecture: "s390x".into(),
            variant: None,
        };
        assert!(select_platform(&entries, &s390).is_none());
    }

    #[test]
    fn parses_indexes_and_manifests() {
        let index = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json",
            "manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":7,
            "digest":"sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "platform":{"os":"linux","architecture":"amd64"}}]}"#;
        assert!(matches!(parse_document("i", index).unwrap(), Document::Index(m) if m.len() == 1));
        let manifest = br#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",
            "config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":3,
            "digest":"sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"},
            "layers":[]}"#;
        assert!(matches!(
            parse_document("m", manifest).unwrap(),
            Document::Manifest(_)
        ));
        let schema1 = br#"{"schemaVersion":1,"mediaType":"application/vnd.docker.distribution.manifest.v1+prettyjws"}"#;
        assert!(matches!(
            parse_document("s", schema1).unwrap_err(),
            ImageError::UnsupportedMediaType { .. }
        ));
        assert!(matches!(
            parse_document("x", b"not json").unwrap_err(),
            ImageError::InvalidDocument { .. }
        ));
    }

    #[test]
    fn config_user_and_diff_ids() {
        let config = ImageConfig::parse(
            "c",
            br#"{"architecture":"amd64","os":"linux","config":{"User":"1003:1004"},
              "rootfs":{"type":"layers","diff_ids":["sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"]}}"#,
        )
        .unwrap();
        assert_eq!(
            config.config.as_ref().unwrap().user.as_deref(),
            Some("1003:1004")
        );
        assert_eq!(config.diff_ids().unwrap().len(), 1);
    }
}
