//! The one wrapper every RPC runs through: a span named after the RPC carrying the IDs it
//! names, request validation, the duration, a log line for the outcome, the RPC's latency and
//! error code in the metrics, and the conversion of [`ServiceError`] into a gRPC [`Status`].

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use tonic::service::Interceptor;
use tonic::{Code, Request, Response, Status};
use tracing::field::Empty;
use tracing::Instrument;

use berth_metrics::Metrics;
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
    let metrics = request.extensions().get::<WithMetrics>().cloned();
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
        // With the steps the runtime core reaches (trace, berth_runtime::failpoint) this
        // times each step of an operation from the request (bench/steps.py).
        tracing::trace!("started");
        let result = match request.validate() {
            Ok(()) => handler(request).await,
            Err(err) => Err(err),
        };
        let elapsed = start.elapsed();
        let elapsed_us = elapsed.as_micros() as u64;
        // The error's code and message, worked out once for the metrics, the log line and
        // the status (what `Status::from(ServiceError)` gives).
        let result = result.map_err(|err| Status::new(err.code(), err.bounded_message()));
        if let Some(WithMetrics(metrics)) = &metrics {
            let error = result.as_ref().err().map(|status| code_name(status.code()));
            metrics.record_rpc(rpc, elapsed, error);
        }
        match &result {
            Ok(_) => tracing::debug!(elapsed_us, "ok"),
            Err(status) => {
                let error = status.message();
                match status.code() {
                    Code::Unimplemented => tracing::debug!(elapsed_us, error, "unimplemented"),
                    Code::InvalidArgument | Code::NotFound | Code::AlreadyExists => {
                        tracing::info!(elapsed_us, error, "rejected")
                    }
                    _ => tracing::error!(elapsed_us, error, "failed"),
                }
            }
        }
        result.map(Response::new)
    }
    .instrument(span)
    .await
}

/// The metrics RPCs are recorded in, put into each request's extensions by the interceptor
/// [`crate::services`] installs (a request without it is not recorded).
#[derive(Debug, Clone)]
pub struct WithMetrics(pub Arc<Metrics>);

impl Interceptor for WithMetrics {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        request.extensions_mut().insert(self.clone());
        Ok(request)
    }
}

/// A gRPC status code's name, as the metrics label it.
pub(crate) fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "Canceled",
        Code::Unknown => "Unknown",
        Code::InvalidArgument => "InvalidArgument",
        Code::DeadlineExceeded => "DeadlineExceeded",
        Code::NotFound => "NotFound",
        Code::AlreadyExists => "AlreadyExists",
        Code::PermissionDenied => "PermissionDenied",
        Code::ResourceExhausted => "ResourceExhausted",
        Code::FailedPrecondition => "FailedPrecondition",
        Code::Aborted => "Aborted",
        Code::OutOfRange => "OutOfRange",
        Code::Unimplemented => "Unimplemented",
        Code::Internal => "Internal",
        Code::Unavailable => "Unavailable",
        Code::DataLoss => "DataLoss",
        Code::Unauthenticated => "Unauthenticated",
    }
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

    /// The request as it reaches a service behind [`crate::services`]' interceptor.
    fn intercepted<T>(metrics: &Arc<Metrics>, message: T) -> Request<T> {
        let (_, extensions, message) = Request::new(message).into_parts();
        let carrier = WithMetrics(metrics.clone())
            .call(Request::from_parts(Default::default(), extensions, ()))
            .unwrap();
        let (metadata, extensions, ()) = carrier.into_parts();
        Request::from_parts(metadata, extensions, message)
    }

    #[tokio::test]
    async fn every_rpc_is_timed_and_its_error_code_counted() {
        let metrics = Arc::new(Metrics::new());
        let ok = intercepted(&metrics, v1::VersionRequest::default());
        instrument("Version", ok, |_| async {
            Ok(v1::VersionResponse::default())
        })
        .await
        .unwrap();
        // Rejected by validation: the handler never runs, the error is counted all the same.
        let invalid = intercepted(
            &metrics,
            v1::ContainerStatusRequest {
                container_id: "x".repeat(100),
                verbose: false,
            },
        );
        instrument("ContainerStatus", invalid, |_| async {
            Ok(v1::ContainerStatusResponse::default())
        })
        .await
        .unwrap_err();
        let missing = intercepted(
            &metrics,
            v1::ContainerStatusRequest {
                container_id: "abc".into(),
                verbose: false,
            },
        );
        instrument("ContainerStatus", missing, |_| async {
            Err::<v1::ContainerStatusResponse, _>(ServiceError::Unimplemented { rpc: "x" })
        })
        .await
        .unwrap_err();
        // Without the interceptor's extension nothing is recorded.
        instrument(
            "Version",
            Request::new(v1::VersionRequest::default()),
            |_| async { Ok(v1::VersionResponse::default()) },
        )
        .await
        .unwrap();

        let text = metrics.encode(berth_metrics::Sample::default());
        for line in [
            "berth_cri_request_duration_seconds_count{rpc=\"Version\"} 1",
            "berth_cri_request_duration_seconds_count{rpc=\"ContainerStatus\"} 2",
            "berth_cri_request_errors_total{rpc=\"ContainerStatus\",code=\"InvalidArgument\"} 1",
            "berth_cri_request_errors_total{rpc=\"ContainerStatus\",code=\"Unimplemented\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
        assert!(
            !text.contains("berth_cri_request_errors_total{rpc=\"Version\""),
            "{text}"
        );
    }

    #[test]
    fn code_names_are_grpcs() {
        assert_eq!(code_name(Code::NotFound), "NotFound");
        assert_eq!(code_name(Code::Cancelled), "Canceled");
        for code in [Code::Ok, Code::Unauthenticated, Code::DataLoss] {
            assert!(!code_name(code).contains(' '));
        }
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
