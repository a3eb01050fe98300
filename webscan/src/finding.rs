//! Web findings: classes (title, CWE, severity, remediation), stable ids and evidence.
//!
//! Why stable ids from the check class, method, origin, path pattern and parameter: the same
//! weakness found again in the next scan must keep its id so history and dashboards track it,
//! whichever payload or technique confirmed it this time.

use crate::http::{Client, Request, Response};
use crate::inject::Location;
use crate::scope::path_pattern;
use picket_model::{Asset, Severity, WebEvidence, WebFinding};
use std::hash::Hasher;
use url::Url;

/// A class of finding.
#[derive(Debug, Clone, Copy)]
pub struct Class {
    /// Id stem (stable); also the SARIF rule.
    pub key: &'static str,
    pub title: &'static str,
    pub cwe: u32,
    pub severity: Severity,
    pub remediation: &'static str,
}

macro_rules! class {
    ($name:ident, $key:expr, $title:expr, $cwe:expr, $sev:ident, $rem:expr) => {
        pub const $name: Class = Class {
            key: $key,
            title: $title,
            cwe: $cwe,
            severity: Severity::$sev,
            remediation: $rem,
        };
    };
}

class!(XSS_REFLECTED, "xss-reflected", "Reflected cross-site scripting", 79, High,
    "Encode output for its context (HTML body, attribute, JavaScript string) with the template engine's auto-escaping; add a Content-Security-Policy.");
class!(XSS_STORED, "xss-stored", "Stored cross-site scripting", 79, High,
    "Encode stored data for its output context when rendering it; validate input; add a Content-Security-Policy.");
class!(SQLI, "sqli", "SQL injection", 89, Critical,
    "Use parameterized queries (prepared statements) for every value; never build SQL by string concatenation.");
class!(CMDI, "cmdi", "OS command injection", 78, Critical,
    "Do not pass input to a shell: call programs with an argument vector and validate values against an allow-list.");
class!(TRAVERSAL, "path-traversal", "Path traversal", 22, High,
    "Resolve the path and check it stays inside the intended directory, or map identifiers to files with an allow-list.");
class!(
    REDIRECT,
    "open-redirect",
    "Open redirect",
    601,
    Medium,
    "Redirect only to relative paths or to an allow-list of hosts."
);
class!(
    CRLF,
    "crlf-injection",
    "HTTP response header injection (CRLF)",
    113,
    Medium,
    "Reject or encode CR and LF in values placed in response headers."
);
class!(SSTI, "ssti", "Server-side template injection", 1336, Critical,
    "Never build templates from input; pass input as template data only, or use a sandboxed engine.");
class!(SSRF, "ssrf", "Server-side request forgery", 918, High,
    "Fetch only allow-listed destinations; resolve and check the address, block internal ranges and redirects.");
class!(
    XXE,
    "xxe",
    "XML external entity injection",
    611,
    High,
    "Disable DTDs and external entity resolution in the XML parser."
);
class!(MISSING_HEADERS, "missing-security-headers", "Missing security headers", 693, Low,
    "Send Content-Security-Policy, X-Content-Type-Options: nosniff, and Strict-Transport-Security over HTTPS.");
class!(
    CLICKJACKING,
    "clickjacking",
    "Page can be framed (clickjacking)",
    1021,
    Low,
    "Send Content-Security-Policy: frame-ancestors 'self' (or X-Frame-Options: DENY)."
);
class!(
    COOKIE_HTTPONLY,
    "cookie-no-httponly",
    "Cookie without HttpOnly",
    1004,
    Low,
    "Set the HttpOnly attribute on session and other sensitive cookies."
);
class!(
    COOKIE_SECURE,
    "cookie-no-secure",
    "Cookie without Secure over HTTPS",
    614,
    Low,
    "Set the Secure attribute on cookies of HTTPS sites."
);
class!(
    COOKIE_SAMESITE,
    "cookie-no-samesite",
    "Cookie without SameSite",
    1275,
    Low,
    "Set SameSite=Lax or Strict on cookies."
);
class!(
    CORS,
    "cors-permissive",
    "Permissive CORS policy",
    942,
    Medium,
    "Allow only trusted origins; never reflect arbitrary origins with credentials."
);
class!(
    VERSION,
    "version-disclosure",
    "Server version disclosure",
    200,
    Info,
    "Remove version numbers from Server, X-Powered-By and similar headers."
);
class!(
    OUTDATED_JS,
    "outdated-js-library",
    "Outdated JavaScript library with known vulnerabilities",
    1104,
    Medium,
    "Upgrade the library to a fixed version."
);
class!(
    EXPOSED_VCS,
    "exposed-vcs",
    "Exposed version-control repository",
    527,
    High,
    "Do not deploy VCS metadata; deny access to .git, .svn and .hg."
);
class!(
    EXPOSED_CONFIG,
    "exposed-config",
    "Exposed configuration file",
    538,
    High,
    "Keep configuration and secrets out of the web root; rotate exposed secrets."
);
class!(
    EXPOSED_BACKUP,
    "exposed-backup",
    "Exposed backup file",
    530,
    Medium,
    "Remove backup and temporary files from the web root."
);
class!(
    DIR_LISTING,
    "directory-listing",
    "Directory listing enabled",
    548,
    Low,
    "Disable automatic directory indexes."
);
class!(
    TLS_WEAK,
    "tls-weak-protocol",
    "Obsolete TLS protocol versions accepted",
    326,
    Medium,
    "Disable TLS 1.0 and 1.1 (and SSL); accept TLS 1.2 and 1.3 only."
);
class!(
    TLS_CERT,
    "tls-bad-certificate",
    "TLS certificate not valid",
    295,
    Medium,
    "Serve a certificate from a trusted CA for this name, within its validity period."
);

/// Longest request kept in evidence.
const MAX_REQUEST_EVIDENCE: usize = 4096;
/// Characters of body shown on each side of the proof.
const EXCERPT_CONTEXT: usize = 160;

/// The id of a finding: class key plus a hash of what identifies the weakness.
pub fn stable_id(
    class: &Class,
    method: &str,
    url: &Url,
    parameter: Option<&str>,
    loc: Option<Location>,
) -> String {
    let mut h = siphasher::sip::SipHasher13::new_with_keys(0x7069_636b_6574, 0x0077_6562_7363_616e);
    for part in [
        class.key,
        method,
        &url.origin().ascii_serialization(),
        &path_pattern(url.path()),
        parameter.unwrap_or(""),
        loc.map(Location::as_str).unwrap_or(""),
    ] {
        h.write(part.as_bytes());
        h.write_u8(0);
    }
    format!("web-{}-{:016x}", class.key, h.finish())
}

/// The request as text for evidence.
pub fn request_text(client: &Client, req: &Request) -> String {
    let raw = client.redacted_request(req);
    let bytes = raw.encode(&crate::http::host_header(&req.url));
    let mut s = String::from_utf8_lossy(&bytes).into_owned();
    if s.len() > MAX_REQUEST_EVIDENCE {
        let cut = (0..=MAX_REQUEST_EVIDENCE)
            .rev()
            .find(|i| s.is_char_boundary(*i))
            .unwrap_or(0);
        s.truncate(cut);
        s.push_str("\n[...]");
    }
    s
}

/// A short excerpt of the response: status, the named headers, and the body around `needle`.
pub fn excerpt(resp: &Response, headers: &[&str], needle: Option<&str>) -> String {
    let mut out = format!("HTTP/1.1 {}\n", resp.status);
    for h in headers {
        for v in resp.headers_named(h) {
            out.push_str(&format!(
                "{h}: {}\n",
                v.chars().take(300).collect::<String>()
            ));
        }
    }
    let text = resp.text();
    let window = match needle.and_then(|n| text.find(n).map(|i| (i, n.len()))) {
        Some((i, n)) => {
            let start = floor_boundary(&text, i.saturating_sub(EXCERPT_CONTEXT));
            let end = floor_boundary(&text, (i + n + EXCERPT_CONTEXT).min(text.len()));
            format!("[...]{}[...]", &text[start..end])
        }
        None if needle.is_none() => {
            let end = floor_boundary(&text, text.len().min(2 * EXCERPT_CONTEXT));
            text[..end].to_owned()
        }
        None => String::new(),
    };
    if !window.is_empty() {
        out.push('\n');
        out.push_str(&window);
    }
    out
}

fn floor_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Builds a finding.
#[allow(clippy::too_many_arguments)] // the contract's fields; a struct literal at each call site would be longer
pub fn make(
    class: &Class,
    url: &Url,
    method: &str,
    parameter: Option<&str>,
    location: Option<Location>,
    evidence: WebEvidence,
    detail: &str,
    cve: Vec<String>,
) -> WebFinding {
    let title = if detail.is_empty() {
        class.title.to_owned()
    } else {
        format!("{}: {detail}", class.title)
    };
    WebFinding {
        id: stable_id(class, method, url, parameter, location),
        title,
        severity: class.severity,
        cwe: vec![class.cwe],
        cve,
        asset: Asset {
            address: None,
            hostname: url.host_str().map(str::to_owned),
            port: url.port_or_known_default(),
            protocol: Some(picket_model::Protocol::Tcp),
            url: Some(url.to_string()),
        },
        url: url.to_string(),
        method: method.to_owned(),
        parameter: parameter.map(str::to_owned),
        location: location.map(|l| l.as_str().to_owned()),
        check: class.key.to_owned(),
        evidence,
        remediation: class.remediation.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_across_values_and_distinct_across_parameters() {
        let a = Url::parse("http://h:1/item/1?q=x").unwrap_or_else(|e| panic!("{e}"));
        let b = Url::parse("http://h:1/item/2?q=y").unwrap_or_else(|e| panic!("{e}"));
        let ia = stable_id(&SQLI, "GET", &a, Some("q"), Some(Location::Query));
        assert_eq!(
            ia,
            stable_id(&SQLI, "GET", &b, Some("q"), Some(Location::Query))
        );
        assert_ne!(
            ia,
            stable_id(&SQLI, "GET", &a, Some("r"), Some(Location::Query))
        );
        assert_ne!(
            ia,
            stable_id(&XSS_REFLECTED, "GET", &a, Some("q"), Some(Location::Query))
        );
        assert!(ia.starts_with("web-sqli-"));
    }
}
