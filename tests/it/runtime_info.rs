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
    assert_eq!(response.runtime_handlers.len(), 1);
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
