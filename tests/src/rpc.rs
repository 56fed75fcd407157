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

/// An image spec naming `image`.
pub fn image_spec(image: &str) -> v1::ImageSpec {
    v1::ImageSpec {
        image: image.to_owned(),
        ..Default::default()
    }
}

/// Container RPCs.
pub mod container {
    use super::*;

    /// CreateContainer of `config` in `pod`: the new container's ID.
    pub async fn try_create(
        rt: &mut Runtime,
        pod: &str,
        pod_config: &v1::PodSandboxConfig,
        config: v1::ContainerConfig,
    ) -> Result<String, Status> {
        timed(
            "CreateContainer",
            rt.create_container(v1::CreateContainerRequest {
                pod_sandbox_id: pod.to_owned(),
                config: Some(config),
                sandbox_config: Some(pod_config.clone()),
            }),
        )
        .await
        .map(|r| r.into_inner().container_id)
    }

    /// [`try_create`], panicking with the container's name on an error.
    pub async fn create(
        rt: &mut Runtime,
        pod: &str,
        pod_config: &v1::PodSandboxConfig,
        config: v1::ContainerConfig,
    ) -> String {
        let name = config.metadata.clone().unwrap_or_default().name;
        try_create(rt, pod, pod_config, config)
            .await
            .unwrap_or_else(|s| panic!("CreateContainer({name}): {s:?}"))
    }

    /// StartContainer.
    pub async fn start(rt: &mut Runtime, id: &str) {
        timed(
            "StartContainer",
            rt.start_container(v1::StartContainerRequest {
                container_id: id.to_owned(),
            }),
        )
        .await
        .unwrap_or_else(|s| panic!("StartContainer({id}): {s:?}"));
    }

    /// StopContainer with a grace period of `timeout` seconds.
    pub async fn try_stop(rt: &mut Runtime, id: &str, timeout: i64) -> Result<(), Status> {
        timed(
            "StopContainer",
            rt.stop_container(v1::StopContainerRequest {
                container_id: id.to_owned(),
                timeout,
            }),
        )
        .await
        .map(|_| ())
    }

    /// [`try_stop`], panicking on an error.
    pub async fn stop(rt: &mut Runtime, id: &str, timeout: i64) {
        try_stop(rt, id, timeout)
            .await
            .unwrap_or_else(|s| panic!("StopContainer({id}): {s:?}"));
    }

    /// RemoveContainer.
    pub async fn try_remove(rt: &mut Runtime, id: &str) -> Result<(), Status> {
        timed(
            "RemoveContainer",
            rt.remove_container(v1::RemoveContainerRequest {
                container_id: id.to_owned(),
            }),
        )
        .await
        .map(|_| ())
    }

    /// [`try_remove`], panicking on an error.
    pub async fn remove(rt: &mut Runtime, id: &str) {
        try_remove(rt, id)
            .await
            .unwrap_or_else(|s| panic!("RemoveContainer({id}): {s:?}"));
    }

    /// ExecSync of `cmd` in `id` with `timeout` seconds (0: none).
    pub async fn exec(
        rt: &mut Runtime,
        id: &str,
        cmd: &[&str],
        timeout: i64,
    ) -> Result<v1::ExecSyncResponse, Status> {
        timed(
            "ExecSync",
            rt.exec_sync(v1::ExecSyncRequest {
                container_id: id.to_owned(),
                cmd: cmd.iter().map(|s| s.to_string()).collect(),
                timeout,
            }),
        )
        .await
        .map(|r| r.into_inner())
    }

    pub async fn try_status(
        rt: &mut Runtime,
        id: &str,
        verbose: bool,
    ) -> Result<v1::ContainerStatusResponse, Status> {
        timed(
            "ContainerStatus",
            rt.container_status(v1::ContainerStatusRequest {
                container_id: id.to_owned(),
                verbose,
            }),
        )
        .await
        .map(|r| r.into_inner())
    }
}

/// Pulls `image` into `daemon` (panicking with the status on failure): its image ID, as
/// ImageStatus reports it.
pub async fn pull(daemon: &crate::Berthd, image: &str) -> String {
    let spec = || image_spec(image);
    let mut images = daemon.images().await;
    timed(
        "PullImage",
        images.pull_image(v1::PullImageRequest {
            image: Some(spec()),
            auth: None,
            sandbox_config: None,
        }),
    )
    .await
    .unwrap_or_else(|s| panic!("PullImage({image}): {s:?}"));
    timed(
        "ImageStatus",
        images.image_status(v1::ImageStatusRequest {
            image: Some(spec()),
            verbose: false,
        }),
    )
    .await
    .unwrap_or_else(|s| panic!("ImageStatus({image}): {s:?}"))
    .into_inner()
    .image
    .unwrap_or_else(|| panic!("{image} pulled but not found"))
    .id
}
