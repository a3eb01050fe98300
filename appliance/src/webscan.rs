//! `picket scan web`: the web scanner's command.
//!
//! Why this module: `picket_webscan` is a library that never reads the environment or the store;
//! this is where secrets come from environment variables (never from the command line), the
//! options become its configuration, and the report is rendered, saved to the history and
//! judged against `--fail-on`, like the other scans.

use crate::app::{exit, note, state_dir, AppError, LOCK_WAIT};
use crate::cli::{Cli, Format, WebArgs};
use crate::progress::BarProgress;
use crate::report::{self, json, sarif, table};
use crate::store::{Store, StoredScan};
use picket_model::{ScanKind, ScanMeta, WebReport, PICKET_VERSION};
use picket_webscan::{LoginConfig, WebScanConfig, WebscanError};
use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

fn secret(var: &str, option: &'static str) -> Result<String, AppError> {
    std::env::var(var).map_err(|_| {
        AppError::Webscan(WebscanError::MissingSecret {
            var: var.to_owned(),
            option,
        })
    })
}

/// The scanner's configuration for these arguments (secrets read from the environment).
pub fn config(args: &WebArgs) -> Result<WebScanConfig, AppError> {
    let mut headers = Vec::new();
    for h in &args.header {
        headers.push(picket_webscan::parse_header(h)?);
    }
    for h in &args.header_env {
        let (name, var) = picket_webscan::parse_header(h)?;
        let value = secret(&var, "--header-env")?;
        headers.push(picket_webscan::parse_header(&format!("{name}: {value}"))?);
    }
    let mut cookies = Vec::new();
    for c in &args.cookie {
        cookies.push(picket_webscan::parse_cookie(c)?);
    }
    for c in &args.cookie_env {
        let (name, var) = picket_webscan::parse_cookie(c)?;
        let value = secret(&var, "--cookie-env")?;
        cookies.push(picket_webscan::parse_cookie(&format!("{name}={value}"))?);
    }
    let login = match (&args.login_url, &args.username, &args.password_env) {
        (Some(url), Some(user), Some(var)) => Some(LoginConfig {
            url: url.clone(),
            username: user.clone(),
            password: secret(var, "--password-env")?,
        }),
        _ => None,
    };
    let mut cfg = WebScanConfig {
        target: args.url.clone(),
        login,
        headers,
        cookies,
        openapi: args.openapi.clone(),
        include: args.include.clone(),
        exclude: args.exclude.clone(),
        max_rps: args.max_rps,
        max_requests: args.max_requests,
        max_pages: args.max_pages as usize,
        max_depth: args.max_depth,
        concurrency: usize::from(args.concurrency),
        request_timeout: Duration::from_secs(args.timeout),
        scan_timeout: Duration::from_secs(args.scan_timeout),
        callback_listen: args.callback_listen,
        callback_url: args.callback_url.clone(),
        insecure_tls: args.insecure_tls,
        passive_only: args.passive_only,
        time_delay: Duration::from_millis(args.time_delay),
        ..WebScanConfig::default()
    };
    if !args.inject_header.is_empty() {
        cfg.inject_headers = args.inject_header.clone();
    }
    Ok(cfg)
}

/// The report in the chosen format.
pub fn render_web(cli: &Cli, r: &WebReport) -> Result<Vec<u8>, AppError> {
    Ok(match cli.format {
        Format::Json => json::to_bytes(&json::web_report_value(r)?)?,
        Format::Table => table::web_report(r).into_bytes(),
        Format::Sarif => json::to_bytes(&sarif::web_report(r))?,
    })
}

/// `--fail-on` for a web report.
pub fn status(cli: &Cli, r: &WebReport) -> u8 {
    match cli.fail_on {
        Some(t) if r.findings.iter().any(|f| f.severity >= t) => exit::FINDINGS,
        _ => exit::OK,
    }
}

/// Runs `picket scan web`.
pub fn scan_web(cli: &Cli, args: &WebArgs) -> Result<u8, AppError> {
    let cfg = config(args)?;
    let state_dir = state_dir(cli)?;
    // Fail before sending a request if the store cannot take the result.
    drop(Store::open_waiting(&state_dir, LOCK_WAIT)?);
    let started = report::now_utc();
    let id = report::scan_id(started);
    let runtime = crate::app::scan_runtime()?;
    let bar = (!cli.quiet && std::io::stderr().is_terminal()).then(BarProgress::new);
    let progress: Arc<dyn picket_netscan::Progress> = match &bar {
        Some(b) => Arc::new(b.clone()),
        None => Arc::new(picket_netscan::scan::NoProgress),
    };
    let outcome = runtime.block_on(picket_webscan::run_with_progress(&cfg, progress));
    if let Some(b) = &bar {
        b.finish();
    }
    // Tasks still waiting on a hostile server are abandoned, not awaited.
    runtime.shutdown_timeout(Duration::from_millis(200));
    let outcome = outcome?;
    for w in &outcome.warnings {
        note(cli, &format!("warning: {w}"));
    }
    let finished = report::now_utc();
    let report = WebReport {
        picket_version: PICKET_VERSION.to_owned(),
        scan: ScanMeta {
            id: id.clone(),
            kind: ScanKind::Web,
            started_at: report::rfc3339(started),
            finished_at: report::rfc3339(finished),
            targets: vec![args.url.clone()],
        },
        web: outcome.site,
        findings: outcome.findings,
        stats: outcome.stats,
        warnings: outcome.warnings,
    };
    let bytes = render_web(cli, &report)?;
    let code = status(cli, &report);
    crate::app::save_then_emit(cli, &state_dir, &id, StoredScan::Web(report), &bytes)?;
    Ok(code)
}
