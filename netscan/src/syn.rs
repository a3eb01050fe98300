//! Raw-socket TCP SYN ("half-open") port scan.
//!
//! Why our own engine rather than connect(): a SYN scan needs one packet per port and no socket
//! per port, so it is fast and leaves no connection in the target's logs; it also sees the
//! SYN-ACK's TTL, window and options for the OS guess.
//!
//! How it stays accurate:
//! - every probe's sequence number is a keyed cookie ([`Cookie`]) of the target address and ports,
//!   and the source port encodes the attempt number, so a reply is accepted only if it acknowledges
//!   a probe of this scan, and round trips are measured per attempt (Karn's rule);
//! - each host has its own RTT estimator and congestion window: replies grow the window, a probe
//!   that times out while a *later* probe to the same host was answered is taken as loss (or rate
//!   limiting) and halves it; unanswered probes are retransmitted up to `retries` times;
//! - a reply arriving after a port was given up as filtered still corrects it;
//! - a host that falls completely silent is paused and asked with liveness checks at growing
//!   intervals, so a stall (a lost ARP exchange holds a neighbour for a second) is not mistaken
//!   for filtering: probes held during a stall are retried free of charge.
//!
//! How it stays fast: a timer heap and a queue of ready hosts make every send O(1) whatever the
//! number of hosts, and one scheduler shard per core sends through its own send-only
//! `IPPROTO_RAW` socket (on veth and bridges the kernel processes the target's answer inside the
//! sender's system call, so one sender saturates one core). One raw `IPPROTO_TCP` socket per
//! address family receives, polled rather than blocking so the kernel never wakes a waiter per
//! packet; IPv6 probes go out through that socket too (the kernel adds the IPv6 header).
//!
//! Needs only CAP_NET_RAW. The kernel answers each SYN-ACK with a RST, since no socket of ours
//! owns the connection.

use crate::error::{NetscanError, Result};
use crate::osguess::StackFingerprint;
use crate::packet::{self, Cookie, SynProbe, TCP_ACK, TCP_RST, TCP_SYN};
use crate::scan::{HostPorts, HostTarget, PortScanConfig, PortScanStats, Progress};
use crate::timing::RttEstimator;
use rand::seq::SliceRandom;
use socket2::{Domain, Protocol, Socket, Type};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// Attempts are encoded in the source port, so at most this many per port.
const MAX_ATTEMPTS: u8 = 16;
/// Initial and bounds of the per-host congestion window (probes in flight).
const CWND_INITIAL: f64 = 32.0;
const CWND_MIN: f64 = 8.0;
const CWND_MAX: f64 = 4096.0;
/// Global cap of probes in flight over all hosts, so that many hosts together cannot overrun
/// the local socket buffers.
const GLOBAL_INFLIGHT_MAX: u32 = 16_384;
/// Socket buffer we ask for (forced when CAP_NET_ADMIN allows, else capped by rmem_max).
const SOCKET_BUFFER: usize = 32 << 20;

/// Attempt number reserved for liveness checks of a paused host (see `HostState::paused`).
const CHECK_ATTEMPT: u8 = MAX_ATTEMPTS - 1;
/// How long a host that answered before may stay silent before its silence is believed. A lost
/// ARP exchange stalls a neighbour for the kernel's retransmit time (1 s on Linux); a real host
/// that stopped answering costs at most this much extra.
const STALL_PATIENCE_US: u32 = 3_000_000;
/// The same for a host that never answered yet: it may equally be up and filtering everything.
const FIRST_CONTACT_PATIENCE_US: u32 = 1_500_000;

const ST_UNSENT: u8 = 0;
const ST_INFLIGHT: u8 = 1;
const ST_RETRY: u8 = 2;
const ST_OPEN: u8 = 3;
const ST_CLOSED: u8 = 4;
const ST_FILTERED: u8 = 5;

/// True when this process may open raw TCP sockets (CAP_NET_RAW).
pub fn raw_sockets_available() -> bool {
    Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::TCP)).is_ok()
}

fn open_raw(domain: Domain) -> Result<UdpSocket> {
    let kind = if domain == Domain::IPV4 {
        "raw IPv4 TCP"
    } else {
        "raw IPv6 TCP"
    };
    let sock = Socket::new(domain, Type::RAW, Some(Protocol::TCP))
        .map_err(|source| NetscanError::RawSocket { kind, source })?;
    // Force big buffers when we may (CAP_NET_ADMIN); otherwise take what rmem_max allows.
    if nix::sys::socket::setsockopt(
        &sock,
        nix::sys::socket::sockopt::RcvBufForce,
        &SOCKET_BUFFER,
    )
    .is_err()
    {
        let _ = sock.set_recv_buffer_size(SOCKET_BUFFER);
    }
    if nix::sys::socket::setsockopt(
        &sock,
        nix::sys::socket::sockopt::SndBufForce,
        &SOCKET_BUFFER,
    )
    .is_err()
    {
        let _ = sock.set_send_buffer_size(SOCKET_BUFFER);
    }
    sock.set_read_timeout(Some(Duration::from_millis(20)))
        .map_err(|source| NetscanError::RawSocket { kind, source })?;
    // A raw socket is a datagram socket: std's UdpSocket gives us safe send_to/recv_from on it.
    Ok(UdpSocket::from(sock))
}

/// A send-only raw IPv4 socket (`IPPROTO_RAW`: we write the IP header, the kernel delivers it
/// nothing).
fn open_raw_sender() -> Result<UdpSocket> {
    let kind = "raw IPv4 sender";
    let sock = Socket::new(
        Domain::IPV4,
        Type::RAW,
        Some(Protocol::from(libc::IPPROTO_RAW)),
    )
    .map_err(|source| NetscanError::RawSocket { kind, source })?;
    if nix::sys::socket::setsockopt(
        &sock,
        nix::sys::socket::sockopt::SndBufForce,
        &SOCKET_BUFFER,
    )
    .is_err()
    {
        let _ = sock.set_send_buffer_size(SOCKET_BUFFER);
    }
    Ok(UdpSocket::from(sock))
}

/// The local address the kernel would use to reach `dst`.
pub fn source_for(dst: IpAddr) -> Result<IpAddr> {
    let bind: SocketAddr = match dst {
        IpAddr::V4(_) => SocketAddr::from(([0u8; 4], 0)),
        IpAddr::V6(_) => SocketAddr::from(([0u16; 8], 0)),
    };
    let s = UdpSocket::bind(bind).map_err(|source| NetscanError::Io {
        op: "route lookup",
        peer: dst.to_string(),
        source,
    })?;
    s.connect(SocketAddr::new(dst, 9))
        .map_err(|e| NetscanError::NoRoute {
            addr: dst,
            reason: e.to_string(),
        })?;
    s.local_addr()
        .map(|a| a.ip())
        .map_err(|source| NetscanError::Io {
            op: "route lookup",
            peer: dst.to_string(),
            source,
        })
}

/// A validated reply, passed from the receiving thread to the scheduler.
#[derive(Debug, Clone, Copy)]
struct Reply {
    host: u32,
    port: u16,
    attempt: u8,
    open: bool,
    at: Instant,
    ttl: u8,
    window: u16,
    df: bool,
    options: packet::TcpOptionSummary,
}

/// What the receiver needs to validate replies.
struct Validator {
    cookie: Cookie,
    hosts: HashMap<IpAddr, u32>,
    sport_base: u16,
}

impl Validator {
    fn check(&self, src: IpAddr, seg: &packet::TcpSegment) -> Option<(u32, u8)> {
        let attempt = seg.dst_port.checked_sub(self.sport_base)?;
        if attempt >= u16::from(MAX_ATTEMPTS) {
            return None;
        }
        let host = *self.hosts.get(&src)?;
        let syn_ack = seg.flags & (TCP_SYN | TCP_ACK) == (TCP_SYN | TCP_ACK);
        let rst = seg.flags & TCP_RST != 0;
        if !(syn_ack || rst) || !self.cookie.validates(src, seg) {
            return None;
        }
        Some((host, attempt as u8))
    }
}

/// How long the receiver sleeps once its socket is drained. Polling instead of blocking means the
/// kernel never has to wake a waiter per packet, which at 100k+ packets/s costs more than the scan
/// itself; RTT samples gain at most this much, far below the minimum retransmission timeout.
const RECV_POLL: Duration = Duration::from_micros(250);
/// Replies handed to the scheduler per channel message.
const REPLY_BATCH: usize = 256;

fn receiver(
    sock: UdpSocket,
    v6: bool,
    validator: Arc<Validator>,
    stop: Arc<AtomicBool>,
    shards: &[mpsc::Sender<Vec<Reply>>],
) {
    let mut buf = [0u8; 1600];
    let nshards = shards.len().max(1) as u32;
    if let Err(e) = sock.set_nonblocking(true) {
        tracing::warn!(error = %e, "cannot make raw socket non-blocking; stopping receiver");
        return;
    }
    let mut batches: Vec<Vec<Reply>> = shards
        .iter()
        .map(|_| Vec::with_capacity(REPLY_BATCH))
        .collect();
    while !stop.load(Ordering::Relaxed) {
        let (n, from) = match sock.recv_from(&mut buf) {
            Ok(x) => x,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                for (batch, tx) in batches.iter_mut().zip(shards) {
                    if !batch.is_empty() {
                        // A shard that finished has dropped its receiver: late replies for its
                        // hosts (a SYN-ACK the target sends again when our RST was lost) are
                        // dropped, and the other shards keep being served.
                        let _ = tx.send(std::mem::take(batch));
                    }
                }
                thread::sleep(RECV_POLL);
                continue;
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => {
                tracing::warn!(error = %e, "raw socket receive failed; stopping receiver");
                return;
            }
        };
        let at = Instant::now();
        let pkt = &buf[..n];
        // IPv4 raw sockets deliver the IP header; IPv6 ones deliver the bare TCP segment.
        let parsed = if v6 {
            packet::parse_tcp(pkt).map(|seg| (from.ip(), seg, 0u8, false))
        } else {
            packet::parse_ipv4_tcp(pkt).map(|p| (IpAddr::V4(p.src), p.tcp, p.ttl, p.dont_fragment))
        };
        let Ok((src, seg, ttl, df)) = parsed else {
            continue;
        };
        if let Some((host, attempt)) = validator.check(src, &seg) {
            let shard = (host % nshards) as usize;
            let (Some(batch), Some(tx)) = (batches.get_mut(shard), shards.get(shard)) else {
                continue;
            };
            batch.push(Reply {
                host: host / nshards,
                port: seg.src_port,
                attempt,
                open: seg.flags & TCP_SYN != 0,
                at,
                ttl,
                window: seg.window,
                df,
                options: seg.options,
            });
            if batch.len() >= REPLY_BATCH {
                let _ = tx.send(std::mem::take(batch));
            }
        }
    }
}

/// Per-host scheduling state.
struct HostState {
    addr: IpAddr,
    src: Option<IpAddr>,
    /// Random order of this host's port indices, generated rather than stored.
    order: Permutation,
    next: usize,
    state: Vec<u8>,
    attempts: Vec<u8>,
    sent_us: Vec<u32>,
    retry: VecDeque<u32>,
    inflight: u32,
    cwnd: f64,
    ssthresh: f64,
    rtt: RttEstimator,
    /// Send time of the latest-sent probe that got an answer: a probe sent before it that is
    /// still unanswered was probably lost.
    latest_answered_sent_us: u32,
    last_cut_us: u32,
    resolved: usize,
    responded: bool,
    fingerprint: Option<StackFingerprint>,
    /// Retries granted because the probe timed out during a stall, not charged to `retries`.
    free: Vec<u8>,
    /// When the latest answer of any kind from this host arrived.
    last_rx_us: Option<u32>,
    /// A port that answered (open or closed): liveness checks go there.
    canary: Option<u32>,
    /// Paused: probes timed out with nothing at all heard from the host since they left. That is
    /// either filtering or a stall (a lost ARP exchange, a saturated link). New probes wait, the
    /// timed-out ones are held in `deferred`, and liveness checks with growing intervals ask the
    /// host. If it answered only after a check timed out, it was a stall: the held probes are
    /// retried free. If it answered at once, it was filtering: they are charged as usual.
    paused: bool,
    pause_started_us: u32,
    patience_used_us: u32,
    deferred: Vec<(u32, u8)>,
    check_due: bool,
    check_backoff: u8,
    check_gen: u32,
}

impl HostState {
    fn done(&self) -> bool {
        self.resolved == self.state.len()
    }

    fn wants_to_send(&self) -> bool {
        if self.paused {
            return self.check_due;
        }
        (self.next < self.state.len() || !self.retry.is_empty())
            && f64::from(self.inflight) < self.cwnd.floor()
    }

    fn patience_us(&self) -> u32 {
        if self.canary.is_some() {
            STALL_PATIENCE_US
        } else {
            FIRST_CONTACT_PATIENCE_US
        }
    }
}

/// Scans `ports` on every host. Results come back in the order of `hosts`.
pub fn syn_scan(
    hosts: &[HostTarget],
    ports: &[u16],
    cfg: &PortScanConfig,
    progress: &dyn Progress,
) -> Result<(Vec<HostPorts>, PortScanStats)> {
    let mut stats = PortScanStats::default();
    if hosts.is_empty() || ports.is_empty() {
        return Ok((vec![HostPorts::default(); hosts.len()], stats));
    }
    let max_attempts = cfg.retries.saturating_add(1).min(MAX_ATTEMPTS);
    let need_v4 = hosts.iter().any(|h| h.addr.is_ipv4());
    let need_v6 = hosts.iter().any(|h| h.addr.is_ipv6());
    let sock4 = if need_v4 {
        Some(open_raw(Domain::IPV4)?)
    } else {
        None
    };
    let sock6 = if need_v6 {
        Some(open_raw(Domain::IPV6)?)
    } else {
        None
    };

    let sport_base: u16 = rand::random::<u16>() % 16_000 + 40_000;
    let validator = Arc::new(Validator {
        cookie: Cookie::random(),
        hosts: hosts
            .iter()
            .enumerate()
            .map(|(i, h)| (h.addr, i as u32))
            .collect(),
        sport_base,
    });
    // One scheduler per core: on veth and bridges the kernel processes a sent packet, the
    // target's answer included, in the sender's own system call, so one sending thread saturates
    // one core. Shards split the hosts; they share the raw socket (dup'd descriptors), so each
    // incoming packet is still copied to one receive queue only.
    let total = hosts.len() as u64 * ports.len() as u64;
    let cores = thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let nshards = if total < 50_000 {
        1
    } else {
        cores.min(hosts.len()).clamp(1, 8)
    };
    let mut shard_tx = Vec::new();
    let mut shard_rx = Vec::new();
    for _ in 0..nshards {
        let (t, r) = mpsc::channel::<Vec<Reply>>();
        shard_tx.push(t);
        shard_rx.push(r);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let shard_tx = Arc::new(shard_tx);
    let mut receivers = Vec::new();
    for (sock, v6) in [(&sock4, false), (&sock6, true)] {
        if let Some(s) = sock {
            let s = s.try_clone().map_err(|source| NetscanError::RawSocket {
                kind: "raw TCP",
                source,
            })?;
            let (validator, stop, tx) = (validator.clone(), stop.clone(), shard_tx.clone());
            receivers.push(
                thread::Builder::new()
                    .name("syn-recv".into())
                    .spawn(move || receiver(s, v6, validator, stop, &tx))
                    .map_err(|source| NetscanError::Io {
                        op: "spawn receiver thread",
                        peer: "local".into(),
                        source,
                    })?,
            );
        }
    }
    drop(shard_tx);

    // Port index lookup: replies name a port, state is kept per index into `ports`.
    let mut port_index = vec![u32::MAX; 65_536];
    for (i, p) in ports.iter().enumerate() {
        port_index[usize::from(*p)] = i as u32;
    }

    let shard_rate = cfg.max_rate.map(|r| (r / nshards as u32).max(1));
    let shared = ShardShared {
        ports,
        port_index: &port_index,
        cookie: &validator.cookie,
        sport_base,
        max_attempts,
        max_rate: shard_rate,
        sock6: sock6.as_ref(),
        progress,
    };
    let outcome: Vec<Result<(Vec<HostState>, PortScanStats)>> = thread::scope(|scope| {
        let handles: Vec<_> = shard_rx
            .into_iter()
            .enumerate()
            .map(|(k, rx)| {
                let mine: Vec<&HostTarget> = hosts.iter().skip(k).step_by(nshards).collect();
                let shared = &shared;
                scope.spawn(move || run_shard(&mine, shared, rx))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(NetscanError::Config("SYN scan shard panicked".into())))
            })
            .collect()
    });
    stop.store(true, Ordering::Relaxed);
    for r in receivers {
        let _ = r.join();
    }
    let mut states: Vec<Option<HostState>> = (0..hosts.len()).map(|_| None).collect();
    for (k, res) in outcome.into_iter().enumerate() {
        let (shard_states, shard_stats) = res?;
        stats.probes_sent += shard_stats.probes_sent;
        stats.retransmissions += shard_stats.retransmissions;
        stats.rate_limit_events += shard_stats.rate_limit_events;
        for (j, hs) in shard_states.into_iter().enumerate() {
            if let Some(slot) = states.get_mut(k + j * nshards) {
                *slot = Some(hs);
            }
        }
    }
    let states: Vec<HostState> = states.into_iter().flatten().collect();

    let results = states
        .into_iter()
        .map(|hs| {
            let mut out = HostPorts {
                rtt: hs.rtt,
                fingerprint: hs.fingerprint,
                responded: hs.responded,
                ..HostPorts::default()
            };
            for (i, st) in hs.state.iter().enumerate() {
                match *st {
                    ST_OPEN => out.open.push(ports[i]),
                    ST_CLOSED => {
                        out.closed_count += 1;
                        if cfg.keep_closed {
                            out.closed.push(ports[i]);
                        }
                    }
                    _ => out.filtered.push(ports[i]),
                }
            }
            out
        })
        .collect();
    Ok((results, stats))
}

/// What every shard reads.
struct ShardShared<'a> {
    ports: &'a [u16],
    port_index: &'a [u32],
    cookie: &'a Cookie,
    sport_base: u16,
    max_attempts: u8,
    max_rate: Option<u32>,
    /// IPv6 probes go out through the shared raw TCP socket (the kernel adds the header).
    sock6: Option<&'a UdpSocket>,
    progress: &'a dyn Progress,
}

/// Runs the scheduler for one shard of the hosts until every port of every host is resolved.
fn run_shard(
    hosts: &[&HostTarget],
    sh: &ShardShared<'_>,
    rx: mpsc::Receiver<Vec<Reply>>,
) -> Result<(Vec<HostState>, PortScanStats)> {
    let mut stats = PortScanStats::default();
    let (ports, port_index, progress) = (sh.ports, sh.port_index, sh.progress);
    let max_attempts = sh.max_attempts;
    let sport_base = sh.sport_base;
    let mut rng = rand::thread_rng();
    let mut states: Vec<HostState> = hosts
        .iter()
        .map(|h| {
            let order = Permutation::random(ports.len() as u32, &mut rng);
            HostState {
                addr: h.addr,
                src: source_for(h.addr).ok(),
                order,
                next: 0,
                state: vec![ST_UNSENT; ports.len()],
                attempts: vec![0; ports.len()],
                sent_us: vec![0; ports.len()],
                retry: VecDeque::new(),
                inflight: 0,
                cwnd: CWND_INITIAL,
                ssthresh: CWND_MAX,
                rtt: h.rtt,
                latest_answered_sent_us: 0,
                last_cut_us: 0,
                resolved: 0,
                responded: false,
                fingerprint: None,
                free: vec![0; ports.len()],
                last_rx_us: None,
                canary: None,
                paused: false,
                pause_started_us: 0,
                patience_used_us: 0,
                deferred: Vec::new(),
                check_due: false,
                check_backoff: 0,
                check_gen: 0,
            }
        })
        .collect();
    // Hosts we cannot route to are resolved at once as all-filtered.
    for hs in &mut states {
        if hs.src.is_none() {
            hs.state.fill(ST_FILTERED);
            hs.resolved = hs.state.len();
            progress.advance(hs.state.len() as u64);
        }
    }
    // Hosts with probes to send, round-robin. Each send is O(1): no pass over all hosts.
    let mut ready: VecDeque<u32> = VecDeque::with_capacity(states.len());
    let mut queued = vec![false; states.len()];
    let mut host_order: Vec<u32> = (0..states.len() as u32).collect();
    host_order.shuffle(&mut rng);
    for h in host_order {
        if !states[h as usize].done() {
            ready.push_back(h);
            queued[h as usize] = true;
        }
    }
    // Retransmission timers of every probe in flight, earliest deadline first. Entries of
    // probes answered meanwhile are dropped when they come due.
    let mut timers: BinaryHeap<Reverse<Timer>> = BinaryHeap::new();

    let start = Instant::now();
    let now_us = |t: Instant| {
        t.saturating_duration_since(start)
            .as_micros()
            .min(u128::from(u32::MAX)) as u32
    };
    let mut global_inflight: u32 = 0;
    // RTT over all hosts of the shard: a host that has not answered yet (down, or filtering
    // everything) is timed like its neighbours rather than with the cautious initial RTO, as
    // nmap times a host group.
    let mut group_rtt = RttEstimator::new();
    let mut tokens = Tokens::new(sh.max_rate);
    let mut pending_progress: u64 = 0;
    // IPv4 probes leave through a send-only IPPROTO_RAW socket of this shard's own: it carries
    // our IP header, takes no socket lock per send (unlike a raw TCP socket, which serializes
    // the shards) and receives nothing, so incoming packets are not copied to it.
    let sock4 = if hosts.iter().any(|h| h.addr.is_ipv4()) {
        Some(open_raw_sender()?)
    } else {
        None
    };
    let mut out = ProbeSender {
        sock4: sock4.as_ref(),
        sock6: sh.sock6,
        cookie: sh.cookie,
        sport_base,
        ip_id: rand::random(),
        buf: [0; packet::SYN_LEN],
        buf4: [0; packet::IPV4_SYN_LEN],
    };
    let mut remaining = states.iter().filter(|h| !h.done()).count();
    let mut carried: Vec<Reply> = Vec::new();

    while remaining > 0 {
        // 1. Replies.
        loop {
            if carried.is_empty() {
                match rx.try_recv() {
                    Ok(batch) => carried = batch,
                    Err(mpsc::TryRecvError::Empty) => break,
                    Err(mpsc::TryRecvError::Disconnected) => {
                        return Err(NetscanError::Io {
                            op: "receive replies",
                            peer: "raw socket".into(),
                            source: std::io::Error::other("receiver thread ended"),
                        });
                    }
                }
            }
            let Some(r) = carried.pop() else { continue };
            let h = r.host as usize;
            let Some(hs) = states.get_mut(h) else {
                continue;
            };
            let idx = port_index[usize::from(r.port)];
            if idx == u32::MAX {
                continue;
            }
            let i = idx as usize;
            let rx_us = now_us(r.at);
            hs.last_rx_us = Some(hs.last_rx_us.map_or(rx_us, |l| l.max(rx_us)));
            hs.canary = Some(idx);
            hs.responded = true;
            if hs.paused {
                let n = resume(hs, rx_us, max_attempts, &mut stats);
                pending_progress += n;
                if n > 0 && hs.done() {
                    remaining -= 1;
                }
                if !queued[h] {
                    queued[h] = true;
                    ready.push_back(r.host);
                }
            }
            let st = hs.state[i];
            if st == ST_OPEN || st == ST_CLOSED || st == ST_UNSENT {
                continue;
            }
            let sent = hs.sent_us[i];
            if st == ST_INFLIGHT {
                hs.inflight = hs.inflight.saturating_sub(1);
                global_inflight = global_inflight.saturating_sub(1);
                // Karn: only a reply to the latest attempt times that attempt.
                if r.attempt != CHECK_ATTEMPT && r.attempt + 1 == hs.attempts[i] {
                    let rtt = now_us(r.at).saturating_sub(sent);
                    hs.rtt.observe(Duration::from_micros(u64::from(rtt)));
                    group_rtt.observe(Duration::from_micros(u64::from(rtt)));
                    hs.latest_answered_sent_us = hs.latest_answered_sent_us.max(sent);
                }
                if hs.cwnd < hs.ssthresh {
                    hs.cwnd = (hs.cwnd + 1.0).min(CWND_MAX);
                } else {
                    hs.cwnd = (hs.cwnd + 1.0 / hs.cwnd).min(CWND_MAX);
                }
            }
            if st != ST_FILTERED {
                hs.resolved += 1;
                pending_progress += 1;
                if hs.done() {
                    remaining -= 1;
                }
            }
            hs.state[i] = if r.open { ST_OPEN } else { ST_CLOSED };
            if r.open && hs.fingerprint.is_none() {
                hs.fingerprint = Some(StackFingerprint {
                    ttl: r.ttl,
                    window: r.window,
                    mss: r.options.mss,
                    wscale: r.options.wscale,
                    options: r.options.order_str(),
                    df: r.df,
                });
            }
            if !queued[h] && hs.wants_to_send() {
                queued[h] = true;
                ready.push_back(r.host);
            }
        }

        // 2. Timeouts.
        let now = now_us(Instant::now());
        while let Some(Reverse(t)) = timers.peek().copied() {
            if t.deadline > now {
                break;
            }
            timers.pop();
            let h = t.host as usize;
            let hs = &mut states[h];
            if t.attempt == CHECK_ATTEMPT {
                // A liveness check went unanswered: ask again later, or give up waiting.
                if hs.paused && t.index == hs.check_gen {
                    let waited = now.saturating_sub(hs.pause_started_us);
                    if hs.patience_used_us.saturating_add(waited) >= hs.patience_us() {
                        hs.patience_used_us = u32::MAX;
                        // Silence it is: the held probes are charged as usual.
                        hs.check_backoff = 0;
                        let n = resume(hs, now, max_attempts, &mut stats);
                        pending_progress += n;
                        if n > 0 && hs.done() {
                            remaining -= 1;
                        }
                    } else {
                        hs.check_backoff = hs.check_backoff.saturating_add(1);
                        hs.check_due = true;
                    }
                    if !queued[h] && hs.wants_to_send() {
                        queued[h] = true;
                        ready.push_back(t.host);
                    }
                }
                continue;
            }
            let iu = t.index as usize;
            if hs.state[iu] != ST_INFLIGHT || hs.attempts[iu] != t.attempt + 1 {
                continue;
            }
            let sent = hs.sent_us[iu];
            hs.inflight = hs.inflight.saturating_sub(1);
            global_inflight = global_inflight.saturating_sub(1);
            let silent = hs.last_rx_us.is_none_or(|l| l < sent);
            if silent && hs.patience_used_us < hs.patience_us() {
                // Nothing heard from the host since this probe left: hold it and ask the host.
                hs.state[iu] = ST_RETRY;
                hs.deferred.push((t.index, t.attempt));
                if !hs.paused {
                    hs.paused = true;
                    hs.pause_started_us = now;
                    hs.check_due = true;
                    hs.check_backoff = 0;
                    if !queued[h] {
                        queued[h] = true;
                        ready.push_back(t.host);
                    }
                }
                continue;
            }
            let rto = duration_us(host_rto(&hs.rtt, &group_rtt));
            if hs.latest_answered_sent_us > sent && now.saturating_sub(hs.last_cut_us) > rto {
                // A later probe was answered: this one was lost, so slow down.
                hs.ssthresh = (hs.cwnd / 2.0).max(CWND_MIN);
                hs.cwnd = hs.ssthresh;
                hs.last_cut_us = now;
                stats.rate_limit_events += 1;
            } else if hs.latest_answered_sent_us <= sent {
                // Nothing sent later was answered either: silence, not congestion (a filtered
                // port or a host that is down). Let the window grow so silence costs time only
                // once per retransmission timeout, not once per window.
                hs.cwnd = (hs.cwnd + 1.0).min(CWND_MAX);
            }
            if charged(hs, iu) < max_attempts && hs.attempts[iu] < CHECK_ATTEMPT {
                hs.state[iu] = ST_RETRY;
                hs.retry.push_back(t.index);
            } else {
                hs.state[iu] = ST_FILTERED;
                hs.resolved += 1;
                pending_progress += 1;
                if hs.done() {
                    remaining -= 1;
                }
            }
            if !queued[h] && hs.wants_to_send() {
                queued[h] = true;
                ready.push_back(t.host);
            }
        }
        if pending_progress >= 256 || (remaining == 0 && pending_progress > 0) {
            progress.advance(pending_progress);
            pending_progress = 0;
        }

        // 3. Sends: one probe per ready host in turn, so each host sees a paced stream.
        let mut sent_any = false;
        while let Some(h) = ready.pop_front() {
            let hu = h as usize;
            queued[hu] = false;
            let hs = &mut states[hu];
            if !hs.wants_to_send() {
                continue;
            }
            if global_inflight >= GLOBAL_INFLIGHT_MAX || !tokens.take() {
                queued[hu] = true;
                ready.push_front(h);
                break;
            }
            let Some(src) = hs.src else {
                continue;
            };
            if hs.paused {
                // A liveness check: to a port that answered before, else to a held probe's port.
                hs.check_due = false;
                let port_idx = hs
                    .canary
                    .or_else(|| hs.deferred.first().map(|d| d.0))
                    .unwrap_or(0);
                let tsval = now_us(Instant::now());
                let _ = out.send(src, hs.addr, ports[port_idx as usize], CHECK_ATTEMPT, tsval);
                stats.probes_sent += 1;
                hs.check_gen = hs.check_gen.wrapping_add(1);
                let base = duration_us(host_rto(&hs.rtt, &group_rtt)).max(10_000);
                // Double the interval per unanswered check, but never wait past the patience.
                let now = now_us(Instant::now());
                let left = hs
                    .patience_us()
                    .saturating_sub(hs.patience_used_us)
                    .saturating_sub(now.saturating_sub(hs.pause_started_us));
                let wait = base
                    .saturating_mul(2u32.saturating_pow(u32::from(hs.check_backoff.min(8))))
                    .min(left.max(base));
                timers.push(Reverse(Timer {
                    deadline: now_us(Instant::now()).saturating_add(wait),
                    host: h,
                    index: hs.check_gen,
                    attempt: CHECK_ATTEMPT,
                }));
                sent_any = true;
                continue;
            }
            let mut pick = None;
            while let Some(i) = hs.retry.pop_front() {
                if hs.state[i as usize] == ST_RETRY {
                    pick = Some(i);
                    break;
                }
            }
            if pick.is_none() && hs.next < hs.state.len() {
                pick = Some(hs.order.at(hs.next as u32));
                hs.next += 1;
            }
            let Some(i) = pick else {
                tokens.give_back();
                continue;
            };
            let iu = i as usize;
            let attempt = hs.attempts[iu];
            let dport = ports[iu];
            let tsval = now_us(Instant::now());
            let Some(sent) = out.send(src, hs.addr, dport, attempt, tsval) else {
                continue;
            };
            match sent {
                Ok(_) => {}
                Err(e) if matches!(e.raw_os_error(), Some(libc::ENOBUFS) | Some(libc::EAGAIN)) => {
                    // Local queue full: put the probe back and let replies drain first.
                    if attempt == 0 {
                        hs.next -= 1;
                    } else {
                        hs.retry.push_front(i);
                    }
                    tokens.give_back();
                    queued[hu] = true;
                    ready.push_front(h);
                    break;
                }
                Err(e) => {
                    // Unreachable from here (EHOSTUNREACH, ENETUNREACH...): count the attempt so
                    // the port resolves as filtered after its retries.
                    tracing::debug!(host = %hs.addr, port = dport, error = %e, "send failed");
                }
            }
            let t = now_us(Instant::now());
            hs.attempts[iu] = attempt + 1;
            hs.sent_us[iu] = t;
            hs.state[iu] = ST_INFLIGHT;
            hs.inflight += 1;
            global_inflight += 1;
            timers.push(Reverse(Timer {
                deadline: t.saturating_add(duration_us(host_rto(&hs.rtt, &group_rtt))),
                host: h,
                index: i,
                attempt,
            }));
            stats.probes_sent += 1;
            if attempt > 0 {
                stats.retransmissions += 1;
            }
            sent_any = true;
            if hs.wants_to_send() {
                queued[hu] = true;
                ready.push_back(h);
            }
        }

        // 4. Nothing sent: sleep until a reply arrives or the next timer is due.
        if !sent_any && remaining > 0 {
            let now = now_us(Instant::now());
            let mut wait = Duration::from_millis(5);
            if let Some(Reverse(t)) = timers.peek() {
                wait = wait.min(Duration::from_micros(u64::from(
                    t.deadline.saturating_sub(now),
                )));
            }
            if let Some(hint) = tokens.wait_hint() {
                wait = wait.min(hint);
            }
            // A reply that arrives is handled by step 1 of the next iteration.
            if let Ok(batch) = rx.recv_timeout(wait.max(Duration::from_micros(100))) {
                carried = batch;
            }
        }
    }
    Ok((states, stats))
}

/// Builds and sends SYN probes; the attempt number goes into the source port, the cookie into
/// the sequence number.
struct ProbeSender<'a> {
    sock4: Option<&'a UdpSocket>,
    sock6: Option<&'a UdpSocket>,
    cookie: &'a Cookie,
    sport_base: u16,
    ip_id: u16,
    buf: [u8; packet::SYN_LEN],
    buf4: [u8; packet::IPV4_SYN_LEN],
}

impl ProbeSender<'_> {
    /// Sends one probe; `None` when there is no socket for the address family.
    fn send(
        &mut self,
        src: IpAddr,
        dst: IpAddr,
        dport: u16,
        attempt: u8,
        tsval: u32,
    ) -> Option<std::io::Result<usize>> {
        let sport = self.sport_base + u16::from(attempt);
        let probe = SynProbe {
            src,
            dst,
            src_port: sport,
            dst_port: dport,
            seq: self.cookie.value(dst, dport, sport),
            tsval,
        };
        let to = SocketAddr::new(dst, 0);
        if dst.is_ipv4() {
            self.ip_id = self.ip_id.wrapping_add(1);
            packet::build_ipv4_syn(&probe, self.ip_id, &mut self.buf4);
            Some(self.sock4?.send_to(&self.buf4, to))
        } else {
            packet::build_syn(&probe, &mut self.buf);
            Some(self.sock6?.send_to(&self.buf, to))
        }
    }
}

/// A random permutation of `0..n` as `i -> (a·i + b) mod n` with `a` coprime to `n`: the port
/// order of a host in O(1) memory (a stored shuffle of 65,535 ports for each of 1,024 hosts would
/// cost more than the whole rest of the scan).
#[derive(Debug, Clone, Copy)]
struct Permutation {
    n: u64,
    a: u64,
    b: u64,
}

impl Permutation {
    fn random(n: u32, rng: &mut impl rand::Rng) -> Self {
        let n = u64::from(n.max(1));
        let mut a = rng.gen_range(1..=n);
        // Coprime steps are dense (at least ~1/log n of them), so this ends quickly; the bound
        // keeps it finite whatever happens, falling back to the identity step.
        for _ in 0..1000 {
            if gcd(a, n) == 1 {
                break;
            }
            a = rng.gen_range(1..=n);
        }
        if gcd(a, n) != 1 {
            a = 1;
        }
        Self {
            n,
            a,
            b: rng.gen_range(0..n),
        }
    }

    fn at(&self, i: u32) -> u32 {
        ((self.a * u64::from(i) + self.b) % self.n) as u32
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// A retransmission timer: when `deadline` (µs since scan start) passes and the probe is still
/// unanswered, it is sent again or its port given up as filtered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Timer {
    deadline: u32,
    host: u32,
    index: u32,
    attempt: u8,
}

/// Attempts of port `i` that count against `retries` (those granted during a stall do not).
fn charged(hs: &HostState, i: usize) -> u8 {
    hs.attempts[i].saturating_sub(hs.free[i])
}

/// Ends a host's pause at `now`. If the host answered only after at least one liveness check went
/// unanswered, the silence was a stall and the held probes are retried free of charge; otherwise
/// they go back to the queue as ordinary retries (or are given up as filtered).
/// Returns how many held ports were given up as filtered.
fn resume(hs: &mut HostState, now: u32, max_attempts: u8, stats: &mut PortScanStats) -> u64 {
    let stalled = hs.check_backoff > 0;
    let waited = now.saturating_sub(hs.pause_started_us);
    hs.patience_used_us = hs.patience_used_us.saturating_add(waited);
    hs.paused = false;
    hs.check_due = false;
    hs.check_backoff = 0;
    // Pending check timers become stale.
    hs.check_gen = hs.check_gen.wrapping_add(1);
    if stalled {
        stats.rate_limit_events += 1;
    }
    let mut filtered = 0;
    for (idx, _attempt) in std::mem::take(&mut hs.deferred) {
        let i = idx as usize;
        if hs.state[i] != ST_RETRY {
            continue;
        }
        if stalled && hs.attempts[i] < CHECK_ATTEMPT {
            hs.free[i] = hs.free[i].saturating_add(1);
        }
        if charged(hs, i) < max_attempts && hs.attempts[i] < CHECK_ATTEMPT {
            hs.retry.push_back(idx);
        } else {
            hs.state[i] = ST_FILTERED;
            hs.resolved += 1;
            filtered += 1;
        }
    }
    filtered
}

/// The retransmission timeout of a host: its own once it has answered, else its group's.
fn host_rto(own: &RttEstimator, group: &RttEstimator) -> Duration {
    if own.samples() > 0 || group.samples() == 0 {
        own.rto()
    } else {
        group.rto()
    }
}

fn duration_us(d: Duration) -> u32 {
    d.as_micros().min(u128::from(u32::MAX)) as u32
}

/// Token bucket for the global `--rate` cap (probes per second); unlimited when `None`.
struct Tokens {
    rate: Option<f64>,
    level: f64,
    last: Instant,
}

impl Tokens {
    fn new(rate: Option<u32>) -> Self {
        Self {
            rate: rate.map(f64::from),
            level: 1.0,
            last: Instant::now(),
        }
    }

    fn take(&mut self) -> bool {
        let Some(rate) = self.rate else { return true };
        let now = Instant::now();
        let burst = (rate / 100.0).max(1.0);
        self.level = (self.level + now.duration_since(self.last).as_secs_f64() * rate).min(burst);
        self.last = now;
        if self.level >= 1.0 {
            self.level -= 1.0;
            true
        } else {
            false
        }
    }

    fn give_back(&mut self) {
        if self.rate.is_some() {
            self.level += 1.0;
        }
    }

    fn wait_hint(&self) -> Option<Duration> {
        let rate = self.rate?;
        Some(Duration::from_secs_f64((1.0 - self.level).max(0.0) / rate))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permutation_visits_every_index_once() {
        let mut rng = rand::thread_rng();
        for n in [1u32, 2, 3, 7, 100, 1000, 1024, 65_535] {
            let p = Permutation::random(n, &mut rng);
            let mut seen = vec![false; n as usize];
            for i in 0..n {
                let j = p.at(i) as usize;
                assert!(!seen[j], "n={n}: index {j} twice");
                seen[j] = true;
            }
        }
    }
}
