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
//! - a reply arriving after a port was given up as filtered still corrects it.
//!
//! Needs only CAP_NET_RAW: one raw `IPPROTO_TCP` socket per address family sends bare TCP
//! segments (the kernel adds the IP header) and receives copies of incoming TCP packets.
//! The kernel answers each SYN-ACK with a RST, since no socket of ours owns the connection.

use crate::error::{NetscanError, Result};
use crate::osguess::StackFingerprint;
use crate::packet::{self, Cookie, SynProbe, TCP_ACK, TCP_RST, TCP_SYN};
use crate::scan::{HostPorts, HostTarget, PortScanConfig, PortScanStats, Progress};
use crate::timing::RttEstimator;
use rand::seq::SliceRandom;
use socket2::{Domain, Protocol, Socket, Type};
use std::collections::{HashMap, VecDeque};
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

fn receiver(
    sock: UdpSocket,
    v6: bool,
    validator: Arc<Validator>,
    stop: Arc<AtomicBool>,
    tx: mpsc::Sender<Reply>,
) {
    let mut buf = [0u8; 1600];
    while !stop.load(Ordering::Relaxed) {
        let (n, from) = match sock.recv_from(&mut buf) {
            Ok(x) => x,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
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
            let reply = Reply {
                host,
                port: seg.src_port,
                attempt,
                open: seg.flags & TCP_SYN != 0,
                at,
                ttl,
                window: seg.window,
                df,
                options: seg.options,
            };
            if tx.send(reply).is_err() {
                return;
            }
        }
    }
}

/// Per-host scheduling state.
struct HostState {
    addr: IpAddr,
    src: Option<IpAddr>,
    order: Vec<u32>,
    next: usize,
    state: Vec<u8>,
    attempts: Vec<u8>,
    sent_us: Vec<u32>,
    outstanding: VecDeque<(u32, u8, u32)>,
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
}

impl HostState {
    fn done(&self) -> bool {
        self.resolved == self.state.len()
    }

    fn wants_to_send(&self) -> bool {
        (self.next < self.order.len() || !self.retry.is_empty())
            && f64::from(self.inflight) < self.cwnd.floor()
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
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel::<Reply>();
    let mut receivers = Vec::new();
    for (sock, v6) in [(&sock4, false), (&sock6, true)] {
        if let Some(s) = sock {
            let s = s.try_clone().map_err(|source| NetscanError::RawSocket {
                kind: "raw TCP",
                source,
            })?;
            let (validator, stop, tx) = (validator.clone(), stop.clone(), tx.clone());
            receivers.push(
                thread::Builder::new()
                    .name("syn-recv".into())
                    .spawn(move || receiver(s, v6, validator, stop, tx))
                    .map_err(|source| NetscanError::Io {
                        op: "spawn receiver thread",
                        peer: "local".into(),
                        source,
                    })?,
            );
        }
    }
    drop(tx);

    // Port index lookup: replies name a port, state is kept per index into `ports`.
    let mut port_index = vec![u32::MAX; 65_536];
    for (i, p) in ports.iter().enumerate() {
        port_index[usize::from(*p)] = i as u32;
    }

    let mut rng = rand::thread_rng();
    let mut states: Vec<HostState> = hosts
        .iter()
        .map(|h| {
            let mut order: Vec<u32> = (0..ports.len() as u32).collect();
            order.shuffle(&mut rng);
            HostState {
                addr: h.addr,
                src: source_for(h.addr).ok(),
                order,
                next: 0,
                state: vec![ST_UNSENT; ports.len()],
                attempts: vec![0; ports.len()],
                sent_us: vec![0; ports.len()],
                outstanding: VecDeque::new(),
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
    let mut host_order: Vec<usize> = (0..states.len()).collect();
    host_order.shuffle(&mut rng);

    let start = Instant::now();
    let now_us = |t: Instant| {
        t.saturating_duration_since(start)
            .as_micros()
            .min(u128::from(u32::MAX)) as u32
    };
    let mut global_inflight: u32 = 0;
    let mut tokens = Tokens::new(cfg.max_rate);
    let mut pending_progress: u64 = 0;
    let mut buf = [0u8; packet::SYN_LEN];
    let mut remaining = states.iter().filter(|h| !h.done()).count();

    let mut carried: Option<Reply> = None;

    while remaining > 0 {
        // 1. Replies.
        loop {
            let next = match carried.take() {
                Some(r) => Ok(r),
                None => rx.try_recv(),
            };
            let r = match next {
                Ok(r) => r,
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => {
                    stop.store(true, Ordering::Relaxed);
                    return Err(NetscanError::Io {
                        op: "receive replies",
                        peer: "raw socket".into(),
                        source: std::io::Error::other("receiver thread ended"),
                    });
                }
            };
            let Some(hs) = states.get_mut(r.host as usize) else {
                continue;
            };
            let Some(&idx) = port_index.get(usize::from(r.port)) else {
                continue;
            };
            if idx == u32::MAX {
                continue;
            }
            let i = idx as usize;
            let st = hs.state[i];
            if st == ST_OPEN || st == ST_CLOSED || st == ST_UNSENT {
                continue;
            }
            hs.responded = true;
            let sent = hs.sent_us[i];
            if st == ST_INFLIGHT {
                hs.inflight = hs.inflight.saturating_sub(1);
                global_inflight = global_inflight.saturating_sub(1);
                // Karn: only a reply to the latest attempt times that attempt.
                if r.attempt + 1 == hs.attempts[i] {
                    hs.rtt.observe(Duration::from_micros(u64::from(
                        now_us(r.at).saturating_sub(sent),
                    )));
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
        }

        // 2. Timeouts.
        let now = now_us(Instant::now());
        for hs in &mut states {
            let rto = hs.rtt.rto().as_micros().min(u128::from(u32::MAX)) as u32;
            while let Some(&(i, attempt, sent)) = hs.outstanding.front() {
                let iu = i as usize;
                if hs.state[iu] != ST_INFLIGHT || hs.attempts[iu] != attempt + 1 {
                    hs.outstanding.pop_front();
                    continue;
                }
                if now.saturating_sub(sent) < rto {
                    break;
                }
                hs.outstanding.pop_front();
                hs.inflight = hs.inflight.saturating_sub(1);
                global_inflight = global_inflight.saturating_sub(1);
                if hs.latest_answered_sent_us > sent && now.saturating_sub(hs.last_cut_us) > rto {
                    // A later probe was answered: this one was lost, so slow down.
                    hs.ssthresh = (hs.cwnd / 2.0).max(CWND_MIN);
                    hs.cwnd = hs.ssthresh;
                    hs.last_cut_us = now;
                    stats.rate_limit_events += 1;
                }
                if hs.attempts[iu] < max_attempts {
                    hs.state[iu] = ST_RETRY;
                    hs.retry.push_back(i);
                } else {
                    hs.state[iu] = ST_FILTERED;
                    hs.resolved += 1;
                    pending_progress += 1;
                    if hs.done() {
                        remaining -= 1;
                    }
                }
            }
        }
        if pending_progress >= 256 || (remaining == 0 && pending_progress > 0) {
            progress.advance(pending_progress);
            pending_progress = 0;
        }

        // 3. Sends, round-robin over hosts so that each host sees a paced stream.
        let mut sent_any = false;
        let mut round = true;
        while round {
            round = false;
            for &h in &host_order {
                if global_inflight >= GLOBAL_INFLIGHT_MAX || !tokens.take() {
                    break;
                }
                let hs = &mut states[h];
                if !hs.wants_to_send() {
                    tokens.give_back();
                    continue;
                }
                let Some(src) = hs.src else {
                    tokens.give_back();
                    continue;
                };
                let i = loop {
                    if let Some(i) = hs.retry.pop_front() {
                        if hs.state[i as usize] == ST_RETRY {
                            break Some(i);
                        }
                        continue;
                    }
                    if hs.next < hs.order.len() {
                        let i = hs.order[hs.next];
                        hs.next += 1;
                        break Some(i);
                    }
                    break None;
                };
                let Some(i) = i else {
                    tokens.give_back();
                    continue;
                };
                let iu = i as usize;
                let attempt = hs.attempts[iu];
                let sport = sport_base + u16::from(attempt);
                let dport = ports[iu];
                let probe = SynProbe {
                    src,
                    dst: hs.addr,
                    src_port: sport,
                    dst_port: dport,
                    seq: validator.cookie.value(hs.addr, dport, sport),
                    tsval: now_us(Instant::now()),
                };
                packet::build_syn(&probe, &mut buf);
                let sock = if hs.addr.is_ipv4() { &sock4 } else { &sock6 };
                let Some(sock) = sock else {
                    tokens.give_back();
                    continue;
                };
                match sock.send_to(&buf, SocketAddr::new(hs.addr, 0)) {
                    Ok(_) => {}
                    Err(e)
                        if matches!(e.raw_os_error(), Some(libc::ENOBUFS) | Some(libc::EAGAIN)) =>
                    {
                        // Local queue full: put the probe back and let replies drain.
                        if attempt == 0 && hs.state[iu] == ST_UNSENT {
                            hs.next -= 1;
                        } else {
                            hs.retry.push_front(i);
                        }
                        tokens.give_back();
                        break;
                    }
                    Err(e) => {
                        // Unreachable from here (EHOSTUNREACH, ENETUNREACH...): count the
                        // attempt so the port resolves as filtered after its retries.
                        tracing::debug!(host = %hs.addr, port = dport, error = %e, "send failed");
                    }
                }
                let t = now_us(Instant::now());
                hs.attempts[iu] = attempt + 1;
                hs.sent_us[iu] = t;
                hs.state[iu] = ST_INFLIGHT;
                hs.outstanding.push_back((i, attempt, t));
                hs.inflight += 1;
                global_inflight += 1;
                stats.probes_sent += 1;
                if attempt > 0 {
                    stats.retransmissions += 1;
                }
                sent_any = true;
                round = true;
            }
        }

        // 4. Nothing to send: wait for a reply or the next timeout.
        if !sent_any && remaining > 0 {
            let wait = next_wait(&states, now_us(Instant::now()), tokens.wait_hint());
            // A reply that arrives is handled by step 1 of the next iteration; a disconnect
            // is reported there too.
            if let Ok(r) = rx.recv_timeout(wait) {
                carried = Some(r);
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    for r in receivers {
        let _ = r.join();
    }

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

/// How long the scheduler may sleep: until the earliest outstanding probe times out, at most 5 ms.
fn next_wait(states: &[HostState], now: u32, token_hint: Option<Duration>) -> Duration {
    let mut wait = Duration::from_millis(5);
    for hs in states {
        if let Some(&(_, _, sent)) = hs.outstanding.front() {
            let rto = hs.rtt.rto().as_micros().min(u128::from(u32::MAX)) as u32;
            let due = sent.saturating_add(rto).saturating_sub(now);
            wait = wait.min(Duration::from_micros(u64::from(due)));
        }
    }
    if let Some(h) = token_hint {
        wait = wait.min(h);
    }
    wait.max(Duration::from_micros(200))
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
