//! Name reservation: one sandbox per (name, namespace, uid, attempt) and one container per
//! (name, attempt) in a sandbox, so two concurrent create calls for the same object cannot
//! both succeed. Objects being created are held here; existing ones are found by the
//! caller's lookup.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::error::ServiceError;

/// The reservation key of a pod: `name_namespace_uid_attempt`, as kubelet's names go.
pub fn pod_key(name: &str, namespace: &str, uid: &str, attempt: u32) -> String {
    format!("{name}_{namespace}_{uid}_{attempt}")
}

/// The reservation key of a container: `name_attempt_sandbox-id`.
pub fn container_key(name: &str, attempt: u32, sandbox_id: &str) -> String {
    format!("{name}_{attempt}_{sandbox_id}")
}

/// Names reserved by objects being created.
#[derive(Debug)]
pub struct Names {
    kind: &'static str,
    pending: Arc<Mutex<HashMap<String, String>>>,
}

/// A held reservation; released on drop (the record then guards the name).
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

impl Names {
    /// An empty registry for objects of `kind` (`pod sandbox`, `container`).
    pub fn new(kind: &'static str) -> Names {
        Names {
            kind,
            pending: Arc::default(),
        }
    }

    /// Reserves `key` for `id` unless an object being created has it, or `existing` (a
    /// lookup among stored objects) finds one that has it.
    pub fn reserve(
        &self,
        key: &str,
        id: &str,
        existing: impl FnOnce() -> Result<Option<String>, ServiceError>,
    ) -> Result<Reservation, ServiceError> {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        let holder = match pending.get(key) {
            Some(other) => Some(other.clone()),
            None => existing()?,
        };
        if let Some(other) = holder {
            return Err(ServiceError::NameTaken {
                kind: self.kind,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_held_until_released() {
        let names = Names::new("container");
        let held = names.reserve("a", "1", || Ok(None)).unwrap();
        let err = names.reserve("a", "2", || Ok(None)).unwrap_err();
        assert_eq!(err.to_string(), "container name \"a\" is already used by 1");
        drop(held);
        names.reserve("a", "2", || Ok(None)).unwrap();
        let err = names
            .reserve("b", "3", || Ok(Some("9".into())))
            .unwrap_err();
        assert!(err.to_string().ends_with("used by 9"));
    }
}
