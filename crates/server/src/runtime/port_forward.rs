//! `PortForward`: validates the sandbox and returns a streaming URL; each forwarded
//! connection is a TCP connection to `127.0.0.1:<port>` made inside the pod's network
//! namespace (or the host's, for a host-network pod).

use std::path::PathBuf;
use std::sync::Arc;

use berth_store::SandboxState;
use berth_stream::{BoxFuture, PortDialer, StreamRequest};
use cri_api::v1;

use crate::daemon::Daemon;
use crate::error::ServiceError;

pub(super) async fn port_forward(
    daemon: Arc<Daemon>,
    request: v1::PortForwardRequest,
) -> Result<v1::PortForwardResponse, ServiceError> {
    let record = daemon.find_sandbox(&request.pod_sandbox_id)?;
    if record.state != SandboxState::Ready {
        return Err(ServiceError::FailedPrecondition {
            what: format!("pod sandbox {} is not ready", record.id),
        });
    }
    if let Some(port) = request.port.iter().find(|p| !(1..=65535).contains(*p)) {
        return Err(ServiceError::Unsupported {
            field: "port",
            reason: format!("{port} is not a TCP port"),
        });
    }
    let dialer = PodDialer {
        netns: record.netns_path.map(PathBuf::from),
    };
    let url = daemon.stream()?.register(StreamRequest::PortForward {
        dialer: Box::new(dialer),
    })?;
    Ok(v1::PortForwardResponse { url })
}

/// Connects to the pod's loopback: inside its pinned network namespace, or in the host's
/// when the pod uses the host network.
struct PodDialer {
    netns: Option<PathBuf>,
}

impl PortDialer for PodDialer {
    fn held_bytes(&self) -> usize {
        self.netns.as_ref().map_or(0, PathBuf::capacity)
    }

    fn dial(&self, port: u16) -> BoxFuture<std::io::Result<tokio::net::TcpStream>> {
        let netns = self.netns.clone();
        Box::pin(async move {
            let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
            let stream = match netns {
                None => return tokio::net::TcpStream::connect(address).await,
                Some(netns) => tokio::task::spawn_blocking(move || {
                    berth_net::ns::in_netns(&netns, || {
                        std::net::TcpStream::connect_timeout(
                            &address,
                            std::time::Duration::from_secs(10),
                        )
                    })
                    .map_err(std::io::Error::other)?
                })
                .await
                .map_err(std::io::Error::other)??,
            };
            stream.set_nonblocking(true)?;
            tokio::net::TcpStream::from_std(stream)
        })
    }
}
