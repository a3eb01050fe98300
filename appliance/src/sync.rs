//! The HTTPS client of the platform API (`model::api`): reqwest over our own rustls
//! configuration (see `tls`), through an optional HTTP CONNECT proxy with Basic auth.
//!
//! Why reqwest with `use_preconfigured_tls`: it brings connection reuse and the CONNECT tunnel,
//! while the trust decisions stay ours (pinned CA, client certificate). Every answer body is read
//! with a cap ([`api::MAX_BODY_BYTES`]); every call has a deadline.

use crate::app::AppError;
use crate::secrets::SecretString;
use picket_model::api::{self, ApiError};
use serde::{de::DeserializeOwned, Serialize};
use std::time::Duration;

/// Deadline of ordinary calls (a long-poll adds its wait).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// An HTTP CONNECT proxy and its credentials.
#[derive(Debug, Clone)]
pub struct ProxySpec {
    pub url: String,
    pub username: Option<String>,
    pub password: Option<SecretString>,
}

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// No answer: DNS, TCP, proxy, TLS or timeout.
    #[error("{path}: {reason}")]
    Transport { path: String, reason: String },
    /// The platform answered with an error status.
    #[error("{path}: HTTP {status}: {}: {}", error.error, error.detail)]
    Status {
        path: String,
        status: u16,
        error: ApiError,
    },
    /// The answer could not be read or decoded.
    #[error("{path}: bad answer: {reason}")]
    Body { path: String, reason: String },
}

impl CallError {
    /// Whether retrying later may help (as opposed to a refusal that will repeat).
    pub fn is_transient(&self) -> bool {
        match self {
            CallError::Transport { .. } | CallError::Body { .. } => true,
            CallError::Status { status, .. } => *status >= 500 || *status == 429 || *status == 408,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            CallError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

impl From<CallError> for AppError {
    fn from(e: CallError) -> Self {
        match e {
            CallError::Status { error, .. } if error.error.starts_with("code_") => {
                AppError::EnrollRefused {
                    code: error.error,
                    detail: error.detail,
                }
            }
            CallError::Transport { path, reason } | CallError::Body { path, reason } => {
                AppError::Platform { url: path, reason }
            }
            e @ CallError::Status { .. } => AppError::Platform {
                url: String::new(),
                reason: e.to_string(),
            },
        }
    }
}

/// A client of one platform.
#[derive(Debug, Clone)]
pub struct PlatformClient {
    http: reqwest::Client,
    base: String,
}

/// The full chain of an error's causes, for messages (reqwest hides the interesting part —
/// "invalid peer certificate", "connection refused" — in its sources).
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    let mut n = 0;
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
        n += 1;
        if n > 8 {
            break;
        }
    }
    s
}

impl PlatformClient {
    /// `base_url`: `https://host:port` (no path).
    pub fn new(
        base_url: &str,
        tls: rustls::ClientConfig,
        proxy: Option<&ProxySpec>,
    ) -> Result<PlatformClient, AppError> {
        let mut b = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .connect_timeout(CONNECT_TIMEOUT)
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(2)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("picket/", env!("CARGO_PKG_VERSION")))
            .https_only(true);
        b = match proxy {
            Some(p) => {
                let mut px = reqwest::Proxy::all(&p.url).map_err(|e| AppError::Config {
                    path: "proxy.url".into(),
                    reason: chain(&e),
                })?;
                if let Some(user) = &p.username {
                    px = px.basic_auth(user, p.password.as_ref().map_or("", |s| s.expose()));
                }
                b.proxy(px)
            }
            // Environment proxies (HTTPS_PROXY) are not followed silently: only configured ones.
            None => b.no_proxy(),
        };
        let http = b.build().map_err(|e| AppError::Platform {
            url: base_url.to_owned(),
            reason: chain(&e),
        })?;
        Ok(PlatformClient {
            http,
            base: base_url.trim_end_matches('/').to_owned(),
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}{}", self.base, api::API_PREFIX, path)
    }

    async fn send<T: DeserializeOwned>(
        &self,
        path: &str,
        req: reqwest::RequestBuilder,
    ) -> Result<T, CallError> {
        let resp = req.send().await.map_err(|e| CallError::Transport {
            path: path.to_owned(),
            reason: chain(&e),
        })?;
        let status = resp.status().as_u16();
        let body = read_bounded(resp, path).await?;
        if !(200..300).contains(&status) {
            let error = serde_json::from_slice::<ApiError>(&body).unwrap_or_else(|_| ApiError {
                error: "http".into(),
                detail: String::from_utf8_lossy(body.get(..200.min(body.len())).unwrap_or(&[]))
                    .into_owned(),
            });
            return Err(CallError::Status {
                path: path.to_owned(),
                status,
                error,
            });
        }
        serde_json::from_slice(&body).map_err(|e| CallError::Body {
            path: path.to_owned(),
            reason: e.to_string(),
        })
    }

    /// POST a JSON body, decode the JSON answer.
    pub async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        idempotency_key: Option<&str>,
    ) -> Result<T, CallError> {
        let mut req = self
            .http
            .post(self.url(path))
            .json(body)
            .timeout(CALL_TIMEOUT);
        if let Some(k) = idempotency_key {
            req = req.header("Idempotency-Key", k);
        }
        self.send(path, req).await
    }

    /// GET, decode the JSON answer; `timeout` bounds the whole call.
    pub async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        timeout: Duration,
    ) -> Result<T, CallError> {
        let req = self.http.get(self.url(path)).timeout(timeout);
        self.send(path, req).await
    }

    pub async fn enroll(&self, r: &api::EnrollRequest) -> Result<api::EnrollResponse, CallError> {
        self.post("/enroll", r, None).await
    }

    pub async fn poll(&self, wait_secs: u64) -> Result<api::PollResponse, CallError> {
        let wait = wait_secs.min(api::MAX_POLL_WAIT_SECS);
        self.get(
            &format!("/appliance/poll?wait={wait}"),
            Duration::from_secs(wait) + CALL_TIMEOUT,
        )
        .await
    }

    pub async fn heartbeat(&self, hb: &api::Heartbeat) -> Result<api::Ack, CallError> {
        self.post("/appliance/heartbeat", hb, None).await
    }

    pub async fn job_status(
        &self,
        job_id: &str,
        u: &api::JobStatusUpdate,
    ) -> Result<api::Ack, CallError> {
        self.post(
            &format!("/appliance/jobs/{}/status", path_seg(job_id)),
            u,
            None,
        )
        .await
    }

    pub async fn upload(&self, c: &api::ResultChunk) -> Result<api::IngestResponse, CallError> {
        self.post("/appliance/results", c, Some(&c.key())).await
    }

    pub async fn command_result(
        &self,
        command_id: &str,
        r: &api::CommandResult,
    ) -> Result<api::Ack, CallError> {
        self.post(
            &format!("/appliance/commands/{}/result", path_seg(command_id)),
            r,
            None,
        )
        .await
    }

    pub async fn renew(&self, r: &api::RenewRequest) -> Result<api::RenewResponse, CallError> {
        self.post("/appliance/renew", r, None).await
    }
}

/// An id as one path segment: ids are platform-chosen, so anything outside a safe alphabet is
/// percent-encoded rather than trusted.
fn path_seg(id: &str) -> String {
    id.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn read_bounded(mut resp: reqwest::Response, path: &str) -> Result<Vec<u8>, CallError> {
    let mut body = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(c)) => {
                if body.len() + c.len() > api::MAX_BODY_BYTES {
                    return Err(CallError::Body {
                        path: path.to_owned(),
                        reason: format!("answer larger than {} bytes", api::MAX_BODY_BYTES),
                    });
                }
                body.extend_from_slice(&c);
            }
            Ok(None) => return Ok(body),
            Err(e) => {
                return Err(CallError::Transport {
                    path: path.to_owned(),
                    reason: chain(&e),
                })
            }
        }
    }
}

/// Exponential backoff with full jitter: a random wait in [base/2, base], base doubling per
/// consecutive failure up to `max`.
#[derive(Debug, Clone)]
pub struct Backoff {
    failures: u32,
    max: Duration,
}

impl Backoff {
    pub fn new(max: Duration) -> Backoff {
        Backoff { failures: 0, max }
    }

    pub fn reset(&mut self) {
        self.failures = 0;
    }

    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// The wait before the next attempt, counting this failure.
    pub fn next_wait(&mut self) -> Duration {
        use rand::Rng;
        self.failures = self.failures.saturating_add(1);
        let base = Duration::from_millis(500)
            .saturating_mul(1u32 << self.failures.min(16))
            .min(self.max);
        let half = base / 2;
        let jitter = rand::thread_rng().gen_range(0..=half.as_millis().max(1) as u64);
        half + Duration::from_millis(jitter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_caps() {
        let mut b = Backoff::new(Duration::from_secs(60));
        let mut last_cap = Duration::ZERO;
        for i in 1..=12u32 {
            let w = b.next_wait();
            let cap = Duration::from_millis(500)
                .saturating_mul(1 << i)
                .min(Duration::from_secs(60));
            assert!(
                w >= cap / 2 && w <= cap + Duration::from_millis(1),
                "{i}: {w:?}"
            );
            assert!(cap >= last_cap);
            last_cap = cap;
        }
        b.reset();
        assert!(b.next_wait() <= Duration::from_millis(1001));
    }

    #[test]
    fn ids_cannot_escape_their_path_segment() {
        assert_eq!(path_seg("job-1_a.b"), "job-1_a.b");
        assert_eq!(path_seg("../x?y"), "..%2Fx%3Fy");
    }
}
