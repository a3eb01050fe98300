//! Passive checks (on what the crawl received) and the few probes that only read: CORS, exposed
//! VCS/config/backup files, directory listings.
//!
//! Why each is confirmed by content: an app that answers every unknown path 200 would otherwise
//! "expose" every file name tried. A `.git/HEAD` must read like one (`ref: refs/...`), a `.env`
//! like `KEY=value` lines, a listing must carry an index page's markers, and none of them may
//! look like the site's not-found page.

use crate::crawl::{not_found, Site};
use crate::finding::{self, excerpt, make, request_text, Class};
use crate::http::{Request, Response};
use crate::inject::Location;
use crate::Ctx;
use picket_model::WebEvidence;
use regex::Regex;
use std::sync::{Arc, OnceLock};
use url::Url;

/// Page-level findings of one class reported at most (beyond: a warning).
const MAX_PER_CLASS: usize = 25;

fn evidence(
    ctx: &Ctx,
    url: &Url,
    resp: &Response,
    headers: &[&str],
    needle: Option<&str>,
) -> WebEvidence {
    WebEvidence {
        request: request_text(&ctx.client, &Request::get(url.clone())),
        response_excerpt: excerpt(resp, headers, needle),
    }
}

fn page_url(url: &Url) -> Url {
    let mut u = url.clone();
    u.set_query(None);
    u
}

/// Records a page-level finding once per directory (a site's pages share their server's
/// headers; one finding per page would bury the rest), at most [`MAX_PER_CLASS`] per class.
fn add_page(ctx: &Ctx, class: &Class, url: &Url, ev: WebEvidence, detail: &str) {
    let path = url.path();
    let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
    if !ctx.first(format!("{}|{dir}", class.key)) {
        return;
    }
    if !ctx.take_slot(class.key, MAX_PER_CLASS) {
        ctx.warn(format!(
            "more than {MAX_PER_CLASS} directories with `{}`; the rest not listed",
            class.key
        ));
        return;
    }
    let mut f = make(
        class,
        &page_url(url),
        "GET",
        None,
        None,
        ev,
        detail,
        Vec::new(),
    );
    let mut dir_url = page_url(url);
    dir_url.set_path(dir);
    f.id = finding::stable_id(class, "GET", &dir_url, None, None);
    ctx.add(f);
}

fn version_re() -> Option<&'static Regex> {
    static RE: OnceLock<Option<Regex>> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"[A-Za-z][\w.-]*/v?\d+(\.\d+)+").ok())
        .as_ref()
}

/// Checks of every crawled response.
pub(crate) async fn on_response(ctx: &Arc<Ctx>, url: &Url, resp: &Response) {
    let html_ok = resp.status == 200 && resp.is_html();
    if html_ok {
        let has = |h: &str| resp.header(h).is_some();
        let csp = resp
            .header("content-security-policy")
            .unwrap_or_default()
            .to_ascii_lowercase();
        let mut missing = Vec::new();
        if !has("content-security-policy") {
            missing.push("Content-Security-Policy");
        }
        if !has("x-content-type-options") {
            missing.push("X-Content-Type-Options");
        }
        if url.scheme() == "https" && !has("strict-transport-security") {
            missing.push("Strict-Transport-Security");
        }
        if !missing.is_empty() {
            let ev = evidence(ctx, url, resp, &["content-type"], Some(""));
            add_page(ctx, &finding::MISSING_HEADERS, url, ev, &missing.join(", "));
        }
        if !has("x-frame-options") && !csp.contains("frame-ancestors") {
            let ev = evidence(
                ctx,
                url,
                resp,
                &["content-type", "content-security-policy"],
                Some(""),
            );
            add_page(
                ctx,
                &finding::CLICKJACKING,
                url,
                ev,
                "no X-Frame-Options or frame-ancestors",
            );
        }
        let body = resp.text();
        if is_listing(&body) {
            let ev = evidence(
                ctx,
                url,
                resp,
                &[],
                Some("Index of")
                    .filter(|n| body.contains(n))
                    .or(Some("Directory listing")),
            );
            add_page(ctx, &finding::DIR_LISTING, url, ev, url.path());
        }
    }
    cookies(ctx, url, resp);
    for h in [
        "server",
        "x-powered-by",
        "x-aspnet-version",
        "x-aspnetmvc-version",
        "x-generator",
    ] {
        for v in resp.headers_named(h) {
            let versioned = version_re().is_some_and(|r| r.is_match(v))
                || (h.starts_with("x-aspnet") && !v.is_empty());
            if versioned && ctx.first(format!("version|{h}|{v}")) {
                let ev = evidence(ctx, url, resp, &[h], None);
                let mut f = make(
                    &finding::VERSION,
                    &page_url(url),
                    "GET",
                    None,
                    None,
                    ev,
                    &format!("{h}: {}", v.chars().take(80).collect::<String>()),
                    Vec::new(),
                );
                // One finding per disclosed value, wherever it was first seen.
                f.id = finding::stable_id(&finding::VERSION, h, &ctx.start, Some(v), None);
                ctx.add(f);
            }
        }
    }
}

fn cookies(ctx: &Ctx, url: &Url, resp: &Response) {
    for sc in resp.headers_named("set-cookie") {
        let Some((name, _)) = crate::http::parse_set_cookie(sc) else {
            continue;
        };
        ctx.note_cookie(&name, url);
        let attrs: Vec<String> = sc
            .split(';')
            .skip(1)
            .map(|a| a.trim().to_ascii_lowercase())
            .collect();
        // A deletion (expired or emptied cookie) exposes nothing.
        if attrs
            .iter()
            .any(|a| a == "max-age=0" || a.starts_with("expires=thu, 01 jan 1970"))
        {
            continue;
        }
        let has = |n: &str| {
            attrs
                .iter()
                .any(|a| a == n || a.starts_with(&format!("{n}=")))
        };
        let mut checks: Vec<&Class> = Vec::new();
        if !has("httponly") {
            checks.push(&finding::COOKIE_HTTPONLY);
        }
        if !has("samesite") || attrs.iter().any(|a| a == "samesite=none") && !has("secure") {
            checks.push(&finding::COOKIE_SAMESITE);
        }
        if url.scheme() == "https" && !has("secure") {
            checks.push(&finding::COOKIE_SECURE);
        }
        for class in checks {
            if ctx.first(format!("cookie|{}|{name}", class.key)) {
                let ev = WebEvidence {
                    request: request_text(&ctx.client, &Request::get(url.clone())),
                    response_excerpt: format!(
                        "HTTP/1.1 {}\nset-cookie: {}",
                        resp.status,
                        sc.chars().take(300).collect::<String>()
                    ),
                };
                let mut f = make(
                    class,
                    &page_url(url),
                    "GET",
                    Some(&name),
                    Some(Location::Cookie),
                    ev,
                    &name,
                    Vec::new(),
                );
                f.id = finding::stable_id(
                    class,
                    "GET",
                    &ctx.start,
                    Some(&name),
                    Some(Location::Cookie),
                );
                ctx.add(f);
            }
        }
    }
}

/// Whether a page is an automatic directory index (Apache, nginx, Python, IIS, lighttpd).
pub fn is_listing(body: &str) -> bool {
    let head: String = body.chars().take(4096).collect();
    head.contains("<title>Index of /")
        || head.contains("<h1>Index of /")
        || head.contains("Directory listing for /")
        || head.contains("<title>Directory Listing For")
        || head.contains("[To Parent Directory]")
}

/// Checks a script for an outdated library (name first; content when given).
pub(crate) fn on_script(ctx: &Ctx, url: &Url, content: Option<&str>) {
    let Some(o) = ctx.jslibs.check(url.as_str(), content) else {
        return;
    };
    if !ctx.first(format!("jslib|{}|{}", o.library, o.version)) {
        return;
    }
    let cves: Vec<String> =
        o.advisories
            .iter()
            .flat_map(|a| a.cve.clone())
            .fold(Vec::new(), |mut v, c| {
                if !v.contains(&c) {
                    v.push(c);
                }
                v
            });
    let summaries: Vec<String> = o
        .advisories
        .iter()
        .map(|a| format!("{} (fixed in {})", a.summary, a.fixed))
        .collect();
    let ev = WebEvidence {
        request: request_text(&ctx.client, &Request::get(url.clone())),
        response_excerpt: format!(
            "{} {} identified from {}\n{}",
            o.library,
            o.version,
            url,
            summaries.join("\n")
        ),
    };
    let mut f = make(
        &finding::OUTDATED_JS,
        url,
        "GET",
        None,
        None,
        ev,
        &format!("{} {}", o.library, o.version),
        cves,
    );
    if o.advisories
        .iter()
        .any(|a| a.severity == "critical" || a.severity == "high")
    {
        f.severity = picket_model::Severity::High;
    }
    f.id = finding::stable_id(
        &finding::OUTDATED_JS,
        &o.library,
        &ctx.start,
        Some(&o.version),
        None,
    );
    ctx.add(f);
}

/// A file probe: path, class, and a test of the content.
struct Probe {
    path: &'static str,
    class: &'static Class,
    looks_right: fn(&[u8]) -> bool,
}

fn text_has(b: &[u8], needles: &[&str]) -> bool {
    let t = String::from_utf8_lossy(&b[..b.len().min(65536)]);
    needles.iter().any(|n| t.contains(n))
}

fn env_file(b: &[u8]) -> bool {
    let t = String::from_utf8_lossy(&b[..b.len().min(65536)]);
    if t.contains("<html") || t.contains("<HTML") {
        return false;
    }
    let lines: Vec<&str> = t
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .collect();
    !lines.is_empty()
        && lines
            .iter()
            .filter(|l| {
                l.split_once('=').is_some_and(|(k, _)| {
                    !k.is_empty()
                        && k.bytes()
                            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'_')
                })
            })
            .count()
            * 2
            >= lines.len()
}

const PROBES: &[Probe] = &[
    Probe {
        path: ".git/HEAD",
        class: &finding::EXPOSED_VCS,
        looks_right: |b| {
            b.starts_with(b"ref: refs/")
                || (b.len() >= 40 && b[..40].iter().all(u8::is_ascii_hexdigit))
        },
    },
    Probe {
        path: ".git/config",
        class: &finding::EXPOSED_VCS,
        looks_right: |b| text_has(b, &["[core]"]),
    },
    Probe {
        path: ".svn/entries",
        class: &finding::EXPOSED_VCS,
        looks_right: |b| {
            b.starts_with(b"8\n")
                || b.starts_with(b"9\n")
                || b.starts_with(b"10\n")
                || b.starts_with(b"12\n")
        },
    },
    Probe {
        path: ".svn/wc.db",
        class: &finding::EXPOSED_VCS,
        looks_right: |b| b.starts_with(b"SQLite format 3"),
    },
    Probe {
        path: ".hg/requires",
        class: &finding::EXPOSED_VCS,
        looks_right: |b| {
            text_has(b, &["revlogv1", "store", "dotencode"]) && !text_has(b, &["<html"])
        },
    },
    Probe {
        path: ".env",
        class: &finding::EXPOSED_CONFIG,
        looks_right: env_file,
    },
    Probe {
        path: "config.php.bak",
        class: &finding::EXPOSED_BACKUP,
        looks_right: |b| text_has(b, &["<?php"]),
    },
    Probe {
        path: "wp-config.php.bak",
        class: &finding::EXPOSED_BACKUP,
        looks_right: |b| text_has(b, &["<?php"]),
    },
    Probe {
        path: "backup.zip",
        class: &finding::EXPOSED_BACKUP,
        looks_right: |b| b.starts_with(b"PK\x03\x04"),
    },
    Probe {
        path: "backup.tar.gz",
        class: &finding::EXPOSED_BACKUP,
        looks_right: |b| b.starts_with(b"\x1f\x8b"),
    },
    Probe {
        path: "backup.sql",
        class: &finding::EXPOSED_BACKUP,
        looks_right: |b| text_has(b, &["CREATE TABLE", "INSERT INTO"]),
    },
    Probe {
        path: "dump.sql",
        class: &finding::EXPOSED_BACKUP,
        looks_right: |b| text_has(b, &["CREATE TABLE", "INSERT INTO"]),
    },
    Probe {
        path: ".DS_Store",
        class: &finding::EXPOSED_CONFIG,
        looks_right: |b| b.starts_with(b"\x00\x00\x00\x01Bud1"),
    },
];

fn backup_like(orig: &[u8]) -> impl Fn(&[u8]) -> bool + '_ {
    move |b: &[u8]| {
        // A copy of a page's source: not the page as served, and source-looking.
        b != orig
            && (text_has(b, &["<?php", "<%", "import ", "def ", "require(", "#!/"])
                || crate::compare::similarity(
                    &String::from_utf8_lossy(b),
                    &String::from_utf8_lossy(orig),
                ) > 0.3)
    }
}

/// Probes and site-wide checks after the crawl.
pub(crate) async fn finish(ctx: &Arc<Ctx>, site: &Site) {
    if ctx.client.past_deadline() {
        return;
    }
    let mut tasks = tokio::task::JoinSet::new();
    // Files at the root and in each crawled directory (first 8).
    for dir in site.dirs.iter().take(4) {
        for p in PROBES {
            let Ok(u) = dir.join(p.path) else { continue };
            if !ctx.scope.allows(&u) || !ctx.first(format!("probe|{u}")) {
                continue;
            }
            let c = ctx.clone();
            tasks.spawn(async move {
                let Ok(resp) = c.send(&Request::get(u.clone())).await else {
                    return;
                };
                if resp.status == 200
                    && !not_found(&c, u.path(), &resp)
                    && (p.looks_right)(&resp.body)
                {
                    let ev = evidence(&c, &u, &resp, &["content-type"], None);
                    c.add(make(
                        p.class,
                        &u,
                        "GET",
                        None,
                        None,
                        ev,
                        u.path(),
                        Vec::new(),
                    ));
                }
            });
        }
    }
    // Backup copies of the first pages with a file name.
    // Server-side sources first: their backups leak code and credentials.
    let mut named: Vec<&Url> = site
        .pages
        .iter()
        .filter(|u| {
            u.path()
                .rsplit('/')
                .next()
                .is_some_and(|l| l.contains('.') && !l.ends_with(".js") && !l.ends_with(".css"))
        })
        .collect();
    named.sort_by_key(|u| {
        let p = u.path();
        !(p.ends_with(".php")
            || p.ends_with(".asp")
            || p.ends_with(".aspx")
            || p.ends_with(".jsp")
            || p.ends_with(".py")
            || p.ends_with(".rb")
            || p.ends_with(".conf"))
    });
    named.dedup();
    for page in named.into_iter().take(6) {
        for suffix in [".bak", "~", ".old"] {
            let mut u = page.clone();
            u.set_query(None);
            let p = format!("{}{suffix}", u.path());
            u.set_path(&p);
            if !ctx.scope.allows(&u) || !ctx.first(format!("probe|{u}")) {
                continue;
            }
            let c = ctx.clone();
            let orig_url = page.clone();
            tasks.spawn(async move {
                let Ok(resp) = c.send(&Request::get(u.clone())).await else {
                    return;
                };
                if resp.status != 200 || not_found(&c, u.path(), &resp) {
                    return;
                }
                let Ok(orig) = c.send(&Request::get(orig_url)).await else {
                    return;
                };
                if backup_like(&orig.body)(&resp.body) {
                    let ev = evidence(&c, &u, &resp, &["content-type"], None);
                    c.add(make(
                        &finding::EXPOSED_BACKUP,
                        &u,
                        "GET",
                        None,
                        None,
                        ev,
                        u.path(),
                        Vec::new(),
                    ));
                }
            });
        }
    }
    // Directory listings of directories seen but not fetched as pages.
    for dir in site.dirs.iter().take(20) {
        if site.pages.iter().any(|p| p.path() == dir.path()) {
            continue;
        }
        let u = dir.clone();
        if !ctx.scope.allows(&u) || !ctx.first(format!("probe|{u}")) {
            continue;
        }
        let c = ctx.clone();
        tasks.spawn(async move {
            let Ok(resp) = c.send(&Request::get(u.clone())).await else {
                return;
            };
            on_response(&c, &u, &resp).await;
        });
    }
    // CORS: the start page and the API endpoints (first 10), with a foreign Origin.
    // CORS matters where data is served to scripts: API paths first, then other pages.
    let mut candidates: Vec<Url> = site
        .endpoints
        .iter()
        .filter(|e| e.method == "GET")
        .map(|e| e.url.clone())
        .chain(site.pages.iter().cloned())
        .collect();
    candidates.sort_by_key(|u| !u.path().contains("api"));
    let mut cors_targets: Vec<Url> = vec![ctx.start.clone()];
    for u in candidates {
        if cors_targets.len() >= 20 {
            break;
        }
        if !cors_targets.iter().any(|c| c.path() == u.path()) {
            cors_targets.push(u);
        }
    }
    for u in cors_targets {
        let c = ctx.clone();
        tasks.spawn(async move { cors(&c, &u).await });
    }
    while tasks.join_next().await.is_some() {}
}

const FOREIGN_ORIGIN: &str = "https://picket-cors-probe.example";

async fn cors(ctx: &Ctx, url: &Url) {
    let mut req = Request::get(url.clone());
    req.headers.push(("Origin".into(), FOREIGN_ORIGIN.into()));
    let Ok(resp) = ctx.send(&req).await else {
        return;
    };
    let acao = resp
        .header("access-control-allow-origin")
        .unwrap_or_default()
        .trim()
        .to_owned();
    let creds = resp
        .header("access-control-allow-credentials")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    let bad = acao == FOREIGN_ORIGIN || (acao == "null" && creds);
    if !bad {
        return;
    }
    let detail = if creds {
        "any origin reflected, with credentials"
    } else {
        "any origin reflected"
    };
    let ev = WebEvidence {
        request: request_text(&ctx.client, &req),
        response_excerpt: excerpt(
            &resp,
            &[
                "access-control-allow-origin",
                "access-control-allow-credentials",
            ],
            None,
        )
        .lines()
        .take(3)
        .collect::<Vec<_>>()
        .join("\n"),
    };
    let mut f = make(
        &finding::CORS,
        &page_url(url),
        "GET",
        None,
        None,
        ev,
        detail,
        Vec::new(),
    );
    if creds {
        f.severity = picket_model::Severity::High;
    }
    ctx.add(f);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_tests_of_probes() {
        assert!(env_file(b"DB_PASSWORD=secret\nAPI_KEY=abc\n# c\n"));
        assert!(!env_file(b"<html><body>not found</body></html>"));
        assert!(!env_file(b"hello world"));
        assert!(is_listing(
            "<html><head><title>Directory listing for /static/</title>"
        ));
        assert!(!is_listing("<html><head><title>Shop</title>"));
        let head = PROBES
            .iter()
            .find(|p| p.path == ".git/HEAD")
            .map(|p| p.looks_right)
            .unwrap_or(|_| false);
        assert!(head(b"ref: refs/heads/main\n"));
        assert!(!head(b"<html>page not found</html>"));
    }
}
