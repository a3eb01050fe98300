//! What the scanner may touch, and when two URLs are "the same page" for it.
//!
//! Why this matters: a scanner that leaves its target's origin, or follows a logout link, or
//! tests `/item/1` to `/item/5000` one by one, wastes the request budget and can harm. Scope is
//! the start URL's origin plus `--include` prefixes, minus `--exclude` patterns (logout-like
//! links by default); dedup keys replace numeric and hex segments by placeholders and keep the
//! sorted parameter names.

use crate::error::{Result, WebscanError};
use regex::Regex;
use url::Url;

/// Links never followed unless the user's own `--exclude` list replaces this default.
pub const DEFAULT_EXCLUDE: &str =
    r"(?i)(log[-_]?out|sign[-_]?out|log[-_]?off|sign[-_]?off|/exit\b|sessions/revoke)";

/// The scan's scope.
#[derive(Debug, Clone)]
pub struct Scope {
    origin: url::Origin,
    include: Vec<String>,
    exclude: Vec<Regex>,
}

impl Scope {
    pub fn new(start: &Url, include: &[String], exclude: &[String]) -> Result<Scope> {
        let mut inc = Vec::new();
        for i in include {
            let u = Url::parse(i).map_err(|e| WebscanError::BadUrl {
                url: i.clone(),
                reason: e.to_string(),
            })?;
            inc.push(u.to_string());
        }
        let mut exc = Vec::new();
        let pats: Vec<&str> = if exclude.is_empty() {
            vec![DEFAULT_EXCLUDE]
        } else {
            exclude.iter().map(String::as_str).collect()
        };
        for p in pats {
            exc.push(
                regex::RegexBuilder::new(p)
                    .size_limit(1 << 20)
                    .build()
                    .map_err(|e| WebscanError::BadOption {
                        option: "--exclude",
                        value: p.to_owned(),
                        reason: e.to_string(),
                    })?,
            );
        }
        Ok(Scope {
            origin: start.origin(),
            include: inc,
            exclude: exc,
        })
    }

    /// Whether the scanner may request `url`.
    pub fn allows(&self, url: &Url) -> bool {
        if !matches!(url.scheme(), "http" | "https") {
            return false;
        }
        let s = url.as_str();
        let inside = url.origin() == self.origin || self.include.iter().any(|p| s.starts_with(p));
        inside && !self.exclude.iter().any(|r| r.is_match(s))
    }
}

/// Resolves a link found on `base` into an absolute URL without fragment.
pub fn resolve(base: &Url, link: &str) -> Option<Url> {
    let link = link.trim();
    if link.is_empty() || link.len() > 4096 {
        return None;
    }
    let lower = link.to_ascii_lowercase();
    if ["javascript:", "mailto:", "data:", "tel:", "about:", "blob:"]
        .iter()
        .any(|p| lower.starts_with(p))
    {
        return None;
    }
    let mut u = base.join(link).ok()?;
    u.set_fragment(None);
    Some(u)
}

/// A path with value-like segments (numbers, long hex or UUIDs) replaced by `{n}`.
pub fn path_pattern(path: &str) -> String {
    path.split('/')
        .map(|seg| {
            let numeric = !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit());
            let hexish = seg.len() >= 16 && seg.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
            if numeric || hexish {
                "{n}"
            } else {
                seg
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The dedup key of a request: method, origin, path pattern and sorted parameter names.
pub fn dedup_key(method: &str, url: &Url, body_params: &[String]) -> String {
    let mut names: Vec<String> = url.query_pairs().map(|(k, _)| k.into_owned()).collect();
    names.extend(body_params.iter().cloned());
    names.sort();
    names.dedup();
    format!(
        "{method} {}{} {}",
        url.origin().ascii_serialization(),
        path_pattern(url.path()),
        names.join(",")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(s: &str) -> Url {
        Url::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn scope_is_origin_plus_includes_minus_excludes() {
        let start = u("http://127.0.0.1:8080/app/");
        let s = Scope::new(&start, &["http://127.0.0.1:9090/api/".into()], &[])
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(s.allows(&u("http://127.0.0.1:8080/x")));
        assert!(!s.allows(&u("http://127.0.0.1:8081/x")));
        assert!(!s.allows(&u("https://127.0.0.1:8080/x")));
        assert!(s.allows(&u("http://127.0.0.1:9090/api/v1")));
        assert!(!s.allows(&u("http://127.0.0.1:9090/admin")));
        assert!(!s.allows(&u("http://127.0.0.1:8080/logout")));
        assert!(!s.allows(&u("http://127.0.0.1:8080/account/sign-out?x=1")));
        assert!(Scope::new(&start, &[], &["(".into()]).is_err());
    }

    #[test]
    fn links_resolve_and_patterns_collapse_ids() {
        let base = u("http://h/a/b.html");
        assert_eq!(
            resolve(&base, "c?x=1#f").map(|x| x.to_string()),
            Some("http://h/a/c?x=1".into())
        );
        assert_eq!(resolve(&base, "javascript:alert(1)"), None);
        assert_eq!(path_pattern("/item/42/edit"), "/item/{n}/edit");
        assert_eq!(path_pattern("/u/0123456789abcdef0123"), "/u/{n}");
        assert_eq!(
            dedup_key("GET", &u("http://h/item/1?b=2&a=1"), &[]),
            dedup_key("GET", &u("http://h/item/7?a=9&b=3"), &[])
        );
    }
}
