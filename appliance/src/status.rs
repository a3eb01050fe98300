//! `picket status` and `picket status --check`.
//!
//! Why: the appliance is managed from the cloud, so when the cloud does not see it the person at
//! the box needs one command that says what is wrong. `status` shows enrollment, platform, last
//! contact, outbox and jobs; `--check` tests the path to the platform hop by hop — DNS, TCP, proxy,
//! TLS, API — and names the first that fails (exit 3).

use crate::app::AppError;
use crate::config::Config;
use crate::enroll::Enrolled;
use crate::settings::ApplianceSettings;
use crate::sync::ProxySpec;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// What `picket status` shows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusReport {
    pub enrolled: bool,
    pub appliance_id: Option<String>,
    pub platform_url: Option<String>,
    pub certificate_not_after: Option<String>,
    /// Whether a daemon holds the store (the report then comes from it).
    pub daemon_running: bool,
    /// RFC 3339 of the last successful call to the platform.
    pub last_contact: Option<String>,
    pub last_error: Option<String>,
    pub outbox_chunks: u64,
    pub outbox_bytes: u64,
    pub dropped_chunks: u64,
    pub dropped_findings: u64,
    pub running_jobs: Vec<String>,
    pub jobs: Vec<JobLine>,
    /// Where the key-encryption key comes from, and what it protects against.
    pub secrets: String,
    pub warnings: Vec<String>,
}

/// One job as `status` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobLine {
    pub id: String,
    pub kind: String,
    pub state: String,
    pub reason: Option<String>,
    pub scan_id: Option<String>,
}

/// One hop of `status --check`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckStep {
    /// `dns`, `tcp`, `proxy`, `tls`, `api`.
    pub step: String,
    pub ok: bool,
    pub detail: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckReport {
    pub steps: Vec<CheckStep>,
    /// The first failing step, if any.
    pub failed: Option<String>,
}

/// Deadline of each step of the check.
const STEP_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest HTTP answer head read by the proxy and API steps.
const MAX_HEAD: usize = 16 * 1024;

/// What `--check` tests: the platform, the proxy, and the TLS configuration to use.
#[derive(Debug)]
pub struct CheckInput {
    pub platform_url: String,
    pub proxy: Option<ProxySpec>,
    pub tls: rustls::ClientConfig,
    pub enrolled: bool,
}

impl CheckInput {
    /// From the enrolled identity (pinned CA, client certificate) or, before enrollment, the
    /// configured platform and its enrollment trust.
    pub fn from_link(
        enrolled: Option<Arc<Enrolled>>,
        cfg: &Config,
        settings: ApplianceSettings,
    ) -> Result<CheckInput, AppError> {
        let proxy = crate::enroll::effective_proxy(cfg, &settings)?;
        match enrolled {
            Some(e) => Ok(CheckInput {
                platform_url: e.identity.platform_url.clone(),
                proxy,
                tls: e.tls()?,
                enrolled: true,
            }),
            None => {
                let url = cfg
                    .platform
                    .url
                    .clone()
                    .or(settings.platform_url.clone())
                    .ok_or(AppError::NotEnrolled)?;
                let ca = match (
                    &cfg.platform.ca_fingerprint,
                    &settings.platform_ca_fingerprint,
                    &cfg.platform.ca_file,
                ) {
                    (Some(fp), _, _) | (None, Some(fp), _) => {
                        crate::enroll::CaTrust::Fingerprint(fp.clone())
                    }
                    (None, None, Some(f)) => crate::enroll::CaTrust::CaFile(f.clone()),
                    (None, None, None) => crate::enroll::CaTrust::SystemRoots,
                };
                let trust = crate::enroll::enrollment_trust(&ca, cfg)?;
                Ok(CheckInput {
                    platform_url: url,
                    proxy,
                    tls: crate::tls::enrollment_config(&trust)?,
                    enrolled: false,
                })
            }
        }
    }
}

fn step(report: &mut CheckReport, name: &str, r: Result<String, String>) -> bool {
    let ok = r.is_ok();
    let detail = match r {
        Ok(d) | Err(d) => d,
    };
    report.steps.push(CheckStep {
        step: name.to_owned(),
        ok,
        detail,
    });
    if !ok && report.failed.is_none() {
        report.failed = Some(name.to_owned());
    }
    ok
}

fn host_port(url: &url::Url) -> Result<(String, u16), String> {
    let host = url
        .host_str()
        .ok_or_else(|| format!("{url}: no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = url
        .port_or_known_default()
        .ok_or_else(|| format!("{url}: no port"))?;
    Ok((host, port))
}

async fn timed<T>(
    what: &str,
    f: impl std::future::Future<Output = Result<T, String>>,
) -> Result<T, String> {
    match tokio::time::timeout(STEP_TIMEOUT, f).await {
        Ok(r) => r,
        Err(_) => Err(format!(
            "{what}: no answer within {} s",
            STEP_TIMEOUT.as_secs()
        )),
    }
}

/// Reads an HTTP answer head (to the blank line), bounded; returns the status code and the
/// status line.
async fn read_head<S: tokio::io::AsyncRead + Unpin>(s: &mut S) -> Result<(u16, String), String> {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::with_capacity(1024);
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if buf.len() >= MAX_HEAD {
            return Err("answer head too long".into());
        }
        let n = s.read(&mut byte).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("connection closed before an answer".into());
        }
        buf.push(byte[0]);
    }
    let line = buf
        .split(|b| *b == b'\r')
        .next()
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .unwrap_or_default();
    let code = line
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or_else(|| format!("not an HTTP answer: {line:?}"))?;
    Ok((code, line))
}

fn basic(user: &str, pass: &str) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let input = format!("{user}:{pass}").into_bytes();
    let mut out = String::new();
    for c in input.chunks(3) {
        let b = [
            c.first().copied().unwrap_or(0),
            c.get(1).copied().unwrap_or(0),
            c.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= c.len() {
                out.push(char::from(T[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// DNS, TCP, proxy, TLS, API, in order; stops at the first failure, which it names.
pub async fn run_check(input: CheckInput) -> CheckReport {
    use tokio::io::AsyncWriteExt;
    let mut r = CheckReport::default();
    let platform = match url::Url::parse(&input.platform_url)
        .map_err(|e| e.to_string())
        .and_then(|u| host_port(&u).map(|hp| (u, hp)))
    {
        Ok(p) => p,
        Err(e) => {
            step(
                &mut r,
                "dns",
                Err(format!("platform URL {}: {e}", input.platform_url)),
            );
            return r;
        }
    };
    let (_, (phost, pport)) = platform;
    let proxy = match &input.proxy {
        Some(p) => match url::Url::parse(&p.url)
            .map_err(|e| e.to_string())
            .and_then(|u| host_port(&u))
        {
            Ok(hp) => Some((hp, p)),
            Err(e) => {
                step(&mut r, "dns", Err(format!("proxy URL {}: {e}", p.url)));
                return r;
            }
        },
        None => None,
    };
    // 1. DNS: the first hop's name (the proxy resolves the platform's name itself).
    let (dhost, dport) = match &proxy {
        Some(((h, p), _)) => (h.clone(), *p),
        None => (phost.clone(), pport),
    };
    let hop = if proxy.is_some() { "proxy" } else { "platform" };
    let addrs = timed("dns", async {
        tokio::net::lookup_host((dhost.as_str(), dport))
            .await
            .map(|a| a.collect::<Vec<_>>())
            .map_err(|e| format!("{hop} {dhost}: {e}"))
    })
    .await;
    let addrs = match addrs {
        Ok(a) if !a.is_empty() => {
            step(
                &mut r,
                "dns",
                Ok(format!(
                    "{hop} {dhost} -> {}",
                    a.iter()
                        .map(|a| a.ip().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            );
            a
        }
        Ok(_) => {
            step(&mut r, "dns", Err(format!("{hop} {dhost}: no address")));
            return r;
        }
        Err(e) => {
            step(&mut r, "dns", Err(e));
            return r;
        }
    };
    // 2. TCP to the first hop.
    let mut tcp = None;
    let mut last = String::new();
    for a in addrs.iter().take(4) {
        match tokio::time::timeout(STEP_TIMEOUT, tokio::net::TcpStream::connect(a)).await {
            Ok(Ok(s)) => {
                tcp = Some((s, *a));
                break;
            }
            Ok(Err(e)) => last = format!("{hop} {a}: {e}"),
            Err(_) => last = format!("{hop} {a}: no answer within {} s", STEP_TIMEOUT.as_secs()),
        }
    }
    let Some((mut stream, addr)) = tcp else {
        // With a proxy configured, a proxy that does not answer is the proxy step's failure.
        step(
            &mut r,
            if proxy.is_some() { "proxy" } else { "tcp" },
            Err(last),
        );
        return r;
    };
    step(&mut r, "tcp", Ok(format!("connected to {hop} {addr}")));
    // 3. Proxy: CONNECT with Basic auth.
    match &proxy {
        Some((_, p)) => {
            let target = if phost.contains(':') {
                format!("[{phost}]:{pport}")
            } else {
                format!("{phost}:{pport}")
            };
            let mut req = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
            if let Some(u) = &p.username {
                let pw = p.password.as_ref().map_or("", |s| s.expose());
                req.push_str(&format!("Proxy-Authorization: Basic {}\r\n", basic(u, pw)));
            }
            req.push_str("\r\n");
            let res = timed("proxy", async {
                stream
                    .write_all(req.as_bytes())
                    .await
                    .map_err(|e| e.to_string())?;
                read_head(&mut stream).await
            })
            .await;
            match res {
                Ok((200, line)) => {
                    step(&mut r, "proxy", Ok(format!("CONNECT {target}: {line}")));
                }
                Ok((407, line)) => {
                    step(
                        &mut r,
                        "proxy",
                        Err(format!("proxy refused the credentials: {line}")),
                    );
                    return r;
                }
                Ok((_, line)) => {
                    step(&mut r, "proxy", Err(format!("CONNECT {target}: {line}")));
                    return r;
                }
                Err(e) => {
                    step(&mut r, "proxy", Err(e));
                    return r;
                }
            }
        }
        None => {
            step(
                &mut r,
                "proxy",
                Ok("none configured (direct connection)".into()),
            );
        }
    }
    // 4. TLS.
    let Ok(name) = rustls_pki_types::ServerName::try_from(phost.clone()) else {
        step(
            &mut r,
            "tls",
            Err(format!("{phost}: not a valid server name")),
        );
        return r;
    };
    let connector = tokio_rustls::TlsConnector::from(Arc::new(input.tls));
    let tls = timed("tls", async {
        connector
            .connect(name, stream)
            .await
            .map_err(|e| crate::sync::chain(&e))
    })
    .await;
    let mut tls = match tls {
        Ok(t) => {
            let what = if input.enrolled {
                "pinned platform CA, client certificate"
            } else {
                "enrollment trust"
            };
            step(
                &mut r,
                "tls",
                Ok(format!("handshake with {phost} verified ({what})")),
            );
            t
        }
        Err(e) => {
            step(&mut r, "tls", Err(format!("{phost}: {e}")));
            return r;
        }
    };
    // 5. API.
    if !input.enrolled {
        step(
            &mut r,
            "api",
            Err("not enrolled: run `picket enroll --platform URL --code CODE`".into()),
        );
        return r;
    }
    let path = format!("{}/appliance/poll?wait=0", picket_model::api::API_PREFIX);
    let host_hdr = if phost.contains(':') {
        format!("[{phost}]:{pport}")
    } else {
        format!("{phost}:{pport}")
    };
    let req = format!("GET {path} HTTP/1.1\r\nHost: {host_hdr}\r\nUser-Agent: picket-status\r\nConnection: close\r\n\r\n");
    let res = timed("api", async {
        tls.write_all(req.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        read_head(&mut tls).await
    })
    .await;
    match res {
        Ok((200, line)) => step(&mut r, "api", Ok(format!("GET {path}: {line}"))),
        Ok((code, line)) if code == 401 || code == 403 => step(
            &mut r,
            "api",
            Err(format!(
                "GET {path}: {line} (certificate refused: expired or revoked? re-enroll)"
            )),
        ),
        Ok((_, line)) => step(&mut r, "api", Err(format!("GET {path}: {line}"))),
        Err(e) => step(&mut r, "api", Err(format!("GET {path}: {e}"))),
    };
    r
}

/// The report of a store that no daemon holds.
pub fn offline_report(
    store: &crate::store::Store,
    state_dir: &std::path::Path,
) -> Result<StatusReport, AppError> {
    let kek = crate::settings::kek_for(store, state_dir)?;
    let identity = crate::enroll::identity(store)?;
    let outbox = crate::outbox::Outbox::open(store, u64::MAX)?;
    let mut warnings = Vec::new();
    if kek.source().is_generated() {
        warnings.push(format!("secrets at rest: {}", kek.source().describe()));
    }
    Ok(StatusReport {
        enrolled: identity.is_some(),
        appliance_id: identity.as_ref().map(|i| i.appliance_id.clone()),
        platform_url: identity.as_ref().map(|i| i.platform_url.clone()),
        certificate_not_after: identity.as_ref().map(|i| i.not_after.clone()),
        daemon_running: false,
        last_contact: None,
        last_error: None,
        outbox_chunks: outbox.stats.chunks,
        outbox_bytes: outbox.stats.bytes,
        dropped_chunks: outbox.stats.dropped_chunks,
        dropped_findings: outbox.stats.dropped_findings,
        running_jobs: Vec::new(),
        jobs: crate::daemon::recent_jobs(store)?,
        secrets: kek.source().describe(),
        warnings,
    })
}

/// The status as the daemon that holds the store reports it.
pub fn daemon_report(state_dir: &std::path::Path) -> Result<StatusReport, AppError> {
    use crate::control::{Request, Response};
    match crate::control::request(state_dir, &Request::Status)? {
        Response::Status(s) => Ok(*s),
        other => Err(crate::control::unexpected(state_dir, &other)),
    }
}

/// The check as the daemon that holds the store runs it.
pub fn daemon_check(state_dir: &std::path::Path) -> Result<CheckReport, AppError> {
    use crate::control::{Request, Response};
    match crate::control::request(state_dir, &Request::Check)? {
        Response::Check(c) => Ok(c),
        other => Err(crate::control::unexpected(state_dir, &other)),
    }
}

/// What to check, from the store's identity and settings. Takes the store so that it is closed
/// before the check runs: the check takes up to a minute and nothing else may wait on the lock.
pub fn check_input(
    store: crate::store::Store,
    state_dir: &std::path::Path,
    cfg: &Config,
) -> Result<CheckInput, AppError> {
    let kek = crate::settings::kek_for(&store, state_dir)?;
    let enrolled = crate::enroll::load(&store, &kek)?.map(Arc::new);
    let settings = crate::settings::load_from(&store, state_dir)?;
    drop(store);
    CheckInput::from_link(enrolled, cfg, settings)
}

/// Human-readable status.
pub fn render_status(s: &StatusReport) -> String {
    use std::fmt::Write as _;
    let mut o = String::new();
    let or = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    let _ = writeln!(
        o,
        "enrolled:          {}",
        if s.enrolled { "yes" } else { "no" }
    );
    let _ = writeln!(o, "appliance id:      {}", or(&s.appliance_id));
    let _ = writeln!(o, "platform:          {}", or(&s.platform_url));
    let _ = writeln!(o, "certificate until: {}", or(&s.certificate_not_after));
    let _ = writeln!(
        o,
        "daemon:            {}",
        if s.daemon_running {
            "running"
        } else {
            "not running"
        }
    );
    let _ = writeln!(o, "last contact:      {}", or(&s.last_contact));
    let _ = writeln!(o, "last error:        {}", or(&s.last_error));
    let _ = writeln!(
        o,
        "outbox:            {} chunk(s), {} bytes; dropped {} chunk(s), {} finding(s)",
        s.outbox_chunks, s.outbox_bytes, s.dropped_chunks, s.dropped_findings
    );
    let _ = writeln!(
        o,
        "running jobs:      {}",
        if s.running_jobs.is_empty() {
            "-".into()
        } else {
            s.running_jobs.join(", ")
        }
    );
    let _ = writeln!(o, "secrets at rest:   {}", s.secrets);
    for j in &s.jobs {
        let _ = writeln!(
            o,
            "  job {} {} {} {} {}",
            j.id,
            j.kind,
            j.state,
            j.scan_id.as_deref().unwrap_or("-"),
            j.reason.as_deref().unwrap_or("")
        );
    }
    for w in &s.warnings {
        let _ = writeln!(o, "warning: {w}");
    }
    o
}

/// Human-readable check.
pub fn render_check(c: &CheckReport) -> String {
    use std::fmt::Write as _;
    let mut o = String::new();
    for s in &c.steps {
        let _ = writeln!(
            o,
            "{:<6} {}  {}",
            s.step,
            if s.ok { "ok  " } else { "FAIL" },
            s.detail
        );
    }
    match &c.failed {
        Some(f) => {
            let _ = writeln!(o, "failed at step: {f}");
        }
        None => {
            let _ = writeln!(o, "all steps passed");
        }
    }
    o
}

fn load_config(path: Option<&std::path::Path>) -> Result<Config, AppError> {
    match path {
        Some(p) => Config::load(p, true),
        None => Config::load(std::path::Path::new(crate::config::DEFAULT_CONFIG), false),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, AppError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(AppError::Runtime)
}

/// `picket enroll`.
pub fn enroll_command(
    cli: &crate::cli::Cli,
    args: &crate::cli::EnrollArgs,
) -> Result<u8, AppError> {
    let cfg = load_config(args.config.as_deref())?;
    let ca = match (
        &args.ca_fingerprint,
        &args.ca_file,
        &cfg.platform.ca_fingerprint,
        &cfg.platform.ca_file,
    ) {
        (Some(fp), _, _, _) => crate::enroll::CaTrust::Fingerprint(fp.clone()),
        (None, Some(f), _, _) => crate::enroll::CaTrust::CaFile(f.clone()),
        (None, None, Some(fp), _) => crate::enroll::CaTrust::Fingerprint(fp.clone()),
        (None, None, None, Some(f)) => crate::enroll::CaTrust::CaFile(f.clone()),
        (None, None, None, None) => crate::enroll::CaTrust::SystemRoots,
    };
    let state_dir = crate::app::state_dir(cli)?;
    let outcome = runtime()?.block_on(crate::enroll::enroll_with_config(
        &state_dir,
        &cfg,
        &args.platform,
        &args.code,
        ca,
    ))?;
    let bytes = match cli.format {
        crate::cli::Format::Json => crate::report::json::to_bytes(&outcome)?,
        _ => format!(
            "enrolled as {}\nplatform: {}\ncertificate valid until: {}\npinned platform CA: {}\n",
            outcome.appliance_id,
            outcome.platform_url,
            outcome.certificate_not_after,
            outcome.ca_fingerprint
        )
        .into_bytes(),
    };
    crate::app::emit(cli, &bytes)?;
    Ok(crate::app::exit::OK)
}

/// `picket status [--check]`.
pub fn status_command(
    cli: &crate::cli::Cli,
    args: &crate::cli::StatusArgs,
) -> Result<u8, AppError> {
    use crate::store::{Store, StoreError};
    let state_dir = crate::app::state_dir(cli)?;
    let json = cli.format == crate::cli::Format::Json;
    if args.check {
        let report = match Store::open_waiting(&state_dir, crate::app::LOCK_WAIT) {
            Ok(store) => {
                let cfg = load_config(args.config.as_deref())?;
                let input = check_input(store, &state_dir, &cfg)?;
                runtime()?.block_on(run_check(input))
            }
            Err(StoreError::Locked { .. }) => daemon_check(&state_dir)?,
            Err(e) => return Err(e.into()),
        };
        let bytes = if json {
            crate::report::json::to_bytes(&report)?
        } else {
            render_check(&report).into_bytes()
        };
        crate::app::emit(cli, &bytes)?;
        if let Some(step) = &report.failed {
            let reason = report
                .steps
                .iter()
                .find(|s| &s.step == step)
                .map(|s| s.detail.clone())
                .unwrap_or_default();
            let step: &'static str = match step.as_str() {
                "dns" => "dns",
                "tcp" => "tcp",
                "proxy" => "proxy",
                "tls" => "tls",
                _ => "api",
            };
            return Err(AppError::CheckFailed { step, reason });
        }
        return Ok(crate::app::exit::OK);
    }
    let report = match Store::open_waiting(&state_dir, crate::app::LOCK_WAIT) {
        Ok(store) => offline_report(&store, &state_dir)?,
        Err(StoreError::Locked { .. }) => daemon_report(&state_dir)?,
        Err(e) => return Err(e.into()),
    };
    let bytes = if json {
        crate::report::json::to_bytes(&report)?
    } else {
        render_status(&report).into_bytes()
    };
    crate::app::emit(cli, &bytes)?;
    Ok(crate::app::exit::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_auth_is_rfc4648_base64() {
        assert_eq!(
            basic("Aladdin", "open sesame"),
            "QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
        assert_eq!(basic("a", "b"), "YTpi");
        assert_eq!(basic("ab", "c"), "YWI6Yw==");
    }
}
