//! The thin async layer of service detection: connect, send a probe, read a bounded answer with
//! RTT-derived timeouts, and speak TLS through rustls (plus hand-built hellos for TLS 1.0/1.1).
//!
//! Why here and not in the matchers: everything that waits lives in this file, so the waiting
//! policy (how long, how many connections, when to give up) is in one place, and the matchers
//! stay pure.
//!
//! Per port, in order: TLS first when the port suggests it; a greeting wait (long on ports of
//! server-first protocols, short on unknown ports, none where the client speaks first); the
//! probes the port suggests, then HTTP; TLS, when nothing answered in the clear or the answer
//! asked for TLS; then the remaining probes all at once on separate connections. Every wait is
//! `rtt.app_timeout(think)` and the whole port is bounded by [`PORT_BUDGET`].

use super::probes::{self, Greeting, Plan, Probe, PARALLEL_FALLBACK};
use super::{cert, named, text, tls};
use crate::timing::RttEstimator;
use picket_model::{Service, TlsInfo};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use std::collections::BTreeSet;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout, timeout_at, Instant};

/// Most bytes read from one answer. A 10 MB banner costs us 64 KiB.
pub const READ_CAP: usize = 64 * 1024;
/// Upper bound of one port's detection, whatever the RTT says.
pub const PORT_BUDGET: Duration = Duration::from_secs(12);
/// Think time of a server-first protocol on its own port (only a silent port waits this long).
const GREETING_EXPECTED_THINK: Duration = Duration::from_millis(2000);
/// Gap after the last byte at which an answer is taken as finished.
const IDLE_THINK: Duration = Duration::from_millis(40);
/// Longest we keep reading one answer after its first byte (defeats servers that drip bytes).
const ANSWER_SPREAD_THINK: Duration = Duration::from_millis(800);
/// Connection set-up beyond the RTT (the port scan already saw the port open).
const CONNECT_THINK: Duration = Duration::from_millis(300);
/// TLS handshake beyond the RTT: key exchange and signing on a slow server.
const TLS_THINK: Duration = Duration::from_millis(1000);

/// A byte stream we can probe: plain TCP or TLS over TCP.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}
type BoxIo = Box<dyn Io>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    Plain,
    Tls,
}

/// Everything a port's probes share.
#[derive(Debug, Clone)]
struct Ctx {
    addr: SocketAddr,
    rtt: RttEstimator,
    /// Host header value.
    host: String,
    /// DNS name for SNI, when the target was given by name.
    sni: Option<String>,
    deadline: Instant,
}

impl Ctx {
    fn wait(&self, think: Duration) -> Duration {
        self.rtt.app_timeout(think)
    }
    fn expired(&self) -> bool {
        Instant::now() >= self.deadline
    }
    fn until(&self, d: Duration) -> Instant {
        (Instant::now() + d).min(self.deadline)
    }
}

/// What one round of probing learned.
#[derive(Debug, Default)]
struct Outcome {
    /// An identified service and the bytes it was identified from.
    found: Option<(Service, Vec<u8>)>,
    /// The first bytes any probe drew, for the `unknown` fallback.
    seen: Option<Vec<u8>>,
    /// A clear-text answer asked for TLS.
    tls_signal: bool,
    /// Connecting failed with "refused": the port closed meanwhile.
    refused: bool,
}

impl Outcome {
    fn saw(&mut self, data: Vec<u8>) {
        if self.seen.is_none() {
            self.seen = Some(data);
        }
    }
}

/// Identifies the service on one open TCP port. `hostname` (when the target was a name) is used
/// for SNI and the Host header.
pub async fn detect_one(
    addr: SocketAddr,
    rtt: RttEstimator,
    hostname: Option<&str>,
) -> Option<(Service, Option<TlsInfo>)> {
    let sni = hostname
        .filter(|h| {
            !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        })
        .map(str::to_string);
    let host_name = sni.clone().unwrap_or_else(|| match addr {
        SocketAddr::V4(a) => a.ip().to_string(),
        SocketAddr::V6(a) => format!("[{}]", a.ip()),
    });
    let host = if matches!(addr.port(), 80 | 443) {
        host_name
    } else {
        format!("{host_name}:{}", addr.port())
    };
    let ctx = Ctx {
        addr,
        rtt,
        host,
        sni,
        deadline: Instant::now() + PORT_BUDGET,
    };
    // The inner steps all respect ctx.deadline; this outer bound is a backstop.
    timeout(PORT_BUDGET + Duration::from_secs(2), detect_port(&ctx))
        .await
        .ok()
        .flatten()
}

async fn detect_port(ctx: &Ctx) -> Option<(Service, Option<TlsInfo>)> {
    let port = ctx.addr.port();
    let plan = probes::plan_for(port);
    let mut tls_done = false;
    if plan.tls_first {
        tls_done = true;
        if let Some(found) = tls_flow(ctx, &plan).await {
            return Some(found);
        }
    }
    let mut seq = plan.probes.clone();
    if !seq.contains(&Probe::Http) {
        seq.push(Probe::Http);
    }
    let first = run_sequential(ctx, Transport::Plain, plan.greeting, &seq, None).await;
    if let Some((s, raw)) = first.found {
        return Some((with_banner(s, &raw), None));
    }
    if first.refused && first.seen.is_none() {
        return None;
    }
    let rest: Vec<Probe> = PARALLEL_FALLBACK
        .iter()
        .copied()
        .filter(|p| !seq.contains(p))
        .collect();
    let second = if !tls_done && first.tls_signal {
        if let Some(found) = tls_flow(ctx, &plan).await {
            return Some(found);
        }
        run_parallel(ctx, Transport::Plain, &rest).await
    } else if !tls_done && first.seen.is_none() {
        // Silent in the clear: either TLS, or a binary protocol waiting for its own request.
        // Both are tried at once, and whichever identifies the service first ends the other
        // (a clear-text identification means the port is not TLS, and vice versa).
        let tls = tls_flow(ctx, &plan);
        let clear = run_parallel(ctx, Transport::Plain, &rest);
        tokio::pin!(tls, clear);
        let (mut tls_over, mut clear_result) = (false, None);
        // Each branch completes once, so this loop runs at most twice.
        while !(tls_over && clear_result.is_some()) {
            tokio::select! {
                found = &mut tls, if !tls_over => {
                    if found.is_some() {
                        return found;
                    }
                    tls_over = true;
                }
                outcome = &mut clear, if clear_result.is_none() => {
                    if let Some((s, raw)) = outcome.found {
                        return Some((with_banner(s, &raw), None));
                    }
                    clear_result = Some(outcome);
                }
            }
        }
        clear_result.unwrap_or_default()
    } else {
        run_parallel(ctx, Transport::Plain, &rest).await
    };
    if let Some((s, raw)) = second.found {
        return Some((with_banner(s, &raw), None));
    }
    first
        .seen
        .or(second.seen)
        .map(|raw| (with_banner(named("unknown"), &raw), None))
}

fn with_banner(mut s: Service, raw: &[u8]) -> Service {
    s.banner = Some(text::escape_banner(raw));
    s
}

async fn connect(ctx: &Ctx) -> io::Result<TcpStream> {
    let d = ctx.until(ctx.wait(CONNECT_THINK));
    let tcp = timeout_at(d, TcpStream::connect(ctx.addr))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
    // Probes are single small writes; do not let Nagle hold them back.
    let _ = tcp.set_nodelay(true);
    Ok(tcp)
}

async fn open(ctx: &Ctx, transport: Transport) -> io::Result<BoxIo> {
    match transport {
        Transport::Plain => Ok(Box::new(connect(ctx).await?)),
        Transport::Tls => Ok(Box::new(tls_open(ctx).await?.0)),
    }
}

/// Reads one answer: waits `first` for the first byte, then until `complete` says the answer is
/// whole, the peer pauses for an idle gap, [`READ_CAP`] bytes arrived, the peer closes, or the
/// answer has been trickling in for too long.
async fn read_answer<S: AsyncRead + Unpin + ?Sized>(
    s: &mut S,
    first: Duration,
    ctx: &Ctx,
    complete: impl Fn(&[u8]) -> bool,
) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 8192];
    let first_deadline = ctx.until(first);
    let idle = ctx.wait(IDLE_THINK);
    let mut spread_deadline = first_deadline;
    // Each iteration either times out (ending the loop) or reads at least one byte towards the
    // cap, so the loop is bounded by READ_CAP iterations and by the deadlines.
    loop {
        let until = if buf.is_empty() {
            first_deadline
        } else {
            (Instant::now() + idle).min(spread_deadline)
        };
        match timeout_at(until, s.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => {
                if buf.is_empty() {
                    spread_deadline = ctx.until(ctx.wait(ANSWER_SPREAD_THINK));
                }
                let room = READ_CAP - buf.len();
                buf.extend_from_slice(chunk.get(..n.min(room)).unwrap_or_default());
                if buf.len() >= READ_CAP || complete(&buf) {
                    break;
                }
            }
        }
    }
    buf
}

async fn send(ctx: &Ctx, c: &mut BoxIo, payload: &[u8]) -> bool {
    if payload.is_empty() {
        return true;
    }
    let d = ctx.until(ctx.wait(CONNECT_THINK));
    matches!(
        timeout_at(d, async {
            c.write_all(payload).await?;
            c.flush().await
        })
        .await,
        Ok(Ok(()))
    )
}

/// Greeting wait, then `probes` one after another (each on a fresh connection once the previous
/// one has been used).
async fn run_sequential(
    ctx: &Ctx,
    transport: Transport,
    greeting: Greeting,
    probes: &[Probe],
    first: Option<BoxIo>,
) -> Outcome {
    let port = ctx.addr.port();
    let mut out = Outcome::default();
    let mut conn = first;
    let wait = match greeting {
        Greeting::Expected => Some(GREETING_EXPECTED_THINK),
        Greeting::Unknown => Some(Probe::Banner.think()),
        Greeting::NotExpected => None,
    };
    if let Some(think) = wait {
        let mut c = match conn.take() {
            Some(c) => c,
            None => match open(ctx, transport).await {
                Ok(c) => c,
                Err(e) => {
                    out.refused = e.kind() == io::ErrorKind::ConnectionRefused;
                    return out;
                }
            },
        };
        let data = read_answer(&mut c, ctx.wait(think), ctx, |d| Probe::Banner.complete(d)).await;
        if data.is_empty() {
            conn = Some(c); // still unused: the first probe may go on it
        } else {
            if transport == Transport::Plain && probes::wants_tls(&data) {
                out.tls_signal = true;
            } else if let Some(s) = probes::identify(Probe::Banner, port, &data) {
                out.found = Some((s, data));
                return out;
            }
            out.saw(data);
        }
    }
    for &probe in probes {
        if ctx.expired() {
            break;
        }
        let mut c = match conn.take() {
            Some(c) => c,
            None => match open(ctx, transport).await {
                Ok(c) => c,
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                    out.refused = true;
                    break;
                }
                Err(_) => continue,
            },
        };
        if !send(ctx, &mut c, &probe.payload(&ctx.host)).await {
            continue;
        }
        let data = read_answer(&mut c, ctx.wait(probe.think()), ctx, |d| probe.complete(d)).await;
        if data.is_empty() {
            continue;
        }
        if transport == Transport::Plain && probes::wants_tls(&data) {
            out.tls_signal = true;
            out.saw(data);
            break;
        }
        if let Some(s) = probes::identify(probe, port, &data) {
            out.found = Some(refine(ctx, transport, probe, s, data).await);
            return out;
        }
        out.saw(data);
    }
    out
}

/// When a service was recognised from its answer to another protocol's probe, asks it once
/// with its own probe, which may reveal the version; keeps the first result otherwise.
async fn refine(
    ctx: &Ctx,
    transport: Transport,
    asked: Probe,
    found: Service,
    data: Vec<u8>,
) -> (Service, Vec<u8>) {
    let Some(own) = probes::better_probe(&found, asked) else {
        return (found, data);
    };
    if ctx.expired() {
        return (found, data);
    }
    let Ok(mut c) = open(ctx, transport).await else {
        return (found, data);
    };
    if !send(ctx, &mut c, &own.payload(&ctx.host)).await {
        return (found, data);
    }
    let answer = read_answer(&mut c, ctx.wait(own.think()), ctx, |d| own.complete(d)).await;
    match probes::identify(own, ctx.addr.port(), &answer) {
        Some(better) if better.name == found.name => (better, answer),
        _ => (found, data),
    }
}

/// Sends each probe on its own connection, all at once; the first identification in `probes`
/// order wins and the others are cancelled.
async fn run_parallel(ctx: &Ctx, transport: Transport, probes: &[Probe]) -> Outcome {
    let port = ctx.addr.port();
    let mut out = Outcome::default();
    if probes.is_empty() || ctx.expired() {
        return out;
    }
    let mut set = tokio::task::JoinSet::new();
    for &probe in probes {
        let ctx = ctx.clone();
        set.spawn(async move {
            let Ok(mut c) = open(&ctx, transport).await else {
                return (probe, Vec::new());
            };
            if !send(&ctx, &mut c, &probe.payload(&ctx.host)).await {
                return (probe, Vec::new());
            }
            let data =
                read_answer(&mut c, ctx.wait(probe.think()), &ctx, |d| probe.complete(d)).await;
            (probe, data)
        });
    }
    let mut answers: Vec<(Probe, Vec<u8>)> = Vec::new();
    while let Some(joined) = set.join_next().await {
        let Ok((probe, data)) = joined else { continue };
        if data.is_empty() {
            continue;
        }
        if let Some(s) = probes::identify(probe, port, &data) {
            // Dropping the set aborts the probes still running.
            drop(set);
            out.found = Some(refine(ctx, transport, probe, s, data).await);
            return out;
        }
        answers.push((probe, data));
    }
    answers.sort_by_key(|(p, _)| probes.iter().position(|q| q == p));
    if let Some((_, data)) = answers.into_iter().next() {
        out.tls_signal = probes::wants_tls(&data);
        out.saw(data);
    }
    out
}

// ---------------------------------------------------------------------------------------------
// TLS

/// Accepts every certificate: we inspect certificates, we do not trust them. Shared with the web
/// scanner, whose `--insecure` mode tests apps behind internal or self-signed certificates.
#[derive(Debug)]
pub struct AcceptAnyCertificate {
    schemes: Vec<SignatureScheme>,
}

impl AcceptAnyCertificate {
    /// Advertises every signature scheme `provider` can verify, so that no server is refused
    /// for choosing one we would not have checked anyway.
    pub fn for_provider(provider: &rustls::crypto::CryptoProvider) -> Self {
        Self {
            schemes: provider
                .signature_verification_algorithms
                .supported_schemes(),
        }
    }
}

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.schemes.clone()
    }
}

/// The rustls client configuration (TLS 1.2 and 1.3, every ring cipher suite), built once.
fn tls_config() -> Option<Arc<ClientConfig>> {
    static CONFIG: OnceLock<Option<Arc<ClientConfig>>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let mut provider = rustls::crypto::ring::default_provider();
            provider.cipher_suites = rustls::crypto::ring::ALL_CIPHER_SUITES.to_vec();
            let verifier = AcceptAnyCertificate::for_provider(&provider);
            let config = ClientConfig::builder_with_provider(Arc::new(provider))
                .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
                .map_err(|e| tracing::warn!("TLS configuration failed: {e}"))
                .ok()?
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(verifier))
                .with_no_client_auth();
            Some(Arc::new(config))
        })
        .clone()
}

type TlsStream = tokio_rustls::client::TlsStream<TcpStream>;

/// Connects and completes a rustls handshake: the stream, the negotiated wire version and the
/// leaf certificate.
async fn tls_open(ctx: &Ctx) -> io::Result<(TlsStream, Option<u16>, Option<Vec<u8>>)> {
    let config = tls_config().ok_or_else(|| io::Error::other("no TLS configuration"))?;
    let tcp = connect(ctx).await?;
    let name = ctx
        .sni
        .clone()
        .and_then(|h| ServerName::try_from(h).ok())
        .unwrap_or_else(|| ServerName::IpAddress(ctx.addr.ip().into()));
    let d = ctx.until(ctx.wait(TLS_THINK));
    let stream = timeout_at(
        d,
        tokio_rustls::TlsConnector::from(config).connect(name, tcp),
    )
    .await
    .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))??;
    let (_, conn) = stream.get_ref();
    let version = conn.protocol_version().map(u16::from);
    let leaf = conn
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.as_ref().to_vec());
    Ok((stream, version, leaf))
}

/// Sends a hand-built ClientHello offering exactly `version` and parses the answer.
async fn legacy_hello(ctx: &Ctx, version: u16) -> Option<tls::ServerFlight> {
    let tcp = connect(ctx).await.ok()?;
    let mut c: BoxIo = Box::new(tcp);
    let hello = tls::client_hello(version, ctx.sni.as_deref(), rand::random());
    if !send(ctx, &mut c, &hello).await {
        return None;
    }
    let data = read_answer(&mut c, ctx.wait(TLS_THINK), ctx, |d| {
        tls::parse_server_flight(d).map_or(true, |f| f.complete)
    })
    .await;
    tls::parse_server_flight(&data).ok()
}

/// TLS on this port: handshake, certificate, accepted versions, and the service inside.
async fn tls_flow(ctx: &Ctx, plan: &Plan) -> Option<(Service, Option<TlsInfo>)> {
    let legacy = async {
        let (a, b, c) = tokio::join!(
            legacy_hello(ctx, tls::TLS10),
            legacy_hello(ctx, tls::TLS11),
            legacy_hello(ctx, tls::TLS12)
        );
        [(tls::TLS10, a), (tls::TLS11, b), (tls::TLS12, c)]
    };
    let main = async {
        let (stream, version, leaf) = tls_open(ctx).await.ok()?;
        let inner = inner_detect(ctx, plan, Box::new(stream)).await;
        Some((version, leaf, inner))
    };
    let (legacy, main) = tokio::join!(legacy, main);

    let mut versions = BTreeSet::new();
    let mut leaf = None;
    let mut spoke_tls = false;
    for (offered, flight) in &legacy {
        let Some(f) = flight else { continue };
        spoke_tls |= f.version.is_some() || f.alert.is_some();
        if f.version == Some(*offered) {
            versions.insert(*offered);
        }
        if leaf.is_none() {
            leaf = f.certificates.first().cloned();
        }
    }
    let mut inner = Outcome::default();
    if let Some((version, main_leaf, outcome)) = main {
        spoke_tls = true;
        versions.extend(version);
        if main_leaf.is_some() {
            leaf = main_leaf;
        }
        inner = outcome;
    }
    if !spoke_tls {
        return None;
    }
    let info = leaf.map(|der| {
        let mut info = cert::tls_info(&der).unwrap_or_else(|_| TlsInfo {
            sha256: cert::sha256_hex(&der),
            ..Default::default()
        });
        info.versions = versions
            .iter()
            .filter_map(|v| tls::version_name(*v))
            .map(str::to_string)
            .collect();
        info
    });
    let mut service = match inner.found {
        Some((s, raw)) => {
            let mut s = with_banner(s, &raw);
            s.name = probes::tls_name(&s.name);
            s
        }
        None => {
            let s = named("tls");
            match inner.seen {
                Some(raw) => with_banner(s, &raw),
                None => s,
            }
        }
    };
    service.tunnel_tls = true;
    Some((service, info))
}

/// Detection inside an established TLS stream (and further TLS connections when needed).
async fn inner_detect(ctx: &Ctx, plan: &Plan, stream: BoxIo) -> Outcome {
    let mut seq = plan.probes.clone();
    if !seq.contains(&Probe::Http) {
        seq.push(Probe::Http);
    }
    let first = run_sequential(ctx, Transport::Tls, plan.greeting, &seq, Some(stream)).await;
    if first.found.is_some() || plan.greeting == Greeting::Expected {
        return first;
    }
    let rest: Vec<Probe> = PARALLEL_FALLBACK
        .iter()
        .copied()
        .filter(|p| !seq.contains(p))
        .collect();
    let second = run_parallel(ctx, Transport::Tls, &rest).await;
    if second.found.is_some() {
        return second;
    }
    Outcome {
        seen: first.seen.or(second.seen),
        ..Default::default()
    }
}
