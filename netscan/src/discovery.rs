//! Host discovery: which targets are up, and why we think so.
//!
//! Why it is its own phase: port-scanning an address that nobody holds costs every port's full
//! timeout, so a cheap, well-retransmitted liveness sweep first saves most of a sparse scan's time.
//!
//! Privileged (CAP_NET_RAW) discovery follows what the network allows:
//! * targets on a local IPv4 segment get ARP requests and IPv6 on-link targets get neighbour
//!   solicitations, both as Ethernet frames through a pnet datalink channel: nothing that holds an
//!   address on a segment can ignore them, firewall or not;
//! * off-link targets get an ICMP echo, an ICMP timestamp request, a TCP SYN to 443 and a TCP ACK
//!   to 80 through raw sockets. Replies are matched by address, ports and a keyed cookie carried in
//!   the ICMP sequence/payload or the TCP sequence/acknowledgement numbers, so stray packets and
//!   spoofed answers from elsewhere are not taken for the target's.
//!
//! Silent targets are probed again `retries` times; each round waits one retransmission timeout
//! derived from the replies seen so far ([`RttEstimator`]), and the sweep ends as soon as the last
//! round's wait has elapsed or every target has answered. A global pacer keeps the packet rate at
//! or below `max_rate`.
//!
//! Without raw sockets, discovery connects to TCP 80 and 443 (accepted or refused both prove the
//! host holds the address) and, where the kernel's `ping_group_range` allows, sends ICMP echoes
//! through an unprivileged ICMP datagram socket.

use crate::error::{NetscanError, Result};
use crate::scan::Progress;
use crate::timing::RttEstimator;
use pnet_datalink::{Channel, DataLinkReceiver, DataLinkSender, MacAddr, NetworkInterface};
use pnet_packet::arp::{ArpHardwareTypes, ArpOperations, ArpPacket, MutableArpPacket};
use pnet_packet::ethernet::{EtherTypes, EthernetPacket, MutableEthernetPacket};
use pnet_packet::icmpv6::ndp::{NdpOptionTypes, NeighborAdvertPacket};
use pnet_packet::ip::IpNextHeaderProtocols;
use pnet_packet::ipv4::Ipv4Packet;
use pnet_packet::ipv6::{Ipv6Packet, MutableIpv6Packet};
use pnet_packet::tcp::{MutableTcpPacket, TcpFlags, TcpPacket};
use pnet_packet::Packet;
use siphasher::sip::SipHasher13;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::collections::{HashMap, HashSet};
use std::hash::Hasher;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct DiscoveryConfig {
    /// Raw sockets (ARP/NDP/ICMP/TCP probes) are available.
    pub privileged: bool,
    pub max_rate: Option<u32>,
    pub retries: u8,
}

/// A host found up, and why.
#[derive(Debug, Clone)]
pub struct UpHost {
    pub addr: IpAddr,
    /// `arp-response`, `nd-response`, `echo-reply`, `timestamp-reply`, `syn-ack`, `rst`, `conn-refused`, `user-set`.
    pub reason: String,
    pub mac: Option<String>,
    pub rtt: Option<Duration>,
    pub ttl: Option<u8>,
}

/// Packets per second when the user sets no cap: fast enough to sweep a /24 in ~13 ms, slow enough
/// not to overflow a switch port's or a netem queue's buffer with a 4,000-probe burst.
pub const DEFAULT_RATE: u32 = 20_000;
/// TCP port of the SYN probe (HTTPS is the port most often open on hosts that drop pings).
pub const SYN_PROBE_PORT: u16 = 443;
/// TCP port of the ACK probe (an ACK passes stateless filters that drop SYNs).
pub const ACK_PROBE_PORT: u16 = 80;
/// Poll interval of receiver threads and of the round timer: the granularity of all waits.
const TICK: Duration = Duration::from_millis(2);
/// Receive timeout of sockets and datalink channels, so receiver threads notice the end.
const RECV_TIMEOUT: Duration = Duration::from_millis(5);
/// Shortest wait after the last round: lets answers delayed by a busy scheduler still count.
const MIN_FINAL_WAIT: Duration = Duration::from_millis(60);
/// Longest a round waits beyond its timeout for starved receivers to read what is queued.
const CATCH_UP_LIMIT: Duration = Duration::from_secs(1);
/// Longest a receiver keeps draining queued answers after the sweep ends.
const DRAIN_LIMIT: Duration = Duration::from_millis(200);
/// Targets swept together; larger sets are swept block after block.
const SWEEP_BLOCK: usize = 65_536;
/// Largest datagram or frame we read.
const RECV_BUF: usize = 65_536;
/// Unprivileged connect probes in flight at once.
const CONNECT_CONCURRENCY: usize = 256;
/// How long an unprivileged connect may take before the port is taken as silent.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(1_000);

/// Finds which of `targets` are up. The result follows the order of `targets`.
pub async fn discover(
    targets: &[IpAddr],
    cfg: &DiscoveryConfig,
    progress: Arc<dyn Progress>,
) -> Result<Vec<UpHost>> {
    if cfg.max_rate == Some(0) {
        return Err(NetscanError::Config("--rate must be at least 1".into()));
    }
    let mut seen = HashSet::new();
    let targets: Vec<IpAddr> = targets
        .iter()
        .copied()
        .filter(|a| seen.insert(*a))
        .collect();
    if targets.is_empty() {
        return Ok(Vec::new());
    }
    // Blocks bound the sweep's bookkeeping (and the unprivileged sweep's task count) however
    // large the target set, and let early blocks finish while later ones are still pending.
    let mut out = Vec::new();
    let mut privileged = cfg.privileged;
    for block in targets.chunks(SWEEP_BLOCK) {
        if privileged {
            let (t, c, p) = (block.to_vec(), cfg.clone(), progress.clone());
            let joined = tokio::task::spawn_blocking(move || privileged_sweep(&t, &c, p.as_ref()))
                .await
                .map_err(|e| NetscanError::Config(format!("discovery task failed: {e}")))?;
            match joined {
                Ok(found) => {
                    out.extend(order_like(block, found));
                    continue;
                }
                // The caller believed raw sockets were available but the kernel disagrees (e.g.
                // a seccomp filter): the unprivileged methods still give an answer.
                Err(NetscanError::RawSocket { kind, source }) => {
                    tracing::warn!(
                        "raw {kind} socket unavailable ({source}); unprivileged discovery"
                    );
                    privileged = false;
                }
                Err(e) => return Err(e),
            }
        }
        let found = unprivileged_sweep(block, cfg, progress.clone()).await?;
        out.extend(order_like(block, found));
    }
    Ok(out)
}

fn order_like(targets: &[IpAddr], mut found: HashMap<IpAddr, UpHost>) -> Vec<UpHost> {
    targets.iter().filter_map(|a| found.remove(a)).collect()
}

// ---------------------------------------------------------------------------------------------
// Cookies: keyed hashes that make every probe's answer recognisable.

/// Per-sweep secret and identifiers.
#[derive(Debug, Clone, Copy)]
pub struct ProbeKeys {
    k0: u64,
    k1: u64,
    /// ICMP identifier of this sweep.
    pub icmp_id: u16,
    /// TCP source port of this sweep's probes.
    pub tcp_sport: u16,
}

impl ProbeKeys {
    /// Fixed keys (tests and fuzzing); sweeps use [`ProbeKeys::random`].
    pub fn new(k0: u64, k1: u64, icmp_id: u16, tcp_sport: u16) -> Self {
        Self {
            k0,
            k1,
            icmp_id,
            tcp_sport,
        }
    }

    pub fn random() -> Self {
        let k0: u64 = rand::random();
        let k1: u64 = rand::random();
        Self {
            k0,
            k1,
            icmp_id: rand::random(),
            // Above the usual ephemeral range floor so we don't collide with our own connections'
            // well-known ports; below 61000 so the kernel's default ephemeral range is avoided.
            tcp_sport: 40_000 + rand::random::<u16>() % 20_000,
        }
    }

    fn hash(&self, addr: IpAddr, tag: u8, extra: u64) -> u64 {
        let mut h = SipHasher13::new_with_keys(self.k0, self.k1);
        match addr {
            IpAddr::V4(a) => h.write(&a.octets()),
            IpAddr::V6(a) => h.write(&a.octets()),
        }
        h.write_u8(tag);
        h.write_u64(extra);
        h.finish()
    }

    /// ICMP sequence number for `addr` and probe `tag`.
    pub fn icmp_seq(&self, addr: IpAddr, tag: u8) -> u16 {
        (self.hash(addr, tag, 0) & 0xffff) as u16
    }

    /// 32-bit TCP sequence/acknowledgement cookie.
    pub fn tcp_cookie(&self, addr: IpAddr, tag: u8) -> u32 {
        (self.hash(addr, tag, 0) & 0xffff_ffff) as u32
    }

    /// Authenticator of an echo payload's send time.
    fn payload_mac(&self, addr: IpAddr, sent_us: u64) -> u64 {
        self.hash(addr, b'p', sent_us)
    }
}

const TAG_ECHO: u8 = b'e';
const TAG_TSTAMP: u8 = b't';
const TAG_SYN: u8 = b's';
const TAG_ACK: u8 = b'a';

// ---------------------------------------------------------------------------------------------
// Packet building (pure).

/// Echo payload: the send time in microseconds since the sweep began, then its authenticator.
pub fn echo_request(v6: bool, keys: &ProbeKeys, dst: IpAddr, sent_us: u64) -> Vec<u8> {
    let mut p = Vec::with_capacity(24);
    p.push(if v6 { 128 } else { 8 });
    p.push(0);
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(&keys.icmp_id.to_be_bytes());
    p.extend_from_slice(&keys.icmp_seq(dst, TAG_ECHO).to_be_bytes());
    p.extend_from_slice(&sent_us.to_be_bytes());
    p.extend_from_slice(&keys.payload_mac(dst, sent_us).to_be_bytes());
    if !v6 {
        // ICMPv6 checksums include a pseudo-header; the kernel fills them in for raw ICMPv6.
        let c = pnet_packet::util::checksum(&p, 1);
        p[2..4].copy_from_slice(&c.to_be_bytes());
    }
    p
}

/// ICMP timestamp request (RFC 792 type 13); the originate field carries the send time (µs, mod 2³²).
pub fn timestamp_request(keys: &ProbeKeys, dst: IpAddr, sent_us: u64) -> Vec<u8> {
    let mut p = vec![13u8, 0, 0, 0];
    p.extend_from_slice(&keys.icmp_id.to_be_bytes());
    p.extend_from_slice(&keys.icmp_seq(dst, TAG_TSTAMP).to_be_bytes());
    p.extend_from_slice(&((sent_us & 0xffff_ffff) as u32).to_be_bytes());
    p.extend_from_slice(&[0; 8]);
    let c = pnet_packet::util::checksum(&p, 1);
    p[2..4].copy_from_slice(&c.to_be_bytes());
    p
}

/// A bare TCP segment (no options) from `src` to `dst`, checksummed.
pub fn tcp_probe(
    src: IpAddr,
    dst: IpAddr,
    sport: u16,
    dport: u16,
    flags: u8,
    seq: u32,
    ack: u32,
) -> Vec<u8> {
    let mut buf = vec![0u8; 20];
    if let Some(mut t) = MutableTcpPacket::new(&mut buf) {
        t.set_source(sport);
        t.set_destination(dport);
        t.set_sequence(seq);
        t.set_acknowledgement(ack);
        t.set_data_offset(5);
        t.set_flags(flags);
        t.set_window(1024);
        let c = match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                pnet_packet::tcp::ipv4_checksum(&t.to_immutable(), &s, &d)
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                pnet_packet::tcp::ipv6_checksum(&t.to_immutable(), &s, &d)
            }
            _ => 0,
        };
        t.set_checksum(c);
    }
    buf
}

/// Broadcast ARP request for `target` from `src_mac`/`src_ip`.
pub fn arp_request(src_mac: MacAddr, src_ip: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    let mut frame = vec![0u8; 42];
    if let Some(mut eth) = MutableEthernetPacket::new(&mut frame) {
        eth.set_destination(MacAddr::broadcast());
        eth.set_source(src_mac);
        eth.set_ethertype(EtherTypes::Arp);
    }
    if let Some(mut arp) = frame.get_mut(14..).and_then(MutableArpPacket::new) {
        arp.set_hardware_type(ArpHardwareTypes::Ethernet);
        arp.set_protocol_type(EtherTypes::Ipv4);
        arp.set_hw_addr_len(6);
        arp.set_proto_addr_len(4);
        arp.set_operation(ArpOperations::Request);
        arp.set_sender_hw_addr(src_mac);
        arp.set_sender_proto_addr(src_ip);
        arp.set_target_hw_addr(MacAddr::zero());
        arp.set_target_proto_addr(target);
    }
    frame
}

/// Neighbour solicitation for `target`, sent to its solicited-node multicast group.
pub fn neighbor_solicitation(src_mac: MacAddr, src_ip: Ipv6Addr, target: Ipv6Addr) -> Vec<u8> {
    let t = target.octets();
    let group = Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | u16::from(t[13]),
        u16::from_be_bytes([t[14], t[15]]),
    );
    let dst_mac = MacAddr::new(0x33, 0x33, 0xff, t[13], t[14], t[15]);
    // ICMPv6: type, code, checksum, reserved, target, option (source link-layer address).
    let mut icmp = vec![135u8, 0, 0, 0, 0, 0, 0, 0];
    icmp.extend_from_slice(&t);
    icmp.extend_from_slice(&[1, 1]);
    icmp.extend_from_slice(&src_mac.octets());
    let c = icmpv6_checksum(&icmp, src_ip, group);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());

    let mut frame = vec![0u8; 14 + 40 + icmp.len()];
    if let Some(mut eth) = MutableEthernetPacket::new(&mut frame) {
        eth.set_destination(dst_mac);
        eth.set_source(src_mac);
        eth.set_ethertype(EtherTypes::Ipv6);
    }
    if let Some(mut ip) = frame.get_mut(14..).and_then(MutableIpv6Packet::new) {
        ip.set_version(6);
        ip.set_payload_length(icmp.len() as u16);
        ip.set_next_header(IpNextHeaderProtocols::Icmpv6);
        ip.set_hop_limit(255);
        ip.set_source(src_ip);
        ip.set_destination(group);
        ip.set_payload(&icmp);
    }
    frame
}

fn icmpv6_checksum(icmp: &[u8], src: Ipv6Addr, dst: Ipv6Addr) -> u16 {
    pnet_packet::util::ipv6_checksum(icmp, 1, &[], &src, &dst, IpNextHeaderProtocols::Icmpv6)
}

// ---------------------------------------------------------------------------------------------
// Reply parsing (pure).

/// Why a reply proves its sender up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyKind {
    Arp,
    Nd,
    Echo,
    Timestamp,
    SynAck,
    Rst,
}

impl ReplyKind {
    pub fn reason(self) -> &'static str {
        match self {
            ReplyKind::Arp => "arp-response",
            ReplyKind::Nd => "nd-response",
            ReplyKind::Echo => "echo-reply",
            ReplyKind::Timestamp => "timestamp-reply",
            ReplyKind::SynAck => "syn-ack",
            ReplyKind::Rst => "rst",
        }
    }
}

/// A validated answer to one of our probes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub from: IpAddr,
    pub kind: ReplyKind,
    pub mac: Option<MacAddr>,
    pub ttl: Option<u8>,
    /// Send time of the answered probe, when the reply carries it (µs since the sweep began;
    /// timestamp replies carry it modulo 2³²).
    pub sent_us: Option<u64>,
}

/// An ARP reply addressed to `our_ip`, as an Ethernet frame.
pub fn parse_arp_reply(frame: &[u8], our_ip: Ipv4Addr) -> Option<Reply> {
    let eth = EthernetPacket::new(frame)?;
    if eth.get_ethertype() != EtherTypes::Arp {
        return None;
    }
    let arp = ArpPacket::new(eth.payload())?;
    if arp.get_operation() != ArpOperations::Reply
        || arp.get_protocol_type() != EtherTypes::Ipv4
        || arp.get_hw_addr_len() != 6
        || arp.get_proto_addr_len() != 4
        || arp.get_target_proto_addr() != our_ip
    {
        return None;
    }
    Some(Reply {
        from: IpAddr::V4(arp.get_sender_proto_addr()),
        kind: ReplyKind::Arp,
        mac: Some(arp.get_sender_hw_addr()),
        ttl: None,
        sent_us: None,
    })
}

/// A neighbour advertisement (hop limit 255, as RFC 4861 requires of on-link answers), as an
/// Ethernet frame. The MAC is the advertised target link-layer address, else the frame's source.
pub fn parse_neighbor_advert(frame: &[u8]) -> Option<Reply> {
    let eth = EthernetPacket::new(frame)?;
    if eth.get_ethertype() != EtherTypes::Ipv6 {
        return None;
    }
    let ip = Ipv6Packet::new(eth.payload())?;
    if ip.get_next_header() != IpNextHeaderProtocols::Icmpv6 || ip.get_hop_limit() != 255 {
        return None;
    }
    let len = usize::from(ip.get_payload_length());
    let payload = ip.payload().get(..len)?;
    let na = NeighborAdvertPacket::new(payload)?;
    if na.get_icmpv6_type().0 != 136 || na.get_icmpv6_code().0 != 0 {
        return None;
    }
    let mut mac = eth.get_source();
    for opt in na.get_options_iter() {
        if opt.get_option_type() == NdpOptionTypes::TargetLLAddr {
            if let [a, b, c, d, e, f, ..] = opt.payload() {
                mac = MacAddr::new(*a, *b, *c, *d, *e, *f);
            }
        }
    }
    Some(Reply {
        from: IpAddr::V6(na.get_target_addr()),
        kind: ReplyKind::Nd,
        mac: Some(mac),
        ttl: None,
        sent_us: None,
    })
}

/// An ICMP echo or timestamp reply to our probes in an IPv4 datagram (as raw ICMP sockets deliver).
pub fn parse_icmp4(datagram: &[u8], keys: &ProbeKeys) -> Option<Reply> {
    let ip = Ipv4Packet::new(datagram)?;
    if ip.get_next_level_protocol() != IpNextHeaderProtocols::Icmp {
        return None;
    }
    let hl = usize::from(ip.get_header_length()) * 4;
    let total = usize::from(ip.get_total_length()).min(datagram.len());
    let icmp = datagram.get(hl..total)?;
    let from = IpAddr::V4(ip.get_source());
    let mut r = parse_icmp_message(false, from, icmp, keys)?;
    r.ttl = Some(ip.get_ttl());
    Some(r)
}

/// An ICMP(v6) echo reply (or ICMPv4 timestamp reply) from `from`, without the IP header.
pub fn parse_icmp_message(v6: bool, from: IpAddr, icmp: &[u8], keys: &ProbeKeys) -> Option<Reply> {
    let (&ty, rest) = icmp.split_first()?;
    let id = u16::from_be_bytes([*rest.get(3)?, *rest.get(4)?]);
    let seq = u16::from_be_bytes([*rest.get(5)?, *rest.get(6)?]);
    let echo_reply = if v6 { 129 } else { 0 };
    if ty == echo_reply && rest.first() == Some(&0) {
        if id != keys.icmp_id || seq != keys.icmp_seq(from, TAG_ECHO) {
            return None;
        }
        let sent = u64::from_be_bytes(icmp.get(8..16)?.try_into().ok()?);
        let mac = u64::from_be_bytes(icmp.get(16..24)?.try_into().ok()?);
        if mac != keys.payload_mac(from, sent) {
            return None;
        }
        return Some(Reply {
            from,
            kind: ReplyKind::Echo,
            mac: None,
            ttl: None,
            sent_us: Some(sent),
        });
    }
    if !v6 && ty == 14 && rest.first() == Some(&0) {
        if id != keys.icmp_id || seq != keys.icmp_seq(from, TAG_TSTAMP) || icmp.len() < 20 {
            return None;
        }
        let orig = u32::from_be_bytes(icmp.get(8..12)?.try_into().ok()?);
        return Some(Reply {
            from,
            kind: ReplyKind::Timestamp,
            mac: None,
            ttl: None,
            sent_us: Some(u64::from(orig)),
        });
    }
    None
}

/// A SYN-ACK or RST answering our SYN or ACK probe, in an IPv4 datagram.
pub fn parse_tcp4(datagram: &[u8], keys: &ProbeKeys) -> Option<Reply> {
    let ip = Ipv4Packet::new(datagram)?;
    if ip.get_next_level_protocol() != IpNextHeaderProtocols::Tcp {
        return None;
    }
    let hl = usize::from(ip.get_header_length()) * 4;
    let total = usize::from(ip.get_total_length()).min(datagram.len());
    let mut r = parse_tcp_segment(IpAddr::V4(ip.get_source()), datagram.get(hl..total)?, keys)?;
    r.ttl = Some(ip.get_ttl());
    Some(r)
}

/// A SYN-ACK or RST from `from` answering our probes, without the IP header.
pub fn parse_tcp_segment(from: IpAddr, segment: &[u8], keys: &ProbeKeys) -> Option<Reply> {
    let tcp = TcpPacket::new(segment)?;
    if tcp.get_destination() != keys.tcp_sport {
        return None;
    }
    let flags = tcp.get_flags();
    let syn_seq = keys.tcp_cookie(from, TAG_SYN);
    let kind = match tcp.get_source() {
        SYN_PROBE_PORT if tcp.get_acknowledgement() == syn_seq.wrapping_add(1) => {
            if flags & (TcpFlags::SYN | TcpFlags::ACK) == TcpFlags::SYN | TcpFlags::ACK {
                ReplyKind::SynAck
            } else if flags & TcpFlags::RST != 0 {
                ReplyKind::Rst
            } else {
                return None;
            }
        }
        ACK_PROBE_PORT
            if flags & TcpFlags::RST != 0
                && tcp.get_sequence() == keys.tcp_cookie(from, TAG_ACK) =>
        {
            ReplyKind::Rst
        }
        _ => return None,
    };
    Some(Reply {
        from,
        kind,
        mac: None,
        ttl: None,
        sent_us: None,
    })
}

// ---------------------------------------------------------------------------------------------
// Routing: where each target is reached from.

/// How one target is probed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Path {
    /// On a local Ethernet segment: ARP (IPv4) or neighbour solicitation (IPv6) via `iface`.
    OnLink { iface: u32, src: IpAddr },
    /// Routed, or our own address: ICMP and TCP probes from `src`.
    Routed { src: IpAddr },
    /// The kernel has no route.
    Unroutable,
}

/// Chooses each target's path: on-link if an Ethernet interface's network contains it, otherwise
/// routed from the source address the kernel would pick.
pub fn plan_paths(targets: &[IpAddr], ifaces: &[NetworkInterface]) -> Vec<Path> {
    let own: HashSet<IpAddr> = ifaces
        .iter()
        .flat_map(|i| i.ips.iter().map(|n| n.ip()))
        .collect();
    targets
        .iter()
        .map(|&t| {
            if own.contains(&t) {
                return Path::Routed { src: t };
            }
            let link_local_v6 = matches!(t, IpAddr::V6(v) if (v.segments()[0] & 0xffc0) == 0xfe80);
            if !t.is_loopback() && !link_local_v6 {
                for i in ifaces {
                    if !i.is_up() || i.is_loopback() || i.mac.is_none_or(|m| m == MacAddr::zero()) {
                        continue;
                    }
                    let max = if t.is_ipv4() { 32 } else { 128 };
                    if let Some(n) = i.ips.iter().find(|n| {
                        n.prefix() < max && n.ip().is_ipv4() == t.is_ipv4() && n.contains(t)
                    }) {
                        return Path::OnLink {
                            iface: i.index,
                            src: n.ip(),
                        };
                    }
                }
            }
            match route_source(t) {
                Some(src) => Path::Routed { src },
                None => Path::Unroutable,
            }
        })
        .collect()
}

/// The source address the kernel would use towards `dst` (connecting a UDP socket sends nothing).
pub fn route_source(dst: IpAddr) -> Option<IpAddr> {
    let bind: SocketAddr = if dst.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let s = UdpSocket::bind(bind).ok()?;
    s.connect(SocketAddr::new(dst, 9)).ok()?;
    s.local_addr().ok().map(|a| a.ip())
}

// ---------------------------------------------------------------------------------------------
// The privileged sweep.

/// Paces sends to a packets-per-second budget.
#[derive(Debug)]
struct Pacer {
    interval: Duration,
    next: Instant,
}

impl Pacer {
    fn new(rate: u32) -> Self {
        Self {
            interval: Duration::from_secs(1) / rate.max(1),
            next: Instant::now(),
        }
    }

    fn wait(&mut self) {
        let now = Instant::now();
        if self.next > now {
            std::thread::sleep(self.next - now);
        } else if now - self.next > Duration::from_millis(5) {
            // Don't bank unused budget into a burst after a pause.
            self.next = now;
        }
        self.next += self.interval;
    }
}

/// State shared between the sending loop and the receiver threads.
struct Sweep<'a> {
    start: Instant,
    keys: ProbeKeys,
    index: HashMap<IpAddr, usize>,
    /// Last send time of each target, µs since `start` (0 = never).
    last_sent: Vec<AtomicU64>,
    found: Mutex<HashMap<IpAddr, UpHost>>,
    remaining: AtomicU64,
    rtt: Mutex<RttEstimator>,
    stop: AtomicBool,
    /// Per receiver thread: when (µs since `start`) it last found its queue empty. A round's wait
    /// only ends once every receiver has caught up past it, so answers queued behind a starved
    /// receiver are not mistaken for silence.
    caught_up: Vec<AtomicU64>,
    progress: &'a dyn Progress,
}

impl Sweep<'_> {
    fn now_us(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }

    fn record(&self, r: Reply) {
        let Some(&i) = self.index.get(&r.from) else {
            return;
        };
        let now = self.now_us();
        let sent = match (r.kind, r.sent_us) {
            (ReplyKind::Timestamp, Some(s)) => {
                // Carried modulo 2^32: rebuild from the current time.
                let lo = (now & 0xffff_ffff) as u32;
                Some(now.saturating_sub(u64::from(lo.wrapping_sub(s as u32))))
            }
            (_, Some(s)) => Some(s),
            _ => Some(
                self.last_sent
                    .get(i)
                    .map_or(0, |a| a.load(Ordering::Relaxed)),
            ),
        };
        let rtt = sent
            .filter(|&s| s > 0 && s <= now)
            .map(|s| Duration::from_micros(now - s));
        let Ok(mut found) = self.found.lock() else {
            return;
        };
        if found.contains_key(&r.from) {
            return;
        }
        found.insert(
            r.from,
            UpHost {
                addr: r.from,
                reason: r.kind.reason().to_string(),
                mac: r.mac.map(|m| m.to_string()),
                rtt,
                ttl: r.ttl,
            },
        );
        drop(found);
        if let (Some(rtt), Ok(mut e)) = (rtt, self.rtt.lock()) {
            e.observe(rtt);
        }
        let _ = self
            .remaining
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
        self.progress.advance(1);
    }

    /// Whether every receiver has emptied its queue since `t`.
    fn receivers_caught_up(&self, t: Instant) -> bool {
        let t_us = t.saturating_duration_since(self.start).as_micros() as u64;
        self.caught_up
            .iter()
            .all(|c| c.load(Ordering::Relaxed) >= t_us)
    }

    fn is_found(&self, a: &IpAddr) -> bool {
        self.found.lock().map(|f| f.contains_key(a)).unwrap_or(true)
    }

    fn mark_sent(&self, a: &IpAddr) {
        if let Some(slot) = self.index.get(a).and_then(|&i| self.last_sent.get(i)) {
            slot.store(self.now_us().max(1), Ordering::Relaxed);
        }
    }
}

/// One Ethernet interface used for ARP/NDP.
struct LinkChannel {
    iface: NetworkInterface,
    mac: MacAddr,
    tx: Box<dyn DataLinkSender>,
    rx: Box<dyn DataLinkReceiver>,
    our_v4: Vec<Ipv4Addr>,
}

/// Raw sockets for routed probes of one address family.
struct RawPair {
    icmp: Socket,
    tcp: Socket,
}

fn raw_socket(domain: Domain, proto: Protocol, kind: &'static str) -> Result<Socket> {
    let s = Socket::new(domain, Type::RAW, Some(proto))
        .map_err(|source| NetscanError::RawSocket { kind, source })?;
    s.set_read_timeout(Some(RECV_TIMEOUT))
        .map_err(|source| NetscanError::RawSocket { kind, source })?;
    // Room for the answers of a whole round of a large sweep.
    let _ = s.set_recv_buffer_size(4 << 20);
    Ok(s)
}

fn privileged_sweep(
    targets: &[IpAddr],
    cfg: &DiscoveryConfig,
    progress: &dyn Progress,
) -> Result<HashMap<IpAddr, UpHost>> {
    let ifaces = pnet_datalink::interfaces();
    let paths = plan_paths(targets, &ifaces);
    let keys = ProbeKeys::random();

    // Channels for the interfaces that have on-link targets.
    let mut links: Vec<LinkChannel> = Vec::new();
    for p in &paths {
        if let Path::OnLink { iface, .. } = p {
            if links.iter().any(|l| l.iface.index == *iface) {
                continue;
            }
            let Some(i) = ifaces.iter().find(|i| i.index == *iface) else {
                continue;
            };
            let dl_cfg = pnet_datalink::Config {
                read_timeout: Some(RECV_TIMEOUT),
                read_buffer_size: RECV_BUF,
                write_buffer_size: RECV_BUF,
                promiscuous: false,
                ..Default::default()
            };
            let (tx, rx) = match pnet_datalink::channel(i, dl_cfg) {
                Ok(Channel::Ethernet(tx, rx)) => (tx, rx),
                Ok(_) => {
                    return Err(NetscanError::RawSocket {
                        kind: "datalink",
                        source: std::io::Error::other(format!("{}: not Ethernet", i.name)),
                    })
                }
                Err(source) => {
                    return Err(NetscanError::RawSocket {
                        kind: "datalink",
                        source,
                    })
                }
            };
            links.push(LinkChannel {
                mac: i.mac.unwrap_or_else(MacAddr::zero),
                our_v4: i
                    .ips
                    .iter()
                    .filter_map(|n| match n.ip() {
                        IpAddr::V4(a) => Some(a),
                        IpAddr::V6(_) => None,
                    })
                    .collect(),
                iface: i.clone(),
                tx,
                rx,
            });
        }
    }
    let need_v4 = paths
        .iter()
        .any(|p| matches!(p, Path::Routed { src } if src.is_ipv4()));
    let need_v6 = paths
        .iter()
        .any(|p| matches!(p, Path::Routed { src } if src.is_ipv6()));
    let raw4 = if need_v4 {
        Some(RawPair {
            icmp: raw_socket(Domain::IPV4, Protocol::ICMPV4, "ICMP")?,
            tcp: raw_socket(Domain::IPV4, Protocol::TCP, "TCP")?,
        })
    } else {
        None
    };
    let raw6 = if need_v6 {
        Some(RawPair {
            icmp: raw_socket(Domain::IPV6, Protocol::ICMPV6, "ICMPv6")?,
            tcp: raw_socket(Domain::IPV6, Protocol::TCP, "TCPv6")?,
        })
    } else {
        None
    };

    let probed = paths.iter().filter(|p| **p != Path::Unroutable).count();
    let receivers = links.len() + 2 * usize::from(raw4.is_some()) + 2 * usize::from(raw6.is_some());
    let sweep = Sweep {
        start: Instant::now(),
        keys,
        index: targets.iter().enumerate().map(|(i, a)| (*a, i)).collect(),
        last_sent: targets.iter().map(|_| AtomicU64::new(0)).collect(),
        found: Mutex::new(HashMap::new()),
        remaining: AtomicU64::new(probed as u64),
        rtt: Mutex::new(RttEstimator::new()),
        stop: AtomicBool::new(false),
        caught_up: (0..receivers).map(|_| AtomicU64::new(0)).collect(),
        progress,
    };
    // Unroutable targets are settled at once.
    progress.advance((targets.len() - probed) as u64);

    let mut txs: Vec<(u32, MacAddr, Box<dyn DataLinkSender>)> = Vec::new();
    let mut rxs = Vec::new();
    for l in links {
        txs.push((l.iface.index, l.mac, l.tx));
        rxs.push((l.rx, l.our_v4));
    }
    let sweep_ref = &sweep;
    std::thread::scope(|scope| -> Result<()> {
        let mut slot = 0..;
        let mut next = || slot.next().unwrap_or(0);
        for (mut rx, our_v4) in rxs {
            let id = next();
            scope.spawn(move || link_receiver(sweep_ref, id, rx.as_mut(), &our_v4));
        }
        if let Some(r) = &raw4 {
            let (a, b) = (next(), next());
            scope.spawn(move || socket_receiver(sweep_ref, a, &r.icmp, Family::V4Icmp));
            scope.spawn(move || socket_receiver(sweep_ref, b, &r.tcp, Family::V4Tcp));
        }
        if let Some(r) = &raw6 {
            let (a, b) = (next(), next());
            scope.spawn(move || socket_receiver(sweep_ref, a, &r.icmp, Family::V6Icmp));
            scope.spawn(move || socket_receiver(sweep_ref, b, &r.tcp, Family::V6Tcp));
        }
        let result = send_rounds(
            sweep_ref,
            targets,
            &paths,
            cfg,
            &mut txs,
            raw4.as_ref(),
            raw6.as_ref(),
        );
        sweep_ref.stop.store(true, Ordering::Relaxed);
        result
    })?;
    let found = sweep.found.into_inner().unwrap_or_default();
    progress.advance(probed.saturating_sub(found.len()) as u64);
    Ok(found)
}

#[derive(Debug, Clone, Copy)]
enum Family {
    V4Icmp,
    V4Tcp,
    V6Icmp,
    V6Tcp,
}

/// Decides when a receiver thread may exit. After the sweep ends, a receiver first drains what
/// is already queued (bounded by [`DRAIN_LIMIT`]): on a busy machine a receiver may not have run
/// for a while, and answers sitting in its socket buffer arrived in time and must count.
struct ReceiverLife<'a, 'p> {
    sweep: &'a Sweep<'p>,
    id: usize,
    drain_until: Option<Instant>,
}

impl<'a, 'p> ReceiverLife<'a, 'p> {
    fn new(sweep: &'a Sweep<'p>, id: usize) -> Self {
        Self {
            sweep,
            id,
            drain_until: None,
        }
    }

    /// Whether to read again; `queue_empty` says the last read timed out.
    fn keep_reading(&mut self, queue_empty: bool) -> bool {
        if queue_empty {
            if let Some(slot) = self.sweep.caught_up.get(self.id) {
                slot.store(self.sweep.now_us(), Ordering::Relaxed);
            }
        }
        if self.drain_until.is_none() && self.sweep.stop.load(Ordering::Relaxed) {
            self.drain_until = Some(Instant::now() + DRAIN_LIMIT);
        }
        match self.drain_until {
            None => true,
            Some(until) => !queue_empty && Instant::now() < until,
        }
    }
}

fn link_receiver(sweep: &Sweep<'_>, id: usize, rx: &mut dyn DataLinkReceiver, our_v4: &[Ipv4Addr]) {
    let mut life = ReceiverLife::new(sweep, id);
    let mut queue_empty = false;
    while life.keep_reading(queue_empty) {
        queue_empty = false;
        let frame = match rx.next() {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
                ) =>
            {
                queue_empty = true;
                continue;
            }
            Err(_) => {
                queue_empty = true;
                std::thread::sleep(TICK);
                continue;
            }
        };
        let reply = our_v4
            .iter()
            .find_map(|ip| parse_arp_reply(frame, *ip))
            .or_else(|| parse_neighbor_advert(frame));
        if let Some(r) = reply {
            sweep.record(r);
        }
    }
}

fn socket_receiver(sweep: &Sweep<'_>, id: usize, sock: &Socket, fam: Family) {
    // std's UdpSocket::recv_from is a safe recvfrom(2), which is all a raw socket needs.
    let Ok(clone) = sock.try_clone() else {
        return;
    };
    let udp: UdpSocket = clone.into();
    let mut buf = vec![0u8; RECV_BUF];
    let mut life = ReceiverLife::new(sweep, id);
    let mut queue_empty = false;
    while life.keep_reading(queue_empty) {
        queue_empty = false;
        let (n, from) = match udp.recv_from(&mut buf) {
            Ok(x) => x,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => {
                queue_empty = true;
                continue;
            }
        };
        let Some(data) = buf.get(..n) else { continue };
        let reply = match fam {
            Family::V4Icmp => parse_icmp4(data, &sweep.keys),
            Family::V4Tcp => parse_tcp4(data, &sweep.keys),
            Family::V6Icmp => parse_icmp_message(true, from.ip(), data, &sweep.keys),
            Family::V6Tcp => parse_tcp_segment(from.ip(), data, &sweep.keys),
        };
        if let Some(r) = reply {
            sweep.record(r);
        }
    }
}

fn send_rounds(
    sweep: &Sweep<'_>,
    targets: &[IpAddr],
    paths: &[Path],
    cfg: &DiscoveryConfig,
    txs: &mut [(u32, MacAddr, Box<dyn DataLinkSender>)],
    raw4: Option<&RawPair>,
    raw6: Option<&RawPair>,
) -> Result<()> {
    let mut pacer = Pacer::new(cfg.max_rate.unwrap_or(DEFAULT_RATE));
    let rounds = u32::from(cfg.retries) + 1;
    for round in 0..rounds {
        let mut sent_any = false;
        for (t, p) in targets.iter().zip(paths) {
            if sweep.is_found(t) {
                continue;
            }
            match (p, t) {
                (Path::OnLink { iface, src }, _) => {
                    let Some((_, mac, tx)) = txs.iter_mut().find(|(i, _, _)| i == iface) else {
                        continue;
                    };
                    let frame = match (src, t) {
                        (IpAddr::V4(s), IpAddr::V4(d)) => arp_request(*mac, *s, *d),
                        (IpAddr::V6(s), IpAddr::V6(d)) => neighbor_solicitation(*mac, *s, *d),
                        _ => continue,
                    };
                    pacer.wait();
                    sweep.mark_sent(t);
                    // A full transmit ring is the same as a lost frame: the next round resends.
                    let _ = tx.send_to(&frame, None);
                    sent_any = true;
                }
                (Path::Routed { src }, dst) => {
                    let raw = if dst.is_ipv4() { raw4 } else { raw6 };
                    let Some(raw) = raw else { continue };
                    send_routed(sweep, raw, *src, *dst, &mut pacer, RoutedStage::Echo);
                    sent_any = true;
                }
                (Path::Unroutable, _) => {}
            }
        }
        // Most hosts answer the echo batch while it is still being sent; only those still silent
        // get the timestamp and TCP probes, which keeps a responsive routed sweep at one packet
        // per host.
        for (t, p) in targets.iter().zip(paths) {
            if let Path::Routed { src } = p {
                if sweep.is_found(t) {
                    continue;
                }
                let raw = if t.is_ipv4() { raw4 } else { raw6 };
                let Some(raw) = raw else { continue };
                send_routed(sweep, raw, *src, *t, &mut pacer, RoutedStage::Others);
            }
        }
        if !sent_any {
            break;
        }
        // Wait one retransmission timeout (twice that, at least MIN_FINAL_WAIT, after the last
        // round), re-reading the estimate as answers refine it; stop early once all answered.
        let round_end = Instant::now();
        let last = round + 1 == rounds;
        loop {
            if sweep.remaining.load(Ordering::Relaxed) == 0 {
                return Ok(());
            }
            let rto = sweep
                .rtt
                .lock()
                .map(|e| e.rto())
                .unwrap_or(crate::timing::INITIAL_RTO);
            let wait = if last {
                (rto * 2).max(MIN_FINAL_WAIT)
            } else {
                rto
            };
            let elapsed = round_end.elapsed();
            if elapsed >= wait + CATCH_UP_LIMIT
                || (elapsed >= wait && sweep.receivers_caught_up(round_end + wait))
            {
                break;
            }
            std::thread::sleep(TICK);
        }
    }
    Ok(())
}

/// Which of a routed target's probes to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RoutedStage {
    Echo,
    /// ICMP timestamp (IPv4), TCP SYN to 443 and TCP ACK to 80.
    Others,
}

fn send_routed(
    sweep: &Sweep<'_>,
    raw: &RawPair,
    src: IpAddr,
    dst: IpAddr,
    pacer: &mut Pacer,
    stage: RoutedStage,
) {
    let keys = &sweep.keys;
    let to = SockAddr::from(SocketAddr::new(dst, 0));
    sweep.mark_sent(&dst);
    let v6 = dst.is_ipv6();
    if stage == RoutedStage::Echo {
        pacer.wait();
        let _ = raw
            .icmp
            .send_to(&echo_request(v6, keys, dst, sweep.now_us()), &to);
        return;
    }
    if !v6 {
        pacer.wait();
        let _ = raw
            .icmp
            .send_to(&timestamp_request(keys, dst, sweep.now_us()), &to);
    }
    let syn = tcp_probe(
        src,
        dst,
        keys.tcp_sport,
        SYN_PROBE_PORT,
        TcpFlags::SYN,
        keys.tcp_cookie(dst, TAG_SYN),
        0,
    );
    pacer.wait();
    let _ = raw.tcp.send_to(&syn, &to);
    let ack = tcp_probe(
        src,
        dst,
        keys.tcp_sport,
        ACK_PROBE_PORT,
        TcpFlags::ACK,
        keys.tcp_cookie(dst, b'q'),
        keys.tcp_cookie(dst, TAG_ACK),
    );
    pacer.wait();
    let _ = raw.tcp.send_to(&ack, &to);
}

// ---------------------------------------------------------------------------------------------
// The unprivileged sweep.

async fn unprivileged_sweep(
    targets: &[IpAddr],
    cfg: &DiscoveryConfig,
    progress: Arc<dyn Progress>,
) -> Result<HashMap<IpAddr, UpHost>> {
    let found: Arc<Mutex<HashMap<IpAddr, UpHost>>> = Arc::new(Mutex::new(HashMap::new()));
    let stop = Arc::new(AtomicBool::new(false));
    // The echo sweep and the connects run side by side; each gets half of the global budget.
    let rate = (cfg.max_rate.unwrap_or(DEFAULT_RATE) / 2).max(1);

    // ICMP datagram sockets, where the kernel permits them, in a thread of their own.
    let icmp_task = {
        let (t, f, s) = (targets.to_vec(), found.clone(), stop.clone());
        let retries = cfg.retries;
        tokio::task::spawn_blocking(move || icmp_dgram_sweep(&t, retries, rate, &f, &s))
    };

    let pacer = Arc::new(tokio::sync::Mutex::new(Pacer::new(rate)));
    let sem = Arc::new(tokio::sync::Semaphore::new(CONNECT_CONCURRENCY));
    // One retry at most: a connect round costs a full CONNECT_TIMEOUT for every silent host, and
    // the kernel already retransmits a lost SYN within it.
    let rounds = 1 + u32::from(cfg.retries.min(1));
    for _ in 0..rounds {
        let mut set = tokio::task::JoinSet::new();
        for &t in targets {
            if found.lock().map(|f| f.contains_key(&t)).unwrap_or(true) {
                continue;
            }
            let (sem, pacer, found) = (sem.clone(), pacer.clone(), found.clone());
            set.spawn(async move {
                let Ok(_permit) = sem.acquire_owned().await else {
                    return;
                };
                if found.lock().map(|f| f.contains_key(&t)).unwrap_or(true) {
                    return;
                }
                let probe = |port: u16| {
                    let pacer = pacer.clone();
                    async move {
                        {
                            let mut p = pacer.lock().await;
                            let now = Instant::now();
                            if p.next > now {
                                tokio::time::sleep(p.next - now).await;
                            }
                            let floor = Instant::now()
                                .checked_sub(Duration::from_millis(5))
                                .unwrap_or_else(Instant::now);
                            p.next = p.next.max(floor) + p.interval;
                        }
                        let started = Instant::now();
                        let r = tokio::time::timeout(
                            CONNECT_TIMEOUT,
                            tokio::net::TcpStream::connect(SocketAddr::new(t, port)),
                        )
                        .await;
                        match r {
                            Ok(Ok(_)) => Some(("syn-ack", started.elapsed())),
                            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                                Some(("conn-refused", started.elapsed()))
                            }
                            _ => None,
                        }
                    }
                };
                let (a, b) = tokio::join!(probe(SYN_PROBE_PORT), probe(ACK_PROBE_PORT));
                if let Some((reason, rtt)) = a.or(b) {
                    if let Ok(mut f) = found.lock() {
                        f.entry(t).or_insert(UpHost {
                            addr: t,
                            reason: reason.to_string(),
                            mac: None,
                            rtt: Some(rtt),
                            ttl: None,
                        });
                    }
                }
            });
        }
        while set.join_next().await.is_some() {}
        let all = found.lock().map(|f| f.len()).unwrap_or(0);
        if all == targets.len() {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let _ = icmp_task.await;
    let out = found.lock().map(|f| f.clone()).unwrap_or_default();
    progress.advance(targets.len() as u64);
    Ok(out)
}

/// Echo sweep through `SOCK_DGRAM`/`IPPROTO_ICMP` sockets (no privilege needed where
/// `net.ipv4.ping_group_range` includes our group). The kernel picks the identifier, so replies
/// are recognised by sequence number and payload authenticator.
fn icmp_dgram_sweep(
    targets: &[IpAddr],
    retries: u8,
    rate: u32,
    found: &Mutex<HashMap<IpAddr, UpHost>>,
    stop: &AtomicBool,
) {
    let open = |d: Domain, p: Protocol| {
        let s = Socket::new(d, Type::DGRAM, Some(p)).ok()?;
        s.set_read_timeout(Some(RECV_TIMEOUT)).ok()?;
        let u: UdpSocket = s.into();
        Some(u)
    };
    let s4 = targets
        .iter()
        .any(IpAddr::is_ipv4)
        .then(|| open(Domain::IPV4, Protocol::ICMPV4))
        .flatten();
    let s6 = targets
        .iter()
        .any(IpAddr::is_ipv6)
        .then(|| open(Domain::IPV6, Protocol::ICMPV6))
        .flatten();
    if s4.is_none() && s6.is_none() {
        return;
    }
    let start = Instant::now();
    let mut keys = ProbeKeys::random();
    let mut rtt = RttEstimator::new();
    let mut pacer = Pacer::new(rate);
    let mut buf = vec![0u8; RECV_BUF];
    let rounds = u32::from(retries) + 1;
    for round in 0..rounds {
        for &t in targets {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            if found.lock().map(|f| f.contains_key(&t)).unwrap_or(true) {
                continue;
            }
            let sock = if t.is_ipv4() { &s4 } else { &s6 };
            let Some(sock) = sock else { continue };
            pacer.wait();
            let mut pkt = echo_request(t.is_ipv6(), &keys, t, start.elapsed().as_micros() as u64);
            // The kernel rewrites the identifier and fills in the checksum of datagram ICMP.
            if let Some(id) = pkt.get_mut(4..6) {
                id.copy_from_slice(&[0, 0]);
            }
            let _ = sock.send_to(&pkt, SocketAddr::new(t, 0));
        }
        let round_end = Instant::now();
        let wait = if round + 1 == rounds {
            (rtt.rto() * 2).max(MIN_FINAL_WAIT)
        } else {
            rtt.rto()
        };
        while round_end.elapsed() < wait && !stop.load(Ordering::Relaxed) {
            for sock in [&s4, &s6].into_iter().flatten() {
                let Ok((n, from)) = sock.recv_from(&mut buf) else {
                    continue;
                };
                let Some(data) = buf.get(..n) else { continue };
                // The kernel matched the identifier already; ours is whatever it chose.
                let Some(id) = data.get(4..6) else { continue };
                keys.icmp_id = u16::from_be_bytes([id[0], id[1]]);
                let Some(r) = parse_icmp_message(from.is_ipv6(), from.ip(), data, &keys) else {
                    continue;
                };
                let now = start.elapsed().as_micros() as u64;
                let sample = r
                    .sent_us
                    .filter(|s| *s <= now)
                    .map(|s| Duration::from_micros(now - s));
                if let Some(s) = sample {
                    rtt.observe(s);
                }
                if let Ok(mut f) = found.lock() {
                    f.entry(r.from).or_insert(UpHost {
                        addr: r.from,
                        reason: "echo-reply".into(),
                        mac: None,
                        rtt: sample,
                        ttl: None,
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::NoProgress;

    fn keys() -> ProbeKeys {
        ProbeKeys::new(1, 2, 0x4242, 45_000)
    }

    /// An ARP reply as captured on a bridge: 198.18.200.10 is at 02:00:00:00:c8:0a, to .2.
    const ARP_REPLY: [u8; 42] = [
        0x02, 0x00, 0x00, 0x00, 0xc8, 0x02, 0x02, 0x00, 0x00, 0x00, 0xc8, 0x0a, 0x08,
        0x06, // eth
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x02, // htype, ptype, hlen, plen, op=reply
        0x02, 0x00, 0x00, 0x00, 0xc8, 0x0a, 198, 18, 200, 10, // sender
        0x02, 0x00, 0x00, 0x00, 0xc8, 0x02, 198, 18, 200, 2, // target
    ];

    #[test]
    fn arp_reply_fixture_parses_and_is_addressed_to_us() {
        let us = Ipv4Addr::new(198, 18, 200, 2);
        let r = parse_arp_reply(&ARP_REPLY, us);
        assert_eq!(
            r.as_ref()
                .map(|r| (r.from, r.kind, r.mac.map(|m| m.to_string()))),
            Some((
                IpAddr::V4(Ipv4Addr::new(198, 18, 200, 10)),
                ReplyKind::Arp,
                Some("02:00:00:00:c8:0a".to_string())
            ))
        );
        assert_eq!(
            parse_arp_reply(&ARP_REPLY, Ipv4Addr::new(198, 18, 200, 3)),
            None
        );
        let mut request = ARP_REPLY;
        request[21] = 1;
        assert_eq!(
            parse_arp_reply(&request, us),
            None,
            "requests are not answers"
        );
        for n in 0..ARP_REPLY.len() {
            assert_eq!(
                parse_arp_reply(&ARP_REPLY[..n], us),
                None,
                "truncated at {n}"
            );
        }
    }

    #[test]
    fn arp_request_is_well_formed() {
        let mac = MacAddr::new(2, 0, 0, 0, 0xc8, 2);
        let f = arp_request(
            mac,
            Ipv4Addr::new(198, 18, 200, 2),
            Ipv4Addr::new(198, 18, 200, 10),
        );
        assert_eq!(f.len(), 42);
        assert_eq!(&f[..6], &[0xff; 6]);
        assert_eq!(&f[12..14], &[8, 6]);
        assert_eq!(&f[20..22], &[0, 1], "operation request");
        assert_eq!(&f[38..42], &[198, 18, 200, 10]);
    }

    #[test]
    fn neighbor_solicitation_and_advert_round_trip() {
        let mac = MacAddr::new(2, 0, 0, 0, 0xc8, 2);
        let src: Ipv6Addr = "2001:db8:200::2".parse().unwrap_or(Ipv6Addr::UNSPECIFIED);
        let target: Ipv6Addr = "2001:db8:200::a".parse().unwrap_or(Ipv6Addr::UNSPECIFIED);
        let ns = neighbor_solicitation(mac, src, target);
        assert_eq!(&ns[..6], &[0x33, 0x33, 0xff, 0, 0, 0x0a]);
        let ip = Ipv6Packet::new(&ns[14..]);
        assert_eq!(ip.as_ref().map(|i| i.get_hop_limit()), Some(255));
        assert_eq!(
            ip.map(|i| i.get_destination().to_string()),
            Some("ff02::1:ff00:a".to_string())
        );
        // Verify the checksum the way a receiver does: summing with it gives zero.
        let icmp = &ns[54..];
        let group: Ipv6Addr = "ff02::1:ff00:a".parse().unwrap_or(Ipv6Addr::UNSPECIFIED);
        let mut zeroed = icmp.to_vec();
        zeroed[2] = 0;
        zeroed[3] = 0;
        assert_eq!(
            icmpv6_checksum(&zeroed, src, group).to_be_bytes(),
            [icmp[2], icmp[3]]
        );

        // A solicited advertisement from the target, with its target link-layer option.
        let tmac = [2u8, 0, 0, 0, 0xc8, 0x0a];
        let mut na = vec![136u8, 0, 0, 0, 0x60, 0, 0, 0];
        na.extend_from_slice(&target.octets());
        na.extend_from_slice(&[2, 1]);
        na.extend_from_slice(&tmac);
        let mut frame = Vec::new();
        frame.extend_from_slice(&mac.octets());
        frame.extend_from_slice(&[2, 0, 0, 0, 0, 0x99]); // bridge-rewritten source, not the target's
        frame.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0]);
        frame.extend_from_slice(&(na.len() as u16).to_be_bytes());
        frame.extend_from_slice(&[58, 255]);
        frame.extend_from_slice(&target.octets());
        frame.extend_from_slice(&src.octets());
        frame.extend_from_slice(&na);
        let r = parse_neighbor_advert(&frame);
        assert_eq!(
            r.map(|r| (r.from, r.kind, r.mac.map(|m| m.to_string()))),
            Some((
                IpAddr::V6(target),
                ReplyKind::Nd,
                Some("02:00:00:00:c8:0a".into())
            ))
        );
        let mut routed = frame.clone();
        routed[21] = 64;
        assert_eq!(
            parse_neighbor_advert(&routed),
            None,
            "hop limit must be 255"
        );
        for n in 0..frame.len() {
            assert_eq!(parse_neighbor_advert(&frame[..n]), None, "truncated at {n}");
        }
    }

    fn ipv4_wrap(proto: u8, ttl: u8, src: [u8; 4], payload: &[u8]) -> Vec<u8> {
        let mut d = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, ttl, proto, 0, 0];
        d[2..4].copy_from_slice(&((20 + payload.len()) as u16).to_be_bytes());
        d.extend_from_slice(&src);
        d.extend_from_slice(&[198, 18, 200, 2]);
        d.extend_from_slice(payload);
        d
    }

    /// Turns our echo request into the reply a host would send (type 0, same body).
    fn as_echo_reply(req: &[u8]) -> Vec<u8> {
        let mut r = req.to_vec();
        r[0] = 0;
        r
    }

    #[test]
    fn echo_replies_need_our_id_sequence_and_authenticated_payload() {
        let k = keys();
        let host = IpAddr::V4(Ipv4Addr::new(198, 18, 201, 10));
        let req = echo_request(false, &k, host, 123_456);
        assert_eq!(
            pnet_packet::util::checksum(&req, 1),
            u16::from_be_bytes([req[2], req[3]])
        );
        let d = ipv4_wrap(1, 61, [198, 18, 201, 10], &as_echo_reply(&req));
        let r = parse_icmp4(&d, &k);
        assert_eq!(
            r.map(|r| (r.from, r.kind, r.ttl, r.sent_us)),
            Some((host, ReplyKind::Echo, Some(61), Some(123_456)))
        );
        // The same reply claimed by another address (spoofed or stray) is refused.
        let other = ipv4_wrap(1, 61, [198, 18, 201, 11], &as_echo_reply(&req));
        assert_eq!(parse_icmp4(&other, &k), None);
        // A forged send time fails the authenticator.
        let mut forged = as_echo_reply(&req);
        forged[15] ^= 1;
        assert_eq!(
            parse_icmp4(&ipv4_wrap(1, 61, [198, 18, 201, 10], &forged), &k),
            None
        );
        // Someone else's ping (other identifier) is ignored, and so is our own request.
        let mut foreign = as_echo_reply(&req);
        foreign[4] ^= 0xff;
        assert_eq!(
            parse_icmp4(&ipv4_wrap(1, 61, [198, 18, 201, 10], &foreign), &k),
            None
        );
        assert_eq!(
            parse_icmp4(&ipv4_wrap(1, 61, [198, 18, 201, 10], &req), &k),
            None
        );
        for n in 0..d.len() {
            assert_eq!(parse_icmp4(&d[..n], &k), None, "truncated at {n}");
        }
    }

    #[test]
    fn timestamp_reply_is_recognised() {
        let k = keys();
        let host = IpAddr::V4(Ipv4Addr::new(198, 18, 201, 11));
        let mut reply = timestamp_request(&k, host, 0x1_0000_0042);
        reply[0] = 14;
        reply[12..20].copy_from_slice(&[0, 1, 2, 3, 0, 1, 2, 3]);
        let r = parse_icmp4(&ipv4_wrap(1, 64, [198, 18, 201, 11], &reply), &k);
        assert_eq!(
            r.map(|r| (r.kind, r.sent_us)),
            Some((ReplyKind::Timestamp, Some(0x42)))
        );
    }

    #[test]
    fn tcp_answers_match_cookies_and_ports() {
        let k = keys();
        let host = IpAddr::V4(Ipv4Addr::new(198, 18, 201, 10));
        let us = IpAddr::V4(Ipv4Addr::new(198, 18, 200, 2));
        let syn_seq = k.tcp_cookie(host, TAG_SYN);
        let syn_ack = tcp_probe(
            host,
            us,
            443,
            k.tcp_sport,
            TcpFlags::SYN | TcpFlags::ACK,
            7,
            syn_seq.wrapping_add(1),
        );
        let r = parse_tcp4(&ipv4_wrap(6, 63, [198, 18, 201, 10], &syn_ack), &k);
        assert_eq!(
            r.map(|r| (r.kind, r.ttl)),
            Some((ReplyKind::SynAck, Some(63)))
        );
        let rst = tcp_probe(
            host,
            us,
            443,
            k.tcp_sport,
            TcpFlags::RST | TcpFlags::ACK,
            0,
            syn_seq.wrapping_add(1),
        );
        assert_eq!(
            parse_tcp4(&ipv4_wrap(6, 63, [198, 18, 201, 10], &rst), &k).map(|r| r.kind),
            Some(ReplyKind::Rst)
        );
        let ack_rst = tcp_probe(
            host,
            us,
            80,
            k.tcp_sport,
            TcpFlags::RST,
            k.tcp_cookie(host, TAG_ACK),
            0,
        );
        assert_eq!(
            parse_tcp4(&ipv4_wrap(6, 63, [198, 18, 201, 10], &ack_rst), &k).map(|r| r.kind),
            Some(ReplyKind::Rst)
        );
        // Wrong acknowledgement, wrong port, wrong sender: not ours.
        let stray = tcp_probe(
            host,
            us,
            443,
            k.tcp_sport,
            TcpFlags::SYN | TcpFlags::ACK,
            7,
            syn_seq,
        );
        assert_eq!(
            parse_tcp4(&ipv4_wrap(6, 63, [198, 18, 201, 10], &stray), &k),
            None
        );
        let other_port = tcp_probe(
            host,
            us,
            443,
            k.tcp_sport.wrapping_add(1),
            TcpFlags::RST,
            0,
            syn_seq.wrapping_add(1),
        );
        assert_eq!(
            parse_tcp4(&ipv4_wrap(6, 63, [198, 18, 201, 10], &other_port), &k),
            None
        );
        assert_eq!(
            parse_tcp4(&ipv4_wrap(6, 63, [198, 18, 201, 99], &syn_ack), &k),
            None
        );
        // Checksum of our probe verifies.
        let syn = tcp_probe(us, host, k.tcp_sport, 443, TcpFlags::SYN, syn_seq, 0);
        let pkt = TcpPacket::new(&syn);
        let (IpAddr::V4(s), IpAddr::V4(d)) = (us, host) else {
            return;
        };
        assert_eq!(
            pkt.map(|p| pnet_packet::tcp::ipv4_checksum(&p, &s, &d) == p.get_checksum()),
            Some(true)
        );
    }

    #[test]
    fn on_link_targets_use_the_interface_that_contains_them() {
        let ifaces = pnet_datalink::interfaces();
        let paths = plan_paths(
            &[
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V4(Ipv4Addr::new(127, 0, 0, 9)),
            ],
            &ifaces,
        );
        assert_eq!(
            paths[0],
            Path::Routed {
                src: IpAddr::V4(Ipv4Addr::LOCALHOST)
            }
        );
        assert!(
            matches!(paths[1], Path::Routed { src } if src.is_loopback()),
            "{:?}",
            paths[1]
        );
    }

    /// Loopback answers ICMP for all of 127/8; as root this exercises the raw ICMP path end to end.
    /// Without root there is nothing to send with, so only the unprivileged path runs.
    #[tokio::test]
    async fn loopback_hosts_are_found_with_rtt() {
        let targets: Vec<IpAddr> = (1..=20u8)
            .map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 3, i)))
            .collect();
        let privileged = crate::syn::raw_sockets_available();
        let cfg = DiscoveryConfig {
            privileged,
            max_rate: None,
            retries: 1,
        };
        let started = Instant::now();
        let up = discover(&targets, &cfg, Arc::new(NoProgress))
            .await
            .unwrap_or_default();
        assert_eq!(
            up.iter().map(|h| h.addr).collect::<Vec<_>>(),
            targets,
            "{up:?}"
        );
        if privileged {
            assert!(
                up.iter()
                    .all(|h| ["echo-reply", "timestamp-reply", "rst", "syn-ack"]
                        .contains(&h.reason.as_str())
                        && h.ttl == Some(64)
                        && h.rtt.is_some()),
                "{up:?}"
            );
            assert!(
                started.elapsed() < Duration::from_secs(1),
                "{:?}",
                started.elapsed()
            );
        }
    }

    #[tokio::test]
    async fn unprivileged_connect_finds_loopback_by_refusal() {
        let targets: Vec<IpAddr> = vec![
            IpAddr::V4(Ipv4Addr::new(127, 0, 4, 1)),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ];
        let cfg = DiscoveryConfig {
            privileged: false,
            max_rate: Some(1000),
            retries: 0,
        };
        let up = discover(&targets, &cfg, Arc::new(NoProgress))
            .await
            .unwrap_or_default();
        assert_eq!(up.len(), 2, "{up:?}");
        assert!(up
            .iter()
            .all(|h| ["conn-refused", "syn-ack", "echo-reply"].contains(&h.reason.as_str())));
    }

    #[tokio::test]
    async fn zero_rate_is_refused() {
        let cfg = DiscoveryConfig {
            privileged: false,
            max_rate: Some(0),
            retries: 0,
        };
        let r = discover(
            &[IpAddr::V4(Ipv4Addr::LOCALHOST)],
            &cfg,
            Arc::new(NoProgress),
        )
        .await;
        assert!(matches!(r, Err(NetscanError::Config(_))));
    }

    proptest::proptest! {
        #[test]
        fn reply_parsers_never_panic(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let k = keys();
            let _ = parse_arp_reply(&data, Ipv4Addr::new(198, 18, 200, 2));
            let _ = parse_neighbor_advert(&data);
            let _ = parse_icmp4(&data, &k);
            let _ = parse_tcp4(&data, &k);
            let _ = parse_icmp_message(true, IpAddr::V6(Ipv6Addr::LOCALHOST), &data, &k);
            let _ = parse_tcp_segment(IpAddr::V6(Ipv6Addr::LOCALHOST), &data, &k);
        }
    }

    #[test]
    fn rounds_wait_for_receivers_and_receivers_drain_before_exiting() {
        let np = NoProgress;
        let sweep = Sweep {
            start: Instant::now(),
            keys: keys(),
            index: HashMap::new(),
            last_sent: Vec::new(),
            found: Mutex::new(HashMap::new()),
            remaining: AtomicU64::new(1),
            rtt: Mutex::new(RttEstimator::new()),
            stop: AtomicBool::new(false),
            caught_up: vec![AtomicU64::new(0), AtomicU64::new(0)],
            progress: &np,
        };
        std::thread::sleep(Duration::from_millis(2));
        let t = Instant::now();
        std::thread::sleep(Duration::from_millis(2));
        assert!(!sweep.receivers_caught_up(t));
        let mut a = ReceiverLife::new(&sweep, 0);
        let mut b = ReceiverLife::new(&sweep, 1);
        assert!(a.keep_reading(true));
        assert!(
            !sweep.receivers_caught_up(t),
            "receiver 1 has not emptied its queue yet"
        );
        assert!(b.keep_reading(false));
        assert!(
            !sweep.receivers_caught_up(t),
            "reading a packet is not catching up"
        );
        assert!(b.keep_reading(true));
        assert!(sweep.receivers_caught_up(t));
        sweep.stop.store(true, Ordering::Relaxed);
        assert!(
            a.keep_reading(false),
            "after the end, queued answers are still read"
        );
        assert!(
            !a.keep_reading(true),
            "and the receiver exits once its queue is empty"
        );
    }

    #[test]
    fn pacer_holds_the_rate() {
        let mut p = Pacer::new(1000);
        let started = Instant::now();
        for _ in 0..50 {
            p.wait();
        }
        assert!(
            started.elapsed() >= Duration::from_millis(45),
            "{:?}",
            started.elapsed()
        );
    }
}
