//! Records for unit tests.

use berth_store::{ContainerRecord, SandboxRecord, SandboxState};

/// A ready sandbox record named `name`.
pub fn sandbox(id: &str, name: &str) -> SandboxRecord {
    SandboxRecord {
        id: id.to_owned(),
        name: name.to_owned(),
        namespace: "default".into(),
        uid: format!("uid-{name}"),
        attempt: 0,
        created_at: 1,
        labels: Default::default(),
        annotations: Default::default(),
        runtime_handler: String::new(),
        handler: String::new(),
        netns_path: None,
        ip: None,
        additional_ips: Vec::new(),
        state: SandboxState::Ready,
        log_directory: String::new(),
        hostname: String::new(),
        cgroup_parent: String::new(),
        config: Vec::new(),
        intent: None,
    }
}

/// A created container record named `name` in `sandbox_id`.
pub fn container(id: &str, sandbox_id: &str, name: &str) -> ContainerRecord {
    ContainerRecord {
        id: id.to_owned(),
        sandbox_id: sandbox_id.to_owned(),
        handler: String::new(),
        name: name.to_owned(),
        attempt: 0,
        created_at: 1,
        image_ref: "sha256:00".into(),
        image_name: "busybox".into(),
        labels: Default::default(),
        annotations: Default::default(),
        log_path: String::new(),
        bundle_dir: String::new(),
        config: Vec::new(),
        intent: None,
        started_at: 0,
        exit: None,
    }
}
