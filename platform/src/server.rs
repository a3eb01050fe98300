//! The running platform: shared state, the TLS accept loop, and HTTP serving.
//!
//! Why our own accept loop rather than `axum::serve`: the appliance API authenticates by client
//! certificate, so each connection's verified peer certificate must reach the handlers. The loop
//! does the rustls handshake itself, reads the certificate once per connection, and inserts it into
//! every request of that connection as a [`Peer`] extension.
//!
//! Limits, so no client can exhaust the process: at most `max_connections` connections (further
//! ones are closed at accept), 10 s for the TLS handshake, 20 s to send a request head (hyper's
//! header timer also closes idle keep-alive connections), 90 s per request including its body
//! (a long-poll holds at most 60 s), bodies capped at [`api::MAX_BODY_BYTES`], heads at 64 KiB.

use crate::ca::{peer_identity, Ca, PeerIdentity};
use crate::config::Config;
use crate::error::PlatformError;
use crate::store::{self, Store};
use axum::body::Body;
use axum::http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use picket_model::api;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore};
use tower::ServiceExt;

pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(20);
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(90);
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// An appliance is shown online for this long after its last call.
pub const ONLINE_WINDOW_SECS: i64 = 120;
/// Console sessions last this long.
pub const SESSION_SECS: i64 = 8 * 3600;
const MAX_SESSIONS: usize = 1024;

/// The verified client certificate of the connection a request came on (`None`: no certificate,
/// which only enrollment, the operator API and the console accept).
#[derive(Debug, Clone)]
pub struct Peer(pub Option<Arc<PeerIdentity>>);

#[derive(Debug, Default)]
struct Live {
    notify: Arc<Notify>,
    open_polls: u32,
    last_seen: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct Session {
    pub csrf: String,
    pub expires_at: i64,
}

/// Everything a handler needs.
#[derive(Debug)]
pub struct Platform {
    pub config: Config,
    pub store: Store,
    pub ca: Ca,
    admin_token: String,
    live: Mutex<HashMap<String, Live>>,
    sessions: Mutex<HashMap<String, Session>>,
}

pub type Shared = Arc<Platform>;

/// Decrements the open-poll count when a long-poll ends, however it ends.
#[derive(Debug)]
pub struct PollGuard {
    platform: Shared,
    appliance: String,
}

impl Drop for PollGuard {
    fn drop(&mut self) {
        let now = store::now();
        if let Ok(mut live) = self.platform.live.lock() {
            if let Some(l) = live.get_mut(&self.appliance) {
                l.open_polls = l.open_polls.saturating_sub(1);
                l.last_seen = Some(now);
            }
        }
    }
}

impl Platform {
    /// Opens (or creates) the state directory: CA, store and admin token.
    pub fn open(config: Config, state_dir: &Path) -> Result<Platform, PlatformError> {
        {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(state_dir)
                .map_err(|e| PlatformError::io("creating", state_dir, e))?;
        }
        let ca = Ca::open_or_create(state_dir)?;
        let store = Store::open(state_dir, config.cache_bytes)?;
        let admin_token = load_admin_token(state_dir, config.admin_token_file.as_deref())?;
        Ok(Platform {
            config,
            store,
            ca,
            admin_token,
            live: Mutex::new(HashMap::new()),
            sessions: Mutex::new(HashMap::new()),
        })
    }

    /// Constant-time comparison with the admin token.
    pub fn admin_token_ok(&self, given: &str) -> bool {
        let a = self.admin_token.as_bytes();
        let b = given.as_bytes();
        let mut diff = a.len() ^ b.len();
        for (i, x) in a.iter().enumerate() {
            diff |= usize::from(x ^ b.get(i).copied().unwrap_or(0));
        }
        diff == 0
    }

    fn with_live<R>(&self, appliance: &str, f: impl FnOnce(&mut Live) -> R) -> Option<R> {
        let mut live = self.live.lock().ok()?;
        Some(f(live.entry(appliance.to_string()).or_default()))
    }

    /// Records that the appliance called now.
    pub fn touch(&self, appliance: &str) {
        let now = store::now();
        self.with_live(appliance, |l| l.last_seen = Some(now));
    }

    pub fn notifier(&self, appliance: &str) -> Arc<Notify> {
        self.with_live(appliance, |l| l.notify.clone())
            .unwrap_or_default()
    }

    /// Wakes the appliance's open long-polls (a job or command was created for it).
    pub fn wake(&self, appliance: &str) {
        if let Some(n) = self.with_live(appliance, |l| l.notify.clone()) {
            n.notify_waiters();
        }
    }

    pub fn poll_opened(self: &Arc<Self>, appliance: &str) -> PollGuard {
        self.with_live(appliance, |l| l.open_polls = l.open_polls.saturating_add(1));
        PollGuard {
            platform: self.clone(),
            appliance: appliance.to_string(),
        }
    }

    /// (online, last seen) as the live tracker knows them.
    pub fn liveness(&self, appliance: &str) -> (bool, Option<i64>) {
        let now = store::now();
        let Ok(live) = self.live.lock() else {
            return (false, None);
        };
        match live.get(appliance) {
            Some(l) => (
                l.open_polls > 0 || l.last_seen.is_some_and(|t| now - t < ONLINE_WINDOW_SECS),
                l.last_seen,
            ),
            None => (false, None),
        }
    }

    pub fn open_polls(&self) -> u64 {
        self.live
            .lock()
            .map(|l| l.values().map(|v| u64::from(v.open_polls)).sum())
            .unwrap_or(0)
    }

    pub fn new_session(&self) -> Result<(String, Session), PlatformError> {
        let id = random_token(32)?;
        let session = Session {
            csrf: random_token(32)?,
            expires_at: store::now() + SESSION_SECS,
        };
        let mut sessions = self
            .sessions
            .lock()
            .map_err(|_| PlatformError::Unavailable("session table poisoned".into()))?;
        let now = store::now();
        sessions.retain(|_, s| s.expires_at > now);
        if sessions.len() >= MAX_SESSIONS {
            return Err(PlatformError::Unavailable(
                "too many console sessions".into(),
            ));
        }
        sessions.insert(id.clone(), session.clone());
        Ok((id, session))
    }

    pub fn session(&self, id: &str) -> Option<Session> {
        let sessions = self.sessions.lock().ok()?;
        sessions
            .get(id)
            .filter(|s| s.expires_at > store::now())
            .cloned()
    }

    pub fn end_session(&self, id: &str) {
        if let Ok(mut s) = self.sessions.lock() {
            s.remove(id);
        }
    }
}

pub fn random_token(bytes: usize) -> Result<String, PlatformError> {
    use ring::rand::SecureRandom;
    let mut b = vec![0u8; bytes];
    ring::rand::SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| PlatformError::Unavailable("system random generator failed".into()))?;
    Ok(crate::ca::hex(&b))
}

/// The operators' token: from `admin_token_file`, or `STATE_DIR/admin-token` (created 0600).
pub fn load_admin_token(state_dir: &Path, file: Option<&Path>) -> Result<String, PlatformError> {
    let path: PathBuf = match file {
        Some(p) => p.to_path_buf(),
        None => {
            let p = state_dir.join("admin-token");
            if !p.exists() {
                crate::ca::write_private(&p, format!("{}\n", random_token(32)?).as_bytes(), 0o600)?;
            }
            p
        }
    };
    let text =
        std::fs::read_to_string(&path).map_err(|e| PlatformError::io("reading", &path, e))?;
    let token = text.trim().to_string();
    if token.len() < 16 {
        return Err(PlatformError::Config {
            path,
            detail: "admin token shorter than 16 characters".into(),
        });
    }
    Ok(token)
}

/// The rustls server configuration: our server certificate, client certificates optional but
/// verified against the enrollment CA when presented (expired or foreign ones fail the handshake).
pub fn tls_config(ca: &Ca, names: &[String]) -> Result<Arc<ServerConfig>, PlatformError> {
    let tls = |context: &'static str| {
        move |e: rustls::Error| PlatformError::Tls {
            context,
            detail: e.to_string(),
        }
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    roots
        .add(ca.cert_der().clone())
        .map_err(tls("adding the CA to the client roots"))?;
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .allow_unauthenticated()
        .build()
        .map_err(|e| PlatformError::Tls {
            context: "client verifier",
            detail: e.to_string(),
        })?;
    let (chain, key) = ca.issue_server(names)?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(tls("protocol versions"))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(tls("server certificate"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A bound listener and what serving needs; [`Server::run`] serves until `shutdown` completes.
#[derive(Debug)]
pub struct Server {
    pub listener: TcpListener,
    pub platform: Shared,
    pub tls: Arc<ServerConfig>,
}

impl Server {
    pub async fn bind(platform: Shared) -> Result<Server, PlatformError> {
        let addr = platform.config.listen;
        let tls = tls_config(&platform.ca, &platform.config.server_names)?;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| PlatformError::io("binding", addr.to_string(), e))?;
        Ok(Server {
            listener,
            platform,
            tls,
        })
    }

    pub fn local_addr(&self) -> Result<SocketAddr, PlatformError> {
        self.listener
            .local_addr()
            .map_err(|e| PlatformError::io("reading the bound address of", "listener", e))
    }

    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<(), PlatformError> {
        let router = crate::routes::try_router(self.platform.clone())?;
        let acceptor = tokio_rustls::TlsAcceptor::from(self.tls);
        let slots = Arc::new(Semaphore::new(self.platform.config.max_connections));
        tokio::pin!(shutdown);
        loop {
            let (tcp, _addr) = tokio::select! {
                r = self.listener.accept() => match r {
                    Ok(c) => c,
                    Err(e) => {
                        // EMFILE and the like: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            let Ok(permit) = slots.clone().try_acquire_owned() else {
                tracing::warn!("connection limit reached; closing a new connection");
                drop(tcp);
                continue;
            };
            let _ = tcp.set_nodelay(true);
            let acceptor = acceptor.clone();
            let router = router.clone();
            tokio::spawn(async move {
                let _permit = permit;
                let stream =
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            tracing::debug!(error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => return,
                    };
                let peer = Peer(
                    stream
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|c| c.first())
                        .and_then(|c| peer_identity(c.as_ref()))
                        .map(Arc::new),
                );
                let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
                    req.extensions_mut().insert(peer.clone());
                    let router = router.clone();
                    async move {
                        match tokio::time::timeout(
                            REQUEST_TIMEOUT,
                            router.oneshot(req.map(Body::new)),
                        )
                        .await
                        {
                            Ok(r) => r,
                            Err(_) => Ok(timeout_response()),
                        }
                    }
                });
                let mut builder = hyper::server::conn::http1::Builder::new();
                builder
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_TIMEOUT)
                    .max_buf_size(MAX_HEAD_BYTES)
                    .keep_alive(true);
                if let Err(e) = builder
                    .serve_connection(TokioIo::new(stream), service)
                    .await
                {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
            });
        }
        // Bounded: a stop request must end the process even if the disk no longer answers.
        match tokio::time::timeout(Duration::from_secs(10), self.platform.store.flush()).await {
            Ok(r) => r,
            Err(_) => Err(PlatformError::Unavailable(
                "the store did not flush within 10 s at shutdown".into(),
            )),
        }
    }
}

fn timeout_response() -> Response<Body> {
    let body = serde_json::to_vec(&api::ApiError {
        error: "unavailable".into(),
        detail: "request took too long".into(),
    })
    .unwrap_or_default();
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    r
}
