//! Talking to registries: the endpoints of a registry (mirrors first, from `hosts.toml`),
//! credentials from the CRI's `AuthConfig`, resolving a reference to its manifest, and
//! streaming blobs.
//!
//! One `oci_client::Client` is made per endpoint and pull: the client caches credentials per
//! registry host, so sharing one across pulls with different credentials would mix them.

use std::time::Duration;

use bytes::Bytes;
use oci_client::client::{
    BlobResponse, Certificate, CertificateEncoding, ClientConfig, ClientProtocol,
};
use oci_client::errors::OciDistributionError;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

use crate::digest::Digest;
use crate::error::ImageError;
use crate::hosts::{Endpoint, Scheme};
use crate::manifest::{check_document_size, ACCEPTED_MANIFESTS};
use crate::reference::ImageReference;

/// How long to wait for a TCP connection to a registry.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Registry credentials as the CRI carries them (`AuthConfig`).
#[derive(Clone, Default)]
pub struct Credentials {
    /// `username`
    pub username: String,
    /// `password`
    pub password: String,
    /// `auth`: base64 of `username:password`.
    pub auth: String,
    /// `identity_token`
    pub identity_token: String,
    /// `registry_token`: a bearer token for the registry.
    pub registry_token: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Secrets are never printed.
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// Credentials that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// `auth` is not base64 of `user:password`.
    #[error("auth_config.auth is not base64 of \"username:password\"")]
    MalformedAuth,
    /// Identity tokens need the OAuth2 refresh-token flow, which berth does not do.
    #[error(
        "auth_config.identity_token is not supported; pass username/password or registry_token"
    )]
    IdentityTokenUnsupported,
    /// A field sent as an HTTP header value as it is holds a byte no header may carry (a
    /// control character other than tab, or DEL). The secret is not quoted: only the offset
    /// and the byte are.
    #[error("auth_config.{field}: byte 0x{byte:02x} at offset {offset} is not allowed in an HTTP header")]
    BadByte {
        /// The `AuthConfig` field (`registry_token`).
        field: &'static str,
        /// The byte.
        byte: u8,
        /// Its offset in the field (in the decoded text for `auth`).
        offset: usize,
    },
}

/// Checks that `value` can travel as an HTTP header value: no control characters (tab
/// aside) and no DEL. (User names and passwords travel base64-encoded and need no check.)
fn header_safe(field: &'static str, value: &str) -> Result<(), CredentialsError> {
    let forbidden = |b: u8| (b < 0x20 && b != b'\t') || b == 0x7f;
    match value.bytes().position(forbidden) {
        None => Ok(()),
        Some(offset) => Err(CredentialsError::BadByte {
            field,
            byte: value.as_bytes()[offset],
            offset,
        }),
    }
}

impl Credentials {
    /// The registry authentication these credentials ask for.
    pub fn to_registry_auth(&self) -> Result<RegistryAuth, CredentialsError> {
        use base64::Engine as _;
        if !self.registry_token.is_empty() {
            header_safe("registry_token", &self.registry_token)?;
            return Ok(RegistryAuth::Bearer(self.registry_token.clone()));
        }
        if !self.auth.is_empty() {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(self.auth.trim())
                .map_err(|_| CredentialsError::MalformedAuth)?;
            let text = String::from_utf8(decoded).map_err(|_| CredentialsError::MalformedAuth)?;
            let (user, password) = text
                .split_once(':')
                .ok_or(CredentialsError::MalformedAuth)?;
            return Ok(RegistryAuth::Basic(user.to_owned(), password.to_owned()));
        }
        if !self.username.is_empty() {
            return Ok(RegistryAuth::Basic(
                self.username.clone(),
                self.password.clone(),
            ));
        }
        if !self.identity_token.is_empty() {
            return Err(CredentialsError::IdentityTokenUnsupported);
        }
        Ok(RegistryAuth::Anonymous)
    }
}

/// One endpoint of a registry, ready to fetch from.
pub struct Remote {
    /// The endpoint's URL, for messages.
    pub url: String,
    client: Client,
    auth: RegistryAuth,
    registry: String,
    repository: String,
}

impl Remote {
    fn new(
        endpoint: &Endpoint,
        reference: &ImageReference,
        auth: &RegistryAuth,
    ) -> Result<Remote, ImageError> {
        let mut extra_root_certificates = Vec::new();
        for path in &endpoint.ca_files {
            let data = std::fs::read(path).map_err(ImageError::io("read CA certificate", path))?;
            extra_root_certificates.push(Certificate {
                encoding: CertificateEncoding::Pem,
                data,
            });
        }
        let config = ClientConfig {
            protocol: match endpoint.scheme {
                Scheme::Http => ClientProtocol::Http,
                Scheme::Https => ClientProtocol::Https,
            },
            accept_invalid_certificates: endpoint.skip_verify,
            extra_root_certificates,
            platform_resolver: None,
            connect_timeout: Some(CONNECT_TIMEOUT),
            ..ClientConfig::default()
        };
        let oci = reference.to_oci_reference(&endpoint.host);
        Ok(Remote {
            url: format!("{}://{}", endpoint.scheme, endpoint.host),
            client: Client::new(config),
            auth: auth.clone(),
            registry: oci.registry().to_owned(),
            repository: oci.repository().to_owned(),
        })
    }

    fn by_digest(&self, digest: &Digest) -> Reference {
        Reference::with_digest(
            self.registry.clone(),
            self.repository.clone(),
            digest.to_string(),
        )
    }

    fn error(
        &self,
        operation: String,
        reference: &Reference,
        source: OciDistributionError,
    ) -> ImageError {
        let unauthorized = matches!(
            source,
            OciDistributionError::AuthenticationFailure(_)
                | OciDistributionError::UnauthorizedError { .. }
        ) || matches!(
            &source,
            OciDistributionError::ServerError {
                code: 401 | 403,
                ..
            }
        );
        let reference = reference.whole();
        let endpoint = self.url.clone();
        let source = Box::new(source);
        if unauthorized {
            ImageError::Unauthorized {
                operation,
                reference,
                endpoint,
                source,
            }
        } else {
            ImageError::Registry {
                operation,
                reference,
                endpoint,
                source,
            }
        }
    }

    async fn manifest(&self, reference: &Reference) -> Result<Bytes, ImageError> {
        let (bytes, _) = self
            .client
            .pull_manifest_raw(reference, &self.auth, &ACCEPTED_MANIFESTS)
            .await
            .map_err(|err| self.error("fetch manifest".into(), reference, err))?;
        check_document_size(
            || format!("manifest of {}", reference.whole()),
            bytes.len() as u64,
        )?;
        Ok(bytes)
    }

    /// Fetches the manifest (or index) `digest` and checks that it hashes to it.
    pub async fn manifest_by_digest(&self, digest: &Digest) -> Result<Bytes, ImageError> {
        let reference = self.by_digest(digest);
        let bytes = self.manifest(&reference).await?;
        let actual = Digest::of(&bytes);
        if &actual != digest {
            return Err(ImageError::DigestMismatch {
                what: format!("manifest {}", reference.whole()),
                expected: digest.clone(),
                actual,
            });
        }
        Ok(bytes)
    }

    /// Fetches a whole small blob (a config) and checks digest and size.
    pub async fn small_blob(&self, digest: &Digest, size: u64) -> Result<Vec<u8>, ImageError> {
        use futures_util::StreamExt as _;
        let what = format!("blob {digest} of {}/{}", self.registry, self.repository);
        check_document_size(|| what.clone(), size)?;
        let mut stream = self.blob_stream(digest, size).await?;
        let mut data = Vec::with_capacity(size as usize);
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|source| {
                self.error(
                    format!("fetch blob {digest}"),
                    &self.by_digest(digest),
                    source.into(),
                )
            })?;
            if (data.len() + chunk.len()) as u64 > size {
                return Err(ImageError::SizeMismatch {
                    what,
                    expected: size,
                    actual: (data.len() + chunk.len()) as u64,
                });
            }
            data.extend_from_slice(&chunk);
        }
        let actual = Digest::of(&data);
        if &actual != digest {
            return Err(ImageError::DigestMismatch {
                what,
                expected: digest.clone(),
                actual,
            });
        }
        if data.len() as u64 != size {
            return Err(ImageError::SizeMismatch {
                what,
                expected: size,
                actual: data.len() as u64,
            });
        }
        Ok(data)
    }

    /// Streams the blob `digest` of `size` bytes. The caller checks digest and size of what
    /// arrives, while it stores the bytes.
    ///
    /// A blob of one byte or more is asked for as the range `bytes=0-`: the client hashes a
    /// whole (200) answer itself, a second sha256 pass over every byte of a layer, which the
    /// caller's own check makes redundant; a 206 answer skips it. A registry that ignores
    /// the range answers 200 and the client checks that answer as well. An empty blob has
    /// no range to ask for (the registry would refuse it), so it is asked for whole.
    pub async fn blob_stream(
        &self,
        digest: &Digest,
        size: u64,
    ) -> Result<futures_util::stream::BoxStream<'static, Result<Bytes, std::io::Error>>, ImageError>
    {
        let reference = self.by_digest(digest);
        // The client needs the credentials registered for this host before a blob request.
        self.client
            .store_auth_if_needed(reference.resolve_registry(), &self.auth)
            .await;
        let fetched = if size == 0 {
            self.client
                .pull_blob_stream(&reference, digest.as_str())
                .await
        } else {
            self.client
                .pull_blob_stream_partial(&reference, digest.as_str(), 0, None)
                .await
                .map(|answer| match answer {
                    BlobResponse::Full(sized) | BlobResponse::Partial(sized) => sized,
                })
        };
        let sized =
            fetched.map_err(|err| self.error(format!("fetch blob {digest}"), &reference, err))?;
        Ok(sized.stream)
    }
}

/// Resolves `reference` on the first endpoint that answers, in configuration order
/// (mirrors, then the registry itself). Returns the endpoint, the top-level document
/// (manifest or index) and its digest, checked against the reference's digest if it has one.
pub async fn resolve(
    endpoints: &[Endpoint],
    reference: &ImageReference,
    auth: &RegistryAuth,
) -> Result<(Remote, Bytes, Digest), ImageError> {
    let by_digest = reference.digest().map(Digest::parse).transpose()?;
    let capability = if by_digest.is_some() {
        "pull"
    } else {
        "resolve"
    };
    let usable = endpoints.iter().filter(|endpoint| {
        if by_digest.is_some() {
            endpoint.can_pull()
        } else {
            endpoint.can_resolve()
        }
    });
    let mut last_error = None;
    for endpoint in usable {
        let remote = Remote::new(endpoint, reference, auth)?;
        let oci = reference.to_oci_reference(&endpoint.host);
        let result = match &by_digest {
            Some(digest) => remote.manifest_by_digest(digest).await,
            None => remote.manifest(&oci).await,
        };
        match result {
            Ok(bytes) => {
                let digest = Digest::of(&bytes);
                tracing::info!(reference = %reference, endpoint = %remote.url, %digest, "resolved");
                return Ok((remote, bytes, digest));
            }
            Err(err) => {
                tracing::info!(reference = %reference, endpoint = %remote.url, error = %err, "endpoint failed");
                // Digest and credential failures are not cured by another endpoint's answer
                // only if no other endpoint is left; keep trying and report the last one.
                last_error = Some(err);
            }
        }
    }
    Err(last_error.unwrap_or_else(|| ImageError::NoEndpoint {
        registry: reference.registry().to_owned(),
        capability,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_map_to_registry_auth() {
        let anonymous = Credentials::default().to_registry_auth().unwrap();
        assert!(matches!(anonymous, RegistryAuth::Anonymous));

        let basic = Credentials {
            username: "u".into(),
            password: "p".into(),
            ..Default::default()
        };
        assert!(
            matches!(basic.to_registry_auth().unwrap(), RegistryAuth::Basic(u, p) if u == "u" && p == "p")
        );

        // base64("user:pa:ss")
        let auth = Credentials {
            auth: "dXNlcjpwYTpzcw==".into(),
            ..Default::default()
        };
        assert!(
            matches!(auth.to_registry_auth().unwrap(), RegistryAuth::Basic(u, p) if u == "user" && p == "pa:ss")
        );

        let token = Credentials {
            registry_token: "t".into(),
            username: "u".into(),
            ..Default::default()
        };
        assert!(matches!(token.to_registry_auth().unwrap(), RegistryAuth::Bearer(t) if t == "t"));

        let bad = Credentials {
            auth: "%%%".into(),
            ..Default::default()
        };
        assert!(matches!(
            bad.to_registry_auth(),
            Err(CredentialsError::MalformedAuth)
        ));
        let identity = Credentials {
            identity_token: "x".into(),
            ..Default::default()
        };
        assert!(matches!(
            identity.to_registry_auth(),
            Err(CredentialsError::IdentityTokenUnsupported)
        ));
    }

    #[test]
    fn tokens_that_cannot_be_headers_are_refused() {
        for (token, byte, offset) in [("abc\ndef", b'\n', 3), ("\x7f", 0x7f, 0), ("a\0", 0, 1)] {
            let creds = Credentials {
                registry_token: token.into(),
                ..Default::default()
            };
            let err = creds.to_registry_auth().unwrap_err();
            assert!(
                matches!(err, CredentialsError::BadByte { field: "registry_token", byte: b, offset: o } if b == byte && o == offset),
                "{err:?}"
            );
            assert!(
                !err.to_string().contains(token),
                "the secret is not echoed: {err}"
            );
        }
        let fine = Credentials {
            registry_token: "eyJhbGciOi.J9\tx-_~+/=".into(),
            ..Default::default()
        };
        assert!(matches!(
            fine.to_registry_auth(),
            Ok(RegistryAuth::Bearer(_))
        ));
    }

    #[test]
    fn secrets_are_not_debug_printed() {
        let creds = Credentials {
            username: "u".into(),
            password: "hunter2".into(),
            ..Default::default()
        };
        assert!(!format!("{creds:?}").contains("hunter2"));
    }
}
