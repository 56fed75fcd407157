//! Whole-spec tests: the critest expectations the spec decides, asserted on the built spec
//! (and on its JSON where the field names matter to runc).

#![allow(deprecated)] // the deprecated CRI fields are still honoured, so tested

use std::io::Write;
use std::path::Path;

use cri_api::v1;
use oci_spec::runtime::{Capability as Cap, LinuxNamespaceType, LinuxSeccompAction, Spec};
use serde_json::Value;

use crate::testutil::{busybox_config, busybox_users, Pod};
use crate::*;

struct Case {
    pod: Pod,
    container: v1::ContainerConfig,
    image: Value,
    users: UserDb,
    host: HostFeatures,
    driver: CgroupDriver,
}

impl Case {
    fn new() -> Case {
        Case {
            pod: Pod::new(),
            container: v1::ContainerConfig {
                metadata: Some(v1::ContainerMetadata {
                    name: "c".into(),
                    attempt: 0,
                }),
                command: vec!["top".into()],
                annotations: [("a".to_string(), "b".to_string())].into(),
                ..Default::default()
            },
            image: busybox_config(),
            users: busybox_users(),
            host: HostFeatures::default(),
            driver: CgroupDriver::Cgroupfs,
        }
    }

    fn sc(&mut self) -> &mut v1::LinuxContainerSecurityContext {
        self.container
            .linux
            .get_or_insert_with(Default::default)
            .security_context
            .get_or_insert_with(Default::default)
    }

    fn try_build(&self) -> Result<Spec, SpecError> {
        build_spec(&SpecInputs {
            container_id: "cid",
            container: &self.container,
            sandbox: self.pod.view(),
            image: ImageView {
                config: &self.image,
                image_ref: "sha256:abc",
            },
            rootfs: Path::new("/var/lib/berth/containers/cid/rootfs"),
            users: &self.users,
            cgroup_driver: self.driver,
            host: &self.host,
        })
    }

    fn build(&self) -> Spec {
        self.try_build().unwrap()
    }

    fn json(&self) -> Value {
        serde_json::to_value(self.build()).unwrap()
    }
}

fn user(spec: &Spec) -> (u32, u32, Vec<u32>) {
    let u = spec.process().as_ref().unwrap().user();
    (
        u.uid(),
        u.gid(),
        u.additional_gids().clone().unwrap_or_default(),
    )
}

fn bounding(spec: &Spec) -> std::collections::HashSet<Cap> {
    let caps = spec
        .process()
        .as_ref()
        .unwrap()
        .capabilities()
        .clone()
        .unwrap();
    caps.bounding().clone().unwrap()
}

fn profile(t: v1::security_profile::ProfileType, r: &str) -> Option<v1::SecurityProfile> {
    Some(v1::SecurityProfile {
        profile_type: t as i32,
        localhost_ref: r.into(),
    })
}

#[test]
fn a_typical_busybox_container() {
    let case = Case::new();
    let json = case.json();
    assert_eq!(json["ociVersion"], OCI_VERSION);
    assert_eq!(json["process"]["args"], serde_json::json!(["top"]));
    assert_eq!(json["process"]["terminal"], false);
    assert_eq!(json["process"]["cwd"], "/");
    assert_eq!(
        json["process"]["user"],
        serde_json::json!({"uid": 0, "gid": 0, "additionalGids": [0]})
    );
    assert_eq!(
        json["process"]["env"],
        serde_json::json!([format!("PATH={DEFAULT_PATH}"), "HOSTNAME=test-hostname"])
    );
    assert_eq!(json["process"]["noNewPrivileges"], false);
    assert!(json["process"].get("rlimits").is_none());
    assert!(json["process"].get("oomScoreAdj").is_none());
    assert_eq!(
        json["process"]["capabilities"]["bounding"]
            .as_array()
            .unwrap()
            .len(),
        14
    );
    assert_eq!(
        json["process"]["capabilities"]["inheritable"],
        serde_json::json!([])
    );
    assert_eq!(
        json["root"],
        serde_json::json!({"path": "/var/lib/berth/containers/cid/rootfs", "readonly": false})
    );
    assert_eq!(json["hostname"], "test-hostname");
    assert_eq!(json["mounts"].as_array().unwrap().len(), 10);
    assert_eq!(json["linux"]["cgroupsPath"], "/berth/cid");
    assert_eq!(json["linux"]["maskedPaths"].as_array().unwrap().len(), 11);
    assert_eq!(json["linux"]["readonlyPaths"].as_array().unwrap().len(), 5);
    assert!(
        json["linux"].get("seccomp").is_none(),
        "nil profile is unconfined"
    );
    assert!(json["linux"].get("rootfsPropagation").is_none());
    assert_eq!(
        json["linux"]["resources"]["devices"][0],
        serde_json::json!({"allow": false, "access": "rwm"})
    );
    let types: Vec<&str> = json["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["pid", "network", "ipc", "uts", "mount"]);
    assert_eq!(
        json["linux"]["namespaces"][1]["path"],
        "/run/berth/ns/pod/net"
    );
    assert_eq!(json["annotations"]["a"], "b");
    assert_eq!(json["annotations"][ANNOTATION_CONTAINER_TYPE], "container");
    assert_eq!(json["annotations"][ANNOTATION_SANDBOX_ID], "pod-id");
    assert_eq!(json["annotations"][ANNOTATION_CONTAINER_NAME], "c");
    assert_eq!(json["annotations"][ANNOTATION_IMAGE_NAME], "sha256:abc");
    // The JSON reads back as the same spec.
    let back: Spec = serde_json::from_value(json).unwrap();
    assert_eq!(back, case.build());
}

#[test]
fn image_cmd_runs_without_a_cri_command() {
    let mut case = Case::new();
    case.container.command.clear();
    assert_eq!(
        case.build().process().as_ref().unwrap().args().as_deref(),
        Some(&["sh".to_string()][..])
    );
    case.image = serde_json::json!({"config": {}});
    assert!(matches!(case.try_build(), Err(SpecError::NoCommand)));
}

#[test]
fn critest_users_and_groups() {
    let mut case = Case::new();
    case.sc().run_as_user = Some(v1::Int64Value { value: 1001 });
    assert_eq!(user(&case.build()), (1001, 0, vec![0]));

    let mut case = Case::new();
    case.sc().run_as_username = "nobody".into();
    assert_eq!(user(&case.build()).0, 65534);

    let mut case = Case::new();
    case.sc().run_as_user = Some(v1::Int64Value { value: 1001 });
    case.sc().run_as_group = Some(v1::Int64Value { value: 1002 });
    assert_eq!(user(&case.build()), (1001, 1002, vec![1002]));

    let mut case = Case::new();
    case.sc().run_as_group = Some(v1::Int64Value { value: 1002 });
    assert!(matches!(
        case.try_build(),
        Err(SpecError::RunAsGroupWithoutUser)
    ));

    let mut case = Case::new();
    case.sc().run_as_user = Some(v1::Int64Value { value: 1001 });
    case.sc().supplemental_groups = vec![1234, 5678];
    assert_eq!(user(&case.build()).2, [0, 1234, 5678]);

    let mut case = Case::new();
    case.sc().run_as_username = "ghost".into();
    assert!(matches!(case.try_build(), Err(SpecError::UnknownUser(_))));
}

#[test]
fn critest_capabilities() {
    let caps = |add: &[&str], drop: &[&str]| {
        let mut case = Case::new();
        case.sc().capabilities = Some(v1::Capability {
            add_capabilities: add.iter().map(|s| s.to_string()).collect(),
            drop_capabilities: drop.iter().map(|s| s.to_string()).collect(),
            add_ambient_capabilities: vec![],
        });
        bounding(&case.build())
    };
    assert!(caps(&["NET_ADMIN"], &[]).contains(&Cap::NetAdmin));
    assert!(!bounding(&Case::new().build()).contains(&Cap::NetAdmin));
    assert!(!caps(&[], &["NET_RAW"]).contains(&Cap::NetRaw));
    assert_eq!(caps(&["ALL"], &[]).len(), 41);
    assert!(caps(&[], &["ALL"]).is_empty());
}

#[test]
fn critest_masked_readonly_paths_and_rootfs() {
    let mut case = Case::new();
    case.sc().masked_paths = vec!["/bin/ls".into()];
    case.sc().readonly_paths = vec!["/tmp".into()];
    case.sc().readonly_rootfs = true;
    let json = case.json();
    assert_eq!(json["linux"]["maskedPaths"], serde_json::json!(["/bin/ls"]));
    assert_eq!(json["linux"]["readonlyPaths"], serde_json::json!(["/tmp"]));
    assert_eq!(json["root"]["readonly"], true);
}

#[test]
fn critest_no_new_privs_tty_and_oom_score() {
    let mut case = Case::new();
    case.sc().no_new_privs = true;
    case.container.tty = true;
    case.container.linux.as_mut().unwrap().resources = Some(v1::LinuxContainerResources {
        oom_score_adj: 1000,
        memory_limit_in_bytes: 15 << 20,
        memory_swap_limit_in_bytes: 15 << 20,
        ..Default::default()
    });
    let json = case.json();
    assert_eq!(json["process"]["noNewPrivileges"], true);
    assert_eq!(json["process"]["terminal"], true);
    assert!(json["process"]["env"]
        .as_array()
        .unwrap()
        .contains(&"TERM=xterm".into()));
    assert_eq!(json["process"]["oomScoreAdj"], 1000);
    assert_eq!(
        json["linux"]["resources"]["memory"],
        serde_json::json!({"limit": 15 << 20, "swap": 15 << 20})
    );
}

#[test]
fn kubelets_hugepage_limits_are_dropped_without_the_controller_and_oom_score_adj_is_clamped() {
    let mut case = Case::new();
    case.container
        .linux
        .get_or_insert_with(Default::default)
        .resources = Some(v1::LinuxContainerResources {
        oom_score_adj: -997,
        hugepage_limits: vec![v1::HugepageLimit {
            page_size: "2MB".into(),
            limit: 0,
        }],
        ..Default::default()
    });
    let json = case.json();
    assert_eq!(
        json["linux"]["resources"]["hugepageLimits"][0]["pageSize"],
        "2MB"
    );
    assert_eq!(json["process"]["oomScoreAdj"], -997);
    case.host.hugetlb = false;
    case.host.oom_score_adj_min = Some(0);
    let json = case.json();
    assert!(
        json["linux"]["resources"]["hugepageLimits"].is_null(),
        "{json}"
    );
    assert_eq!(json["process"]["oomScoreAdj"], 0);
}

#[test]
fn critest_seccomp() {
    use v1::security_profile::ProfileType as T;
    let seccomp = |sc: Option<v1::SecurityProfile>, path: &str| {
        let mut case = Case::new();
        case.sc().seccomp = sc;
        case.sc().seccomp_profile_path = path.into();
        case.build().linux().as_ref().unwrap().seccomp().clone()
    };
    // SecurityProfile{} is RuntimeDefault (type 0): filtered, "Seccomp: 2".
    let default = seccomp(Some(v1::SecurityProfile::default()), "").unwrap();
    assert_eq!(default.default_action(), LinuxSeccompAction::ScmpActAllow);
    assert!(!default.syscalls().as_ref().unwrap().is_empty());
    assert!(seccomp(profile(T::Unconfined, ""), "").is_none());
    assert!(seccomp(None, "").is_none());
    assert!(seccomp(None, "runtime/default").is_some());

    let mut chmod = tempfile::NamedTempFile::new().unwrap();
    write!(chmod, r#"{{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{{"names":["chmod","fchmodat"],"action":"SCMP_ACT_ERRNO"}}]}}"#).unwrap();
    let path = chmod.path().to_str().unwrap();
    let got = seccomp(profile(T::Localhost, path), "").unwrap();
    let rule = &got.syscalls().as_ref().unwrap()[0];
    assert_eq!(rule.names(), &["chmod", "fchmodat"]);
    assert_eq!(rule.action(), LinuxSeccompAction::ScmpActErrno);
    let deprecated = seccomp(None, &format!("localhost/{path}")).unwrap();
    assert_eq!(deprecated, got);

    // critest's block-host-name profile, with SYS_ADMIN added: still blocked.
    let mut hostname = tempfile::NamedTempFile::new().unwrap();
    write!(hostname, r#"{{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{{"names":["sethostname"],"action":"SCMP_ACT_ERRNO"}}]}}"#).unwrap();
    let mut case = Case::new();
    case.sc().capabilities = Some(v1::Capability {
        add_capabilities: vec!["SYS_ADMIN".into()],
        ..Default::default()
    });
    case.sc().seccomp = profile(T::Localhost, hostname.path().to_str().unwrap());
    let spec = case.build();
    let rules = spec
        .linux()
        .as_ref()
        .unwrap()
        .seccomp()
        .as_ref()
        .unwrap()
        .syscalls()
        .clone()
        .unwrap();
    assert_eq!(rules[0].names(), &["sethostname"]);

    let mut case = Case::new();
    case.sc().seccomp = profile(T::Localhost, "/nonexistent/profile.json");
    assert!(matches!(
        case.try_build(),
        Err(SpecError::SeccompProfile { .. })
    ));
}

#[test]
fn the_pod_seccomp_profile_applies_to_containers_without_one() {
    let mut case = Case::new();
    case.pod.config.linux = Some(v1::LinuxPodSandboxConfig {
        security_context: Some(v1::LinuxSandboxSecurityContext {
            seccomp: Some(v1::SecurityProfile::default()),
            ..Default::default()
        }),
        ..Default::default()
    });
    assert!(case.build().linux().as_ref().unwrap().seccomp().is_some());
}

#[test]
fn critest_privileged() {
    use v1::security_profile::ProfileType as T;
    let mut case = Case::new();
    case.sc().privileged = true;
    // A missing localhost profile is not even read: privileged containers are unfiltered.
    case.sc().seccomp = profile(T::Localhost, "/nonexistent/profile.json");
    case.sc().masked_paths = vec!["/bin/ls".into()];
    let spec = case.build();
    let json = serde_json::to_value(&spec).unwrap();
    assert_eq!(bounding(&spec).len(), 41);
    assert!(json["linux"].get("seccomp").is_none());
    assert_eq!(json["linux"]["maskedPaths"], serde_json::json!([]));
    assert_eq!(json["linux"]["readonlyPaths"], serde_json::json!([]));
    assert_eq!(
        json["linux"]["resources"]["devices"],
        serde_json::json!([{"allow": true, "access": "rwm"}])
    );
    assert!(json["linux"]["devices"]
        .as_array()
        .unwrap()
        .iter()
        .any(|d| d["path"] == "/dev/null"));
    let sys = json["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["destination"] == "/sys")
        .unwrap();
    assert!(sys["options"].as_array().unwrap().contains(&"rw".into()));
}

#[test]
fn critest_mount_propagation_and_rro() {
    for (mode, option, rootfs) in [
        (
            v1::MountPropagation::PropagationPrivate,
            "rprivate",
            Value::Null,
        ),
        (
            v1::MountPropagation::PropagationHostToContainer,
            "rslave",
            "rslave".into(),
        ),
        (
            v1::MountPropagation::PropagationBidirectional,
            "rshared",
            "rshared".into(),
        ),
    ] {
        let mut case = Case::new();
        case.sc().privileged = mode == v1::MountPropagation::PropagationBidirectional;
        case.container.mounts.push(v1::Mount {
            container_path: "/tmp/mnt".into(),
            host_path: "/nonexistent/berth-test/mnt".into(),
            propagation: mode as i32,
            selinux_relabel: true,
            ..Default::default()
        });
        let json = case.json();
        let mount = json["mounts"].as_array().unwrap().last().unwrap().clone();
        assert_eq!(mount["destination"], "/tmp/mnt");
        assert_eq!(mount["source"], "/nonexistent/berth-test/mnt");
        assert_eq!(mount["type"], "bind");
        assert_eq!(mount["options"], serde_json::json!(["rbind", option, "rw"]));
        assert_eq!(
            json["linux"]
                .get("rootfsPropagation")
                .cloned()
                .unwrap_or(Value::Null),
            rootfs
        );
    }
    let mut case = Case::new();
    case.container.mounts.push(v1::Mount {
        container_path: "/ro".into(),
        host_path: "/nonexistent/ro".into(),
        recursive_read_only: true,
        ..Default::default()
    });
    assert!(matches!(
        case.try_build(),
        Err(SpecError::Mount {
            problem: MountProblem::RecursiveReadOnlyNotReadOnly,
            ..
        })
    ));
}

#[test]
fn host_network_pod() {
    let mut case = Case::new();
    case.pod.netns = None;
    case.pod.uts_ns = None;
    let spec = case.build();
    let linux = spec.linux().as_ref().unwrap();
    let types: Vec<_> = linux
        .namespaces()
        .as_ref()
        .unwrap()
        .iter()
        .map(|n| n.typ())
        .collect();
    assert!(!types.contains(&LinuxNamespaceType::Network));
    assert!(!types.contains(&LinuxNamespaceType::Uts));
    assert_eq!(spec.hostname(), &None);
}

#[test]
fn a_cgroup_parent_the_driver_cannot_use_is_refused() {
    let mut case = Case::new();
    case.driver = CgroupDriver::Systemd;
    case.pod.cgroup_parent = "/kubepods/pod1".into();
    assert!(matches!(
        case.try_build(),
        Err(SpecError::CgroupParent(
            berth_cgroups::ParentError::NotASlice
        ))
    ));
    case.driver = CgroupDriver::Cgroupfs;
    case.pod.cgroup_parent = "/a/../../etc".into();
    assert!(matches!(
        case.try_build(),
        Err(SpecError::CgroupParent(
            berth_cgroups::ParentError::BadName { .. }
        ))
    ));
    case.pod.cgroup_parent = "/kubepods/pod1".into();
    assert_eq!(case.json()["linux"]["cgroupsPath"], "/kubepods/pod1/cid");
}

#[test]
fn systemd_cgroups_path_and_cgroup_namespace() {
    let mut case = Case::new();
    case.driver = CgroupDriver::Systemd;
    case.pod.cgroup_parent = "/test.slice".into();
    case.host.cgroup_unified = true;
    let json = case.json();
    assert_eq!(json["linux"]["cgroupsPath"], "test.slice:berth:cid");
    assert_eq!(
        json["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()["type"],
        "cgroup"
    );
}

#[test]
fn unsupported_requests_fail() {
    let mut case = Case::new();
    case.container.cdi_devices.push(v1::CdiDevice {
        name: "vendor.com/gpu=0".into(),
    });
    assert!(matches!(
        case.try_build(),
        Err(SpecError::Unsupported("CDI devices"))
    ));

    let mut case = Case::new();
    case.sc().apparmor_profile = "localhost/cri-validate-apparmor-test-deny-write".into();
    assert!(matches!(
        case.try_build(),
        Err(SpecError::AppArmorUnavailable(_))
    ));
}

#[test]
fn pod_user_namespace_is_joined_with_its_maps() {
    let plain = Case::new().json();
    assert!(plain["linux"].get("uidMappings").is_none());
    assert!(plain["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .all(|n| n["type"] != "user"));

    let mut case = Case::new();
    case.pod.userns = Some((
        "/run/berth/ns/pod/user".into(),
        (1000, 65536),
        (2000, 65536),
    ));
    let spec = case.json();
    assert_eq!(
        spec["linux"]["uidMappings"],
        serde_json::json!([{"containerID": 0, "hostID": 1000, "size": 65536}])
    );
    assert_eq!(
        spec["linux"]["gidMappings"],
        serde_json::json!([{"containerID": 0, "hostID": 2000, "size": 65536}])
    );
    // First, so that runc can join the pod's other namespaces, which it owns.
    assert_eq!(
        spec["linux"]["namespaces"][0],
        serde_json::json!({"type": "user", "path": "/run/berth/ns/pod/user"})
    );
}
