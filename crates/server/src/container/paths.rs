//! Where a container's files live.
//!
//! ```text
//! <state>/containers/<id>/bundle/config.json   OCI bundle given to runc (via the shim)
//! <state>/containers/<id>/bundle/rootfs        overlay mount of the image + upper dir
//! <state>/containers/<id>/shim/                shim state: pid, exit, shim.sock, logs
//! <state>/containers/<id>/volumes/<n>          idmapped volumes (pods with a user namespace)
//! <root>/containers/<id>/{upper,work}          the writable layer (kept across reboots)
//! <state>/runc                                 runc's --root
//! <state>/container-trash, <root>/container-trash   removed containers' directories, being
//!                                              deleted (see `super::trash`)
//! ```

use std::path::PathBuf;

use crate::daemon::Daemon;

/// The directories of one container.
#[derive(Debug, Clone)]
pub struct ContainerPaths {
    /// `<state>/containers/<id>`
    pub state: PathBuf,
    /// `<root>/containers/<id>`
    pub layer: PathBuf,
}

impl ContainerPaths {
    /// The paths of container `id`.
    pub fn new(daemon: &Daemon, id: &str) -> ContainerPaths {
        ContainerPaths {
            state: daemon.config.state.join("containers").join(id),
            layer: daemon.config.root.join("containers").join(id),
        }
    }

    /// The OCI bundle.
    pub fn bundle(&self) -> PathBuf {
        self.state.join("bundle")
    }

    /// The rootfs mount point.
    pub fn rootfs(&self) -> PathBuf {
        self.bundle().join("rootfs")
    }

    /// The shim's state directory.
    pub fn shim(&self) -> PathBuf {
        self.state.join("shim")
    }

    /// Where idmapped clones of the container's volumes are attached.
    pub fn volumes(&self) -> PathBuf {
        self.state.join("volumes")
    }

    /// The overlay upper directory.
    pub fn upper(&self) -> PathBuf {
        self.layer.join("upper")
    }

    /// The overlay work directory.
    pub fn work(&self) -> PathBuf {
        self.layer.join("work")
    }
}
