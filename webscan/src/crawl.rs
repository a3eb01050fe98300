//! The crawler: pages, forms, scripts, robots.txt, sitemaps and API documents, within scope and
//! caps, into the list of endpoints the active checks test.
//!
//! Why these bounds: the crawl may use at most 40% of the request budget (the checks need the
//! rest), `--max-pages` pages and `--max-depth` link hops; URLs that differ only in ids share a
//! pattern, and a pattern is fetched at most `max_pages / 2` times (catalogues of ten thousand
//! items are not ten thousand pages to test) and tested once. Redirects are links like any
//! other, so loops end in the visited set. Soft 404s (unknown paths answered 200) are recognised
//! by comparison with a page fetched for a random path, so file probes do not report them.

use crate::compare::{similarity, without};
use crate::html;
use crate::http::{Request, Response};
use crate::inject::{Body, Endpoint};
use crate::scope::{dedup_key, resolve};
use crate::Ctx;
use rand::Rng;
use serde_json::Value;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use url::Url;

/// What the crawl found.
#[derive(Debug, Default)]
pub struct Site {
    /// Every URL fetched, in order.
    pub pages: Vec<Url>,
    /// HTML pages fetched with GET (re-read to find stored XSS).
    pub html_pages: Vec<Url>,
    pub endpoints: Vec<Arc<Endpoint>>,
    pub scripts: Vec<Url>,
    /// Directories of the paths seen (for listing and exposed-file probes).
    pub dirs: Vec<Url>,
}

/// The page an unknown path gets when the server does not answer 404.
#[derive(Debug, Clone)]
pub struct Soft404 {
    pub status: u16,
    pub text: String,
}

impl Soft404 {
    /// Whether `resp` to `path` is the not-found page.
    pub fn matches(&self, path: &str, resp: &Response) -> bool {
        if resp.status != self.status {
            return false;
        }
        let t = page_text(resp);
        let last = path.rsplit('/').next().unwrap_or(path);
        similarity(&without(&t, &[path, last]), &self.text) > 0.85
    }
}

/// Whether a response means "no such thing": 404/410, a 5xx, or the soft-404 page.
pub(crate) fn not_found(ctx: &Ctx, path: &str, resp: &Response) -> bool {
    if matches!(resp.status, 404 | 410) || resp.status >= 500 || (300..400).contains(&resp.status) {
        return true;
    }
    ctx.soft404
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_ref()
        .is_some_and(|s| s.matches(path, resp))
}

fn page_text(resp: &Response) -> String {
    let t = resp.text();
    if resp.is_html() {
        html::text_of(&t, 200_000)
    } else {
        t.chars().take(200_000).collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Page,
    Script,
    Robots,
    Sitemap,
    ApiDoc,
}

/// A short description of an endpoint for the report.
pub fn describe(e: &Arc<Endpoint>) -> String {
    let names: Vec<String> = e
        .points()
        .iter()
        .map(|p| format!("{}:{}", p.location.as_str(), p.name))
        .collect();
    format!("{} {} [{}]", e.method, e.url, names.join(", "))
}

/// Paths where API documents usually are.
const API_DOC_PATHS: &[&str] = &[
    "/openapi.json",
    "/swagger.json",
    "/v3/api-docs",
    "/api/openapi.json",
    "/swagger/v1/swagger.json",
];

struct State {
    site: Site,
    visited: HashSet<String>,
    patterns: HashMap<String, usize>,
    endpoint_keys: HashSet<String>,
    frontier: VecDeque<(Url, u32, Kind)>,
    dir_set: HashSet<String>,
}

impl State {
    fn enqueue(&mut self, ctx: &Ctx, url: Url, depth: u32, kind: Kind) {
        if depth > ctx.cfg.max_depth || !ctx.scope.allows(&url) {
            return;
        }
        let key = url.to_string();
        if self.visited.contains(&key) || self.visited.len() >= ctx.cfg.max_pages * 4 {
            return;
        }
        let pattern = dedup_key("GET", &url, &[]);
        let n = self.patterns.entry(pattern).or_insert(0);
        if *n >= (ctx.cfg.max_pages / 2).max(10) {
            return;
        }
        *n += 1;
        self.visited.insert(key);
        self.frontier.push_back((url, depth, kind));
    }

    fn add_endpoint(&mut self, e: Endpoint) {
        let names: Vec<String> = match &e.body {
            Body::Form(f) | Body::Multipart(f) => f.iter().map(|(k, _)| k.clone()).collect(),
            Body::Json(j) => j
                .as_object()
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default(),
            Body::Xml(_) => vec!["(xml)".into()],
            Body::None => Vec::new(),
        };
        let key = dedup_key(&e.method, &e.url, &names);
        if self.endpoint_keys.len() < 5_000 && self.endpoint_keys.insert(key) {
            self.site.endpoints.push(Arc::new(e));
        }
    }

    fn note_dir(&mut self, url: &Url) {
        let mut u = url.clone();
        u.set_query(None);
        let path = u.path().to_owned();
        if let Some(i) = path.rfind('/') {
            let dir = &path[..=i];
            if self.dir_set.len() < 500 && self.dir_set.insert(dir.to_owned()) {
                u.set_path(dir);
                self.site.dirs.push(u);
            }
        }
    }
}

/// Segments of a crawled path that look like values: numbers and file names.
fn value_segments(url: &Url) -> Vec<usize> {
    let segs: Vec<&str> = url.path_segments().map(|s| s.collect()).unwrap_or_default();
    let last = segs.len().saturating_sub(1);
    segs.iter()
        .enumerate()
        .filter(|(i, s)| {
            let numeric = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
            let file = *i == last && *i > 0 && s.contains('.') && {
                let ext = s
                    .rsplit('.')
                    .next()
                    .unwrap_or_default()
                    .to_ascii_lowercase();
                !matches!(
                    ext.as_str(),
                    "js" | "css"
                        | "map"
                        | "ico"
                        | "woff"
                        | "woff2"
                        | "ttf"
                        | "svg"
                        | "png"
                        | "jpg"
                        | "jpeg"
                        | "gif"
                        | "webp"
                        | "json"
                        | "xml"
                        | "php"
                        | "asp"
                        | "aspx"
                        | "jsp"
                )
            };
            numeric || file
        })
        .map(|(i, _)| i)
        .collect()
}

/// Crawls the site.
pub(crate) async fn crawl(ctx: &Arc<Ctx>, openapi_doc: Option<Value>) -> Site {
    let mut st = State {
        site: Site::default(),
        visited: HashSet::new(),
        patterns: HashMap::new(),
        endpoint_keys: HashSet::new(),
        frontier: VecDeque::new(),
        dir_set: HashSet::new(),
    };
    let start = ctx.start.clone();
    detect_soft404(ctx, &start).await;

    st.enqueue(ctx, start.clone(), 0, Kind::Page);
    if let Some(doc) = openapi_doc {
        for e in crate::openapi::endpoints(&doc, &start) {
            st.add_endpoint(e);
        }
    } else if let Some(u) = ctx.cfg.openapi.as_ref().and_then(|o| Url::parse(o).ok()) {
        st.enqueue(ctx, u, 0, Kind::ApiDoc);
    } else {
        for p in API_DOC_PATHS {
            if let Ok(u) = start.join(p) {
                st.enqueue(ctx, u, 1, Kind::ApiDoc);
            }
        }
    }
    if let Ok(u) = start.join("/robots.txt") {
        st.enqueue(ctx, u, 1, Kind::Robots);
    }
    if let Ok(u) = start.join("/sitemap.xml") {
        st.enqueue(ctx, u, 1, Kind::Sitemap);
    }

    let crawl_budget = ctx.cfg.max_requests.saturating_mul(2) / 5;
    ctx.progress.phase("crawl", ctx.cfg.max_pages as u64);
    let mut tasks: tokio::task::JoinSet<(Url, u32, Kind, crate::Result<Response>)> =
        tokio::task::JoinSet::new();
    let mut fetched = 0usize;
    loop {
        while tasks.len() < ctx.cfg.concurrency.max(1)
            && fetched < ctx.cfg.max_pages
            && ctx.client.sent() < crawl_budget
            && !ctx.client.past_deadline()
        {
            let Some((url, depth, kind)) = st.frontier.pop_front() else {
                break;
            };
            fetched += 1;
            let c = ctx.clone();
            tasks.spawn(async move {
                let r = c.send(&Request::get(url.clone())).await;
                (url, depth, kind, r)
            });
        }
        let Some(joined) = tasks.join_next().await else {
            break;
        };
        let Ok((url, depth, kind, result)) = joined else {
            continue;
        };
        ctx.progress.advance(1);
        match result {
            Ok(resp) => process(ctx, &mut st, &url, depth, kind, &resp).await,
            Err(e) => ctx.warn(format!("crawl: {e}")),
        }
    }
    tracing::info!(
        "crawl: {} pages, {} endpoints, {} requests",
        st.site.pages.len(),
        st.site.endpoints.len(),
        ctx.client.sent()
    );
    if !st.frontier.is_empty() {
        ctx.warn(format!(
            "crawl stopped with {} URLs not fetched (page cap {}, request share {})",
            st.frontier.len(),
            ctx.cfg.max_pages,
            crawl_budget
        ));
    }
    st.site
}

async fn detect_soft404(ctx: &Ctx, start: &Url) {
    let token: u64 = rand::thread_rng().gen();
    let path = format!("/picket-{token:016x}-missing");
    let Ok(u) = start.join(&path) else { return };
    if let Ok(resp) = ctx.send(&Request::get(u)).await {
        if !matches!(resp.status, 404 | 410) {
            let text = without(&page_text(&resp), &[&path, &path[1..]]);
            *ctx.soft404.lock().unwrap_or_else(|p| p.into_inner()) = Some(Soft404 {
                status: resp.status,
                text,
            });
        }
    }
}

async fn process(
    ctx: &Arc<Ctx>,
    st: &mut State,
    url: &Url,
    depth: u32,
    kind: Kind,
    resp: &Response,
) {
    st.site.pages.push(url.clone());
    crate::passive::on_response(ctx, url, resp).await;
    let segs = value_segments(url);
    // A 400 or 500 for a value the crawler made up still names an input (the preview of an
    // empty URL fails; the preview of ours may not); only "no such page" does not.
    let missing = matches!(resp.status, 404 | 405 | 410)
        || (!segs.is_empty() && url.query().is_none() && not_found(ctx, url.path(), resp));
    if (url.query().is_some() || !segs.is_empty()) && kind == Kind::Page && !missing {
        st.add_endpoint(Endpoint {
            method: "GET".into(),
            url: url.clone(),
            body: Body::None,
            path_params: segs,
            found_on: url.to_string(),
        });
    }
    if (300..400).contains(&resp.status) {
        if let Some(l) = resp.header("location").and_then(|l| resolve(url, l)) {
            st.enqueue(ctx, l, depth + 1, kind);
        }
        return;
    }
    if kind != Kind::Page && kind != Kind::Script && not_found(ctx, url.path(), resp) {
        return;
    }
    if resp.status >= 400 {
        return;
    }
    st.note_dir(url);
    let text = resp.text();
    let ct = resp
        .header("content-type")
        .unwrap_or_default()
        .to_ascii_lowercase();
    match kind {
        Kind::Robots => {
            for line in text.lines().take(10_000) {
                let Some((k, v)) = line.split_once(':') else {
                    continue;
                };
                let k = k.trim().to_ascii_lowercase();
                let v = v.trim();
                let target = match k.as_str() {
                    "disallow" | "allow" if !v.is_empty() && !v.contains('*') => resolve(url, v),
                    "sitemap" => resolve(url, v),
                    _ => None,
                };
                if let Some(t) = target {
                    let kind = if k == "sitemap" {
                        Kind::Sitemap
                    } else {
                        Kind::Page
                    };
                    st.enqueue(ctx, t, depth + 1, kind);
                }
            }
            return;
        }
        Kind::Sitemap => {
            let mut rest = text.as_str();
            let mut n = 0;
            while let Some(i) = rest.find("<loc>") {
                rest = &rest[i + 5..];
                let Some(j) = rest.find("</loc>") else { break };
                let loc = rest[..j].trim().replace("&amp;", "&");
                if let Some(u) = resolve(url, &loc) {
                    let k = if u.path().ends_with(".xml") {
                        Kind::Sitemap
                    } else {
                        Kind::Page
                    };
                    st.enqueue(ctx, u, depth + 1, k);
                }
                n += 1;
                if n > 50_000 {
                    break;
                }
            }
            return;
        }
        _ => {}
    }
    if ct.contains("json") || kind == Kind::ApiDoc {
        if let Ok(v) = serde_json::from_str::<Value>(&text) {
            if crate::openapi::is_openapi(&v) {
                for e in crate::openapi::endpoints(&v, url) {
                    let scoped = ctx.scope.allows(&e.url);
                    if scoped {
                        st.add_endpoint(e);
                    }
                }
            }
        }
        return;
    }
    let is_js = ct.contains("javascript") || kind == Kind::Script || url.path().ends_with(".js");
    if is_js {
        st.site.scripts.push(url.clone());
        crate::passive::on_script(ctx, url, Some(&text));
        for u in crate::js::urls_in_script(&text) {
            if let Some(t) = resolve(url, &u) {
                st.enqueue(ctx, t, depth + 1, Kind::Page);
            }
        }
        return;
    }
    if !resp.is_html() {
        return;
    }
    let page = html::extract(&text);
    st.site.html_pages.push(url.clone());
    let base = page
        .base
        .as_deref()
        .and_then(|b| resolve(url, b))
        .unwrap_or_else(|| url.clone());
    for l in &page.links {
        if let Some(t) = resolve(&base, l) {
            st.enqueue(ctx, t, depth + 1, Kind::Page);
        }
    }
    for r in &page.resources {
        if let Some(t) = resolve(&base, r) {
            if ctx.scope.allows(&t) {
                st.note_dir(&t);
            }
        }
    }
    for s in &page.script_srcs {
        if let Some(t) = resolve(&base, s) {
            crate::passive::on_script(ctx, &t, None);
            st.enqueue(ctx, t, depth + 1, Kind::Script);
        }
    }
    for js in &page.inline_scripts {
        for u in crate::js::urls_in_script(js) {
            if let Some(t) = resolve(&base, &u) {
                st.enqueue(ctx, t, depth + 1, Kind::Page);
            }
        }
    }
    for f in &page.forms {
        let action = match f.action.as_deref() {
            Some(a) if !a.trim().is_empty() => resolve(&base, a),
            _ => Some(url.clone()),
        };
        let Some(mut action) = action else { continue };
        if !ctx.scope.allows(&action) {
            continue;
        }
        if let Some(a) = &ctx.auth {
            // The login form is the login's business; testing it would log the scan out.
            if action.path() == a.login_url().path() && f.has_password() {
                continue;
            }
        }
        let fields: Vec<(String, String)> = f
            .fields
            .iter()
            .filter(|x| {
                !matches!(
                    x.kind.as_str(),
                    "submit" | "button" | "image" | "reset" | "file"
                )
            })
            .map(|x| (x.name.clone(), x.value.clone()))
            .collect();
        if f.method == "GET" {
            let joined = crate::inject::encode_pairs(&fields);
            action.set_query(if fields.is_empty() {
                None
            } else {
                Some(&joined)
            });
            st.add_endpoint(Endpoint {
                method: "GET".into(),
                url: action.clone(),
                body: Body::None,
                path_params: Vec::new(),
                found_on: url.to_string(),
            });
            st.enqueue(ctx, action, depth + 1, Kind::Page);
        } else {
            let body = if f.enctype.contains("multipart") {
                Body::Multipart(fields)
            } else {
                Body::Form(fields)
            };
            st.add_endpoint(Endpoint {
                method: f.method.clone(),
                url: action,
                body,
                path_params: Vec::new(),
                found_on: url.to_string(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_segments_are_ids_and_file_names() {
        let u = |s: &str| Url::parse(s).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(value_segments(&u("http://h/item/42/edit")), vec![1]);
        assert_eq!(value_segments(&u("http://h/files/report.txt")), vec![1]);
        assert!(value_segments(&u("http://h/static/app.js")).is_empty());
        assert!(value_segments(&u("http://h/index.php")).is_empty());
        assert_eq!(value_segments(&u("http://h/docs/intro.html")), vec![1]);
    }
}
