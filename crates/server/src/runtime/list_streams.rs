//! The streaming list RPCs of the CRI (`StreamPodSandboxes`, `StreamContainers`,
//! `StreamContainerStats`, `StreamPodSandboxStats`, `StreamPodSandboxMetrics`,
//! `StreamImages`): the same result as the unary list, sent in pages so that no
//! message grows past the gRPC size limit however many objects there are.

use cri_api::v1;

use crate::runtime::BoxStream;

/// Objects per streamed message.
pub const PAGE: usize = 500;

/// Splits `items` into pages, each wrapped by `wrap`; an empty list is one empty page.
pub fn paged<T, M>(items: Vec<T>, wrap: impl Fn(Vec<T>) -> M + Send + 'static) -> BoxStream<M>
where
    T: Send + 'static,
    M: Send + 'static,
{
    let mut pages = Vec::new();
    let mut items = items.into_iter().peekable();
    loop {
        let page: Vec<T> = items.by_ref().take(PAGE).collect();
        let last = items.peek().is_none();
        pages.push(Ok(wrap(page)));
        if last {
            break;
        }
    }
    Box::pin(tokio_stream::iter(pages))
}

/// `StreamPodSandboxesResponse` of one page.
pub fn pod_sandboxes(pod_sandboxes: Vec<v1::PodSandbox>) -> v1::StreamPodSandboxesResponse {
    v1::StreamPodSandboxesResponse { pod_sandboxes }
}

/// `StreamContainersResponse` of one page.
pub fn containers(containers: Vec<v1::Container>) -> v1::StreamContainersResponse {
    v1::StreamContainersResponse { containers }
}

/// `StreamContainerStatsResponse` of one page.
pub fn container_stats(
    container_stats: Vec<v1::ContainerStats>,
) -> v1::StreamContainerStatsResponse {
    v1::StreamContainerStatsResponse { container_stats }
}

/// `StreamPodSandboxStatsResponse` of one page.
pub fn pod_sandbox_stats(
    pod_sandbox_stats: Vec<v1::PodSandboxStats>,
) -> v1::StreamPodSandboxStatsResponse {
    v1::StreamPodSandboxStatsResponse { pod_sandbox_stats }
}

/// `StreamPodSandboxMetricsResponse` of one page.
pub fn pod_sandbox_metrics(
    pod_sandbox_metrics: Vec<v1::PodSandboxMetrics>,
) -> v1::StreamPodSandboxMetricsResponse {
    v1::StreamPodSandboxMetricsResponse {
        pod_sandbox_metrics,
    }
}

/// `StreamImagesResponse` of one page.
pub fn images(images: Vec<v1::Image>) -> v1::StreamImagesResponse {
    v1::StreamImagesResponse { images }
}

#[cfg(test)]
mod tests {
    use tokio_stream::StreamExt as _;

    use super::*;

    #[tokio::test]
    async fn pages_split_and_empty_lists_send_one_message() {
        let pages: Vec<_> = paged((0..1001).collect::<Vec<_>>(), |page| page.len())
            .collect()
            .await;
        assert_eq!(
            pages.into_iter().map(Result::unwrap).collect::<Vec<_>>(),
            [500, 500, 1]
        );
        let empty: Vec<_> = paged(Vec::<u8>::new(), |page| page.len()).collect().await;
        assert_eq!(empty.len(), 1);
    }
}
