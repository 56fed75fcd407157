//! The errors of the CRI services, and their one mapping onto gRPC status codes.

use std::fmt;
use std::path::PathBuf;

use berth_image::ImageError;
use berth_net::cni::CniError;
use berth_net::ns::NsError;
use berth_store::StoreError;
use tonic::{Code, Status};

use crate::container::runc::RuncError;

/// Why an RPC failed.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The RPC exists in the CRI but berth does not serve it yet.
    #[error("{rpc} is not implemented by berth yet")]
    Unimplemented {
        /// The RPC's CRI name, e.g. `RunPodSandbox`.
        rpc: &'static str,
    },
    /// A request field is malformed.
    #[error("invalid {field}: {problem}")]
    InvalidArgument {
        /// The request field, e.g. `container_id`.
        field: &'static str,
        /// What is wrong with it.
        problem: FieldProblem,
    },
    /// No object has this ID.
    #[error("{kind} {id:?} not found")]
    NotFound {
        /// `pod sandbox` or `container`.
        kind: &'static str,
        /// The ID asked for.
        id: String,
    },
    /// The name is taken by another object.
    #[error("{kind} name {name:?} is already used by {id}")]
    NameTaken {
        /// `pod sandbox` or `container`.
        kind: &'static str,
        /// The name.
        name: String,
        /// The object that has it.
        id: String,
    },
    /// A request field asks for something berth cannot do.
    #[error("{field}: {reason}")]
    Unsupported {
        /// The request field.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// The object is not in a state that allows the request.
    #[error("{what}")]
    FailedPrecondition {
        /// What is wrong.
        what: String,
    },
    /// A container did not stop.
    #[error("container {id} did not stop within {seconds} s")]
    StopTimeout {
        /// The container.
        id: String,
        /// How long berth waited.
        seconds: u64,
    },
    /// An ExecSync command ran past its timeout and was killed.
    #[error("command in container {id} timed out after {seconds} s")]
    ExecTimeout {
        /// The container.
        id: String,
        /// The timeout.
        seconds: i64,
    },
    /// runc could not start an exec'd command (e.g. no such executable).
    #[error("cannot start the command in container {id}: {message}")]
    ExecStart {
        /// The container.
        id: String,
        /// runc's message.
        message: String,
    },
    /// The OCI spec could not be built from the request.
    #[error(transparent)]
    Spec(#[from] berth_oci::SpecError),
    /// The shim failed (including `runc create`).
    #[error(transparent)]
    Shim(#[from] berth_shim::ShimError),
    /// A runc command failed.
    #[error(transparent)]
    Runc(#[from] RuncError),
    /// Creating, entering or removing namespaces failed.
    #[error(transparent)]
    Namespace(#[from] NsError),
    /// A CNI plugin failed.
    #[error(transparent)]
    Cni(#[from] CniError),
    /// The metadata store failed.
    #[error("metadata store: {0}")]
    Store(#[from] StoreError),
    /// An image operation failed.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// A filesystem operation failed.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What berth was doing, e.g. `measure`.
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The streaming server is not running.
    #[error("the streaming server is not running")]
    StreamingUnavailable,
    /// A streaming URL could not be issued (pending sessions at their limits, no token).
    #[error(transparent)]
    StreamRegister(#[from] berth_stream::RegisterError),
    /// berthd is stopping.
    #[error("berthd is shutting down")]
    ShuttingDown,
    /// A runtime operation's task ended abnormally.
    #[error("{0}")]
    Aborted(String),
    /// A blocking task panicked or was cancelled.
    #[error("internal task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// What is wrong with a request field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldProblem {
    /// Required but absent or empty.
    Empty,
    /// Longer than allowed.
    TooLong {
        /// Length received, in bytes.
        len: usize,
        /// Largest length accepted.
        max: usize,
    },
    /// Contains a character that is not allowed.
    BadCharacter {
        /// The character.
        found: char,
        /// Its byte offset.
        offset: usize,
    },
}

impl fmt::Display for FieldProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldProblem::Empty => f.write_str("must not be empty"),
            FieldProblem::TooLong { len, max } => {
                write!(f, "is {len} bytes long; at most {max} are allowed")
            }
            FieldProblem::BadCharacter { found, offset } => {
                write!(f, "character {found:?} at offset {offset} is not allowed")
            }
        }
    }
}

impl ServiceError {
    /// Maps an I/O error of `action` on `path` (for `map_err`).
    pub fn io(
        action: &'static str,
        path: &std::path::Path,
    ) -> impl FnOnce(std::io::Error) -> ServiceError {
        let path = path.to_owned();
        move |source| ServiceError::Io {
            action,
            path,
            source,
        }
    }

    /// The gRPC code this error is reported with.
    pub fn code(&self) -> Code {
        // A full disk (or quota) anywhere below is the node's resource running out, whatever
        // the operation was; the message names the path.
        if out_of_space(self) {
            return Code::ResourceExhausted;
        }
        match self {
            ServiceError::Unimplemented { .. } => Code::Unimplemented,
            ServiceError::InvalidArgument { .. } => Code::InvalidArgument,
            ServiceError::Store(err) if err.is_not_found() => Code::NotFound,
            ServiceError::Store(err) if err.is_already_exists() => Code::AlreadyExists,
            ServiceError::Store(err) if err.is_ambiguous() => Code::InvalidArgument,
            ServiceError::Image(err) => image_code(err),
            ServiceError::NotFound { .. } => Code::NotFound,
            ServiceError::NameTaken { .. } => Code::AlreadyExists,
            ServiceError::Unsupported { .. } => Code::InvalidArgument,
            ServiceError::Namespace(
                NsError::SysctlNotAllowed { .. } | NsError::InvalidHostname { .. },
            ) => Code::InvalidArgument,
            ServiceError::Namespace(_) | ServiceError::Cni(_) => Code::Internal,
            ServiceError::FailedPrecondition { .. } => Code::FailedPrecondition,
            ServiceError::StopTimeout { .. } | ServiceError::ExecTimeout { .. } => {
                Code::DeadlineExceeded
            }
            ServiceError::Spec(_) => Code::InvalidArgument,
            ServiceError::Runc(RuncError::Task { .. }) => Code::Internal,
            ServiceError::Shim(_) | ServiceError::Runc(_) | ServiceError::ExecStart { .. } => {
                Code::Unknown
            }
            ServiceError::StreamingUnavailable | ServiceError::ShuttingDown => Code::Unavailable,
            ServiceError::StreamRegister(berth_stream::RegisterError::Token(_)) => Code::Internal,
            ServiceError::StreamRegister(_) => Code::ResourceExhausted,
            ServiceError::Aborted(_) => Code::Internal,
            ServiceError::Store(_) | ServiceError::Io { .. } | ServiceError::Task(_) => {
                Code::Internal
            }
        }
    }
}

/// Whether `err` or any error below it is ENOSPC or EDQUOT.
fn out_of_space(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(err);
    while let Some(err) = next {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if matches!(
                io.raw_os_error(),
                Some(code) if code == nix::libc::ENOSPC || code == nix::libc::EDQUOT
            ) {
                return true;
            }
        }
        next = err.source();
    }
    false
}

/// gRPC code of an image failure: the request's fault, the remote content's, the node's.
fn image_code(err: &ImageError) -> Code {
    match err {
        ImageError::Reference(_) | ImageError::Credentials(_) => Code::InvalidArgument,
        ImageError::Unauthorized { .. } => Code::PermissionDenied,
        err @ ImageError::Registry { .. } if err.is_unknown_to_registry() => Code::NotFound,
        ImageError::Registry { .. } => Code::Unavailable,
        ImageError::DigestMismatch { .. } | ImageError::SizeMismatch { .. } => Code::DataLoss,
        ImageError::Digest(_)
        | ImageError::InvalidDocument { .. }
        | ImageError::UnsupportedMediaType { .. }
        | ImageError::NoMatchingPlatform { .. }
        | ImageError::TooLarge { .. }
        | ImageError::LayerCountMismatch { .. }
        | ImageError::Unpack { .. }
        | ImageError::Hosts(_)
        | ImageError::NoEndpoint { .. } => Code::FailedPrecondition,
        ImageError::Stalled { .. } => Code::DeadlineExceeded,
        ImageError::InUse { .. } => Code::FailedPrecondition,
        ImageError::Store(err) if err.is_not_found() => Code::NotFound,
        ImageError::Io { .. }
        | ImageError::TrashOnOtherFilesystem { .. }
        | ImageError::Store(_)
        | ImageError::Task(_) => Code::Internal,
    }
}

/// Longest status message sent: client input is quoted cut to
/// [`QUOTE_MAX`](berth_runtime::QUOTE_MAX) bytes where an error names it, and this bound
/// keeps any message, whatever it quotes, far below what a client accepts in its metadata
/// (16 KiB for Go's and Rust's gRPC).
pub const MAX_STATUS_MESSAGE: usize = 4096;

impl ServiceError {
    /// The message, cut to [`MAX_STATUS_MESSAGE`] bytes: what the client gets and the log
    /// line says.
    pub fn bounded_message(&self) -> String {
        berth_runtime::cut(&self.to_string(), MAX_STATUS_MESSAGE).into_owned()
    }
}

impl From<ServiceError> for Status {
    fn from(err: ServiceError) -> Status {
        Status::new(err.code(), err.bounded_message())
    }
}

/// The runtime core's errors in the server's terms: host errors pass through, the core's
/// own become the variants the CRI expects (NotFound, AlreadyExists, FailedPrecondition,
/// DeadlineExceeded).
impl From<berth_runtime::RuntimeError<ServiceError>> for ServiceError {
    fn from(err: berth_runtime::RuntimeError<ServiceError>) -> Self {
        use berth_runtime::RuntimeError as E;
        match err {
            E::NotFound { kind, id } => ServiceError::NotFound { kind, id },
            E::NameTaken { kind, name, id } => ServiceError::NameTaken { kind, name, id },
            E::StopTimeout { id, seconds } => ServiceError::StopTimeout { id, seconds },
            E::Ambiguous { kind, prefix } => ServiceError::Unsupported {
                field: "id",
                reason: format!("{kind} ID prefix {prefix:?} matches more than one"),
            },
            err @ (E::SandboxNotReady { .. } | E::WrongState { .. } | E::Busy { .. }) => {
                ServiceError::FailedPrecondition {
                    what: err.to_string(),
                }
            }
            E::Store(err) => ServiceError::Store(err),
            E::Host(err) => err,
            err @ E::Aborted { .. } => ServiceError::Aborted(err.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unimplemented_names_the_rpc() {
        let status = Status::from(ServiceError::Unimplemented {
            rpc: "RunPodSandbox",
        });
        assert_eq!(status.code(), Code::Unimplemented);
        assert_eq!(
            status.message(),
            "RunPodSandbox is not implemented by berth yet"
        );
    }

    #[test]
    fn invalid_argument_says_which_field_and_why() {
        let status = Status::from(ServiceError::InvalidArgument {
            field: "container_id",
            problem: FieldProblem::TooLong { len: 300, max: 64 },
        });
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(
            status.message(),
            "invalid container_id: is 300 bytes long; at most 64 are allowed"
        );
    }

    #[test]
    fn long_messages_are_cut() {
        let status = Status::from(ServiceError::FailedPrecondition {
            what: "x".repeat(1 << 20),
        });
        assert_eq!(status.code(), Code::FailedPrecondition);
        assert!(status.message().len() < MAX_STATUS_MESSAGE + 32);
        assert!(
            status.message().ends_with("… (1048576 bytes)"),
            "{}",
            &status.message()[4000..]
        );
    }

    #[test]
    fn a_full_disk_is_resource_exhausted_naming_the_path() {
        let full = ServiceError::Io {
            action: "write",
            path: "/var/lib/berth/x".into(),
            source: std::io::Error::from_raw_os_error(nix::libc::ENOSPC),
        };
        let status = Status::from(full);
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert!(status.message().contains("/var/lib/berth/x"), "{status:?}");
        // Deeper in the chain too: an image error wrapping the I/O error.
        let image = ServiceError::Image(ImageError::Io {
            op: "write layer",
            path: "/var/lib/berth/snapshots/1".into(),
            source: std::io::Error::from_raw_os_error(nix::libc::EDQUOT),
        });
        assert_eq!(image.code(), Code::ResourceExhausted);
        let other = ServiceError::Io {
            action: "write",
            path: "/x".into(),
            source: std::io::Error::from_raw_os_error(nix::libc::EIO),
        };
        assert_eq!(other.code(), Code::Internal);
    }

    #[test]
    fn runc_failures_keep_runcs_message() {
        let status = Status::from(ServiceError::Runc(RuncError::Runc(
            berth_runc::RuncError::Failed {
                command: "start",
                id: "c1".into(),
                message: "first cause; last line".into(),
            },
        )));
        assert_eq!(status.code(), Code::Unknown);
        assert_eq!(status.message(), "runc start c1: first cause; last line");
    }
}
