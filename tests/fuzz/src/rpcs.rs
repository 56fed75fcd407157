//! The 43 RPCs of `runtime.v1` RuntimeService and ImageService: their paths, whether they
//! stream, how often the fuzzer picks them, their request and response types (to tell a
//! request the server cannot decode from one it must reject, and to learn IDs from
//! replies).

use std::time::Duration;

use cri_api::v1;
use prost::Message;

use crate::pool::Pool;
use crate::rng::Rng;

/// One RPC.
#[derive(Debug)]
pub struct Rpc {
    /// Its name, as in the proto.
    pub name: &'static str,
    /// `RuntimeService` or `ImageService`.
    pub service: &'static str,
    /// Server-streaming.
    pub streaming: bool,
    /// Relative frequency.
    pub weight: u32,
}

impl Rpc {
    /// The HTTP/2 path.
    pub fn path(&self) -> String {
        format!("/runtime.v1.{}/{}", self.service, self.name)
    }

    /// The deadline sent with the request (the server answers DEADLINE_EXCEEDED or
    /// CANCELLED after it).
    pub fn deadline(&self) -> Duration {
        match self.name {
            // Pulls, unpacks, CNI plugins and runc on a loaded debug build.
            "RunPodSandbox" | "CreateContainer" | "PullImage" => Duration::from_secs(90),
            "StartContainer" => Duration::from_secs(60),
            _ => Duration::from_secs(30),
        }
    }

    /// Whether the request bytes decode as this RPC's request type.
    pub fn request_decodes(&self, bytes: &[u8]) -> bool {
        request_decodes(self.name, bytes)
    }

    /// Whether the response bytes decode as this RPC's response type.
    pub fn response_decodes(&self, bytes: &[u8]) -> bool {
        response_decodes(self.name, bytes)
    }
}

macro_rules! rpcs {
    ($($name:ident: $svc:ident, $req:ident, $resp:ident, $stream:literal, $weight:literal;)*) => {
        /// Every RPC of both services.
        pub const RPCS: &[Rpc] = &[$(Rpc {
            name: stringify!($name),
            service: stringify!($svc),
            streaming: $stream,
            weight: $weight,
        }),*];

        fn request_decodes(name: &str, bytes: &[u8]) -> bool {
            match name {
                $(stringify!($name) => v1::$req::decode(bytes).is_ok(),)*
                _ => false,
            }
        }

        /// Whether `a` and `b` decode to equal requests of RPC `name` (maps compare
        /// regardless of their encoding order); `None` when either does not decode.
        #[cfg(test)]
        pub fn requests_equal(name: &str, a: &[u8], b: &[u8]) -> Option<bool> {
            match name {
                $(stringify!($name) => Some(v1::$req::decode(a).ok()? == v1::$req::decode(b).ok()?),)*
                _ => None,
            }
        }

        fn response_decodes(name: &str, bytes: &[u8]) -> bool {
            match name {
                $(stringify!($name) => v1::$resp::decode(bytes).is_ok(),)*
                _ => false,
            }
        }
    };
}

rpcs! {
    Version: RuntimeService, VersionRequest, VersionResponse, false, 3;
    RunPodSandbox: RuntimeService, RunPodSandboxRequest, RunPodSandboxResponse, false, 6;
    StopPodSandbox: RuntimeService, StopPodSandboxRequest, StopPodSandboxResponse, false, 3;
    RemovePodSandbox: RuntimeService, RemovePodSandboxRequest, RemovePodSandboxResponse, false, 3;
    PodSandboxStatus: RuntimeService, PodSandboxStatusRequest, PodSandboxStatusResponse, false, 4;
    ListPodSandbox: RuntimeService, ListPodSandboxRequest, ListPodSandboxResponse, false, 4;
    StreamPodSandboxes: RuntimeService, StreamPodSandboxesRequest, StreamPodSandboxesResponse, true, 2;
    CreateContainer: RuntimeService, CreateContainerRequest, CreateContainerResponse, false, 8;
    StartContainer: RuntimeService, StartContainerRequest, StartContainerResponse, false, 4;
    StopContainer: RuntimeService, StopContainerRequest, StopContainerResponse, false, 3;
    RemoveContainer: RuntimeService, RemoveContainerRequest, RemoveContainerResponse, false, 3;
    ListContainers: RuntimeService, ListContainersRequest, ListContainersResponse, false, 4;
    StreamContainers: RuntimeService, StreamContainersRequest, StreamContainersResponse, true, 2;
    ContainerStatus: RuntimeService, ContainerStatusRequest, ContainerStatusResponse, false, 4;
    UpdateContainerResources: RuntimeService, UpdateContainerResourcesRequest, UpdateContainerResourcesResponse, false, 4;
    ReopenContainerLog: RuntimeService, ReopenContainerLogRequest, ReopenContainerLogResponse, false, 2;
    ExecSync: RuntimeService, ExecSyncRequest, ExecSyncResponse, false, 5;
    Exec: RuntimeService, ExecRequest, ExecResponse, false, 5;
    Attach: RuntimeService, AttachRequest, AttachResponse, false, 4;
    PortForward: RuntimeService, PortForwardRequest, PortForwardResponse, false, 4;
    ContainerStats: RuntimeService, ContainerStatsRequest, ContainerStatsResponse, false, 3;
    ListContainerStats: RuntimeService, ListContainerStatsRequest, ListContainerStatsResponse, false, 3;
    StreamContainerStats: RuntimeService, StreamContainerStatsRequest, StreamContainerStatsResponse, true, 2;
    PodSandboxStats: RuntimeService, PodSandboxStatsRequest, PodSandboxStatsResponse, false, 3;
    ListPodSandboxStats: RuntimeService, ListPodSandboxStatsRequest, ListPodSandboxStatsResponse, false, 3;
    StreamPodSandboxStats: RuntimeService, StreamPodSandboxStatsRequest, StreamPodSandboxStatsResponse, true, 2;
    UpdateRuntimeConfig: RuntimeService, UpdateRuntimeConfigRequest, UpdateRuntimeConfigResponse, false, 2;
    Status: RuntimeService, StatusRequest, StatusResponse, false, 2;
    CheckpointContainer: RuntimeService, CheckpointContainerRequest, CheckpointContainerResponse, false, 2;
    CheckpointPod: RuntimeService, CheckpointPodRequest, CheckpointPodResponse, false, 2;
    RestorePod: RuntimeService, RestorePodRequest, RestorePodResponse, false, 2;
    GetContainerEvents: RuntimeService, GetEventsRequest, ContainerEventResponse, true, 2;
    ListMetricDescriptors: RuntimeService, ListMetricDescriptorsRequest, ListMetricDescriptorsResponse, false, 2;
    ListPodSandboxMetrics: RuntimeService, ListPodSandboxMetricsRequest, ListPodSandboxMetricsResponse, false, 2;
    StreamPodSandboxMetrics: RuntimeService, StreamPodSandboxMetricsRequest, StreamPodSandboxMetricsResponse, true, 2;
    RuntimeConfig: RuntimeService, RuntimeConfigRequest, RuntimeConfigResponse, false, 2;
    UpdatePodSandboxResources: RuntimeService, UpdatePodSandboxResourcesRequest, UpdatePodSandboxResourcesResponse, false, 3;
    ListImages: ImageService, ListImagesRequest, ListImagesResponse, false, 3;
    StreamImages: ImageService, StreamImagesRequest, StreamImagesResponse, true, 2;
    ImageStatus: ImageService, ImageStatusRequest, ImageStatusResponse, false, 4;
    PullImage: ImageService, PullImageRequest, PullImageResponse, false, 6;
    RemoveImage: ImageService, RemoveImageRequest, RemoveImageResponse, false, 2;
    ImageFsInfo: ImageService, ImageFsInfoRequest, ImageFsInfoResponse, false, 2;
}

/// The RPC named `name`.
pub fn by_name(name: &str) -> Option<&'static Rpc> {
    RPCS.iter().find(|r| r.name == name)
}

/// An RPC chosen by weight.
pub fn choose(rng: &mut Rng) -> &'static Rpc {
    let total: u32 = RPCS.iter().map(|r| r.weight).sum();
    let mut at = rng.below(total as usize) as u32;
    for rpc in RPCS {
        if at < rpc.weight {
            return rpc;
        }
        at -= rpc.weight;
    }
    &RPCS[0]
}

/// Learns from a successful reply: new pods, containers and images, and removed ones.
pub fn harvest(rpc: &Rpc, request: &[u8], response: &[u8], pool: &mut Pool) {
    match rpc.name {
        "RunPodSandbox" => {
            let (Ok(req), Ok(resp)) = (
                v1::RunPodSandboxRequest::decode(request),
                v1::RunPodSandboxResponse::decode(response),
            ) else {
                return;
            };
            pool.add_pod(resp.pod_sandbox_id, req.config.unwrap_or_default(), false);
        }
        "CreateContainer" => {
            let (Ok(req), Ok(resp)) = (
                v1::CreateContainerRequest::decode(request),
                v1::CreateContainerResponse::decode(response),
            ) else {
                return;
            };
            // The request may name the pod by a prefix: resolve it as the daemon did.
            let pod = pool
                .pods
                .iter()
                .find(|p| p.id.starts_with(&req.pod_sandbox_id))
                .map(|p| p.id.clone())
                .unwrap_or(req.pod_sandbox_id);
            pool.add_container(resp.container_id, pod, false);
        }
        "StartContainer" => {
            if let Ok(req) = v1::StartContainerRequest::decode(request) {
                pool.mark_started(&req.container_id);
            }
        }
        "RemoveContainer" => {
            if let Ok(req) = v1::RemoveContainerRequest::decode(request) {
                pool.remove_container(&req.container_id);
            }
        }
        "RemovePodSandbox" => {
            if let Ok(req) = v1::RemovePodSandboxRequest::decode(request) {
                pool.remove_pod(&req.pod_sandbox_id);
            }
        }
        "PullImage" => {
            if let Ok(resp) = v1::PullImageResponse::decode(response) {
                pool.add_image(resp.image_ref);
            }
        }
        "ListImages" => {
            if let Ok(resp) = v1::ListImagesResponse::decode(response) {
                for image in resp.images {
                    pool.add_image(image.id);
                    for tag in image.repo_tags {
                        pool.add_image(tag);
                    }
                }
            }
        }
        "ListContainers" => {
            if let Ok(resp) = v1::ListContainersResponse::decode(response) {
                for c in resp.containers {
                    pool.all_ids.insert(c.id);
                }
            }
        }
        "ListPodSandbox" => {
            if let Ok(resp) = v1::ListPodSandboxResponse::decode(response) {
                for p in resp.items {
                    pool.all_ids.insert(p.id);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_43_rpcs_with_distinct_names_and_valid_seeds() {
        assert_eq!(RPCS.len(), 43);
        let mut names: Vec<&str> = RPCS.iter().map(|r| r.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), 43);
        let ctx = crate::seeds::Ctx {
            registry: "127.0.0.1:5000".into(),
            host_root: "/tmp/fuzz-root".into(),
            pool: Default::default(),
        };
        for rpc in RPCS {
            for stream in 0..20 {
                let bytes = crate::seeds::seed(rpc.name, &ctx, &mut Rng::new(9, stream));
                assert!(rpc.request_decodes(&bytes), "{}", rpc.name);
                // Deterministic (maps are built anew, with another hash order, each time).
                let again = crate::seeds::seed(rpc.name, &ctx, &mut Rng::new(9, stream));
                assert_eq!(bytes, again, "{} seed is not deterministic", rpc.name);
                // Seeds are already contained: nothing to rewrite.
                let out = crate::contain::contain(rpc.name, bytes, &ctx.host_root);
                assert!(!out.rewritten, "{} seed needed containment", rpc.name);
            }
        }
    }

    #[test]
    fn the_proto_lists_exactly_these_rpcs() {
        let proto = include_str!("../../../proto/runtime/v1/api.proto");
        let mut in_proto: Vec<&str> = proto
            .lines()
            .filter_map(|l| l.trim().strip_prefix("rpc "))
            .filter_map(|l| l.split('(').next())
            .collect();
        in_proto.sort();
        let mut ours: Vec<&str> = RPCS.iter().map(|r| r.name).collect();
        ours.sort();
        assert_eq!(in_proto, ours);
        for rpc in RPCS {
            let streams = proto.contains(&format!("rpc {}(", rpc.name))
                && proto
                    .lines()
                    .find(|l| l.trim().starts_with(&format!("rpc {}(", rpc.name)))
                    .is_some_and(|l| l.contains("returns (stream"));
            assert_eq!(streams, rpc.streaming, "{}", rpc.name);
        }
    }

    #[test]
    fn weighted_choice_reaches_every_rpc() {
        let mut rng = Rng::new(1, 2);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..20_000 {
            seen.insert(choose(&mut rng).name);
        }
        assert_eq!(seen.len(), 43);
    }
}
