//! Why a berthctl command failed.

use std::path::PathBuf;

/// A failed command; printed as `berthctl: <message>`, exit status 1.
#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    /// The socket does not answer.
    #[error("cannot connect to berthd at {}: {source} (is berthd running? --socket)", socket.display())]
    Connect {
        /// The socket.
        socket: PathBuf,
        /// The transport's error.
        source: tonic::transport::Error,
    },
    /// berthd answered with an error.
    #[error("{rpc}: {} ({:?})", status.message(), status.code())]
    Rpc {
        /// The RPC.
        rpc: &'static str,
        /// berthd's status.
        status: tonic::Status,
    },
    /// The archive could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file (`-`: standard input).
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The archive could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file (`-`: standard output).
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// An archive is not written to a terminal.
    #[error(
        "refusing to write an archive to a terminal: give -o FILE or redirect standard output"
    )]
    Terminal,
    /// berthd's Info is not the JSON object it should be.
    #[error("berthd's info is not a JSON object: {0}")]
    BadInfo(String),
    /// The configuration has no TOML form (it always has; kept typed all the same).
    #[error("cannot show the configuration as TOML: {0}")]
    Toml(#[from] toml::ser::Error),
}
