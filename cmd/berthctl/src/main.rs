//! berthctl: talks to a running berthd over its socket (berth's own Admin service, next to
//! the CRI): imports and exports image archives, and shows what berthd runs with.
//!
//! ```text
//! berthctl [--socket PATH] images import [--pin] FILE|-
//! berthctl [--socket PATH] images export REF... -o FILE|-
//! berthctl [--socket PATH] info [--json]
//! ```

#![deny(unsafe_code)]

mod cli;
mod client;
mod error;
mod images;
mod info;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command, ImagesCommand};
use crate::error::CtlError;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("berthctl: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("berthctl: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), CtlError> {
    let mut admin = client::connect(&cli.socket).await?;
    match cli.command {
        Command::Images(ImagesCommand::Import { pin, file }) => {
            images::import(&mut admin, &file, pin).await
        }
        Command::Images(ImagesCommand::Export { refs, output }) => {
            images::export(&mut admin, refs, &output).await
        }
        Command::Info { json } => info::info(&mut admin, json).await,
    }
}
