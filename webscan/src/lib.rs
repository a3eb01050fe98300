//! Picket's web application scanner (`picket scan web`): crawl an application (behind its login
//! too), test every input found, and report only what was confirmed, with evidence.
//!
//! Why this shape, a ladder as in netscan: pure parts at the bottom (`http::wire`, `html`, `js`,
//! `scope`, `inject`, `compare`, `jslibs`, `openapi`), one I/O client (`http::Client`, where
//! every limit lives), and the policy on top: [`run`] logs in (`auth`), crawls (`crawl`), runs
//! the passive checks on every response (`passive`) and then the active checks on every
//! injection point (`active`), with the callback listener (`callback`) for out-of-band proof.
//! A library: it never prints; warnings come back in [`WebScanOutcome`].
#![forbid(unsafe_code)]

pub mod active;
pub mod auth;
pub mod callback;
pub mod compare;
pub mod crawl;
pub mod error;
pub mod finding;
pub mod html;
pub mod http;
pub mod inject;
pub mod js;
pub mod jslibs;
pub mod openapi;
pub mod passive;
pub mod scope;
pub mod tls;

pub use error::{Result, WebscanError};

use crate::http::{Client, ClientConfig, Request, Response};
use picket_model::{WebFinding, WebScanStats, WebSite};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use url::Url;

/// The User-Agent of every request, so operators can recognise the scanner in their logs.
pub const USER_AGENT: &str = concat!("picket-webscan/", env!("CARGO_PKG_VERSION"));

/// Form-login settings (the password comes from the environment; the binary reads it).
#[derive(Debug, Clone)]
pub struct LoginConfig {
    pub url: String,
    pub username: String,
    pub password: String,
}

/// Configuration of one web scan.
#[derive(Debug, Clone)]
pub struct WebScanConfig {
    pub target: String,
    pub login: Option<LoginConfig>,
    /// Headers sent with every request (tokens), already resolved.
    pub headers: Vec<(String, String)>,
    /// Cookies set before the scan (session tokens).
    pub cookies: Vec<(String, String)>,
    /// An OpenAPI/Swagger document: URL or file path.
    pub openapi: Option<String>,
    /// URL prefixes outside the start origin that are in scope.
    pub include: Vec<String>,
    /// Regular expressions of URLs never requested (default: logout-like links).
    pub exclude: Vec<String>,
    pub max_rps: Option<u32>,
    pub max_requests: u64,
    pub max_pages: usize,
    pub max_depth: u32,
    pub concurrency: usize,
    pub request_timeout: Duration,
    pub scan_timeout: Duration,
    pub max_body: usize,
    /// Where the callback listener binds.
    pub callback_listen: SocketAddr,
    /// The base URL targets use to reach the listener (default `http://LISTEN-ADDR`).
    pub callback_url: Option<String>,
    /// Request headers tested as injection points.
    pub inject_headers: Vec<String>,
    /// Accept any TLS certificate.
    pub insecure_tls: bool,
    /// Skip the active checks (crawl and passive checks only).
    pub passive_only: bool,
    /// Base delay of the time-based checks.
    pub time_delay: Duration,
    /// Networks the scan may connect to, checked on every connection's resolved address
    /// (the daemon sets its scope); empty: any.
    pub allowed_nets: Vec<ipnet::IpNet>,
}

impl Default for WebScanConfig {
    fn default() -> Self {
        WebScanConfig {
            target: String::new(),
            login: None,
            headers: Vec::new(),
            cookies: Vec::new(),
            openapi: None,
            include: Vec::new(),
            exclude: Vec::new(),
            max_rps: None,
            max_requests: 20_000,
            max_pages: 500,
            max_depth: 10,
            concurrency: 16,
            request_timeout: Duration::from_secs(10),
            scan_timeout: Duration::from_secs(3600),
            max_body: 2 << 20,
            callback_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            callback_url: None,
            inject_headers: vec![
                "User-Agent".into(),
                "Referer".into(),
                "X-Forwarded-Host".into(),
            ],
            insecure_tls: false,
            passive_only: false,
            time_delay: Duration::from_millis(1500),
            allowed_nets: Vec::new(),
        }
    }
}

/// What a web scan produced.
#[derive(Debug, Clone)]
pub struct WebScanOutcome {
    pub site: WebSite,
    pub findings: Vec<WebFinding>,
    pub stats: WebScanStats,
    pub warnings: Vec<String>,
}

/// Parses `Name: value` (for `--header`).
pub fn parse_header(s: &str) -> Result<(String, String)> {
    let bad = |reason: &str| WebscanError::BadOption {
        option: "--header",
        value: s.to_owned(),
        reason: reason.to_owned(),
    };
    let (k, v) = s
        .split_once(':')
        .ok_or_else(|| bad("expected `Name: value`"))?;
    let k = k.trim();
    if k.is_empty()
        || !k
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
    {
        return Err(bad("the name must be letters, digits, - or _"));
    }
    let v = v.trim();
    if v.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
        return Err(bad("CR, LF or NUL in the value"));
    }
    Ok((k.to_owned(), v.to_owned()))
}

/// Parses `name=value` (for `--cookie`).
pub fn parse_cookie(s: &str) -> Result<(String, String)> {
    let bad = |reason: &str| WebscanError::BadOption {
        option: "--cookie",
        value: s.to_owned(),
        reason: reason.to_owned(),
    };
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| bad("expected `name=value`"))?;
    let k = k.trim();
    if k.is_empty() || k.bytes().any(|b| b <= b' ' || b";=,".contains(&b)) {
        return Err(bad("bad cookie name"));
    }
    if v.bytes().any(|b| b < b' ' || b == b';') {
        return Err(bad("control character or ; in the value"));
    }
    Ok((k.to_owned(), v.trim().to_owned()))
}

/// An out-of-band token sent and not seen yet: token, point, URL sent, class, when.
pub(crate) type Pending = (
    String,
    inject::Point,
    String,
    &'static finding::Class,
    tokio::time::Instant,
);

/// Shared state of a running scan.
pub(crate) struct Ctx {
    pub client: Arc<Client>,
    pub cfg: WebScanConfig,
    pub start: Url,
    pub scope: scope::Scope,
    findings: Mutex<Vec<WebFinding>>,
    warnings: Mutex<Vec<String>>,
    pub errors: AtomicU64,
    pub auth: Option<auth::Auth>,
    pub callback: Option<callback::Callback>,
    pub soft404: Mutex<Option<crawl::Soft404>>,
    pub markers: Mutex<Vec<active::Marker>>,
    pub jslibs: jslibs::Signatures,
    /// Page-level checks already done (by key), so each runs once per site or page.
    pub done: Mutex<HashSet<String>>,
    /// Out-of-band tokens sent and not yet seen: token, point, URL, class.
    pending: Mutex<Vec<Pending>>,
    /// Cookies the site set itself, with the first page that set each.
    cookie_pages: Mutex<Vec<(String, Url)>>,
    /// Findings per capped class.
    counts: Mutex<std::collections::HashMap<&'static str, usize>>,
    /// Where progress goes (a bar on a terminal, nothing otherwise).
    pub progress: Arc<dyn picket_netscan::Progress>,
}

impl std::fmt::Debug for Ctx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx")
            .field("start", &self.start.as_str())
            .finish_non_exhaustive()
    }
}

/// Most warnings kept.
const MAX_WARNINGS: usize = 200;

impl Ctx {
    /// Sends a request; when the answer says the session is gone, logs in again and retries once.
    pub async fn send(&self, req: &Request) -> Result<Response> {
        let generation = self.auth.as_ref().map(auth::Auth::generation);
        let resp = self.client.send(req).await;
        let resp = match resp {
            Ok(r) => {
                self.note_truncated(&req.url, &r);
                r
            }
            Err(e) => {
                self.errors.fetch_add(1, Ordering::Relaxed);
                return Err(e);
            }
        };
        if let (Some(a), Some(g)) = (&self.auth, generation) {
            if a.is_logged_out(&req.url, &resp) {
                a.relogin(self, g).await?;
                return self.client.send(req).await.inspect_err(|_| {
                    self.errors.fetch_add(1, Ordering::Relaxed);
                });
            }
        }
        Ok(resp)
    }

    /// Warns about a body cut at the cap (an endless or oversized response).
    pub fn note_truncated(&self, url: &Url, r: &Response) {
        if r.truncated {
            self.warn(format!(
                "{url}: response body cut at {} bytes (endless or oversized)",
                self.cfg.max_body
            ));
        }
    }

    /// Records a finding (once per id).
    pub fn add(&self, f: WebFinding) {
        let mut v = self.findings.lock().unwrap_or_else(|p| p.into_inner());
        if !v.iter().any(|x| x.id == f.id) {
            v.push(f);
        }
    }

    /// Whether a finding with this id exists.
    pub fn has(&self, id: &str) -> bool {
        self.findings
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .any(|x| x.id == id)
    }

    pub fn remove(&self, id: &str) {
        self.findings
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|x| x.id != id);
    }

    /// Records a warning (deduplicated, capped).
    pub fn warn(&self, w: String) {
        let mut v = self.warnings.lock().unwrap_or_else(|p| p.into_inner());
        if v.len() < MAX_WARNINGS && !v.contains(&w) {
            v.push(w);
        }
    }

    /// Remembers an XSS marker (capped).
    pub fn remember(&self, m: active::Marker) {
        let mut v = self.markers.lock().unwrap_or_else(|p| p.into_inner());
        if v.len() < 20_000 {
            v.push(m);
        }
    }

    pub fn markers_snapshot(&self) -> Vec<active::Marker> {
        self.markers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Remembers an out-of-band token not seen yet.
    pub fn pending(
        &self,
        token: String,
        p: inject::Point,
        url: String,
        class: &'static finding::Class,
    ) {
        let mut v = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if v.len() < 20_000 {
            v.push((token, p, url, class, tokio::time::Instant::now()));
        }
    }

    pub fn take_pending(&self) -> Vec<Pending> {
        std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Notes a cookie the site set on `page` (first page only; session cookies are left out:
    /// injecting into them would end the session).
    pub fn note_cookie(&self, name: &str, page: &Url) {
        let n = name.to_ascii_lowercase();
        let session = ["sid", "sess", "auth", "token", "jwt", "remember"]
            .iter()
            .any(|s| n.contains(s))
            && !n.contains("tracking");
        if session || self.cfg.cookies.iter().any(|(k, _)| k == name) {
            return;
        }
        let mut v = self.cookie_pages.lock().unwrap_or_else(|e| e.into_inner());
        if v.len() < 50 && !v.iter().any(|(k, _)| k == name) {
            let mut u = page.clone();
            u.set_query(None);
            v.push((name.to_owned(), u));
        }
    }

    pub fn cookie_pages(&self) -> Vec<(String, Url)> {
        self.cookie_pages
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Takes one of `cap` places of a capped class; false when none is left.
    pub fn take_slot(&self, key: &'static str, cap: usize) -> bool {
        let mut c = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let n = c.entry(key).or_insert(0);
        if *n >= cap {
            return false;
        }
        *n += 1;
        true
    }

    /// True the first time a key is seen.
    pub fn first(&self, key: String) -> bool {
        self.done
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key)
    }
}

/// Runs a web scan.
pub async fn run(cfg: &WebScanConfig) -> Result<WebScanOutcome> {
    run_with_progress(cfg, Arc::new(picket_netscan::scan::NoProgress)).await
}

/// Runs a web scan, reporting its phases (`crawl`: pages; `checks`: injection points) to
/// `progress`.
pub async fn run_with_progress(
    cfg: &WebScanConfig,
    progress: Arc<dyn picket_netscan::Progress>,
) -> Result<WebScanOutcome> {
    let started = Instant::now();
    let start = Url::parse(&cfg.target).map_err(|e| WebscanError::BadUrl {
        url: cfg.target.clone(),
        reason: e.to_string(),
    })?;
    if !matches!(start.scheme(), "http" | "https") || start.host_str().is_none() {
        return Err(WebscanError::BadUrl {
            url: cfg.target.clone(),
            reason: "expected an http:// or https:// URL with a host".into(),
        });
    }
    let scope = scope::Scope::new(&start, &cfg.include, &cfg.exclude)?;
    let openapi_doc = match &cfg.openapi {
        Some(o) if !o.starts_with("http://") && !o.starts_with("https://") => {
            Some(openapi::read_file(std::path::Path::new(o))?)
        }
        _ => None,
    };
    let auth = match &cfg.login {
        Some(l) => Some(auth::Auth::new(l, &start)?),
        None => None,
    };
    let client = Arc::new(Client::new(ClientConfig {
        request_timeout: cfg.request_timeout,
        max_body: cfg.max_body,
        max_head: 64 * 1024,
        max_requests: cfg.max_requests,
        max_rps: cfg.max_rps,
        concurrency: cfg.concurrency,
        deadline: started + cfg.scan_timeout,
        deadline_secs: cfg.scan_timeout.as_secs(),
        insecure_tls: cfg.insecure_tls,
        extra_headers: cfg.headers.clone(),
        allowed_nets: cfg.allowed_nets.clone(),
    })?);
    for (k, v) in &cfg.cookies {
        client.set_cookie(k, v);
    }
    let callback = if cfg.passive_only {
        None
    } else {
        Some(callback::Callback::start(cfg.callback_listen, cfg.callback_url.clone()).await?)
    };
    let ctx = Arc::new(Ctx {
        client: client.clone(),
        cfg: cfg.clone(),
        start: start.clone(),
        scope,
        findings: Mutex::new(Vec::new()),
        warnings: Mutex::new(Vec::new()),
        errors: AtomicU64::new(0),
        auth,
        callback,
        soft404: Mutex::new(None),
        markers: Mutex::new(Vec::new()),
        jslibs: jslibs::Signatures::builtin(),
        done: Mutex::new(HashSet::new()),
        pending: Mutex::new(Vec::new()),
        cookie_pages: Mutex::new(Vec::new()),
        counts: Mutex::new(std::collections::HashMap::new()),
        progress,
    });

    // The start page first: an unreachable target is an error, not an empty report.
    match client.send(&Request::get(start.clone())).await {
        // Cookies the start page sets arrive only once: their flags are checked here.
        Ok(resp) => {
            ctx.note_truncated(&start, &resp);
            passive::on_response(&ctx, &start, &resp).await
        }
        Err(e) => {
            return Err(WebscanError::Unreachable {
                url: start.to_string(),
                reason: e.to_string(),
            })
        }
    }
    if let Some(a) = &ctx.auth {
        a.login(&ctx).await?;
    }
    let site = crawl::crawl(&ctx, openapi_doc).await;
    // The site-wide probes need nothing from the active checks: both share the client (and so
    // the rate and budget) and run side by side.
    let active_phase = async {
        if cfg.passive_only {
            0
        } else {
            active::run(&ctx, &site).await
        }
    };
    let probes = async {
        passive::finish(&ctx, &site).await;
        tls::check(&ctx).await;
    };
    let (points, ()) = tokio::join!(active_phase, probes);

    let mut findings = ctx
        .findings
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.check.cmp(&b.check))
            .then_with(|| a.url.cmp(&b.url))
            .then_with(|| a.parameter.cmp(&b.parameter))
    });
    let mut warnings = ctx
        .warnings
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    if client.remaining() == 0 {
        warnings.push(format!(
            "the request budget ({}) was spent; the scan is incomplete",
            cfg.max_requests
        ));
    }
    if client.past_deadline() {
        warnings.push(format!(
            "the scan time limit ({} s) was reached; the scan is incomplete",
            cfg.scan_timeout.as_secs()
        ));
    }
    let stats = WebScanStats {
        requests: client.sent(),
        pages: site.pages.len() as u64,
        endpoints: site.endpoints.len() as u64,
        injection_points: points,
        max_requests: cfg.max_requests,
        max_rps: cfg.max_rps,
        errors: ctx.errors.load(Ordering::Relaxed),
        relogins: ctx.auth.as_ref().map_or(0, auth::Auth::relogins),
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    };
    Ok(WebScanOutcome {
        site: WebSite {
            target: start.to_string(),
            authenticated: ctx.auth.is_some() || !cfg.cookies.is_empty() || !cfg.headers.is_empty(),
            pages: site.pages.iter().take(10_000).map(Url::to_string).collect(),
            endpoints: site.endpoints.iter().map(crawl::describe).collect(),
        },
        findings,
        stats,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_and_cookie_options_parse_and_refuse_injection() {
        assert_eq!(
            parse_header("Authorization: Bearer abc").ok(),
            Some(("Authorization".into(), "Bearer abc".into()))
        );
        assert!(parse_header("NoColon").is_err());
        assert!(parse_header("X: a\r\nInjected: 1").is_err());
        assert!(parse_header("Bad Name: x").is_err());
        assert_eq!(
            parse_cookie("sid=abc").ok(),
            Some(("sid".into(), "abc".into()))
        );
        assert!(parse_cookie("sid").is_err());
        assert!(parse_cookie("a=b;c=d").is_err());
    }
}
