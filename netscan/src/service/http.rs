//! HTTP responses: status line, headers, and the `Server` header's product and version.
//!
//! Why: most unknown TCP ports are web servers, and the `Server` header is the one place they
//! say what they run. The same header parser serves SSDP, whose answers are HTTP-formatted.

use super::text::{clean_field, contains_ci, split_product_version};
use super::{named, with_product, Service};

/// Headers kept from one response (bounded by the caller's read cap).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpHead {
    pub version: String,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// True when the blank line ending the headers was seen.
    pub complete: bool,
}

impl HttpHead {
    /// The first header of this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Most headers we keep from one response.
const MAX_HEADERS: usize = 100;

/// Parses a status line and headers. Returns `None` unless the data starts with `HTTP/`.
pub fn parse_head(data: &[u8]) -> Option<HttpHead> {
    if !data.starts_with(b"HTTP/") {
        return None;
    }
    let mut it = data.split(|&b| b == b'\n');
    let raw_status = it.next()?;
    let status_line = String::from_utf8_lossy(raw_status.strip_suffix(b"\r").unwrap_or(raw_status));
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next()?.trim_start_matches("HTTP/").to_string();
    let status: u16 = parts.next()?.trim().parse().ok()?;
    if !(100..=999).contains(&status) {
        return None;
    }
    let mut headers = Vec::new();
    let mut complete = false;
    let mut seen_bytes = raw_status.len() + 1;
    for line in it {
        let terminated = seen_bytes + line.len() < data.len();
        seen_bytes += line.len() + 1;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() && terminated {
            complete = true;
            break;
        }
        if !terminated || headers.len() >= MAX_HEADERS {
            break;
        }
        let line = String::from_utf8_lossy(line);
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    Some(HttpHead {
        version,
        status,
        headers,
        complete,
    })
}

/// Product and version from a `Server` header value such as `nginx/1.22.1` or
/// `Apache/2.4.57 (Debian)`; the parenthesised comment becomes `extra`.
pub fn server_product(value: &str) -> Option<(String, Option<String>, Option<String>)> {
    let value = value.trim();
    let (first, rest) = match value.split_once(' ') {
        Some((a, b)) => (a, Some(b)),
        None => (value, None),
    };
    let (name, version) = split_product_version(first);
    let product = match name.to_ascii_lowercase().as_str() {
        "nginx" => "nginx".to_string(),
        "apache" => "Apache httpd".to_string(),
        "lighttpd" => "lighttpd".to_string(),
        "microsoft-iis" => "Microsoft IIS httpd".to_string(),
        "caddy" => "Caddy".to_string(),
        "openresty" => "OpenResty".to_string(),
        "apache-coyote" => "Apache Tomcat".to_string(),
        "jetty" => "Jetty".to_string(),
        "" => return None,
        _ => name,
    };
    let extra = rest.and_then(|r| clean_field(r.trim_matches(|c| c == '(' || c == ')')));
    Some((product, version, extra))
}

/// True when a plain-text answer says the port wants TLS (nginx, Apache and others say so in a
/// 400 page when they receive plain HTTP on a TLS port).
pub fn says_tls_required(data: &[u8]) -> bool {
    contains_ci(data, b"plain HTTP request was sent to HTTPS port")
        || contains_ci(data, b"speaking plain HTTP to an SSL-enabled server")
        || contains_ci(data, b"Client sent an HTTP request to an HTTPS server")
}

/// Identifies an HTTP server from a response.
pub fn identify(data: &[u8]) -> Option<Service> {
    let head = parse_head(data)?;
    let s = named("http");
    Some(match head.header("server").and_then(server_product) {
        Some((product, version, extra)) => {
            let mut s = with_product(s, &product, version.as_deref());
            s.extra = extra;
            s
        }
        None => s,
    })
}

/// True when an HTTP response is complete enough to stop reading: the headers ended and the body
/// announced by `Content-Length` (if any) is in, or the head ended and there is no length.
pub fn response_complete(data: &[u8]) -> bool {
    let Some(head) = parse_head(data) else {
        return false;
    };
    if !head.complete {
        return false;
    }
    let Some(body_start) = find_subslice(data, b"\r\n\r\n")
        .map(|i| i + 4)
        .or_else(|| find_subslice(data, b"\n\n").map(|i| i + 2))
    else {
        return false;
    };
    match head
        .header("content-length")
        .and_then(|v| v.parse::<usize>().ok())
    {
        Some(len) => data.len().saturating_sub(body_start) >= len.min(4096),
        // Without a length, the head is what we identify from; a short body may follow but we do
        // not need it.
        None => true,
    }
}

fn find_subslice(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NGINX: &[u8] = b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Sat, 21 Nov 2026 07:00:00 GMT\r\nContent-Type: text/html\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello";

    #[test]
    fn nginx() {
        let s = identify(NGINX).expect("http");
        assert_eq!(s.name, "http");
        assert_eq!(s.product.as_deref(), Some("nginx"));
        assert_eq!(s.version.as_deref(), Some("1.22.1"));
        assert_eq!(
            s.cpe,
            vec!["cpe:2.3:a:f5:nginx:1.22.1:*:*:*:*:*:*:*".to_string()]
        );
        assert!(response_complete(NGINX));
        assert!(!response_complete(&NGINX[..NGINX.len() - 2]));
    }

    #[test]
    fn apache_with_comment() {
        let s = identify(b"HTTP/1.1 403 Forbidden\r\nServer: Apache/2.4.57 (Debian)\r\n\r\n")
            .expect("http");
        assert_eq!(s.product.as_deref(), Some("Apache httpd"));
        assert_eq!(s.version.as_deref(), Some("2.4.57"));
        assert_eq!(s.extra.as_deref(), Some("Debian"));
    }

    #[test]
    fn no_server_header() {
        let s = identify(b"HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n").expect("http");
        assert_eq!(s.product, None);
        assert!(s.cpe.is_empty());
    }

    #[test]
    fn tls_hint_page() {
        let page = b"HTTP/1.1 400 Bad Request\r\nServer: nginx/1.22.1\r\n\r\n<html><head><title>400 The plain HTTP request was sent to HTTPS port</title></head>";
        assert!(says_tls_required(page));
        assert!(!says_tls_required(NGINX));
    }

    #[test]
    fn hostile() {
        assert!(identify(b"HTTP/").is_none());
        assert!(identify(b"HTTP/1.1 abc\r\n\r\n").is_none());
        assert!(identify(b"GET / HTTP/1.1\r\n\r\n").is_none());
        let mut big = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..5000 {
            big.extend_from_slice(format!("X-{i}: y\r\n").as_bytes());
        }
        let head = parse_head(&big).expect("head");
        assert!(head.headers.len() <= MAX_HEADERS);
        assert!(!head.complete);
        // Truncated headers: identified, but not complete.
        let s = identify(b"HTTP/1.1 200 OK\r\nServer: nginx/1.2").expect("http");
        assert_eq!(s.product, None);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = identify(&data);
            let _ = response_complete(&data);
        }

        #[test]
        fn arbitrary_heads_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..1024)) {
            let mut data = b"HTTP/1.1 200 OK\r\nServer: ".to_vec();
            data.extend_from_slice(&tail);
            let _ = identify(&data);
            let _ = response_complete(&data);
        }
    }
}
