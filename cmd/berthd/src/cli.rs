//! Command line: `berthd [--config FILE] [--config-dir DIR] [--listen SOCKET] [--root DIR]
//! [--state DIR] [--log-level LEVEL]`. Flags override the drop-ins, which override the config
//! file, which overrides the embedded default.

use std::path::PathBuf;

use berth_config::Overrides;
use clap::Parser;

/// berth: a Kubernetes CRI container runtime.
#[derive(Debug, Parser)]
#[command(name = "berthd", version, about)]
pub struct Cli {
    /// TOML configuration file; keys it sets override the embedded default.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Drop-in directory: its *.toml files, in lexical order, override the config file
    /// [default: config_dir of the config file, else /etc/berth/berth.d].
    #[arg(long, value_name = "DIR")]
    pub config_dir: Option<PathBuf>,
    /// Unix socket to serve the CRI on [default: /run/berth/berth.sock].
    #[arg(long, value_name = "SOCKET")]
    pub listen: Option<PathBuf>,
    /// Directory for persistent data [default: /var/lib/berth].
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Directory for volatile state [default: /run/berth].
    #[arg(long, value_name = "DIR")]
    pub state: Option<PathBuf>,
    /// Log filter: error, warn, info, debug, trace or a tracing directive [default: info].
    #[arg(long, value_name = "LEVEL")]
    pub log_level: Option<String>,
}

impl Cli {
    /// The flags that override configuration values.
    pub fn overrides(&self) -> Overrides {
        Overrides {
            root: self.root.clone(),
            state: self.state.clone(),
            listen: self.listen.clone(),
            log_level: self.log_level.clone(),
            config_dir: self.config_dir.clone(),
        }
    }
}
