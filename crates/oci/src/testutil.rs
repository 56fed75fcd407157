//! Fixtures shared by the tests: a pod with pinned namespaces and pod files, and a
//! busybox-like image.

use std::path::PathBuf;

use cri_api::v1;
use serde_json::{json, Value};

use crate::SandboxView;

/// An owned pod user namespace: pin, (host UID, count), (host GID, count).
pub(crate) type PodUserns = (PathBuf, (u32, u32), (u32, u32));

/// An owned pod, to borrow a [`SandboxView`] from.
pub(crate) struct Pod {
    pub config: v1::PodSandboxConfig,
    pub netns: Option<PathBuf>,
    pub ipc_ns: Option<PathBuf>,
    pub uts_ns: Option<PathBuf>,
    pub pid_ns: Option<PathBuf>,
    pub shm: Option<PathBuf>,
    pub hostname: String,
    pub cgroup_parent: String,
    /// The pod's own user namespace.
    pub userns: Option<PodUserns>,
    resolv_conf: PathBuf,
    hosts: PathBuf,
    hostname_file: PathBuf,
}

impl Pod {
    /// A pod with its own network, IPC, UTS and shared PID namespaces.
    pub fn new() -> Pod {
        let dir = PathBuf::from("/run/berth/pods/pod");
        let ns = PathBuf::from("/run/berth/ns/pod");
        Pod {
            config: v1::PodSandboxConfig {
                hostname: "test-hostname".into(),
                ..Default::default()
            },
            netns: Some(ns.join("net")),
            ipc_ns: Some(ns.join("ipc")),
            uts_ns: Some(ns.join("uts")),
            pid_ns: Some(PathBuf::from("/proc/42/ns/pid")),
            shm: Some(dir.join("shm")),
            hostname: "test-hostname".into(),
            cgroup_parent: String::new(),
            userns: None,
            resolv_conf: dir.join("resolv.conf"),
            hosts: dir.join("hosts"),
            hostname_file: dir.join("hostname"),
        }
    }

    pub fn view(&self) -> SandboxView<'_> {
        SandboxView {
            id: "pod-id",
            config: &self.config,
            netns: self.netns.as_deref(),
            ipc_ns: self.ipc_ns.as_deref(),
            uts_ns: self.uts_ns.as_deref(),
            pid_ns: self.pid_ns.as_deref(),
            hostname: &self.hostname,
            resolv_conf: &self.resolv_conf,
            hosts: &self.hosts,
            hostname_file: &self.hostname_file,
            shm: self.shm.as_deref(),
            cgroup_parent: &self.cgroup_parent,
            userns: self
                .userns
                .as_ref()
                .map(|(pin, uids, gids)| crate::PodUserNamespace {
                    pin,
                    uids: *uids,
                    gids: *gids,
                }),
        }
    }
}

/// critest's busybox: `CMD ["sh"]`, a PATH with /bin.
pub(crate) fn busybox_config() -> Value {
    json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": ["sh"]
        },
        "rootfs": {"type": "layers", "diff_ids": []}
    })
}

/// busybox's /etc/passwd and /etc/group.
pub(crate) fn busybox_users() -> crate::UserDb {
    crate::UserDb {
        passwd: "root:x:0:0:root:/root:/bin/sh\n\
                 daemon:x:1:1:daemon:/usr/sbin:/bin/false\n\
                 nobody:x:65534:65534:nobody:/home:/bin/false\n"
            .into(),
        group: "root:x:0:\ndaemon:x:1:\nnogroup:x:65534:\n".into(),
    }
}
