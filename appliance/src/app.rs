//! What each command does, and which exit code each failure gets.
//!
//! Why a module apart from `main`: the exit-code policy of the contract (2 for what the user gave,
//! 3 for what went wrong while working) is decided by matching typed errors here, in one place,
//! and tested like any other code.

use crate::cli::{Cli, Command, Format, KbCommand, NetArgs, ScanCommand, ScansCommand};
use crate::diff::diff_net;
use crate::fsutil;
use crate::progress::BarProgress;
use crate::report::{self, json, sarif, table};
use crate::store::{Resolved, Store, StoreError, StoredScan};
use picket_model::{NetReport, ScanKind, ScanMeta, PICKET_VERSION};
use picket_netscan::{NetscanError, Progress};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// How long a scan that finished waits for another picket process to release the store before
/// giving up (its report is still written to the output).
pub(crate) const SAVE_LOCK_WAIT: Duration = Duration::from_secs(30);
/// How long other commands wait for the store: long enough to ride out another process's save
/// or listing, short enough that a store held by a daemon fails promptly.
pub(crate) const LOCK_WAIT: Duration = Duration::from_secs(3);

/// Exit status of the contract.
pub mod exit {
    pub const OK: u8 = 0;
    pub const FINDINGS: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const RUNTIME: u8 = 3;
}

/// Errors of the commands; [`AppError::exit_code`] maps each to the contract's exit status.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AppError {
    #[error(transparent)]
    Netscan(#[from] NetscanError),

    #[error(transparent)]
    Store(#[from] StoreError),

    #[error(transparent)]
    Webscan(#[from] picket_webscan::WebscanError),

    /// The user named a scan the store does not have.
    #[error("no stored scan matches {reference:?} (see `picket scans list`)")]
    UnknownScan { reference: String },

    /// The user gave an id prefix that matches several scans.
    #[error("{reference:?} matches several scans ({}); give more of the id", candidates.join(", "))]
    AmbiguousScan {
        reference: String,
        candidates: Vec<String>,
    },

    /// A format that this command cannot produce.
    #[error("--format {format} is not available for `{command}` (use json or table)")]
    FormatUnsupported {
        format: &'static str,
        command: &'static str,
    },

    /// A command that needs net scans was given another kind.
    #[error("scan {id} is a {kind} scan; `{command}` compares net scans")]
    WrongKind {
        id: String,
        kind: &'static str,
        command: &'static str,
    },

    /// `--output` names a file in a directory that does not exist, or is a directory.
    #[error("--output {}: {reason}", path.display())]
    BadOutput { path: PathBuf, reason: String },

    /// No state directory could be derived from the environment.
    #[error("cannot choose a state directory: {reason}; give --state-dir")]
    NoStateDir { reason: String },

    /// Writing the report failed.
    #[error("cannot write the report to {target}: {source}")]
    Write {
        target: String,
        source: std::io::Error,
    },

    /// Encoding the report failed (a bug: the model always encodes).
    #[error("cannot encode the report: {0}")]
    Encode(#[from] serde_json::Error),

    /// The async runtime could not start.
    #[error("cannot start the scanner's runtime: {0}")]
    Runtime(std::io::Error),

    /// An `@FILE` of host-scan targets could not be read or holds a bad line.
    #[error("inventory file {path}: {reason}")]
    BadInventory { path: String, reason: String },

    /// An environment variable named by `--password-env` or `--passphrase-env` is not set.
    #[error("environment variable {var} (named by a --*-env option) is not set")]
    MissingSecret { var: String },

    /// `--identity` names a file that cannot be read.
    #[error("--identity {}: {reason}", path.display())]
    BadIdentity { path: PathBuf, reason: String },

    /// `scan host` without `--identity` or `--password-env`.
    #[error("give --identity FILE or --password-env VAR: picket needs a way to log in")]
    NoCredentials,

    /// An inventory file with no targets in it.
    #[error("no targets: the inventory holds none")]
    NoTargets,

    /// More targets than one command accepts.
    #[error("{count} targets, more than the limit of {limit} per command")]
    TooManyHosts { count: usize, limit: usize },

    /// `--host-key` pins one host's key; with several targets it would pin them all.
    #[error("--host-key pins one host's key: give exactly one target with it")]
    HostKeyNeedsOneTarget,

    /// Every host of a host scan failed (the report lists why for each).
    #[error("all {count} host(s) failed; see the report's hosts[].error")]
    AllHostsFailed { count: usize },

    /// `kb import`: a source could not be read at all; nothing was imported.
    #[error("{0}; nothing was imported")]
    KbSource(picket_kb::source::SourceError),

    /// Some stored records could not be read (the others were shown).
    #[error("{count} stored scan(s) could not be read; first: {first}")]
    UnreadableRecords { count: usize, first: StoreError },

    /// The daemon's configuration file (or a platform-sent fragment) is invalid.
    #[error("configuration {}: {reason}", path.display())]
    Config { path: PathBuf, reason: String },

    /// A secret at rest could not be sealed or opened.
    #[error("{what}: {reason}")]
    Secret { what: &'static str, reason: String },

    /// The platform could not be reached or answered wrongly (`url` names the call).
    #[error("platform {url}: {reason}")]
    Platform { url: String, reason: String },

    /// The platform refused the enrollment (its error code and detail).
    #[error("enrollment refused by the platform: {code}: {detail}")]
    EnrollRefused { code: String, detail: String },

    /// A command that needs an enrolled appliance, on one that is not.
    #[error("this appliance is not enrolled (run `picket enroll --platform URL --code CODE`)")]
    NotEnrolled,

    /// Generating keys, the CSR or reading certificates failed.
    #[error("certificate: {reason}")]
    Certificate { reason: String },

    /// The running daemon could not be asked (its control socket).
    #[error("daemon control socket {}: {reason}", path.display())]
    Control { path: PathBuf, reason: String },

    /// `picket status --check`: the named step failed.
    #[error("check failed at step {step}: {reason}")]
    CheckFailed { step: &'static str, reason: String },
}

impl AppError {
    /// The contract's exit status for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            AppError::Netscan(e) => match e {
                NetscanError::BadTarget { .. }
                | NetscanError::TargetFile { .. }
                | NetscanError::BadPorts { .. }
                | NetscanError::Resolve { .. }
                | NetscanError::TooManyTargets { .. }
                | NetscanError::BadSshTarget { .. }
                | NetscanError::Config(_) => exit::USAGE,
                _ => exit::RUNTIME,
            },
            AppError::Webscan(e) if e.is_input_error() => exit::USAGE,
            AppError::Webscan(_) => exit::RUNTIME,
            AppError::UnknownScan { .. }
            | AppError::AmbiguousScan { .. }
            | AppError::FormatUnsupported { .. }
            | AppError::WrongKind { .. }
            | AppError::BadOutput { .. }
            | AppError::NoStateDir { .. }
            | AppError::BadInventory { .. }
            | AppError::MissingSecret { .. }
            | AppError::BadIdentity { .. }
            | AppError::NoCredentials
            | AppError::NoTargets
            | AppError::TooManyHosts { .. }
            | AppError::HostKeyNeedsOneTarget
            | AppError::KbSource(_)
            | AppError::Config { .. }
            | AppError::EnrollRefused { .. }
            | AppError::NotEnrolled => exit::USAGE,
            AppError::Store(_)
            | AppError::Write { .. }
            | AppError::Encode(_)
            | AppError::Runtime(_)
            | AppError::UnreadableRecords { .. }
            | AppError::AllHostsFailed { .. }
            | AppError::Secret { .. }
            | AppError::Platform { .. }
            | AppError::Certificate { .. }
            | AppError::Control { .. }
            | AppError::CheckFailed { .. } => exit::RUNTIME,
        }
    }
}

/// Runs the parsed command; returns the exit status on success (0, or 1 for `--fail-on`).
pub fn run(cli: &Cli) -> Result<u8, AppError> {
    if let Some(out) = &cli.output {
        check_output(out)?;
    }
    match &cli.command {
        Command::Scan(ScanCommand::Net(args)) => scan_net(cli, args),
        Command::Scans(ScansCommand::List) => scans_list(cli),
        Command::Scans(ScansCommand::Show { id }) => scans_show(cli, id),
        Command::Scans(ScansCommand::Diff { old, new }) => scans_diff(cli, old, new),
        Command::Scan(ScanCommand::Host(args)) => crate::hostscan::scan_host(cli, args),
        Command::Scan(ScanCommand::Web(args)) => crate::webscan::scan_web(cli, args),
        Command::Kb(KbCommand::Import { paths }) => crate::kbcmd::import(cli, paths),
        Command::Kb(KbCommand::Status) => crate::kbcmd::status(cli),
        Command::Console(args) => crate::console::run(cli, args),
        Command::Daemon(args) => crate::daemon::daemon_command(
            &state_dir(cli)?,
            args.config.as_deref(),
            cli.verbose,
            cli.quiet,
        ),
        Command::Enroll(args) => crate::status::enroll_command(cli, args),
        Command::Status(args) => crate::status::status_command(cli, args),
    }
}

/// Rejects an `--output` that cannot be written before any work is done, so a long scan does not
/// end in an error about its output.
fn check_output(path: &Path) -> Result<(), AppError> {
    let bad = |reason: &str| AppError::BadOutput {
        path: path.to_path_buf(),
        reason: reason.to_owned(),
    };
    if path.file_name().is_none() || path.is_dir() {
        return Err(bad("is a directory, not a file"));
    }
    if !fsutil::parent_dir(path).is_dir() {
        return Err(bad("its directory does not exist"));
    }
    Ok(())
}

/// `--state-dir`, or the contract's default.
pub fn state_dir(cli: &Cli) -> Result<PathBuf, AppError> {
    if let Some(d) = &cli.state_dir {
        return Ok(d.clone());
    }
    default_state_dir(
        running_as_root(),
        std::env::var_os("XDG_STATE_HOME"),
        std::env::var_os("HOME"),
    )
}

fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    // /proc/self belongs to the process's effective user; no unsafe geteuid call needed.
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// The default state directory: `/var/lib/picket` for root, else `$XDG_STATE_HOME/picket`, else
/// `~/.local/state/picket`. Relative values of the variables are ignored, as the XDG spec says.
pub fn default_state_dir(
    root: bool,
    xdg_state_home: Option<std::ffi::OsString>,
    home: Option<std::ffi::OsString>,
) -> Result<PathBuf, AppError> {
    if root {
        return Ok(PathBuf::from("/var/lib/picket"));
    }
    if let Some(x) = xdg_state_home
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
    {
        return Ok(x.join("picket"));
    }
    if let Some(h) = home.map(PathBuf::from).filter(|p| p.is_absolute()) {
        return Ok(h.join(".local/state/picket"));
    }
    Err(AppError::NoStateDir {
        reason: "neither XDG_STATE_HOME nor HOME is set to an absolute path".into(),
    })
}

/// Writes the report to `--output` (atomically) or standard output.
pub(crate) fn emit(cli: &Cli, bytes: &[u8]) -> Result<(), AppError> {
    match &cli.output {
        Some(path) => fsutil::write_atomic(path, bytes, 0o600).map_err(|source| AppError::Write {
            target: path.display().to_string(),
            source,
        }),
        None => {
            let mut out = std::io::stdout().lock();
            match out.write_all(bytes).and_then(|()| out.flush()) {
                // A reader that went away (`picket ... | head`) is not a failure of ours.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                r => r.map_err(|source| AppError::Write {
                    target: "standard output".into(),
                    source,
                }),
            }
        }
    }
}

fn render_net(cli: &Cli, report: &NetReport) -> Result<Vec<u8>, AppError> {
    Ok(match cli.format {
        Format::Json => json::to_bytes(&json::net_report_value(report)?)?,
        Format::Table => table::net_report(report).into_bytes(),
        Format::Sarif => json::to_bytes(&sarif::net_report(report))?,
    })
}

fn fail_on_status(cli: &Cli, findings: &[picket_model::Finding]) -> u8 {
    match cli.fail_on {
        Some(threshold) if findings.iter().any(|f| f.severity >= threshold) => exit::FINDINGS,
        _ => exit::OK,
    }
}

/// Prints a message for people on standard error, unless `-q`.
pub(crate) fn note(cli: &Cli, msg: &str) {
    if !cli.quiet {
        eprintln!("picket: {msg}");
    }
}

fn scan_net(cli: &Cli, args: &NetArgs) -> Result<u8, AppError> {
    let state_dir = state_dir(cli)?;
    // Fail before sending a packet if the store cannot take the result; released during the
    // scan so that `picket scans list` works meanwhile.
    drop(Store::open_waiting(&state_dir, LOCK_WAIT)?);

    let cfg = args.scan_config();
    let bar = (!cli.quiet && std::io::stderr().is_terminal()).then(BarProgress::new);
    let progress: Arc<dyn Progress> = match &bar {
        Some(b) => Arc::new(b.clone()),
        None => Arc::new(picket_netscan::scan::NoProgress),
    };
    let runtime = scan_runtime()?;
    let outcome = runtime.block_on(net_scan_report(&cfg, progress));
    drop(runtime);
    if let Some(b) = &bar {
        b.finish();
    }
    let (report, warnings) = outcome?;
    let mut seen = std::collections::HashSet::new();
    for w in &warnings {
        if seen.insert(w.as_str()) {
            note(cli, &format!("warning: {w}"));
        }
    }
    let id = report.scan.id.clone();
    let bytes = render_net(cli, &report)?;
    let status = fail_on_status(cli, &report.findings);

    save_then_emit(cli, &state_dir, &id, StoredScan::Net(report), &bytes)?;
    Ok(status)
}

/// The runtime of a scan run from the command line: two workers, the machine's budget.
pub(crate) fn scan_runtime() -> Result<tokio::runtime::Runtime, AppError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(AppError::Runtime)
}

/// Saves a scan's report in the store, then writes its rendering `bytes`. When the save fails
/// the report is still worth having: it is written all the same, then the save's error returned.
pub(crate) fn save_then_emit(
    cli: &Cli,
    state_dir: &Path,
    id: &str,
    stored: StoredScan,
    bytes: &[u8],
) -> Result<(), AppError> {
    let saved = Store::open_waiting(state_dir, SAVE_LOCK_WAIT).and_then(|mut store| {
        store.save(&stored)?;
        Ok(store)
    });
    match saved {
        Ok(mut store) => {
            note(cli, &format!("saved scan {id}"));
            if let Err(e) = store.compact_if_bloated() {
                tracing::warn!("store compaction failed: {e}");
            }
        }
        Err(e) => {
            emit(cli, bytes)?;
            return Err(e.into());
        }
    }
    emit(cli, bytes)
}

/// Runs a net scan and builds its report, printing and saving nothing (the daemon's entry point;
/// `scan net` wraps it). Returns the report and the scanner's warnings.
pub async fn net_scan_report(
    cfg: &picket_netscan::NetScanConfig,
    progress: Arc<dyn Progress>,
) -> Result<(NetReport, Vec<String>), AppError> {
    let started = report::now_utc();
    let id = report::scan_id(started);
    let outcome = picket_netscan::run(cfg, progress).await?;
    let finished = report::now_utc();
    let findings = crate::findings::net_findings(&outcome.hosts, finished);
    let report = NetReport {
        picket_version: PICKET_VERSION.to_owned(),
        scan: ScanMeta {
            id,
            kind: ScanKind::Net,
            started_at: report::rfc3339(started),
            finished_at: report::rfc3339(finished),
            targets: cfg.targets.clone(),
        },
        hosts: outcome.hosts,
        findings,
        stats: outcome.stats,
    };
    Ok((report, outcome.warnings))
}

fn resolve(store: &Store, reference: &str) -> Result<String, AppError> {
    match store.resolve(reference)? {
        Resolved::Found(id) => Ok(id),
        Resolved::NotFound => Err(AppError::UnknownScan {
            reference: reference.to_owned(),
        }),
        Resolved::Ambiguous(candidates) => Err(AppError::AmbiguousScan {
            reference: reference.to_owned(),
            candidates,
        }),
    }
}

fn load(store: &Store, reference: &str) -> Result<StoredScan, AppError> {
    let id = resolve(store, reference)?;
    store.get(&id)?.ok_or(AppError::UnknownScan {
        reference: reference.to_owned(),
    })
}

fn scans_list(cli: &Cli) -> Result<u8, AppError> {
    if cli.format == Format::Sarif {
        return Err(AppError::FormatUnsupported {
            format: "sarif",
            command: "scans list",
        });
    }
    let store = Store::open_waiting(&state_dir(cli)?, LOCK_WAIT)?;
    let entries = store.list()?;
    drop(store);
    let bytes = match cli.format {
        Format::Table => table::scan_list(&entries).into_bytes(),
        _ => {
            let scans: Vec<_> = entries
                .iter()
                .filter_map(|e| e.summary.as_ref().ok())
                .collect();
            let errors: Vec<_> = entries
                .iter()
                .filter_map(|e| {
                    e.summary
                        .as_ref()
                        .err()
                        .map(|err| serde_json::json!({"id": e.id, "error": err.to_string()}))
                })
                .collect();
            json::to_bytes(&serde_json::json!({ "scans": scans, "errors": errors }))?
        }
    };
    emit(cli, &bytes)?;
    let count = entries.iter().filter(|e| e.summary.is_err()).count();
    if let Some(first) = entries.into_iter().find_map(|e| e.summary.err()) {
        return Err(AppError::UnreadableRecords { count, first });
    }
    Ok(exit::OK)
}

fn scans_show(cli: &Cli, reference: &str) -> Result<u8, AppError> {
    let store = Store::open_waiting(&state_dir(cli)?, LOCK_WAIT)?;
    let scan = load(&store, reference)?;
    drop(store);
    match scan {
        StoredScan::Net(report) => {
            emit(cli, &render_net(cli, &report)?)?;
            Ok(fail_on_status(cli, &report.findings))
        }
        StoredScan::Host(report) => {
            emit(cli, &crate::hostscan::render_host(cli, &report)?)?;
            Ok(crate::hostscan::stored_status(cli, &report))
        }
        StoredScan::Web(report) => {
            emit(cli, &crate::webscan::render_web(cli, &report)?)?;
            Ok(crate::webscan::status(cli, &report))
        }
    }
}

fn scans_diff(cli: &Cli, old: &str, new: &str) -> Result<u8, AppError> {
    if cli.format == Format::Sarif {
        return Err(AppError::FormatUnsupported {
            format: "sarif",
            command: "scans diff",
        });
    }
    let store = Store::open_waiting(&state_dir(cli)?, LOCK_WAIT)?;
    let (old, new) = (load(&store, old)?, load(&store, new)?);
    drop(store);
    let (old, new) = match (&old, &new) {
        (StoredScan::Net(o), StoredScan::Net(n)) => (o, n),
        (other, StoredScan::Net(_)) | (_, other) => {
            return Err(AppError::WrongKind {
                id: other.id().to_owned(),
                kind: other.kind().as_str(),
                command: "scans diff",
            })
        }
    };
    let d = diff_net(old, new);
    let bytes = match cli.format {
        Format::Table => table::net_diff(&d).into_bytes(),
        _ => json::to_bytes(&d)?,
    };
    emit(cli, &bytes)?;
    Ok(exit::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_errors_exit_2_and_runtime_errors_exit_3() {
        let bad_target = AppError::Netscan(NetscanError::BadTarget {
            target: "10.0.0.300".into(),
            reason: "octet out of range".into(),
        });
        assert_eq!(bad_target.exit_code(), 2);
        assert_eq!(
            AppError::Netscan(NetscanError::Config("x".into())).exit_code(),
            2
        );
        let io = AppError::Netscan(NetscanError::Io {
            op: "connect",
            peer: "127.0.0.1:22".into(),
            source: std::io::Error::other("boom"),
        });
        assert_eq!(io.exit_code(), 3);
        let locked = AppError::Store(StoreError::Locked {
            path: PathBuf::from("/x"),
        });
        assert_eq!(locked.exit_code(), 3);
        assert_eq!(
            AppError::UnknownScan {
                reference: "nope".into()
            }
            .exit_code(),
            2
        );
    }

    #[test]
    fn default_state_dir_follows_the_contract() {
        let d = |root, xdg: Option<&str>, home: Option<&str>| {
            default_state_dir(root, xdg.map(Into::into), home.map(Into::into)).ok()
        };
        assert_eq!(
            d(true, Some("/x"), Some("/h")),
            Some("/var/lib/picket".into())
        );
        assert_eq!(d(false, Some("/x"), Some("/h")), Some("/x/picket".into()));
        assert_eq!(
            d(false, Some("rel"), Some("/h")),
            Some("/h/.local/state/picket".into())
        );
        assert_eq!(d(false, None, None), None);
    }
}
