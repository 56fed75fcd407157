//! `runtime.v1.RuntimeService`. Built RPCs have a file each; the others answer
//! `Unimplemented` naming the RPC until their area lands.

mod attach;
mod container_stats;
mod container_status;
mod create_container;
mod exec;
mod exec_sync;
mod get_container_events;
mod list_container_stats;
mod list_containers;
mod list_metric_descriptors;
mod list_pod_sandbox;
mod list_pod_sandbox_metrics;
mod list_pod_sandbox_stats;
pub(crate) mod list_streams;
mod pod_sandbox_stats;
mod pod_sandbox_status;
mod port_forward;
mod remove_container;
mod remove_pod_sandbox;
mod reopen_container_log;
mod run_pod_sandbox;
mod runtime_config;
mod start_container;
mod status;
mod stop_container;
mod stop_pod_sandbox;
mod update_container_resources;
mod update_pod_sandbox_resources;
pub(crate) mod update_runtime_config;
mod version;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use cri_api::v1;
use cri_api::RuntimeService;
use tonic::codegen::tokio_stream::Stream;
use tonic::{Request, Response, Status};

use crate::daemon::Daemon;
use crate::instrument::{instrument, unbuilt};

/// A server-streaming response.
pub type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// berth's RuntimeService.
#[derive(Debug, Clone)]
pub struct CriRuntimeService {
    daemon: Arc<Daemon>,
}

impl CriRuntimeService {
    /// A RuntimeService over `daemon`.
    pub fn new(daemon: Arc<Daemon>) -> Self {
        CriRuntimeService { daemon }
    }
}

/// A boxed RPC future, as `#[tonic::async_trait]` expects trait methods to return.
type RpcFuture<'a, T> = Pin<Box<dyn Future<Output = Result<Response<T>, Status>> + Send + 'a>>;

/// Trait methods for RPCs not built yet: each is instrumented (so bad IDs are still
/// rejected with InvalidArgument) and then answers `Unimplemented` with the RPC's name.
/// Written in the desugared form because `async_trait` does not see into macro output.
macro_rules! unbuilt_rpcs {
    ($($method:ident($name:literal, $req:ident) -> $resp:ty;)*) => {
        $(fn $method<'life0, 'async_trait>(
            &'life0 self,
            request: Request<v1::$req>,
        ) -> RpcFuture<'async_trait, $resp>
        where
            'life0: 'async_trait,
            Self: 'async_trait,
        {
            Box::pin(instrument($name, request, |req| unbuilt($name, req)))
        })*
    };
}

#[tonic::async_trait]
impl RuntimeService for CriRuntimeService {
    type StreamPodSandboxesStream = BoxStream<v1::StreamPodSandboxesResponse>;
    type StreamContainersStream = BoxStream<v1::StreamContainersResponse>;
    type StreamContainerStatsStream = BoxStream<v1::StreamContainerStatsResponse>;
    type StreamPodSandboxStatsStream = BoxStream<v1::StreamPodSandboxStatsResponse>;
    type StreamPodSandboxMetricsStream = BoxStream<v1::StreamPodSandboxMetricsResponse>;
    type GetContainerEventsStream = BoxStream<v1::ContainerEventResponse>;

    async fn version(
        &self,
        request: Request<v1::VersionRequest>,
    ) -> Result<Response<v1::VersionResponse>, Status> {
        instrument("Version", request, version::version).await
    }

    async fn status(
        &self,
        request: Request<v1::StatusRequest>,
    ) -> Result<Response<v1::StatusResponse>, Status> {
        let daemon = self.daemon.clone();
        instrument("Status", request, |req| status::status(daemon, req)).await
    }

    async fn runtime_config(
        &self,
        request: Request<v1::RuntimeConfigRequest>,
    ) -> Result<Response<v1::RuntimeConfigResponse>, Status> {
        let daemon = &self.daemon;
        instrument("RuntimeConfig", request, |req| {
            runtime_config::runtime_config(daemon, req)
        })
        .await
    }

    async fn run_pod_sandbox(
        &self,
        request: Request<v1::RunPodSandboxRequest>,
    ) -> Result<Response<v1::RunPodSandboxResponse>, Status> {
        let daemon = self.daemon.clone();
        instrument("RunPodSandbox", request, |req| {
            run_pod_sandbox::run_pod_sandbox(daemon, req)
        })
        .await
    }

    async fn stop_pod_sandbox(
        &self,
        request: Request<v1::StopPodSandboxRequest>,
    ) -> Result<Response<v1::StopPodSandboxResponse>, Status> {
        let daemon = self.daemon.clone();
        instrument("StopPodSandbox", request, |req| {
            stop_pod_sandbox::stop_pod_sandbox(daemon, req)
        })
        .await
    }

    async fn remove_pod_sandbox(
        &self,
        request: Request<v1::RemovePodSandboxRequest>,
    ) -> Result<Response<v1::RemovePodSandboxResponse>, Status> {
        let daemon = self.daemon.clone();
        instrument("RemovePodSandbox", request, |req| {
            remove_pod_sandbox::remove_pod_sandbox(daemon, req)
        })
        .await
    }

    async fn pod_sandbox_status(
        &self,
        request: Request<v1::PodSandboxStatusRequest>,
    ) -> Result<Response<v1::PodSandboxStatusResponse>, Status> {
        let daemon = self.daemon.clone();
        instrument("PodSandboxStatus", request, |req| {
            pod_sandbox_status::pod_sandbox_status(daemon, req)
        })
        .await
    }

    async fn list_pod_sandbox(
        &self,
        request: Request<v1::ListPodSandboxRequest>,
    ) -> Result<Response<v1::ListPodSandboxResponse>, Status> {
        let daemon = self.daemon.clone();
        instrument("ListPodSandbox", request, |req| {
            list_pod_sandbox::list_pod_sandbox(daemon, req)
        })
        .await
    }

    async fn create_container(
        &self,
        request: Request<v1::CreateContainerRequest>,
    ) -> Result<Response<v1::CreateContainerResponse>, Status> {
        let daemon = self.daemon.clone();
        instrument("CreateContainer", request, |req| {
            create_container::create_container(daemon, req)
        })
        .await
    }

    async fn start_container(
        &self,
        request: Request<v1::StartContainerRequest>,
    ) -> Result<Response<v1::StartContainerResponse>, Status> {
        let daemon = self.daemon.clone();
        instrument("StartContainer", request, |req| {
            start_container::start_container(daemon, req)
        })
        .await
    }

    async fn stop_container(
        &self,
        request: Request<v1::StopContainerRequest>,
    ) -> Result<Response<v1::StopContainerResponse>, Status> {
        let daemon = self.daemon.clone();
        instrument("StopContainer", request, |req| {
            stop_container::stop_container(daemon, req)
        })
        .await
    }

    async fn remove_container(
        &self,
        request: Request<v1::RemoveContainerRequest>,
    ) -> Result<Response<v1::RemoveContainerResponse>, Status> {
        let daemon = self.daemon.clone();
        instrument("RemoveContainer", request, |req| {
            remove_container::remove_container(daemon, req)
        })
        .await
    }

    async fn container_status(
        &self,
        request: Request<v1::ContainerStatusRequest>,
    ) -> Result<Response<v1::ContainerStatusResponse>, Status> {
        let daemon = self.daemon.clone();
        instrument("ContainerStatus", request, |req| {
            container_status::container_status(daemon, req)
        })
        .await
    }

    async fn list_containers(
        &self,
        request: Request<v1::ListContainersRequest>,
    ) -> Result<Response<v1::ListContainersResponse>, Status> {
        let daemon = self.daemon.clone();
        instrument("ListContainers", request, |req| {
            list_containers::list_containers(daemon, req)
        })
        .await
    }

    async fn exec_sync(
        &self,
        request: Request<v1::ExecSyncRequest>,
    ) -> Result<Response<v1::ExecSyncResponse>, Status> {
        let daemon = self.daemon.clone();
        instrument("ExecSync", request, |req| exec_sync::exec_sync(daemon, req)).await
    }

    async fn reopen_container_log(
        &self,
        request: Request<v1::ReopenContainerLogRequest>,
    ) -> Result<Response<v1::ReopenContainerLogResponse>, Status> {
        let daemon = self.daemon.clone();
        instrument("ReopenContainerLog", request, |req| {
            reopen_container_log::reopen_container_log(daemon, req)
        })
        .await
    }

    async fn container_stats(
        &self,
        request: Request<v1::ContainerStatsRequest>,
    ) -> Result<Response<v1::ContainerStatsResponse>, Status> {
        let daemon = self.daemon.clone();
        instrument("ContainerStats", request, |req| {
            container_stats::container_stats(daemon, req)
        })
        .await
    }

    async fn list_container_stats(
        &self,
        request: Request<v1::ListContainerStatsRequest>,
    ) -> Result<Response<v1::ListContainerStatsResponse>, Status> {
        let daemon = self.daemon.clone();
        instrument("ListContainerStats", request, |req| {
            list_container_stats::list_container_stats(daemon, req)
        })
        .await
    }

    async fn update_container_resources(
        &self,
        request: Request<v1::UpdateContainerResourcesRequest>,
    ) -> Result<Response<v1::UpdateContainerResourcesResponse>, Status> {
        let daemon = self.daemon.clone();
        instrument("UpdateContainerResources", request, |req| {
            update_container_resources::update_container_resources(daemon, req)
        })
        .await
    }

    async fn exec(
        &self,
        request: Request<v1::ExecRequest>,
    ) -> Result<Response<v1::ExecResponse>, Status> {
        let daemon = self.daemon.clone();
        instrument("Exec", request, |req| exec::exec(daemon, req)).await
    }

    async fn attach(
        &self,
        request: Request<v1::AttachRequest>,
    ) -> Result<Response<v1::AttachResponse>, Status> {
        let daemon = self.daemon.clone();
        instrument("Attach", request, |req| attach::attach(daemon, req)).await
    }

    async fn port_forward(
        &self,
        request: Request<v1::PortForwardRequest>,
    ) -> Result<Response<v1::PortForwardResponse>, Status> {
        let daemon = self.daemon.clone();
        instrument("PortForward", request, |req| {
            port_forward::port_forward(daemon, req)
        })
        .await
    }

    async fn stream_pod_sandboxes(
        &self,
        request: Request<v1::StreamPodSandboxesRequest>,
    ) -> Result<Response<Self::StreamPodSandboxesStream>, Status> {
        let daemon = self.daemon.clone();
        instrument("StreamPodSandboxes", request, |req| async move {
            let list = list_pod_sandbox::list_pod_sandbox(
                daemon,
                v1::ListPodSandboxRequest { filter: req.filter },
            )
            .await?;
            Ok(list_streams::paged(list.items, list_streams::pod_sandboxes))
        })
        .await
    }

    async fn stream_containers(
        &self,
        request: Request<v1::StreamContainersRequest>,
    ) -> Result<Response<Self::StreamContainersStream>, Status> {
        let daemon = self.daemon.clone();
        instrument("StreamContainers", request, |req| async move {
            let list = list_containers::list_containers(
                daemon,
                v1::ListContainersRequest { filter: req.filter },
            )
            .await?;
            Ok(list_streams::paged(
                list.containers,
                list_streams::containers,
            ))
        })
        .await
    }

    async fn stream_container_stats(
        &self,
        request: Request<v1::StreamContainerStatsRequest>,
    ) -> Result<Response<Self::StreamContainerStatsStream>, Status> {
        let daemon = self.daemon.clone();
        instrument("StreamContainerStats", request, |req| async move {
            let list = list_container_stats::list_container_stats(
                daemon,
                v1::ListContainerStatsRequest { filter: req.filter },
            )
            .await?;
            Ok(list_streams::paged(
                list.stats,
                list_streams::container_stats,
            ))
        })
        .await
    }

    async fn pod_sandbox_stats(
        &self,
        request: Request<v1::PodSandboxStatsRequest>,
    ) -> Result<Response<v1::PodSandboxStatsResponse>, Status> {
        let daemon = self.daemon.clone();
        instrument("PodSandboxStats", request, |req| {
            pod_sandbox_stats::pod_sandbox_stats(daemon, req)
        })
        .await
    }

    async fn list_pod_sandbox_stats(
        &self,
        request: Request<v1::ListPodSandboxStatsRequest>,
    ) -> Result<Response<v1::ListPodSandboxStatsResponse>, Status> {
        let daemon = self.daemon.clone();
        instrument("ListPodSandboxStats", request, |req| {
            list_pod_sandbox_stats::list_pod_sandbox_stats(daemon, req)
        })
        .await
    }

    async fn get_container_events(
        &self,
        request: Request<v1::GetEventsRequest>,
    ) -> Result<Response<Self::GetContainerEventsStream>, Status> {
        let daemon = self.daemon.clone();
        instrument("GetContainerEvents", request, |req| {
            get_container_events::get_container_events(daemon, req)
        })
        .await
    }

    async fn list_metric_descriptors(
        &self,
        request: Request<v1::ListMetricDescriptorsRequest>,
    ) -> Result<Response<v1::ListMetricDescriptorsResponse>, Status> {
        instrument(
            "ListMetricDescriptors",
            request,
            list_metric_descriptors::list_metric_descriptors,
        )
        .await
    }

    async fn list_pod_sandbox_metrics(
        &self,
        request: Request<v1::ListPodSandboxMetricsRequest>,
    ) -> Result<Response<v1::ListPodSandboxMetricsResponse>, Status> {
        let daemon = self.daemon.clone();
        instrument("ListPodSandboxMetrics", request, |req| {
            list_pod_sandbox_metrics::list_pod_sandbox_metrics(daemon, req)
        })
        .await
    }

    async fn update_pod_sandbox_resources(
        &self,
        request: Request<v1::UpdatePodSandboxResourcesRequest>,
    ) -> Result<Response<v1::UpdatePodSandboxResourcesResponse>, Status> {
        let daemon = self.daemon.clone();
        instrument("UpdatePodSandboxResources", request, |req| {
            update_pod_sandbox_resources::update_pod_sandbox_resources(daemon, req)
        })
        .await
    }

    async fn stream_pod_sandbox_stats(
        &self,
        request: Request<v1::StreamPodSandboxStatsRequest>,
    ) -> Result<Response<Self::StreamPodSandboxStatsStream>, Status> {
        let daemon = self.daemon.clone();
        instrument("StreamPodSandboxStats", request, |req| async move {
            let list = list_pod_sandbox_stats::list_pod_sandbox_stats(
                daemon,
                v1::ListPodSandboxStatsRequest { filter: req.filter },
            )
            .await?;
            Ok(list_streams::paged(
                list.stats,
                list_streams::pod_sandbox_stats,
            ))
        })
        .await
    }

    async fn stream_pod_sandbox_metrics(
        &self,
        request: Request<v1::StreamPodSandboxMetricsRequest>,
    ) -> Result<Response<Self::StreamPodSandboxMetricsStream>, Status> {
        let daemon = self.daemon.clone();
        instrument("StreamPodSandboxMetrics", request, |_req| async move {
            let list = list_pod_sandbox_metrics::list_pod_sandbox_metrics(
                daemon,
                v1::ListPodSandboxMetricsRequest {},
            )
            .await?;
            Ok(list_streams::paged(
                list.pod_metrics,
                list_streams::pod_sandbox_metrics,
            ))
        })
        .await
    }

    async fn update_runtime_config(
        &self,
        request: Request<v1::UpdateRuntimeConfigRequest>,
    ) -> Result<Response<v1::UpdateRuntimeConfigResponse>, Status> {
        let daemon = self.daemon.clone();
        instrument("UpdateRuntimeConfig", request, |req| async move {
            update_runtime_config::update_runtime_config(&daemon, req).await
        })
        .await
    }

    unbuilt_rpcs! {
        checkpoint_container("CheckpointContainer", CheckpointContainerRequest) -> v1::CheckpointContainerResponse;
        checkpoint_pod("CheckpointPod", CheckpointPodRequest) -> v1::CheckpointPodResponse;
        restore_pod("RestorePod", RestorePodRequest) -> v1::RestorePodResponse;
    }
}
