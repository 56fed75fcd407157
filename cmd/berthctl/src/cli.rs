//! The command line.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// berthd's socket when `--socket` is not given.
pub const DEFAULT_SOCKET: &str = "/run/berth/berth.sock";

/// berthctl: image archives and diagnostics for a running berthd.
#[derive(Debug, Parser)]
#[command(name = "berthctl", version, about)]
pub struct Cli {
    /// berthd's Unix socket.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_SOCKET, global = true)]
    pub socket: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Import or export image archives.
    #[command(subcommand)]
    Images(ImagesCommand),
    /// Show berthd's versions, configuration in effect, runtime handlers, cgroups and
    /// storage use.
    Info {
        /// Print the JSON berthd sends.
        #[arg(long)]
        json: bool,
    },
}

/// `images` subcommands.
#[derive(Debug, Subcommand)]
pub enum ImagesCommand {
    /// Import every image of a `docker save` or OCI image layout archive (tags kept,
    /// digests verified); FILE `-` reads standard input.
    Import {
        /// Pin the images: kubelet's image garbage collection keeps them.
        #[arg(long)]
        pin: bool,
        /// The archive, or `-`.
        #[arg(value_name = "FILE|-")]
        file: PathBuf,
    },
    /// Export images as an OCI image layout archive that `docker load` also reads.
    Export {
        /// Image names (tags, digests) or IDs.
        #[arg(value_name = "REF", required = true)]
        refs: Vec<String>,
        /// Where to write the archive, or `-` for standard output.
        #[arg(short, long, value_name = "FILE|-")]
        output: PathBuf,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_forms_parse() {
        let cli = Cli::try_parse_from(["berthctl", "images", "import", "--pin", "-"]).unwrap();
        assert_eq!(cli.socket, PathBuf::from(DEFAULT_SOCKET));
        assert!(matches!(
            cli.command,
            Command::Images(ImagesCommand::Import { pin: true, ref file }) if file.as_os_str() == "-"
        ));
        let cli = Cli::try_parse_from([
            "berthctl",
            "--socket",
            "/tmp/b.sock",
            "images",
            "export",
            "a:1",
            "b",
            "-o",
            "x.tar",
        ])
        .unwrap();
        assert_eq!(cli.socket, PathBuf::from("/tmp/b.sock"));
        match cli.command {
            Command::Images(ImagesCommand::Export { refs, output }) => {
                assert_eq!(refs, ["a:1", "b"]);
                assert_eq!(output, PathBuf::from("x.tar"));
            }
            other => panic!("{other:?}"),
        }
        let cli = Cli::try_parse_from(["berthctl", "info", "--json"]).unwrap();
        assert!(matches!(cli.command, Command::Info { json: true }));
        // Export needs a name and an output.
        assert!(Cli::try_parse_from(["berthctl", "images", "export", "-o", "x"]).is_err());
        assert!(Cli::try_parse_from(["berthctl", "images", "export", "a"]).is_err());
    }
}
