//! Pod name reservation: one sandbox per (name, namespace, uid, attempt), so two
//! concurrent RunPodSandbox calls for the same pod cannot both create one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use berth_store::Store;

use crate::error::ServiceError;

/// The reservation key of a pod: `name_namespace_uid_attempt`, as kubelet's names go.
pub fn pod_key(name: &str, namespace: &str, uid: &str, attempt: u32) -> String {
    format!("{name}_{namespace}_{uid}_{attempt}")
}

/// Names reserved by sandboxes being created; existing sandboxes are checked in the store.
#[derive(Debug, Default)]
pub struct PodNames {
    pending: Arc<Mutex<HashMap<String, String>>>,
}

/// A held reservation; released on drop (the sandbox record then guards the name).
#[derive(Debug)]
pub struct Reservation {
    key: String,
    pending: Arc<Mutex<HashMap<String, String>>>,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.key);
    }
}

impl PodNames {
    /// Reserves `key` for sandbox `id`, unless a sandbox being created or an existing one has
    /// it.
    pub fn reserve(&self, store: &Store, key: &str, id: &str) -> Result<Reservation, ServiceError> {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        let existing = match pending.get(key) {
            Some(other) => Some(other.clone()),
            None => store
                .sandboxes()
                .list()?
                .into_iter()
                .find(|s| pod_key(&s.name, &s.namespace, &s.uid, s.attempt) == key)
                .map(|s| s.id),
        };
        if let Some(other) = existing {
            return Err(ServiceError::NameTaken {
                kind: "pod sandbox",
                name: key.to_owned(),
                id: other,
            });
        }
        pending.insert(key.to_owned(), id.to_owned());
        Ok(Reservation {
            key: key.to_owned(),
            pending: self.pending.clone(),
        })
    }
}
