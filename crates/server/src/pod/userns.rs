//! A pod's user namespace (`NamespaceOption.userns_options`): which requests berth accepts,
//! and the ID maps of the pod's namespaces and containers.
//!
//! Mode POD with one UID and one GID mapping, each starting at container ID 0, gives the pod
//! a user namespace of its own (its network, IPC, UTS and PID namespaces are then owned by it,
//! and its containers' root filesystems are idmapped, see `container::idmap`). Mode NODE, or
//! no options, or POD without mappings (the CRI's zero value) is the host's user namespace.
//! Modes CONTAINER and TARGET, several mappings, a mapping not starting at 0, and a pod user
//! namespace together with host network, IPC or PID are refused, as kubelet never asks for
//! them.

use std::path::Path;

use berth_net::ns::IdMap;
use cri_api::v1;

use crate::error::ServiceError;

const FIELD: &str = "config.linux.security_context.namespace_options.userns_options";

/// The UID and GID maps of a pod's user namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PodIdMaps {
    pub uids: IdMap,
    pub gids: IdMap,
}

impl PodIdMaps {
    /// The host UID and GID that are root inside the pod.
    pub fn host_root(&self) -> (u32, u32) {
        (self.uids.outside, self.gids.outside)
    }
}

/// The pod's root is an unprivileged user on the host: runc, running as that user, must be
/// able to reach the bundle's rootfs and the pod's files under `state`. `Err` names the
/// first directory on the way that others cannot search (mode without `o+x`).
pub fn check_reachable(state: &Path) -> Result<(), ServiceError> {
    use std::os::unix::fs::PermissionsExt;
    for dir in state.ancestors() {
        let Ok(meta) = std::fs::metadata(dir) else {
            continue;
        };
        let mode = meta.permissions().mode();
        if mode & 0o001 == 0 {
            return Err(ServiceError::FailedPrecondition {
                what: format!(
                    "pods with a user namespace need the state directory reachable by their \
                     unprivileged root, but {} (mode {:o}) is not searchable by others: \
                     make it at least 0711",
                    dir.display(),
                    mode & 0o7777
                ),
            });
        }
    }
    Ok(())
}

/// The user namespace the pod asks for: `Ok(None)` for the host's.
pub fn requested(config: &v1::PodSandboxConfig) -> Result<Option<PodIdMaps>, ServiceError> {
    let options = config
        .linux
        .as_ref()
        .and_then(|l| l.security_context.as_ref())
        .and_then(|s| s.namespace_options.as_ref());
    let Some(userns) = options.and_then(|o| o.userns_options.as_ref()) else {
        return Ok(None);
    };
    let refuse = |reason: String| ServiceError::Unsupported {
        field: FIELD,
        reason,
    };
    let maps = match v1::NamespaceMode::try_from(userns.mode) {
        Ok(v1::NamespaceMode::Node) => {
            if !userns.uids.is_empty() || !userns.gids.is_empty() {
                return Err(refuse(
                    "mode NODE uses the host's user namespace and takes no ID mappings".into(),
                ));
            }
            return Ok(None);
        }
        Ok(v1::NamespaceMode::Pod) if userns.uids.is_empty() && userns.gids.is_empty() => {
            return Ok(None)
        }
        Ok(v1::NamespaceMode::Pod) => PodIdMaps {
            uids: one_mapping("uids", &userns.uids).map_err(refuse)?,
            gids: one_mapping("gids", &userns.gids).map_err(refuse)?,
        },
        Ok(mode) => {
            return Err(refuse(format!(
                "mode {} is not supported for user namespaces (POD or NODE are)",
                mode.as_str_name()
            )))
        }
        Err(_) => {
            return Err(refuse(format!("unknown namespace mode {}", userns.mode)));
        }
    };
    let node = v1::NamespaceMode::Node as i32;
    if let Some(o) = options {
        for (name, mode) in [("network", o.network), ("IPC", o.ipc), ("PID", o.pid)] {
            if mode == node {
                return Err(refuse(format!(
                    "a pod user namespace cannot be combined with the host's {name} namespace"
                )));
            }
        }
    }
    Ok(Some(maps))
}

/// The single mapping of `uids` or `gids`.
fn one_mapping(name: &str, list: &[v1::IdMapping]) -> Result<IdMap, String> {
    let [m] = list else {
        return Err(format!(
            "{name}: exactly one mapping is supported, got {}",
            list.len()
        ));
    };
    if m.container_id != 0 {
        return Err(format!(
            "{name}: the mapping must start at container ID 0, not {}",
            m.container_id
        ));
    }
    if m.length == 0 {
        return Err(format!("{name}: the mapping's length must not be 0"));
    }
    if m.host_id.checked_add(m.length).is_none() {
        return Err(format!(
            "{name}: host IDs {} + {} overflow 32 bits",
            m.host_id, m.length
        ));
    }
    Ok(IdMap {
        inside: 0,
        outside: m.host_id,
        count: m.length,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(userns: v1::UserNamespace, network: v1::NamespaceMode) -> v1::PodSandboxConfig {
        v1::PodSandboxConfig {
            linux: Some(v1::LinuxPodSandboxConfig {
                security_context: Some(v1::LinuxSandboxSecurityContext {
                    namespace_options: Some(v1::NamespaceOption {
                        network: network as i32,
                        userns_options: Some(userns),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn map(container_id: u32, host_id: u32, length: u32) -> v1::IdMapping {
        v1::IdMapping {
            container_id,
            host_id,
            length,
        }
    }

    fn userns(mode: v1::NamespaceMode, uids: Vec<v1::IdMapping>) -> v1::UserNamespace {
        v1::UserNamespace {
            mode: mode as i32,
            gids: uids.clone(),
            uids,
        }
    }

    #[test]
    fn pod_mode_with_one_mapping() {
        let cfg = pod(
            userns(v1::NamespaceMode::Pod, vec![map(0, 1000, 100000)]),
            v1::NamespaceMode::Pod,
        );
        let maps = requested(&cfg).unwrap().unwrap();
        assert_eq!(
            maps.uids,
            IdMap {
                inside: 0,
                outside: 1000,
                count: 100000
            }
        );
        assert_eq!(maps.host_root(), (1000, 1000));
    }

    #[test]
    fn host_user_namespace() {
        assert_eq!(requested(&v1::PodSandboxConfig::default()).unwrap(), None);
        let node = pod(
            userns(v1::NamespaceMode::Node, vec![]),
            v1::NamespaceMode::Node,
        );
        assert_eq!(requested(&node).unwrap(), None);
        let zero = pod(
            userns(v1::NamespaceMode::Pod, vec![]),
            v1::NamespaceMode::Pod,
        );
        assert_eq!(requested(&zero).unwrap(), None);
    }

    #[test]
    fn refused_requests() {
        let cases = [
            (
                userns(
                    v1::NamespaceMode::Pod,
                    vec![map(0, 1000, 100000), map(0, 2000, 100000)],
                ),
                "exactly one mapping",
            ),
            (
                userns(v1::NamespaceMode::Pod, vec![map(1, 1000, 100000)]),
                "start at container ID 0",
            ),
            (
                userns(v1::NamespaceMode::Pod, vec![map(0, 1000, 0)]),
                "must not be 0",
            ),
            (
                userns(v1::NamespaceMode::Pod, vec![map(0, u32::MAX, 2)]),
                "overflow",
            ),
            (userns(v1::NamespaceMode::Container, vec![]), "CONTAINER"),
            (userns(v1::NamespaceMode::Target, vec![]), "TARGET"),
            (
                userns(v1::NamespaceMode::Node, vec![map(0, 1000, 1)]),
                "takes no ID mappings",
            ),
        ];
        for (u, want) in cases {
            let err = requested(&pod(u, v1::NamespaceMode::Pod)).unwrap_err();
            assert!(err.to_string().contains(want), "{err} lacks {want:?}");
            assert_eq!(err.code(), tonic::Code::InvalidArgument);
        }
        let hostnet = pod(
            userns(v1::NamespaceMode::Pod, vec![map(0, 1000, 10)]),
            v1::NamespaceMode::Node,
        );
        assert!(requested(&hostnet)
            .unwrap_err()
            .to_string()
            .contains("host's network"));
    }

    #[test]
    fn state_must_be_searchable_by_others() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("a/state");
        std::fs::create_dir_all(&state).unwrap();
        let set = |p: &Path, mode| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap()
        };
        set(dir.path(), 0o711);
        set(&dir.path().join("a"), 0o755);
        assert!(check_reachable(&state).is_ok());
        set(&dir.path().join("a"), 0o700);
        let err = check_reachable(&state).unwrap_err();
        assert_eq!(err.code(), tonic::Code::FailedPrecondition);
        assert!(err.to_string().contains("/a (mode 700)"), "{err}");
    }
}
