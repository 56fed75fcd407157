//! The command-line contract: flags, config errors, socket handling and clean shutdown.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::process::Command;
use std::time::Duration;

use berth_integration::{berthd_binary, wait_timeout, Berthd, Layout};
use cri_api::v1;

#[test]
fn version_flag_prints_the_version() {
    let output = Command::new(berthd_binary())
        .arg("--version")
        .output()
        .unwrap();
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        format!("berthd {}", env!("CARGO_PKG_VERSION"))
    );
}

/// Runs berthd on `config_text` and returns its exit code and stderr.
fn run_with_config(config_text: &str) -> (Option<i32>, String, Layout) {
    let layout = Layout::new();
    std::fs::write(&layout.config, config_text).unwrap();
    let mut child = layout.spawn(&layout.args());
    let status = wait_timeout(&mut child, Duration::from_secs(20));
    let log = std::fs::read_to_string(&layout.log).unwrap();
    (status.code(), log, layout)
}

#[test]
fn unknown_config_key_is_a_startup_error_naming_key_and_file() {
    let (code, log, layout) = run_with_config("[runtime]\nrunc_pth = \"/usr/sbin/runc\"\n");
    assert_eq!(code, Some(2), "{log}");
    assert!(log.contains("runc_pth"), "{log}");
    assert!(log.contains(&layout.config.display().to_string()), "{log}");
    assert!(!layout.socket.exists(), "no socket may be created");
}

#[test]
fn wrongly_typed_config_value_is_a_startup_error() {
    let (code, log, layout) = run_with_config("[cni]\nbin_dirs = 7\n");
    assert_eq!(code, Some(2), "{log}");
    assert!(log.contains("cni.bin_dirs"), "{log}");
    assert!(log.contains(&layout.config.display().to_string()), "{log}");
}

#[test]
fn a_missing_shim_is_a_startup_error_naming_it() {
    let (code, log, layout) =
        run_with_config("[runtime]\nshim_path = \"/nonexistent/berth-shim\"\n");
    assert_ne!(code, Some(0), "{log}");
    assert!(
        log.contains("no berth-shim at /nonexistent/berth-shim (not found)")
            && log.contains("runtime.shim_path"),
        "{log}"
    );
    assert!(!layout.socket.exists(), "the socket must be gone");
}

/// `<layout dir>/berth.d`: the drop-in directory the layout's config file names.
fn drop_in_dir(layout: &Layout) -> std::path::PathBuf {
    let dir = layout.dir.path().join("berth.d");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn drop_ins_override_the_config_file_and_are_named_at_start() {
    let layout = Layout::with_config(
        "[stream]
token_ttl_seconds = 5
",
    );
    let dir = drop_in_dir(&layout);
    std::fs::write(
        dir.join("20-ttl.toml"),
        "[stream]
token_ttl_seconds = 9
",
    )
    .unwrap();
    std::fs::write(dir.join("10-level.toml"), "log_level = \"debug\"\n").unwrap();
    std::fs::write(dir.join("30-ignored.toml.disabled"), "bogus = 1\n").unwrap();
    let daemon = layout.start();
    let response = daemon
        .runtime()
        .await
        .status(v1::StatusRequest { verbose: true })
        .await
        .unwrap()
        .into_inner();
    let config: serde_json::Value = serde_json::from_str(&response.info["config"]).unwrap();
    assert_eq!(config["stream"]["token_ttl_seconds"], 9);
    assert_eq!(config["log_level"], "debug");
    assert_eq!(config["config_dir"], dir.display().to_string());
    let log = daemon.log_text();
    let files = format!(
        "embedded default + {} + {} + {}",
        daemon.config.display(),
        dir.join("10-level.toml").display(),
        dir.join("20-ttl.toml").display()
    );
    assert!(log.contains(&files), "{log}");
}

#[test]
fn an_unknown_key_in_a_drop_in_is_a_startup_error_naming_the_drop_in() {
    let layout = Layout::new();
    let dir = drop_in_dir(&layout);
    std::fs::write(
        dir.join("10-ok.toml"),
        "[cni]\nbin_dirs = [\"/usr/lib/cni\"]\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("50-kind.toml"),
        "[runtime]\ndefualt_handler = \"crun\"\n",
    )
    .unwrap();
    let mut child = layout.spawn(&layout.args());
    let status = wait_timeout(&mut child, Duration::from_secs(20));
    let log = std::fs::read_to_string(&layout.log).unwrap();
    assert_eq!(status.code(), Some(2), "{log}");
    assert!(
        log.contains(&format!(
            "config file {}: key `runtime.defualt_handler`",
            dir.join("50-kind.toml").display()
        )),
        "{log}"
    );
    assert!(!layout.socket.exists(), "no socket may be created");
}

#[test]
fn malformed_toml_is_a_startup_error() {
    let (code, log, _layout) = run_with_config("[cni\n");
    assert_eq!(code, Some(2), "{log}");
    assert!(log.contains("line 1"), "{log}");
}

#[tokio::test]
async fn socket_has_mode_0660_and_a_second_daemon_is_refused() {
    let daemon = Berthd::start();
    let meta = std::fs::metadata(&daemon.socket).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);

    // Same socket, separate root: the second daemon must refuse and leave the first alone.
    let other = Layout::new();
    let mut args = other.args();
    let listen = args.iter().position(|a| a == "--listen").unwrap();
    args[listen + 1] = daemon.socket.display().to_string();
    let mut second = other.spawn(&args);
    let status = wait_timeout(&mut second, Duration::from_secs(20));
    assert!(!status.success());
    let log = std::fs::read_to_string(&other.log).unwrap();
    assert!(log.contains("already serving"), "{log}");

    let version = daemon
        .runtime()
        .await
        .version(v1::VersionRequest::default())
        .await;
    assert!(version.is_ok(), "first daemon must keep serving");
}

#[tokio::test]
async fn stale_socket_is_replaced() {
    let layout = Layout::new();
    // A socket file with nobody listening, as a crash leaves it.
    drop(std::os::unix::net::UnixListener::bind(&layout.socket).unwrap());
    let daemon = layout.start();
    let version = daemon
        .runtime()
        .await
        .version(v1::VersionRequest::default())
        .await;
    assert_eq!(version.unwrap().into_inner().runtime_name, "berth");
}

#[tokio::test]
async fn sigterm_removes_the_socket_and_the_store_reopens() {
    let mut daemon = Berthd::start();
    let status = daemon.terminate();
    assert!(
        status.success(),
        "exit status {status:?}\n{}",
        daemon.log_text()
    );
    assert!(
        !daemon.socket.exists(),
        "socket must be removed on shutdown"
    );
    assert!(daemon.log_text().contains("shutting down"));

    // The same root opens again: the store was closed cleanly and its lock released.
    let layout = Layout::new();
    let mut args = layout.args();
    let root = args.iter().position(|a| a == "--root").unwrap();
    args[root + 1] = daemon.root.display().to_string();
    let mut child = layout.spawn(&args);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !layout.socket.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let channel = berth_integration::connect(&layout.socket).await;
    let mut client = cri_api::RuntimeServiceClient::new(channel);
    assert!(client.version(v1::VersionRequest::default()).await.is_ok());
    let _ = child.kill();
    let _ = child.wait();
}
