//! Pod sandboxes: the namespaces, network, files and record behind a CRI pod sandbox.
//!
//! A sandbox is a set of pinned namespaces (no pause container): network, IPC and UTS
//! namespaces are created on a thread and bind-mounted under `<state>/ns/<id>/`, the pod is
//! attached to the CNI network inside the network namespace, and `<state>/sandboxes/<id>/`
//! holds its `resolv.conf`, `hostname`, `hosts` and the `shm` tmpfs. Every step registers its
//! undo, so a failure half-way leaves nothing behind; the record is written last.
//!
//! Stopping tears down the network (CNI DEL, from the result cached at setup so it works
//! after restarts and configuration changes); removing also unpins the namespaces, unmounts
//! `shm` and deletes the directories and the record. Both are idempotent.

pub mod convert;
pub mod create;
pub mod files;
pub mod metrics;
pub mod pidns;
pub mod shm;
pub mod stats;
pub mod teardown;
pub mod userns;
