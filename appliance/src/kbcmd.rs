//! `picket kb import` and `picket kb status`.
//!
//! Why apart from `app`: the knowledge base commands report on data rather than on a scan, with
//! their own JSON shapes (see docs/contract-extensions.md), and their own rule for bad input: a
//! malformed record is reported and skipped (exit 0, listed under `errors`), while a source that
//! cannot be read at all (a missing path, a damaged archive) aborts the import before anything
//! is written (exit 2).

use crate::app::{emit, exit, note, state_dir, AppError, LOCK_WAIT};
use crate::cli::{Cli, Format};
use crate::report::json;
use crate::report::table::clean;
use crate::store::{ImportError, ImportReport, KbMeta, Store};
use serde_json::json;
use std::io::IsTerminal;
use std::path::PathBuf;

pub fn import(cli: &Cli, paths: &[PathBuf]) -> Result<u8, AppError> {
    if cli.format == Format::Sarif {
        return Err(AppError::FormatUnsupported {
            format: "sarif",
            command: "kb import",
        });
    }
    let mut store = Store::open_waiting(&state_dir(cli)?, LOCK_WAIT)?;
    let live = !cli.quiet && std::io::stderr().is_terminal();
    let mut progress = |n: u64| {
        if live {
            eprint!("\rpicket: {n} records read");
        }
    };
    let result = store.kb_import(paths, &mut progress);
    if live {
        eprintln!();
    }
    let report = match result {
        Ok(r) => r,
        Err(ImportError::Source(e)) => return Err(AppError::KbSource(e)),
        Err(ImportError::Store(e)) => return Err(e.into()),
    };
    drop(store);
    for issue in report.errors.iter().take(20) {
        let at = match &issue.entry {
            Some(e) => format!("{}!{e}", issue.path),
            None => issue.path.clone(),
        };
        note(
            cli,
            &format!("skipped a malformed record in {at}: {}", issue.error),
        );
    }
    if report.malformed > 20 {
        note(
            cli,
            &format!("... {} malformed records skipped in all", report.malformed),
        );
    }
    let bytes = match cli.format {
        Format::Table => import_table(&report).into_bytes(),
        _ => json::to_bytes(&report)?,
    };
    emit(cli, &bytes)?;
    Ok(exit::OK)
}

fn import_table(r: &ImportReport) -> String {
    let mut out = String::new();
    for s in &r.sources {
        out.push_str(&format!(
            "{}: {} records, {} added, {} updated, {} unchanged, {} withdrawn, {} malformed\n",
            clean(&s.path),
            s.records,
            s.added,
            s.updated,
            s.unchanged,
            s.withdrawn,
            s.malformed
        ));
    }
    out.push_str(&format!(
        "knowledge base: {} advisories ({} added, {} updated, {} unchanged, {} malformed skipped) in {:.1} s\n",
        r.advisories,
        r.added,
        r.updated,
        r.unchanged,
        r.malformed,
        r.duration_ms as f64 / 1000.0
    ));
    out
}

pub fn status(cli: &Cli) -> Result<u8, AppError> {
    if cli.format == Format::Sarif {
        return Err(AppError::FormatUnsupported {
            format: "sarif",
            command: "kb status",
        });
    }
    let store = Store::open_waiting(&state_dir(cli)?, LOCK_WAIT)?;
    let meta = store.kb_meta()?;
    let disk_bytes = store.kb_disk_bytes()?;
    drop(store);
    let now = time::OffsetDateTime::now_utc();
    let bytes = match cli.format {
        Format::Table => status_table(&meta, now).into_bytes(),
        _ => json::to_bytes(&status_json(&meta, disk_bytes, now))?,
    };
    emit(cli, &bytes)?;
    Ok(exit::OK)
}

/// Whole days from an RFC 3339 time to `now`; `None` if it does not parse.
fn age_days(at: &str, now: time::OffsetDateTime) -> Option<i64> {
    let t = time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339).ok()?;
    Some((now - t).whole_days())
}

fn status_json(meta: &KbMeta, disk_bytes: u64, now: time::OffsetDateTime) -> serde_json::Value {
    let ecosystems: Vec<serde_json::Value> = meta
        .ecosystems
        .iter()
        .map(|(name, m)| {
            json!({
                "ecosystem": name,
                "advisories": m.advisories,
                "newest_modified": m.newest_modified,
                "age_days": age_days(&m.newest_modified, now),
                "imported_at": m.imported_at,
            })
        })
        .collect();
    json!({
        "advisories": meta.advisories,
        "withdrawn": meta.withdrawn,
        "ecosystems": ecosystems,
        "imported_at": if meta.imported_at.is_empty() { serde_json::Value::Null } else { meta.imported_at.clone().into() },
        "disk_bytes": disk_bytes,
    })
}

fn status_table(meta: &KbMeta, now: time::OffsetDateTime) -> String {
    if meta.advisories == 0 && meta.ecosystems.is_empty() {
        return "knowledge base is empty: import OSV advisories with `picket kb import PATH...`\n"
            .to_owned();
    }
    let mut out = format!(
        "{} advisories ({} withdrawn), last changed by an import at {}\n\n",
        meta.advisories,
        meta.withdrawn,
        if meta.imported_at.is_empty() {
            "-"
        } else {
            &meta.imported_at
        }
    );
    let width = meta
        .ecosystems
        .keys()
        .map(|k| k.chars().count())
        .max()
        .unwrap_or(9)
        .max(9);
    let newest_width = meta
        .ecosystems
        .values()
        .map(|m| clean(&m.newest_modified).chars().count())
        .max()
        .unwrap_or(13)
        .max(13);
    out.push_str(&format!(
        "{:<width$}  {:>10}  {:<newest_width$}  {}\n",
        "ECOSYSTEM", "ADVISORIES", "NEWEST RECORD", "AGE"
    ));
    for (name, m) in &meta.ecosystems {
        let age = match age_days(&m.newest_modified, now) {
            Some(d) => format!("{d} days"),
            None => "-".to_owned(),
        };
        out.push_str(&format!(
            "{:<width$}  {:>10}  {:<newest_width$}  {}\n",
            clean(name),
            m.advisories,
            clean(&m.newest_modified),
            age
        ));
    }
    out
}
