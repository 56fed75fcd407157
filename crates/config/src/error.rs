//! Configuration errors. Each names where the value came from (a file, the embedded default
//! or the command line) and, where it can, the dotted key at fault.

use std::fmt;
use std::path::PathBuf;

/// Where a configuration value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The embedded default (`config/berth.toml`).
    Embedded,
    /// A file: the one given with `--config`, or a drop-in of the drop-in directory.
    File(PathBuf),
    /// A command-line flag.
    Flags,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Embedded => f.write_str("embedded default config"),
            Source::File(path) => write!(f, "config file {}", path.display()),
            Source::Flags => f.write_str("command line"),
        }
    }
}

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file could not be read.
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        /// The file given with `--config`, or a drop-in.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The drop-in directory exists but cannot be listed.
    #[error("cannot read config drop-in directory {} (config_dir): {source}", path.display())]
    ReadDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The text is not valid TOML.
    #[error("{origin}: {source}")]
    Syntax {
        /// Where the text came from.
        origin: Source,
        /// toml's error, with line and column.
        source: Box<toml::de::Error>,
    },
    /// A key is unknown or its value has the wrong type.
    #[error("{origin}: key `{key}`: {reason}")]
    Invalid {
        /// The layer that set it.
        origin: Source,
        /// Dotted path of the key (`runtime.cgroup_driver`); `.` for the top level.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A value has the right type but cannot be used.
    #[error("{origin}: key `{key}`: {reason}")]
    Value {
        /// The layer that set it last.
        origin: Source,
        /// Dotted path of the key.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
}
