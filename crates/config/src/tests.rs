use std::io::Write;
use std::path::{Path, PathBuf};

use super::*;

fn write_config(text: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(text.as_bytes()).unwrap();
    file
}

#[test]
fn embedded_default_is_complete_and_valid() {
    let config = Config::load(None, &Overrides::default()).unwrap();
    assert_eq!(config.root, Path::new("/var/lib/berth"));
    assert_eq!(config.state, Path::new("/run/berth"));
    assert_eq!(config.listen, Path::new("/run/berth/berth.sock"));
    assert_eq!(config.registry.config_path, Path::new("/etc/berth/certs.d"));
    assert_eq!(config.cni.conf_dir, Path::new("/etc/cni/net.d"));
    assert_eq!(config.runtime.cgroup_driver, CgroupDriverSetting::Auto);
    assert_eq!(config.runtime.runc_path, Path::new("runc"));
}

#[test]
fn every_embedded_key_is_documented_by_a_comment() {
    // Each `key = value` line must follow a comment line (possibly through other keys' blocks).
    let mut previous_was_comment = false;
    for line in EMBEDDED_DEFAULT.lines().map(str::trim) {
        if line.contains(" = ") && !line.starts_with('#') {
            assert!(previous_was_comment, "undocumented key: {line}");
        }
        if !line.is_empty() {
            previous_was_comment = line.starts_with('#');
        }
    }
}

#[test]
fn file_overrides_a_subset_and_keeps_other_defaults() {
    let file = write_config("root = \"/srv/berth\"\n[runtime]\ncgroup_driver = \"systemd\"\n");
    let config = Config::load(Some(file.path()), &Overrides::default()).unwrap();
    assert_eq!(config.root, Path::new("/srv/berth"));
    assert_eq!(config.runtime.cgroup_driver, CgroupDriverSetting::Systemd);
    assert_eq!(config.runtime.runc_path, Path::new("runc"));
    assert_eq!(config.state, Path::new("/run/berth"));
}

#[test]
fn flags_override_the_file() {
    let file = write_config("root = \"/srv/berth\"\nlisten = \"/srv/b.sock\"\n");
    let overrides = Overrides {
        root: Some(PathBuf::from("/tmp/r")),
        log_level: Some("debug".into()),
        ..Overrides::default()
    };
    let config = Config::load(Some(file.path()), &overrides).unwrap();
    assert_eq!(config.root, Path::new("/tmp/r"));
    assert_eq!(config.listen, Path::new("/srv/b.sock"));
    assert_eq!(config.log_level, "debug");
}

#[test]
fn unknown_key_names_the_key_and_the_file() {
    let file = write_config("[runtime]\nrunc_paht = \"/usr/bin/runc\"\n");
    let err = Config::load(Some(file.path()), &Overrides::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("runc_paht"), "{err}");
    assert!(!err.contains('\n'), "one line: {err}");
    assert!(err.contains("runtime"), "{err}");
    assert!(err.contains(&file.path().display().to_string()), "{err}");
}

#[test]
fn wrong_type_names_the_key_and_the_file() {
    let file = write_config("[cni]\nbin_dirs = \"/usr/lib/cni\"\n");
    let err = Config::load(Some(file.path()), &Overrides::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("cni.bin_dirs"), "{err}");
    assert!(err.contains(&file.path().display().to_string()), "{err}");
}

#[test]
fn bad_enum_value_is_rejected() {
    let file = write_config("[runtime]\ncgroup_driver = \"cgroupv3\"\n");
    let err = Config::load(Some(file.path()), &Overrides::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("runtime.cgroup_driver"), "{err}");
    assert!(err.contains("cgroupv3"), "{err}");
}

#[test]
fn syntax_error_gives_the_file_and_line() {
    let file = write_config("root = \n");
    let err = Config::load(Some(file.path()), &Overrides::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains(&file.path().display().to_string()), "{err}");
    assert!(err.contains("line 1"), "{err}");
}

#[test]
fn missing_file_is_a_read_error() {
    let err = Config::load(
        Some(Path::new("/nonexistent/berth.toml")),
        &Overrides::default(),
    )
    .unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }), "{err}");
}

#[test]
fn relative_paths_and_long_sockets_are_rejected() {
    let file = write_config("state = \"run/berth\"\n");
    let err = Config::load(Some(file.path()), &Overrides::default()).unwrap_err();
    assert!(err.to_string().contains("`state`"), "{err}");

    let overrides = Overrides {
        listen: Some(PathBuf::from(format!("/{}", "s".repeat(200)))),
        ..Overrides::default()
    };
    let err = Config::load(None, &overrides).unwrap_err();
    assert!(err.to_string().contains("at most 107"), "{err}");
}

#[test]
fn json_view_carries_every_section() {
    let json = Config::embedded().unwrap().to_json();
    assert_eq!(json["runtime"]["cgroup_driver"], "auto");
    assert_eq!(json["cni"]["bin_dirs"][0], "/usr/lib/cni");
    assert_eq!(json["state"], "/run/berth");
}

#[test]
fn stream_section_has_defaults_and_is_validated() {
    let config = Config::embedded().unwrap();
    assert_eq!(config.stream.address, "127.0.0.1");
    assert_eq!(config.stream.port, 0);
    assert_eq!(config.stream.token_ttl_seconds, 60);
    assert_eq!(config.stream.max_pending_sessions, 1024);
    assert_eq!(config.stream.max_pending_bytes, 64 << 20);

    let file = write_config("[stream]\naddress = \"localhost\"\n");
    let err = Config::load(Some(file.path()), &Overrides::default()).unwrap_err();
    assert!(err.to_string().contains("stream.address"), "{err}");
    let file = write_config("[stream]\ntoken_ttl_seconds = 0\n");
    let err = Config::load(Some(file.path()), &Overrides::default()).unwrap_err();
    assert!(
        err.to_string().contains("stream.token_ttl_seconds"),
        "{err}"
    );
    for key in ["max_pending_sessions", "max_pending_bytes"] {
        let file = write_config(&format!("[stream]\n{key} = 0\n"));
        let err = Config::load(Some(file.path()), &Overrides::default()).unwrap_err();
        assert!(err.to_string().contains(&format!("stream.{key}")), "{err}");
    }
    let file = write_config("[stream]\nmax_pending_sessions = 5\nmax_pending_bytes = 4096\n");
    let config = Config::load(Some(file.path()), &Overrides::default()).unwrap();
    assert_eq!(config.stream.max_pending_sessions, 5);
    assert_eq!(config.stream.max_pending_bytes, 4096);
    let file = write_config("[stream]\naddress = \"::1\"\nport = 10010\n");
    let config = Config::load(Some(file.path()), &Overrides::default()).unwrap();
    assert_eq!(config.stream.port, 10010);
}

#[test]
fn image_section_has_defaults_and_is_validated() {
    let config = Config::embedded().unwrap();
    assert_eq!(config.image.max_layer_bytes, 16 << 30);
    assert_eq!(config.image.max_layer_entries, 1_000_000);
    assert_eq!(config.image.max_file_bytes, 8 << 30);
    for key in ["max_layer_bytes", "max_layer_entries", "max_file_bytes"] {
        let file = write_config(&format!("[image]\n{key} = 0\n"));
        let err = Config::load(Some(file.path()), &Overrides::default()).unwrap_err();
        assert!(err.to_string().contains(&format!("image.{key}")), "{err}");
    }
    let file = write_config("[image]\nmax_file_bytes = 1048576\n");
    let config = Config::load(Some(file.path()), &Overrides::default()).unwrap();
    assert_eq!(config.image.max_file_bytes, 1 << 20);
    assert_eq!(config.image.max_layer_bytes, 16 << 30);
    assert_eq!(config.to_json()["image"]["max_file_bytes"], 1 << 20);
}

#[test]
fn metrics_are_off_by_default_and_their_address_is_validated() {
    let config = Config::embedded().unwrap();
    assert_eq!(config.metrics.address, "");
    assert_eq!(config.metrics.socket_addr(), None);

    for (address, want) in [
        ("127.0.0.1:9090", "127.0.0.1:9090"),
        ("[::1]:9090", "[::1]:9090"),
        ("0.0.0.0:9100", "0.0.0.0:9100"),
    ] {
        let file = write_config(&format!("[metrics]\naddress = \"{address}\"\n"));
        let config = Config::load(Some(file.path()), &Overrides::default()).unwrap();
        assert_eq!(config.metrics.socket_addr(), Some(want.parse().unwrap()));
    }
    for (address, reason) in [
        ("localhost:9090", "is not IP:PORT"),
        ("127.0.0.1", "is not IP:PORT"),
        ("::1:9090", "is not IP:PORT"),
        ("127.0.0.1:0", "port other than 0"),
        ("127.0.0.1:70000", "is not IP:PORT"),
    ] {
        let file = write_config(&format!("[metrics]\naddress = \"{address}\"\n"));
        let err = Config::load(Some(file.path()), &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("metrics.address"), "{address}: {err}");
        assert!(err.contains(reason), "{address}: {err}");
    }
    let file = write_config("[metrics]\nport = 9090\n");
    let err = Config::load(Some(file.path()), &Overrides::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("port"), "{err}");
}
