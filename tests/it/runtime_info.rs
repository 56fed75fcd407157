//! The RPCs built by the foundation: Version, Status, RuntimeConfig, ImageFsInfo, ListImages.

use berth_integration::Berthd;
use cri_api::v1;

#[tokio::test]
async fn version_names_berth() {
    let daemon = Berthd::start();
    let response = daemon
        .runtime()
        .await
        .version(v1::VersionRequest {
            version: "v1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(response.runtime_name, "berth");
    assert_eq!(response.runtime_api_version, "v1");
    assert_eq!(response.runtime_version, env!("CARGO_PKG_VERSION"));
}

#[tokio::test]
async fn status_reports_both_conditions_and_verbose_config() {
    let daemon = Berthd::start();
    let response = daemon
        .runtime()
        .await
        .status(v1::StatusRequest { verbose: true })
        .await
        .unwrap()
        .into_inner();
    let conditions = response.status.unwrap().conditions;
    let kinds: Vec<&str> = conditions.iter().map(|c| c.r#type.as_str()).collect();
    assert_eq!(kinds, ["RuntimeReady", "NetworkReady"]);
    for condition in &conditions {
        // A false condition must say why.
        if !condition.status {
            assert!(!condition.reason.is_empty(), "{condition:?}");
            assert!(!condition.message.is_empty(), "{condition:?}");
        }
    }

    let config: serde_json::Value = serde_json::from_str(&response.info["config"]).unwrap();
    assert_eq!(config["root"], daemon.root.display().to_string());
    assert_eq!(config["state"], daemon.state.display().to_string());
    assert_eq!(config["listen"], daemon.socket.display().to_string());
    let network: serde_json::Value = serde_json::from_str(&response.info["network"]).unwrap();
    assert_eq!(network["ready"], conditions[1].status);
    // The default handler, under "" and under its name.
    let handlers: Vec<&str> = response
        .runtime_handlers
        .iter()
        .map(|h| h.name.as_str())
        .collect();
    assert_eq!(handlers, ["", "runc"]);
    let listed: serde_json::Value = serde_json::from_str(&response.info["handlers"]).unwrap();
    assert_eq!(listed[0]["name"], "runc");
    assert_eq!(listed[0]["default"], true);
    assert_eq!(
        listed[0]["root"],
        daemon.state.join("runc").display().to_string()
    );
}

#[tokio::test]
async fn network_is_not_ready_when_a_plugin_is_missing() {
    let layout = berth_integration::Layout::new();
    let conf_dir = layout.dir.path().join("net.d");
    std::fs::create_dir_all(&conf_dir).unwrap();
    std::fs::write(
        conf_dir.join("10-test.conflist"),
        r#"{"cniVersion":"1.0.0","name":"t","plugins":[{"type":"berth-no-such-plugin"}]}"#,
    )
    .unwrap();
    let daemon = layout.start();
    let response = daemon
        .runtime()
        .await
        .status(v1::StatusRequest { verbose: false })
        .await
        .unwrap()
        .into_inner();
    let network = &response.status.unwrap().conditions[1];
    assert_eq!(network.r#type, "NetworkReady");
    assert!(!network.status);
    assert_eq!(network.reason, "NetworkPluginNotFound");
    assert!(
        network.message.contains("berth-no-such-plugin"),
        "{}",
        network.message
    );
    assert!(
        response.info.is_empty(),
        "info is only for verbose requests"
    );
}

#[tokio::test]
async fn runtime_config_reports_the_detected_cgroup_driver() {
    let daemon = Berthd::start();
    let response = daemon
        .runtime()
        .await
        .runtime_config(v1::RuntimeConfigRequest {})
        .await
        .unwrap()
        .into_inner();
    let expected = if std::path::Path::new("/run/systemd/system").is_dir() {
        v1::CgroupDriver::Systemd
    } else {
        v1::CgroupDriver::Cgroupfs
    };
    assert_eq!(response.linux.unwrap().cgroup_driver, expected as i32);
}

#[tokio::test]
async fn image_store_starts_empty() {
    let daemon = Berthd::start();
    let mut images = daemon.images().await;
    let list = images
        .list_images(v1::ListImagesRequest { filter: None })
        .await
        .unwrap()
        .into_inner();
    assert!(list.images.is_empty());

    let info = images
        .image_fs_info(v1::ImageFsInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    let fs = &info.image_filesystems[0];
    assert!(fs.timestamp > 0);
    assert!(fs
        .fs_id
        .as_ref()
        .unwrap()
        .mountpoint
        .starts_with(&daemon.root.display().to_string()));
    assert!(fs.used_bytes.is_some() && fs.inodes_used.is_some());
}

/// The `pod_cidrs` the verbose Status reports in its `network` info.
async fn reported_pod_cidrs(daemon: &Berthd) -> String {
    let info = daemon
        .runtime()
        .await
        .status(v1::StatusRequest { verbose: true })
        .await
        .unwrap()
        .into_inner()
        .info;
    let network: serde_json::Value = serde_json::from_str(&info["network"]).unwrap();
    network["pod_cidrs"].as_str().unwrap().to_owned()
}

fn pod_cidr_request(pod_cidr: &str) -> v1::UpdateRuntimeConfigRequest {
    v1::UpdateRuntimeConfigRequest {
        runtime_config: Some(v1::RuntimeConfig {
            network_config: Some(v1::NetworkConfig {
                pod_cidr: pod_cidr.into(),
            }),
        }),
    }
}

#[tokio::test]
async fn update_runtime_config_keeps_the_pod_cidrs() {
    let mut daemon = Berthd::start();
    assert_eq!(reported_pod_cidrs(&daemon).await, "");
    let mut rt = daemon.runtime().await;
    let bad = rt
        .update_runtime_config(pod_cidr_request("10.244.7.0/24,10.244.8.0/40"))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
    assert!(
        bad.message().contains("pod_cidr") && bad.message().contains("prefix length"),
        "{}",
        bad.message()
    );
    assert_eq!(reported_pod_cidrs(&daemon).await, "");

    rt.update_runtime_config(pod_cidr_request(" 10.244.7.0/24, fd00:10:244:7::/64"))
        .await
        .unwrap();
    let both = "10.244.7.0/24,fd00:10:244:7::/64";
    assert_eq!(reported_pod_cidrs(&daemon).await, both);
    // Kept across a restart.
    assert!(daemon.terminate().success());
    daemon.restart();
    assert_eq!(reported_pod_cidrs(&daemon).await, both);
    // Empty clears them (the built-in network's own range again).
    let mut rt = daemon.runtime().await;
    rt.update_runtime_config(pod_cidr_request(""))
        .await
        .unwrap();
    assert_eq!(reported_pod_cidrs(&daemon).await, "");
}
