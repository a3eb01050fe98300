//! Endpoints and their injection points, and building a request with a payload in one point.
//!
//! Why a module of its own: every active check asks the same question ("send this value in that
//! place, the rest as the crawler saw it"), and the encoding differs per place: form encoding
//! for query and urlencoded bodies, MIME parts, JSON strings, raw bytes in a path segment (so
//! `../` reaches the server un-normalised), a cookie, a header.

use crate::http::Request;
use serde_json::Value;
use std::sync::Arc;
use url::Url;

/// The body of an endpoint's request.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    None,
    Form(Vec<(String, String)>),
    Multipart(Vec<(String, String)>),
    Json(Value),
    Xml(String),
}

/// A request the crawler found (a link with parameters, a form, an API operation).
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    pub method: String,
    /// With the query string as found.
    pub url: Url,
    pub body: Body,
    /// Indexes (in `url.path_segments()`) of segments that are values (`/item/42`, `{id}`).
    pub path_params: Vec<usize>,
    /// Where it was found (page URL, `openapi`, `script`).
    pub found_on: String,
}

/// Where an injection point sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Location {
    Query,
    Form,
    Multipart,
    Json,
    Path,
    Cookie,
    Header,
    /// The whole body (XML documents).
    Body,
}

impl Location {
    pub fn as_str(self) -> &'static str {
        match self {
            Location::Query => "query",
            Location::Form => "form",
            Location::Multipart => "multipart",
            Location::Json => "json",
            Location::Path => "path",
            Location::Cookie => "cookie",
            Location::Header => "header",
            Location::Body => "body",
        }
    }
}

/// One input of one endpoint.
#[derive(Debug, Clone)]
pub struct Point {
    pub endpoint: Arc<Endpoint>,
    pub location: Location,
    /// Parameter name (JSON: dotted path; path: the segment index as text).
    pub name: String,
    /// The value the crawler saw (or a plausible default).
    pub original: String,
}

/// Names of fields that carry anti-forgery tokens: sent as found, never injected.
fn is_token_field(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    [
        "csrf",
        "xsrf",
        "authenticity_token",
        "_token",
        "nonce",
        "__viewstate",
        "__eventvalidation",
    ]
    .iter()
    .any(|t| n.contains(t))
}

/// A value to use where the crawler saw none.
pub fn default_value(name: &str) -> String {
    let n = name.to_ascii_lowercase();
    if n == "id"
        || n.ends_with("_id")
        || n.ends_with("id") && n.len() <= 4
        || n == "page"
        || n == "n"
    {
        "1".into()
    } else if n.contains("mail") {
        "picket@example.com".into()
    } else if n.contains("url") || n.contains("uri") || n.contains("link") {
        "http://127.0.0.1/".into()
    } else {
        "picket".into()
    }
}

fn json_leaves(v: &Value, prefix: &str, depth: usize, out: &mut Vec<(String, String)>) {
    if depth > 3 || out.len() >= 64 {
        return;
    }
    if let Value::Object(m) = v {
        for (k, x) in m {
            let path = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            match x {
                Value::Object(_) => json_leaves(x, &path, depth + 1, out),
                Value::String(s) => out.push((path, s.clone())),
                Value::Number(n) => out.push((path, n.to_string())),
                Value::Bool(b) => out.push((path, b.to_string())),
                Value::Null => out.push((path, String::new())),
                Value::Array(_) => {}
            }
        }
    }
}

fn set_json(v: &mut Value, path: &str, payload: &str) {
    let mut cur = v;
    let parts: Vec<&str> = path.split('.').collect();
    for (i, p) in parts.iter().enumerate() {
        let Value::Object(m) = cur else { return };
        if i + 1 == parts.len() {
            m.insert((*p).to_owned(), Value::String(payload.to_owned()));
            return;
        }
        let Some(next) = m.get_mut(*p) else { return };
        cur = next;
    }
}

impl Endpoint {
    /// The injection points of this endpoint (not cookies and headers: those are per site).
    pub fn points(self: &Arc<Endpoint>) -> Vec<Point> {
        let mut out = Vec::new();
        let mut push = |location, name: &str, value: &str| {
            if is_token_field(name) || out.len() >= 64 {
                return;
            }
            let original = if value.is_empty() {
                default_value(name)
            } else {
                value.to_owned()
            };
            out.push(Point {
                endpoint: self.clone(),
                location,
                name: name.to_owned(),
                original,
            });
        };
        let mut seen = Vec::new();
        for (k, v) in self.url.query_pairs() {
            if !seen.contains(&k) {
                push(Location::Query, &k, &v);
                seen.push(k);
            }
        }
        match &self.body {
            Body::Form(f) => f.iter().for_each(|(k, v)| push(Location::Form, k, v)),
            Body::Multipart(f) => f.iter().for_each(|(k, v)| push(Location::Multipart, k, v)),
            Body::Json(j) => {
                let mut leaves = Vec::new();
                json_leaves(j, "", 0, &mut leaves);
                leaves.iter().for_each(|(k, v)| push(Location::Json, k, v));
            }
            Body::Xml(x) => push(Location::Body, "(xml body)", x),
            Body::None => {}
        }
        let segs: Vec<String> = self
            .url
            .path_segments()
            .map(|s| s.map(str::to_owned).collect())
            .unwrap_or_default();
        for &i in &self.path_params {
            if let Some(s) = segs.get(i) {
                let decoded = percent_decode(s);
                push(Location::Path, &i.to_string(), &decoded);
            }
        }
        out
    }
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// Form encoding of one value (spaces as `+`, everything else but unreserved as `%XX`).
pub fn form_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// `k=v&k=v`, form-encoded: a query string or an urlencoded body.
pub(crate) fn encode_pairs(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// How a path-segment payload is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathEncoding {
    /// Percent-encoded (slashes too): one segment value.
    Encoded,
    /// Written as is: `../` stays `../` on the wire.
    Raw,
}

impl Point {
    /// The parameter as reports name it: the name, or `path[N]` for the N-th path segment.
    pub fn label(&self) -> String {
        match self.location {
            Location::Path => format!("path[{}]", self.name),
            _ => self.name.clone(),
        }
    }

    /// The request with `value` in this point, everything else as the endpoint has it.
    pub fn request(&self, value: &str) -> Request {
        self.request_with(value, PathEncoding::Encoded)
    }

    /// As [`Point::request`], choosing how a path-segment value is written.
    pub fn request_with(&self, value: &str, path_enc: PathEncoding) -> Request {
        let ep = &self.endpoint;
        let mut req = Request::get(ep.url.clone());
        req.method = ep.method.clone();
        let mut query: Vec<(String, String)> = ep
            .url
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let mut target_path = ep.url.path().to_owned();
        match self.location {
            Location::Query => {
                for (k, v) in &mut query {
                    if *k == self.name {
                        *v = value.to_owned();
                    }
                }
            }
            Location::Path => {
                let idx: usize = self.name.parse().unwrap_or(usize::MAX);
                let segs: Vec<String> = ep
                    .url
                    .path_segments()
                    .map(|s| {
                        s.enumerate()
                            .map(|(i, seg)| {
                                if i == idx {
                                    match path_enc {
                                        PathEncoding::Raw => value.to_owned(),
                                        PathEncoding::Encoded => crate::inject::path_encode(value),
                                    }
                                } else {
                                    seg.to_owned()
                                }
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                target_path = format!("/{}", segs.join("/"));
            }
            Location::Cookie => req
                .cookie_overrides
                .push((self.name.clone(), value.to_owned())),
            Location::Header => req.headers.push((self.name.clone(), value.to_owned())),
            _ => {}
        }
        let mut target = target_path;
        if !query.is_empty() {
            target.push('?');
            target.push_str(&encode_pairs(&query));
        }
        req.target = Some(target);
        let sub = |pairs: &[(String, String)], loc: Location| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| {
                    if self.location == loc && *k == self.name {
                        (k.clone(), value.to_owned())
                    } else {
                        (k.clone(), v.clone())
                    }
                })
                .collect()
        };
        match &ep.body {
            Body::None => {}
            Body::Form(f) => {
                req.body = encode_pairs(&sub(f, Location::Form)).into_bytes();
                req.headers.push((
                    "Content-Type".into(),
                    "application/x-www-form-urlencoded".into(),
                ));
            }
            Body::Multipart(f) => {
                let boundary = "----picketboundary7MA4YWxkTrZu0gW";
                let mut b = Vec::new();
                for (k, v) in sub(f, Location::Multipart) {
                    b.extend_from_slice(
                        format!(
                            "--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
                        )
                        .as_bytes(),
                    );
                }
                b.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
                req.body = b;
                req.headers.push((
                    "Content-Type".into(),
                    format!("multipart/form-data; boundary={boundary}"),
                ));
            }
            Body::Json(j) => {
                let mut j = j.clone();
                if self.location == Location::Json {
                    set_json(&mut j, &self.name, value);
                }
                req.body = serde_json::to_vec(&j).unwrap_or_default();
                req.headers
                    .push(("Content-Type".into(), "application/json".into()));
            }
            Body::Xml(x) => {
                req.body = if self.location == Location::Body {
                    value.as_bytes().to_vec()
                } else {
                    x.as_bytes().to_vec()
                };
                req.headers
                    .push(("Content-Type".into(), "application/xml".into()));
            }
        }
        req
    }
}

/// Percent-encodes a path segment value (everything but unreserved characters).
pub fn path_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(method: &str, url: &str, body: Body, path_params: Vec<usize>) -> Arc<Endpoint> {
        Arc::new(Endpoint {
            method: method.into(),
            url: Url::parse(url).unwrap_or_else(|e| panic!("{e}")),
            body,
            path_params,
            found_on: String::new(),
        })
    }

    #[test]
    fn points_cover_query_body_json_and_path_but_not_tokens() {
        let e = ep(
            "POST",
            "http://h/item/42?q=a",
            Body::Form(vec![
                ("name".into(), String::new()),
                ("csrf_token".into(), "t".into()),
            ]),
            vec![1],
        );
        let pts: Vec<_> = e
            .points()
            .iter()
            .map(|p| (p.location, p.name.clone(), p.original.clone()))
            .collect();
        assert_eq!(
            pts,
            vec![
                (Location::Query, "q".into(), "a".into()),
                (Location::Form, "name".into(), "picket".into()),
                (Location::Path, "1".into(), "42".into()),
            ]
        );
        let j = ep(
            "PUT",
            "http://h/api",
            Body::Json(serde_json::json!({"a": 1, "b": {"c": "x"}})),
            vec![],
        );
        let names: Vec<_> = j.points().iter().map(|p| p.name.clone()).collect();
        assert_eq!(names, vec!["a", "b.c"]);
        let r = j.points()[1].request("<p>");
        assert_eq!(
            String::from_utf8_lossy(&r.body),
            r#"{"a":1,"b":{"c":"<p>"}}"#
        );
    }

    #[test]
    fn payloads_are_encoded_per_location() {
        let e = ep(
            "POST",
            "http://h/f/doc.txt?q=a&z=1",
            Body::Form(vec![("n".into(), "v".into())]),
            vec![1],
        );
        let pts = e.points();
        let q = pts[0].request("a b&c\r\n");
        assert_eq!(q.target.as_deref(), Some("/f/doc.txt?q=a+b%26c%0D%0A&z=1"));
        assert_eq!(String::from_utf8_lossy(&q.body), "n=v");
        let f = pts[2].request("'\"");
        assert_eq!(String::from_utf8_lossy(&f.body), "n=%27%22");
        let p = pts[3].request_with("../../etc/passwd", PathEncoding::Raw);
        assert_eq!(p.target.as_deref(), Some("/f/../../etc/passwd?q=a&z=1"));
        let p = pts[3].request("../x");
        assert_eq!(p.target.as_deref(), Some("/f/..%2Fx?q=a&z=1"));
    }
}
