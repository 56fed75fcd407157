//! Image references: parsing and normalisation.
//!
//! The accepted grammar is the one container registries and kubelet use:
//!
//! ```text
//! reference  := name [ ":" tag ] [ "@" digest ]
//! name       := [ domain "/" ] path
//! domain     := host [ ":" port ]
//! host       := label ( "." label )*  |  "[" ipv6 "]"
//! label      := [a-zA-Z0-9] | [a-zA-Z0-9] [a-zA-Z0-9-]* [a-zA-Z0-9]
//! port       := [0-9]+
//! path       := component ( "/" component )*
//! component  := [a-z0-9]+ ( separator [a-z0-9]+ )*
//! separator  := "." | "_" | "__" | "-"+
//! tag        := [\w] [\w.-]{0,127}
//! digest     := "sha256:" [a-f0-9]{64}
//! ```
//!
//! The first path component is a domain only when it contains `.` or `:`, is `localhost`,
//! or contains an uppercase letter; otherwise the reference lives on Docker Hub. Normalisation:
//! no domain → `docker.io`, `index.docker.io` → `docker.io`, a single-component Docker Hub
//! path gets the `library/` prefix, and a reference with neither tag nor digest gets the tag
//! `latest`. When both a tag and a digest are given both are kept; pulls use the digest.
//!
//! Image IDs (`sha256:<64 hex>` or a bare 64-hex string) are not references: [`ImageReference::parse`]
//! rejects them with [`ReferenceError::ImageId`], and [`is_image_id`] recognises them.

use std::fmt;
use std::str::FromStr;

/// Docker Hub's canonical domain.
pub const DOCKER_HUB_DOMAIN: &str = "docker.io";
/// Docker Hub's legacy domain, normalised to [`DOCKER_HUB_DOMAIN`].
const DOCKER_HUB_LEGACY_DOMAIN: &str = "index.docker.io";
/// Repository prefix of Docker Hub's official images.
const OFFICIAL_REPO_PREFIX: &str = "library/";
/// Tag given to references that carry neither a tag nor a digest.
pub const DEFAULT_TAG: &str = "latest";
/// Longest accepted reference string, in bytes.
pub const MAX_REFERENCE_LEN: usize = 4096;
/// Longest accepted normalised name (`registry/repository`), in bytes.
pub const MAX_NAME_LEN: usize = 255;
/// Longest accepted tag, in bytes.
const MAX_TAG_LEN: usize = 128;
/// The only digest algorithm accepted, and the length of its hex encoding.
const SHA256: &str = "sha256";
const SHA256_HEX_LEN: usize = 64;

/// Why a string is not a valid image reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    /// The string is empty.
    #[error("image reference is empty")]
    Empty,
    /// The string is longer than [`MAX_REFERENCE_LEN`].
    #[error("image reference is {len} bytes long, the maximum is {max}")]
    TooLong { len: usize, max: usize },
    /// The normalised name (`registry/repository`) is longer than [`MAX_NAME_LEN`].
    #[error("image name is {len} bytes long, the maximum is {max}")]
    NameTooLong { len: usize, max: usize },
    /// The string is an image ID, not a reference; callers that also accept IDs check this.
    #[error("{id:?} is an image ID, not an image reference")]
    ImageId { id: String },
    /// A character that can never appear in a reference (whitespace, control, non-ASCII).
    #[error("image reference {reference:?} contains invalid character {ch:?} at byte {position}")]
    InvalidCharacter {
        reference: String,
        ch: char,
        position: usize,
    },
    /// The registry domain does not follow the grammar.
    #[error("invalid registry domain {domain:?}: {reason}")]
    InvalidDomain {
        domain: String,
        reason: &'static str,
    },
    /// The repository path contains an uppercase letter.
    #[error("repository name {repository:?} must be lowercase")]
    UppercaseRepository { repository: String },
    /// The repository path does not follow the grammar.
    #[error("invalid repository name {repository:?}: {reason}")]
    InvalidRepository {
        repository: String,
        reason: &'static str,
    },
    /// The tag does not follow the grammar.
    #[error("invalid tag {tag:?}: a tag is 1 to 128 characters of [A-Za-z0-9_.-], not starting with '.' or '-'")]
    InvalidTag { tag: String },
    /// The digest is not `algorithm:hex`.
    #[error("invalid digest {digest:?}: expected sha256:<64 lowercase hex characters>")]
    InvalidDigest { digest: String },
    /// The digest algorithm is well formed but not supported.
    #[error("unsupported digest algorithm {algorithm:?} in {digest:?}: only sha256 is supported")]
    UnsupportedDigestAlgorithm { algorithm: String, digest: String },
    /// A sha256 digest whose hex part is not exactly 64 lowercase hex characters.
    #[error("invalid sha256 digest {digest:?}: expected exactly 64 lowercase hex characters")]
    InvalidDigestHex { digest: String },
}

/// A parsed, normalised image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageReference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<String>,
}

impl ImageReference {
    /// Parses and normalises `s`. See the module documentation for the grammar.
    pub fn parse(s: &str) -> Result<ImageReference, ReferenceError> {
        if s.is_empty() {
            return Err(ReferenceError::Empty);
        }
        if s.len() > MAX_REFERENCE_LEN {
            return Err(ReferenceError::TooLong {
                len: s.len(),
                max: MAX_REFERENCE_LEN,
            });
        }
        if let Some((position, ch)) = s.char_indices().find(|(_, c)| !c.is_ascii_graphic()) {
            return Err(ReferenceError::InvalidCharacter {
                reference: s.to_owned(),
                ch,
                position,
            });
        }
        if let Some(id) = is_image_id(s) {
            return Err(ReferenceError::ImageId { id });
        }

        let (rest, digest) = match s.split_once('@') {
            Some((rest, digest)) => (rest, Some(validate_digest(digest)?)),
            None => (s, None),
        };
        // A ':' after the last '/' starts the tag; an earlier one belongs to the domain's port.
        let last_slash = rest.rfind('/');
        let (name, tag) = match rest.rfind(':') {
            Some(colon) if last_slash.is_none_or(|slash| colon > slash) => {
                (&rest[..colon], Some(validate_tag(&rest[colon + 1..])?))
            }
            _ => (rest, None),
        };
        let (domain, path) = split_domain(name);
        let registry = match domain {
            Some(domain) => {
                validate_domain(domain)?;
                if domain == DOCKER_HUB_LEGACY_DOMAIN {
                    DOCKER_HUB_DOMAIN
                } else {
                    domain
                }
            }
            None => DOCKER_HUB_DOMAIN,
        };
        validate_path(path)?;
        let repository = if registry == DOCKER_HUB_DOMAIN && !path.contains('/') {
            format!("{OFFICIAL_REPO_PREFIX}{path}")
        } else {
            path.to_owned()
        };
        // Measured on the normalised name, so that every parsed reference prints to a
        // string that parses again.
        let name_len = registry.len() + 1 + repository.len();
        if name_len > MAX_NAME_LEN {
            return Err(ReferenceError::NameTooLong {
                len: name_len,
                max: MAX_NAME_LEN,
            });
        }
        let tag = match (tag, &digest) {
            (None, None) => Some(DEFAULT_TAG.to_owned()),
            (tag, _) => tag.map(str::to_owned),
        };

        Ok(ImageReference {
            registry: registry.to_owned(),
            repository,
            tag,
            digest,
        })
    }

    /// The normalised registry host, with port if any (`docker.io`, `127.0.0.1:5000`).
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository path within the registry (`library/busybox`).
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag, if any. `None` only when the reference was given by digest alone.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest (`sha256:<64 hex>`), if given.
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// The fully qualified name without tag or digest (`docker.io/library/busybox`).
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The name with its tag (`docker.io/library/busybox:latest`), `None` for digest-only
    /// references.
    pub fn tagged(&self) -> Option<String> {
        self.tag
            .as_ref()
            .map(|tag| format!("{}/{}:{tag}", self.registry, self.repository))
    }

    /// The repo-digest form of this name with `digest` (`docker.io/library/busybox@sha256:...`),
    /// as kubelet shows in an image's repo digests.
    pub fn with_digest(&self, digest: &str) -> String {
        format!("{}/{}@{digest}", self.registry, self.repository)
    }

    /// The same repository, tag and digest at another registry host (a mirror or the
    /// upstream endpoint). When a digest is present the reference is by digest only, since a
    /// pull then fetches exactly that manifest.
    pub fn to_oci_reference(&self, endpoint_host: &str) -> oci_client::Reference {
        let registry = endpoint_host.to_owned();
        let repository = self.repository.clone();
        match (&self.digest, &self.tag) {
            (Some(digest), _) => {
                oci_client::Reference::with_digest(registry, repository, digest.clone())
            }
            (None, Some(tag)) => oci_client::Reference::with_tag(registry, repository, tag.clone()),
            // `parse` always sets a tag or a digest; stay total for hand-built values anyway.
            (None, None) => {
                oci_client::Reference::with_tag(registry, repository, DEFAULT_TAG.to_owned())
            }
        }
    }
}

impl fmt::Display for ImageReference {
    /// The canonical form: `name:tag`, `name@digest` or `name:tag@digest`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl FromStr for ImageReference {
    type Err = ReferenceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ImageReference::parse(s)
    }
}

/// Recognises an image ID: `sha256:<64 lowercase hex>` or a bare `<64 lowercase hex>`, and
/// returns it in the `sha256:` form.
pub fn is_image_id(s: &str) -> Option<String> {
    let hex = s.strip_prefix("sha256:").unwrap_or(s);
    is_sha256_hex(hex).then(|| format!("{SHA256}:{hex}"))
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == SHA256_HEX_LEN && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Splits a name into its domain (if the first component is one) and the repository path.
fn split_domain(name: &str) -> (Option<&str>, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.bytes().any(|b| b.is_ascii_uppercase()) =>
        {
            (Some(first), rest)
        }
        _ => (None, name),
    }
}

fn validate_domain(domain: &str) -> Result<(), ReferenceError> {
    let invalid = |reason| ReferenceError::InvalidDomain {
        domain: domain.to_owned(),
        reason,
    };
    let (host, port) = if let Some(bracketed) = domain.strip_prefix('[') {
        let (addr, after) = bracketed
            .split_once(']')
            .ok_or_else(|| invalid("unterminated '[' in IPv6 address"))?;
        if addr.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(invalid("not a valid IPv6 address between '[' and ']'"));
        }
        match after {
            "" => (None, None),
            _ => match after.strip_prefix(':') {
                Some(port) => (None, Some(port)),
                None => return Err(invalid("unexpected characters after ']'")),
            },
        }
    } else {
        match domain.split_once(':') {
            Some((host, port)) => (Some(host), Some(port)),
            None => (Some(domain), None),
        }
    };
    if let Some(host) = host {
        if host.is_empty() {
            return Err(invalid("empty host name"));
        }
        for label in host.split('.') {
            let bytes = label.as_bytes();
            let (Some(first), Some(last)) = (bytes.first(), bytes.last()) else {
                return Err(invalid("empty label between dots"));
            };
            if !first.is_ascii_alphanumeric() || !last.is_ascii_alphanumeric() {
                return Err(invalid("labels must start and end with a letter or digit"));
            }
            if !bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
            {
                return Err(invalid("labels may contain only letters, digits and '-'"));
            }
        }
    }
    if let Some(port) = port {
        if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid("port must be one or more digits"));
        }
    }
    Ok(())
}

fn validate_path(path: &str) -> Result<(), ReferenceError> {
    let invalid = |reason| ReferenceError::InvalidRepository {
        repository: path.to_owned(),
        reason,
    };
    if path.is_empty() {
        return Err(invalid("the repository name is empty"));
    }
    if path.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(ReferenceError::UppercaseRepository {
            repository: path.to_owned(),
        });
    }
    for component in path.split('/') {
        validate_component(component).map_err(invalid)?;
    }
    Ok(())
}

/// One path component: `[a-z0-9]+` runs joined by `.`, `_`, `__` or a run of `-`.
fn validate_component(component: &str) -> Result<(), &'static str> {
    let bytes = component.as_bytes();
    if bytes.is_empty() {
        return Err("empty path component (leading, trailing or doubled '/')");
    }
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let mut i = 0;
    loop {
        let start = i;
        while i < bytes.len() && alnum(bytes[i]) {
            i += 1;
        }
        if i == start {
            return Err("path components must start and end with [a-z0-9]");
        }
        if i == bytes.len() {
            return Ok(());
        }
        let sep_start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        match &component[sep_start..i] {
            "." | "_" | "__" => {}
            sep if sep.bytes().all(|b| b == b'-') => {}
            _ => return Err("separators must be '.', '_', '__' or a run of '-'"),
        }
    }
}

fn validate_tag(tag: &str) -> Result<&str, ReferenceError> {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = tag.as_bytes();
    let ok = bytes.first().is_some_and(|&b| word(b))
        && bytes.len() <= MAX_TAG_LEN
        && bytes.iter().all(|&b| word(b) || b == b'.' || b == b'-');
    if ok {
        Ok(tag)
    } else {
        Err(ReferenceError::InvalidTag {
            tag: tag.to_owned(),
        })
    }
}

fn validate_digest(digest: &str) -> Result<String, ReferenceError> {
    let invalid = || ReferenceError::InvalidDigest {
        digest: digest.to_owned(),
    };
    let (algorithm, hex) = digest.split_once(':').ok_or_else(invalid)?;
    // algorithm := [A-Za-z][A-Za-z0-9]* ( [-_+.] [A-Za-z][A-Za-z0-9]* )*
    let algorithm_ok = algorithm.split(['-', '_', '+', '.']).all(|part| {
        part.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
            && part.bytes().all(|b| b.is_ascii_alphanumeric())
    });
    if !algorithm_ok || hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(invalid());
    }
    if algorithm != SHA256 {
        return Err(ReferenceError::UnsupportedDigestAlgorithm {
            algorithm: algorithm.to_owned(),
            digest: digest.to_owned(),
        });
    }
    if !is_sha256_hex(hex) {
        return Err(ReferenceError::InvalidDigestHex {
            digest: digest.to_owned(),
        });
    }
    Ok(digest.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "9700f9a2f5bf2c45f2f605a0bd3bce7cf37420ec9d3ed50ac2758413308766bf";

    const HEX_DIGEST: &str =
        "sha256:9700f9a2f5bf2c45f2f605a0bd3bce7cf37420ec9d3ed50ac2758413308766bf";

    fn digest() -> String {
        HEX_DIGEST.to_owned()
    }

    /// Parses `input` and checks every component and the canonical form, which must itself
    /// parse back to the same value.
    fn check(
        input: &str,
        (registry, repository): (&str, &str),
        tag: Option<&str>,
        digest: Option<&str>,
        canonical: &str,
    ) {
        let r = ImageReference::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(r.registry(), registry, "{input}");
        assert_eq!(r.repository(), repository, "{input}");
        assert_eq!(r.tag(), tag, "{input}");
        assert_eq!(r.digest(), digest, "{input}");
        assert_eq!(r.to_string(), canonical, "{input}");
        assert_eq!(ImageReference::parse(canonical).unwrap(), r, "{input}");
    }

    #[test]
    fn normalises_valid_references() {
        let hub = |repo| ("docker.io", repo);
        let latest = Some("latest");
        check(
            "busybox",
            hub("library/busybox"),
            latest,
            None,
            "docker.io/library/busybox:latest",
        );
        check(
            "busybox:1.36",
            hub("library/busybox"),
            Some("1.36"),
            None,
            "docker.io/library/busybox:1.36",
        );
        check(
            "library/busybox",
            hub("library/busybox"),
            latest,
            None,
            "docker.io/library/busybox:latest",
        );
        check(
            "docker.io/busybox",
            hub("library/busybox"),
            latest,
            None,
            "docker.io/library/busybox:latest",
        );
        check(
            "index.docker.io/library/busybox",
            hub("library/busybox"),
            latest,
            None,
            "docker.io/library/busybox:latest",
        );
        check(
            "index.docker.io/busybox",
            hub("library/busybox"),
            latest,
            None,
            "docker.io/library/busybox:latest",
        );
        check(
            "someuser/app",
            hub("someuser/app"),
            latest,
            None,
            "docker.io/someuser/app:latest",
        );
        check(
            "registry.k8s.io/pause:3.9",
            ("registry.k8s.io", "pause"),
            Some("3.9"),
            None,
            "registry.k8s.io/pause:3.9",
        );
        check(
            "registry.k8s.io/e2e-test-images/busybox:1.29-2",
            ("registry.k8s.io", "e2e-test-images/busybox"),
            Some("1.29-2"),
            None,
            "registry.k8s.io/e2e-test-images/busybox:1.29-2",
        );
        check(
            "127.0.0.1:5000/a/b:c",
            ("127.0.0.1:5000", "a/b"),
            Some("c"),
            None,
            "127.0.0.1:5000/a/b:c",
        );
        check(
            "localhost/foo",
            ("localhost", "foo"),
            latest,
            None,
            "localhost/foo:latest",
        );
        check(
            "[::1]:5000/foo:bar",
            ("[::1]:5000", "foo"),
            Some("bar"),
            None,
            "[::1]:5000/foo:bar",
        );
        check(
            "gcr.io/k8s-staging-cri-tools/test-image-tag:test",
            ("gcr.io", "k8s-staging-cri-tools/test-image-tag"),
            Some("test"),
            None,
            "gcr.io/k8s-staging-cri-tools/test-image-tag:test",
        );
        check(
            "gcr.io/k8s-staging-cri-tools/test-image-latest",
            ("gcr.io", "k8s-staging-cri-tools/test-image-latest"),
            latest,
            None,
            "gcr.io/k8s-staging-cri-tools/test-image-latest:latest",
        );
        check(
            "Example.COM/foo",
            ("Example.COM", "foo"),
            latest,
            None,
            "Example.COM/foo:latest",
        );
        let long_tag = "a".repeat(128);
        check(
            &format!("foo:{long_tag}"),
            hub("library/foo"),
            Some(&long_tag),
            None,
            &format!("docker.io/library/foo:{long_tag}"),
        );

        let d = Some(HEX_DIGEST);
        check(
            &format!("localhost:5000/foo@{HEX_DIGEST}"),
            ("localhost:5000", "foo"),
            None,
            d,
            &format!("localhost:5000/foo@{HEX_DIGEST}"),
        );
        check(
            &format!("busybox:1.36@{HEX_DIGEST}"),
            hub("library/busybox"),
            Some("1.36"),
            d,
            &format!("docker.io/library/busybox:1.36@{HEX_DIGEST}"),
        );
        check(
            &format!("quay.io/a/b__c.d-e--f_g:T_a.g-1@{HEX_DIGEST}"),
            ("quay.io", "a/b__c.d-e--f_g"),
            Some("T_a.g-1"),
            d,
            &format!("quay.io/a/b__c.d-e--f_g:T_a.g-1@{HEX_DIGEST}"),
        );
    }

    #[test]
    fn rejects_invalid_references() {
        use ReferenceError as E;
        let long = format!("a/{}", "b".repeat(4998));
        let long_name = format!("registry.example/{}", "b".repeat(300));
        type Expected = fn(&ReferenceError) -> bool;
        let cases: Vec<(String, Expected)> = vec![
            ("".into(), |e| matches!(e, E::Empty)),
            ("Busybox".into(), |e| {
                matches!(e, E::UppercaseRepository { .. })
            }),
            ("docker.io/Library/busybox".into(), |e| {
                matches!(e, E::UppercaseRepository { .. })
            }),
            ("a b".into(), |e| {
                matches!(
                    e,
                    E::InvalidCharacter {
                        ch: ' ',
                        position: 1,
                        ..
                    }
                )
            }),
            (" busybox".into(), |e| {
                matches!(e, E::InvalidCharacter { .. })
            }),
            ("busybox\n".into(), |e| {
                matches!(e, E::InvalidCharacter { .. })
            }),
            ("büsybox".into(), |e| {
                matches!(e, E::InvalidCharacter { .. })
            }),
            ("foo:bad tag".into(), |e| {
                matches!(e, E::InvalidCharacter { .. })
            }),
            ("foo:-tag".into(), |e| matches!(e, E::InvalidTag { .. })),
            ("foo:".into(), |e| matches!(e, E::InvalidTag { .. })),
            (format!("foo:{}", "a".repeat(129)), |e| {
                matches!(e, E::InvalidTag { .. })
            }),
            ("foo@sha256:short".into(), |e| {
                matches!(e, E::InvalidDigestHex { .. })
            }),
            (format!("foo@sha256:{}", HEX.to_uppercase()), |e| {
                matches!(e, E::InvalidDigestHex { .. })
            }),
            (format!("foo@sha256:{HEX}0"), |e| {
                matches!(e, E::InvalidDigestHex { .. })
            }),
            ("foo@md5:d41d8cd98f00b204e9800998ecf8427e".into(), |e| {
                matches!(e, E::UnsupportedDigestAlgorithm { .. })
            }),
            (format!("foo@sha512:{HEX}{HEX}"), |e| {
                matches!(e, E::UnsupportedDigestAlgorithm { .. })
            }),
            ("foo@".into(), |e| matches!(e, E::InvalidDigest { .. })),
            (format!("foo@{HEX}"), |e| {
                matches!(e, E::InvalidDigest { .. })
            }),
            (format!("foo@sha256:{HEX}@sha256:{HEX}"), |e| {
                matches!(e, E::InvalidDigest { .. })
            }),
            (":tag".into(), |e| matches!(e, E::InvalidRepository { .. })),
            ("/foo".into(), |e| matches!(e, E::InvalidRepository { .. })),
            ("foo/".into(), |e| matches!(e, E::InvalidRepository { .. })),
            ("foo//bar".into(), |e| {
                matches!(e, E::InvalidRepository { .. })
            }),
            ("foo..bar".into(), |e| {
                matches!(e, E::InvalidRepository { .. })
            }),
            ("foo_-bar".into(), |e| {
                matches!(e, E::InvalidRepository { .. })
            }),
            ("foo___bar".into(), |e| {
                matches!(e, E::InvalidRepository { .. })
            }),
            ("-foo".into(), |e| matches!(e, E::InvalidRepository { .. })),
            ("localhost:5000/".into(), |e| {
                matches!(e, E::InvalidRepository { .. })
            }),
            ("registry.k8s.io/".into(), |e| {
                matches!(e, E::InvalidRepository { .. })
            }),
            ("-bad.io/foo".into(), |e| {
                matches!(e, E::InvalidDomain { .. })
            }),
            ("bad..io/foo".into(), |e| {
                matches!(e, E::InvalidDomain { .. })
            }),
            ("bad_io.com/foo".into(), |e| {
                matches!(e, E::InvalidDomain { .. })
            }),
            ("host:port/foo".into(), |e| {
                matches!(e, E::InvalidDomain { .. })
            }),
            ("host:/foo".into(), |e| matches!(e, E::InvalidDomain { .. })),
            ("[::1/foo".into(), |e| matches!(e, E::InvalidDomain { .. })),
            ("[zz]:5000/foo".into(), |e| {
                matches!(e, E::InvalidDomain { .. })
            }),
            (long, |e| {
                matches!(
                    e,
                    E::TooLong {
                        len: 5000,
                        max: 4096
                    }
                )
            }),
            (long_name, |e| matches!(e, E::NameTooLong { .. })),
            // 18 bytes of "docker.io/library/" + 240 exceeds the limit once normalised.
            ("b".repeat(240), |e| {
                matches!(e, E::NameTooLong { len: 258, .. })
            }),
            (digest(), |e| matches!(e, E::ImageId { .. })),
            (HEX.into(), |e| matches!(e, E::ImageId { .. })),
        ];
        for (input, expected) in cases {
            match ImageReference::parse(&input) {
                Ok(r) => panic!("{input:?} parsed as {r}"),
                Err(e) => {
                    assert!(expected(&e), "{input:?}: unexpected error {e:?}");
                    assert!(!e.to_string().is_empty());
                }
            }
        }
    }

    #[test]
    fn image_id_detection() {
        let d = digest();
        assert_eq!(is_image_id(&d), Some(d.clone()));
        assert_eq!(is_image_id(HEX), Some(d.clone()));
        assert_eq!(is_image_id(&HEX[1..]), None);
        assert_eq!(is_image_id(&HEX.to_uppercase()), None);
        assert_eq!(is_image_id(&format!("sha512:{HEX}")), None);
        assert_eq!(is_image_id("busybox"), None);
        assert_eq!(
            ImageReference::parse(&d),
            Err(ReferenceError::ImageId { id: d.clone() })
        );
        // A 64-hex *tag* is still a reference.
        assert!(ImageReference::parse(&format!("busybox:{HEX}")).is_ok());
    }

    #[test]
    fn derived_forms() {
        let d = digest();
        let r = ImageReference::parse("busybox").unwrap();
        assert_eq!(r.name(), "docker.io/library/busybox");
        assert_eq!(
            r.tagged().as_deref(),
            Some("docker.io/library/busybox:latest")
        );
        assert_eq!(r.with_digest(&d), format!("docker.io/library/busybox@{d}"));

        let by_digest = ImageReference::parse(&format!("localhost:5000/foo@{d}")).unwrap();
        assert_eq!(by_digest.tagged(), None);
        assert_eq!(by_digest.name(), "localhost:5000/foo");

        let both: ImageReference = format!("registry.k8s.io/pause:3.9@{d}").parse().unwrap();
        assert_eq!(both.tagged().as_deref(), Some("registry.k8s.io/pause:3.9"));
    }

    #[test]
    fn oci_reference_at_mirror() {
        let d = digest();
        let r = ImageReference::parse("busybox:1.36").unwrap();
        let oci = r.to_oci_reference("127.0.0.1:5000");
        assert_eq!(oci.registry(), "127.0.0.1:5000");
        assert_eq!(oci.repository(), "library/busybox");
        assert_eq!(oci.tag(), Some("1.36"));
        assert_eq!(oci.digest(), None);

        let both = ImageReference::parse(&format!("registry.k8s.io/pause:3.9@{d}")).unwrap();
        let oci = both.to_oci_reference("mirror.example:443");
        assert_eq!(oci.registry(), "mirror.example:443");
        assert_eq!(oci.repository(), "pause");
        assert_eq!(oci.digest(), Some(d.as_str()));
    }

    /// A deterministic stream of random ASCII strings, biased towards reference-like bytes:
    /// parsing must never panic, and whatever parses must print to a form that parses again
    /// to the same value.
    #[test]
    fn random_input_never_panics() {
        const ALPHABET: &[u8] = b"abcz09AZ.-_:/@[]sha256 \t";
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut parsed = 0;
        for _ in 0..20_000 {
            let len = (next() % 40) as usize;
            let s: String = (0..len)
                .map(|_| {
                    let r = next();
                    if r % 8 == 0 {
                        char::from((r >> 8) as u8 % 128)
                    } else {
                        char::from(ALPHABET[(r >> 8) as usize % ALPHABET.len()])
                    }
                })
                .collect();
            if let Ok(r) = ImageReference::parse(&s) {
                parsed += 1;
                let again = ImageReference::parse(&r.to_string())
                    .unwrap_or_else(|e| panic!("{s:?} → {r} does not re-parse: {e}"));
                assert_eq!(again, r, "{s:?}");
            }
        }
        // The generator must also reach the accepting paths, not only the rejections.
        assert!(parsed > 500, "only {parsed} inputs parsed");
    }
}
