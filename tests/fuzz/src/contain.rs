//! Containment of what a fuzzed request may do to the host outside the fuzzer's own
//! directories. The namespaces the fuzzer runs in (network, UTS, IPC, mount) contain the
//! rest; files are shared with the host, so every request field naming a host path that
//! berthd creates, writes or reads without a size limit is checked after mutation:
//!
//! - directories berthd creates or writes into (volume host paths, pod log directories,
//!   checkpoint locations) must lie below the fuzzer's host root, else they are moved
//!   there (`/` becomes `_`, so the hostile string itself is kept);
//! - a container's log path must stay relative and free of `..`;
//! - device host paths must be harmless devices or not exist;
//! - seccomp profile paths must be regular files outside /proc, /sys and /dev, or not exist.
//!
//! A request that does not decode goes out unchanged: berthd cannot decode it either. One
//! that needed changes is re-encoded (losing any oddity of its wire form, which is fine:
//! such requests are a small share).

use std::path::{Component, Path};

use cri_api::v1;
use prost::Message;

use crate::seeds::is_below;

/// Devices a fuzzed container may be given.
const HARMLESS_DEVICES: &[&str] = &[
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
    "/dev/tty",
];

/// A request after containment.
#[derive(Debug)]
pub struct Contained {
    /// What to send.
    pub bytes: Vec<u8>,
    /// Whether a field had to be changed.
    pub rewritten: bool,
}

/// Applies the rules of the module docs to a request of RPC `rpc`.
pub fn contain(rpc: &str, bytes: Vec<u8>, root: &Path) -> Contained {
    let rewritten = match rpc {
        "RunPodSandbox" => edit::<v1::RunPodSandboxRequest>(&bytes, |r| {
            r.config.as_mut().is_some_and(|c| pod(c, root))
        }),
        "CreateContainer" => edit::<v1::CreateContainerRequest>(&bytes, |r| {
            let a = r.config.as_mut().is_some_and(|c| container(c, root));
            let b = r.sandbox_config.as_mut().is_some_and(|c| pod(c, root));
            a | b
        }),
        "PullImage" => edit::<v1::PullImageRequest>(&bytes, |r| {
            r.sandbox_config.as_mut().is_some_and(|c| pod(c, root))
        }),
        "RestorePod" => edit::<v1::RestorePodRequest>(&bytes, |r| {
            let mut changed = confine(&mut r.checkpoint_path, root, "checkpoints");
            changed |= r.config.as_mut().is_some_and(|c| pod(c, root));
            for c in &mut r.container_configs {
                changed |= container(c, root);
            }
            changed
        }),
        "CheckpointContainer" => edit::<v1::CheckpointContainerRequest>(&bytes, |r| {
            confine(&mut r.location, root, "checkpoints")
        }),
        "CheckpointPod" => edit::<v1::CheckpointPodRequest>(&bytes, |r| {
            confine(&mut r.output_path, root, "checkpoints")
        }),
        _ => None,
    };
    match rewritten {
        Some(bytes) => Contained {
            bytes,
            rewritten: true,
        },
        None => Contained {
            bytes,
            rewritten: false,
        },
    }
}

/// Decodes `bytes` as `M`, applies `change`; the re-encoded message if it changed anything.
fn edit<M: Message + Default>(
    bytes: &[u8],
    change: impl FnOnce(&mut M) -> bool,
) -> Option<Vec<u8>> {
    let mut message = M::decode(bytes).ok()?;
    change(&mut message).then(|| message.encode_to_vec())
}

fn pod(config: &mut v1::PodSandboxConfig, root: &Path) -> bool {
    let changed = confine(&mut config.log_directory, root, "logs");
    let sc = config
        .linux
        .as_mut()
        .and_then(|l| l.security_context.as_mut());
    changed | seccomp(sc, root)
}

fn container(config: &mut v1::ContainerConfig, root: &Path) -> bool {
    let mut changed = relative(&mut config.log_path);
    for mount in &mut config.mounts {
        changed |= confine(&mut mount.host_path, root, "volumes");
    }
    for device in &mut config.devices {
        changed |= harmless_device(&mut device.host_path);
    }
    let sc = config
        .linux
        .as_mut()
        .and_then(|l| l.security_context.as_mut());
    changed | seccomp(sc, root)
}

/// The seccomp profile paths a pod's and a container's security contexts both have: the
/// deprecated `seccomp_profile_path` and the `seccomp` profile's `localhost_ref`.
trait SeccompPaths {
    fn paths(&mut self) -> (&mut String, Option<&mut String>);
}

macro_rules! seccomp_paths {
    ($($ty:ty),*) => {$(
        impl SeccompPaths for $ty {
            #[allow(deprecated)]
            fn paths(&mut self) -> (&mut String, Option<&mut String>) {
                let profile = self.seccomp.as_mut().map(|p| &mut p.localhost_ref);
                (&mut self.seccomp_profile_path, profile)
            }
        }
    )*};
}

seccomp_paths!(
    v1::LinuxSandboxSecurityContext,
    v1::LinuxContainerSecurityContext
);

fn seccomp(sc: Option<&mut impl SeccompPaths>, root: &Path) -> bool {
    let Some((path, localhost_ref)) = sc.map(SeccompPaths::paths) else {
        return false;
    };
    profile(path, root) | localhost_ref.is_some_and(|r| profile(r, root))
}

/// `value` flattened into one path component (`/` becomes `_`, `.` and `..` become `_`).
fn flatten(value: &str) -> String {
    let flat = value.replace('/', "_");
    if flat == "." || flat == ".." {
        "_".to_owned()
    } else {
        flat
    }
}

/// Keeps `value` if empty or an absolute path below `<root>/<kind>`; else moves it there.
fn confine(value: &mut String, root: &Path, kind: &str) -> bool {
    let dir = root.join(kind);
    let path = Path::new(value.as_str());
    if value.is_empty() || (path.is_absolute() && is_below(path, &dir)) {
        return false;
    }
    *value = dir.join(flatten(value)).display().to_string();
    true
}

/// Keeps `value` if it is relative without `..`; else flattens it.
fn relative(value: &mut String) -> bool {
    let path = Path::new(value.as_str());
    let escapes = path.is_absolute()
        || path
            .components()
            .any(|c| matches!(c, Component::ParentDir | Component::RootDir));
    if !escapes {
        return false;
    }
    *value = flatten(value);
    true
}

/// Keeps a device path that is harmless or does not exist; else `/dev/null`.
fn harmless_device(value: &mut String) -> bool {
    if value.is_empty()
        || HARMLESS_DEVICES.contains(&value.as_str())
        || std::fs::symlink_metadata(value.as_str()).is_err()
    {
        return false;
    }
    *value = "/dev/null".to_owned();
    true
}

/// Keeps a profile path (optionally `localhost/`-prefixed) naming nothing, or a regular
/// file outside /proc, /sys and /dev; else a missing file below the root.
fn profile(value: &mut String, root: &Path) -> bool {
    let path = Path::new(value.strip_prefix("localhost/").unwrap_or(value));
    let special = ["/proc", "/sys", "/dev"]
        .iter()
        .any(|p| path.starts_with(p));
    let harmless = match std::fs::metadata(path) {
        Err(_) => !special,
        Ok(meta) => meta.is_file() && !special,
    };
    if value.is_empty() || harmless {
        return false;
    }
    *value = root
        .join("profiles")
        .join(flatten(value))
        .display()
        .to_string();
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: &str = "/tmp/fuzz-root";

    fn run_pod(log_directory: &str) -> Vec<u8> {
        v1::RunPodSandboxRequest {
            config: Some(v1::PodSandboxConfig {
                log_directory: log_directory.into(),
                ..Default::default()
            }),
            runtime_handler: String::new(),
        }
        .encode_to_vec()
    }

    fn log_directory(bytes: &[u8]) -> String {
        v1::RunPodSandboxRequest::decode(bytes)
            .unwrap()
            .config
            .unwrap()
            .log_directory
    }

    #[test]
    fn paths_inside_the_root_are_kept_others_moved_in() {
        let root = Path::new(ROOT);
        let inside = run_pod("/tmp/fuzz-root/logs/a/b");
        let out = contain("RunPodSandbox", inside.clone(), root);
        assert!(!out.rewritten);
        assert_eq!(out.bytes, inside);
        for outside in [
            "/etc",
            "/tmp/fuzz-root/logs/../../x",
            "relative/dir",
            "/tmp/fuzz-rootx",
            "..",
        ] {
            let out = contain("RunPodSandbox", run_pod(outside), root);
            assert!(out.rewritten, "{outside}");
            let dir = log_directory(&out.bytes);
            assert!(is_below(Path::new(&dir), &root.join("logs")), "{dir}");
        }
    }

    #[test]
    fn container_paths_are_contained() {
        let request = v1::CreateContainerRequest {
            pod_sandbox_id: "p".into(),
            config: Some(v1::ContainerConfig {
                log_path: "../../etc/x.log".into(),
                mounts: vec![v1::Mount {
                    host_path: "/".into(),
                    ..Default::default()
                }],
                devices: vec![
                    v1::Device {
                        host_path: "/etc/passwd".into(),
                        ..Default::default()
                    },
                    v1::Device {
                        host_path: "/dev/null".into(),
                        ..Default::default()
                    },
                ],
                linux: Some(v1::LinuxContainerConfig {
                    security_context: Some(v1::LinuxContainerSecurityContext {
                        seccomp: Some(v1::SecurityProfile {
                            profile_type: 2,
                            localhost_ref: "/dev/zero".into(),
                        }),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            sandbox_config: None,
        };
        let out = contain("CreateContainer", request.encode_to_vec(), Path::new(ROOT));
        assert!(out.rewritten);
        let config = v1::CreateContainerRequest::decode(out.bytes.as_slice())
            .unwrap()
            .config
            .unwrap();
        assert_eq!(config.log_path, ".._.._etc_x.log");
        assert_eq!(config.mounts[0].host_path, "/tmp/fuzz-root/volumes/_");
        assert_eq!(config.devices[0].host_path, "/dev/null");
        assert_eq!(config.devices[1].host_path, "/dev/null");
        let seccomp = config
            .linux
            .unwrap()
            .security_context
            .unwrap()
            .seccomp
            .unwrap();
        assert_eq!(seccomp.localhost_ref, "/tmp/fuzz-root/profiles/_dev_zero");
    }

    #[test]
    fn undecodable_and_harmless_requests_pass_unchanged() {
        let garbage = vec![0xff, 0x01, 0x02];
        let out = contain("CreateContainer", garbage.clone(), Path::new(ROOT));
        assert!(!out.rewritten);
        assert_eq!(out.bytes, garbage);
        let version = v1::VersionRequest {
            version: "/etc".into(),
        }
        .encode_to_vec();
        assert!(!contain("Version", version, Path::new(ROOT)).rewritten);
    }
}
