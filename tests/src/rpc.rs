//! CRI calls the integration tests share, each bounded by [`RPC_TIMEOUT`] and panicking
//! with the RPC's name (the `try_` forms return the status instead).

use std::time::Duration;

use cri_api::v1;
use cri_api::RuntimeServiceClient;
use tonic::transport::Channel;
use tonic::Status;

/// A runtime service client.
pub type Runtime = RuntimeServiceClient<Channel>;

/// Longest one RPC may take (debug build, pulls, CNI plugins, iptables).
pub const RPC_TIMEOUT: Duration = Duration::from_secs(120);

/// Awaits `fut`, panicking when it takes longer than [`RPC_TIMEOUT`].
pub async fn timed<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    match tokio::time::timeout(RPC_TIMEOUT, fut).await {
        Ok(value) => value,
        Err(_) => panic!("{what} did not answer within {RPC_TIMEOUT:?}"),
    }
}

/// Pod sandbox RPCs.
pub mod pod {
    use super::*;

    /// RunPodSandbox with the default handler: the new pod's ID.
    pub async fn try_run(rt: &mut Runtime, config: v1::PodSandboxConfig) -> Result<String, Status> {
        let name = config.metadata.clone().unwrap_or_default().name;
        timed(
            &format!("RunPodSandbox({name})"),
            rt.run_pod_sandbox(v1::RunPodSandboxRequest {
                config: Some(config),
                runtime_handler: String::new(),
            }),
        )
        .await
        .map(|r| r.into_inner().pod_sandbox_id)
    }

    pub async fn run(rt: &mut Runtime, config: v1::PodSandboxConfig) -> String {
        let name = config.metadata.clone().unwrap_or_default().name;
        try_run(rt, config)
            .await
            .unwrap_or_else(|s| panic!("RunPodSandbox({name}): {s:?}"))
    }

    pub async fn try_status(
        rt: &mut Runtime,
        id: &str,
        verbose: bool,
    ) -> Result<v1::PodSandboxStatusResponse, Status> {
        timed(
            "PodSandboxStatus",
            rt.pod_sandbox_status(v1::PodSandboxStatusRequest {
                pod_sandbox_id: id.to_owned(),
                verbose,
            }),
        )
        .await
        .map(|r| r.into_inner())
    }

    pub async fn status(rt: &mut Runtime, id: &str) -> v1::PodSandboxStatus {
        try_status(rt, id, false)
            .await
            .unwrap_or_else(|s| panic!("PodSandboxStatus({id}): {s:?}"))
            .status
            .expect("PodSandboxStatus without status")
    }

    pub async fn stop(rt: &mut Runtime, id: &str) {
        timed(
            "StopPodSandbox",
            rt.stop_pod_sandbox(v1::StopPodSandboxRequest {
                pod_sandbox_id: id.to_owned(),
            }),
        )
        .await
        .unwrap_or_else(|s| panic!("StopPodSandbox({id}): {s:?}"));
    }

    pub async fn remove(rt: &mut Runtime, id: &str) {
        timed(
            "RemovePodSandbox",
            rt.remove_pod_sandbox(v1::RemovePodSandboxRequest {
                pod_sandbox_id: id.to_owned(),
            }),
        )
        .await
        .unwrap_or_else(|s| panic!("RemovePodSandbox({id}): {s:?}"));
    }

    pub async fn stop_and_remove(rt: &mut Runtime, id: &str) {
        stop(rt, id).await;
        remove(rt, id).await;
    }
}
