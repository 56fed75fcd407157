//! Lookups and lists, all from the in-memory registry.

use std::sync::Arc;

use berth_store::{ContainerRecord, ContainerState, SandboxRecord};

use crate::error::{not_found, quote};
use crate::registry::{ContainerEntry, Lookup, SandboxEntry};
use crate::{Host, Result, Runtime, RuntimeError};

/// A container as the core knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerView {
    /// Its record (with run state).
    pub record: ContainerRecord,
    /// Why its state is unknown, when it is.
    pub unknown: Option<String>,
}

impl ContainerView {
    /// The CRI state: the record's, or `Unknown` while berthd cannot tell.
    pub fn state(&self) -> ContainerState {
        state_of(&self.record, self.unknown.as_deref())
    }
}

fn state_of(record: &ContainerRecord, unknown: Option<&str>) -> ContainerState {
    match (record.exit.is_some(), unknown) {
        (false, Some(_)) => ContainerState::Unknown,
        _ => record.state(),
    }
}

impl<H: Host> Runtime<H> {
    pub(crate) fn sandbox_entry(&self, prefix: &str) -> Result<Option<Arc<SandboxEntry>>, H> {
        match self.registry.sandbox(prefix) {
            Lookup::Found(entry) => Ok(Some(entry)),
            Lookup::Missing => Ok(None),
            Lookup::Ambiguous => Err(RuntimeError::Ambiguous {
                kind: "pod sandbox",
                prefix: quote(prefix),
            }),
        }
    }

    pub(crate) fn container_entry(&self, prefix: &str) -> Result<Option<Arc<ContainerEntry>>, H> {
        match self.registry.container(prefix) {
            Lookup::Found(entry) => Ok(Some(entry)),
            Lookup::Missing => Ok(None),
            Lookup::Ambiguous => Err(RuntimeError::Ambiguous {
                kind: "container",
                prefix: quote(prefix),
            }),
        }
    }

    /// The sandbox entry `prefix` names; NotFound otherwise.
    pub(crate) fn existing_sandbox(&self, prefix: &str) -> Result<Arc<SandboxEntry>, H> {
        self.sandbox_entry(prefix)?
            .ok_or_else(|| not_found("pod sandbox", prefix))
    }

    /// The container entry `prefix` names; NotFound otherwise.
    pub(crate) fn existing_container(&self, prefix: &str) -> Result<Arc<ContainerEntry>, H> {
        self.container_entry(prefix)?
            .ok_or_else(|| not_found("container", prefix))
    }

    /// The sandbox a full ID or unique prefix names; NotFound otherwise.
    pub fn sandbox(&self, prefix: &str) -> Result<SandboxRecord, H> {
        Ok(self.existing_sandbox(prefix)?.record())
    }

    /// The container a full ID or unique prefix names; NotFound otherwise.
    pub fn container(&self, prefix: &str) -> Result<ContainerView, H> {
        let entry = self.existing_container(prefix)?;
        Ok(view(&entry))
    }

    /// The sandboxes `f` maps to `Some`, in ID order.
    pub fn list_sandboxes<T>(&self, mut f: impl FnMut(&SandboxRecord) -> Option<T>) -> Vec<T> {
        self.registry
            .sandboxes()
            .iter()
            .filter_map(|e| e.with(&mut f))
            .collect()
    }

    /// The containers `f` maps to `Some` (given each one's state), in ID order.
    pub fn list_containers<T>(
        &self,
        mut f: impl FnMut(&ContainerRecord, ContainerState) -> Option<T>,
    ) -> Vec<T> {
        self.registry
            .containers()
            .iter()
            .filter_map(|e| e.with(|r, unknown| f(r, state_of(r, unknown))))
            .collect()
    }

    /// The containers of sandbox `id` (complete ones).
    pub fn containers_of(&self, id: &str) -> Vec<ContainerView> {
        self.registry
            .containers_of(id)
            .iter()
            .map(|e| view(e))
            .filter(|v| v.record.intent != Some(berth_store::ContainerIntent::Creating))
            .collect()
    }

    /// A container (created or being created) that uses image `image_id`.
    pub fn image_user(&self, image_id: &str) -> Option<String> {
        self.registry
            .all_containers()
            .iter()
            .find(|e| e.with(|r, _| r.image_ref == image_id))
            .map(|e| e.id.clone())
    }
}

fn view(entry: &ContainerEntry) -> ContainerView {
    entry.with(|record, unknown| ContainerView {
        record: record.clone(),
        unknown: unknown.map(str::to_owned),
    })
}
