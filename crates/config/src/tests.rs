use std::io::Write;
use std::path::{Path, PathBuf};

use super::*;

/// Loads with `config_dir` pointing at a directory that does not exist, so that the host's
/// drop-ins play no part.
fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Config, ConfigError> {
    let overrides = Overrides {
        config_dir: overrides
            .config_dir
            .clone()
            .or_else(|| Some(PathBuf::from("/nonexistent/berth.d"))),
        ..overrides.clone()
    };
    Config::load(file, &overrides)
}

fn write_config(text: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(text.as_bytes()).unwrap();
    file
}

#[test]
fn embedded_default_is_complete_and_valid() {
    let config = load(None, &Overrides::default()).unwrap();
    assert_eq!(config.root, Path::new("/var/lib/berth"));
    assert_eq!(config.state, Path::new("/run/berth"));
    assert_eq!(config.listen, Path::new("/run/berth/berth.sock"));
    assert_eq!(config.registry.config_path, Path::new("/etc/berth/certs.d"));
    assert_eq!(config.cni.conf_dir, Path::new("/etc/cni/net.d"));
    assert_eq!(config.runtime.cgroup_driver, CgroupDriverSetting::Auto);
    assert_eq!(config.runtime.runc_path, Path::new(""));
    assert_eq!(
        Config::embedded().unwrap().config_dir,
        Path::new("/etc/berth/berth.d")
    );
    assert_eq!(
        config.handlers(),
        [Handler {
            name: "runc".into(),
            default: true,
            path: "runc".into(),
            root: "/run/berth/runc".into(),
            systemd_cgroup: None,
        }]
    );
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
    let config = load(Some(file.path()), &Overrides::default()).unwrap();
    assert_eq!(config.root, Path::new("/srv/berth"));
    assert_eq!(config.runtime.cgroup_driver, CgroupDriverSetting::Systemd);
    assert_eq!(config.runtime.default_handler, "runc");
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
    let config = load(Some(file.path()), &overrides).unwrap();
    assert_eq!(config.root, Path::new("/tmp/r"));
    assert_eq!(config.listen, Path::new("/srv/b.sock"));
    assert_eq!(config.log_level, "debug");
}

#[test]
fn unknown_key_names_the_key_and_the_file() {
    let file = write_config("[runtime]\nrunc_paht = \"/usr/bin/runc\"\n");
    let err = load(Some(file.path()), &Overrides::default())
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
    let err = load(Some(file.path()), &Overrides::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("cni.bin_dirs"), "{err}");
    assert!(err.contains(&file.path().display().to_string()), "{err}");
}

#[test]
fn bad_enum_value_is_rejected() {
    let file = write_config("[runtime]\ncgroup_driver = \"cgroupv3\"\n");
    let err = load(Some(file.path()), &Overrides::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("runtime.cgroup_driver"), "{err}");
    assert!(err.contains("cgroupv3"), "{err}");
}

#[test]
fn syntax_error_gives_the_file_and_line() {
    let file = write_config("root = \n");
    let err = load(Some(file.path()), &Overrides::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains(&file.path().display().to_string()), "{err}");
    assert!(err.contains("line 1"), "{err}");
}

#[test]
fn missing_file_is_a_read_error() {
    let err = load(
        Some(Path::new("/nonexistent/berth.toml")),
        &Overrides::default(),
    )
    .unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }), "{err}");
}

#[test]
fn relative_paths_and_long_sockets_are_rejected() {
    let file = write_config("state = \"run/berth\"\n");
    let err = load(Some(file.path()), &Overrides::default()).unwrap_err();
    assert!(err.to_string().contains("`state`"), "{err}");

    let overrides = Overrides {
        listen: Some(PathBuf::from(format!("/{}", "s".repeat(200)))),
        ..Overrides::default()
    };
    let err = load(None, &overrides).unwrap_err();
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
    let err = load(Some(file.path()), &Overrides::default()).unwrap_err();
    assert!(err.to_string().contains("stream.address"), "{err}");
    let file = write_config("[stream]\ntoken_ttl_seconds = 0\n");
    let err = load(Some(file.path()), &Overrides::default()).unwrap_err();
    assert!(
        err.to_string().contains("stream.token_ttl_seconds"),
        "{err}"
    );
    for key in ["max_pending_sessions", "max_pending_bytes"] {
        let file = write_config(&format!("[stream]\n{key} = 0\n"));
        let err = load(Some(file.path()), &Overrides::default()).unwrap_err();
        assert!(err.to_string().contains(&format!("stream.{key}")), "{err}");
    }
    let file = write_config("[stream]\nmax_pending_sessions = 5\nmax_pending_bytes = 4096\n");
    let config = load(Some(file.path()), &Overrides::default()).unwrap();
    assert_eq!(config.stream.max_pending_sessions, 5);
    assert_eq!(config.stream.max_pending_bytes, 4096);
    let file = write_config("[stream]\naddress = \"::1\"\nport = 10010\n");
    let config = load(Some(file.path()), &Overrides::default()).unwrap();
    assert_eq!(config.stream.port, 10010);
}

/// A `--config` file and a drop-in directory holding `drop_ins` (name, text).
struct DropIns {
    dir: tempfile::TempDir,
}

impl DropIns {
    fn new(drop_ins: &[(&str, &str)]) -> DropIns {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("berth.d")).unwrap();
        for (name, text) in drop_ins {
            std::fs::write(dir.path().join("berth.d").join(name), text).unwrap();
        }
        DropIns { dir }
    }

    fn config_dir(&self) -> PathBuf {
        self.dir.path().join("berth.d")
    }

    fn drop_in(&self, name: &str) -> PathBuf {
        self.config_dir().join(name)
    }

    /// Loads with `main` as the --config file, which points `config_dir` at the directory.
    fn load(&self, main: &str) -> Result<Loaded, ConfigError> {
        let file = self.dir.path().join("berth.toml");
        std::fs::write(
            &file,
            format!("config_dir = {:?}\n{main}", self.config_dir().display()),
        )
        .unwrap();
        Config::load_with_files(Some(&file), &Overrides::default())
    }
}

#[test]
fn a_drop_in_overrides_a_key_of_the_config_file() {
    let d = DropIns::new(&[("50-kind.toml", "[runtime]\ncgroup_driver = \"systemd\"\n")]);
    let loaded = d
        .load("root = \"/srv/berth\"\n[runtime]\ncgroup_driver = \"cgroupfs\"\n")
        .unwrap();
    assert_eq!(
        loaded.config.runtime.cgroup_driver,
        CgroupDriverSetting::Systemd
    );
    assert_eq!(loaded.config.root, Path::new("/srv/berth"));
    assert_eq!(
        loaded.files,
        [d.dir.path().join("berth.toml"), d.drop_in("50-kind.toml")]
    );
}

#[test]
fn drop_ins_merge_in_lexical_order_and_only_toml_files_count() {
    let d = DropIns::new(&[
        (
            "20-b.toml",
            "log_level = \"debug\"\n[cni]\nconf_dir = \"/b\"\n",
        ),
        (
            "10-a.toml",
            "log_level = \"warn\"\n[cni]\nbin_dirs = [\"/a\"]\n",
        ),
        ("30-c.toml.bak", "log_level = \"error\"\n"),
        (".40-hidden.toml", "log_level = \"trace\"\n"),
        ("README", "not toml at all ["),
    ]);
    let loaded = d.load("").unwrap();
    assert_eq!(loaded.config.log_level, "debug");
    assert_eq!(loaded.config.cni.conf_dir, Path::new("/b"));
    assert_eq!(loaded.config.cni.bin_dirs, [PathBuf::from("/a")]);
    assert_eq!(
        loaded.files[1..],
        [d.drop_in("10-a.toml"), d.drop_in("20-b.toml")]
    );
}

#[test]
fn an_unknown_key_in_a_drop_in_names_the_drop_in_and_the_key() {
    let d = DropIns::new(&[
        ("10-good.toml", "[runtime]\ncgroup_driver = \"systemd\"\n"),
        ("20-typo.toml", "[registry]\nmax_concurent_downloads = 5\n"),
    ]);
    let err = d.load("").unwrap_err().to_string();
    assert!(
        err.contains(&d.drop_in("20-typo.toml").display().to_string()),
        "{err}"
    );
    assert!(err.contains("max_concurent_downloads"), "{err}");
    assert!(err.contains("registry"), "{err}");
    assert!(!err.contains("10-good"), "{err}");

    let d = DropIns::new(&[("10-type.toml", "[stream]\nport = \"http\"\n")]);
    let err = d.load("").unwrap_err().to_string();
    assert!(
        err.contains("10-type.toml") && err.contains("stream.port"),
        "{err}"
    );
    let d = DropIns::new(&[("10-syntax.toml", "[stream\n")]);
    let err = d.load("").unwrap_err().to_string();
    assert!(
        err.contains("10-syntax.toml") && err.contains("line 1"),
        "{err}"
    );
}

#[test]
fn a_bad_value_names_the_layer_that_set_it_last() {
    let d = DropIns::new(&[("10-ttl.toml", "[stream]\ntoken_ttl_seconds = 0\n")]);
    let err = d.load("[stream]\ntoken_ttl_seconds = 5\n").unwrap_err();
    assert!(
        matches!(&err, ConfigError::Value { origin: Source::File(path), key, .. }
            if *path == d.drop_in("10-ttl.toml") && key == "stream.token_ttl_seconds"),
        "{err}"
    );
    let err = load(
        None,
        &Overrides {
            listen: Some(PathBuf::from("relative.sock")),
            ..Overrides::default()
        },
    )
    .unwrap_err();
    assert!(
        err.to_string().starts_with("command line: key `listen`"),
        "{err}"
    );
}

#[test]
fn the_drop_in_directory_may_be_missing_but_not_unreadable() {
    let d = DropIns::new(&[]);
    std::fs::remove_dir(d.config_dir()).unwrap();
    assert_eq!(d.load("").unwrap().files.len(), 1);
    std::fs::write(d.config_dir(), "a file, not a directory").unwrap();
    let err = d.load("").unwrap_err();
    assert!(matches!(err, ConfigError::ReadDir { .. }), "{err}");
    assert!(err.to_string().contains("config_dir"), "{err}");
}

#[test]
fn only_the_config_file_or_the_flag_moves_the_drop_in_directory() {
    let d = DropIns::new(&[("10-move.toml", "config_dir = \"/elsewhere\"\n")]);
    let err = d.load("").unwrap_err().to_string();
    assert!(
        err.contains("10-move.toml") && err.contains("`config_dir`"),
        "{err}"
    );

    // --config-dir wins over the file's config_dir.
    let other = DropIns::new(&[("x.toml", "log_level = \"debug\"\n")]);
    let file = write_config("config_dir = \"/nonexistent/berth.d\"\n");
    let overrides = Overrides {
        config_dir: Some(other.config_dir()),
        ..Overrides::default()
    };
    let loaded = Config::load_with_files(Some(file.path()), &overrides).unwrap();
    assert_eq!(loaded.config.log_level, "debug");
    assert_eq!(loaded.config.config_dir, other.config_dir());

    let overrides = Overrides {
        config_dir: Some(PathBuf::from("berth.d")),
        ..Overrides::default()
    };
    let err = Config::load(None, &overrides).unwrap_err().to_string();
    assert!(err.starts_with("command line: key `config_dir`"), "{err}");
}

#[test]
fn handlers_fill_in_their_defaults() {
    let file = write_config(
        "[runtime]\nrunc_path = \"/opt/runc\"\n\
         [runtime.handlers.crun]\nroot = \"/run/crun-berth\"\nsystemd_cgroup = true\n\
         [runtime.handlers.kata]\npath = \"/opt/kata/runtime\"\n",
    );
    let config = load(Some(file.path()), &Overrides::default()).unwrap();
    let handlers = config.handlers();
    let names: Vec<&str> = handlers.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["crun", "kata", "runc"]);
    assert_eq!(
        handlers[0],
        Handler {
            name: "crun".into(),
            default: false,
            path: "crun".into(),
            root: "/run/crun-berth".into(),
            systemd_cgroup: Some(true),
        }
    );
    assert_eq!(handlers[1].path, Path::new("/opt/kata/runtime"));
    assert_eq!(handlers[1].root, Path::new("/run/berth/runtimes/kata"));
    // runc_path keeps naming the default handler's binary.
    assert!(handlers[2].default);
    assert_eq!(handlers[2].path, Path::new("/opt/runc"));

    let file = write_config("[runtime]\ndefault_handler = \"crun\"\n[runtime.handlers.runc]\n");
    let handlers = load(Some(file.path()), &Overrides::default())
        .unwrap()
        .handlers();
    assert_eq!(
        handlers
            .iter()
            .map(|h| (h.name.as_str(), h.default, h.path.to_str().unwrap()))
            .collect::<Vec<_>>(),
        [("crun", true, "crun"), ("runc", false, "runc")]
    );
}

#[test]
fn bad_handlers_are_refused_naming_the_key() {
    for (text, key) in [
        (
            "[runtime]\ndefault_handler = \"\"\n",
            "runtime.default_handler",
        ),
        ("[runtime.handlers.Crun]\n", "runtime.handlers.Crun"),
        ("[runtime.handlers.-x]\n", "runtime.handlers.-x"),
        (
            "[runtime.handlers.crun]\npath = \"\"\n",
            "runtime.handlers.crun.path",
        ),
        (
            "[runtime.handlers.crun]\nroot = \"run/crun\"\n",
            "runtime.handlers.crun.root",
        ),
        (
            "[runtime.handlers.crun]\npth = \"/x\"\n",
            "runtime.handlers.crun.pth",
        ),
        (
            "[runtime.handlers.crun]\nsystemd_cgroup = \"yes\"\n",
            "runtime.handlers.crun.systemd_cgroup",
        ),
        (
            "[runtime]\nrunc_path = \"/a/runc\"\n[runtime.handlers.runc]\npath = \"/b/runc\"\n",
            "runtime.handlers.runc.path",
        ),
    ] {
        let file = write_config(text);
        let err = load(Some(file.path()), &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains(&format!("`{key}`")), "{text}: {err}");
        assert!(
            err.contains(&file.path().display().to_string()),
            "{text}: {err}"
        );
    }
    assert!(handlers::valid_name(&"a".repeat(63)));
    assert!(!handlers::valid_name(&"a".repeat(64)));
    assert!(handlers::valid_name("runc-v2"));
    assert!(!handlers::valid_name("run.c"));
}

#[test]
fn the_deployed_drop_in_example_is_valid() {
    let d = DropIns::new(&[(
        "50-crun.toml",
        include_str!("../../../deploy/berth.d/50-crun.toml"),
    )]);
    let handlers = d.load("").unwrap().config.handlers();
    assert_eq!(handlers[0].name, "crun");
    assert_eq!(handlers[0].path, Path::new("/usr/bin/crun"));
}

#[test]
fn image_section_has_defaults_and_is_validated() {
    let config = Config::embedded().unwrap();
    assert_eq!(config.image.max_layer_bytes, 16 << 30);
    assert_eq!(config.image.max_layer_entries, 1_000_000);
    assert_eq!(config.image.max_file_bytes, 8 << 30);
    for key in ["max_layer_bytes", "max_layer_entries", "max_file_bytes"] {
        let file = write_config(&format!("[image]\n{key} = 0\n"));
        let err = load(Some(file.path()), &Overrides::default()).unwrap_err();
        assert!(err.to_string().contains(&format!("image.{key}")), "{err}");
    }
    let file = write_config("[image]\nmax_file_bytes = 1048576\n");
    let config = load(Some(file.path()), &Overrides::default()).unwrap();
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
