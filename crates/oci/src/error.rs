//! Why a spec could not be built. Each variant names the field or path at fault, so the
//! server can hand the message to kubelet as it is (they are all `InvalidArgument`-style
//! errors, except `Device` and `SeccompProfile` reads, which are about host files).

use std::path::PathBuf;

/// The error of [`crate::build_spec`] and the helpers it exposes.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// Neither the CRI config nor the image gives a command.
    #[error("no command: the container config and the image config give none")]
    NoCommand,
    /// A field of the image config has the wrong JSON type.
    #[error("image config field {field} is not {expected}")]
    ImageConfig {
        /// The field under `.config`.
        field: &'static str,
        /// The JSON type it must have.
        expected: &'static str,
    },
    /// An environment variable cannot be passed to the process.
    #[error("environment variable {key:?}: {problem}")]
    Env {
        /// The variable's name.
        key: String,
        /// What is wrong with it.
        problem: EnvProblem,
    },
    /// The working directory is not an absolute path.
    #[error("working directory {0:?} is not an absolute path")]
    WorkingDir(String),
    /// A user name is not in the image's `/etc/passwd`.
    #[error("user {0:?} is not in the image's /etc/passwd")]
    UnknownUser(String),
    /// A group name is not in the image's `/etc/group`.
    #[error("group {0:?} is not in the image's /etc/group")]
    UnknownGroup(String),
    /// A uid or gid is negative or larger than 32 bits.
    #[error("{field} {value} is not a valid id")]
    InvalidId {
        /// The CRI field.
        field: &'static str,
        /// The value given.
        value: i64,
    },
    /// `run_as_group` without `run_as_user` or `run_as_username`.
    #[error("run_as_group is set without run_as_user or run_as_username")]
    RunAsGroupWithoutUser,
    /// A capability name that Linux does not have.
    #[error("unknown capability {0:?}")]
    UnknownCapability(String),
    /// A capability this host cannot grant (the kernel lacks it, or berthd does not hold it).
    #[error("capability {0:?} cannot be granted on this host")]
    CapabilityUnavailable(String),
    /// A CRI mount that cannot be honoured.
    #[error("mount at {container_path:?}: {problem}")]
    Mount {
        /// The mount's container path, as given.
        container_path: String,
        /// What is wrong with it.
        problem: MountProblem,
    },
    /// A CRI device, or a host device of a privileged container, that cannot be used.
    #[error("device {path}: {problem}")]
    Device {
        /// The host path.
        path: PathBuf,
        /// What is wrong with it.
        problem: DeviceProblem,
    },
    /// A localhost seccomp profile that cannot be used.
    #[error("seccomp profile {path}: {problem}")]
    SeccompProfile {
        /// The profile's path on the host.
        path: PathBuf,
        /// What is wrong with it.
        problem: ProfileProblem,
    },
    /// A deprecated `seccomp_profile_path` in none of the known forms.
    #[error("seccomp profile {0:?} is none of \"\", unconfined, runtime/default, docker/default, localhost/<path>")]
    UnknownSeccompProfile(String),
    /// A specific AppArmor profile was asked for on a host without AppArmor.
    #[error("AppArmor is not enabled on this host: cannot apply profile {0:?}")]
    AppArmorUnavailable(String),
    /// A deprecated `apparmor_profile` in none of the known forms.
    #[error(
        "AppArmor profile {0:?} is none of \"\", unconfined, runtime/default, localhost/<name>"
    )]
    UnknownAppArmorProfile(String),
    /// A CRI enum field holds a value this proto version does not define.
    #[error("{field} has the unknown value {value}")]
    UnknownEnum {
        /// The CRI field.
        field: &'static str,
        /// The value given.
        value: i32,
    },
    /// The pod's cgroup parent cannot hold the container's cgroup with the driver in use.
    #[error(transparent)]
    CgroupParent(#[from] berth_cgroups::ParentError),
    /// `oom_score_adj` outside the kernel's range.
    #[error("oom_score_adj {0} is outside -1000..=1000")]
    OomScoreAdj(i64),
    /// A resource value that cannot be expressed in the OCI spec.
    #[error("resource {field} has the invalid value {value}")]
    Resource {
        /// The CRI field.
        field: &'static str,
        /// The value given.
        value: i64,
    },
    /// A stop signal that is not a Linux signal.
    #[error("stop signal {0:?} is not a Linux signal")]
    StopSignal(String),
    /// A feature berth does not implement yet.
    #[error("{0} are not supported by berth")]
    Unsupported(&'static str),
}

/// What is wrong with an environment variable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvProblem {
    /// The name is empty.
    #[error("the name is empty")]
    EmptyName,
    /// The name contains `=` or NUL.
    #[error("the name contains '=' or NUL")]
    BadName,
    /// The value is not UTF-8 (the OCI spec carries strings).
    #[error("the value is not UTF-8")]
    NotUtf8,
    /// The value contains NUL, which execve cannot pass.
    #[error("the value contains NUL")]
    Nul,
}

/// What is wrong with a CRI mount.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MountProblem {
    /// The container path is not absolute.
    #[error("the container path is not absolute")]
    ContainerPathNotAbsolute,
    /// The host path is not absolute.
    #[error("host path {0:?} is not absolute")]
    HostPathNotAbsolute(String),
    /// `recursive_read_only` without `readonly`.
    #[error("recursive_read_only needs readonly")]
    RecursiveReadOnlyNotReadOnly,
    /// `recursive_read_only` with a propagation other than private.
    #[error("recursive_read_only needs private propagation")]
    RecursiveReadOnlyPropagation,
    /// A mount option outside the ones CRI allows (noexec, nodev, nosuid).
    #[error("mount option {0:?} is not one of noexec, nodev, nosuid")]
    Option(String),
    /// Below a Bidirectional mount: runc would mount it inside the container and the
    /// kernel carry that mount back to the shared host path, where it outlives the
    /// container and multiplies with every container created.
    #[error(
        "it lies below the Bidirectional mount at {0:?}; its mount would propagate to the \
         host and outlive the container"
    )]
    BelowBidirectional(String),
}

/// What is wrong with a device.
#[derive(Debug, thiserror::Error)]
pub enum DeviceProblem {
    /// It could not be examined.
    #[error("cannot stat it: {0}")]
    Stat(#[source] std::io::Error),
    /// It is neither a character nor a block device (nor a directory of them).
    #[error("it is not a device node")]
    NotADevice,
    /// The container path is not absolute.
    #[error("container path {0:?} is not absolute")]
    ContainerPathNotAbsolute(String),
    /// The cgroup permissions are not a subset of "rwm".
    #[error("permissions {0:?} are not a subset of \"rwm\"")]
    Permissions(String),
}

/// What is wrong with a localhost seccomp profile.
#[derive(Debug, thiserror::Error)]
pub enum ProfileProblem {
    /// The path is empty or relative.
    #[error("the path is not absolute")]
    NotAbsolute,
    /// It could not be read.
    #[error("cannot read it: {0}")]
    Read(#[source] std::io::Error),
    /// It is a device, a directory, a FIFO or an empty file (as /proc files are).
    #[error("it is not a regular file with content")]
    NotARegularFile,
    /// It is larger than berth reads.
    #[error("it is larger than {0} bytes")]
    TooLarge(u64),
    /// It is not a seccomp profile in the OCI or Docker JSON format.
    #[error("it is not a seccomp profile: {0}")]
    Parse(#[source] serde_json::Error),
    /// A syscall rule names no syscall.
    #[error("syscall rule {0} names no syscall")]
    EmptyRule(usize),
}
