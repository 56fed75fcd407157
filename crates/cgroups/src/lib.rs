//! Everything berth knows about cgroups, in one place for berthd and the shim:
//!
//! - [`CGROUP_ROOT`] and the host's layout, [`CgroupMode`] (unified, hybrid, legacy);
//! - the [`CgroupDriver`] (systemd or cgroupfs, `auto` resolved by whether systemd is init);
//! - the `linux.cgroupsPath` a container's spec gets for its pod's parent
//!   ([`cgroups_path`]), and the directory such a value names below a hierarchy root
//!   ([`relative_dir`], both forms runc accepts);
//! - where a [`Cgroup`]'s files are in each [`Hierarchy`], and what berth reads there: CPU
//!   time, memory usage and working set, the OOM-kill counter.
//!
//! Pure std apart from `statfs` (nix): the shim links this crate.

#![deny(unsafe_code)]
#![warn(missing_docs)]

mod cgroup;
mod driver;
mod mode;
mod path;

pub use cgroup::{Cgroup, Hierarchy, MemoryUsage, Pressure, PressureKind, PressureLine};
pub use driver::{
    cgroups_path, check_parent, CgroupDriver, ParentError, DEFAULT_CGROUPFS_PARENT, DEFAULT_SLICE,
    MAX_PARENT_LEN,
};
pub use mode::CgroupMode;
pub use path::relative_dir;

/// Where the cgroup hierarchies are mounted.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";
