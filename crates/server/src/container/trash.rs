//! Where removed containers' directories wait for their deletion: `<root>/container-trash`
//! for writable layers and `<state>/container-trash` for bundles and shim state, each
//! emptied by a deleter thread of its own (see [`berth_image::trash`]).
//!
//! RemoveContainer unmounts what the container had mounted, checks that nothing is mounted
//! below its directories any more, and then only renames them into the trash: it does not
//! wait for a writable layer of many files to be unlinked. A rename is atomic, so after a
//! crash a directory is either still in its place (and removed again when recovery finishes
//! the removal) or in the trash, which is emptied at the next start. Each trash is kept
//! apart from the image trash so that the image metrics count only images.

use std::path::Path;

use berth_image::trash::Trash;
use berth_image::ImageError;

use crate::container::lifecycle::remove_tree;
use crate::container::paths::ContainerPaths;
use crate::error::ServiceError;

/// The trashes of removed containers' directories, one per filesystem root.
#[derive(Debug, Clone)]
pub struct ContainerTrash {
    layers: Trash,
    state: Trash,
}

impl ContainerTrash {
    /// Opens (creating) `<root>/container-trash` and `<state>/container-trash` and queues
    /// what a previous run left in them for deletion.
    pub fn open(root: &Path, state: &Path) -> Result<ContainerTrash, ImageError> {
        Ok(ContainerTrash {
            layers: Trash::open(&root.join("container-trash"))?,
            state: Trash::open(&state.join("container-trash"))?,
        })
    }

    /// The trash directories (writable layers, state).
    pub fn dirs(&self) -> [&Path; 2] {
        [self.layers.dir(), self.state.dir()]
    }

    /// Moves the container's state and layer directories into the trash; one that cannot
    /// be renamed there (another filesystem) is deleted in place. Nothing may be mounted
    /// below them any more. From its return on, neither directory exists.
    pub fn discard(&self, paths: &ContainerPaths) -> Result<(), ServiceError> {
        for (trash, dir) in [(&self.state, &paths.state), (&self.layers, &paths.layer)] {
            if let Err(err) = trash.put(dir) {
                tracing::debug!(dir = %dir.display(), error = %err, "cannot move into the trash; deleting in place");
                remove_tree(dir)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn wait_until_empty(dir: &Path) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::fs::read_dir(dir).unwrap().next().is_some() {
            assert!(Instant::now() < deadline, "{} not emptied", dir.display());
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn paths(base: &Path, id: &str) -> ContainerPaths {
        ContainerPaths {
            state: base.join("state/containers").join(id),
            layer: base.join("root/containers").join(id),
        }
    }

    #[test]
    fn discarded_directories_are_gone_at_once_and_deleted_later() {
        let base = tempfile::tempdir().unwrap();
        let trash =
            ContainerTrash::open(&base.path().join("root"), &base.path().join("state")).unwrap();
        let container = paths(base.path(), "c1");
        std::fs::create_dir_all(container.state.join("bundle/rootfs")).unwrap();
        std::fs::write(container.state.join("bundle/config.json"), "{}").unwrap();
        std::fs::create_dir_all(container.layer.join("upper/etc")).unwrap();
        std::fs::write(container.layer.join("upper/etc/hosts"), "x").unwrap();

        trash.discard(&container).unwrap();

        assert!(!container.state.exists());
        assert!(!container.layer.exists());
        for dir in trash.dirs() {
            wait_until_empty(dir);
        }
    }

    #[test]
    fn discarding_what_is_gone_is_fine() {
        let base = tempfile::tempdir().unwrap();
        let trash =
            ContainerTrash::open(&base.path().join("root"), &base.path().join("state")).unwrap();
        trash.discard(&paths(base.path(), "never")).unwrap();
    }

    #[test]
    fn what_a_previous_run_left_is_deleted_at_open() {
        let base = tempfile::tempdir().unwrap();
        let left = base.path().join("root/container-trash/left/upper");
        std::fs::create_dir_all(&left).unwrap();
        std::fs::write(left.join("f"), "x").unwrap();
        let trash =
            ContainerTrash::open(&base.path().join("root"), &base.path().join("state")).unwrap();
        wait_until_empty(trash.dirs()[0]);
    }
}
