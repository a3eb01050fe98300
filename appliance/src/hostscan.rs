//! `picket scan host`: SSH inventory of a fleet, matched against the knowledge base.
//!
//! Why this shape: the network part (log in, run the fixed command list, parse) is
//! `picket_netscan::host`, and the decision part (which advisories apply) is
//! `picket_kb::distro`; this module is the policy between them that a user sees:
//!
//! * **Host keys.** A host's key is checked against the one pinned in the store (or given with
//!   `--host-key`) before any credential is sent. An unknown key is refused unless
//!   `--trust-on-first-use`; a changed key is always refused. A key is pinned only once the scan
//!   of that host succeeded, so a failed first contact leaves nothing behind.
//! * **A fleet.** Targets run concurrently up to `--parallel` (default 32), each bounded by
//!   `--host-timeout`; a failing host becomes a `failed` entry with its error and never stops the
//!   others. The exit status is 3 only when every host failed.
//! * **Nothing half-written.** A host's inventory enters the report only when every command it
//!   needs succeeded and parsed; the report is saved once, after matching.

use crate::app::{emit, exit, note, state_dir, AppError, LOCK_WAIT, SAVE_LOCK_WAIT};
use crate::cli::{Cli, Format, HostArgs};
use crate::report::{self, json, sarif};
use crate::store::{Store, StoredScan};
use picket_kb::distro::{self, HostMatches};
use picket_kb::record::KbAdvisory;
use picket_model::{
    Asset, HostFinding, HostInfo, HostReport, HostScanStats, HostScanStatus, Package, ScanKind,
    ScanMeta, Severity, PICKET_VERSION,
};
use picket_netscan::host::{self, HostKeyCheck, Inventory, SshAuth, SshOptions, SshTarget, Sudo};
use picket_netscan::NetscanError;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Most targets one command accepts (an inventory file is user input too).
pub const MAX_TARGETS: usize = 100_000;
/// Longest inventory file read.
const MAX_INVENTORY_BYTES: u64 = 16 * 1024 * 1024;

/// The targets of the command line, with `@FILE` expanded (one target per line, `#` comments,
/// blank lines ignored), in order, without repeats.
pub fn expand_targets(args: &[String]) -> Result<Vec<SshTarget>, AppError> {
    let mut out: Vec<SshTarget> = Vec::new();
    let mut push = |t: SshTarget| {
        if !out.iter().any(|o| o.original == t.original) {
            out.push(t);
        }
    };
    for a in args {
        if let Some(path) = a.strip_prefix('@') {
            let bad = |reason: String| AppError::BadInventory {
                path: path.into(),
                reason,
            };
            let meta = std::fs::metadata(path).map_err(|e| bad(e.to_string()))?;
            if meta.len() > MAX_INVENTORY_BYTES {
                return Err(bad(format!("larger than {MAX_INVENTORY_BYTES} bytes")));
            }
            let bytes = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
            let text = String::from_utf8(bytes).map_err(|_| bad("is not UTF-8 text".into()))?;
            for (n, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let t = SshTarget::parse(line).map_err(|e| bad(format!("line {}: {e}", n + 1)))?;
                push(t);
            }
        } else {
            push(SshTarget::parse(a)?);
        }
    }
    Ok(out)
}

/// The credentials of the command line; secrets come from the environment only.
fn credentials(args: &HostArgs) -> Result<(SshAuth, Option<Sudo>), AppError> {
    let from_env = |var: &str| {
        std::env::var(var).map_err(|_| AppError::MissingSecret {
            var: var.to_owned(),
        })
    };
    let password = args.password_env.as_deref().map(from_env).transpose()?;
    let auth = match &args.identity {
        Some(path) => {
            // Read errors are reported here, before any connection, naming the file.
            if let Err(e) = std::fs::metadata(path) {
                return Err(AppError::BadIdentity {
                    path: path.clone(),
                    reason: e.to_string(),
                });
            }
            let passphrase = args.passphrase_env.as_deref().map(from_env).transpose()?;
            SshAuth::Key {
                path: path.clone(),
                passphrase,
            }
        }
        None => match &password {
            Some(p) => SshAuth::Password(p.clone()),
            None => return Err(AppError::NoCredentials),
        },
    };
    let sudo = args.sudo.then(|| match &password {
        Some(p) => Sudo::Password(p.clone()),
        None => Sudo::NoPassword,
    });
    Ok((auth, sudo))
}

pub(crate) fn host_port(t: &SshTarget) -> String {
    if t.host.contains(':') {
        format!("[{}]:{}", t.host, t.port)
    } else {
        format!("{}:{}", t.host, t.port)
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

pub fn scan_host(cli: &Cli, args: &HostArgs) -> Result<u8, AppError> {
    let targets = expand_targets(&args.targets)?;
    if targets.is_empty() {
        return Err(AppError::NoTargets);
    }
    if targets.len() > MAX_TARGETS {
        return Err(AppError::TooManyHosts {
            count: targets.len(),
            limit: MAX_TARGETS,
        });
    }
    if args.host_key.is_some() && targets.len() != 1 {
        return Err(AppError::HostKeyNeedsOneTarget);
    }
    let (auth, sudo) = credentials(args)?;
    let state_dir = state_dir(cli)?;

    // The pinned keys, read before connecting; the store is released during the scan.
    let mut checks = Vec::with_capacity(targets.len());
    {
        let store = Store::open_waiting(&state_dir, LOCK_WAIT)?;
        for t in &targets {
            let check = match (&args.host_key, store.host_key(&host_port(t))?) {
                (Some(k), _) => HostKeyCheck::Known(k.clone()),
                (None, Some(k)) => HostKeyCheck::Known(k),
                (None, None) if args.trust_on_first_use => HostKeyCheck::TrustOnFirstUse,
                (None, None) => HostKeyCheck::Refuse,
            };
            checks.push(check);
        }
    }

    let started_at = report::now_utc();
    let id = report::scan_id(started_at);
    let clock = Instant::now();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(AppError::Runtime)?;
    let base = SshOptions {
        auth,
        sudo,
        host_key: HostKeyCheck::Refuse,
        connect_timeout: Duration::from_secs(args.connect_timeout),
        host_timeout: Duration::from_secs(args.host_timeout),
        max_output_bytes: host::DEFAULT_MAX_OUTPUT_BYTES,
        // Ad hoc use: the operator named the hosts; the daemon sets its scope here.
        allowed_nets: Vec::new(),
    };
    let results = runtime.block_on(run_fleet(
        &targets,
        checks,
        args.host_key.is_some(),
        base,
        usize::from(args.parallel),
    ));
    drop(runtime);

    // Match and save under one hold of the store.
    let mut store = Store::open_waiting(&state_dir, SAVE_LOCK_WAIT)?;
    let (report, tofu) = build_host_report(
        &store,
        &targets,
        results,
        (id.clone(), started_at, clock),
        &mut |m| note(cli, m),
    )?;
    let ok = report.stats.succeeded;
    let bytes = render_host(cli, &report)?;
    let status = fail_on(cli, &report.findings);
    let all_failed = ok == 0;
    // Keys first: a scan that succeeded has proven nothing else about the host, but the key it
    // accepted is the one it will be checked against next time.
    for (hp, key) in &tofu {
        store.set_host_key(hp, key)?;
        note(cli, &format!("pinned the host key of {hp}"));
    }
    store.save(&StoredScan::Host(report))?;
    note(cli, &format!("saved scan {id}"));
    if let Err(e) = store.compact_if_bloated() {
        tracing::warn!("store compaction failed: {e}");
    }
    drop(store);
    emit(cli, &bytes)?;
    if all_failed {
        return Err(AppError::AllHostsFailed {
            count: targets.len(),
        });
    }
    Ok(status)
}

/// Inventories every target, at most `parallel` at a time. The result for each target is in the
/// targets' order: the inventory and whether its key was accepted on first use, or the error.
pub(crate) async fn run_fleet(
    targets: &[SshTarget],
    checks: Vec<HostKeyCheck>,
    pinned_here: bool,
    base: SshOptions,
    parallel: usize,
) -> Vec<Result<(Inventory, bool), NetscanError>> {
    let gate = Arc::new(tokio::sync::Semaphore::new(parallel.max(1)));
    let mut set = tokio::task::JoinSet::new();
    for (i, (t, check)) in targets.iter().cloned().zip(checks).enumerate() {
        let gate = gate.clone();
        let mut opts = base.clone();
        // Keys accepted on first use, or pinned on the command line, are stored when the
        // host's scan succeeds.
        let first_contact = check == HostKeyCheck::TrustOnFirstUse || pinned_here;
        opts.host_key = check;
        set.spawn(async move {
            let _permit = gate.acquire_owned().await;
            let r = host::inventory(&t, &opts).await;
            (i, r.map(|inv| (inv, first_contact)))
        });
    }
    let mut out: Vec<Option<Result<(Inventory, bool), NetscanError>>> =
        (0..targets.len()).map(|_| None).collect();
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok((i, r)) => {
                if let Some(slot) = out.get_mut(i) {
                    *slot = Some(r);
                }
            }
            // A panicking host task is a bug; its slot stays empty and is reported below.
            Err(e) => tracing::error!("a host scan task failed: {e}"),
        }
    }
    out.into_iter()
        .zip(targets)
        .map(|(r, t)| {
            r.unwrap_or_else(|| {
                Err(NetscanError::Ssh {
                    host: t.host.clone(),
                    port: t.port,
                    reason: "the scan task ended abnormally".into(),
                })
            })
        })
        .collect()
}

/// One host's report entry and findings.
fn match_inventory(
    notes: &mut dyn FnMut(&str),
    store: &Store,
    known_ecosystems: &[String],
    (advisories, cache): (
        &mut HashMap<String, Option<KbAdvisory>>,
        &mut distro::MatchCache,
    ),
    target: &SshTarget,
    inv: Inventory,
) -> Result<(HostInfo, Vec<HostFinding>), AppError> {
    let mut findings = inv.config_findings.clone();
    let mut packages = inv.packages;
    match distro::release_of(&inv.os, known_ecosystems) {
        Err(e) => notes(&format!("{}: {e}; packages not matched", target.original)),
        Ok(release) => {
            for p in &mut packages {
                p.ecosystem.clone_from(&release.primary);
            }
            let m = distro::match_host_cached(
                &release,
                &inv.kernel,
                &packages,
                &mut |eco, name| store.kb_candidates(eco, name),
                cache,
            )?;
            if !m.unevaluated.is_empty() {
                notes(&format!(
                    "{}: {} advisories could not be evaluated (first: {} for {}: {})",
                    target.original,
                    m.unevaluated.len(),
                    m.unevaluated[0].advisory,
                    packages[m.unevaluated[0].package].name,
                    m.unevaluated[0].error
                ));
            }
            findings.extend(package_findings(
                store,
                advisories,
                &inv.address,
                &target.host,
                &packages,
                &m,
            )?);
        }
    }
    findings.sort_by(|a, b| b.severity.cmp(&a.severity).then_with(|| a.id.cmp(&b.id)));
    let info = HostInfo {
        target: target.original.clone(),
        address: inv.address,
        status: HostScanStatus::Ok,
        error: None,
        os: Some(inv.os),
        kernel: Some(inv.kernel),
        package_manager: Some(inv.package_manager),
        packages,
        listening: inv.listening,
        host_key: Some(inv.host_key_fingerprint),
        duration_ms: inv.duration_ms,
    };
    Ok((info, findings))
}

fn package_findings(
    store: &Store,
    advisories: &mut HashMap<String, Option<KbAdvisory>>,
    address: &str,
    hostname: &str,
    packages: &[Package],
    m: &HostMatches,
) -> Result<Vec<HostFinding>, AppError> {
    let asset = Asset {
        address: Some(address.to_owned()),
        hostname: (hostname != address).then(|| hostname.to_owned()),
        ..Asset::default()
    };
    let mut out = Vec::new();
    for hit in &m.hits {
        let Some(pkg) = packages.get(hit.package) else {
            continue;
        };
        if !advisories.contains_key(&hit.advisory) {
            let adv = store.kb_advisory(&hit.advisory)?;
            advisories.insert(hit.advisory.clone(), adv);
        }
        let adv = advisories.get(&hit.advisory).and_then(Option::as_ref);
        let (severity, source, title, aliases) = match adv {
            Some(a) => (
                a.severity,
                a.severity_source.as_str(),
                a.title.as_str(),
                a.aliases.clone(),
            ),
            None => (Severity::Medium, "unknown", "", Vec::new()),
        };
        let mut cve: Vec<String> = std::iter::once(&hit.advisory)
            .chain(&aliases)
            .filter(|a| a.starts_with("CVE-"))
            .cloned()
            .collect();
        cve.dedup();
        let (src, src_ver) = &hit.looked_up;
        let fix_text = match &hit.fixed {
            Some(f) => format!("fixed in {f}"),
            None => "no fixed version is known".to_owned(),
        };
        let from = if src != &pkg.name || src_ver != &pkg.version {
            format!(" (compared as {src} {src_ver})")
        } else {
            String::new()
        };
        out.push(HostFinding {
            id: format!("host.vuln.{}:{}:{address}", hit.advisory, pkg.name),
            title: if title.is_empty() {
                format!("{} in {src}", hit.advisory)
            } else {
                format!("{}: {title}", hit.advisory)
            },
            severity,
            cwe: Vec::new(),
            cve,
            asset: asset.clone(),
            evidence: format!(
                "{} {} ({}) is installed{from}; {} affects it in {}; {fix_text}; severity from {source}",
                pkg.name, pkg.version, pkg.arch, hit.advisory, hit.ecosystem
            ),
            remediation: match &hit.fixed {
                Some(f) => format!("Upgrade {src} to {f} or later ({} and the other packages built from it).", pkg.name),
                None => format!(
                    "No fix is published for {src} in {}; mitigate per the advisory or remove {} if unused, and rescan when a fix is out.",
                    hit.ecosystem, pkg.name
                ),
            },
            package: Some(pkg.name.clone()),
            installed_version: Some(pkg.version.clone()),
            fixed_version: hit.fixed.clone(),
            advisory: Some(hit.advisory.clone()),
            aliases,
        });
    }
    if let (Some(r), Some(n)) = (m.kernel.running, m.kernel.newer_installed) {
        if let (Some(running), Some(newer)) = (packages.get(r), packages.get(n)) {
            out.push(HostFinding {
                id: format!("host.kernel.reboot-required:{address}"),
                title: "A newer kernel is installed but not running".to_owned(),
                severity: Severity::Low,
                cwe: Vec::new(),
                cve: Vec::new(),
                asset,
                evidence: format!(
                    "running {} {}; installed {} {}",
                    running.name, running.version, newer.name, newer.version
                ),
                remediation: "Reboot into the newest installed kernel: fixes in it are not active until then.".to_owned(),
                package: Some(running.name.clone()),
                installed_version: Some(running.version.clone()),
                fixed_version: Some(newer.version.clone()),
                advisory: None,
                aliases: Vec::new(),
            });
        }
    }
    Ok(out)
}

fn fail_on(cli: &Cli, findings: &[HostFinding]) -> u8 {
    match cli.fail_on {
        Some(t) if findings.iter().any(|f| f.severity >= t) => exit::FINDINGS,
        _ => exit::OK,
    }
}

/// The report in the chosen format.
pub fn render_host(cli: &Cli, r: &HostReport) -> Result<Vec<u8>, AppError> {
    Ok(match cli.format {
        Format::Json => json::host_report_bytes(r)?,
        Format::Table => crate::report::table::host_report(r).into_bytes(),
        Format::Sarif => {
            let plain: Vec<picket_model::Finding> =
                r.findings.iter().map(HostFinding::to_finding).collect();
            json::to_bytes(&sarif::findings_log(&r.scan.id, "host", &plain))?
        }
    })
}

/// `--fail-on` for a stored host report (`scans show`).
pub fn stored_status(cli: &Cli, r: &HostReport) -> u8 {
    fail_on(cli, &r.findings)
}

/// Host-key pins learned on first use: (`HOST:PORT`, key), stored once the scan is kept.
pub type NewPins = Vec<(String, String)>;

/// Matches the inventories of a finished fleet run against the knowledge base and builds the
/// report (no printing, no saving): the CLI and the daemon share it. `run`: scan id, start time
/// and the clock started with the fleet.
pub fn build_host_report(
    store: &Store,
    targets: &[SshTarget],
    results: Vec<Result<(Inventory, bool), NetscanError>>,
    run: (String, time::OffsetDateTime, Instant),
    notes: &mut dyn FnMut(&str),
) -> Result<(HostReport, NewPins), AppError> {
    let (id, started_at, clock) = run;
    let kb_meta = store.kb_meta()?;
    let known_ecosystems = store.kb_ecosystems()?;
    if kb_meta.advisories == 0 {
        notes("warning: the knowledge base is empty, so no vulnerabilities can be reported; import advisories with `picket kb import`");
    }
    let mut hosts = Vec::with_capacity(targets.len());
    let mut findings = Vec::new();
    let mut matching = Duration::ZERO;
    let mut tofu: Vec<(String, String)> = Vec::new();
    let mut advisories: HashMap<String, Option<KbAdvisory>> = HashMap::new();
    let mut cache = distro::MatchCache::default();
    for (t, result) in targets.iter().zip(results) {
        match result {
            Err(e) => {
                notes(&format!("{}: {e}", t.original));
                hosts.push(HostInfo {
                    target: t.original.clone(),
                    address: t.host.clone(),
                    status: HostScanStatus::Failed,
                    error: Some(e.to_string()),
                    os: None,
                    kernel: None,
                    package_manager: None,
                    packages: Vec::new(),
                    listening: Vec::new(),
                    host_key: None,
                    duration_ms: 0,
                });
            }
            Ok((inv, first_contact)) => {
                if first_contact {
                    tofu.push((host_port(t), inv.host_key.clone()));
                }
                let t0 = Instant::now();
                let (info, host_findings) = match_inventory(
                    notes,
                    store,
                    &known_ecosystems,
                    (&mut advisories, &mut cache),
                    t,
                    inv,
                )?;
                matching += t0.elapsed();
                hosts.push(info);
                findings.extend(host_findings);
            }
        }
    }
    let finished_at = report::now_utc();
    let ok = hosts
        .iter()
        .filter(|h| h.status == HostScanStatus::Ok)
        .count() as u64;
    let stats = HostScanStats {
        targets: hosts.len() as u64,
        succeeded: ok,
        failed: hosts.len() as u64 - ok,
        packages: hosts.iter().map(|h| h.packages.len() as u64).sum(),
        kb_advisories: kb_meta.advisories,
        matching_ms: ms(matching),
        duration_ms: ms(clock.elapsed()),
    };
    let report = HostReport {
        picket_version: PICKET_VERSION.to_owned(),
        scan: ScanMeta {
            id,
            kind: ScanKind::Host,
            started_at: report::rfc3339(started_at),
            finished_at: report::rfc3339(finished_at),
            targets: targets.iter().map(|t| t.original.clone()).collect(),
        },
        host: (hosts.len() == 1).then(|| hosts[0].clone()),
        hosts,
        findings,
        stats,
    };
    Ok((report, tofu))
}
