//! `ListMetricDescriptors`: the metrics `ListPodSandboxMetrics` reports.

use cri_api::v1;

use crate::error::ServiceError;
use crate::pod::metrics::descriptors;

pub(super) async fn list_metric_descriptors(
    _request: v1::ListMetricDescriptorsRequest,
) -> Result<v1::ListMetricDescriptorsResponse, ServiceError> {
    Ok(v1::ListMetricDescriptorsResponse {
        descriptors: descriptors(),
    })
}
