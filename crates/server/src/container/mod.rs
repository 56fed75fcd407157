//! Containers: an overlay rootfs over the image's snapshots and an OCI bundle, prepared by
//! CreateContainer, and a `berth-shim`, spawned by StartContainer, that runs `runc create`,
//! holds the stdio, writes the CRI log and records the exit, and runs exec sessions. berthd runs the other runc commands itself (start, kill,
//! delete, update). These modules are the host side; the runtime core (`berth-runtime`)
//! owns each container's state and calls them through [`crate::host::LinuxHost`].

pub mod convert;
pub mod create;
pub mod events;
pub mod exec_files;
pub mod exec_session;
pub mod idmap;
pub mod lifecycle;
pub mod paths;
pub mod rootfs;
pub mod runc;
pub mod shim;
pub mod shim_stream;
pub mod start;
pub mod state;
pub mod stats;
pub mod trash;
pub mod userdb;
pub mod volumes;
