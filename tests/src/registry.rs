//! Registries for the image tests.
//!
//! - The **shared test registry** is the one `tests/run.sh` starts on 127.0.0.1:5000 with every
//!   image of `tests/images/build.sh`; tests find it through `BERTH_TEST_REGISTRY=host:port`.
//!   Without it an image test prints a note and passes, unless `BERTH_REQUIRE_REGISTRY=1`
//!   (set by `tests/run.sh`), which turns the missing registry into a failure.
//! - **Extra registries** ([`Registry`]) are started by a test on a free port from 5001 on,
//!   with `tests/images/registry.sh`, optionally with basic auth, and filled with
//!   `tests/images/fixtures.sh`; dropping the guard stops exactly that registry by its PID.
//! - Remote facts (manifest and config digests, layer sizes) come from `skopeo inspect --raw`,
//!   independently of berth.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};

use tempfile::TempDir;

/// Environment variable naming the shared test registry (`host:port`).
pub const REGISTRY_ENV: &str = "BERTH_TEST_REGISTRY";
/// When `1`, a missing registry or tool fails the test instead of skipping it.
pub const REQUIRE_ENV: &str = "BERTH_REQUIRE_REGISTRY";

/// Whether the image tests must run (`BERTH_REQUIRE_REGISTRY=1`).
pub fn registry_required() -> bool {
    std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1")
}

/// The shared test registry, or `None` (after printing why the test is skipped) when
/// `BERTH_TEST_REGISTRY` is unset. Panics instead when `BERTH_REQUIRE_REGISTRY=1`.
pub fn shared_registry(test: &str) -> Option<String> {
    match std::env::var(REGISTRY_ENV) {
        Ok(addr) if !addr.is_empty() => Some(addr),
        _ => {
            skip_or_panic(
                test,
                &format!(
                    "{REGISTRY_ENV} is not set (tests/run.sh starts the registry and sets it)"
                ),
            );
            None
        }
    }
}

/// Prints `note: <test> skipped: <why>`, or panics with it when the registry is required.
pub fn skip_or_panic(test: &str, why: &str) {
    if registry_required() {
        panic!("{test}: {why}, and {REQUIRE_ENV}=1");
    }
    berth_testutil::skip_named(test, why);
}

/// The repository's top directory.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// `tests/images/<name>`.
pub fn images_script(name: &str) -> PathBuf {
    repo_root().join("tests/images").join(name)
}

/// Runs `tests/images/<script> args...`, panicking with its output when it fails; returns
/// stdout.
pub fn run_script(script: &str, args: &[String]) -> String {
    let output = Command::new(images_script(script))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running tests/images/{script}: {e}"));
    check_output(&format!("tests/images/{script} {}", args.join(" ")), output)
}

/// Runs `program args...` and returns its stdout; panics with both outputs on failure.
pub fn run(program: &str, args: &[&str]) -> String {
    let output = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {program}: {e}"));
    check_output(&format!("{program} {}", args.join(" ")), output)
}

/// Runs `program args...` and returns its output whatever the exit status.
pub fn run_unchecked(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {program}: {e}"))
}

fn check_output(what: &str, output: Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{what} failed ({}):\nstdout:\n{stdout}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// Whether `program` is on PATH.
pub fn on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// Regular files below `dir` (not following symlinks), and every other non-directory entry.
pub fn walk(dir: &Path) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let mut files = Vec::new();
    let mut others = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(path) = pending.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            for entry in std::fs::read_dir(&path).unwrap() {
                pending.push(entry.unwrap().path());
            }
        } else if meta.is_file() {
            files.push(path);
        } else {
            others.push(path);
        }
    }
    (files, others)
}

/// `sha256:<hex>` of `bytes` (coreutils' sha256sum, so the tests need no hashing crate).
pub fn sha256_digest(bytes: &[u8]) -> String {
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("sha256sum");
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    format!("sha256:{}", text.split_whitespace().next().unwrap())
}

/// `sha256:<hex>` of a file's content.
pub fn sha256_file(path: &Path) -> String {
    let out = run("sha256sum", &[path.to_str().unwrap()]);
    format!("sha256:{}", out.split_whitespace().next().unwrap())
}

/// Standard base64 (with padding), as `AuthConfig.auth` carries `user:password`.
pub fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The OCI name of the host's architecture (what a manifest list must resolve to).
pub fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "arm" => "arm",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        other => panic!("no OCI architecture name for {other}"),
    }
}

/// `skopeo inspect --raw` of `docker://<reference>` over plain HTTP: the exact bytes the
/// registry serves for that manifest (or index).
pub fn skopeo_raw(reference: &str, creds: Option<&str>) -> Vec<u8> {
    let transport = format!("docker://{reference}");
    let mut args = vec!["inspect", "--raw", "--tls-verify=false"];
    if let Some(creds) = creds {
        args.extend(["--creds", creds]);
    }
    args.push(&transport);
    let output = run_unchecked("skopeo", &args);
    assert!(
        output.status.success(),
        "skopeo inspect --raw {transport}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// A layer as a manifest lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteLayer {
    pub digest: String,
    pub size: u64,
    pub media_type: String,
}

/// A single-platform image as the registry serves it.
#[derive(Debug, Clone)]
pub struct RemoteImage {
    /// Digest of the manifest bytes: what a repo digest names.
    pub manifest_digest: String,
    /// Digest of the config blob: the image ID.
    pub config_digest: String,
    pub layers: Vec<RemoteLayer>,
    /// The image config.
    pub config: serde_json::Value,
}

impl RemoteImage {
    /// Sum of the compressed layer sizes.
    pub fn layers_size(&self) -> u64 {
        self.layers.iter().map(|l| l.size).sum()
    }
}

/// Reads the manifest `reference` names (it must be a single-platform manifest) and its
/// config, and checks that the config's digest is the one the manifest names.
pub fn inspect_image(reference: &str, creds: Option<&str>) -> RemoteImage {
    let raw = skopeo_raw(reference, creds);
    let manifest: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    let config_digest = manifest["config"]["digest"]
        .as_str()
        .unwrap_or_else(|| panic!("{reference} is not a single-platform manifest: {manifest}"))
        .to_owned();
    let layers = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| RemoteLayer {
            digest: l["digest"].as_str().unwrap().to_owned(),
            size: l["size"].as_u64().unwrap(),
            media_type: l["mediaType"].as_str().unwrap_or_default().to_owned(),
        })
        .collect();
    // The config as the registry serves it, digest-checked here.
    let transport = format!("docker://{reference}");
    let mut args = vec!["inspect", "--raw", "--config", "--tls-verify=false"];
    if let Some(creds) = creds {
        args.extend(["--creds", creds]);
    }
    args.push(&transport);
    let output = run_unchecked("skopeo", &args);
    assert!(
        output.status.success(),
        "skopeo inspect --config {transport}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        sha256_digest(&output.stdout),
        config_digest,
        "config of {reference} does not match its digest"
    );
    RemoteImage {
        manifest_digest: sha256_digest(&raw),
        config_digest,
        layers,
        config: serde_json::from_slice(&output.stdout).unwrap(),
    }
}

/// An index or manifest list and its entries.
#[derive(Debug, Clone)]
pub struct RemoteIndex {
    pub digest: String,
    pub media_type: String,
    /// `(architecture, manifest digest)` of each entry, in order.
    pub entries: Vec<(String, String)>,
}

impl RemoteIndex {
    /// The manifest digest of the entry for `architecture`.
    pub fn manifest_for(&self, architecture: &str) -> &str {
        &self
            .entries
            .iter()
            .find(|(arch, _)| arch == architecture)
            .unwrap_or_else(|| panic!("no {architecture} entry in {self:?}"))
            .1
    }
}

/// Reads the index or manifest list `reference` names.
pub fn inspect_index(reference: &str) -> RemoteIndex {
    let raw = skopeo_raw(reference, None);
    let index: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    let entries = index["manifests"]
        .as_array()
        .unwrap_or_else(|| panic!("{reference} is not an index: {index}"))
        .iter()
        .map(|m| {
            (
                m["platform"]["architecture"].as_str().unwrap().to_owned(),
                m["digest"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    RemoteIndex {
        digest: sha256_digest(&raw),
        media_type: index["mediaType"].as_str().unwrap_or_default().to_owned(),
        entries,
    }
}

/// First port tried for extra registries; each start takes the next free one.
static NEXT_PORT: AtomicU16 = AtomicU16::new(5001);
/// Port of the benchmark's registry (`bench/pull.sh`), never used by tests.
const BENCH_PORT: u16 = 5010;

/// An extra registry started by a test; stopped (by PID) and removed on drop.
pub struct Registry {
    /// `127.0.0.1:<port>`
    pub addr: String,
    /// `user:password` when started with basic auth.
    pub creds: Option<String>,
    /// The registry.sh workdir (config, storage, log, PID file).
    pub dir: TempDir,
    pid: u32,
}

impl Registry {
    /// Starts a registry without auth.
    pub fn start() -> Registry {
        Registry::start_inner(None)
    }

    /// Starts a registry that requires basic auth as `user`/`password` (an htpasswd file
    /// written by `tests/images/htpasswd.sh`).
    pub fn start_with_auth(user: &str, password: &str) -> Registry {
        Registry::start_inner(Some((user, password)))
    }

    fn start_inner(auth: Option<(&str, &str)>) -> Registry {
        let dir = tempfile::Builder::new()
            .prefix("berth-registry-")
            .tempdir()
            .unwrap();
        let mut extra = Vec::new();
        if let Some((user, password)) = auth {
            let htpasswd = dir.path().join("htpasswd");
            run_script(
                "htpasswd.sh",
                &[
                    htpasswd.display().to_string(),
                    user.to_owned(),
                    password.to_owned(),
                ],
            );
            extra = vec!["--htpasswd".to_owned(), htpasswd.display().to_string()];
        }
        let mut last_error = String::new();
        for _ in 0..40 {
            let port = NEXT_PORT.fetch_add(1, Ordering::SeqCst);
            if port == BENCH_PORT || std::net::TcpListener::bind(("127.0.0.1", port)).is_err() {
                continue;
            }
            let addr = format!("127.0.0.1:{port}");
            let mut args = vec![
                "--addr".to_owned(),
                addr.clone(),
                "start".to_owned(),
                dir.path().display().to_string(),
            ];
            args.extend(extra.iter().cloned());
            let output = Command::new(images_script("registry.sh"))
                .args(&args)
                .stdin(Stdio::null())
                .output()
                .unwrap();
            if output.status.success() {
                let pid = std::fs::read_to_string(dir.path().join("registry.pid"))
                    .unwrap()
                    .trim()
                    .parse()
                    .unwrap();
                return Registry {
                    addr,
                    creds: auth.map(|(u, p)| format!("{u}:{p}")),
                    dir,
                    pid,
                };
            }
            // Taken between the probe and the start (another test process): try the next.
            last_error = String::from_utf8_lossy(&output.stderr).into_owned();
        }
        panic!("could not start an extra registry: {last_error}");
    }

    /// Pushes every image of `tests/images/fixtures.sh` (with the registry's credentials).
    pub fn push_fixtures(&self) {
        let mut args = vec![self.addr.clone()];
        if let Some(creds) = &self.creds {
            args.extend(["--creds".to_owned(), creds.clone()]);
        }
        run_script("fixtures.sh", &args);
    }

    /// Corrupts layer 0 of `repo_tag` in the storage (`tests/images/corrupt-blob.sh`):
    /// garbage over the whole blob, or with `flip` 16 inverted bytes in the middle.
    /// Returns `(expected digest, digest of the bytes now served)`.
    pub fn corrupt(&self, repo_tag: &str, flip: bool) -> (String, String) {
        let mut args = Vec::new();
        if flip {
            args.push("--flip".to_owned());
        }
        args.extend([self.dir.path().display().to_string(), repo_tag.to_owned()]);
        let out = run_script("corrupt-blob.sh", &args);
        // corrupted <ref> layer 0 <expected> -> <actual> (<size> bytes)
        let words: Vec<&str> = out.split_whitespace().collect();
        assert_eq!(words.first(), Some(&"corrupted"), "{out}");
        (words[4].to_owned(), words[6].to_owned())
    }

    /// `<addr>/<path>`
    pub fn reference(&self, path: &str) -> String {
        format!("{}/{path}", self.addr)
    }

    /// The registry's PID.
    pub fn pid(&self) -> u32 {
        self.pid
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let stopped = Command::new(images_script("registry.sh"))
            .args(["stop", &self.dir.path().display().to_string()])
            .stdin(Stdio::null())
            .output()
            .is_ok_and(|o| o.status.success());
        if !stopped {
            // registry.sh failed: stop the PID directly, if it still is this registry.
            let config = self.dir.path().join("config.yml").display().to_string();
            let ours = std::fs::read(format!("/proc/{}/cmdline", self.pid))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&config));
            if ours {
                let pid = nix::unistd::Pid::from_raw(self.pid as i32);
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            }
        }
    }
}
