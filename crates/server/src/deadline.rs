//! A client's deadline (`grpc-timeout`), answered with `DeadlineExceeded` when it passes.
//!
//! tonic enforces the deadline itself, outside every layer berthd adds, and answers
//! `Cancelled` ("Timeout expired") when its timer fires before the handler is done. gRPC's
//! status for a passed deadline is `DeadlineExceeded`, and clients check for it: critest's
//! "public image should timeout if requested" pulls with a short deadline and fails on
//! `Cancelled`, which it gets whenever berthd's answer reaches it before its own timer fires
//! (a busy node). [`Deadline`] wraps the router inside tonic's timer: it reads the same header,
//! starts its clock before tonic's (tonic calls the inner service first, then arms its timer)
//! and is polled first, so a passed deadline is always answered `DeadlineExceeded`.

use std::time::Duration;

use tonic::codegen::{http, BoxFuture, Context, Poll, Service};
use tonic::Status;

/// The header a gRPC client sends its deadline in.
const GRPC_TIMEOUT: &str = "grpc-timeout";

/// Answers a request whose `grpc-timeout` passes before its handler is done with
/// `DeadlineExceeded`; the handler's future is dropped, as tonic drops it.
#[derive(Debug, Clone)]
pub struct Deadline<S> {
    inner: S,
}

impl<S> Deadline<S> {
    /// Wraps `inner` (the router).
    pub fn new(inner: S) -> Self {
        Self { inner }
    }
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for Deadline<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = http::Response<ResBody>;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        // The clock starts here, before the handler runs and before tonic arms its own timer.
        let deadline = grpc_timeout(request.headers()).map(|d| tokio::time::Instant::now() + d);
        let answer = self.inner.call(request);
        match deadline {
            None => Box::pin(answer),
            Some(deadline) => Box::pin(async move {
                match tokio::time::timeout_at(deadline, answer).await {
                    Ok(answer) => answer,
                    Err(_) => Ok(Status::deadline_exceeded("deadline exceeded").into_http()),
                }
            }),
        }
    }
}

/// The deadline of a `grpc-timeout` header: at most 8 digits and a unit (H, M, S, m, u, n).
/// `None` without the header or for a value gRPC does not allow (tonic ignores those too).
fn grpc_timeout(headers: &http::HeaderMap) -> Option<Duration> {
    let value = headers.get(GRPC_TIMEOUT)?.to_str().ok()?;
    if value.len() < 2 {
        return None;
    }
    let (digits, unit) = value.split_at(value.len() - 1);
    if digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::future::Future;
    use std::pin::Pin;

    use tonic::Code;

    use super::*;

    fn headers(timeout: &str) -> http::HeaderMap {
        let mut headers = http::HeaderMap::new();
        headers.insert(GRPC_TIMEOUT, timeout.parse().unwrap());
        headers
    }

    #[test]
    fn parses_every_unit() {
        assert_eq!(
            grpc_timeout(&headers("2H")),
            Some(Duration::from_secs(7200))
        );
        assert_eq!(grpc_timeout(&headers("3M")), Some(Duration::from_secs(180)));
        assert_eq!(grpc_timeout(&headers("10S")), Some(Duration::from_secs(10)));
        assert_eq!(
            grpc_timeout(&headers("250m")),
            Some(Duration::from_millis(250))
        );
        assert_eq!(
            grpc_timeout(&headers("99999999u")),
            Some(Duration::from_micros(99_999_999))
        );
        assert_eq!(grpc_timeout(&headers("1n")), Some(Duration::from_nanos(1)));
    }

    #[test]
    fn ignores_what_grpc_does_not_allow() {
        assert_eq!(grpc_timeout(&http::HeaderMap::new()), None);
        for bad in [
            "",
            "S",
            "5",
            "5s",
            "123456789S",
            "-1S",
            "1.5S",
            "+1S",
            "5 S",
        ] {
            let mut map = http::HeaderMap::new();
            map.insert(GRPC_TIMEOUT, http::HeaderValue::from_str(bad).unwrap());
            assert_eq!(grpc_timeout(&map), None, "{bad:?}");
        }
    }

    /// A handler that answers OK after `delay`.
    #[derive(Clone)]
    struct Slow {
        delay: Duration,
    }

    impl Service<http::Request<()>> for Slow {
        type Response = http::Response<String>;
        type Error = Infallible;
        type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

        fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, _request: http::Request<()>) -> Self::Future {
            let delay = self.delay;
            Box::pin(async move {
                tokio::time::sleep(delay).await;
                Ok(http::Response::new("answered".to_owned()))
            })
        }
    }

    fn request(timeout: Option<&str>) -> http::Request<()> {
        let mut request = http::Request::new(());
        if let Some(timeout) = timeout {
            request
                .headers_mut()
                .insert(GRPC_TIMEOUT, timeout.parse().unwrap());
        }
        request
    }

    #[tokio::test(start_paused = true)]
    async fn a_passed_deadline_is_deadline_exceeded() {
        let mut service = Deadline::new(Slow {
            delay: Duration::from_secs(5),
        });
        let response = service.call(request(Some("100m"))).await.unwrap();
        let status = Status::from_header_map(response.headers()).expect("a status in the headers");
        assert_eq!(status.code(), Code::DeadlineExceeded);
        assert!(response.body().is_empty(), "no message after the status");
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_within_the_deadline_passes_unchanged() {
        let mut service = Deadline::new(Slow {
            delay: Duration::from_millis(50),
        });
        let response = service.call(request(Some("1S"))).await.unwrap();
        assert_eq!(response.body(), "answered");
        assert!(Status::from_header_map(response.headers()).is_none());
        let response = service.call(request(None)).await.unwrap();
        assert_eq!(response.body(), "answered");
    }

    /// tonic's own timer, armed after the inner call with the same deadline, as tonic arms
    /// it: the inner answer (ours) must win every race.
    #[tokio::test(start_paused = true)]
    async fn answers_before_a_timer_armed_after_it() {
        for timeout_ms in [1u64, 2, 10, 100] {
            let mut service = Deadline::new(Slow {
                delay: Duration::from_secs(60),
            });
            let mut ours = service.call(request(Some(&format!("{timeout_ms}m"))));
            let mut theirs = Box::pin(tokio::time::sleep(Duration::from_millis(timeout_ms)));
            let winner = std::future::poll_fn(|cx| {
                if let Poll::Ready(answer) = ours.as_mut().poll(cx) {
                    return Poll::Ready(Some(answer.unwrap()));
                }
                theirs.as_mut().poll(cx).map(|()| None)
            })
            .await;
            let response = winner.expect("the deadline answer comes before the outer timer");
            let status = Status::from_header_map(response.headers()).unwrap();
            assert_eq!(status.code(), Code::DeadlineExceeded, "{timeout_ms} ms");
        }
    }
}
