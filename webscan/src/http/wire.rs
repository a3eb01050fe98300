//! HTTP/1.1 on the wire, without I/O: the raw request writer and the response parsers.
//!
//! Why our own writer: the `http` crate's types refuse CR/LF in header values and `url`
//! normalises `../` away, but header-injection and path-traversal payloads must reach the server
//! byte for byte. Why pure functions: every byte a hostile server sends goes through
//! [`parse_head`] and [`decode_chunks`], which are fuzzed and tested on captured-style fixtures.

/// Most headers accepted in one response head.
pub const MAX_HEADERS: usize = 128;

/// A request exactly as it will be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRequest {
    pub method: String,
    /// The request-target, sent as is (`/a/../../etc/passwd?x=1` stays so).
    pub target: String,
    /// Headers in order; values are not checked, so payloads may contain CR/LF on purpose.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawRequest {
    /// The bytes of the request. `Content-Length` is added for a body (or a POST/PUT/PATCH
    /// without one) unless the caller set it.
    pub fn encode(&self, host: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(256 + self.body.len());
        out.extend_from_slice(self.method.as_bytes());
        out.push(b' ');
        out.extend_from_slice(self.target.as_bytes());
        out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
        out.extend_from_slice(host.as_bytes());
        out.extend_from_slice(b"\r\n");
        let mut has_len = false;
        for (k, v) in &self.headers {
            has_len |= k.eq_ignore_ascii_case("content-length");
            out.extend_from_slice(k.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(v.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        let needs_len =
            !self.body.is_empty() || matches!(self.method.as_str(), "POST" | "PUT" | "PATCH");
        if needs_len && !has_len {
            out.extend_from_slice(format!("Content-Length: {}\r\n", self.body.len()).as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
        out
    }
}

/// A parsed response head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub status: u16,
    /// Header names lower-cased; values decoded lossily (a hostile server's bytes stay visible).
    pub headers: Vec<(String, String)>,
    /// Bytes of the head including the final empty line.
    pub len: usize,
}

/// Why a head could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeadError {
    /// More bytes are needed.
    Partial,
    /// Not HTTP/1.x, or a malformed head.
    Invalid(String),
}

/// Parses a response head from the start of `buf`.
pub fn parse_head(buf: &[u8]) -> Result<Head, HeadError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    match resp.parse(buf) {
        Ok(httparse::Status::Complete(len)) => {
            let status = resp.code.unwrap_or(0);
            let headers = resp
                .headers
                .iter()
                .map(|h| {
                    (
                        h.name.to_ascii_lowercase(),
                        String::from_utf8_lossy(h.value).into_owned(),
                    )
                })
                .collect();
            Ok(Head {
                status,
                headers,
                len,
            })
        }
        Ok(httparse::Status::Partial) => Err(HeadError::Partial),
        Err(e) => Err(HeadError::Invalid(e.to_string())),
    }
}

impl Head {
    /// The first value of a header (name in lower case).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// How a response body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    None,
    Length(u64),
    Chunked,
    UntilClose,
}

/// The framing of a response to `method` with this head (RFC 9112 section 6.3).
pub fn framing(method: &str, head: &Head) -> Result<Framing, HeadError> {
    if method == "HEAD" || (100..200).contains(&head.status) || matches!(head.status, 204 | 304) {
        return Ok(Framing::None);
    }
    if let Some(te) = head.get("transfer-encoding") {
        return if te
            .rsplit(',')
            .next()
            .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"))
        {
            Ok(Framing::Chunked)
        } else {
            Ok(Framing::UntilClose)
        };
    }
    let mut len: Option<u64> = None;
    for (k, v) in &head.headers {
        if k == "content-length" {
            let n: u64 = v
                .trim()
                .parse()
                .map_err(|_| HeadError::Invalid(format!("bad Content-Length {v:?}")))?;
            if len.is_some_and(|l| l != n) {
                return Err(HeadError::Invalid("conflicting Content-Length".into()));
            }
            len = Some(n);
        }
    }
    Ok(len.map_or(Framing::UntilClose, Framing::Length))
}

/// State of an incremental chunked-body decoder.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Chunked {
    /// Offset in the raw buffer up to which input was consumed.
    pub pos: usize,
    /// Bytes of the current chunk still expected.
    remaining: u64,
    /// Inside the CRLF after a chunk's data.
    after_data: bool,
    /// The last chunk was seen; trailers are being skipped.
    in_trailers: bool,
    pub done: bool,
}

/// Longest chunk-size line or trailer line accepted.
const MAX_CHUNK_LINE: usize = 4096;

/// Decodes as much of the chunked body in `raw[state.pos..]` as is complete, appending data to
/// `out`. Returns an error for malformed framing. Call again with more bytes appended to `raw`.
pub fn decode_chunks(raw: &[u8], state: &mut Chunked, out: &mut Vec<u8>) -> Result<(), String> {
    while !state.done {
        let rest = raw.get(state.pos..).unwrap_or(&[]);
        if state.remaining > 0 {
            let take = usize::try_from(state.remaining)
                .unwrap_or(usize::MAX)
                .min(rest.len());
            if take == 0 {
                return Ok(());
            }
            out.extend_from_slice(&rest[..take]);
            state.pos += take;
            state.remaining -= take as u64;
            if state.remaining == 0 {
                state.after_data = true;
            }
            continue;
        }
        let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
            if rest.len() > MAX_CHUNK_LINE {
                return Err("chunk line too long".into());
            }
            return Ok(());
        };
        if nl > MAX_CHUNK_LINE {
            return Err("chunk line too long".into());
        }
        let line = &rest[..nl];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        state.pos += nl + 1;
        if state.after_data {
            if !line.is_empty() {
                return Err("missing CRLF after chunk data".into());
            }
            state.after_data = false;
            continue;
        }
        if state.in_trailers {
            if line.is_empty() {
                state.done = true;
            }
            continue;
        }
        let size_part = line.split(|&b| b == b';').next().unwrap_or(&[]);
        let size_str = std::str::from_utf8(size_part)
            .map_err(|_| "chunk size not ASCII".to_owned())?
            .trim();
        let size = u64::from_str_radix(size_str, 16)
            .map_err(|_| format!("bad chunk size {size_str:?}"))?;
        if size == 0 {
            state.in_trailers = true;
        } else {
            state.remaining = size;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_keeps_payload_bytes_as_given() {
        let r = RawRequest {
            method: "GET".into(),
            target: "/a/../../etc/passwd?q=%0d%0aX:1".into(),
            headers: vec![("X-Test".into(), "a\r\nInjected: 1".into())],
            body: vec![],
        };
        let b = r.encode("127.0.0.1:8080");
        assert_eq!(
            b,
            b"GET /a/../../etc/passwd?q=%0d%0aX:1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nX-Test: a\r\nInjected: 1\r\n\r\n".to_vec()
        );
        let p = RawRequest {
            method: "POST".into(),
            target: "/f".into(),
            headers: vec![],
            body: b"a=1".to_vec(),
        };
        let s = String::from_utf8(p.encode("h")).unwrap_or_default();
        assert!(s.ends_with("Content-Length: 3\r\n\r\na=1"), "{s}");
    }

    #[test]
    fn heads_parse_with_lowercase_names_and_lossy_values() {
        let raw = b"HTTP/1.1 302 Found\r\nLocation: /x\r\nSet-Cookie: a=\xff\r\nContent-Length: 0\r\n\r\nrest";
        let h = parse_head(raw).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(h.status, 302);
        assert_eq!(h.get("location"), Some("/x"));
        assert_eq!(h.get("set-cookie"), Some("a=\u{fffd}"));
        assert_eq!(h.len, raw.len() - 4);
        assert_eq!(
            parse_head(b"HTTP/1.1 200 OK\r\nA: b"),
            Err(HeadError::Partial)
        );
        assert!(matches!(
            parse_head(b"SSH-2.0-OpenSSH\r\n\r\n"),
            Err(HeadError::Invalid(_))
        ));
    }

    #[test]
    fn framing_follows_rfc_9112() {
        let h = |s: &str| parse_head(s.as_bytes()).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(
            framing("GET", &h("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n")),
            Ok(Framing::Length(5))
        );
        assert_eq!(
            framing("HEAD", &h("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n")),
            Ok(Framing::None)
        );
        assert_eq!(
            framing(
                "GET",
                &h("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n")
            ),
            Ok(Framing::Chunked)
        );
        assert_eq!(
            framing("GET", &h("HTTP/1.0 200 OK\r\n\r\n")),
            Ok(Framing::UntilClose)
        );
        assert!(framing(
            "GET",
            &h("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n")
        )
        .is_err());
    }

    #[test]
    fn chunked_bodies_decode_incrementally() {
        let raw = b"4\r\nWiki\r\n5;ext=1\r\npedia\r\n0\r\nTrailer: x\r\n\r\n";
        // Fed one byte at a time, as a slow server would.
        let mut st = Chunked::default();
        let mut out = Vec::new();
        for end in 1..=raw.len() {
            decode_chunks(&raw[..end], &mut st, &mut out).unwrap_or_else(|e| panic!("{e}"));
        }
        assert!(st.done);
        assert_eq!(out, b"Wikipedia");
        assert_eq!(st.pos, raw.len());
        let mut st = Chunked::default();
        assert!(decode_chunks(b"zz\r\n", &mut st, &mut Vec::new()).is_err());
        let mut st = Chunked::default();
        assert!(decode_chunks(b"2\r\nabX\r\n", &mut st, &mut Vec::new()).is_err());
    }
}
