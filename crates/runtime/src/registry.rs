//! The in-memory registry: every sandbox and container by ID (ordered, so an ID prefix is a
//! range), by name, and sandbox → containers. It is the truth while berthd runs; the store
//! is written through before an entry changes here (persist first, then swap).
//!
//! Entries whose `intent` is `Creating` are held (they reserve their name) but hidden from
//! lookups and lists until the creation is committed.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use berth_store::{ContainerIntent, ContainerRecord, SandboxIntent, SandboxRecord};
use tokio::sync::watch;

/// The name a pod is unique by: `name_namespace_uid_attempt`, as kubelet's names go.
pub fn pod_key(record: &SandboxRecord) -> String {
    format!(
        "{}_{}_{}_{}",
        record.name, record.namespace, record.uid, record.attempt
    )
}

/// The name a container is unique by within its pod: `name_attempt_sandbox-id`.
pub fn container_key(record: &ContainerRecord) -> String {
    format!("{}_{}_{}", record.name, record.attempt, record.sandbox_id)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// One sandbox.
#[derive(Debug)]
pub struct SandboxEntry {
    /// Its ID.
    pub id: String,
    record: Mutex<SandboxRecord>,
    /// The pod's lifecycle lock: container operations hold it shared, pod operations
    /// (run, stop, remove) exclusively, so a container can never be created into, or
    /// outlive, a pod being stopped or removed.
    pub lifecycle: Arc<tokio::sync::RwLock<()>>,
    /// Serialises read-modify-persist of the record.
    pub write: tokio::sync::Mutex<()>,
}

impl SandboxEntry {
    /// A copy of the record.
    pub fn record(&self) -> SandboxRecord {
        lock(&self.record).clone()
    }

    /// Reads the record in place.
    pub fn with<T>(&self, f: impl FnOnce(&SandboxRecord) -> T) -> T {
        f(&lock(&self.record))
    }

    /// Replaces the record (after it was persisted).
    pub fn set(&self, record: SandboxRecord) {
        *lock(&self.record) = record;
    }

    fn hidden(&self) -> bool {
        self.with(|r| r.intent == Some(SandboxIntent::Creating))
    }
}

/// One container.
#[derive(Debug)]
pub struct ContainerEntry {
    /// Its ID.
    pub id: String,
    /// Its sandbox's ID.
    pub sandbox_id: String,
    record: Mutex<ContainerRecord>,
    /// Why the state is unknown, when berthd could not tell (not persisted: probed again
    /// at the next start).
    unknown: Mutex<Option<String>>,
    /// Serialises the operations that change the container (start, stop, remove, update).
    pub op: Arc<tokio::sync::Mutex<()>>,
    /// Serialises read-modify-persist of the record (short holds; the supervisor takes it).
    pub write: tokio::sync::Mutex<()>,
    /// Bumped on every change, for waiters (StopContainer waits for the exit).
    changed: watch::Sender<u64>,
    /// The earliest time a stop under way must stop waiting for the container to exit and
    /// kill it, posted by operations queued behind it (a shorter StopContainer, a
    /// RemoveContainer, the pod's stop or removal).
    hurry: Mutex<Option<tokio::time::Instant>>,
}

impl ContainerEntry {
    /// A copy of the record.
    pub fn record(&self) -> ContainerRecord {
        lock(&self.record).clone()
    }

    /// Reads the record in place, with the reason the state is unknown if it is.
    pub fn with<T>(&self, f: impl FnOnce(&ContainerRecord, Option<&str>) -> T) -> T {
        let unknown = lock(&self.unknown);
        f(&lock(&self.record), unknown.as_deref())
    }

    /// Replaces the record (after it was persisted) and wakes waiters.
    pub fn set(&self, record: ContainerRecord) {
        *lock(&self.record) = record;
        self.changed.send_modify(|n| *n += 1);
    }

    /// Marks the state unknown (`Some(why)`) or known again.
    pub fn set_unknown(&self, why: Option<String>) {
        *lock(&self.unknown) = why;
        self.changed.send_modify(|n| *n += 1);
    }

    /// Asks a stop under way to give up its grace period at `deadline` (the earlier of
    /// this and any deadline already asked for), and wakes it.
    pub fn hurry(&self, deadline: tokio::time::Instant) {
        {
            let mut hurry = lock(&self.hurry);
            *hurry = Some(hurry.map_or(deadline, |d| d.min(deadline)));
        }
        self.changed.send_modify(|n| *n += 1);
    }

    /// The deadline asked for with [`ContainerEntry::hurry`], if any.
    pub fn hurry_deadline(&self) -> Option<tokio::time::Instant> {
        *lock(&self.hurry)
    }

    /// Withdraws `deadline` once the operation that asked for it holds the lock (a later,
    /// stricter one stays).
    pub fn withdraw_hurry(&self, deadline: tokio::time::Instant) {
        let mut hurry = lock(&self.hurry);
        if *hurry == Some(deadline) {
            *hurry = None;
        }
    }

    /// Takes the operation lock.
    pub async fn op_lock(&self) -> tokio::sync::OwnedMutexGuard<()> {
        self.op.clone().lock_owned().await
    }

    /// A receiver that sees every later change.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    fn hidden(&self) -> bool {
        self.with(|r, _| r.intent == Some(ContainerIntent::Creating))
    }
}

/// The outcome of a lookup by ID or prefix.
#[derive(Debug)]
pub enum Lookup<T> {
    /// Exactly one match.
    Found(Arc<T>),
    /// None.
    Missing,
    /// More than one.
    Ambiguous,
}

#[derive(Debug, Default)]
struct Pods {
    by_id: BTreeMap<String, Arc<SandboxEntry>>,
    by_name: HashMap<String, String>,
    containers: HashMap<String, BTreeSet<String>>,
}

#[derive(Debug, Default)]
struct Containers {
    by_id: BTreeMap<String, Arc<ContainerEntry>>,
    by_name: HashMap<String, String>,
}

/// Every sandbox and container berthd knows.
#[derive(Debug, Default)]
pub struct Registry {
    pods: RwLock<Pods>,
    containers: RwLock<Containers>,
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|p| p.into_inner())
}

/// Finds the one visible entry whose ID starts with `prefix`.
fn by_prefix<T>(
    map: &BTreeMap<String, Arc<T>>,
    prefix: &str,
    hidden: impl Fn(&T) -> bool,
) -> Lookup<T> {
    if prefix.is_empty() {
        return Lookup::Missing;
    }
    if let Some(entry) = map.get(prefix) {
        return if hidden(entry) {
            Lookup::Missing
        } else {
            Lookup::Found(entry.clone())
        };
    }
    let mut matches = map
        .range::<str, _>((
            std::ops::Bound::Included(prefix),
            std::ops::Bound::Unbounded,
        ))
        .take_while(|(id, _)| id.starts_with(prefix))
        .filter(|(_, entry)| !hidden(entry));
    match (matches.next(), matches.next()) {
        (Some((_, entry)), None) => Lookup::Found(entry.clone()),
        (None, _) => Lookup::Missing,
        (Some(_), Some(_)) => Lookup::Ambiguous,
    }
}

impl Registry {
    /// Adds a sandbox, unless another one holds its name: then `Err(holder id)`.
    pub fn add_sandbox(&self, record: SandboxRecord) -> Result<Arc<SandboxEntry>, String> {
        let key = pod_key(&record);
        let mut pods = write(&self.pods);
        if let Some(holder) = pods.by_name.get(&key) {
            return Err(holder.clone());
        }
        let entry = Arc::new(SandboxEntry {
            id: record.id.clone(),
            record: Mutex::new(record),
            lifecycle: Arc::default(),
            write: Default::default(),
        });
        pods.by_name.insert(key, entry.id.clone());
        pods.by_id.insert(entry.id.clone(), entry.clone());
        Ok(entry)
    }

    /// Removes a sandbox (its containers must be gone).
    pub fn remove_sandbox(&self, id: &str) {
        let mut pods = write(&self.pods);
        if let Some(entry) = pods.by_id.remove(id) {
            let key = pod_key(&entry.record());
            if pods.by_name.get(&key).map(String::as_str) == Some(id) {
                pods.by_name.remove(&key);
            }
        }
        pods.containers.remove(id);
    }

    /// The visible sandbox `prefix` names.
    pub fn sandbox(&self, prefix: &str) -> Lookup<SandboxEntry> {
        by_prefix(&read(&self.pods).by_id, prefix, SandboxEntry::hidden)
    }

    /// The sandbox with exactly this ID, hidden or not.
    pub fn sandbox_exact(&self, id: &str) -> Option<Arc<SandboxEntry>> {
        read(&self.pods).by_id.get(id).cloned()
    }

    /// Every visible sandbox, in ID order.
    pub fn sandboxes(&self) -> Vec<Arc<SandboxEntry>> {
        read(&self.pods)
            .by_id
            .values()
            .filter(|e| !e.hidden())
            .cloned()
            .collect()
    }

    /// Every sandbox, hidden ones too (recovery).
    pub fn all_sandboxes(&self) -> Vec<Arc<SandboxEntry>> {
        read(&self.pods).by_id.values().cloned().collect()
    }

    /// Adds a container, unless another one holds its name: then `Err(holder id)`.
    pub fn add_container(&self, record: ContainerRecord) -> Result<Arc<ContainerEntry>, String> {
        let key = container_key(&record);
        // Lock order: pods, then containers.
        let mut pods = write(&self.pods);
        let mut containers = write(&self.containers);
        if let Some(holder) = containers.by_name.get(&key) {
            return Err(holder.clone());
        }
        let entry = Arc::new(ContainerEntry {
            id: record.id.clone(),
            sandbox_id: record.sandbox_id.clone(),
            record: Mutex::new(record),
            unknown: Mutex::default(),
            op: Default::default(),
            write: Default::default(),
            changed: watch::channel(0).0,
            hurry: Mutex::default(),
        });
        containers.by_name.insert(key, entry.id.clone());
        containers.by_id.insert(entry.id.clone(), entry.clone());
        pods.containers
            .entry(entry.sandbox_id.clone())
            .or_default()
            .insert(entry.id.clone());
        Ok(entry)
    }

    /// Removes a container.
    pub fn remove_container(&self, id: &str) {
        let mut pods = write(&self.pods);
        let mut containers = write(&self.containers);
        if let Some(entry) = containers.by_id.remove(id) {
            let key = container_key(&entry.record());
            if containers.by_name.get(&key).map(String::as_str) == Some(id) {
                containers.by_name.remove(&key);
            }
            if let Some(set) = pods.containers.get_mut(&entry.sandbox_id) {
                set.remove(id);
            }
        }
    }

    /// The visible container `prefix` names.
    pub fn container(&self, prefix: &str) -> Lookup<ContainerEntry> {
        by_prefix(
            &read(&self.containers).by_id,
            prefix,
            ContainerEntry::hidden,
        )
    }

    /// The container with exactly this ID, hidden or not.
    pub fn container_exact(&self, id: &str) -> Option<Arc<ContainerEntry>> {
        read(&self.containers).by_id.get(id).cloned()
    }

    /// Every visible container, in ID order.
    pub fn containers(&self) -> Vec<Arc<ContainerEntry>> {
        read(&self.containers)
            .by_id
            .values()
            .filter(|e| !e.hidden())
            .cloned()
            .collect()
    }

    /// Every container, hidden ones too (recovery).
    pub fn all_containers(&self) -> Vec<Arc<ContainerEntry>> {
        read(&self.containers).by_id.values().cloned().collect()
    }

    /// The containers of sandbox `id`, hidden ones too.
    pub fn containers_of(&self, id: &str) -> Vec<Arc<ContainerEntry>> {
        let pods = read(&self.pods);
        let containers = read(&self.containers);
        pods.containers
            .get(id)
            .into_iter()
            .flatten()
            .filter_map(|cid| containers.by_id.get(cid).cloned())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{container, sandbox};

    #[test]
    fn names_are_unique_and_freed_on_removal() {
        let registry = Registry::default();
        registry.add_sandbox(sandbox("aa", "web")).unwrap();
        assert_eq!(
            registry.add_sandbox(sandbox("bb", "web")).unwrap_err(),
            "aa"
        );
        registry.remove_sandbox("aa");
        registry.add_sandbox(sandbox("bb", "web")).unwrap();

        registry
            .add_container(container("c1", "bb", "app"))
            .unwrap();
        assert_eq!(
            registry
                .add_container(container("c2", "bb", "app"))
                .unwrap_err(),
            "c1"
        );
        // Same name in another pod is fine.
        registry
            .add_container(container("c3", "aa", "app"))
            .unwrap();
        assert_eq!(registry.containers_of("bb").len(), 1);
        registry.remove_container("c1");
        assert!(registry.containers_of("bb").is_empty());
        registry
            .add_container(container("c2", "bb", "app"))
            .unwrap();
    }

    #[test]
    fn prefixes_and_hidden_entries() {
        let registry = Registry::default();
        registry.add_sandbox(sandbox("abc1", "a")).unwrap();
        registry.add_sandbox(sandbox("abc2", "b")).unwrap();
        let mut creating = sandbox("abd9", "c");
        creating.intent = Some(SandboxIntent::Creating);
        registry.add_sandbox(creating).unwrap();
        assert!(matches!(registry.sandbox("abc"), Lookup::Ambiguous));
        assert!(matches!(registry.sandbox("abc2"), Lookup::Found(e) if e.id == "abc2"));
        assert!(matches!(registry.sandbox("abd"), Lookup::Missing));
        assert!(matches!(registry.sandbox("abd9"), Lookup::Missing));
        assert!(matches!(registry.sandbox(""), Lookup::Missing));
        assert!(registry.sandbox_exact("abd9").is_some());
        assert_eq!(registry.sandboxes().len(), 2);
        assert_eq!(registry.all_sandboxes().len(), 3);
    }
}
