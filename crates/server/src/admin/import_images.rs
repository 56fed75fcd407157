//! `ImportImages`: an image archive streamed by the client into the image manager. The
//! first message says whether to pin; the import runs in a task of its own, so a client
//! that goes away mid-commit never leaves it half-done (a client that goes away while
//! sending fails the import, which then keeps nothing).

use std::sync::Arc;

use berth_admin_api::v1;
use berth_image::ImportOptions;
use bytes::Bytes;
use tokio_stream::StreamExt as _;
use tonic::Streaming;

use crate::daemon::Daemon;
use crate::error::ServiceError;

pub(super) async fn import_images(
    daemon: Arc<Daemon>,
    mut stream: Streaming<v1::ImportImagesRequest>,
) -> Result<v1::ImportImagesResponse, ServiceError> {
    // No message at all is an empty archive, refused as no image archive.
    let first = stream.message().await.map_err(stream_error)?;
    let options = ImportOptions {
        pin: first.as_ref().is_some_and(|m| m.pin),
    };
    let first = first.map(|m| Ok(Bytes::from(m.data)));
    let chunks = tokio_stream::iter(first).chain(stream.map(|message| {
        message
            .map(|m| Bytes::from(m.data))
            .map_err(|status| std::io::Error::other(status.message().to_owned()))
    }));
    let records =
        tokio::spawn(async move { daemon.images.import(Box::pin(chunks), options).await })
            .await??;
    Ok(v1::ImportImagesResponse {
        images: records
            .into_iter()
            .map(|record| v1::ImportedImage {
                id: record.id,
                repo_tags: record.repo_tags,
                repo_digests: record.repo_digests,
                pinned: record.pinned,
            })
            .collect(),
    })
}

/// The client's stream failed before its first message.
fn stream_error(status: tonic::Status) -> ServiceError {
    ServiceError::Image(
        berth_image::ArchiveError::Read {
            source: std::io::Error::other(status.message().to_owned()),
        }
        .into(),
    )
}
