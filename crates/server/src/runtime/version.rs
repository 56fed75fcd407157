//! `Version`: the runtime's name and versions.

use cri_api::v1;

use crate::error::ServiceError;

/// Name reported to kubelet and crictl.
pub const RUNTIME_NAME: &str = "berth";

/// Version of the kubelet runtime API, as the CRI defines this field.
const KUBELET_API_VERSION: &str = "0.1.0";

/// The CRI API version berth serves.
const RUNTIME_API_VERSION: &str = "v1";

pub(super) async fn version(
    _request: v1::VersionRequest,
) -> Result<v1::VersionResponse, ServiceError> {
    Ok(v1::VersionResponse {
        version: KUBELET_API_VERSION.to_owned(),
        runtime_name: RUNTIME_NAME.to_owned(),
        runtime_version: env!("CARGO_PKG_VERSION").to_owned(),
        runtime_api_version: RUNTIME_API_VERSION.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reports_berth_and_the_crate_version() {
        let response = version(v1::VersionRequest::default()).await.unwrap();
        assert_eq!(response.runtime_name, "berth");
        assert_eq!(response.runtime_version, env!("CARGO_PKG_VERSION"));
        assert_eq!(response.runtime_api_version, "v1");
    }
}
