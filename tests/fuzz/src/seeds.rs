//! Valid, realistic requests for every RPC, built the way kubelet and crictl build them,
//! with real IDs from the pool. They are sent as they are some of the time (keeping the
//! daemon busy with real pods and containers) and are the material the mutator starts from.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use cri_api::v1;
use prost::Message;

use crate::pool::Pool;
use crate::rng::Rng;

/// What seeds need to know.
#[derive(Debug)]
pub struct Ctx {
    /// The local registry (`host:port`), reachable inside the fuzzer's network namespace.
    pub registry: String,
    /// Where fuzzed host paths (volumes, log directories, checkpoints) are confined.
    pub host_root: PathBuf,
    /// What the daemon holds.
    pub pool: Mutex<Pool>,
}

/// Repository paths the test registry serves (tests/images/build.sh).
const REPOS: &[&str] = &[
    "e2e-test-images/busybox:1.29-2",
    "e2e-test-images/nginx:1.14-2",
    "pause:3.9",
    "k8s-staging-cri-tools/test-image-1:latest",
    "k8s-staging-cri-tools/test-image-tags:1",
    "k8s-staging-cri-tools/test-image-user-uid:latest",
];

/// The runnable image every container seed uses.
pub const BUSYBOX: &str = "e2e-test-images/busybox:1.29-2";

impl Ctx {
    /// The pool, locked.
    pub fn pool(&self) -> std::sync::MutexGuard<'_, Pool> {
        self.pool.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The busybox image on the local registry.
    pub fn busybox(&self) -> String {
        format!("{}/{BUSYBOX}", self.registry)
    }

    /// An image reference: mostly on the local registry, by its address or through the
    /// mirrored upstream names; sometimes missing, on a closed port, or pulled already.
    pub fn image_name(&self, rng: &mut Rng) -> String {
        match rng.below(10) {
            0..=3 => format!("{}/{}", self.registry, rng.pick(REPOS)),
            4 => format!("registry.k8s.io/{}", rng.pick(REPOS)),
            5 => "registry.k8s.io/pause:3.9".to_owned(),
            6 => format!("{}/berth-fuzz/missing:{}", self.registry, rng.hex(4)),
            7 => format!("127.0.0.1:1/closed/port:{}", rng.hex(4)),
            _ => {
                let pool = self.pool();
                if pool.images.is_empty() {
                    self.busybox()
                } else {
                    rng.pick(&pool.images).clone()
                }
            }
        }
    }

    /// A directory under the confined host root.
    pub fn host_dir(&self, kind: &str, rng: &mut Rng) -> String {
        self.host_root
            .join(kind)
            .join(rng.hex(8))
            .display()
            .to_string()
    }
}

fn kv(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn security_profile(rng: &mut Rng) -> Option<v1::SecurityProfile> {
    use v1::security_profile::ProfileType;
    let profile_type = *rng.pick(&[
        ProfileType::RuntimeDefault,
        ProfileType::RuntimeDefault,
        ProfileType::Unconfined,
    ]);
    rng.chance(1, 2).then(|| v1::SecurityProfile {
        profile_type: profile_type as i32,
        localhost_ref: String::new(),
    })
}

fn resources(rng: &mut Rng) -> v1::LinuxContainerResources {
    v1::LinuxContainerResources {
        cpu_period: *rng.pick(&[0, 100_000]),
        cpu_quota: *rng.pick(&[0, 50_000, 200_000]),
        cpu_shares: *rng.pick(&[0, 2, 102, 1024]),
        memory_limit_in_bytes: *rng.pick(&[0, 64 << 20, 256 << 20]),
        oom_score_adj: *rng.pick(&[0, 1000, -997, 999]),
        cpuset_cpus: rng.pick(&["", "0", "0-1"]).to_string(),
        cpuset_mems: rng.pick(&["", "0"]).to_string(),
        hugepage_limits: Vec::new(),
        unified: HashMap::new(),
        memory_swap_limit_in_bytes: 0,
    }
}

/// A pod config as kubelet sends it, with a unique name.
pub fn pod_config(ctx: &Ctx, rng: &mut Rng, tag: &str) -> v1::PodSandboxConfig {
    use v1::NamespaceMode;
    let uid = rng.hex(32);
    let name = format!("fuzz-{tag}-{}", rng.hex(6));
    let network = if rng.chance(1, 10) {
        NamespaceMode::Node
    } else {
        NamespaceMode::Pod
    };
    let pid = *rng.pick(&[NamespaceMode::Pod, NamespaceMode::Container]);
    let mut sysctls = HashMap::new();
    if network == NamespaceMode::Pod && rng.chance(1, 3) {
        sysctls.insert("net.ipv4.ip_unprivileged_port_start".into(), "0".into());
    }
    v1::PodSandboxConfig {
        metadata: Some(v1::PodSandboxMetadata {
            name: name.clone(),
            uid: uid.clone(),
            namespace: "berth-fuzz".into(),
            attempt: rng.below(3) as u32,
        }),
        hostname: if network == NamespaceMode::Node {
            String::new()
        } else {
            name.clone()
        },
        log_directory: ctx.host_dir("logs", rng),
        dns_config: rng.chance(1, 2).then(|| v1::DnsConfig {
            servers: vec!["10.96.0.10".into()],
            searches: vec![
                "berth-fuzz.svc.cluster.local".into(),
                "cluster.local".into(),
            ],
            options: vec!["ndots:5".into()],
        }),
        port_mappings: if rng.chance(1, 4) {
            vec![v1::PortMapping {
                protocol: v1::Protocol::Tcp as i32,
                container_port: 80,
                host_port: rng.range(30000, 32767) as i32,
                host_ip: String::new(),
            }]
        } else {
            Vec::new()
        },
        labels: kv(&[
            ("io.kubernetes.pod.name", &name),
            ("io.kubernetes.pod.namespace", "berth-fuzz"),
            ("io.kubernetes.pod.uid", &uid),
            ("app", "berth-fuzz"),
        ]),
        annotations: kv(&[("kubernetes.io/config.source", "api")]),
        linux: Some(v1::LinuxPodSandboxConfig {
            cgroup_parent: if rng.chance(1, 4) {
                String::new()
            } else {
                format!("/berth-fuzz/pod{uid}")
            },
            security_context: Some(v1::LinuxSandboxSecurityContext {
                namespace_options: Some(v1::NamespaceOption {
                    network: network as i32,
                    pid: pid as i32,
                    ipc: NamespaceMode::Pod as i32,
                    target_id: String::new(),
                    userns_options: None,
                }),
                seccomp: security_profile(rng),
                ..Default::default()
            }),
            sysctls,
            overhead: None,
            resources: rng.chance(1, 3).then(|| resources(rng)),
        }),
        windows: None,
    }
}

/// Commands a container runs: long-running ones and short ones, all harmless.
const CONTAINER_COMMANDS: &[&[&str]] = &[
    &["sleep", "3600"],
    &["sleep", "3600"],
    &["sh", "-c", "while true; do echo tick; sleep 2; done"],
    &["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"],
    &["true"],
    &["sh", "-c", "echo bye; exit 3"],
    &["cat", "/etc/berth-test-image"],
];

/// Commands ExecSync and Exec run inside a container, all harmless.
const EXEC_COMMANDS: &[&[&str]] = &[
    &["echo", "hello"],
    &["cat", "/etc/hostname"],
    &["sh", "-c", "exit 7"],
    &["ls", "/proc/self"],
    &["id"],
    &["sh", "-c", "echo to-stderr >&2"],
    &["sh", "-c", "head -c 300000 /dev/zero | tr '\\0' x"],
    &["sleep", "1"],
    &["no-such-command"],
];

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// A container config as kubelet sends it.
pub fn container_config(ctx: &Ctx, rng: &mut Rng) -> v1::ContainerConfig {
    let name = format!("c-{}", rng.hex(6));
    let command = strings(CONTAINER_COMMANDS[rng.below(CONTAINER_COMMANDS.len())]);
    let mut mounts = Vec::new();
    if rng.chance(1, 2) {
        mounts.push(v1::Mount {
            container_path: "/data".into(),
            host_path: ctx.host_dir("volumes", rng),
            readonly: rng.chance(1, 3),
            propagation: rng.below(3) as i32,
            ..Default::default()
        });
    }
    let mut devices = Vec::new();
    if rng.chance(1, 6) {
        devices.push(v1::Device {
            container_path: "/dev/fuzz-null".into(),
            host_path: "/dev/null".into(),
            permissions: "rwm".into(),
        });
    }
    v1::ContainerConfig {
        metadata: Some(v1::ContainerMetadata {
            name: name.clone(),
            attempt: rng.below(2) as u32,
        }),
        image: Some(v1::ImageSpec {
            image: ctx.busybox(),
            ..Default::default()
        }),
        command,
        args: Vec::new(),
        working_dir: rng.pick(&["", "/", "/tmp"]).to_string(),
        envs: vec![
            v1::KeyValue {
                key: "FUZZ".into(),
                value: b"1".to_vec(),
            },
            v1::KeyValue {
                key: "PATH".into(),
                value: b"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_vec(),
            },
        ],
        mounts,
        devices,
        labels: kv(&[("io.kubernetes.container.name", &name)]),
        annotations: kv(&[("io.kubernetes.container.restartCount", "0")]),
        log_path: format!("{name}/0.log"),
        stdin: rng.chance(1, 8),
        stdin_once: false,
        tty: rng.chance(1, 8),
        linux: Some(v1::LinuxContainerConfig {
            resources: Some(resources(rng)),
            security_context: Some(v1::LinuxContainerSecurityContext {
                capabilities: Some(v1::Capability {
                    add_capabilities: if rng.chance(1, 4) {
                        vec!["NET_ADMIN".into()]
                    } else {
                        Vec::new()
                    },
                    drop_capabilities: vec!["NET_RAW".into()],
                    add_ambient_capabilities: Vec::new(),
                }),
                run_as_user: rng.chance(1, 3).then(|| v1::Int64Value {
                    value: *rng.pick(&[0, 1000, 65534]),
                }),
                readonly_rootfs: rng.chance(1, 5),
                no_new_privs: rng.chance(1, 2),
                seccomp: security_profile(rng),
                ..Default::default()
            }),
        }),
        windows: None,
        cdi_devices: Vec::new(),
        stop_signal: *rng.pick(&[0, 23, 10]),
    }
}

fn pod_filter(ctx: &Ctx, rng: &mut Rng) -> Option<v1::PodSandboxFilter> {
    let id = ctx.pool().pod_id(rng);
    match rng.below(4) {
        0 => None,
        1 => Some(v1::PodSandboxFilter {
            id,
            ..Default::default()
        }),
        2 => Some(v1::PodSandboxFilter {
            state: Some(v1::PodSandboxStateValue {
                state: rng.below(2) as i32,
            }),
            ..Default::default()
        }),
        _ => Some(v1::PodSandboxFilter {
            label_selector: kv(&[("app", "berth-fuzz")]),
            ..Default::default()
        }),
    }
}

fn container_filter(ctx: &Ctx, rng: &mut Rng) -> Option<v1::ContainerFilter> {
    let pool = ctx.pool();
    match rng.below(5) {
        0 => None,
        1 => Some(v1::ContainerFilter {
            id: pool.container_id(rng, None),
            ..Default::default()
        }),
        2 => Some(v1::ContainerFilter {
            pod_sandbox_id: pool.pod_id(rng),
            ..Default::default()
        }),
        3 => Some(v1::ContainerFilter {
            state: Some(v1::ContainerStateValue {
                state: rng.below(4) as i32,
            }),
            ..Default::default()
        }),
        _ => Some(v1::ContainerFilter {
            label_selector: kv(&[("io.kubernetes.container.name", "c")]),
            ..Default::default()
        }),
    }
}

fn stats_filter(ctx: &Ctx, rng: &mut Rng) -> Option<v1::ContainerStatsFilter> {
    let pool = ctx.pool();
    match rng.below(3) {
        0 => None,
        1 => Some(v1::ContainerStatsFilter {
            id: pool.container_id(rng, Some(true)),
            ..Default::default()
        }),
        _ => Some(v1::ContainerStatsFilter {
            pod_sandbox_id: pool.pod_id(rng),
            ..Default::default()
        }),
    }
}

fn pod_stats_filter(ctx: &Ctx, rng: &mut Rng) -> Option<v1::PodSandboxStatsFilter> {
    rng.chance(1, 2).then(|| v1::PodSandboxStatsFilter {
        id: ctx.pool().pod_id(rng),
        label_selector: HashMap::new(),
    })
}

fn image_spec(image: String) -> Option<v1::ImageSpec> {
    Some(v1::ImageSpec {
        image,
        ..Default::default()
    })
}

fn auth(rng: &mut Rng) -> Option<v1::AuthConfig> {
    match rng.below(6) {
        0 => Some(v1::AuthConfig {
            username: "fuzz".into(),
            password: "secret".into(),
            ..Default::default()
        }),
        1 => Some(v1::AuthConfig {
            auth: "ZnV6ejpzZWNyZXQ=".into(),
            ..Default::default()
        }),
        2 => Some(v1::AuthConfig {
            registry_token: "token".into(),
            ..Default::default()
        }),
        3 => Some(v1::AuthConfig {
            identity_token: "identity".into(),
            server_address: "127.0.0.1".into(),
            ..Default::default()
        }),
        _ => None,
    }
}

/// A valid request of RPC `rpc` (by its name), encoded deterministically.
pub fn seed(rpc: &str, ctx: &Ctx, rng: &mut Rng) -> Vec<u8> {
    crate::wire::canonical(&seed_message(rpc, ctx, rng))
}

fn seed_message(rpc: &str, ctx: &Ctx, rng: &mut Rng) -> Vec<u8> {
    let pod_id = |rng: &mut Rng| ctx.pool().pod_id(rng);
    let container = |rng: &mut Rng, started| ctx.pool().container_id(rng, started);
    match rpc {
        "Version" => v1::VersionRequest {
            version: rng.pick(&["v1", "0.1.0", ""]).to_string(),
        }
        .encode_to_vec(),
        "RunPodSandbox" => v1::RunPodSandboxRequest {
            config: Some(pod_config(ctx, rng, "pod")),
            runtime_handler: if rng.chance(1, 10) {
                "runc".into()
            } else {
                String::new()
            },
        }
        .encode_to_vec(),
        "StopPodSandbox" => v1::StopPodSandboxRequest {
            pod_sandbox_id: pod_id(rng),
        }
        .encode_to_vec(),
        "RemovePodSandbox" => v1::RemovePodSandboxRequest {
            pod_sandbox_id: pod_id(rng),
        }
        .encode_to_vec(),
        "PodSandboxStatus" => v1::PodSandboxStatusRequest {
            pod_sandbox_id: pod_id(rng),
            verbose: rng.chance(1, 2),
        }
        .encode_to_vec(),
        "ListPodSandbox" => v1::ListPodSandboxRequest {
            filter: pod_filter(ctx, rng),
        }
        .encode_to_vec(),
        "StreamPodSandboxes" => v1::StreamPodSandboxesRequest {
            filter: pod_filter(ctx, rng),
        }
        .encode_to_vec(),
        "CreateContainer" => {
            let pod = ctx.pool().pod(rng);
            let (id, sandbox_config) = match pod {
                Some(pod) => (pod.id, Some(pod.config)),
                None => (rng.hex(64), Some(pod_config(ctx, rng, "orphan"))),
            };
            v1::CreateContainerRequest {
                pod_sandbox_id: id,
                config: Some(container_config(ctx, rng)),
                sandbox_config,
            }
            .encode_to_vec()
        }
        "StartContainer" => v1::StartContainerRequest {
            container_id: container(rng, Some(false)),
        }
        .encode_to_vec(),
        "StopContainer" => v1::StopContainerRequest {
            container_id: container(rng, Some(true)),
            timeout: *rng.pick(&[0, 1, 2]),
        }
        .encode_to_vec(),
        "RemoveContainer" => v1::RemoveContainerRequest {
            container_id: container(rng, None),
        }
        .encode_to_vec(),
        "ListContainers" => v1::ListContainersRequest {
            filter: container_filter(ctx, rng),
        }
        .encode_to_vec(),
        "StreamContainers" => v1::StreamContainersRequest {
            filter: container_filter(ctx, rng),
        }
        .encode_to_vec(),
        "ContainerStatus" => v1::ContainerStatusRequest {
            container_id: container(rng, None),
            verbose: rng.chance(1, 2),
        }
        .encode_to_vec(),
        "UpdateContainerResources" => v1::UpdateContainerResourcesRequest {
            container_id: container(rng, Some(true)),
            linux: Some(resources(rng)),
            windows: None,
            annotations: HashMap::new(),
        }
        .encode_to_vec(),
        "ReopenContainerLog" => v1::ReopenContainerLogRequest {
            container_id: container(rng, Some(true)),
        }
        .encode_to_vec(),
        "ExecSync" => v1::ExecSyncRequest {
            container_id: container(rng, Some(true)),
            cmd: strings(EXEC_COMMANDS[rng.below(EXEC_COMMANDS.len())]),
            timeout: *rng.pick(&[0, 2, 5]),
        }
        .encode_to_vec(),
        "Exec" => {
            let tty = rng.chance(1, 3);
            v1::ExecRequest {
                container_id: container(rng, Some(true)),
                cmd: strings(EXEC_COMMANDS[rng.below(EXEC_COMMANDS.len())]),
                tty,
                stdin: rng.chance(1, 2),
                stdout: true,
                stderr: !tty,
            }
            .encode_to_vec()
        }
        "Attach" => v1::AttachRequest {
            container_id: container(rng, Some(true)),
            stdin: rng.chance(1, 2),
            tty: false,
            stdout: true,
            stderr: true,
        }
        .encode_to_vec(),
        "PortForward" => v1::PortForwardRequest {
            pod_sandbox_id: pod_id(rng),
            port: vec![*rng.pick(&[80, 8080, 12003])],
        }
        .encode_to_vec(),
        "ContainerStats" => v1::ContainerStatsRequest {
            container_id: container(rng, Some(true)),
        }
        .encode_to_vec(),
        "ListContainerStats" => v1::ListContainerStatsRequest {
            filter: stats_filter(ctx, rng),
        }
        .encode_to_vec(),
        "StreamContainerStats" => v1::StreamContainerStatsRequest {
            filter: stats_filter(ctx, rng),
        }
        .encode_to_vec(),
        "PodSandboxStats" => v1::PodSandboxStatsRequest {
            pod_sandbox_id: pod_id(rng),
        }
        .encode_to_vec(),
        "ListPodSandboxStats" => v1::ListPodSandboxStatsRequest {
            filter: pod_stats_filter(ctx, rng),
        }
        .encode_to_vec(),
        "StreamPodSandboxStats" => v1::StreamPodSandboxStatsRequest {
            filter: pod_stats_filter(ctx, rng),
        }
        .encode_to_vec(),
        "UpdateRuntimeConfig" => v1::UpdateRuntimeConfigRequest {
            runtime_config: Some(v1::RuntimeConfig {
                network_config: Some(v1::NetworkConfig {
                    pod_cidr: rng.pick(&["", "10.244.0.0/24", "10.88.0.0/16"]).to_string(),
                }),
            }),
        }
        .encode_to_vec(),
        "Status" => v1::StatusRequest {
            verbose: rng.chance(1, 2),
        }
        .encode_to_vec(),
        "CheckpointContainer" => v1::CheckpointContainerRequest {
            container_id: container(rng, Some(true)),
            location: format!("{}/cp.tar", ctx.host_dir("checkpoints", rng)),
            timeout: 10,
        }
        .encode_to_vec(),
        "CheckpointPod" => v1::CheckpointPodRequest {
            pod_sandbox_id: pod_id(rng),
            output_path: ctx.host_dir("checkpoints", rng),
            container_ids: vec![container(rng, None)],
            options: HashMap::new(),
        }
        .encode_to_vec(),
        "RestorePod" => v1::RestorePodRequest {
            checkpoint_path: ctx.host_dir("checkpoints", rng),
            config: Some(pod_config(ctx, rng, "restored")),
            runtime_handler: String::new(),
            options: HashMap::new(),
            container_configs: vec![container_config(ctx, rng)],
        }
        .encode_to_vec(),
        "GetContainerEvents" => v1::GetEventsRequest {}.encode_to_vec(),
        "ListMetricDescriptors" => v1::ListMetricDescriptorsRequest {}.encode_to_vec(),
        "ListPodSandboxMetrics" => v1::ListPodSandboxMetricsRequest {}.encode_to_vec(),
        "StreamPodSandboxMetrics" => v1::StreamPodSandboxMetricsRequest {}.encode_to_vec(),
        "RuntimeConfig" => v1::RuntimeConfigRequest {}.encode_to_vec(),
        "UpdatePodSandboxResources" => v1::UpdatePodSandboxResourcesRequest {
            pod_sandbox_id: pod_id(rng),
            overhead: rng.chance(1, 2).then(|| resources(rng)),
            resources: Some(resources(rng)),
        }
        .encode_to_vec(),
        "ListImages" => v1::ListImagesRequest {
            filter: rng.chance(1, 2).then(|| v1::ImageFilter {
                image: image_spec(ctx.image_name(rng)),
            }),
        }
        .encode_to_vec(),
        "StreamImages" => v1::StreamImagesRequest {
            filter: rng.chance(1, 2).then(|| v1::ImageFilter {
                image: image_spec(ctx.image_name(rng)),
            }),
        }
        .encode_to_vec(),
        "ImageStatus" => v1::ImageStatusRequest {
            image: image_spec(ctx.image_name(rng)),
            verbose: rng.chance(1, 2),
        }
        .encode_to_vec(),
        "PullImage" => v1::PullImageRequest {
            image: image_spec(ctx.image_name(rng)),
            auth: auth(rng),
            sandbox_config: rng.chance(1, 4).then(|| pod_config(ctx, rng, "pull")),
        }
        .encode_to_vec(),
        "RemoveImage" => v1::RemoveImageRequest {
            image: image_spec(ctx.image_name(rng)),
        }
        .encode_to_vec(),
        "ImageFsInfo" => v1::ImageFsInfoRequest {}.encode_to_vec(),
        other => unreachable!("no seed for RPC {other}"),
    }
}

/// Whether `path` lies below `root` with no `..` component.
pub fn is_below(path: &Path, root: &Path) -> bool {
    path.starts_with(root)
        && !path
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
}
