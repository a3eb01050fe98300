//! TCP probe building and reply parsing for the raw-socket scanners.
//!
//! Pure functions over bytes: nothing here touches a socket, so every parser can be unit-tested,
//! property-tested and fuzzed (`netscan/fuzz`, target `packet`). Parsers never trust a length field:
//! every offset is checked against the buffer, and a short or inconsistent packet is a typed
//! [`PacketError`], never a panic.
//!
//! Why hand-written rather than pnet's packet types: the scanner's hot path parses every TCP packet
//! the namespace receives, and it only needs a dozen fields. A flat, allocation-free parser is both
//! faster and easier to fuzz.

use siphasher::sip::SipHasher13;
use std::hash::Hasher;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub const TCP_FIN: u8 = 0x01;
pub const TCP_SYN: u8 = 0x02;
pub const TCP_RST: u8 = 0x04;
pub const TCP_PSH: u8 = 0x08;
pub const TCP_ACK: u8 = 0x10;

/// Length of the SYN probes we build: a 20-byte header and 20 bytes of options.
pub const SYN_LEN: usize = 40;

/// Why a received packet could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PacketError {
    /// Fewer bytes than the header being read needs.
    Truncated { need: usize, have: usize },
    /// The IP version nibble is not the one expected.
    WrongVersion(u8),
    /// The IP header length field is below its minimum.
    BadHeaderLength(usize),
    /// Not a TCP packet (carries the IP protocol number).
    NotTcp(u8),
    /// A fragment other than the first one: it carries no TCP header.
    Fragment,
}

impl std::fmt::Display for PacketError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PacketError::Truncated { need, have } => {
                write!(f, "truncated packet: need {need} bytes, have {have}")
            }
            PacketError::WrongVersion(v) => write!(f, "unexpected IP version {v}"),
            PacketError::BadHeaderLength(l) => write!(f, "bad header length {l}"),
            PacketError::NotTcp(p) => write!(f, "IP protocol {p} is not TCP"),
            PacketError::Fragment => f.write_str("non-first IP fragment"),
        }
    }
}

impl std::error::Error for PacketError {}

/// The TCP options of a segment, reduced to what OS fingerprinting uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TcpOptionSummary {
    pub mss: Option<u16>,
    pub wscale: Option<u8>,
    pub sack_permitted: bool,
    pub timestamp: bool,
    /// Option kinds in order as letters (M, S, T, N, W, E, or ? for others), at most 16.
    pub order: [u8; 16],
    pub order_len: u8,
}

impl TcpOptionSummary {
    /// The option order as a string such as `MSTNW`.
    pub fn order_str(&self) -> String {
        self.order
            .iter()
            .take(self.order_len as usize)
            .map(|b| *b as char)
            .collect()
    }

    fn push(&mut self, letter: u8) {
        if let Some(slot) = self.order.get_mut(self.order_len as usize) {
            *slot = letter;
            self.order_len += 1;
        }
    }
}

/// The fields of a TCP segment the scanner uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpSegment {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub window: u16,
    pub options: TcpOptionSummary,
}

/// The IPv4 header fields the scanner uses, with the TCP segment it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Tcp {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub ttl: u8,
    pub dont_fragment: bool,
    pub tcp: TcpSegment,
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes([
        *b.get(at)?,
        *b.get(at + 1)?,
        *b.get(at + 2)?,
        *b.get(at + 3)?,
    ]))
}

/// Parses an IPv4 packet carrying TCP, as a raw `IPPROTO_TCP` socket delivers it.
pub fn parse_ipv4_tcp(buf: &[u8]) -> Result<Ipv4Tcp, PacketError> {
    let first = *buf
        .first()
        .ok_or(PacketError::Truncated { need: 20, have: 0 })?;
    let version = first >> 4;
    if version != 4 {
        return Err(PacketError::WrongVersion(version));
    }
    let ihl = usize::from(first & 0x0f) * 4;
    if ihl < 20 {
        return Err(PacketError::BadHeaderLength(ihl));
    }
    if buf.len() < ihl {
        return Err(PacketError::Truncated {
            need: ihl,
            have: buf.len(),
        });
    }
    let frag = be16(buf, 6).unwrap_or(0);
    if frag & 0x1fff != 0 {
        return Err(PacketError::Fragment);
    }
    let proto = buf[9];
    if proto != 6 {
        return Err(PacketError::NotTcp(proto));
    }
    let src = Ipv4Addr::new(buf[12], buf[13], buf[14], buf[15]);
    let dst = Ipv4Addr::new(buf[16], buf[17], buf[18], buf[19]);
    let tcp = parse_tcp(&buf[ihl..])?;
    Ok(Ipv4Tcp {
        src,
        dst,
        ttl: buf[8],
        dont_fragment: frag & 0x4000 != 0,
        tcp,
    })
}

/// Parses a TCP header and its options.
pub fn parse_tcp(buf: &[u8]) -> Result<TcpSegment, PacketError> {
    if buf.len() < 20 {
        return Err(PacketError::Truncated {
            need: 20,
            have: buf.len(),
        });
    }
    let data_offset = usize::from(buf[12] >> 4) * 4;
    if data_offset < 20 {
        return Err(PacketError::BadHeaderLength(data_offset));
    }
    if buf.len() < data_offset {
        return Err(PacketError::Truncated {
            need: data_offset,
            have: buf.len(),
        });
    }
    let truncated = PacketError::Truncated {
        need: 20,
        have: buf.len(),
    };
    Ok(TcpSegment {
        src_port: be16(buf, 0).ok_or(truncated)?,
        dst_port: be16(buf, 2).ok_or(truncated)?,
        seq: be32(buf, 4).ok_or(truncated)?,
        ack: be32(buf, 8).ok_or(truncated)?,
        flags: buf[13],
        window: be16(buf, 14).ok_or(truncated)?,
        options: parse_tcp_options(&buf[20..data_offset]),
    })
}

/// Parses TCP options leniently: a malformed option ends the walk, keeping what was read.
pub fn parse_tcp_options(mut opts: &[u8]) -> TcpOptionSummary {
    let mut s = TcpOptionSummary::default();
    // At most 40 bytes of options exist, so the walk is bounded by the slice length.
    while let Some(&kind) = opts.first() {
        match kind {
            0 => {
                s.push(b'E');
                break;
            }
            1 => {
                s.push(b'N');
                opts = &opts[1..];
                continue;
            }
            _ => {}
        }
        let Some(&len) = opts.get(1) else { break };
        let len = usize::from(len);
        if len < 2 || len > opts.len() {
            break;
        }
        let body = &opts[2..len];
        match (kind, len) {
            (2, 4) => {
                s.mss = be16(body, 0);
                s.push(b'M');
            }
            (3, 3) => {
                s.wscale = body.first().copied();
                s.push(b'W');
            }
            (4, 2) => {
                s.sack_permitted = true;
                s.push(b'S');
            }
            (8, 10) => {
                s.timestamp = true;
                s.push(b'T');
            }
            _ => s.push(b'?'),
        }
        opts = &opts[len..];
    }
    s
}

/// Internet checksum (RFC 1071) over `data`, starting from a partial `sum`.
fn checksum_add(mut sum: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    sum
}

fn checksum_fold(mut sum: u32) -> u16 {
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn pseudo_header_sum(src: IpAddr, dst: IpAddr, len: usize) -> u32 {
    let mut sum = 0u32;
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            sum = checksum_add(sum, &s.octets());
            sum = checksum_add(sum, &d.octets());
            sum += 6 + len as u32;
        }
        _ => {
            let s = to_v6(src);
            let d = to_v6(dst);
            sum = checksum_add(sum, &s.octets());
            sum = checksum_add(sum, &d.octets());
            sum += len as u32;
            sum += 6;
        }
    }
    sum
}

fn to_v6(a: IpAddr) -> Ipv6Addr {
    match a {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

/// TCP checksum of `segment` (with its checksum field zeroed or not: the field is skipped).
pub fn tcp_checksum(src: IpAddr, dst: IpAddr, segment: &[u8]) -> u16 {
    let mut sum = pseudo_header_sum(src, dst, segment.len());
    if segment.len() >= 18 {
        sum = checksum_add(sum, &segment[..16]);
        sum = checksum_add(sum, &segment[18..]);
    } else {
        sum = checksum_add(sum, segment);
    }
    checksum_fold(sum)
}

/// Parameters of one SYN probe.
#[derive(Debug, Clone, Copy)]
pub struct SynProbe {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    /// Timestamp value for the TS option.
    pub tsval: u32,
}

/// Builds a SYN segment with the options a Linux stack sends (MSS, SACK-permitted, timestamps,
/// NOP, window scale), so that the probe looks like an ordinary connection attempt and the
/// SYN-ACK carries the options the OS guess needs.
pub fn build_syn(p: &SynProbe, out: &mut [u8; SYN_LEN]) {
    out.fill(0);
    out[0..2].copy_from_slice(&p.src_port.to_be_bytes());
    out[2..4].copy_from_slice(&p.dst_port.to_be_bytes());
    out[4..8].copy_from_slice(&p.seq.to_be_bytes());
    // ack = 0
    out[12] = ((SYN_LEN / 4) as u8) << 4;
    out[13] = TCP_SYN;
    out[14..16].copy_from_slice(&64240u16.to_be_bytes());
    // options: MSS 1460, SACK permitted, timestamps, NOP, window scale 7
    let opts: [u8; 20] = [
        2,
        4,
        0x05,
        0xb4,
        4,
        2,
        8,
        10,
        (p.tsval >> 24) as u8,
        (p.tsval >> 16) as u8,
        (p.tsval >> 8) as u8,
        p.tsval as u8,
        0,
        0,
        0,
        0,
        1,
        3,
        3,
        7,
    ];
    out[20..40].copy_from_slice(&opts);
    let sum = tcp_checksum(p.src, p.dst, out);
    out[16..18].copy_from_slice(&sum.to_be_bytes());
}

/// Length of an IPv4 SYN probe with its IP header.
pub const IPV4_SYN_LEN: usize = 20 + SYN_LEN;

/// Builds a whole IPv4 packet carrying the SYN of `p`, for a send-only `IPPROTO_RAW` socket.
/// `p.src` and `p.dst` must be IPv4; otherwise the packet is left zeroed and `false` returned.
pub fn build_ipv4_syn(p: &SynProbe, ip_id: u16, out: &mut [u8; IPV4_SYN_LEN]) -> bool {
    out.fill(0);
    let (IpAddr::V4(src), IpAddr::V4(dst)) = (p.src, p.dst) else {
        return false;
    };
    out[0] = 0x45;
    out[2..4].copy_from_slice(&(IPV4_SYN_LEN as u16).to_be_bytes());
    out[4..6].copy_from_slice(&ip_id.to_be_bytes());
    out[6] = 0x40; // don't fragment, as a Linux stack sends a SYN
    out[8] = 64;
    out[9] = 6;
    out[12..16].copy_from_slice(&src.octets());
    out[16..20].copy_from_slice(&dst.octets());
    let sum = checksum_fold(checksum_add(0, &out[..20]));
    out[10..12].copy_from_slice(&sum.to_be_bytes());
    let mut tcp = [0u8; SYN_LEN];
    build_syn(p, &mut tcp);
    out[20..].copy_from_slice(&tcp);
    true
}

/// Keyed cookie that goes into the sequence number of every probe, so a reply is accepted only if
/// its acknowledgement proves it answers a probe of this scan (stray or spoofed segments fail).
#[derive(Clone)]
pub struct Cookie {
    k0: u64,
    k1: u64,
}

impl std::fmt::Debug for Cookie {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cookie(..)")
    }
}

impl Cookie {
    pub fn new(k0: u64, k1: u64) -> Self {
        Self { k0, k1 }
    }

    pub fn random() -> Self {
        Self::new(rand::random(), rand::random())
    }

    /// The cookie for a probe from `local_port` to `remote:remote_port`.
    pub fn value(&self, remote: IpAddr, remote_port: u16, local_port: u16) -> u32 {
        let mut h = SipHasher13::new_with_keys(self.k0, self.k1);
        match remote {
            IpAddr::V4(a) => h.write(&a.octets()),
            IpAddr::V6(a) => h.write(&a.octets()),
        }
        h.write_u16(remote_port);
        h.write_u16(local_port);
        h.finish() as u32
    }

    /// True if `seg`, received from `remote`, acknowledges a probe we sent with this cookie.
    pub fn validates(&self, remote: IpAddr, seg: &TcpSegment) -> bool {
        seg.ack.wrapping_sub(1) == self.value(remote, seg.src_port, seg.dst_port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(a: [u8; 4]) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(a))
    }

    #[test]
    fn syn_round_trips_and_checksums() {
        let p = SynProbe {
            src: v4([198, 18, 0, 2]),
            dst: v4([198, 18, 0, 10]),
            src_port: 40000,
            dst_port: 22,
            seq: 0xdead_beef,
            tsval: 12345,
        };
        let mut buf = [0u8; SYN_LEN];
        build_syn(&p, &mut buf);
        let seg = parse_tcp(&buf).expect("own SYN parses");
        assert_eq!(seg.src_port, 40000);
        assert_eq!(seg.dst_port, 22);
        assert_eq!(seg.seq, 0xdead_beef);
        assert_eq!(seg.flags, TCP_SYN);
        assert_eq!(seg.options.order_str(), "MSTNW");
        assert_eq!(seg.options.mss, Some(1460));
        assert_eq!(seg.options.wscale, Some(7));
        // A correct checksum makes the one's-complement sum over pseudo-header + segment 0xffff.
        let sum = checksum_add(pseudo_header_sum(p.src, p.dst, buf.len()), &buf);
        assert_eq!(checksum_fold(sum), 0);
    }

    #[test]
    fn ipv4_syn_parses_back() {
        let p = SynProbe {
            src: v4([198, 18, 0, 2]),
            dst: v4([198, 18, 0, 10]),
            src_port: 40001,
            dst_port: 443,
            seq: 42,
            tsval: 1,
        };
        let mut pkt = [0u8; IPV4_SYN_LEN];
        assert!(build_ipv4_syn(&p, 7, &mut pkt));
        let parsed = parse_ipv4_tcp(&pkt).expect("own packet parses");
        assert_eq!(parsed.src, Ipv4Addr::new(198, 18, 0, 2));
        assert_eq!(parsed.dst, Ipv4Addr::new(198, 18, 0, 10));
        assert_eq!((parsed.ttl, parsed.dont_fragment), (64, true));
        assert_eq!(parsed.tcp.dst_port, 443);
        assert_eq!(checksum_fold(checksum_add(0, &pkt[..20])), 0);
        let v6 = SynProbe {
            src: IpAddr::V6(Ipv6Addr::LOCALHOST),
            ..p
        };
        assert!(!build_ipv4_syn(&v6, 7, &mut pkt));
    }

    #[test]
    fn checksum_matches_known_segment() {
        // A SYN-ACK laid out as Linux 6.x sends one (198.18.0.10:22 -> 198.18.0.2:40000).
        let src = v4([198, 18, 0, 10]);
        let dst = v4([198, 18, 0, 2]);
        let mut seg = [
            0x00, 0x16, 0x9c, 0x40, 0x12, 0x34, 0x56, 0x78, 0xde, 0xad, 0xbe, 0xf0, 0xa0, 0x12,
            0xfe, 0x88, 0x00, 0x00, 0x00, 0x00, 0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a,
            0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x30, 0x39, 0x01, 0x03, 0x03, 0x07,
        ];
        let c = tcp_checksum(src, dst, &seg);
        seg[16..18].copy_from_slice(&c.to_be_bytes());
        let sum = checksum_add(pseudo_header_sum(src, dst, seg.len()), &seg);
        assert_eq!(checksum_fold(sum), 0);
        let parsed = parse_tcp(&seg).expect("parses");
        assert_eq!(parsed.flags, TCP_SYN | TCP_ACK);
        assert_eq!(parsed.window, 65160);
    }

    #[test]
    fn ipv4_parser_rejects_bad_input() {
        assert!(matches!(
            parse_ipv4_tcp(&[]),
            Err(PacketError::Truncated { .. })
        ));
        assert_eq!(
            parse_ipv4_tcp(&[0x60; 40]),
            Err(PacketError::WrongVersion(6))
        );
        assert_eq!(
            parse_ipv4_tcp(&[0x44; 40]),
            Err(PacketError::BadHeaderLength(16))
        );
        let mut udp = [0u8; 28];
        udp[0] = 0x45;
        udp[9] = 17;
        assert_eq!(parse_ipv4_tcp(&udp), Err(PacketError::NotTcp(17)));
        // TCP data offset pointing past the end.
        let mut pkt = [0u8; 40];
        pkt[0] = 0x45;
        pkt[9] = 6;
        pkt[20 + 12] = 0xf0;
        assert!(matches!(
            parse_ipv4_tcp(&pkt),
            Err(PacketError::Truncated { .. })
        ));
    }

    #[test]
    fn options_walk_survives_garbage() {
        let s = parse_tcp_options(&[2, 0, 9, 9]);
        assert_eq!(s.order_len, 0);
        let s = parse_tcp_options(&[1; 40]);
        assert_eq!(s.order_len, 16);
        let s = parse_tcp_options(&[3, 3, 8, 0, 7]);
        assert_eq!(s.order_str(), "WE");
        assert_eq!(s.wscale, Some(8));
    }

    #[test]
    fn cookie_validates_only_its_own_probes() {
        let c = Cookie::new(1, 2);
        let remote = v4([198, 18, 0, 10]);
        let v = c.value(remote, 22, 40000);
        let mut seg = TcpSegment {
            src_port: 22,
            dst_port: 40000,
            seq: 7,
            ack: v.wrapping_add(1),
            flags: TCP_SYN | TCP_ACK,
            window: 0,
            options: TcpOptionSummary::default(),
        };
        assert!(c.validates(remote, &seg));
        seg.ack = v;
        assert!(!c.validates(remote, &seg));
        seg.ack = v.wrapping_add(1);
        assert!(!c.validates(v4([198, 18, 0, 11]), &seg));
        assert!(!Cookie::new(3, 4).validates(remote, &seg));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A cheap deterministic sweep; the fuzz target `packet` explores further.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for len in 0..120usize {
            for _ in 0..200 {
                let buf: Vec<u8> = (0..len)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        x as u8
                    })
                    .collect();
                let _ = parse_ipv4_tcp(&buf);
                let _ = parse_tcp(&buf);
                let mut v4buf = buf.clone();
                if let Some(b) = v4buf.first_mut() {
                    *b = 0x45;
                }
                if let Some(b) = v4buf.get_mut(9) {
                    *b = 6;
                }
                let _ = parse_ipv4_tcp(&v4buf);
            }
        }
    }
}
