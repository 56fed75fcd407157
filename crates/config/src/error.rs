//! Configuration errors. Each names the file (or the embedded default) and, where it can,
//! the dotted key at fault.

use std::fmt;
use std::path::PathBuf;

/// Where a configuration value came from: a file, or the embedded default when `None`.
struct Origin<'a>(&'a Option<PathBuf>);

impl fmt::Display for Origin<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(path) => write!(f, "config file {}", path.display()),
            None => f.write_str("embedded default config"),
        }
    }
}

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        /// The file given with `--config`.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The text is not valid TOML.
    #[error("{}: {source}", Origin(origin))]
    Syntax {
        /// The file, or `None` for the embedded default.
        origin: Option<PathBuf>,
        /// toml's error, with line and column.
        source: Box<toml::de::Error>,
    },
    /// A key is unknown or its value has the wrong type.
    #[error("{}: key `{key}`: {reason}", Origin(origin))]
    Invalid {
        /// The file, or `None` for the embedded default.
        origin: Option<PathBuf>,
        /// Dotted path of the key (`runtime.cgroup_driver`); `.` for the top level.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A value has the right type but cannot be used.
    #[error("{}: key `{key}`: {reason}", Origin(origin))]
    Value {
        /// The file, or `None` when the value came from the embedded default or a flag.
        origin: Option<PathBuf>,
        /// Dotted path of the key.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
}
