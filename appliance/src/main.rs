//! The `picket` binary: parses the command line, sets up logging, runs the command and turns its
//! result into the contract's exit status (see `picket --help`).
#![forbid(unsafe_code)]

use clap::Parser;
use picket_appliance::{app, cli::Cli};
use std::process::ExitCode;

fn main() -> ExitCode {
    // clap prints usage errors itself and exits 2, as the contract wants.
    let cli = Cli::parse();
    // The daemon sets up logging itself, with the level of its config file.
    if !matches!(cli.command, picket_appliance::cli::Command::Daemon(_)) {
        picket_appliance::logging::init(cli.verbose, cli.quiet, None);
    }
    match app::run(&cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("picket: error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
