//! The gRPC channel to berthd's Unix socket.

use std::path::Path;

use berth_admin_api::AdminClient;
use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint, Uri};

use crate::error::CtlError;

/// Largest message accepted from berthd (its own limit).
const MAX_MESSAGE_SIZE: usize = 16 << 20;

/// An Admin client connected to `socket`.
pub async fn connect(socket: &Path) -> Result<AdminClient<Channel>, CtlError> {
    let path = socket.to_owned();
    // tonic wants a URI; the connector dials the socket whatever it says.
    let channel = Endpoint::from_static("http://berthd.invalid")
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let path = path.clone();
            async move {
                let stream = tokio::net::UnixStream::connect(path).await?;
                Ok::<_, std::io::Error>(TokioIo::new(stream))
            }
        }))
        .await
        .map_err(|source| CtlError::Connect {
            socket: socket.to_owned(),
            source,
        })?;
    Ok(AdminClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE_SIZE)
        .max_encoding_message_size(MAX_MESSAGE_SIZE))
}
