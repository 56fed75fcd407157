//! A recording host for unit tests: it keeps the set of resources a real host would hold
//! (`pod:<id>:<part>`, `ctr:<id>:<part>`), logs every call, can fail at a named step, and
//! runs a real `sleep` process as each started container's "shim" so supervision is
//! exercised with real pidfds.

use std::collections::{BTreeSet, HashMap};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};

use berth_store::{ContainerRecord, SandboxRecord};

use crate::host::{ExitFile, Host, Probe, RuncView, Step};

/// A failure the fake was told to produce.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("fake host: {0} failed")]
pub struct FakeError(pub String);

/// The recording host.
#[derive(Debug, Default)]
pub struct FakeHost {
    /// What the host holds now.
    pub resources: Mutex<BTreeSet<String>>,
    /// Every call, in order: `create_pod <id>`, `signal <id> 9 all`, …
    pub calls: Mutex<Vec<String>>,
    /// A step (`run_pod_sandbox:network`, …) or call (`remove_pod`, …) that fails.
    pub fail: Mutex<Option<String>>,
    /// Pods whose namespaces are gone.
    pub dead_pods: Mutex<BTreeSet<String>>,
    /// runc's view per container (created once the "shim" ran, running after start).
    pub runc: Mutex<HashMap<String, RuncView>>,
    /// Exit files the "shims" wrote.
    pub exits: Mutex<HashMap<String, ExitFile>>,
    shims: Mutex<HashMap<String, Child>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

const POD_STEPS: [(&str, &str); 5] = [
    ("run_pod_sandbox:files", "files"),
    ("run_pod_sandbox:shm", "shm"),
    ("run_pod_sandbox:namespaces", "ns"),
    ("run_pod_sandbox:pid_init", "init"),
    ("run_pod_sandbox:network", "net"),
];

const CONTAINER_STEPS: [(&str, &str); 2] = [
    ("create_container:rootfs", "rootfs"),
    ("create_container:bundle", "bundle"),
];

impl FakeHost {
    fn call(&self, what: String) -> Result<(), FakeError> {
        lock(&self.calls).push(what.clone());
        let name = what.split(' ').next().unwrap_or_default();
        if lock(&self.fail).as_deref() == Some(name) {
            return Err(FakeError(name.to_owned()));
        }
        Ok(())
    }

    fn step(&self, name: &'static str, step: Step<'_>) -> Result<(), FakeError> {
        step(name);
        if lock(&self.fail).as_deref() == Some(name) {
            return Err(FakeError(name.to_owned()));
        }
        Ok(())
    }

    /// What the host holds now.
    pub fn held(&self) -> BTreeSet<String> {
        lock(&self.resources).clone()
    }

    /// The calls so far whose first word is `name`.
    pub fn calls_of(&self, name: &str) -> Vec<String> {
        lock(&self.calls)
            .iter()
            .filter(|c| c.split(' ').next() == Some(name))
            .cloned()
            .collect()
    }

    /// Kills container `id`'s "shim" (as `kill -9` would), optionally after it wrote an exit.
    pub fn kill_shim(&self, id: &str, exit: Option<ExitFile>) {
        if let Some(exit) = exit {
            lock(&self.exits).insert(id.to_owned(), exit);
            lock(&self.runc).insert(id.to_owned(), RuncView::Stopped);
        }
        if let Some(mut child) = lock(&self.shims).remove(id) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// A node reboot: every process and every volatile resource is gone.
    pub fn reboot(&self) {
        let ids: Vec<String> = lock(&self.shims).keys().cloned().collect();
        for id in ids {
            self.kill_shim(&id, None);
        }
        lock(&self.runc).clear();
        lock(&self.exits).clear();
        lock(&self.resources).retain(|r| {
            !r.ends_with(":ns")
                && !r.ends_with(":init")
                && !r.ends_with(":shm")
                && !r.ends_with(":rootfs")
        });
        let pods: Vec<String> = lock(&self.resources)
            .iter()
            .filter_map(|r| r.strip_prefix("pod:"))
            .filter_map(|r| r.split(':').next())
            .map(str::to_owned)
            .collect();
        lock(&self.dead_pods).extend(pods);
    }
}

impl Drop for FakeHost {
    fn drop(&mut self) {
        for (_, mut child) in lock(&self.shims).drain() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Host for FakeHost {
    type Error = FakeError;
    type PodSpec = ();
    type ContainerSpec = ();

    fn create_pod(
        &self,
        record: &mut SandboxRecord,
        _spec: &(),
        step: Step<'_>,
    ) -> Result<(), FakeError> {
        self.call(format!("create_pod {}", record.id))?;
        for (name, part) in POD_STEPS {
            self.step(name, step)?;
            lock(&self.resources).insert(format!("pod:{}:{part}", record.id));
        }
        record.ip = Some("10.0.0.2".into());
        Ok(())
    }

    fn stop_pod(&self, record: &SandboxRecord, _step: Step<'_>) -> Result<(), FakeError> {
        self.call(format!("stop_pod {}", record.id))?;
        let mut held = lock(&self.resources);
        held.remove(&format!("pod:{}:net", record.id));
        held.remove(&format!("pod:{}:init", record.id));
        Ok(())
    }

    fn remove_pod(&self, record: &SandboxRecord, _step: Step<'_>) -> Result<(), FakeError> {
        self.call(format!("remove_pod {}", record.id))?;
        let prefix = format!("pod:{}:", record.id);
        lock(&self.resources).retain(|r| !r.starts_with(&prefix));
        Ok(())
    }

    fn pod_alive(&self, record: &SandboxRecord) -> bool {
        !lock(&self.dead_pods).contains(&record.id)
    }

    fn create_container(
        &self,
        record: &mut ContainerRecord,
        _sandbox: &SandboxRecord,
        _spec: &(),
        step: Step<'_>,
    ) -> Result<(), FakeError> {
        self.call(format!("create_container {}", record.id))?;
        for (name, part) in CONTAINER_STEPS {
            self.step(name, step)?;
            lock(&self.resources).insert(format!("ctr:{}:{part}", record.id));
        }
        record.bundle_dir = format!("/fake/{}", record.id);
        Ok(())
    }

    fn start_container(&self, record: &ContainerRecord, step: Step<'_>) -> Result<(), FakeError> {
        self.call(format!("start_container {}", record.id))?;
        self.step("start_container:shim", step)?;
        let child = Command::new("sleep")
            .arg("1000")
            .stdin(Stdio::null())
            .spawn()
            .map_err(|e| FakeError(format!("spawn sleep: {e}")))?;
        lock(&self.shims).insert(record.id.clone(), child);
        lock(&self.runc).insert(record.id.clone(), RuncView::Created);
        lock(&self.resources).insert(format!("ctr:{}:shim", record.id));
        self.step("start_container:runc_start", step)?;
        lock(&self.runc).insert(record.id.clone(), RuncView::Running);
        Ok(())
    }

    fn reset_container(&self, record: &ContainerRecord) -> Result<(), FakeError> {
        self.call(format!("reset_container {}", record.id))?;
        self.kill_shim(&record.id, None);
        lock(&self.runc).remove(&record.id);
        lock(&self.exits).remove(&record.id);
        lock(&self.resources).remove(&format!("ctr:{}:shim", record.id));
        Ok(())
    }

    fn container_prepared(&self, record: &ContainerRecord) -> bool {
        let held = lock(&self.resources);
        ["rootfs", "bundle"]
            .iter()
            .all(|part| held.contains(&format!("ctr:{}:{part}", record.id)))
    }

    fn signal_container(
        &self,
        record: &ContainerRecord,
        signal: i32,
        all: bool,
    ) -> Result<(), FakeError> {
        self.call(format!(
            "signal {} {signal}{}",
            record.id,
            if all { " all" } else { "" }
        ))?;
        let running = lock(&self.runc).get(&record.id) == Some(&RuncView::Running);
        if running && (signal == crate::SIGKILL || signal == 15) {
            // The process dies; the "shim" records it and ends.
            self.kill_shim(
                &record.id,
                Some(ExitFile {
                    exit_code: 128 + signal,
                    exited_at: crate::now_nanos(),
                    oom_killed: false,
                }),
            );
        }
        Ok(())
    }

    fn remove_container(&self, record: &ContainerRecord) -> Result<(), FakeError> {
        self.call(format!("remove_container {}", record.id))?;
        self.kill_shim(&record.id, None);
        lock(&self.runc).remove(&record.id);
        let prefix = format!("ctr:{}:", record.id);
        lock(&self.resources).retain(|r| !r.starts_with(&prefix));
        Ok(())
    }

    fn probe_container(&self, record: &ContainerRecord) -> Probe {
        lock(&self.calls).push(format!("probe {}", record.id));
        Probe {
            shim_pid: self.shim_pid(record),
            exit: lock(&self.exits).get(&record.id).copied(),
            runc: lock(&self.runc)
                .get(&record.id)
                .cloned()
                .unwrap_or(RuncView::Missing),
        }
    }

    fn exit_file(&self, record: &ContainerRecord) -> Option<ExitFile> {
        lock(&self.exits).get(&record.id).copied()
    }

    fn shim_pid(&self, record: &ContainerRecord) -> Option<u32> {
        let mut shims = lock(&self.shims);
        let child = shims.get_mut(&record.id)?;
        match child.try_wait() {
            Ok(None) => Some(child.id()),
            _ => None,
        }
    }
}
