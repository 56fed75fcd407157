//! The ADD/DEL orchestration against scripted fake plugins (no root, no network): call
//! order, environment, stdin chaining, cache, rollback, timeouts. `root_tests.rs` runs
//! the real plugins.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{Attachment, Cni, CniCommand, CniError, PortMapping, Protocol};

const RESULT_A: &str = r#"{"cniVersion":"1.0.0","ips":[{"address":"10.9.0.5/24"}]}"#;
const RESULT_B: &str =
    r#"{"cniVersion":"1.0.0","ips":[{"address":"fd00::5/64"},{"address":"10.9.0.5/24"}]}"#;

/// A temp dir with a plugin bin dir, a conf dir, a cache dir and a call log.
struct FakeEnv {
    tmp: tempfile::TempDir,
}

enum Behaviour {
    /// Prints this result on ADD, succeeds on DEL.
    Ok(&'static str),
    /// Fails ADD with the spec's error JSON, succeeds on DEL.
    FailAdd,
    /// Fails ADD and DEL.
    FailAlways,
    /// Fails ADD with plain text on stderr.
    FailStderr,
    /// Prints garbage on ADD.
    Garbage,
    /// Sleeps on ADD in a child process (its pid goes to `<name>.sleeper`).
    Hang,
}

impl FakeEnv {
    fn new() -> FakeEnv {
        let env = FakeEnv {
            tmp: tempfile::tempdir().unwrap(),
        };
        std::fs::create_dir(env.bin()).unwrap();
        std::fs::create_dir(env.conf()).unwrap();
        env.plugin("loopback", Behaviour::Ok(r#"{"cniVersion":"1.0.0"}"#));
        env
    }

    fn bin(&self) -> PathBuf {
        self.tmp.path().join("bin")
    }
    fn conf(&self) -> PathBuf {
        self.tmp.path().join("conf")
    }
    fn cache(&self) -> PathBuf {
        self.tmp.path().join("cache")
    }
    fn netns(&self) -> PathBuf {
        self.tmp.path().join("netns")
    }
    fn log(&self) -> PathBuf {
        self.tmp.path().join("calls")
    }

    fn plugin(&self, name: &str, behaviour: Behaviour) {
        let dir = self.tmp.path().display();
        let add = match behaviour {
            Behaviour::Ok(result) => format!("echo '{result}'"),
            Behaviour::FailAdd | Behaviour::FailAlways => {
                r#"echo '{"cniVersion":"1.0.0","code":7,"msg":"broken on purpose","details":"test plugin"}'; exit 1"#.to_owned()
            }
            Behaviour::FailStderr => "echo 'plain failure text' >&2; exit 3".to_owned(),
            Behaviour::Garbage => "echo 'not json'".to_owned(),
            Behaviour::Hang => format!("sleep 30 & echo $! > {dir}/{name}.sleeper; wait"),
        };
        let del = match behaviour {
            Behaviour::FailAlways => "echo '{\"code\":11,\"msg\":\"del broken\"}'; exit 1",
            _ => "true",
        };
        let script = format!(
            "#!/bin/sh\n\
             echo \"{name} $CNI_COMMAND $CNI_IFNAME $CNI_CONTAINERID netns=$CNI_NETNS\" >> {dir}/calls\n\
             cat > {dir}/stdin-{name}-$CNI_COMMAND\n\
             printf '%s' \"$CNI_ARGS\" > {dir}/args\n\
             printf '%s' \"$CNI_PATH\" > {dir}/path\n\
             if [ \"$CNI_COMMAND\" = ADD ]; then {add}; else {del}; fi\n"
        );
        let path = self.bin().join(name);
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn network(&self, file: &str, name: &str, plugins: Value) {
        let conf = json!({"cniVersion": "1.0.0", "name": name, "plugins": plugins});
        std::fs::write(self.conf().join(file), conf.to_string()).unwrap();
    }

    fn cni(&self) -> Cni {
        Cni::new(
            self.conf(),
            vec![PathBuf::from("/nonexistent"), self.bin()],
            self.cache(),
        )
    }

    fn attachment(&self, netns: &Path) -> Attachment<'static> {
        Attachment {
            id: "sb1",
            netns: Box::leak(netns.to_owned().into_boxed_path()),
            ifname: "eth0",
            pod_name: "web",
            pod_namespace: "default",
            pod_uid: "uid-1",
            port_mappings: vec![PortMapping {
                host_port: 8080,
                container_port: 80,
                protocol: Protocol::Tcp,
                host_ip: "127.0.0.1".into(),
            }],
        }
    }

    fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.log())
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn stdin(&self, name: &str, command: &str) -> Value {
        let path = self.tmp.path().join(format!("stdin-{name}-{command}"));
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.tmp.path().join(name)).unwrap()
    }
}

#[test]
fn setup_chains_results_and_teardown_runs_del_in_reverse() {
    let env = FakeEnv::new();
    env.plugin("fa", Behaviour::Ok(RESULT_A));
    env.plugin("fb", Behaviour::Ok(RESULT_B));
    env.network(
        "10-net.conflist",
        "net1",
        json!([{"type": "fa", "x": 1}, {"type": "fb", "capabilities": {"portMappings": true}}]),
    );
    let cni = env.cni();
    let netns = env.netns();
    let status = cni.setup(&env.attachment(&netns)).unwrap();

    assert_eq!(status.network, "net1");
    assert_eq!(status.interface, "eth0");
    let ips: Vec<String> = status.ips.iter().map(ToString::to_string).collect();
    assert_eq!(ips, ["10.9.0.5", "fd00::5"]);
    assert_eq!(
        status.raw_result,
        serde_json::from_str::<Value>(RESULT_B).unwrap()
    );
    let ns = netns.display();
    assert_eq!(
        env.calls(),
        [
            format!("loopback ADD lo sb1 netns={ns}"),
            format!("fa ADD eth0 sb1 netns={ns}"),
            format!("fb ADD eth0 sb1 netns={ns}"),
        ]
    );
    assert_eq!(
        env.read("args"),
        "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web;K8S_POD_INFRA_CONTAINER_ID=sb1;K8S_POD_UID=uid-1"
    );
    assert_eq!(
        env.read("path"),
        format!("/nonexistent:{}", env.bin().display())
    );
    assert_eq!(
        env.stdin("loopback", "ADD"),
        json!({"cniVersion": "1.0.0", "name": "cni-loopback", "type": "loopback"})
    );
    assert_eq!(
        env.stdin("fa", "ADD"),
        json!({"cniVersion": "1.0.0", "name": "net1", "type": "fa", "x": 1})
    );
    let fb = env.stdin("fb", "ADD");
    assert_eq!(
        fb["prevResult"],
        serde_json::from_str::<Value>(RESULT_A).unwrap()
    );
    assert_eq!(
        fb["runtimeConfig"],
        json!({"portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp", "hostIP": "127.0.0.1"}]})
    );
    assert_eq!(cni.cached_status("sb1").unwrap(), Some(status.clone()));
    assert!(matches!(
        cni.setup(&env.attachment(&netns)),
        Err(CniError::AlreadyAttached { .. })
    ));

    std::fs::remove_file(env.log()).unwrap();
    cni.teardown("sb1", Some(&netns)).unwrap();
    // The netns "pin" here is not a namespace, so it is passed as empty.
    assert_eq!(
        env.calls(),
        [
            "fb DEL eth0 sb1 netns=",
            "fa DEL eth0 sb1 netns=",
            "loopback DEL lo sb1 netns=",
        ]
    );
    let fb_del = env.stdin("fb", "DEL");
    assert_eq!(fb_del["prevResult"], status.raw_result);
    assert_eq!(fb_del["runtimeConfig"], fb["runtimeConfig"]);
    assert_eq!(env.stdin("fa", "DEL")["prevResult"], status.raw_result);
    assert!(!env.cache().join("sb1.json").exists());
    assert_eq!(cni.cached_status("sb1").unwrap(), None);

    std::fs::remove_file(env.log()).unwrap();
    cni.teardown("sb1", None).unwrap();
    assert!(env.calls().is_empty(), "second teardown runs nothing");
}

#[test]
fn a_failing_add_rolls_back_what_was_added() {
    let env = FakeEnv::new();
    env.plugin("fa", Behaviour::Ok(RESULT_A));
    env.plugin("broken", Behaviour::FailAdd);
    env.plugin("fc", Behaviour::Ok(RESULT_B));
    env.network(
        "10-net.conflist",
        "net1",
        json!([{"type": "fa"}, {"type": "broken"}, {"type": "fc"}]),
    );
    let netns = env.netns();
    let err = env.cni().setup(&env.attachment(&netns)).unwrap_err();
    match &err {
        CniError::PluginFailed {
            network,
            plugin,
            command,
            code,
            msg,
            details,
            ..
        } => {
            assert_eq!((network.as_str(), plugin.as_str()), ("net1", "broken"));
            assert_eq!(*command, CniCommand::Add);
            assert_eq!(
                (*code, msg.as_str(), details.as_str()),
                (Some(7), "broken on purpose", "test plugin")
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains("\"broken\"")
            && text.contains("\"net1\"")
            && text.contains("broken on purpose"),
        "{text}"
    );
    let ns = netns.display();
    assert_eq!(
        env.calls(),
        [
            format!("loopback ADD lo sb1 netns={ns}"),
            format!("fa ADD eth0 sb1 netns={ns}"),
            format!("broken ADD eth0 sb1 netns={ns}"),
            format!("broken DEL eth0 sb1 netns={ns}"),
            format!("fa DEL eth0 sb1 netns={ns}"),
            format!("loopback DEL lo sb1 netns={ns}"),
        ]
    );
    // Rollback DEL carries the last successful result.
    assert_eq!(
        env.stdin("fa", "DEL")["prevResult"],
        serde_json::from_str::<Value>(RESULT_A).unwrap()
    );
    assert!(!env.cache().join("sb1.json").exists());
}

#[test]
fn a_failing_rollback_keeps_the_cache_and_teardown_continues_past_errors() {
    let env = FakeEnv::new();
    env.plugin("fa", Behaviour::Ok(RESULT_A));
    env.plugin("broken", Behaviour::FailAlways);
    env.network(
        "10-net.conflist",
        "net1",
        json!([{"type": "fa"}, {"type": "broken"}]),
    );
    let cni = env.cni();
    let netns = env.netns();
    assert!(cni.setup(&env.attachment(&netns)).is_err());
    assert!(
        env.cache().join("sb1.json").exists(),
        "kept for a later teardown"
    );

    std::fs::remove_file(env.log()).unwrap();
    let err = cni.teardown("sb1", None).unwrap_err();
    assert!(
        matches!(&err, CniError::PluginFailed { plugin, code: Some(11), command: CniCommand::Del, .. } if plugin == "broken"),
        "{err:?}"
    );
    assert_eq!(
        env.calls(),
        [
            "broken DEL eth0 sb1 netns=",
            "fa DEL eth0 sb1 netns=",
            "loopback DEL lo sb1 netns="
        ]
    );
    assert!(env.cache().join("sb1.json").exists(), "kept for a retry");
}

#[test]
fn teardown_uses_the_cached_config_after_the_conf_dir_changed() {
    let env = FakeEnv::new();
    env.plugin("fa", Behaviour::Ok(RESULT_A));
    env.plugin("fb", Behaviour::Ok(RESULT_B));
    env.network("10-net.conflist", "old", json!([{"type": "fa"}]));
    let cni = env.cni();
    cni.setup(&env.attachment(&env.netns())).unwrap();
    std::fs::remove_file(env.conf().join("10-net.conflist")).unwrap();
    env.network("05-new.conflist", "new", json!([{"type": "fb"}]));

    std::fs::remove_file(env.log()).unwrap();
    cni.teardown("sb1", None).unwrap();
    assert_eq!(
        env.calls(),
        ["fa DEL eth0 sb1 netns=", "loopback DEL lo sb1 netns="]
    );
    assert_eq!(env.stdin("fa", "DEL")["name"], "old");
}

#[test]
fn a_hanging_plugin_is_killed_at_the_time_limit() {
    let env = FakeEnv::new();
    env.plugin("slow", Behaviour::Hang);
    env.network("10-net.conflist", "net1", json!([{"type": "slow"}]));
    let cni = env.cni().with_plugin_timeout(Duration::from_millis(500));
    let started = Instant::now();
    let err = cni.setup(&env.attachment(&env.netns())).unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(
        matches!(&err, CniError::PluginTimeout { plugin, command: CniCommand::Add, .. } if plugin == "slow"),
        "{err:?}"
    );
    // The plugin's child (in the plugin's process group) was killed too.
    let sleeper: i32 = env.read("slow.sleeper").trim().parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let state = std::fs::read_to_string(format!("/proc/{sleeper}/stat")).ok();
        let gone = state.is_none_or(|stat| stat.contains(") Z "));
        if gone {
            break;
        }
        assert!(Instant::now() < deadline, "sleeper {sleeper} still running");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!env.cache().join("sb1.json").exists());
}

#[test]
fn plugin_failures_without_error_json_quote_stderr() {
    let env = FakeEnv::new();
    env.plugin("noisy", Behaviour::FailStderr);
    env.network("10-net.conflist", "net1", json!([{"type": "noisy"}]));
    let err = env.cni().setup(&env.attachment(&env.netns())).unwrap_err();
    assert!(
        matches!(&err, CniError::PluginFailed { code: None, msg, .. } if msg == "plain failure text"),
        "{err:?}"
    );
}

#[test]
fn an_invalid_add_result_is_an_error_and_rolled_back() {
    let env = FakeEnv::new();
    env.plugin("garbage", Behaviour::Garbage);
    env.network("10-net.conflist", "net1", json!([{"type": "garbage"}]));
    let err = env.cni().setup(&env.attachment(&env.netns())).unwrap_err();
    assert!(matches!(err, CniError::PluginOutput { .. }), "{err:?}");
    assert!(env.calls().iter().any(|c| c.starts_with("garbage DEL")));
    assert!(!env.cache().join("sb1.json").exists());
}

#[test]
fn missing_plugins_are_reported_before_anything_runs() {
    let env = FakeEnv::new();
    env.network("10-net.conflist", "net1", json!([{"type": "absent"}]));
    let err = env.cni().setup(&env.attachment(&env.netns())).unwrap_err();
    assert!(
        matches!(&err, CniError::PluginNotFound { plugin, .. } if plugin == "absent"),
        "{err:?}"
    );
    assert!(env.calls().is_empty());
    assert!(!env.cache().exists());
}

#[test]
fn attachment_fields_that_cannot_be_passed_are_refused() {
    let env = FakeEnv::new();
    env.plugin("fa", Behaviour::Ok(RESULT_A));
    env.network("10-net.conflist", "net1", json!([{"type": "fa"}]));
    let netns = env.netns();
    let cni = env.cni();
    let base = env.attachment(&netns);
    for att in [
        Attachment {
            id: "../x",
            ..base.clone()
        },
        Attachment {
            id: "",
            ..base.clone()
        },
        Attachment {
            ifname: "eth0/x",
            ..base.clone()
        },
        Attachment {
            ifname: "a-very-long-ifname",
            ..base.clone()
        },
        Attachment {
            pod_name: "a;b",
            ..base.clone()
        },
        Attachment {
            pod_uid: "a=b",
            ..base.clone()
        },
    ] {
        let err = cni.setup(&att).unwrap_err();
        assert!(matches!(err, CniError::InvalidAttachment { .. }), "{err:?}");
    }
    assert!(matches!(
        cni.teardown("../x", None),
        Err(CniError::InvalidAttachment { .. })
    ));
    assert!(env.calls().is_empty());
}

#[test]
fn built_in_network_masquerades_hairpins_and_maps_ports() {
    let (_, list) = super::load_network(Path::new("/nonexistent"), &[]).unwrap();
    let bridge = &list.plugins[0];
    assert_eq!(bridge["bridge"], "berth0");
    assert_eq!(
        (
            bridge["isGateway"].as_bool(),
            bridge["ipMasq"].as_bool(),
            bridge["hairpinMode"].as_bool()
        ),
        (Some(true), Some(true), Some(true))
    );
    assert_eq!(bridge["ipam"]["type"], "host-local");
    assert_eq!(bridge["ipam"]["ranges"][0][0]["subnet"], "10.88.0.0/16");
    assert_eq!(list.plugins[1]["capabilities"]["portMappings"], true);
}

#[test]
fn built_in_network_follows_the_pod_cidrs() {
    let cidrs = super::PodCidr::parse_list("10.244.3.0/24,fd00:10:244:3::/64").unwrap();
    let (_, list) = super::load_network(Path::new("/nonexistent"), &cidrs).unwrap();
    let ipam = &list.plugins[0]["ipam"];
    assert_eq!(
        ipam["ranges"],
        serde_json::json!([[{"subnet": "10.244.3.0/24"}], [{"subnet": "fd00:10:244:3::/64"}]])
    );
    assert_eq!(
        ipam["routes"],
        serde_json::json!([{"dst": "0.0.0.0/0"}, {"dst": "::/0"}])
    );
    // A bridge of their own, the same chain.
    let bridge = list.plugins[0]["bridge"].as_str().unwrap();
    assert!(
        bridge.starts_with("berth-") && bridge.len() <= 15,
        "{bridge}"
    );
    assert_eq!(list.plugins.len(), 2);
    // A configuration file is used as it is.
    let dir = tempfile::tempdir().unwrap();
    let own = r#"{"cniVersion":"1.0.0","name":"own","plugins":[{"type":"bridge","ipam":{"type":"host-local","ranges":[[{"subnet":"10.1.0.0/16"}]]}}]}"#;
    std::fs::write(dir.path().join("10-own.conflist"), own).unwrap();
    let (_, list) = super::load_network(dir.path(), &cidrs).unwrap();
    assert_eq!(
        list.plugins[0]["ipam"]["ranges"][0][0]["subnet"],
        "10.1.0.0/16"
    );
}
