//! What every CRI request tells the instrumentation layer: the IDs it names (for the
//! tracing span) and the checks its fields must pass before any handler runs.

use cri_api::v1;

use crate::error::ServiceError;
use crate::validate;

/// IDs a request names, recorded on the RPC's span.
#[derive(Debug, Default, Clone, Copy)]
pub struct Ids<'a> {
    /// Pod sandbox ID.
    pub sandbox: Option<&'a str>,
    /// Container ID.
    pub container: Option<&'a str>,
    /// Image reference or ID.
    pub image: Option<&'a str>,
}

/// A CRI request message.
pub trait CriRequest {
    /// The IDs this request names.
    fn ids(&self) -> Ids<'_> {
        Ids::default()
    }

    /// Field checks common to every handler of this request.
    fn validate(&self) -> Result<(), ServiceError> {
        Ok(())
    }
}

/// Requests that name no object: no IDs, nothing to check before the handler.
macro_rules! plain_requests {
    ($($ty:ident),* $(,)?) => {
        $(impl CriRequest for v1::$ty {})*
    };
}

/// Requests naming a sandbox or container by a required ID field.
macro_rules! id_requests {
    ($($ty:ident => $kind:ident . $field:ident),* $(,)?) => {
        $(impl CriRequest for v1::$ty {
            fn ids(&self) -> Ids<'_> {
                Ids { $kind: Some(self.$field.as_str()), ..Ids::default() }
            }

            fn validate(&self) -> Result<(), ServiceError> {
                validate::object_id(stringify!($field), &self.$field)
            }
        })*
    };
}

/// Image requests whose `image` field (an `ImageSpec`) is required.
macro_rules! image_requests {
    ($($ty:ident),* $(,)?) => {
        $(impl CriRequest for v1::$ty {
            fn ids(&self) -> Ids<'_> {
                Ids { image: self.image.as_ref().map(|spec| spec.image.as_str()), ..Ids::default() }
            }

            fn validate(&self) -> Result<(), ServiceError> {
                let image = self.image.as_ref().map(|spec| spec.image.as_str()).unwrap_or("");
                validate::image_ref("image", image)
            }
        })*
    };
}

plain_requests!(
    VersionRequest,
    RunPodSandboxRequest,
    ListPodSandboxRequest,
    StreamPodSandboxesRequest,
    ListContainersRequest,
    StreamContainersRequest,
    ListContainerStatsRequest,
    StreamContainerStatsRequest,
    ListPodSandboxStatsRequest,
    StreamPodSandboxStatsRequest,
    UpdateRuntimeConfigRequest,
    StatusRequest,
    GetEventsRequest,
    ListMetricDescriptorsRequest,
    ListPodSandboxMetricsRequest,
    StreamPodSandboxMetricsRequest,
    RuntimeConfigRequest,
    ListImagesRequest,
    StreamImagesRequest,
    ImageFsInfoRequest,
    RestorePodRequest,
);

id_requests!(
    StopPodSandboxRequest => sandbox.pod_sandbox_id,
    RemovePodSandboxRequest => sandbox.pod_sandbox_id,
    PodSandboxStatusRequest => sandbox.pod_sandbox_id,
    CreateContainerRequest => sandbox.pod_sandbox_id,
    PortForwardRequest => sandbox.pod_sandbox_id,
    PodSandboxStatsRequest => sandbox.pod_sandbox_id,
    UpdatePodSandboxResourcesRequest => sandbox.pod_sandbox_id,
    CheckpointPodRequest => sandbox.pod_sandbox_id,
    StartContainerRequest => container.container_id,
    StopContainerRequest => container.container_id,
    RemoveContainerRequest => container.container_id,
    ContainerStatusRequest => container.container_id,
    UpdateContainerResourcesRequest => container.container_id,
    ReopenContainerLogRequest => container.container_id,
    ExecSyncRequest => container.container_id,
    ExecRequest => container.container_id,
    AttachRequest => container.container_id,
    ContainerStatsRequest => container.container_id,
    CheckpointContainerRequest => container.container_id,
);

image_requests!(PullImageRequest, ImageStatusRequest, RemoveImageRequest);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_requests_check_their_id() {
        let request = v1::StopContainerRequest {
            container_id: String::new(),
            timeout: 0,
        };
        let err = request.validate().unwrap_err();
        assert_eq!(err.to_string(), "invalid container_id: must not be empty");
        assert_eq!(request.ids().container, Some(""));
    }

    #[test]
    fn image_requests_need_an_image_spec() {
        let request = v1::ImageStatusRequest::default();
        assert_eq!(
            request.validate().unwrap_err().to_string(),
            "invalid image: must not be empty"
        );
        let request = v1::ImageStatusRequest {
            image: Some(v1::ImageSpec {
                image: "busybox".into(),
                ..Default::default()
            }),
            verbose: false,
        };
        assert!(request.validate().is_ok());
        assert_eq!(request.ids().image, Some("busybox"));
    }
}
