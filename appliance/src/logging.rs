//! Logging: journald under systemd, standard error otherwise.
//!
//! Why a module: the CLI commands and the daemon share the policy (systemd sets `JOURNAL_STREAM`
//! when standard error is the journal; `PICKET_LOG` overrides the level with a tracing filter),
//! but the daemon takes its default level from its config file, read after the arguments.

use std::io::IsTerminal;
use tracing_subscriber::{layer::SubscriberExt, util::SubscriberInitExt, EnvFilter};

/// Installs the global subscriber once (later calls do nothing). `default_level`: used when
/// neither `-v`/`-q` nor `PICKET_LOG` says otherwise.
pub fn init(verbose: u8, quiet: bool, default_level: Option<&str>) {
    let level = match (quiet, verbose, default_level) {
        (true, _, _) => "error",
        (false, 0, Some(l)) => l,
        (false, 0, None) => "warn",
        (false, 1, _) => "info",
        (false, 2, _) => "debug",
        (false, _, _) => "trace",
    };
    let filter = EnvFilter::try_from_env("PICKET_LOG").unwrap_or_else(|_| EnvFilter::new(level));
    if std::env::var_os("JOURNAL_STREAM").is_some() {
        if let Ok(journald) = tracing_journald::layer() {
            let _ = tracing_subscriber::registry()
                .with(filter)
                .with(journald.with_syslog_identifier("picket".into()))
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
