//! `GetContainerEvents`: a stream of container lifecycle events until the client leaves.

use std::sync::Arc;

use cri_api::v1;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::StreamExt as _;

use crate::daemon::Daemon;
use crate::error::ServiceError;
use crate::runtime::BoxStream;

pub(super) async fn get_container_events(
    daemon: Arc<Daemon>,
    _request: v1::GetEventsRequest,
) -> Result<BoxStream<v1::ContainerEventResponse>, ServiceError> {
    // A subscriber that lags loses the oldest events and goes on with the newer ones.
    let events = BroadcastStream::new(daemon.core().subscribe())
        .filter_map(|event| event.ok().map(|e| Ok(crate::container::events::to_cri(&e))));
    Ok(Box::pin(events))
}
