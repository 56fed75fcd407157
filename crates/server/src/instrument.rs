//! The one wrapper every RPC runs through: a span named after the RPC carrying the IDs it
//! names, request validation, the duration, a log line for the outcome, and the conversion
//! of [`ServiceError`] into a gRPC [`Status`].

use std::future::Future;
use std::time::Instant;

use tonic::{Code, Request, Response, Status};
use tracing::field::Empty;
use tracing::Instrument;

use berth_runtime::quote;

use crate::error::ServiceError;
use crate::request::CriRequest;

/// Runs `handler` for `request` of the CRI RPC named `rpc`.
pub(crate) async fn instrument<Req, Resp, Fut, H>(
    rpc: &'static str,
    request: Request<Req>,
    handler: H,
) -> Result<Response<Resp>, Status>
where
    Req: CriRequest,
    H: FnOnce(Req) -> Fut,
    Fut: Future<Output = Result<Resp, ServiceError>>,
{
    let request = request.into_inner();
    let span = tracing::info_span!(
        "rpc",
        rpc,
        sandbox = Empty,
        container = Empty,
        image = Empty
    );
    // Recorded before validation: cut to a bounded length.
    let ids = request.ids();
    if let Some(id) = ids.sandbox {
        span.record("sandbox", quote(id));
    }
    if let Some(id) = ids.container {
        span.record("container", quote(id));
    }
    if let Some(image) = ids.image {
        span.record("image", quote(image));
    }
    async move {
        let start = Instant::now();
        let result = match request.validate() {
            Ok(()) => handler(request).await,
            Err(err) => Err(err),
        };
        let elapsed_us = start.elapsed().as_micros() as u64;
        match &result {
            Ok(_) => tracing::debug!(elapsed_us, "ok"),
            Err(err) => {
                let error = err.bounded_message();
                match err.code() {
                    Code::Unimplemented => tracing::debug!(elapsed_us, error, "unimplemented"),
                    Code::InvalidArgument | Code::NotFound | Code::AlreadyExists => {
                        tracing::info!(elapsed_us, error, "rejected")
                    }
                    _ => tracing::error!(elapsed_us, error, "failed"),
                }
            }
        }
        result.map(Response::new).map_err(Status::from)
    }
    .instrument(span)
    .await
}

/// The handler of an RPC that berth does not serve yet.
pub(crate) async fn unbuilt<Req, Resp>(
    rpc: &'static str,
    _request: Req,
) -> Result<Resp, ServiceError> {
    Err(ServiceError::Unimplemented { rpc })
}

#[cfg(test)]
mod tests {
    use cri_api::v1;

    use super::*;

    #[tokio::test]
    async fn validation_runs_before_the_handler() {
        let request = Request::new(v1::ContainerStatusRequest {
            container_id: "x".repeat(100),
            verbose: false,
        });
        let status = instrument("ContainerStatus", request, |_| async {
            panic!("handler must not run for an invalid request");
            #[allow(unreachable_code)]
            Ok::<(), ServiceError>(())
        })
        .await
        .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(
            status.message().contains("container_id"),
            "{}",
            status.message()
        );
    }

    #[tokio::test]
    async fn unbuilt_rpcs_answer_unimplemented() {
        let request = Request::new(v1::RunPodSandboxRequest::default());
        let status = instrument("RunPodSandbox", request, |req| {
            unbuilt::<_, v1::RunPodSandboxResponse>("RunPodSandbox", req)
        })
        .await
        .unwrap_err();
        assert_eq!(status.code(), Code::Unimplemented);
        assert!(status.message().contains("RunPodSandbox"));
    }
}
