//! What the fuzzed daemon holds, as far as the fuzzer learned from its replies: pods (with
//! the config that created them), containers, images. Seeds draw real IDs from it, so
//! requests reach past "not found"; the janitor keeps the number of live objects bounded;
//! the final cleanup and leftover checks use every ID and cgroup parent ever seen.

use std::collections::BTreeSet;

use cri_api::v1;

use crate::rng::Rng;

/// A pod sandbox the daemon created.
#[derive(Debug, Clone)]
pub struct Pod {
    /// Its ID.
    pub id: String,
    /// The config it was created with (CreateContainer sends it again).
    pub config: v1::PodSandboxConfig,
    /// Created by the fixture step.
    pub fixture: bool,
}

/// A container the daemon created.
#[derive(Debug, Clone)]
pub struct Container {
    /// Its ID.
    pub id: String,
    /// Its pod.
    pub pod: String,
    /// StartContainer succeeded for it.
    pub started: bool,
    /// Created by the fixture step.
    pub fixture: bool,
}

/// Live objects and everything ever seen.
#[derive(Debug, Default)]
pub struct Pool {
    /// Pods believed to exist.
    pub pods: Vec<Pod>,
    /// Containers believed to exist.
    pub containers: Vec<Container>,
    /// Image references and IDs the daemon returned.
    pub images: Vec<String>,
    /// Every pod and container ID ever returned (for the leftover checks).
    pub all_ids: BTreeSet<String>,
    /// Every cgroup parent of a pod the daemon accepted.
    pub cgroup_parents: BTreeSet<String>,
}

impl Pool {
    /// Records a new pod.
    pub fn add_pod(&mut self, id: String, config: v1::PodSandboxConfig, fixture: bool) {
        self.all_ids.insert(id.clone());
        if let Some(linux) = &config.linux {
            self.cgroup_parents.insert(linux.cgroup_parent.clone());
        }
        if !self.pods.iter().any(|p| p.id == id) {
            self.pods.push(Pod {
                id,
                config,
                fixture,
            });
        }
    }

    /// Records a new container.
    pub fn add_container(&mut self, id: String, pod: String, fixture: bool) {
        self.all_ids.insert(id.clone());
        if !self.containers.iter().any(|c| c.id == id) {
            self.containers.push(Container {
                id,
                pod,
                started: false,
                fixture,
            });
        }
    }

    /// Records an image reference or ID (bounded: the oldest go first).
    pub fn add_image(&mut self, image: String) {
        if image.is_empty() || image.len() > 512 || self.images.contains(&image) {
            return;
        }
        if self.images.len() >= 64 {
            self.images.remove(0);
        }
        self.images.push(image);
    }

    /// Forgets pod `id` and its containers (after RemovePodSandbox succeeded). IDs may be
    /// unique prefixes, as the daemon accepts them.
    pub fn remove_pod(&mut self, id: &str) {
        if let Some(full) = self.resolve_pod(id) {
            self.pods.retain(|p| p.id != full);
            self.containers.retain(|c| c.pod != full);
        }
    }

    /// Forgets container `id` (after RemoveContainer succeeded).
    pub fn remove_container(&mut self, id: &str) {
        if let Some(full) = self.resolve_container(id) {
            self.containers.retain(|c| c.id != full);
        }
    }

    /// Stops offering the pod or container `id` names (after a call on it got no answer
    /// within its deadline: it is wedged, and every later call would wait as long).
    pub fn quarantine(&mut self, id: &str) {
        self.remove_container(id);
        self.remove_pod(id);
    }

    /// Marks container `id` started.
    pub fn mark_started(&mut self, id: &str) {
        if let Some(full) = self.resolve_container(id) {
            for c in self.containers.iter_mut().filter(|c| c.id == full) {
                c.started = true;
            }
        }
    }

    fn resolve_pod(&self, id: &str) -> Option<String> {
        unique_prefix(self.pods.iter().map(|p| p.id.as_str()), id)
    }

    fn resolve_container(&self, id: &str) -> Option<String> {
        unique_prefix(self.containers.iter().map(|c| c.id.as_str()), id)
    }

    /// A pod ID: a live one most of the time (sometimes as a prefix), else an unknown one.
    pub fn pod_id(&self, rng: &mut Rng) -> String {
        pick_id(rng, self.pods.iter().map(|p| p.id.as_str()).collect())
    }

    /// A container ID, preferring those in `started` state when given.
    pub fn container_id(&self, rng: &mut Rng, started: Option<bool>) -> String {
        let mut ids: Vec<&str> = self
            .containers
            .iter()
            .filter(|c| started.is_none_or(|s| c.started == s))
            .map(|c| c.id.as_str())
            .collect();
        if ids.is_empty() {
            ids = self.containers.iter().map(|c| c.id.as_str()).collect();
        }
        pick_id(rng, ids)
    }

    /// A live pod with its config, if any.
    pub fn pod(&self, rng: &mut Rng) -> Option<Pod> {
        (!self.pods.is_empty()).then(|| rng.pick(&self.pods).clone())
    }

    /// Real values for the mutator to splice into strings.
    pub fn splice_values(&self) -> Vec<Vec<u8>> {
        let mut out: Vec<Vec<u8>> = Vec::new();
        out.extend(self.pods.iter().take(4).map(|p| p.id.as_bytes().to_vec()));
        out.extend(
            self.containers
                .iter()
                .take(4)
                .map(|c| c.id.as_bytes().to_vec()),
        );
        out.extend(self.images.iter().take(4).map(|i| i.as_bytes().to_vec()));
        out
    }
}

fn unique_prefix<'a>(ids: impl Iterator<Item = &'a str>, prefix: &str) -> Option<String> {
    if prefix.is_empty() {
        return None;
    }
    let matches: Vec<&str> = ids.filter(|id| id.starts_with(prefix)).collect();
    (matches.len() == 1).then(|| matches[0].to_owned())
}

fn pick_id(rng: &mut Rng, ids: Vec<&str>) -> String {
    if ids.is_empty() || rng.chance(1, 10) {
        return rng.hex(64);
    }
    let id = *rng.pick(&ids);
    if rng.chance(1, 8) {
        // berth accepts a unique prefix of an ID.
        id[..rng.range(1, id.len())].to_owned()
    } else {
        id.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_resolve_only_when_unique() {
        let mut pool = Pool::default();
        pool.add_pod("abc1".into(), Default::default(), false);
        pool.add_pod("abd2".into(), Default::default(), false);
        pool.add_container("c1".into(), "abc1".into(), false);
        pool.add_container("c2".into(), "abd2".into(), false);
        pool.remove_pod("ab");
        assert_eq!(pool.pods.len(), 2);
        pool.remove_pod("abc");
        assert_eq!(pool.pods.len(), 1);
        assert_eq!(pool.containers.len(), 1);
        pool.mark_started("c2");
        assert!(pool.containers[0].started);
        assert_eq!(pool.all_ids.len(), 4);
    }
}
