//! `Status`: whether the runtime and pod networking are ready, and with `verbose` the
//! effective configuration and what was detected on the host.

use std::collections::HashMap;
use std::sync::Arc;

use berth_net::cni::{network_readiness, PodCidr, Readiness};
use cri_api::v1;
use serde_json::json;

use crate::daemon::Daemon;
use crate::error::ServiceError;
use crate::handlers::RuntimeHandler;

/// CRI condition type: the runtime can run containers.
const RUNTIME_READY: &str = "RuntimeReady";
/// CRI condition type: pod networking can be set up.
const NETWORK_READY: &str = "NetworkReady";

pub(super) async fn status(
    daemon: Arc<Daemon>,
    request: v1::StatusRequest,
) -> Result<v1::StatusResponse, ServiceError> {
    let probe = daemon.clone();
    let (runtime, network) = tokio::task::spawn_blocking(move || {
        let runtime = runtime_condition(&probe);
        let network = network_readiness(&probe.config.cni.conf_dir, &probe.config.cni.bin_dirs);
        (runtime, network)
    })
    .await?;

    let mut info = HashMap::new();
    if request.verbose {
        info = verbose_info(&daemon, &network);
    }
    Ok(v1::StatusResponse {
        status: Some(v1::RuntimeStatus {
            conditions: vec![runtime, network_condition(&network)],
        }),
        info,
        runtime_handlers: runtime_handlers(&daemon),
        features: Some(v1::RuntimeFeatures {
            // ContainerStatus.user reports the resolved groups; the spec builder applies
            // the Merge and Strict policies.
            supplemental_groups_policy: true,
            user_namespaces_host_network: false,
            mount_options: false,
        }),
    })
}

/// Every handler with its features: the default one under the name "" (what pods without a
/// RuntimeClass ask for) and again under its own name, then the others by name.
fn runtime_handlers(daemon: &Daemon) -> Vec<v1::RuntimeHandler> {
    let entry = |name: &str, handler: &RuntimeHandler| v1::RuntimeHandler {
        name: name.to_owned(),
        features: Some(v1::RuntimeHandlerFeatures {
            recursive_read_only_mounts: handler.recursive_read_only,
            user_namespaces: handler.user_namespaces,
        }),
    };
    let mut list = vec![entry("", daemon.default_handler())];
    list.extend(daemon.handlers.all().iter().map(|h| entry(&h.name, h)));
    list
}

/// Ready when the default handler's binary is there (another handler's missing binary
/// fails only the pods that ask for it).
fn runtime_condition(daemon: &Daemon) -> v1::RuntimeCondition {
    let handler = daemon.default_handler();
    match handler.binary() {
        Some(_) => condition(RUNTIME_READY, true, "", String::new()),
        None => condition(
            RUNTIME_READY,
            false,
            "RuncNotFound",
            format!(
                "OCI runtime {} of the default runtime handler {:?} is not an executable file \
                 (runtime.runc_path or runtime.handlers.{}.path; PATH={})",
                handler.path.display(),
                handler.name,
                handler.name,
                std::env::var("PATH").unwrap_or_default()
            ),
        ),
    }
}

fn network_condition(readiness: &Readiness) -> v1::RuntimeCondition {
    match readiness {
        Readiness::Ready { .. } => condition(NETWORK_READY, true, "", String::new()),
        Readiness::NotReady { reason, message } => {
            condition(NETWORK_READY, false, reason, message.clone())
        }
    }
}

fn condition(kind: &str, status: bool, reason: &str, message: String) -> v1::RuntimeCondition {
    v1::RuntimeCondition {
        r#type: kind.to_owned(),
        status,
        reason: reason.to_owned(),
        message,
    }
}

/// `info` of a verbose Status: each value is a JSON document.
fn verbose_info(daemon: &Daemon, network: &Readiness) -> HashMap<String, String> {
    let mut network = match network {
        Readiness::Ready { network, source } => {
            json!({ "ready": true, "name": network, "source": source })
        }
        Readiness::NotReady { reason, message } => {
            json!({ "ready": false, "reason": reason, "message": message })
        }
    };
    // From UpdateRuntimeConfig; used by the built-in network.
    network["pod_cidrs"] = json!(PodCidr::format_list(&daemon.cni.pod_cidrs()));
    let runc = daemon
        .default_handler()
        .binary()
        .map(|path| path.display().to_string());
    let handlers: Vec<_> = daemon
        .handlers
        .all()
        .iter()
        .map(|h| {
            json!({
                "name": h.name,
                "default": h.default,
                "path": h.binary().unwrap_or_else(|| h.path.clone()),
                "found": h.binary().is_some(),
                "root": h.root,
                "systemd_cgroup": h.systemd_cgroup,
            })
        })
        .collect();
    let mut config = daemon.config.to_json();
    // Where container root filesystems are assembled from the snapshots, under the name
    // containerd gives it: tools (critest) probe idmapped-mount support on its parent.
    config["stateDir"] = json!(daemon.config.root.join("snapshots"));
    HashMap::from([
        ("config".to_owned(), config.to_string()),
        ("network".to_owned(), network.to_string()),
        (
            "cgroup".to_owned(),
            json!({ "driver": daemon.cgroup_driver.name(), "mode": daemon.cgroup_mode.name() })
                .to_string(),
        ),
        ("runc".to_owned(), json!({ "path": runc }).to_string()),
        ("handlers".to_owned(), json!(handlers).to_string()),
    ])
}
