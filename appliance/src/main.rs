//! The `picket` binary: parses the command line, sets up logging, runs the command and turns its
//! result into the contract's exit status (see `picket --help`).
#![forbid(unsafe_code)]

use clap::Parser;
use picket_appliance::{app, cli::Cli};
use std::io::IsTerminal;
use std::process::ExitCode;
use tracing_subscriber::{layer::SubscriberExt, util::SubscriberInitExt, EnvFilter};

fn main() -> ExitCode {
    // clap prints usage errors itself and exits 2, as the contract wants.
    let cli = Cli::parse();
    init_logging(cli.verbose, cli.quiet);
    match app::run(&cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("picket: error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// Diagnostics go to standard error, or to the journal when systemd started us (it sets
/// `JOURNAL_STREAM` when standard error is the journal). `PICKET_LOG` overrides the level with an
/// `EnvFilter` directive.
fn init_logging(verbose: u8, quiet: bool) {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        (false, _) => "trace",
    };
    let filter = EnvFilter::try_from_env("PICKET_LOG").unwrap_or_else(|_| EnvFilter::new(level));
    if std::env::var_os("JOURNAL_STREAM").is_some() {
        if let Ok(journald) = tracing_journald::layer() {
            let _ = tracing_subscriber::registry()
                .with(filter)
                .with(journald)
                .try_init();
            return;
        }
    }
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(filter)
        .with_target(false)
        .try_init();
}
