//! `UpdateRuntimeConfig`: kubelet hands over the node's pod CIDR(s)
//! (`runtime_config.network_config.pod_cidr`, comma-separated for dual-stack). berth gives
//! them to its built-in network (pods attached from then on get addresses from them; a
//! network configuration file keeps its own ranges) and keeps them in `<root>/pod-cidrs`,
//! so a restarted berthd uses them before kubelet would send them again.

use std::path::{Path, PathBuf};

use berth_net::cni::PodCidr;
use cri_api::v1;

use crate::daemon::Daemon;
use crate::error::ServiceError;

/// The file holding the pod CIDRs (one line, as kubelet sent them, normalised).
const POD_CIDRS_FILE: &str = "pod-cidrs";

pub(super) async fn update_runtime_config(
    daemon: &Daemon,
    request: v1::UpdateRuntimeConfigRequest,
) -> Result<v1::UpdateRuntimeConfigResponse, ServiceError> {
    let text = request
        .runtime_config
        .and_then(|c| c.network_config)
        .map(|n| n.pod_cidr)
        .unwrap_or_default();
    let cidrs = PodCidr::parse_list(&text).map_err(|reason| ServiceError::Unsupported {
        field: "runtime_config.network_config.pod_cidr",
        reason,
    })?;
    let line = PodCidr::format_list(&cidrs);
    let file = pod_cidrs_file(&daemon.config.root);
    let body = format!("{line}\n");
    let written = file.clone();
    tokio::task::spawn_blocking(move || berth_atomicfile::write(&written, body.as_bytes(), 0o644))
        .await?
        .map_err(ServiceError::io("write", &file))?;
    if daemon.cni.pod_cidrs() != cidrs {
        tracing::info!(pod_cidrs = %line, "pod CIDRs set for the built-in network");
    }
    daemon.cni.set_pod_cidrs(cidrs);
    Ok(v1::UpdateRuntimeConfigResponse {})
}

fn pod_cidrs_file(root: &Path) -> PathBuf {
    root.join(POD_CIDRS_FILE)
}

/// The pod CIDRs a previous berthd kept (none when never set, or unreadable: logged).
pub fn saved_pod_cidrs(root: &Path) -> Vec<PodCidr> {
    let file = pod_cidrs_file(root);
    let text = match std::fs::read_to_string(&file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => {
            tracing::warn!(file = %file.display(), error = %e, "cannot read the saved pod CIDRs");
            return Vec::new();
        }
    };
    PodCidr::parse_list(text.trim()).unwrap_or_else(|reason| {
        tracing::warn!(file = %file.display(), %reason, "ignoring the saved pod CIDRs");
        Vec::new()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_cidrs_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        assert!(saved_pod_cidrs(dir.path()).is_empty());
        std::fs::write(pod_cidrs_file(dir.path()), "10.244.0.0/24,fd00::/64\n").unwrap();
        assert_eq!(
            PodCidr::format_list(&saved_pod_cidrs(dir.path())),
            "10.244.0.0/24,fd00::/64"
        );
        std::fs::write(pod_cidrs_file(dir.path()), "garbage\n").unwrap();
        assert!(saved_pod_cidrs(dir.path()).is_empty());
    }
}
