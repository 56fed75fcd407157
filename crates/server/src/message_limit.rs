//! The size limit on CRI messages, and how a request over it is answered.
//!
//! tonic checks a request's length prefix against the limit before reading the message and
//! answers `OutOfRange`; gRPC servers elsewhere answer `ResourceExhausted` ("received message
//! larger than max"), which is what clients retry and report on. [`oversize_status`] rewrites
//! that one answer; it runs on every response (a header lookup) as the router's layer.

use tonic::codegen::http;
use tonic::{Code, Status};

/// Largest gRPC message accepted or sent (16 MiB, as kubelet's CRI client allows).
pub const MAX_MESSAGE_SIZE: usize = 16 * 1024 * 1024;

/// How tonic's message for a request over the limit begins.
const TONIC_TOO_LARGE: &str = "Error, decoded message length too large";

/// Answers a request over [`MAX_MESSAGE_SIZE`] with `ResourceExhausted` instead of tonic's
/// `OutOfRange`; every other response passes unchanged.
pub fn oversize_status<B>(mut response: http::Response<B>) -> http::Response<B> {
    let headers = response.headers_mut();
    // Most responses carry no status in their headers (it comes in the trailers).
    if headers.get("grpc-status").is_none() {
        return response;
    }
    let Some(status) = Status::from_header_map(headers) else {
        return response;
    };
    if status.code() != Code::OutOfRange {
        return response;
    }
    if let Some(detail) = status.message().strip_prefix(TONIC_TOO_LARGE) {
        let detail = detail.trim_start_matches(": ");
        let status = Status::resource_exhausted(format!("request message too large: {detail}"));
        // Writing grpc-status and grpc-message fails only for a message that cannot be
        // percent-encoded into a header value, which this one always can.
        let _ = status.add_header(headers);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response_with(status: Status) -> http::Response<()> {
        let mut response = http::Response::new(());
        status.add_header(response.headers_mut()).unwrap();
        response
    }

    #[test]
    fn oversize_becomes_resource_exhausted() {
        let tonic_says = Status::out_of_range(
            "Error, decoded message length too large: found 17825807 bytes, the limit is: 16777216 bytes",
        );
        let response = oversize_status(response_with(tonic_says));
        let status = Status::from_header_map(response.headers()).unwrap();
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert_eq!(
            status.message(),
            "request message too large: found 17825807 bytes, the limit is: 16777216 bytes"
        );
    }

    #[test]
    fn other_answers_pass_unchanged() {
        for status in [
            Status::out_of_range("offset past the end"),
            Status::internal("Error, decoded message length too large"),
            Status::ok(""),
        ] {
            let response = oversize_status(response_with(status.clone()));
            let after = Status::from_header_map(response.headers()).unwrap();
            assert_eq!(after.code(), status.code());
            assert_eq!(after.message(), status.message());
        }
    }
}
