//! The scanner's HTTP/1.1 client: every request of a scan goes through [`Client::send`].
//!
//! Why a client of our own rather than reqwest/hyper: payloads must reach the server byte for
//! byte (see [`wire`]), and the politeness and safety limits must hold for every request of the
//! scan, crawl, login and checks alike, in one place: the global rate (`--max-rps`, spaced
//! sends, no bursts), the hard request budget (`--max-requests`), bounded concurrency, the scan
//! deadline, a per-request time limit covering connect to last body byte (slowloris), caps on
//! the head and the body (endless bodies are cut, not buffered), and no automatic redirects
//! (redirect loops cannot happen here; the crawler follows `Location` as a new link).

pub mod wire;

use crate::error::{Result, WebscanError};
use rustls::pki_types::ServerName;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use url::Url;
use wire::{Chunked, Framing, HeadError, RawRequest};

/// Limits and identity of the client.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Time one request may take, connect to last body byte.
    pub request_timeout: Duration,
    /// Body bytes kept; the rest is not read and the connection is dropped.
    pub max_body: usize,
    /// Response head bytes accepted.
    pub max_head: usize,
    /// Requests sent at most, over the whole scan.
    pub max_requests: u64,
    /// Requests started per second at most (None: unlimited).
    pub max_rps: Option<u32>,
    /// Requests in flight at most.
    pub concurrency: usize,
    /// No request starts after this instant.
    pub deadline: Instant,
    /// The scan's time limit in seconds (for the error message).
    pub deadline_secs: u64,
    /// Accept any TLS certificate (self-signed internal apps).
    pub insecure_tls: bool,
    /// Headers added to every request (`--header`), after the defaults.
    pub extra_headers: Vec<(String, String)>,
    /// When not empty, every address connected to must lie in one of these networks, checked on
    /// the address actually used, so a second, different DNS answer (rebinding) or a redirect
    /// cannot take the scan outside the appliance's scope. Empty: any address (ad hoc CLI use).
    pub allowed_nets: Vec<ipnet::IpNet>,
}

/// A request of the scanner. `target` is the raw request-target; when `None` it is taken from
/// `url` (path and query as the `url` crate serialised them).
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub url: Url,
    pub target: Option<String>,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Cookies sent instead of the jar's value of the same name (cookie injection points).
    pub cookie_overrides: Vec<(String, String)>,
    /// Send no cookies of the jar at all (probing logged-out behaviour).
    pub no_jar: bool,
}

impl Request {
    pub fn get(url: Url) -> Request {
        Request {
            method: "GET".into(),
            url,
            target: None,
            headers: Vec::new(),
            body: Vec::new(),
            cookie_overrides: Vec::new(),
            no_jar: false,
        }
    }

    /// The request-target that will be written.
    pub fn request_target(&self) -> String {
        match &self.target {
            Some(t) => t.clone(),
            None => {
                let mut t = self.url.path().to_owned();
                if let Some(q) = self.url.query() {
                    t.push('?');
                    t.push_str(q);
                }
                t
            }
        }
    }
}

/// A response, with its body cut at the cap.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The body was longer than the cap (or never ended) and was cut.
    pub truncated: bool,
    pub elapsed: Duration,
}

impl Response {
    /// First value of a header (lower-case name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a header.
    pub fn headers_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Whether the content type says HTML (or is absent and the body looks like it).
    pub fn is_html(&self) -> bool {
        match self.header("content-type") {
            Some(ct) => {
                let ct = ct.to_ascii_lowercase();
                ct.contains("html")
            }
            None => {
                let head = &self.body[..self.body.len().min(512)];
                String::from_utf8_lossy(head)
                    .to_ascii_lowercase()
                    .contains("<html")
            }
        }
    }
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

struct Conn {
    origin: String,
    io: Box<dyn Stream>,
}

/// The request rate limit, enforced so that it holds where it is measured: at the server.
///
/// Two rules. Starts are spaced `1/rate` apart (smooth traffic, no bursts). And a request starts
/// only while fewer than `rate` requests are in flight or were answered less than a second ago.
/// The second rule is what makes the limit hold at the server whatever the network or the
/// server's own scheduling does: a request arrives between its start and its answer, so two
/// requests that can arrive in the same one-second window are exactly those this rule counts
/// against each other. (Spacing alone is not enough: a server that stalls for 100 ms and then
/// reads its queue sees a burst.)
#[derive(Debug)]
pub struct RateLimiter {
    rate: Option<u32>,
    interval: Option<Duration>,
    next: Mutex<Option<tokio::time::Instant>>,
    window: Arc<Mutex<Window>>,
}

#[derive(Debug, Default)]
struct Window {
    inflight: usize,
    answered: std::collections::VecDeque<tokio::time::Instant>,
}

/// Held for the life of one request; its drop records the answer time.
#[derive(Debug)]
pub struct RateTicket {
    window: Option<Arc<Mutex<Window>>>,
}

impl Drop for RateTicket {
    fn drop(&mut self) {
        if let Some(w) = &self.window {
            let mut w = w.lock().unwrap_or_else(|p| p.into_inner());
            w.inflight = w.inflight.saturating_sub(1);
            w.answered.push_back(tokio::time::Instant::now());
        }
    }
}

impl RateLimiter {
    /// A limiter of `rps` requests per second (None: unlimited).
    pub fn new(rps: Option<u32>) -> RateLimiter {
        let rate = rps.filter(|r| *r > 0);
        RateLimiter {
            rate,
            interval: rate.map(|r| Duration::from_secs_f64(1.0 / f64::from(r))),
            next: Mutex::new(None),
            window: Arc::new(Mutex::new(Window::default())),
        }
    }

    /// Waits until a request may start; keep the ticket until its answer is read.
    pub async fn acquire(&self) -> RateTicket {
        let (Some(rate), Some(interval)) = (self.rate, self.interval) else {
            return RateTicket { window: None };
        };
        let slot = {
            let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
            let now = tokio::time::Instant::now();
            let slot = match *next {
                Some(n) if n > now => n,
                _ => now,
            };
            *next = Some(slot + interval);
            slot
        };
        tokio::time::sleep_until(slot).await;
        loop {
            let wait = {
                let mut w = self.window.lock().unwrap_or_else(|p| p.into_inner());
                let now = tokio::time::Instant::now();
                let second = Duration::from_secs(1);
                while w
                    .answered
                    .front()
                    .is_some_and(|t| now.duration_since(*t) >= second)
                {
                    w.answered.pop_front();
                }
                if w.inflight + w.answered.len() < rate as usize {
                    w.inflight += 1;
                    return RateTicket {
                        window: Some(self.window.clone()),
                    };
                }
                // The oldest answer leaves the window then; in-flight ones free a place when
                // answered, so look again soon.
                w.answered
                    .front()
                    .map(|t| (*t + second).saturating_duration_since(now))
                    .unwrap_or(interval)
                    .clamp(
                        Duration::from_millis(1),
                        interval.max(Duration::from_millis(5)),
                    )
            };
            tokio::time::sleep(wait).await;
        }
    }
}

/// The client of one scan. Shared by every task (`Arc<Client>`).
pub struct Client {
    cfg: ClientConfig,
    tls: Arc<rustls::ClientConfig>,
    pool: Mutex<Vec<Conn>>,
    rate: RateLimiter,
    inflight: Semaphore,
    sent: AtomicU64,
    jar: Mutex<Vec<(String, String)>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("sent", &self.sent.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// Most idle connections kept.
const POOL_MAX: usize = 32;

impl Client {
    pub fn new(cfg: ClientConfig) -> Result<Client> {
        let tls = tls_config(cfg.insecure_tls)?;
        Ok(Client {
            rate: RateLimiter::new(cfg.max_rps),
            inflight: Semaphore::new(cfg.concurrency.max(1)),
            cfg,
            tls,
            pool: Mutex::new(Vec::new()),
            sent: AtomicU64::new(0),
            jar: Mutex::new(Vec::new()),
        })
    }

    /// Requests sent so far.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// The configured request budget.
    pub fn budget(&self) -> u64 {
        self.cfg.max_requests
    }

    /// Requests still allowed.
    pub fn remaining(&self) -> u64 {
        self.cfg.max_requests.saturating_sub(self.sent())
    }

    /// Whether the scan's deadline has passed.
    pub fn past_deadline(&self) -> bool {
        Instant::now() >= self.cfg.deadline
    }

    /// Past the deadline, a request counted in `sent` is given back (it will not be sent) and
    /// the deadline error returned.
    fn give_back_if_late(&self) -> Result<()> {
        if self.past_deadline() {
            self.sent.fetch_sub(1, Ordering::SeqCst);
            return Err(WebscanError::Deadline {
                secs: self.cfg.deadline_secs,
            });
        }
        Ok(())
    }

    /// Waits for a rate slot for traffic that is not an HTTP request (TLS probes), so the rate
    /// limit covers it too.
    pub async fn pace(&self) -> RateTicket {
        self.rate.acquire().await
    }

    /// A TLS handshake with certificate verification against the Web PKI roots: the reason
    /// when the server's certificate is not acceptable (expired, self-signed, wrong name).
    pub async fn verify_certificate(&self, url: &Url) -> std::result::Result<(), String> {
        let host = url
            .host_str()
            .unwrap_or_default()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = url.port_or_known_default().unwrap_or(443);
        let cfg = tls_config(false).map_err(|e| e.to_string())?;
        let name = ServerName::try_from(host.clone()).map_err(|e| e.to_string())?;
        let _t = self.rate.acquire().await;
        let fut = async {
            let tcp = self
                .tcp_connect(&host, port)
                .await
                .map_err(|e| e.to_string())?;
            tokio_rustls::TlsConnector::from(cfg)
                .connect(name, tcp)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        };
        tokio::time::timeout(self.cfg.request_timeout, fut)
            .await
            .unwrap_or_else(|_| Err("handshake timed out".into()))
    }

    /// The per-request time limit.
    pub fn request_timeout(&self) -> Duration {
        self.cfg.request_timeout
    }

    /// Sets a cookie in the jar (`--cookie`, login).
    pub fn set_cookie(&self, name: &str, value: &str) {
        let mut jar = self.jar.lock().unwrap_or_else(|p| p.into_inner());
        match jar.iter_mut().find(|(k, _)| k == name) {
            Some(slot) => slot.1 = value.to_owned(),
            None => {
                if jar.len() < 64 {
                    jar.push((name.to_owned(), value.to_owned()));
                }
            }
        }
    }

    /// The cookies of the jar.
    pub fn cookies(&self) -> Vec<(String, String)> {
        self.jar.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Empties the jar (before a re-login).
    pub fn clear_cookies(&self) {
        self.jar.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// The request as it is written on the wire (for evidence), without the body's bytes cut.
    pub fn raw_request(&self, req: &Request) -> RawRequest {
        let mut headers: Vec<(String, String)> = vec![
            ("User-Agent".into(), crate::USER_AGENT.into()),
            ("Accept".into(), "*/*".into()),
            ("Accept-Encoding".into(), "identity".into()),
            ("Connection".into(), "keep-alive".into()),
        ];
        let mut cookies: Vec<(String, String)> = if req.no_jar {
            Vec::new()
        } else {
            self.cookies()
        };
        for (k, v) in &req.cookie_overrides {
            match cookies.iter_mut().find(|(n, _)| n == k) {
                Some(slot) => slot.1 = v.clone(),
                None => cookies.push((k.clone(), v.clone())),
            }
        }
        let user_cookie = self
            .cfg
            .extra_headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("cookie"));
        if !cookies.is_empty() && !user_cookie {
            let c: Vec<String> = cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
            headers.push(("Cookie".into(), c.join("; ")));
        }
        for (k, v) in self.cfg.extra_headers.iter().chain(req.headers.iter()) {
            match headers.iter_mut().find(|(n, _)| n.eq_ignore_ascii_case(k)) {
                Some(slot) => slot.1 = v.clone(),
                None => headers.push((k.clone(), v.clone())),
            }
        }
        RawRequest {
            method: req.method.clone(),
            target: req.request_target(),
            headers,
            body: req.body.clone(),
        }
    }

    /// The request as written, with the secrets of the scan replaced by `[redacted]`: cookie
    /// values from the jar (session cookies) and the values of `--header` headers, unless the
    /// request itself set them (an injection point's payload stays visible). Reports keep
    /// evidence for a long time and travel; session tokens must not.
    pub fn redacted_request(&self, req: &Request) -> RawRequest {
        let mut raw = self.raw_request(req);
        for (k, v) in &mut raw.headers {
            if k.eq_ignore_ascii_case("cookie") {
                let parts: Vec<String> = v
                    .split("; ")
                    .map(|pair| match pair.split_once('=') {
                        Some((name, value)) => {
                            if req.cookie_overrides.iter().any(|(n, _)| n == name) {
                                format!("{name}={value}")
                            } else {
                                format!("{name}=[redacted]")
                            }
                        }
                        None => pair.to_owned(),
                    })
                    .collect();
                *v = parts.join("; ");
            } else if self
                .cfg
                .extra_headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case(k))
                && !req.headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(k))
            {
                *v = "[redacted]".into();
            }
        }
        raw
    }

    /// Sends one request and reads its response, within every limit of the scan.
    pub async fn send(&self, req: &Request) -> Result<Response> {
        let url = req.url.as_str();
        let n = self.sent.fetch_add(1, Ordering::SeqCst);
        if n >= self.cfg.max_requests {
            self.sent.fetch_sub(1, Ordering::SeqCst);
            return Err(WebscanError::RequestBudget {
                limit: self.cfg.max_requests,
            });
        }
        self.give_back_if_late()?;
        let _permit = self
            .inflight
            .acquire()
            .await
            .map_err(|_| WebscanError::Deadline {
                secs: self.cfg.deadline_secs,
            })?;
        let _ticket = self.rate.acquire().await;
        self.give_back_if_late()?;
        let raw = self.raw_request(req);
        let host = host_header(&req.url);
        let bytes = raw.encode(&host);
        let origin = req.url.origin().ascii_serialization();
        let limit = self
            .cfg
            .request_timeout
            .min(self.cfg.deadline.saturating_duration_since(Instant::now()))
            .max(Duration::from_millis(1));
        let started = Instant::now();
        let pooled = self.take_pooled(&origin);
        let was_pooled = pooled.is_some();
        let attempt = tokio::time::timeout(
            limit,
            self.exchange(pooled, req, &origin, &raw.method, &bytes),
        )
        .await;
        let result = match attempt {
            Ok(Err(Retry::Stale)) if was_pooled => {
                // A keep-alive connection the server had closed: one fresh connection, which is
                // one more request at the server, so it waits for its own slot too.
                let _retry_ticket = self.rate.acquire().await;
                let left = limit.saturating_sub(started.elapsed());
                match tokio::time::timeout(
                    left,
                    self.exchange(None, req, &origin, &raw.method, &bytes),
                )
                .await
                {
                    Ok(r) => r,
                    Err(_) => Err(Retry::Fatal(timeout(url, limit))),
                }
            }
            Ok(r) => r,
            Err(_) => Err(Retry::Fatal(timeout(url, limit))),
        };
        let (mut resp, conn) = match result {
            Ok(x) => x,
            Err(Retry::Fatal(e)) => return Err(e),
            Err(Retry::Stale) => {
                return Err(WebscanError::Protocol {
                    url: url.to_owned(),
                    reason: "connection closed before a response".into(),
                })
            }
        };
        resp.elapsed = started.elapsed();
        if let Some(c) = conn {
            let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
            if pool.len() < POOL_MAX {
                pool.push(c);
            }
        }
        if !req.no_jar {
            for sc in resp.headers_named("set-cookie") {
                if let Some((name, value)) = parse_set_cookie(sc) {
                    self.set_cookie(&name, &value);
                }
            }
        }
        Ok(resp)
    }

    /// Resolves `host` and connects to the first address that answers. With `allowed_nets` set,
    /// a name with any address outside them is refused before a packet is sent to it (the same
    /// rule as the daemon's scope guard, applied again at connect time).
    pub async fn tcp_connect(&self, host: &str, port: u16) -> std::io::Result<TcpStream> {
        let addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host((host, port))
            .await?
            .take(64)
            .collect();
        if !self.cfg.allowed_nets.is_empty() {
            if let Some(a) = addrs
                .iter()
                .find(|a| !self.cfg.allowed_nets.iter().any(|n| n.contains(&a.ip())))
            {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    format!("{host} resolves to {}, outside the scan scope", a.ip()),
                ));
            }
        }
        let mut last = None;
        for a in &addrs {
            match TcpStream::connect(a).await {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{host} resolves to no address"),
            )
        }))
    }

    fn take_pooled(&self, origin: &str) -> Option<Conn> {
        let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        let i = pool.iter().position(|c| c.origin == origin)?;
        Some(pool.swap_remove(i))
    }

    async fn connect(&self, url: &Url, origin: &str) -> Result<Conn> {
        let host = url.host_str().unwrap_or_default();
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port = url.port_or_known_default().unwrap_or(80);
        let tcp = self
            .tcp_connect(host, port)
            .await
            .map_err(|e| WebscanError::io("connect to", url.as_str(), &e))?;
        let _ = tcp.set_nodelay(true);
        let io: Box<dyn Stream> = if url.scheme() == "https" {
            let name = ServerName::try_from(host.to_owned()).map_err(|e| WebscanError::Tls {
                url: url.to_string(),
                reason: e.to_string(),
            })?;
            let connector = tokio_rustls::TlsConnector::from(self.tls.clone());
            let tls = connector
                .connect(name, tcp)
                .await
                .map_err(|e| WebscanError::Tls {
                    url: url.to_string(),
                    reason: e.to_string(),
                })?;
            Box::new(tls)
        } else {
            Box::new(tcp)
        };
        Ok(Conn {
            origin: origin.to_owned(),
            io,
        })
    }

    async fn exchange(
        &self,
        conn: Option<Conn>,
        req: &Request,
        origin: &str,
        method: &str,
        bytes: &[u8],
    ) -> std::result::Result<(Response, Option<Conn>), Retry> {
        let url = req.url.as_str();
        let mut conn = match conn {
            Some(c) => c,
            None => self.connect(&req.url, origin).await.map_err(Retry::Fatal)?,
        };
        if conn.io.write_all(bytes).await.is_err() || conn.io.flush().await.is_err() {
            return Err(Retry::Stale);
        }
        let mut buf: Vec<u8> = Vec::with_capacity(8192);
        let mut chunk = vec![0u8; 16384];
        let head = loop {
            let n = conn.io.read(&mut chunk).await.map_err(|e| {
                if buf.is_empty() {
                    Retry::Stale
                } else {
                    Retry::Fatal(WebscanError::io("read from", url, &e))
                }
            })?;
            if n == 0 {
                if buf.is_empty() {
                    return Err(Retry::Stale);
                }
                return Err(Retry::Fatal(WebscanError::Protocol {
                    url: url.to_owned(),
                    reason: "connection closed inside the response head".into(),
                }));
            }
            buf.extend_from_slice(&chunk[..n]);
            match wire::parse_head(&buf) {
                Ok(h) if (100..200).contains(&h.status) && h.status != 101 => {
                    // Interim responses (100 Continue) precede the real one.
                    buf.drain(..h.len);
                }
                Ok(h) => break h,
                Err(HeadError::Partial) => {
                    if buf.len() > self.cfg.max_head {
                        return Err(Retry::Fatal(WebscanError::HeadTooLarge {
                            url: url.to_owned(),
                            limit: self.cfg.max_head,
                        }));
                    }
                }
                Err(HeadError::Invalid(reason)) => {
                    return Err(Retry::Fatal(WebscanError::Protocol {
                        url: url.to_owned(),
                        reason,
                    }))
                }
            }
        };
        if head.len > self.cfg.max_head {
            return Err(Retry::Fatal(WebscanError::HeadTooLarge {
                url: url.to_owned(),
                limit: self.cfg.max_head,
            }));
        }
        let framing = wire::framing(method, &head).map_err(|e| {
            Retry::Fatal(WebscanError::Protocol {
                url: url.to_owned(),
                reason: format!("{e:?}"),
            })
        })?;
        let mut raw = buf.split_off(head.len);
        let cap = self.cfg.max_body;
        let mut body = Vec::new();
        let mut truncated = false;
        let mut complete = false;
        match framing {
            Framing::None => complete = raw.is_empty(),
            Framing::Length(_) | Framing::UntilClose => {
                // A body read to the close is one of unbounded length: only the cap ends it.
                let want = match framing {
                    Framing::Length(len) => usize::try_from(len).unwrap_or(usize::MAX),
                    _ => usize::MAX,
                };
                loop {
                    if raw.len() >= want {
                        complete = raw.len() == want;
                        raw.truncate(want);
                        break;
                    }
                    if raw.len() >= cap {
                        truncated = true;
                        break;
                    }
                    if !read_more(&mut conn, &mut chunk, &mut raw, url).await? {
                        break;
                    }
                }
            }
            Framing::Chunked => {
                let mut st = Chunked::default();
                loop {
                    wire::decode_chunks(&raw, &mut st, &mut body).map_err(|reason| {
                        Retry::Fatal(WebscanError::Protocol {
                            url: url.to_owned(),
                            reason,
                        })
                    })?;
                    // Consumed framing bytes are dropped so the raw buffer stays small.
                    raw.drain(..st.pos);
                    st.pos = 0;
                    if st.done {
                        complete = raw.is_empty();
                        break;
                    }
                    if body.len() >= cap {
                        truncated = true;
                        break;
                    }
                    if !read_more(&mut conn, &mut chunk, &mut raw, url).await? {
                        break;
                    }
                }
            }
        }
        if framing != Framing::Chunked {
            body = raw;
        }
        if body.len() > cap {
            body.truncate(cap);
            truncated = true;
        }
        let close = head
            .get("connection")
            .is_some_and(|c| c.to_ascii_lowercase().contains("close"));
        let keep = complete && !truncated && !close && framing != Framing::UntilClose;
        Ok((
            Response {
                status: head.status,
                headers: head.headers,
                body,
                truncated,
                elapsed: Duration::ZERO,
            },
            keep.then_some(conn),
        ))
    }
}

enum Retry {
    /// The connection was closed before any response byte (a stale keep-alive connection).
    Stale,
    Fatal(WebscanError),
}

/// Appends one read (at most `chunk`'s size) to `raw`; false at the end of the stream.
async fn read_more(
    conn: &mut Conn,
    chunk: &mut [u8],
    raw: &mut Vec<u8>,
    url: &str,
) -> std::result::Result<bool, Retry> {
    let n = conn
        .io
        .read(chunk)
        .await
        .map_err(|e| Retry::Fatal(WebscanError::io("read from", url, &e)))?;
    raw.extend_from_slice(chunk.get(..n).unwrap_or_default());
    Ok(n > 0)
}

fn timeout(url: &str, limit: Duration) -> WebscanError {
    WebscanError::Timeout {
        url: url.to_owned(),
        phase: "request",
        ms: u64::try_from(limit.as_millis()).unwrap_or(u64::MAX),
    }
}

/// The Host header for a URL (port only when not the scheme's default).
pub fn host_header(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_owned(),
    }
}

/// Name and value of a `Set-Cookie` header.
pub fn parse_set_cookie(v: &str) -> Option<(String, String)> {
    let first = v.split(';').next()?;
    let (name, value) = first.split_once('=')?;
    let name = name.trim();
    if name.is_empty() || name.len() > 256 {
        return None;
    }
    Some((name.to_owned(), value.trim().to_owned()))
}

fn tls_config(insecure: bool) -> Result<Arc<rustls::ClientConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = picket_netscan::service::detect::AcceptAnyCertificate::for_provider(&provider);
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| WebscanError::Tls {
            url: String::new(),
            reason: e.to_string(),
        })?;
    let cfg = if insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth()
    } else {
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    Ok(Arc::new(cfg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn rate_limit_holds_for_any_arrival_between_start_and_answer() {
        // 16 concurrent requests whose answers take 0 to 300 ms; a request may arrive at the
        // server at any moment between its start and its answer. Whatever those moments are,
        // no one-second window may hold more than 50: checked on the intervals themselves.
        let rl = Arc::new(RateLimiter::new(Some(50)));
        let spans = Arc::new(Mutex::new(Vec::new()));
        let start = tokio::time::Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for w in 0..16u64 {
            let (rl, spans) = (rl.clone(), spans.clone());
            tasks.spawn(async move {
                for i in 0..20u64 {
                    let t = rl.acquire().await;
                    let s = start.elapsed();
                    tokio::time::sleep(Duration::from_millis((w * 37 + i * 91) % 300)).await;
                    let e = start.elapsed();
                    drop(t);
                    spans.lock().unwrap_or_else(|p| p.into_inner()).push((s, e));
                }
            });
        }
        while tasks.join_next().await.is_some() {}
        let spans = spans.lock().unwrap_or_else(|p| p.into_inner()).clone();
        assert_eq!(spans.len(), 320);
        // Worst case for a window starting at t: every request whose [start, answer] meets
        // [t, t+1s) could arrive inside it. Windows starting at each answer time cover all cases.
        for &(_, e0) in &spans {
            let lo = e0.saturating_sub(Duration::from_secs(1));
            for t in [lo, e0] {
                let meets = spans
                    .iter()
                    .filter(|(s, e)| *e >= t && *s < t + Duration::from_secs(1))
                    .count();
                assert!(
                    meets <= 51,
                    "{meets} requests could arrive in the second from {t:?}"
                );
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn rate_limiter_spaces_starts() {
        let rl = RateLimiter::new(Some(100));
        let start = tokio::time::Instant::now();
        for _ in 0..100 {
            drop(rl.acquire().await);
        }
        assert!(
            start.elapsed() >= Duration::from_millis(980),
            "{:?}",
            start.elapsed()
        );
    }

    #[test]
    fn set_cookie_name_and_value() {
        assert_eq!(
            parse_set_cookie("sid=abc; Path=/; HttpOnly"),
            Some(("sid".into(), "abc".into()))
        );
        assert_eq!(parse_set_cookie("=x"), None);
        assert_eq!(parse_set_cookie("novalue"), None);
    }
}
