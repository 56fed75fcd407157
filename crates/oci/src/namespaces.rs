//! `linux.namespaces`: the container joins the pod's pinned network, IPC and UTS
//! namespaces (or stays in the host's when the pod has none), gets its own mount
//! namespace, a PID namespace as its (or the pod's) `NamespaceOption.pid` says, and a cgroup
//! namespace on cgroup v2 hosts. In a pod with a user namespace of its own, the container
//! joins it first (runc can join the pod's other namespaces only from inside it).

use std::path::Path;

use cri_api::v1;
use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType};

use crate::{security, HostFeatures, SandboxView, SpecError};

fn ns(typ: LinuxNamespaceType, path: Option<&Path>) -> LinuxNamespace {
    let mut ns = LinuxNamespace::default();
    ns.set_typ(typ);
    ns.set_path(path.map(Path::to_owned));
    ns
}

/// The container's namespace options: its own, else the pod's.
fn options<'a>(
    container: &'a v1::ContainerConfig,
    sandbox: &'a SandboxView,
) -> Option<&'a v1::NamespaceOption> {
    security::container_context(container)
        .and_then(|s| s.namespace_options.as_ref())
        .or_else(|| {
            security::pod_context(sandbox.config)?
                .namespace_options
                .as_ref()
        })
}

/// The namespaces of the container, in the order runc joins them.
pub(crate) fn namespaces(
    container: &v1::ContainerConfig,
    sandbox: &SandboxView,
    host: &HostFeatures,
) -> Result<Vec<LinuxNamespace>, SpecError> {
    let opts = options(container, sandbox);
    check_userns(opts.and_then(|o| o.userns_options.as_ref()), sandbox)?;
    let pid_mode = opts.map_or(0, |o| o.pid);
    let mut out = Vec::with_capacity(7);
    if let Some(userns) = &sandbox.userns {
        out.push(ns(LinuxNamespaceType::User, Some(userns.pin)));
    }
    match v1::NamespaceMode::try_from(pid_mode) {
        Ok(v1::NamespaceMode::Pod) => match sandbox.pid_ns {
            Some(path) => out.push(ns(LinuxNamespaceType::Pid, Some(path))),
            None => {
                // The pod has no shared PID namespace (it asked for per-container ones).
                tracing::debug!("container asks for the pod's PID namespace; the pod has none");
                out.push(ns(LinuxNamespaceType::Pid, None));
            }
        },
        Ok(v1::NamespaceMode::Container) => out.push(ns(LinuxNamespaceType::Pid, None)),
        Ok(v1::NamespaceMode::Node) => {}
        Ok(v1::NamespaceMode::Target) => {
            return Err(SpecError::Unsupported("TARGET PID namespaces"))
        }
        Err(_) => {
            return Err(SpecError::UnknownEnum {
                field: "namespace_options.pid",
                value: pid_mode,
            })
        }
    }
    if let Some(path) = sandbox.netns {
        out.push(ns(LinuxNamespaceType::Network, Some(path)));
    }
    if let Some(path) = sandbox.ipc_ns {
        out.push(ns(LinuxNamespaceType::Ipc, Some(path)));
    }
    if let Some(path) = sandbox.uts_ns {
        out.push(ns(LinuxNamespaceType::Uts, Some(path)));
    }
    out.push(ns(LinuxNamespaceType::Mount, None));
    if host.cgroup_unified {
        out.push(ns(LinuxNamespaceType::Cgroup, None));
    }
    Ok(out)
}

/// The container's user namespace is its pod's: the pod's own (mode POD with the pod's
/// mappings, or no options) or the host's (mode NODE, or POD without mappings, proto3's zero
/// value). berth validated the pod's request in RunPodSandbox; anything else is refused.
fn check_userns(
    userns: Option<&v1::UserNamespace>,
    sandbox: &SandboxView,
) -> Result<(), SpecError> {
    let Some(userns) = userns else {
        return Ok(());
    };
    let mode = v1::NamespaceMode::try_from(userns.mode).map_err(|_| SpecError::UnknownEnum {
        field: "namespace_options.userns_options.mode",
        value: userns.mode,
    })?;
    let no_maps = userns.uids.is_empty() && userns.gids.is_empty();
    let same_maps = |pod: &crate::PodUserNamespace| {
        let one = |list: &[v1::IdMapping], (host, count): (u32, u32)| matches!(list, [m] if m.container_id == 0 && m.host_id == host && m.length == count);
        one(&userns.uids, pod.uids) && one(&userns.gids, pod.gids)
    };
    match (mode, &sandbox.userns) {
        (v1::NamespaceMode::Node, None) => Ok(()),
        (v1::NamespaceMode::Pod, None) if no_maps => Ok(()),
        (v1::NamespaceMode::Pod, Some(pod)) if no_maps || same_maps(pod) => Ok(()),
        (v1::NamespaceMode::Pod | v1::NamespaceMode::Node, _) => Err(SpecError::Unsupported(
            "a container user namespace that differs from its pod's",
        )),
        _ => Err(SpecError::Unsupported(
            "user namespace modes other than POD and NODE",
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::testutil::Pod;

    fn container(pid: v1::NamespaceMode) -> v1::ContainerConfig {
        v1::ContainerConfig {
            linux: Some(v1::LinuxContainerConfig {
                security_context: Some(v1::LinuxContainerSecurityContext {
                    namespace_options: Some(v1::NamespaceOption {
                        pid: pid as i32,
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                resources: None,
            }),
            ..Default::default()
        }
    }

    fn summary(list: &[LinuxNamespace]) -> Vec<(String, Option<PathBuf>)> {
        list.iter()
            .map(|n| (n.typ().to_string(), n.path().clone()))
            .collect()
    }

    #[test]
    fn pod_namespaces_are_joined() {
        let pod = Pod::new();
        let got = namespaces(
            &container(v1::NamespaceMode::Pod),
            &pod.view(),
            &HostFeatures::default(),
        )
        .unwrap();
        let p = |s: &str| Some(PathBuf::from(s));
        assert_eq!(
            summary(&got),
            [
                ("pid".into(), p("/proc/42/ns/pid")),
                ("net".into(), p("/run/berth/ns/pod/net")),
                ("ipc".into(), p("/run/berth/ns/pod/ipc")),
                ("uts".into(), p("/run/berth/ns/pod/uts")),
                ("mnt".into(), None),
            ]
        );
    }

    #[test]
    fn host_namespaces_are_omitted() {
        let mut pod = Pod::new();
        pod.netns = None;
        pod.ipc_ns = None;
        pod.uts_ns = None;
        let host = HostFeatures {
            cgroup_unified: true,
            ..Default::default()
        };
        let got = namespaces(&container(v1::NamespaceMode::Node), &pod.view(), &host).unwrap();
        assert_eq!(
            summary(&got),
            [("mnt".into(), None), ("cgroup".into(), None)]
        );
    }

    #[test]
    fn container_pid_namespace_is_new() {
        let pod = Pod::new();
        let got = namespaces(
            &container(v1::NamespaceMode::Container),
            &pod.view(),
            &HostFeatures::default(),
        )
        .unwrap();
        assert_eq!(summary(&got)[0], ("pid".into(), None));
    }

    #[test]
    fn pod_mode_without_a_pod_pid_namespace_gets_its_own() {
        let mut pod = Pod::new();
        pod.pid_ns = None;
        let got = namespaces(
            &container(v1::NamespaceMode::Pod),
            &pod.view(),
            &HostFeatures::default(),
        )
        .unwrap();
        assert_eq!(summary(&got)[0], ("pid".into(), None));
    }

    #[test]
    fn pod_options_apply_when_the_container_has_none() {
        let mut pod = Pod::new();
        pod.config.linux = Some(v1::LinuxPodSandboxConfig {
            security_context: Some(v1::LinuxSandboxSecurityContext {
                namespace_options: Some(v1::NamespaceOption {
                    pid: v1::NamespaceMode::Node as i32,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        });
        let got = namespaces(&Default::default(), &pod.view(), &HostFeatures::default()).unwrap();
        assert!(got.iter().all(|n| n.typ() != LinuxNamespaceType::Pid));
    }

    #[test]
    fn container_user_namespace_follows_the_pod() {
        let pod = Pod::new();
        let mut c = container(v1::NamespaceMode::Pod);
        let opts = c
            .linux
            .as_mut()
            .unwrap()
            .security_context
            .as_mut()
            .unwrap()
            .namespace_options
            .as_mut()
            .unwrap();
        opts.userns_options = Some(v1::UserNamespace {
            mode: v1::NamespaceMode::Pod as i32,
            uids: vec![v1::IdMapping {
                host_id: 1000,
                container_id: 0,
                length: 65536,
            }],
            gids: vec![v1::IdMapping {
                host_id: 1000,
                container_id: 0,
                length: 65536,
            }],
        });
        // The pod has no user namespace of its own: the container cannot have one.
        assert!(matches!(
            namespaces(&c, &pod.view(), &HostFeatures::default()),
            Err(SpecError::Unsupported(_))
        ));
        // The pod's: joined first, by its pin.
        let pin = PathBuf::from("/run/berth/ns/pod/user");
        let mut view = pod.view();
        view.userns = Some(crate::PodUserNamespace {
            pin: &pin,
            uids: (1000, 65536),
            gids: (1000, 65536),
        });
        let got = namespaces(&c, &view, &HostFeatures::default()).unwrap();
        assert_eq!(summary(&got)[0], ("user".into(), Some(pin.clone())));
        // Other mappings than the pod's are refused.
        let mut other = view;
        other.userns = Some(crate::PodUserNamespace {
            pin: &pin,
            uids: (2000, 65536),
            gids: (1000, 65536),
        });
        assert!(namespaces(&c, &other, &HostFeatures::default()).is_err());
        opts_node(&mut c);
        assert!(namespaces(&c, &view, &HostFeatures::default()).is_err());
        assert!(namespaces(&c, &pod.view(), &HostFeatures::default()).is_ok());
        assert!(matches!(
            namespaces(
                &container(v1::NamespaceMode::Target),
                &pod.view(),
                &HostFeatures::default()
            ),
            Err(SpecError::Unsupported(_))
        ));
    }

    fn opts_node(c: &mut v1::ContainerConfig) {
        let opts = c
            .linux
            .as_mut()
            .unwrap()
            .security_context
            .as_mut()
            .unwrap()
            .namespace_options
            .as_mut()
            .unwrap();
        opts.userns_options.as_mut().unwrap().mode = v1::NamespaceMode::Node as i32;
    }
}
