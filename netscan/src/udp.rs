//! UDP scanning: protocol payloads that make services answer, and closed-port detection through
//! ICMP port-unreachable errors.
//!
//! Why this shape: a *connected* UDP socket receives the ICMP port-unreachable for its peer as
//! `ECONNREFUSED`, which needs no privileges. Silence means "open or filtered"; only a payload the
//! service understands turns silence into "open", so well-known ports get real requests (DNS
//! `version.bind`, SNMP GetRequest, NTP client, NetBIOS node status, SSDP M-SEARCH, mDNS).
//!
//! Linux limits ICMP errors per peer (1/s after a burst of 6 by default): send fifty probes to
//! closed ports and most of them get no unreachable. A scan that trusted the first round would
//! call those ports open|filtered. So after the first round we model the peer's ICMP token
//! bucket from what it answered, and retransmit the unanswered probes in batches no larger than
//! the tokens the peer should have, waiting for refills in between; a peer that answers every
//! probe grows the model quickly, so unlimited peers (loopback, most non-Linux stacks) pay
//! little. Everything is bounded by `retries`, RTT-derived waits and a per-host budget.

#![cfg_attr(test, allow(clippy::expect_used, clippy::unwrap_used))]

use crate::error::{NetscanError, Result};
use crate::scan::Progress;
use crate::service::{dns, memcached, named, netbios, ntp, snmp, ssdp, text};
use crate::timing::RttEstimator;
use picket_model::{PortResult, PortState, Protocol, Service};
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::sync::Mutex;
use tokio::time::{sleep_until, timeout_at, Instant};

#[derive(Debug, Clone)]
pub struct UdpConfig {
    pub retries: u8,
    pub max_rate: Option<u32>,
}

/// How long a UDP service may think before answering, beyond the RTT.
const UDP_THINK: Duration = Duration::from_millis(100);
/// Linux's default per-peer ICMP error budget: a burst of 6, then one per second.
const LINUX_ICMP_BURST: f64 = 6.0;
const LINUX_ICMP_REFILL: Duration = Duration::from_secs(1);
/// Probe rate when the user set none: enough for a fast LAN, low enough not to overflow socket
/// buffers or a small router.
const DEFAULT_RATE: u32 = 2000;
/// Ports of one host probed with sockets open at the same time. With [`HOST_CONCURRENCY`] this
/// keeps the scan under 512 descriptors, well inside the common soft limit of 1024.
const PORTS_PER_CHUNK: usize = 64;
/// Hosts scanned at the same time.
const HOST_CONCURRENCY: usize = 8;
/// Largest datagram we read.
const RECV_CAP: usize = 8192;

/// Per-host time budget: generous enough for one ICMP refill per port, bounded overall.
fn host_budget(ports: usize) -> Duration {
    (Duration::from_secs(10) + LINUX_ICMP_REFILL.mul_f64(ports as f64 * 1.2))
        .min(Duration::from_secs(600))
}

/// The request sent to a port, and what identifies its answer.
#[derive(Debug, Clone)]
struct Payload {
    bytes: Vec<u8>,
    kind: Kind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Dns(u16),
    Mdns(u16),
    Snmp(u32),
    Ntp,
    NetbiosNs,
    Ssdp,
    Memcached,
    Empty,
}

/// The payload for a port; ids are random so that stray datagrams do not match.
fn payload_for(port: u16) -> Payload {
    let (bytes, kind) = match port {
        53 => {
            let id = rand::random();
            (dns::version_bind_query(id), Kind::Dns(id))
        }
        5353 => {
            let id = rand::random();
            (dns::mdns_services_query(id), Kind::Mdns(id))
        }
        161 => {
            let id = rand::random::<u32>() & 0x7fff_ffff;
            (snmp::probe("public", id), Kind::Snmp(id))
        }
        123 => (ntp::probe(rand::random()), Kind::Ntp),
        137 => (netbios::probe(rand::random()), Kind::NetbiosNs),
        1900 => (ssdp::PROBE.to_vec(), Kind::Ssdp),
        11211 => {
            // memcached's UDP frame header: request id, sequence 0, 1 datagram, reserved.
            let mut p = vec![0x70, 0x6b, 0, 0, 0, 1, 0, 0];
            p.extend_from_slice(memcached::PROBE);
            (p, Kind::Memcached)
        }
        _ => (Vec::new(), Kind::Empty),
    };
    Payload { bytes, kind }
}

/// Identifies the service from a UDP answer (pure; used by the scanner and its tests).
pub fn identify_udp_answer(port: u16, data: &[u8]) -> Service {
    let kind = payload_for(port).kind;
    identify(kind, data).unwrap_or_else(|| {
        let mut s = named("unknown");
        if !data.is_empty() {
            s.banner = Some(text::escape_banner(data));
        }
        s
    })
}

fn identify(kind: Kind, data: &[u8]) -> Option<Service> {
    let own = match kind {
        Kind::Dns(id) => dns::identify(data, "domain", Some(id)),
        Kind::Mdns(id) => {
            dns::identify(data, "mdns", Some(id)).or_else(|| dns::identify(data, "mdns", Some(0)))
        }
        Kind::Snmp(id) => snmp::parse_response(data)
            .filter(|a| a.request_id == u64::from(id))
            .and_then(|_| snmp::identify(data)),
        Kind::Ntp => ntp::identify(data),
        Kind::NetbiosNs => netbios::identify(data),
        Kind::Ssdp => ssdp::identify(data),
        Kind::Memcached => data.get(8..).and_then(memcached::identify),
        Kind::Empty => None,
    };
    let mut s = own
        .or_else(|| snmp::identify(data))
        .or_else(|| ntp::identify(data))?;
    if s.banner.is_none() {
        s.banner = Some(text::escape_banner(data));
    }
    Some(s)
}

/// A global pacing gate shared by all hosts: one probe every `1/rate` seconds.
#[derive(Debug)]
struct Pacer {
    interval: Duration,
    next: Mutex<Instant>,
}

impl Pacer {
    fn new(rate: u32) -> Self {
        Self {
            interval: Duration::from_secs_f64(1.0 / f64::from(rate.max(1))),
            next: Mutex::new(Instant::now()),
        }
    }
    async fn wait(&self) {
        let slot = {
            let mut next = self.next.lock().await;
            let now = Instant::now();
            let slot = (*next).max(now);
            *next = slot + self.interval;
            slot
        };
        sleep_until(slot).await;
    }
}

/// Our model of a peer's ICMP error token bucket.
#[derive(Debug, Clone)]
struct IcmpModel {
    /// The peer has sent us at least one ICMP error: ration retransmissions.
    seen: bool,
    burst: f64,
    refill: Duration,
    tokens: f64,
    at: Instant,
}

impl IcmpModel {
    fn linux_default(now: Instant) -> Self {
        Self {
            seen: false,
            burst: LINUX_ICMP_BURST,
            refill: LINUX_ICMP_REFILL,
            tokens: LINUX_ICMP_BURST,
            at: now,
        }
    }
    fn refresh(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + dt / self.refill.as_secs_f64()).min(self.burst);
        self.at = now;
    }
    /// After the first round: a peer that answered more than Linux's burst is not limited at
    /// Linux's rate; scale the model to what it showed. Either way the model starts empty: the
    /// first round may have drained the peer's bucket, and the bucket may not even have been
    /// full when we started (an earlier scan, or anyone else, can have used it). Starting at
    /// zero keeps the model at or below the peer's real budget, so every later batch is one
    /// the peer can answer in full, and silence in it really is silence.
    fn calibrate(&mut self, refusals: usize, now: Instant) {
        let r = refusals as f64;
        if r > self.burst {
            self.burst = r.min(4096.0);
            self.refill = LINUX_ICMP_REFILL.div_f64(r / LINUX_ICMP_BURST);
        }
        self.seen = true;
        self.tokens = 0.0;
        self.at = now;
    }
    fn consume(&mut self, k: usize) {
        self.tokens = (self.tokens - k as f64).max(0.0);
    }
    fn time_to_one(&self) -> Duration {
        if self.tokens >= 1.0 {
            Duration::ZERO
        } else {
            self.refill.mul_f64(1.0 - self.tokens)
        }
    }
}

/// One port's probe state.
struct PortProbe {
    port: u16,
    sock: Option<Arc<UdpSocket>>,
    payload: Payload,
    result: Option<PortResult>,
}

/// Every scanned UDP port of every host, with its state (and service when a payload got an answer).
pub async fn udp_scan(
    hosts: &[(IpAddr, RttEstimator)],
    ports: &[u16],
    cfg: &UdpConfig,
    progress: Arc<dyn Progress>,
) -> Result<Vec<(IpAddr, Vec<PortResult>)>> {
    if cfg.max_rate == Some(0) {
        return Err(NetscanError::Config("--rate must be at least 1".into()));
    }
    let pacer = Arc::new(Pacer::new(cfg.max_rate.unwrap_or(DEFAULT_RATE)));
    let sem = Arc::new(tokio::sync::Semaphore::new(HOST_CONCURRENCY));
    let ports: Arc<Vec<u16>> = Arc::new(ports.to_vec());
    let mut set = tokio::task::JoinSet::new();
    for (i, &(addr, rtt)) in hosts.iter().enumerate() {
        let (sem, pacer, ports, progress, cfg) = (
            sem.clone(),
            pacer.clone(),
            ports.clone(),
            progress.clone(),
            cfg.clone(),
        );
        set.spawn(async move {
            let _permit = sem.acquire_owned().await.ok();
            (
                i,
                addr,
                scan_host(addr, rtt, &ports, &cfg, &pacer, progress.as_ref()).await,
            )
        });
    }
    let mut out: Vec<(usize, IpAddr, Vec<PortResult>)> = Vec::new();
    while let Some(joined) = set.join_next().await {
        let (i, addr, res) =
            joined.map_err(|e| NetscanError::Config(format!("UDP scan task failed: {e}")))?;
        out.push((i, addr, res?));
    }
    out.sort_by_key(|(i, ..)| *i);
    Ok(out.into_iter().map(|(_, a, r)| (a, r)).collect())
}

async fn scan_host(
    addr: IpAddr,
    rtt: RttEstimator,
    ports: &[u16],
    cfg: &UdpConfig,
    pacer: &Pacer,
    progress: &dyn Progress,
) -> Result<Vec<PortResult>> {
    let deadline = Instant::now() + host_budget(ports.len());
    let mut results = Vec::with_capacity(ports.len());
    let mut model = IcmpModel::linux_default(Instant::now());
    for chunk in ports.chunks(PORTS_PER_CHUNK) {
        let mut probes = Vec::with_capacity(chunk.len());
        for &port in chunk {
            let sock = open_socket(addr, port).await?;
            probes.push(PortProbe {
                port,
                sock: Some(Arc::new(sock)),
                payload: payload_for(port),
                result: None,
            });
        }
        scan_chunk(&mut probes, rtt, cfg, pacer, &mut model, deadline, progress).await;
        for p in probes {
            let r = p.result.unwrap_or_else(|| {
                progress.advance(1);
                port_result(p.port, PortState::OpenFiltered, "no-response", None)
            });
            results.push(r);
        }
    }
    Ok(results)
}

async fn open_socket(addr: IpAddr, port: u16) -> Result<UdpSocket> {
    let local: SocketAddr = match addr {
        IpAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        IpAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let peer = SocketAddr::new(addr, port);
    let io_err = |op, source| NetscanError::Io {
        op,
        peer: peer.to_string(),
        source,
    };
    let sock = UdpSocket::bind(local)
        .await
        .map_err(|e| io_err("UDP bind", e))?;
    sock.connect(peer)
        .await
        .map_err(|e| io_err("UDP connect", e))?;
    Ok(sock)
}

fn port_result(port: u16, state: PortState, reason: &str, service: Option<Service>) -> PortResult {
    PortResult {
        port,
        protocol: Protocol::Udp,
        state,
        reason: reason.into(),
        service,
        tls: None,
    }
}

async fn scan_chunk(
    probes: &mut [PortProbe],
    rtt: RttEstimator,
    cfg: &UdpConfig,
    pacer: &Pacer,
    model: &mut IcmpModel,
    deadline: Instant,
    progress: &dyn Progress,
) {
    let base_wait = rtt.app_timeout(UDP_THINK);
    // Round 0: everything at once (paced).
    let all: Vec<usize> = (0..probes.len()).collect();
    let round0 = Instant::now();
    let refused0 = send_and_collect(probes, &all, base_wait, pacer, deadline, progress).await;
    if refused0 > 0 {
        model.calibrate(refused0, Instant::now());
    }
    for round in 1..=u32::from(cfg.retries) {
        let pending: Vec<usize> = (0..probes.len())
            .filter(|&i| probes.get(i).is_some_and(|p| p.result.is_none()))
            .collect();
        if pending.is_empty() || Instant::now() >= deadline {
            return;
        }
        // Back off like TCP: each round waits twice as long (bounded by app_timeout's cap). In
        // rationed batches the peer is known to answer, so one doubling is enough.
        let limited = model.seen;
        let backoff = if limited {
            2
        } else {
            2u32.saturating_pow(round)
        };
        let wait = (base_wait * backoff).min(crate::timing::MAX_RTO * 2);
        if !limited {
            // No ICMP error from this peer yet: nothing is closed, a firewall drops, or the
            // peer's error budget was spent before we came (a scan just before ours). Give a
            // Linux peer time for one token, then resend everything; one refusal is enough to
            // switch to rationed batches.
            let refill_at = round0 + LINUX_ICMP_REFILL;
            if refill_at < deadline {
                sleep_until(refill_at).await;
            }
            let refused = send_and_collect(probes, &pending, wait, pacer, deadline, progress).await;
            if refused > 0 {
                model.calibrate(refused, Instant::now());
            }
            continue;
        }
        let mut rest = pending.as_slice();
        // Each batch holds at least one port, so this ends after at most pending.len() batches.
        while !rest.is_empty() && Instant::now() < deadline {
            model.refresh(Instant::now());
            let until = Instant::now() + model.time_to_one();
            if until >= deadline {
                return;
            }
            sleep_until(until).await;
            model.refresh(Instant::now());
            let n = (model.tokens.floor() as usize).clamp(1, rest.len());
            let (batch, tail) = rest.split_at(n);
            rest = tail;
            let refused = send_and_collect(probes, batch, wait, pacer, deadline, progress).await;
            model.consume(refused);
        }
    }
}

/// Sends the probes at `idx` and waits up to `wait` for their answers. Returns how many ports
/// were refused (ICMP unreachable).
async fn send_and_collect(
    probes: &mut [PortProbe],
    idx: &[usize],
    wait: Duration,
    pacer: &Pacer,
    deadline: Instant,
    progress: &dyn Progress,
) -> usize {
    let mut refused = 0;
    let mut listening: HashMap<usize, Arc<UdpSocket>> = HashMap::new();
    for &i in idx {
        let Some(p) = probes.get_mut(i) else { continue };
        let Some(sock) = p.sock.clone() else { continue };
        if p.result.is_some() {
            continue;
        }
        pacer.wait().await;
        match sock.send(&p.payload.bytes).await {
            Ok(_) => {
                listening.insert(i, sock);
            }
            // An unreachable from an earlier round is reported on the next call.
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                finish(p, PortState::Closed, "port-unreach", None, progress);
                refused += 1;
            }
            Err(_) => {
                // Other errors (no route, buffer full): try again next round.
                listening.insert(i, sock);
            }
        }
    }
    let until = (Instant::now() + wait).min(deadline.max(Instant::now()));
    let mut set = tokio::task::JoinSet::new();
    for (i, sock) in listening {
        set.spawn(async move {
            let mut buf = vec![0u8; RECV_CAP];
            // A connected socket only receives from its peer; read until the wait ends or one
            // datagram or error arrives.
            let r = timeout_at(until, sock.recv(&mut buf)).await;
            let r = r.map(|res| res.map(|n| buf.get(..n).unwrap_or_default().to_vec()));
            (i, r)
        });
    }
    while let Some(joined) = set.join_next().await {
        let Ok((i, r)) = joined else { continue };
        let Some(p) = probes.get_mut(i) else { continue };
        match r {
            Ok(Ok(data)) => {
                let service = identify(p.payload.kind, &data).or_else(|| {
                    let mut s = named("unknown");
                    s.banner = Some(text::escape_banner(&data));
                    Some(s)
                });
                finish(p, PortState::Open, "udp-response", service, progress);
            }
            Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused => {
                finish(p, PortState::Closed, "port-unreach", None, progress);
                refused += 1;
            }
            Ok(Err(_)) | Err(_) => {}
        }
    }
    refused
}

fn finish(
    p: &mut PortProbe,
    state: PortState,
    reason: &str,
    service: Option<Service>,
    progress: &dyn Progress,
) {
    p.result = Some(port_result(p.port, state, reason, service));
    // The socket is no longer needed; free the descriptor now.
    p.sock = None;
    progress.advance(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_for_known_ports() {
        assert!(matches!(payload_for(53).kind, Kind::Dns(_)));
        assert!(matches!(payload_for(161).kind, Kind::Snmp(_)));
        assert_eq!(payload_for(123).bytes.len(), 48);
        assert_eq!(payload_for(137).bytes.len(), 50);
        assert!(payload_for(1900).bytes.starts_with(b"M-SEARCH"));
        assert!(matches!(payload_for(5353).kind, Kind::Mdns(_)));
        assert!(payload_for(40000).bytes.is_empty());
    }

    #[test]
    fn unknown_answers_keep_a_banner() {
        let s = identify_udp_answer(40000, b"\x01\x02hello");
        assert_eq!(s.name, "unknown");
        assert_eq!(s.banner.as_deref(), Some("\\x01\\x02hello"));
    }

    #[test]
    fn icmp_model_rations_and_grows() {
        let t0 = Instant::now();
        let mut m = IcmpModel::linux_default(t0);
        m.calibrate(6, t0);
        assert_eq!(m.tokens, 0.0);
        assert_eq!(m.time_to_one(), LINUX_ICMP_REFILL);
        m.refresh(t0 + Duration::from_millis(2500));
        assert!((m.tokens - 2.5).abs() < 1e-6);
        m.refresh(t0 + Duration::from_secs(100));
        assert_eq!(m.tokens, LINUX_ICMP_BURST);
        // Fewer refusals than the burst may mean a bucket drained before we came: start empty.
        let mut m = IcmpModel::linux_default(t0);
        m.calibrate(2, t0);
        assert_eq!(m.tokens, 0.0);
        // A peer that refused 600 probes at once is not Linux-limited: the model scales up.
        let mut fast = IcmpModel::linux_default(t0);
        fast.calibrate(600, t0);
        assert_eq!(fast.burst, 600.0);
        assert!(fast.refill <= Duration::from_millis(10));
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_answers_never_panic(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048), port: u16) {
            let s = identify_udp_answer(port, &data);
            proptest::prop_assert!(!s.name.is_empty());
            for p in [53u16, 123, 137, 161, 1900, 5353, 11211] {
                let _ = identify_udp_answer(p, &data);
            }
        }
    }

    #[test]
    fn budget_is_bounded() {
        assert!(host_budget(0) >= Duration::from_secs(10));
        assert_eq!(host_budget(65535), Duration::from_secs(600));
    }
}
