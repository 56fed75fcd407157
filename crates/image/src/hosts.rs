//! Registry host resolution from containerd-style `hosts.toml` files.
//!
//! For a registry host `H` (as it appears in an image reference, port included, e.g.
//! `docker.io` or `127.0.0.1:5000`) the endpoints to contact are read from the first of these
//! files that exists under the configuration directory (`/etc/berth/certs.d` by default):
//!
//! 1. `<config>/<host>_<port>_/hosts.toml` (only when `H` has a port; the form that avoids ':'
//!    in directory names),
//! 2. `<config>/<H>/hosts.toml`,
//! 3. `<config>/_default/hosts.toml`.
//!
//! With none of them, `H` is served by a single default endpoint: `https://registry-1.docker.io`
//! for `docker.io`, plain `http://H` for loopback hosts (`localhost`, `127.0.0.0/8`, `::1`, with
//! or without a port) and `https://H` for everything else.
//!
//! File format (all keys optional):
//!
//! ```toml
//! server = "https://registry-1.docker.io"   # the upstream, tried last; default as above
//! capabilities = ["pull", "resolve", "push"] # these top-level keys apply to `server`
//! skip_verify = false
//! ca = "ca.pem"                              # or an array; relative to the file's directory
//! override_path = false
//! [header]
//!   x-extra = "value"                        # or an array of values
//!
//! [host."http://127.0.0.1:5000"]             # mirrors, tried in file order before `server`
//!   capabilities = ["pull", "resolve"]        # absent or empty: all three
//!   skip_verify = true
//!   ca = ["a.pem", "/etc/certs/b.pem"]
//!   override_path = false                     # true: the URL path is the API root (no "/v2")
//!   [host."http://127.0.0.1:5000".header]
//!     x-extra = ["one", "two"]
//! ```
//!
//! A URL's path gets `/v2` appended unless it already ends with `/v2` or `override_path` is set.
//! Unknown keys, unknown capabilities and malformed URLs are errors that name the file; a
//! missing file is not an error. The registry name is validated before it becomes part of a
//! path, since it comes from user input.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;

/// Name of the per-host configuration file.
pub const HOSTS_FILE: &str = "hosts.toml";
/// Directory consulted when the registry has no directory of its own.
pub const DEFAULT_HOST_DIR: &str = "_default";

const DOCKER_HUB_DOMAIN: &str = "docker.io";
const DOCKER_HUB_UPSTREAM: &str = "registry-1.docker.io";
const API_ROOT: &str = "/v2";
const MAX_REGISTRY_NAME_LEN: usize = 255;

/// Why `hosts.toml` resolution failed.
#[derive(Debug, thiserror::Error)]
pub enum HostsError {
    /// The registry name cannot safely name a directory (or is not a host name at all).
    #[error("invalid registry host name {registry:?}: {reason}")]
    InvalidRegistryName {
        registry: String,
        reason: &'static str,
    },
    /// The file exists but could not be read.
    #[error("failed to read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// TOML syntax error, unknown key or wrong value type; the message carries line and key.
    #[error("failed to parse {}: {source}", path.display())]
    Parse {
        path: PathBuf,
        #[source]
        source: toml::de::Error,
    },
    /// `server` or a `[host."..."]` key is not a usable registry URL.
    #[error("invalid registry URL {url:?} in {}: {problem}", path.display())]
    InvalidUrl {
        path: PathBuf,
        url: String,
        problem: UrlProblem,
    },
    /// A `capabilities` entry other than pull, resolve or push.
    #[error("unknown capability {capability:?} in {} (expected \"pull\", \"resolve\" or \"push\")", path.display())]
    UnknownCapability { path: PathBuf, capability: String },
    /// An empty string where a CA file path was expected.
    #[error("empty `ca` path in {}", path.display())]
    EmptyCaPath { path: PathBuf },
}

/// What is wrong with a registry URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UrlProblem {
    #[error("missing scheme (expected http:// or https://)")]
    MissingScheme,
    #[error("unsupported scheme (expected http or https)")]
    UnsupportedScheme,
    #[error("empty host")]
    EmptyHost,
    #[error("host is not a valid host name or IP address")]
    InvalidHost,
    #[error("port must be a number from 1 to 65535")]
    InvalidPort,
    #[error("user information is not allowed in the URL")]
    UserInfo,
    #[error("query strings and fragments are not allowed")]
    QueryOrFragment,
    #[error("'.' and '..' path segments are not allowed")]
    DotSegment,
}

/// URL scheme of an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The operations an endpoint may be trusted with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Capabilities {
    /// Fetch content by digest.
    pub pull: bool,
    /// Resolve a tag to a digest (a trusted operation: only trusted hosts should have it).
    pub resolve: bool,
    /// Upload content.
    pub push: bool,
}

impl Capabilities {
    pub const ALL: Capabilities = Capabilities {
        pull: true,
        resolve: true,
        push: true,
    };
}

impl Default for Capabilities {
    fn default() -> Self {
        Capabilities::ALL
    }
}

/// One place to contact for a registry: a mirror or the upstream server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub scheme: Scheme,
    /// `host[:port]`; IPv6 addresses in brackets.
    pub host: String,
    /// API root path: `/v2` (possibly after a prefix) unless `override_path` is set, in which
    /// case it is the URL's path as written (possibly empty).
    pub path: String,
    /// The URL path replaces the `/v2` API root.
    pub override_path: bool,
    pub capabilities: Capabilities,
    /// TLS certificate verification is off.
    pub skip_verify: bool,
    /// Extra CA certificates (PEM files), absolute paths.
    pub ca_files: Vec<PathBuf>,
    /// Extra request headers; a key may repeat.
    pub headers: Vec<(String, String)>,
    /// A `[host."..."]` entry, tried before the server.
    pub is_mirror: bool,
}

impl Endpoint {
    pub fn can_pull(&self) -> bool {
        self.capabilities.pull
    }

    pub fn can_resolve(&self) -> bool {
        self.capabilities.resolve
    }

    pub fn can_push(&self) -> bool {
        self.capabilities.push
    }

    /// `scheme://host` followed by the API root path, e.g. `https://registry-1.docker.io/v2`.
    pub fn api_root(&self) -> String {
        format!("{}://{}{}", self.scheme, self.host, self.path)
    }

    /// The built-in endpoint for `registry` when no file configures it.
    fn default_for(registry: &str) -> Endpoint {
        let (scheme, host) = if registry == DOCKER_HUB_DOMAIN {
            (Scheme::Https, DOCKER_HUB_UPSTREAM)
        } else if is_loopback(registry) {
            (Scheme::Http, registry)
        } else {
            (Scheme::Https, registry)
        };
        Endpoint {
            scheme,
            host: host.to_owned(),
            path: API_ROOT.to_owned(),
            override_path: false,
            capabilities: Capabilities::ALL,
            skip_verify: false,
            ca_files: Vec::new(),
            headers: Vec::new(),
            is_mirror: false,
        }
    }
}

/// Resolves a registry host to its endpoints using a `certs.d`-style directory.
#[derive(Debug, Clone)]
pub struct RegistryHosts {
    config_path: PathBuf,
}

impl RegistryHosts {
    pub fn new(config_path: impl Into<PathBuf>) -> Self {
        RegistryHosts {
            config_path: config_path.into(),
        }
    }

    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// All endpoints for `registry`, in the order to try them: mirrors in file order, then
    /// the server. The files are read on every call, so edits apply without a restart.
    pub fn endpoints(&self, registry: &str) -> Result<Vec<Endpoint>, HostsError> {
        validate_registry_name(registry)?;
        for dir in self.candidate_dirs(registry) {
            let file = dir.join(HOSTS_FILE);
            match std::fs::read_to_string(&file) {
                Ok(text) => {
                    tracing::debug!(registry, file = %file.display(), "using registry hosts file");
                    return parse_hosts_file(registry, &dir, &file, &text);
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(source) => return Err(HostsError::Read { path: file, source }),
            }
        }
        Ok(vec![Endpoint::default_for(registry)])
    }

    /// The endpoints for `registry` that may be pulled from, in order.
    pub fn pull_endpoints(&self, registry: &str) -> Result<Vec<Endpoint>, HostsError> {
        let mut endpoints = self.endpoints(registry)?;
        endpoints.retain(Endpoint::can_pull);
        Ok(endpoints)
    }

    fn candidate_dirs(&self, registry: &str) -> Vec<PathBuf> {
        let mut dirs = Vec::with_capacity(3);
        if let Some((host, Some(port))) = split_host_port(registry) {
            dirs.push(self.config_path.join(format!("{host}_{port}_")));
        }
        dirs.push(self.config_path.join(registry));
        dirs.push(self.config_path.join(DEFAULT_HOST_DIR));
        dirs
    }
}

/// Refuses registry names that are not host names: they would otherwise be joined onto the
/// configuration path (`..`, `/`, NUL) or could never come from a valid reference.
fn validate_registry_name(registry: &str) -> Result<(), HostsError> {
    let invalid = |reason| HostsError::InvalidRegistryName {
        registry: registry.to_owned(),
        reason,
    };
    if registry.is_empty() {
        return Err(invalid("empty"));
    }
    if registry.len() > MAX_REGISTRY_NAME_LEN {
        return Err(invalid("longer than 255 bytes"));
    }
    if registry.contains(['/', '\\', '\0']) {
        return Err(invalid("contains a path separator or NUL"));
    }
    if registry.contains("..") || registry.starts_with('.') {
        return Err(invalid("contains '..' or starts with '.'"));
    }
    if !registry
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
    {
        return Err(invalid(
            "may contain only letters, digits, '.', '-', ':', '[' and ']'",
        ));
    }
    Ok(())
}

/// Whether `host` (optionally with a port) is `localhost` or a loopback IP address.
fn is_loopback(host: &str) -> bool {
    let name = match split_host_port(host) {
        Some((name, _)) => name,
        // A bare IPv6 address such as "::1" has colons but no port.
        None => host,
    };
    let name = name
        .strip_prefix('[')
        .and_then(|n| n.strip_suffix(']'))
        .unwrap_or(name);
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
        || name.parse::<Ipv6Addr>().is_ok_and(|ip| ip.is_loopback())
}

/// Splits `host[:port]` / `[v6]:port`. Returns `None` when the text is ambiguous (a bare IPv6
/// address) or malformed brackets.
fn split_host_port(authority: &str) -> Option<(&str, Option<&str>)> {
    if authority.starts_with('[') {
        let end = authority.find(']')?;
        let (host, rest) = authority.split_at(end + 1);
        return match rest {
            "" => Some((host, None)),
            _ => rest.strip_prefix(':').map(|port| (host, Some(port))),
        };
    }
    match authority.matches(':').count() {
        0 => Some((authority, None)),
        1 => authority
            .split_once(':')
            .map(|(host, port)| (host, Some(port))),
        _ => None,
    }
}

/// A parsed registry URL.
struct RegistryUrl {
    scheme: Scheme,
    host: String,
    /// Normalised path: "" or "/a/b" (no trailing slash, no empty segments).
    path: String,
}

fn parse_url(url: &str) -> Result<RegistryUrl, UrlProblem> {
    let (scheme, rest) = url.split_once("://").ok_or(UrlProblem::MissingScheme)?;
    let scheme = if scheme.eq_ignore_ascii_case("https") {
        Scheme::Https
    } else if scheme.eq_ignore_ascii_case("http") {
        Scheme::Http
    } else {
        return Err(UrlProblem::UnsupportedScheme);
    };
    if rest.contains(['?', '#']) {
        return Err(UrlProblem::QueryOrFragment);
    }
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    if authority.contains('@') {
        return Err(UrlProblem::UserInfo);
    }
    if authority.is_empty() {
        return Err(UrlProblem::EmptyHost);
    }
    let (host, port) = split_host_port(authority).ok_or(UrlProblem::InvalidHost)?;
    validate_url_host(host)?;
    if let Some(port) = port {
        if port.is_empty()
            || !port.bytes().all(|b| b.is_ascii_digit())
            || !port.parse::<u16>().is_ok_and(|p| p != 0)
        {
            return Err(UrlProblem::InvalidPort);
        }
    }
    let mut normalised = String::with_capacity(path.len());
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        if segment == "." || segment == ".." {
            return Err(UrlProblem::DotSegment);
        }
        normalised.push('/');
        normalised.push_str(segment);
    }
    Ok(RegistryUrl {
        scheme,
        host: authority.to_owned(),
        path: normalised,
    })
}

fn validate_url_host(host: &str) -> Result<(), UrlProblem> {
    if host.is_empty() {
        return Err(UrlProblem::EmptyHost);
    }
    if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return v6
            .parse::<Ipv6Addr>()
            .map(|_| ())
            .map_err(|_| UrlProblem::InvalidHost);
    }
    let label_ok = |label: &str| {
        let ends_ok = |b: Option<&u8>| b.is_some_and(u8::is_ascii_alphanumeric);
        let bytes = label.as_bytes();
        ends_ok(bytes.first())
            && ends_ok(bytes.last())
            && bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
    };
    if host.split('.').all(label_ok) {
        Ok(())
    } else {
        Err(UrlProblem::InvalidHost)
    }
}

/// A string or an array of strings.
#[derive(Debug, Default)]
struct OneOrMany(Vec<String>);

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct OneOrManyVisitor;

        impl<'de> Visitor<'de> for OneOrManyVisitor {
            type Value = OneOrMany;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an array of strings")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(OneOrMany(vec![v.to_owned()]))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut values = Vec::new();
                while let Some(v) = seq.next_element::<String>()? {
                    values.push(v);
                }
                Ok(OneOrMany(values))
            }
        }

        deserializer.deserialize_any(OneOrManyVisitor)
    }
}

/// Settings shared by the top level (for `server`) and each `[host."..."]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct HostSection {
    capabilities: Option<Vec<String>>,
    skip_verify: Option<bool>,
    ca: Option<OneOrMany>,
    override_path: Option<bool>,
    header: Option<BTreeMap<String, OneOrMany>>,
}

/// The whole file. `serde(flatten)` cannot be combined with `deny_unknown_fields`, so the
/// top-level copies of the [`HostSection`] keys are spelled out.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HostsFile {
    server: Option<String>,
    capabilities: Option<Vec<String>>,
    skip_verify: Option<bool>,
    ca: Option<OneOrMany>,
    override_path: Option<bool>,
    header: Option<BTreeMap<String, OneOrMany>>,
    /// Keys carry their position in the file: the map itself is sorted, so the file order of
    /// the mirrors is recovered from the spans.
    host: Option<BTreeMap<toml::Spanned<String>, HostSection>>,
}

fn parse_hosts_file(
    registry: &str,
    dir: &Path,
    file: &Path,
    text: &str,
) -> Result<Vec<Endpoint>, HostsError> {
    let parsed: HostsFile = toml::from_str(text).map_err(|source| HostsError::Parse {
        path: file.to_owned(),
        source,
    })?;

    let mut mirrors: Vec<_> = parsed.host.unwrap_or_default().into_iter().collect();
    mirrors.sort_by_key(|(url, _)| url.span().start);

    let mut endpoints = Vec::with_capacity(mirrors.len() + 1);
    for (url, section) in mirrors {
        let url = url.into_inner();
        let parsed_url = parse_url(&url).map_err(|problem| HostsError::InvalidUrl {
            path: file.to_owned(),
            url: url.clone(),
            problem,
        })?;
        endpoints.push(build_endpoint(parsed_url, section, true, dir, file)?);
    }

    let server_section = HostSection {
        capabilities: parsed.capabilities,
        skip_verify: parsed.skip_verify,
        ca: parsed.ca,
        override_path: parsed.override_path,
        header: parsed.header,
    };
    let server_url = match parsed.server {
        Some(url) => parse_url(&url).map_err(|problem| HostsError::InvalidUrl {
            path: file.to_owned(),
            url,
            problem,
        })?,
        None => {
            let default = Endpoint::default_for(registry);
            RegistryUrl {
                scheme: default.scheme,
                host: default.host,
                path: String::new(),
            }
        }
    };
    endpoints.push(build_endpoint(
        server_url,
        server_section,
        false,
        dir,
        file,
    )?);
    Ok(endpoints)
}

fn build_endpoint(
    url: RegistryUrl,
    section: HostSection,
    is_mirror: bool,
    dir: &Path,
    file: &Path,
) -> Result<Endpoint, HostsError> {
    let capabilities = match section.capabilities {
        Some(list) if !list.is_empty() => {
            let mut caps = Capabilities {
                pull: false,
                resolve: false,
                push: false,
            };
            for capability in list {
                match capability.to_ascii_lowercase().as_str() {
                    "pull" => caps.pull = true,
                    "resolve" => caps.resolve = true,
                    "push" => caps.push = true,
                    _ => {
                        return Err(HostsError::UnknownCapability {
                            path: file.to_owned(),
                            capability,
                        })
                    }
                }
            }
            caps
        }
        _ => Capabilities::ALL,
    };

    let mut ca_files = Vec::new();
    for ca in section.ca.unwrap_or_default().0 {
        if ca.is_empty() {
            return Err(HostsError::EmptyCaPath {
                path: file.to_owned(),
            });
        }
        // `join` keeps absolute paths as they are.
        ca_files.push(dir.join(ca));
    }

    let headers = section
        .header
        .unwrap_or_default()
        .into_iter()
        .flat_map(|(key, values)| values.0.into_iter().map(move |v| (key.clone(), v)))
        .collect();

    let override_path = section.override_path.unwrap_or(false);
    let path = if override_path || url.path.ends_with(API_ROOT) {
        url.path
    } else {
        format!("{}{API_ROOT}", url.path)
    };

    Ok(Endpoint {
        scheme: url.scheme,
        host: url.host,
        path,
        override_path,
        capabilities,
        skip_verify: section.skip_verify.unwrap_or(false),
        ca_files,
        headers,
        is_mirror,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn write_hosts(root: &Path, dir: &str, text: &str) -> PathBuf {
        let dir = root.join(dir);
        fs::create_dir_all(&dir).unwrap();
        let file = dir.join(HOSTS_FILE);
        fs::write(&file, text).unwrap();
        file
    }

    fn only(endpoints: Vec<Endpoint>) -> Endpoint {
        assert_eq!(endpoints.len(), 1, "{endpoints:?}");
        endpoints.into_iter().next().unwrap()
    }

    #[test]
    fn defaults_without_files() {
        let tmp = tempfile::tempdir().unwrap();
        // Also a config directory that does not exist at all.
        for root in [tmp.path().to_owned(), tmp.path().join("missing")] {
            let hosts = RegistryHosts::new(&root);
            let cases = [
                ("docker.io", Scheme::Https, "registry-1.docker.io"),
                ("registry.k8s.io", Scheme::Https, "registry.k8s.io"),
                ("gcr.io", Scheme::Https, "gcr.io"),
                ("127.0.0.1:5000", Scheme::Http, "127.0.0.1:5000"),
                ("127.1.2.3", Scheme::Http, "127.1.2.3"),
                ("localhost", Scheme::Http, "localhost"),
                ("localhost:5000", Scheme::Http, "localhost:5000"),
                ("[::1]:5000", Scheme::Http, "[::1]:5000"),
                ("[::1]", Scheme::Http, "[::1]"),
                ("::1", Scheme::Http, "::1"),
                ("128.0.0.1:5000", Scheme::Https, "128.0.0.1:5000"),
                (
                    "localhost.example.com",
                    Scheme::Https,
                    "localhost.example.com",
                ),
            ];
            for (registry, scheme, host) in cases {
                let e = only(hosts.endpoints(registry).unwrap());
                assert_eq!((e.scheme, e.host.as_str()), (scheme, host), "{registry}");
                assert_eq!(e.path, "/v2");
                assert_eq!(e.capabilities, Capabilities::ALL);
                assert!(!e.is_mirror && !e.skip_verify && e.ca_files.is_empty());
            }
        }
        let e = only(
            RegistryHosts::new(tmp.path())
                .endpoints("docker.io")
                .unwrap(),
        );
        assert_eq!(e.api_root(), "https://registry-1.docker.io/v2");
    }

    #[test]
    fn mirrors_in_file_order_then_server() {
        let tmp = tempfile::tempdir().unwrap();
        write_hosts(
            tmp.path(),
            "docker.io",
            r#"
server = "https://registry-1.docker.io"
capabilities = ["pull", "resolve"]
ca = ["/etc/certs/upstream.pem", "extra.pem"]

[host."https://zz-mirror.example.com/prefix/"]
  capabilities = ["pull"]
  skip_verify = true
  ca = "mirror-ca.pem"
  [host."https://zz-mirror.example.com/prefix/".header]
    x-one = "1"
    x-many = ["a", "b"]

[host."http://127.0.0.1:5000"]
  capabilities = ["PULL", "resolve"]

[host."https://odd.example.com/api/root"]
  override_path = true
"#,
        );
        let hosts = RegistryHosts::new(tmp.path());
        let endpoints = hosts.endpoints("docker.io").unwrap();
        let dir = tmp.path().join("docker.io");
        assert_eq!(endpoints.len(), 4);

        let m0 = &endpoints[0];
        assert_eq!(m0.api_root(), "https://zz-mirror.example.com/prefix/v2");
        assert!(m0.is_mirror && m0.skip_verify && m0.can_pull());
        assert!(!m0.can_resolve() && !m0.can_push());
        assert_eq!(m0.ca_files, vec![dir.join("mirror-ca.pem")]);
        let mut headers = m0.headers.clone();
        headers.sort();
        assert_eq!(
            headers,
            [("x-many", "a"), ("x-many", "b"), ("x-one", "1")]
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );

        let m1 = &endpoints[1];
        assert_eq!(
            (m1.scheme, m1.host.as_str(), m1.path.as_str()),
            (Scheme::Http, "127.0.0.1:5000", "/v2")
        );
        assert_eq!(
            m1.capabilities,
            Capabilities {
                pull: true,
                resolve: true,
                push: false
            }
        );
        assert!(m1.is_mirror && !m1.skip_verify);

        let m2 = &endpoints[2];
        assert!(m2.override_path);
        assert_eq!(m2.path, "/api/root");
        assert_eq!(m2.capabilities, Capabilities::ALL);

        let server = &endpoints[3];
        assert!(!server.is_mirror);
        assert_eq!(server.api_root(), "https://registry-1.docker.io/v2");
        assert_eq!(
            server.capabilities,
            Capabilities {
                pull: true,
                resolve: true,
                push: false
            }
        );
        assert_eq!(
            server.ca_files,
            vec![
                PathBuf::from("/etc/certs/upstream.pem"),
                dir.join("extra.pem")
            ]
        );

        // pull_endpoints keeps pull-capable ones, in order.
        let mut no_pull =
            String::from("[host.\"https://push-only.example\"]\ncapabilities = [\"push\"]\n");
        no_pull.push_str("[host.\"https://pull.example\"]\n");
        write_hosts(tmp.path(), "quay.io", &no_pull);
        let pulls = hosts.pull_endpoints("quay.io").unwrap();
        let names: Vec<_> = pulls.iter().map(|e| e.host.as_str()).collect();
        assert_eq!(names, ["pull.example", "quay.io"]);
        assert_eq!(hosts.endpoints("quay.io").unwrap().len(), 3);
    }

    #[test]
    fn file_without_server_uses_default_server() {
        let tmp = tempfile::tempdir().unwrap();
        let text = "skip_verify = true\n[host.\"https://mirror.example\"]\n";
        for registry in ["docker.io", "registry.k8s.io", "localhost:5000"] {
            write_hosts(tmp.path(), registry, text);
        }
        let hosts = RegistryHosts::new(tmp.path());
        for (registry, want) in [
            ("docker.io", "https://registry-1.docker.io/v2"),
            ("registry.k8s.io", "https://registry.k8s.io/v2"),
            ("localhost:5000", "http://localhost:5000/v2"),
        ] {
            let endpoints = hosts.endpoints(registry).unwrap();
            assert_eq!(endpoints.len(), 2, "{registry}");
            assert_eq!(endpoints[0].api_root(), "https://mirror.example/v2");
            assert_eq!(endpoints[1].api_root(), want, "{registry}");
            // Top-level keys apply to the (default) server.
            assert!(endpoints[1].skip_verify && !endpoints[0].skip_verify);
        }
    }

    #[test]
    fn default_dir_fallback_and_host_port_dirs() {
        let tmp = tempfile::tempdir().unwrap();
        write_hosts(
            tmp.path(),
            "_default",
            "[host.\"https://catch-all.example\"]\ncapabilities = [\"pull\"]\n",
        );
        write_hosts(
            tmp.path(),
            "127.0.0.1:5000",
            "server = \"http://127.0.0.1:5000\"\nskip_verify = true\n",
        );
        write_hosts(
            tmp.path(),
            "registry.example_8443_",
            "server = \"https://registry.example:8443\"\nca = \"ca.pem\"\n",
        );
        let hosts = RegistryHosts::new(tmp.path());

        let fallback = hosts.endpoints("gcr.io").unwrap();
        assert_eq!(fallback.len(), 2);
        assert_eq!(fallback[0].host, "catch-all.example");
        assert_eq!(fallback[1].api_root(), "https://gcr.io/v2");

        let local = only(hosts.endpoints("127.0.0.1:5000").unwrap());
        assert_eq!(local.api_root(), "http://127.0.0.1:5000/v2");
        assert!(local.skip_verify);

        let ported = only(hosts.endpoints("registry.example:8443").unwrap());
        assert_eq!(ported.api_root(), "https://registry.example:8443/v2");
        assert_eq!(
            ported.ca_files,
            vec![tmp.path().join("registry.example_8443_").join("ca.pem")]
        );

        // A host directory without hosts.toml falls through to _default.
        fs::create_dir_all(tmp.path().join("quay.io")).unwrap();
        assert_eq!(
            hosts.endpoints("quay.io").unwrap()[0].host,
            "catch-all.example"
        );
    }

    #[test]
    fn unknown_keys_are_errors_naming_key_and_file() {
        let tmp = tempfile::tempdir().unwrap();
        let hosts = RegistryHosts::new(tmp.path());
        for (registry, text, key) in [
            ("a.example", "serverr = \"https://x\"\n", "serverr"),
            ("b.example", "[host.\"https://m\"]\ncapabilites = [\"pull\"]\n", "capabilites"),
            ("c.example", "[host.\"https://m\".header]\nx = \"1\"\n[host.\"https://m\"]\nclient = \"c.pem\"\n", "client"),
        ] {
            let file = write_hosts(tmp.path(), registry, text);
            let err = hosts.endpoints(registry).unwrap_err();
            assert!(matches!(err, HostsError::Parse { .. }), "{err:?}");
            let msg = err.to_string();
            assert!(msg.contains(key), "{msg}");
            assert!(msg.contains(&file.display().to_string()), "{msg}");
        }
    }

    #[test]
    fn syntax_type_and_value_errors() {
        let tmp = tempfile::tempdir().unwrap();
        let hosts = RegistryHosts::new(tmp.path());

        write_hosts(
            tmp.path(),
            "syntax.example",
            "server = \"https://x\"\n[host.\"https://m\"\n",
        );
        let msg = hosts.endpoints("syntax.example").unwrap_err().to_string();
        assert!(msg.contains("line 2"), "{msg}");

        write_hosts(tmp.path(), "type.example", "ca = 5\n");
        let err = hosts.endpoints("type.example").unwrap_err();
        assert!(matches!(err, HostsError::Parse { .. }), "{err:?}");
        assert!(
            err.to_string().contains("a string or an array of strings"),
            "{err}"
        );

        write_hosts(
            tmp.path(),
            "cap.example",
            "capabilities = [\"pull\", \"fly\"]\n",
        );
        let err = hosts.endpoints("cap.example").unwrap_err();
        assert!(
            matches!(&err, HostsError::UnknownCapability { capability, .. } if capability == "fly"),
            "{err:?}"
        );

        write_hosts(tmp.path(), "ca.example", "ca = [\"\"]\n");
        assert!(matches!(
            hosts.endpoints("ca.example"),
            Err(HostsError::EmptyCaPath { .. })
        ));

        // A directory where the file should be cannot be read.
        fs::create_dir_all(tmp.path().join("dir.example").join(HOSTS_FILE)).unwrap();
        assert!(matches!(
            hosts.endpoints("dir.example"),
            Err(HostsError::Read { .. })
        ));
    }

    #[test]
    fn bad_urls_are_errors() {
        let tmp = tempfile::tempdir().unwrap();
        let hosts = RegistryHosts::new(tmp.path());
        let cases = [
            (
                "server = \"ftp://mirror.example\"\n",
                UrlProblem::UnsupportedScheme,
            ),
            ("server = \"mirror.example\"\n", UrlProblem::MissingScheme),
            ("[host.\"https://\"]\n", UrlProblem::EmptyHost),
            ("[host.\"https:///v2\"]\n", UrlProblem::EmptyHost),
            (
                "[host.\"https://user:pw@mirror.example\"]\n",
                UrlProblem::UserInfo,
            ),
            (
                "[host.\"https://mirror.example:99999\"]\n",
                UrlProblem::InvalidPort,
            ),
            (
                "[host.\"https://mirror.example:\"]\n",
                UrlProblem::InvalidPort,
            ),
            (
                "[host.\"https://bad_host.example\"]\n",
                UrlProblem::InvalidHost,
            ),
            ("[host.\"https://[::1\"]\n", UrlProblem::InvalidHost),
            (
                "[host.\"https://m.example/a?b=c\"]\n",
                UrlProblem::QueryOrFragment,
            ),
            (
                "[host.\"https://m.example/a/../b\"]\n",
                UrlProblem::DotSegment,
            ),
        ];
        for (i, (text, want)) in cases.into_iter().enumerate() {
            let registry = format!("r{i}.example");
            let file = write_hosts(tmp.path(), &registry, text);
            match hosts.endpoints(&registry) {
                Err(HostsError::InvalidUrl { path, problem, .. }) => {
                    assert_eq!(problem, want, "{text}");
                    assert_eq!(path, file);
                }
                other => panic!("{text}: {other:?}"),
            }
        }
        // Well-formed variants that are accepted.
        write_hosts(
            tmp.path(),
            "ok.example",
            "[host.\"HTTPS://[::1]:5000//v2/\"]\n",
        );
        let e = &hosts.endpoints("ok.example").unwrap()[0];
        assert_eq!(e.api_root(), "https://[::1]:5000/v2");
    }

    #[test]
    fn registry_names_that_escape_are_rejected() {
        let tmp = tempfile::tempdir().unwrap();
        // A hosts.toml outside the config dir that a traversal would reach.
        fs::write(
            tmp.path().join(HOSTS_FILE),
            "server = \"https://evil.example\"\n",
        )
        .unwrap();
        let config = tmp.path().join("certs.d");
        fs::create_dir_all(&config).unwrap();
        let hosts = RegistryHosts::new(&config);
        for name in [
            "..", "../x", "a/b", "/etc", "a\0b", "..foo", ".", "", "a b", "_default", "x\\y",
        ] {
            assert!(
                matches!(
                    hosts.endpoints(name),
                    Err(HostsError::InvalidRegistryName { .. })
                ),
                "{name:?} accepted"
            );
        }
        let long = "a".repeat(256);
        assert!(matches!(
            hosts.endpoints(&long),
            Err(HostsError::InvalidRegistryName { .. })
        ));
    }

    #[test]
    fn loopback_detection() {
        for host in [
            "localhost",
            "LOCALHOST:80",
            "127.0.0.1",
            "127.255.0.9:1",
            "[::1]",
            "[::1]:5000",
            "::1",
            "[0:0:0:0:0:0:0:1]:5",
        ] {
            assert!(is_loopback(host), "{host}");
        }
        for host in [
            "localhost.localdomain",
            "128.0.0.1",
            "10.0.0.1:5000",
            "[::2]:5000",
            "example.com",
            "[::1",
        ] {
            assert!(!is_loopback(host), "{host}");
        }
    }
}
