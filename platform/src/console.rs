//! The console web page: fleet, appliance detail, jobs, findings, create a job, create an
//! enrollment code. Server-rendered HTML and plain forms: no script at all, so the CSP can forbid
//! every script and nothing needs a build step.
//!
//! Operator auth: the admin token is entered once on the login form; the session is a random id
//! in an `HttpOnly; Secure; SameSite=Strict` cookie (the platform only speaks HTTPS). Every form
//! carries the session's CSRF token, checked on submit. Every page is sent with a strict CSP,
//! `nosniff`, `no-referrer` and `no-store`. Every value shown is HTML-escaped.

use crate::error::PlatformError;
use crate::operator;
use crate::server::{Session, Shared};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Form;
use picket_model::api::{ApplianceView, CreateCode, CreateJob, JobOptions};
use picket_model::ScanKind;
use serde::Deserialize;
use std::fmt::Write;

const COOKIE: &str = "picket_session";
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
                   frame-ancestors 'none'; base-uri 'none'";
/// Rows shown on the findings page.
const FINDINGS_ROWS: usize = 1000;

const STYLE: &str = "body{font-family:sans-serif;margin:1.5em;color:#222}\
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #bbb;padding:.25em .5em;text-align:left}\
th{background:#eee}nav a{margin-right:1em}.online{color:#070}.offline{color:#a00}.revoked{color:#a00;font-weight:bold}\
.sev-critical,.sev-high{color:#a00;font-weight:bold}.sev-medium{color:#a60}\
form.inline{display:inline}label{display:block;margin:.3em 0}.code{font-size:1.6em;font-family:monospace}\
.flash{background:#efe;border:1px solid #8c8;padding:.5em}";

/// HTML-escapes text for element content and quoted attributes.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes a query value.
fn qenc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fn secure(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    r
}

fn page(title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t} · Picket</title>\
         <link rel=\"stylesheet\" href=\"/console/style.css\"></head><body>\
         <nav><a href=\"/console\">Fleet</a><a href=\"/console/jobs\">Jobs</a>\
         <a href=\"/console/findings\">Findings</a></nav><h1>{t}</h1>{body}</body></html>",
        t = esc(title)
    );
    secure(([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response())
}

fn redirect(to: &str) -> Response {
    secure((StatusCode::SEE_OTHER, [(header::LOCATION, to.to_string())]).into_response())
}

fn error_page(e: &PlatformError) -> Response {
    let (status, _) = e.status_and_code();
    let mut r = page("Error", &format!("<p>{}</p>", esc(&e.to_api().detail)));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r
}

fn session_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
}

fn session(p: &Shared, headers: &HeaderMap) -> Option<(String, Session)> {
    let id = session_id(headers)?;
    let s = p.session(&id)?;
    Some((id, s))
}

fn csrf_ok(s: &Session, given: &str) -> bool {
    let a = s.csrf.as_bytes();
    let b = given.as_bytes();
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Why a form post is not accepted, as the answer to give instead: to the login page without a
/// session, 403 when its token does not match the session's.
fn form_rejected(p: &Shared, headers: &HeaderMap, csrf: &str) -> Option<Response> {
    let Some((_, s)) = session(p, headers) else {
        return Some(redirect("/console/login"));
    };
    if !csrf_ok(&s, csrf) {
        return Some(error_page(&PlatformError::Forbidden(
            "stale or missing form token".into(),
        )));
    }
    None
}

fn csrf_field(s: &Session) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        esc(&s.csrf)
    )
}

fn logout_form(s: &Session) -> String {
    format!(
        "<form class=\"inline\" method=\"post\" action=\"/console/logout\">{}<button>Log out</button></form>",
        csrf_field(s)
    )
}

pub async fn root() -> Response {
    redirect("/console")
}

pub async fn style() -> Response {
    secure(([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE).into_response())
}

pub async fn login_page() -> Response {
    page(
        "Log in",
        "<form method=\"post\" action=\"/console/login\"><label>Admin token \
         <input type=\"password\" name=\"token\" id=\"token\" autocomplete=\"off\" required></label>\
         <button id=\"login\">Log in</button></form>",
    )
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    pub token: String,
}

pub async fn login(State(p): State<Shared>, Form(f): Form<LoginForm>) -> Response {
    if !p.admin_token_ok(f.token.trim()) {
        let mut r = page(
            "Log in",
            "<p>Wrong token.</p><p><a href=\"/console/login\">Try again</a></p>",
        );
        *r.status_mut() = StatusCode::UNAUTHORIZED;
        return r;
    }
    match p.new_session() {
        Ok((id, _)) => {
            let mut r = redirect("/console");
            let cookie = format!(
                "{COOKIE}={id}; Path=/console; HttpOnly; Secure; SameSite=Strict; Max-Age={}",
                crate::server::SESSION_SECS
            );
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            r
        }
        Err(e) => error_page(&e),
    }
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    pub csrf: String,
}

pub async fn logout(
    State(p): State<Shared>,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> Response {
    if let Some((id, s)) = session(&p, &headers) {
        if csrf_ok(&s, &f.csrf) {
            p.end_session(&id);
        }
    }
    let mut r = redirect("/console/login");
    let clear = format!("{COOKIE}=; Path=/console; HttpOnly; Secure; SameSite=Strict; Max-Age=0");
    if let Ok(v) = HeaderValue::from_str(&clear) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

fn code_form(s: &Session) -> String {
    format!(
        "<h2>Enroll an appliance</h2><form method=\"post\" action=\"/console/codes\">{}\
         <label>Label <input name=\"label\" id=\"code-label\"></label>\
         <button id=\"create-code\">Create enrollment code</button></form>",
        csrf_field(s)
    )
}

pub async fn fleet(State(p): State<Shared>, headers: HeaderMap) -> Response {
    let Some((_, s)) = session(&p, &headers) else {
        return redirect("/console/login");
    };
    let views = match operator::appliance_views(&p) {
        Ok(v) => v,
        Err(e) => return error_page(&e),
    };
    let mut body = format!("<p>{} appliances. {}</p>", views.len(), logout_form(&s));
    body.push_str(
        "<table id=\"fleet\"><tr><th>Appliance</th><th>Label</th><th>Hostname</th><th>Status</th>\
         <th>Last seen</th><th>Health</th><th>Certificate until</th></tr>",
    );
    for v in &views {
        let health = match &v.last_heartbeat {
            Some(h) => {
                let mut parts = vec![format!("{} running", h.running_jobs.len())];
                parts.push(format!("outbox {}", h.outbox_chunks));
                if h.dropped_chunks > 0 {
                    parts.push(format!("dropped {} chunks", h.dropped_chunks));
                }
                parts.extend(h.warnings.iter().cloned());
                parts.join(", ")
            }
            None => "no heartbeat yet".into(),
        };
        let _ = write!(
            body,
            "<tr><td><a href=\"/console/appliances/{idq}\">{id}</a></td><td>{label}</td><td>{host}</td>\
             <td class=\"{cls}\">{status}</td><td>{seen}</td><td>{health}</td><td>{cert}</td></tr>",
            idq = qenc(&v.id),
            id = esc(&v.id),
            label = esc(v.label.as_deref().unwrap_or("")),
            host = esc(&v.hostname),
            cls = status_word(v),
            status = status_word(v),
            seen = esc(v.last_seen.as_deref().unwrap_or("never")),
            health = esc(&health),
            cert = esc(&v.certificate_not_after),
        );
    }
    body.push_str("</table>");
    body.push_str(&code_form(&s));
    page("Fleet", &body)
}

/// online, offline or revoked.
fn status_word(v: &ApplianceView) -> &'static str {
    if v.revoked_at.is_some() {
        "revoked"
    } else if v.online {
        "online"
    } else {
        "offline"
    }
}

pub async fn appliance(
    State(p): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let Some((_, s)) = session(&p, &headers) else {
        return redirect("/console/login");
    };
    let v = match operator::appliance_view(&p, &id) {
        Ok(v) => v,
        Err(e) => return error_page(&e),
    };
    let mut body = String::new();
    let _ = write!(
        body,
        "<table id=\"detail\"><tr><th>Id</th><td>{}</td></tr><tr><th>Label</th><td>{}</td></tr>\
         <tr><th>Hostname</th><td>{}</td></tr><tr><th>Status</th><td>{}</td></tr>\
         <tr><th>Enrolled</th><td>{}</td></tr><tr><th>Last seen</th><td>{}</td></tr>\
         <tr><th>Certificate until</th><td>{}</td></tr>",
        esc(&v.id),
        esc(v.label.as_deref().unwrap_or("")),
        esc(&v.hostname),
        status_word(&v),
        esc(&v.enrolled_at),
        esc(v.last_seen.as_deref().unwrap_or("never")),
        esc(&v.certificate_not_after),
    );
    if let Some(h) = &v.last_heartbeat {
        let _ = write!(
            body,
            "<tr><th>Version</th><td>{}</td></tr><tr><th>Uptime</th><td>{} s</td></tr>\
             <tr><th>Running jobs</th><td>{}</td></tr><tr><th>Outbox</th><td>{} chunks, {} bytes</td></tr>\
             <tr><th>Dropped while offline</th><td>{} chunks, {} findings</td></tr>\
             <tr><th>Store free</th><td>{} bytes</td></tr><tr><th>Warnings</th><td>{}</td></tr>",
            esc(&h.picket_version),
            h.uptime_secs,
            esc(&h.running_jobs.join(", ")),
            h.outbox_chunks,
            h.outbox_bytes,
            h.dropped_chunks,
            h.dropped_findings,
            h.store_free_bytes,
            esc(&h.warnings.join("; ")),
        );
    }
    if let Some(at) = &v.revoked_at {
        let _ = write!(
            body,
            "<tr><th>Revoked</th><td id=\"revoked\">{}{}</td></tr>",
            esc(at),
            v.revoked_reason
                .as_deref()
                .map(|r| format!(": {}", esc(r)))
                .unwrap_or_default()
        );
    }
    body.push_str("</table>");
    let _ = write!(
        body,
        "<p><a href=\"/console/findings?appliance={q}\">Findings of this appliance</a> · \
         <a href=\"/console/jobs?appliance={q}\">Jobs of this appliance</a></p>",
        q = qenc(&v.id)
    );
    match p.store.commands_of(&v.id) {
        Ok(cmds) if !cmds.is_empty() => {
            body.push_str("<h2>Commands</h2><table><tr><th>Id</th><th>Kind</th><th>Created</th><th>Result</th></tr>");
            for c in cmds {
                let kind = serde_json::to_string(&c.command.kind).unwrap_or_default();
                let result = match &c.result {
                    Some(r) => format!("{}: {}", if r.ok { "ok" } else { "failed" }, r.message),
                    None => "pending".into(),
                };
                let _ = write!(
                    body,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    esc(&c.command.id),
                    esc(&kind),
                    esc(&c.command.created_at),
                    esc(&result)
                );
            }
            body.push_str("</table>");
        }
        Ok(_) => {}
        Err(e) => return error_page(&e),
    }
    if v.revoked_at.is_none() {
        let _ = write!(
            body,
            "<h2>Revoke</h2><p>A revoked appliance is refused on every call, its pending jobs \
             fail, and its findings stay. It can only be enrolled again, with a new code.</p>\
             <form method=\"post\" action=\"/console/appliances/{q}/revoke\">{csrf}\
             <label>Reason <input name=\"reason\" id=\"revoke-reason\" maxlength=\"200\"></label>\
             <button id=\"revoke\">Revoke this appliance</button></form>",
            q = qenc(&v.id),
            csrf = csrf_field(&s),
        );
    }
    page(&format!("Appliance {}", v.id), &body)
}

#[derive(Debug, Deserialize)]
pub struct RevokeForm {
    pub csrf: String,
    #[serde(default)]
    pub reason: String,
}

pub async fn revoke(
    State(p): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<RevokeForm>,
) -> Response {
    if let Some(r) = form_rejected(&p, &headers, &f.csrf) {
        return r;
    }
    let req = picket_model::api::RevokeAppliance {
        reason: Some(f.reason),
    };
    match operator::revoke_appliance_durable(&p, &id, req).await {
        Ok(v) => redirect(&format!("/console/appliances/{}", qenc(&v.id))),
        Err(e) => error_page(&e),
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct JobsPageQuery {
    pub appliance: Option<String>,
    pub created: Option<String>,
}

pub async fn jobs(
    State(p): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<JobsPageQuery>,
) -> Response {
    let Some((_, s)) = session(&p, &headers) else {
        return redirect("/console/login");
    };
    let (views, apps) = match (
        operator::job_views(&p, q.appliance.as_deref()),
        operator::appliance_views(&p),
    ) {
        (Ok(j), Ok(a)) => (j, a),
        (Err(e), _) | (_, Err(e)) => return error_page(&e),
    };
    let mut body = String::new();
    if let Some(c) = &q.created {
        let _ = write!(
            body,
            "<p class=\"flash\" id=\"created\">Job {} created.</p>",
            esc(c)
        );
    }
    body.push_str(
        "<table id=\"jobs\"><tr><th>Job</th><th>Appliance</th><th>Kind</th><th>Targets</th><th>State</th>\
         <th>Reason</th><th>Chunks</th><th>Findings</th><th>Updated</th></tr>",
    );
    for v in &views {
        let chunks = match v.chunks_expected {
            Some(e) => format!("{}/{}", v.chunks_received, e),
            None => v.chunks_received.to_string(),
        };
        let state = serde_json::to_string(&v.state).unwrap_or_default();
        let _ = write!(
            body,
            "<tr><td>{id}</td><td><a href=\"/console/appliances/{aq}\">{a}</a></td><td>{kind}</td>\
             <td>{targets}</td><td>{state}</td><td>{reason}</td><td>{chunks}</td>\
             <td><a href=\"/console/findings?job={jq}\">{n}</a></td><td>{upd}</td></tr>",
            id = esc(&v.job.id),
            aq = qenc(&v.appliance_id),
            a = esc(&v.appliance_id),
            kind = esc(v.job.kind.as_str()),
            targets = esc(&v.job.targets.join(" ")),
            state = esc(state.trim_matches('"')),
            reason = esc(v.reason.as_deref().unwrap_or("")),
            chunks = esc(&chunks),
            jq = qenc(&v.job.id),
            n = v.findings,
            upd = esc(&v.updated_at),
        );
    }
    body.push_str("</table><h2>Create a job</h2>");
    let _ = write!(
        body,
        "<form method=\"post\" action=\"/console/jobs\" id=\"job-form\">{}<label>Appliance \
         <select name=\"appliance_id\" id=\"job-appliance\">",
        csrf_field(&s)
    );
    for a in &apps {
        let _ = write!(
            body,
            "<option value=\"{}\">{} {}</option>",
            esc(&a.id),
            esc(&a.id),
            esc(a.label.as_deref().unwrap_or(""))
        );
    }
    body.push_str(
        "</select></label><label>Kind <select name=\"kind\" id=\"job-kind\">\
         <option value=\"net\">net</option><option value=\"host\">host</option>\
         <option value=\"web\">web</option></select></label>\
         <label>Targets (one per line) <textarea name=\"targets\" id=\"job-targets\" rows=\"3\" cols=\"40\" required></textarea></label>\
         <label>Ports <input name=\"ports\" id=\"job-ports\"></label>\
         <label>Repeat every (seconds, empty: once) <input name=\"every_secs\" id=\"job-every\"></label>\
         <label>Timeout (seconds) <input name=\"timeout_secs\" id=\"job-timeout\" value=\"3600\"></label>\
         <button id=\"job-create\">Create job</button></form>",
    );
    page("Jobs", &body)
}

#[derive(Debug, Deserialize)]
pub struct JobForm {
    pub csrf: String,
    pub appliance_id: String,
    pub kind: String,
    pub targets: String,
    #[serde(default)]
    pub ports: String,
    #[serde(default)]
    pub every_secs: String,
    #[serde(default)]
    pub timeout_secs: String,
}

fn parse_opt_u64(what: &'static str, s: &str) -> Result<Option<u64>, PlatformError> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    s.parse()
        .map(Some)
        .map_err(|_| PlatformError::BadRequest(format!("{what}: not a number: {s}")))
}

pub async fn create_job(
    State(p): State<Shared>,
    headers: HeaderMap,
    Form(f): Form<JobForm>,
) -> Response {
    if let Some(r) = form_rejected(&p, &headers, &f.csrf) {
        return r;
    }
    let req = (|| {
        let kind = match f.kind.as_str() {
            "net" => ScanKind::Net,
            "host" => ScanKind::Host,
            "web" => ScanKind::Web,
            other => return Err(PlatformError::BadRequest(format!("kind: {other}"))),
        };
        let targets: Vec<String> = f
            .targets
            .lines()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(String::from)
            .collect();
        let ports = Some(f.ports.trim().to_string()).filter(|p| !p.is_empty());
        let req = CreateJob {
            appliance_id: f.appliance_id.clone(),
            kind,
            targets,
            options: JobOptions {
                ports,
                ..JobOptions::default()
            },
            every_secs: parse_opt_u64("every_secs", &f.every_secs)?,
            timeout_secs: parse_opt_u64("timeout_secs", &f.timeout_secs)?,
            credentials: None,
        };
        Ok(req)
    })();
    let result = match req {
        Ok(req) => operator::create_job_durable(&p, req).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(v) => redirect(&format!("/console/jobs?created={}", qenc(&v.job.id))),
        Err(e) => error_page(&e),
    }
}

pub async fn findings(
    State(p): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<operator::FindingsQuery>,
) -> Response {
    if session(&p, &headers).is_none() {
        return redirect("/console/login");
    }
    let q = operator::FindingsQuery {
        limit: Some(q.limit.unwrap_or(FINDINGS_ROWS).min(FINDINGS_ROWS)),
        ..q
    };
    let p2 = p.clone();
    let found = match tokio::task::spawn_blocking(move || operator::findings(&p2, &q)).await {
        Ok(Ok(f)) => f,
        Ok(Err(e)) => return error_page(&e),
        Err(_) => return error_page(&PlatformError::Unavailable("query task failed".into())),
    };
    let mut body = format!(
        "<p>{} findings shown (at most {FINDINGS_ROWS}).</p>",
        found.len()
    );
    body.push_str(
        "<table id=\"findings\"><tr><th>Severity</th><th>Title</th><th>Asset</th><th>Appliance</th>\
         <th>Scan</th><th>CVE</th></tr>",
    );
    for f in &found {
        let a = &f.finding.asset;
        let mut asset = a
            .url
            .clone()
            .or_else(|| a.address.clone())
            .or_else(|| a.hostname.clone())
            .unwrap_or_default();
        if let (Some(port), None) = (a.port, &a.url) {
            let proto = a.protocol.map(|p| p.as_str()).unwrap_or("tcp");
            let _ = write!(asset, ":{port}/{proto}");
        }
        let _ = write!(
            body,
            "<tr><td class=\"sev-{sev}\">{sev}</td><td>{title}</td><td>{asset}</td>\
             <td><a href=\"/console/appliances/{aq}\">{app}</a></td><td>{scan}</td><td>{cve}</td></tr>",
            sev = esc(f.severity.as_str()),
            title = esc(&f.finding.title),
            asset = esc(&asset),
            aq = qenc(&f.appliance_id),
            app = esc(&f.appliance_id),
            scan = esc(&f.scan_id),
            cve = esc(&f.finding.cve.join(", ")),
        );
    }
    body.push_str("</table>");
    page("Findings", &body)
}

#[derive(Debug, Deserialize)]
pub struct CodeForm {
    pub csrf: String,
    #[serde(default)]
    pub label: String,
}

pub async fn create_code(
    State(p): State<Shared>,
    headers: HeaderMap,
    Form(f): Form<CodeForm>,
) -> Response {
    if let Some(r) = form_rejected(&p, &headers, &f.csrf) {
        return r;
    }
    let req = CreateCode {
        ttl_secs: None,
        label: Some(f.label.trim().to_string()).filter(|l| !l.is_empty()),
    };
    match operator::create_code_durable(&p, &req).await {
        Ok(c) => page(
            "Enrollment code",
            &format!(
                "<p>Type this code at the appliance's console (shown once; valid until {}):</p>\
                 <p class=\"code\" id=\"code\">{}</p><p><a href=\"/console\">Back to the fleet</a></p>",
                esc(&c.expires_at),
                esc(&c.code)
            ),
        ),
        Err(e) => error_page(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping() {
        assert_eq!(
            esc("<a href='x'>&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"
        );
        assert_eq!(qenc("a b/c&d"), "a%20b%2Fc%26d");
    }

    #[test]
    fn cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; picket_session=abc; b=2"),
        );
        assert_eq!(session_id(&h).as_deref(), Some("abc"));
    }
}
