//! The corpus: request bytes per RPC in `tests/fuzz/corpus/<Rpc>/*.bin`, replayed once by
//! every run (the regression mode) and used as mutation material. It grows with every bug
//! found: the fuzzer saves each finding's request under `target/fuzz-out/<kind>/`.
//!
//! Files can name objects of the run through placeholder string values, replaced before
//! sending (anywhere in the message, at any depth): `@pod` (a live pod's ID),
//! `@container` (a container's), `@running` (a started container's), `@busybox` (the
//! runnable image on the local registry), `@registry` (its `host:port`, also as a prefix `@registry/`), and values
//! starting with `@host/` (a path below the fuzzer's confined host root).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::rng::Rng;
use crate::rpcs;
use crate::seeds::Ctx;
use crate::wire::{self, Value};

/// Files of the corpus, by RPC.
#[derive(Debug, Default)]
pub struct Corpus {
    /// `(path, bytes)` per RPC name.
    pub by_rpc: BTreeMap<&'static str, Vec<(PathBuf, Vec<u8>)>>,
}

impl Corpus {
    /// Loads `<dir>/<Rpc>/*.bin`; a directory not named after an RPC is an error.
    pub fn load(dir: &Path) -> Result<Corpus, String> {
        let mut corpus = Corpus::default();
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Ok(corpus);
        };
        let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !entry.path().is_dir() {
                continue;
            }
            let rpc = rpcs::by_name(&name)
                .ok_or_else(|| format!("corpus directory {name} is not an RPC of runtime.v1"))?;
            let mut files: Vec<PathBuf> = std::fs::read_dir(entry.path())
                .map_err(|e| e.to_string())?
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "bin"))
                .collect();
            files.sort();
            for file in files {
                let bytes = std::fs::read(&file).map_err(|e| format!("{}: {e}", file.display()))?;
                corpus
                    .by_rpc
                    .entry(rpc.name)
                    .or_default()
                    .push((file, bytes));
            }
        }
        Ok(corpus)
    }

    /// Number of files.
    pub fn len(&self) -> usize {
        self.by_rpc.values().map(Vec::len).sum()
    }
}

/// `bytes` with the placeholders of the module docs replaced.
pub fn substitute(bytes: &[u8], ctx: &Ctx, rng: &mut Rng) -> Vec<u8> {
    if !bytes.windows(1).any(|w| w[0] == b'@') {
        return bytes.to_vec();
    }
    match wire::parse(bytes) {
        Some(mut fields) => {
            replace_in(&mut fields, ctx, rng, 0);
            wire::encode(&fields)
        }
        None => bytes.to_vec(),
    }
}

fn replace_in(fields: &mut [wire::Field], ctx: &Ctx, rng: &mut Rng, depth: usize) {
    for field in fields {
        let Value::Bytes(b) = &mut field.value else {
            continue;
        };
        if let Some(value) = placeholder(b, ctx, rng) {
            *b = value.into_bytes();
        } else if depth < 16 {
            if let Some(mut nested) = wire::parse_nested(b) {
                replace_in(&mut nested, ctx, rng, depth + 1);
                *b = wire::encode(&nested);
            }
        }
    }
}

fn placeholder(value: &[u8], ctx: &Ctx, rng: &mut Rng) -> Option<String> {
    let text = std::str::from_utf8(value).ok()?;
    Some(match text {
        "@pod" => ctx
            .pool()
            .pods
            .first()
            .map(|p| p.id.clone())
            .unwrap_or_else(|| ctx.pool().pod_id(rng)),
        "@container" => ctx.pool().container_id(rng, None),
        "@running" => {
            let pool = ctx.pool();
            pool.containers
                .iter()
                .find(|c| c.started)
                .map(|c| c.id.clone())
                .unwrap_or_else(|| pool.container_id(rng, Some(true)))
        }
        "@busybox" => ctx.busybox(),
        "@registry" => ctx.registry.clone(),
        _ => {
            if let Some(rest) = text.strip_prefix("@registry/") {
                return Some(format!("{}/{rest}", ctx.registry));
            }
            let rest = text.strip_prefix("@host/")?;
            format!("{}/{rest}", ctx.host_root.display())
        }
    })
}

/// The hand-made hostile cases of the corpus, one per shape the issue names (and the
/// findings they reproduce); `berth-fuzz --write-curated DIR` writes them as
/// `DIR/<Rpc>/<name>.bin`, and a test keeps the repository's copies identical.
pub fn curated() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    use cri_api::v1;
    use prost::Message;

    let ctx = Ctx {
        registry: "@registry".into(),
        host_root: "@host".into(),
        pool: Default::default(),
    };
    let mut rng = Rng::new(0xc0ffee, 0);
    let pod = |name: &str, rng: &mut Rng| {
        let mut config = crate::seeds::pod_config(&ctx, rng, name);
        config.log_directory = format!("@host/logs/{name}");
        config.port_mappings.clear();
        config
    };
    let run_pod = |config: v1::PodSandboxConfig| {
        v1::RunPodSandboxRequest {
            config: Some(config),
            runtime_handler: String::new(),
        }
        .encode_to_vec()
    };
    let pull = |image: &str, auth: Option<v1::AuthConfig>| {
        v1::PullImageRequest {
            image: Some(v1::ImageSpec {
                image: image.into(),
                ..Default::default()
            }),
            auth,
            sandbox_config: None,
        }
        .encode_to_vec()
    };
    let token = |t: &str| {
        Some(v1::AuthConfig {
            registry_token: t.into(),
            ..Default::default()
        })
    };
    let container = |rng: &mut Rng| {
        let mut config = crate::seeds::container_config(&ctx, rng);
        config.image = Some(v1::ImageSpec {
            image: "@busybox".into(),
            ..Default::default()
        });
        config.command = vec!["sleep".into(), "3600".into()];
        config.mounts.clear();
        config.stdin = false;
        config.tty = false;
        config
    };
    let mut out = Vec::new();
    out.push((
        "PullImage",
        "auth-registry-token-newline",
        pull("@busybox", token("abc\ndef")),
    ));
    out.push((
        "PullImage",
        "auth-registry-token-del",
        pull("@busybox", token("abc\x7fdef")),
    ));
    out.push((
        "PullImage",
        "auth-username-newline",
        pull(
            "@busybox",
            Some(v1::AuthConfig {
                username: "us\ner".into(),
                password: "pass\rword".into(),
                ..Default::default()
            }),
        ),
    ));
    out.push((
        "PullImage",
        "missing-image",
        pull("@registry/berth-fuzz/missing:0000", None),
    ));
    out.push((
        "PullImage",
        "image-name-64KiB",
        pull(&format!("@registry/{}", "a".repeat(64 << 10)), None),
    ));

    let mut config = pod("cgroup-unicode", &mut rng);
    if let Some(linux) = config.linux.as_mut() {
        linux.cgroup_parent = "/berth-fuzz/\u{fc}n\u{ef}code-\u{202e}-\u{65e5}".into();
    }
    out.push(("RunPodSandbox", "cgroup-parent-unicode", run_pod(config)));
    let mut config = pod("cgroup-relative", &mut rng);
    if let Some(linux) = config.linux.as_mut() {
        linux.cgroup_parent = "berth-fuzz/relative/x".into();
    }
    out.push(("RunPodSandbox", "cgroup-parent-relative", run_pod(config)));
    let mut config = pod("name-long", &mut rng);
    if let Some(m) = config.metadata.as_mut() {
        m.name = "n".repeat(20 << 10);
    }
    out.push(("RunPodSandbox", "name-20KiB", run_pod(config)));
    let mut config = pod("labels", &mut rng);
    for i in 0..5000 {
        config
            .labels
            .insert(format!("fuzz.example/label-{i}"), "v".repeat(16));
    }
    out.push(("RunPodSandbox", "labels-5000", run_pod(config)));
    let mut config = pod("hostname", &mut rng);
    config.hostname = "host\nname\x7f".into();
    out.push((
        "RunPodSandbox",
        "hostname-control-characters",
        run_pod(config),
    ));

    let mut config = container(&mut rng);
    config.mounts = vec![
        v1::Mount {
            container_path: "/data".into(),
            host_path: "@host/volumes/nest".into(),
            propagation: v1::MountPropagation::PropagationBidirectional as i32,
            ..Default::default()
        },
        v1::Mount {
            container_path: "/data/inner".into(),
            host_path: "@host/volumes/nest-inner".into(),
            ..Default::default()
        },
    ];
    let create = |config: v1::ContainerConfig| {
        v1::CreateContainerRequest {
            pod_sandbox_id: "@pod".into(),
            config: Some(config),
            sandbox_config: None,
        }
        .encode_to_vec()
    };
    out.push((
        "CreateContainer",
        "nested-bidirectional-volumes",
        create(config),
    ));
    let mut config = container(&mut rng);
    config.args = vec!["a".repeat(64 << 10)];
    out.push(("CreateContainer", "args-64KiB", create(config)));

    out.push((
        "Exec",
        "command-64KiB",
        v1::ExecRequest {
            container_id: "@running".into(),
            cmd: vec![
                "sh".into(),
                "-c".into(),
                format!("echo {}", "a".repeat(64 << 10)),
            ],
            tty: false,
            stdin: true,
            stdout: true,
            stderr: true,
        }
        .encode_to_vec(),
    ));
    out.push((
        "ExecSync",
        "output-20MB",
        v1::ExecSyncRequest {
            container_id: "@running".into(),
            cmd: vec![
                "sh".into(),
                "-c".into(),
                "head -c 20000000 /dev/zero".into(),
            ],
            timeout: 20,
        }
        .encode_to_vec(),
    ));
    out.push((
        "PortForward",
        "ports-out-of-range",
        v1::PortForwardRequest {
            pod_sandbox_id: "@pod".into(),
            port: vec![-1, 0, 65536, i32::MAX],
        }
        .encode_to_vec(),
    ));
    // The fixture container is `sleep` as PID 1 of its PID namespace: it ignores SIGTERM.
    out.push((
        "StopContainer",
        "timeout-int32-max-pid1-ignores-sigterm",
        v1::StopContainerRequest {
            container_id: "@running".into(),
            timeout: i64::from(i32::MAX),
        }
        .encode_to_vec(),
    ));
    out.push((
        "ContainerStatus",
        "id-invalid-utf8",
        vec![0x0a, 0x03, 0xff, 0xfe, 0x41],
    ));
    out.push(("Version", "truncated-varint", vec![0x10, 0xff]));
    out.push(("Version", "wire-type-7", vec![0x0f, 0x00, 0x01]));
    out.push((
        "UpdateRuntimeConfig",
        "pod-cidr-control-characters",
        v1::UpdateRuntimeConfigRequest {
            runtime_config: Some(v1::RuntimeConfig {
                network_config: Some(v1::NetworkConfig {
                    pod_cidr: "10.0.0.0/33\n\x7f".into(),
                }),
            }),
        }
        .encode_to_vec(),
    ));
    out
}

/// Writes [`curated`] under `dir`.
pub fn write_curated(dir: &Path) -> std::io::Result<usize> {
    let cases = curated();
    for (rpc, name, bytes) in &cases {
        let sub = dir.join(rpc);
        std::fs::create_dir_all(&sub)?;
        std::fs::write(
            sub.join(format!("{name}.bin")),
            crate::wire::canonical(bytes),
        )?;
    }
    Ok(cases.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use cri_api::v1;
    use prost::Message;

    #[test]
    fn placeholders_are_replaced_at_any_depth() {
        let ctx = Ctx {
            registry: "127.0.0.1:5000".into(),
            host_root: "/tmp/root".into(),
            pool: Default::default(),
        };
        ctx.pool().add_pod("p1".into(), Default::default(), true);
        ctx.pool().add_container("c1".into(), "p1".into(), true);
        ctx.pool().mark_started("c1");
        let request = v1::CreateContainerRequest {
            pod_sandbox_id: "@pod".into(),
            config: Some(v1::ContainerConfig {
                image: Some(v1::ImageSpec {
                    image: "@busybox".into(),
                    ..Default::default()
                }),
                mounts: vec![v1::Mount {
                    host_path: "@host/volumes/a".into(),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            sandbox_config: None,
        };
        let out = substitute(&request.encode_to_vec(), &ctx, &mut Rng::new(1, 1));
        let out = v1::CreateContainerRequest::decode(out.as_slice()).unwrap();
        assert_eq!(out.pod_sandbox_id, "p1");
        let config = out.config.unwrap();
        assert_eq!(
            config.image.unwrap().image,
            "127.0.0.1:5000/e2e-test-images/busybox:1.29-2"
        );
        assert_eq!(config.mounts[0].host_path, "/tmp/root/volumes/a");
        let exec = v1::ExecSyncRequest {
            container_id: "@running".into(),
            cmd: vec!["@literal".into()],
            timeout: 1,
        };
        let out = substitute(&exec.encode_to_vec(), &ctx, &mut Rng::new(1, 1));
        let out = v1::ExecSyncRequest::decode(out.as_slice()).unwrap();
        assert_eq!(out.container_id, "c1");
        assert_eq!(out.cmd, ["@literal"]);
    }

    #[test]
    fn the_repository_holds_the_curated_cases() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
        for (rpc, name, bytes) in curated() {
            let path = dir.join(rpc).join(format!("{name}.bin"));
            let stored = std::fs::read(&path).unwrap_or_default();
            // Maps are encoded in hash order: compare decoded requests when they decode.
            let same = rpcs::requests_equal(rpc, &stored, &bytes).unwrap_or(stored == bytes);
            assert!(
                same,
                "{} is missing or stale: run berth-fuzz --write-curated tests/fuzz/corpus",
                path.display()
            );
        }
    }

    #[test]
    fn the_repository_corpus_loads() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
        let corpus = Corpus::load(&dir).unwrap();
        for (rpc, files) in &corpus.by_rpc {
            for (path, bytes) in files {
                assert!(
                    bytes.len() <= 256 << 10,
                    "{} is over 256 KiB",
                    path.display()
                );
                assert!(rpcs::by_name(rpc).is_some());
            }
        }
    }
}
