//! The Linux host of berth's runtime core: the pod and container modules behind
//! [`berth_runtime::Host`]. The core calls these on blocking threads only.

use std::sync::{Arc, Weak};

use berth_runtime::{ExitFile, Host, Probe, Step};
use berth_store::{ContainerRecord, SandboxRecord};

use crate::container::create::{create_container, ContainerSpec};
use crate::container::lifecycle::{remove_container, reset_container};
use crate::container::paths::ContainerPaths;
use crate::container::shim::{block_on, exit_file, probe, shim_pid};
use crate::container::start::{prepared, start_container};
use crate::daemon::Daemon;
use crate::error::ServiceError;
use crate::pod::create::{create_sandbox, PodSpec};
use crate::pod::teardown::{remove_sandbox, sandbox_alive, stop_sandbox};

/// The runtime core berthd runs.
pub type Core = berth_runtime::Runtime<LinuxHost>;

/// This machine, as the runtime core sees it.
#[derive(Debug)]
pub struct LinuxHost {
    // Weak: the daemon holds the core, which holds this.
    daemon: Weak<Daemon>,
}

impl LinuxHost {
    /// The host of `daemon`.
    pub fn new(daemon: &Arc<Daemon>) -> LinuxHost {
        LinuxHost {
            daemon: Arc::downgrade(daemon),
        }
    }

    fn daemon(&self) -> Result<Arc<Daemon>, ServiceError> {
        self.daemon.upgrade().ok_or(ServiceError::ShuttingDown)
    }
}

impl Host for LinuxHost {
    type Error = ServiceError;
    type PodSpec = PodSpec;
    type ContainerSpec = ContainerSpec;

    fn create_pod(
        &self,
        record: &mut SandboxRecord,
        spec: &PodSpec,
        step: Step<'_>,
    ) -> Result<(), ServiceError> {
        create_sandbox(&*self.daemon()?, record, spec, step)
    }

    fn stop_pod(&self, record: &SandboxRecord, step: Step<'_>) -> Result<(), ServiceError> {
        stop_sandbox(&*self.daemon()?, record, step)
    }

    fn remove_pod(&self, record: &SandboxRecord, step: Step<'_>) -> Result<(), ServiceError> {
        remove_sandbox(&*self.daemon()?, record, step)
    }

    fn pod_alive(&self, record: &SandboxRecord) -> bool {
        self.daemon()
            .is_ok_and(|daemon| sandbox_alive(&daemon, record))
    }

    fn create_container(
        &self,
        record: &mut ContainerRecord,
        sandbox: &SandboxRecord,
        spec: &ContainerSpec,
        step: Step<'_>,
    ) -> Result<(), ServiceError> {
        create_container(&*self.daemon()?, record, sandbox, spec, step)
    }

    fn start_container(
        &self,
        record: &ContainerRecord,
        step: Step<'_>,
    ) -> Result<(), ServiceError> {
        start_container(&*self.daemon()?, record, step)
    }

    fn reset_container(&self, record: &ContainerRecord) -> Result<(), ServiceError> {
        reset_container(&*self.daemon()?, record)
    }

    fn container_prepared(&self, record: &ContainerRecord) -> bool {
        self.daemon().is_ok_and(|daemon| prepared(&daemon, record))
    }

    fn signal_container(
        &self,
        record: &ContainerRecord,
        signal: i32,
        all: bool,
    ) -> Result<(), ServiceError> {
        let runc = self.daemon()?.runc(&record.handler)?;
        Ok(block_on(runc.kill(&record.id, signal, all))?)
    }

    fn remove_container(&self, record: &ContainerRecord) -> Result<(), ServiceError> {
        remove_container(&*self.daemon()?, record)
    }

    fn probe_container(&self, record: &ContainerRecord) -> Probe {
        match self.daemon() {
            Ok(daemon) => probe(&daemon, record),
            Err(err) => Probe {
                shim_pid: None,
                exit: None,
                runc: berth_runtime::RuncView::Unknown(err.to_string()),
            },
        }
    }

    fn exit_file(&self, record: &ContainerRecord) -> Option<ExitFile> {
        let daemon = self.daemon().ok()?;
        exit_file(&ContainerPaths::new(&daemon, &record.id))
    }

    fn shim_pid(&self, record: &ContainerRecord) -> Option<u32> {
        shim_pid(&*self.daemon().ok()?, &record.id)
    }
}
