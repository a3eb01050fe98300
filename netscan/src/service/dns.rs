//! DNS messages: the `version.bind` CHAOS TXT query (and an mDNS service-enumeration query), and
//! a bounded parser for their answers.
//!
//! Why: DNS servers reveal their software only through `version.bind` (RFC 4892 describes the
//! convention); dnsmasq answers `dnsmasq-2.89`, BIND its bare version. Any well-formed DNS
//! answer, even REFUSED, still proves the port speaks DNS.

use super::text::{clean_bytes, clean_field, version_prefix};
use super::{named, with_product, Service};

const TYPE_TXT: u16 = 16;
const TYPE_PTR: u16 = 12;
const CLASS_IN: u16 = 1;
const CLASS_CH: u16 = 3;

/// A query for `version.bind` TXT in class CHAOS, UDP wire form.
pub fn version_bind_query(id: u16) -> Vec<u8> {
    query(id, &["version", "bind"], TYPE_TXT, CLASS_CH, true)
}

/// The same query framed for TCP (2-byte length prefix, RFC 1035 §4.2.2).
pub fn version_bind_query_tcp(id: u16) -> Vec<u8> {
    let q = version_bind_query(id);
    let mut out = (q.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(&q);
    out
}

/// An mDNS legacy-unicast query for `_services._dns-sd._udp.local` PTR (RFC 6763 §9): sent from
/// a port other than 5353, responders answer it unicast.
pub fn mdns_services_query(id: u16) -> Vec<u8> {
    query(
        id,
        &["_services", "_dns-sd", "_udp", "local"],
        TYPE_PTR,
        CLASS_IN,
        false,
    )
}

fn query(id: u16, labels: &[&str], qtype: u16, qclass: u16, rd: bool) -> Vec<u8> {
    let mut m = id.to_be_bytes().to_vec();
    m.extend_from_slice(&[if rd { 0x01 } else { 0x00 }, 0x00]);
    m.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
    for l in labels {
        m.push(l.len() as u8);
        m.extend_from_slice(l.as_bytes());
    }
    m.push(0);
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&qclass.to_be_bytes());
    m
}

/// What a DNS answer told us.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DnsAnswer {
    pub id: u16,
    pub rcode: u8,
    pub answers: u16,
    /// TXT strings of the answer records (bounded).
    pub txt: Vec<String>,
    /// Owner names of PTR targets (bounded), e.g. `_http._tcp.local`.
    pub ptr: Vec<String>,
}

/// Parses a DNS response (UDP wire form). `None` unless it is a well-formed response header
/// with its question section.
pub fn parse_response(m: &[u8]) -> Option<DnsAnswer> {
    let h = m.get(..12)?;
    let id = u16::from_be_bytes([h[0], h[1]]);
    let flags = u16::from_be_bytes([h[2], h[3]]);
    if flags & 0x8000 == 0 {
        return None; // not a response
    }
    // Opcode must be QUERY.
    if (flags >> 11) & 0xf != 0 {
        return None;
    }
    let qd = u16::from_be_bytes([h[4], h[5]]);
    let an = u16::from_be_bytes([h[6], h[7]]);
    if qd > 4 {
        return None;
    }
    let mut ans = DnsAnswer {
        id,
        rcode: (flags & 0xf) as u8,
        answers: an,
        ..Default::default()
    };
    let mut pos = 12;
    for _ in 0..qd {
        pos = skip_name(m, pos)?.checked_add(4)?;
        if pos > m.len() {
            return None;
        }
    }
    for _ in 0..an.min(32) {
        pos = skip_name(m, pos)?;
        let rr = m.get(pos..pos + 10)?;
        let rtype = u16::from_be_bytes([rr[0], rr[1]]);
        let rdlen = usize::from(u16::from_be_bytes([rr[8], rr[9]]));
        let rdata_start = pos + 10;
        let rdata = m.get(rdata_start..rdata_start + rdlen)?;
        if rtype == TYPE_TXT {
            let mut i = 0;
            while let Some(&l) = rdata.get(i) {
                let s = rdata.get(i + 1..i + 1 + usize::from(l))?;
                if let Some(t) = clean_bytes(s) {
                    if ans.txt.len() < 8 {
                        ans.txt.push(t);
                    }
                }
                i += 1 + usize::from(l);
            }
        } else if rtype == TYPE_PTR && ans.ptr.len() < 16 {
            if let Some(n) = read_name(m, rdata_start) {
                ans.ptr.push(n);
            }
        }
        pos = rdata_start + rdlen;
    }
    Some(ans)
}

/// Skips a possibly-compressed name, returning the offset after it.
fn skip_name(m: &[u8], mut pos: usize) -> Option<usize> {
    for _ in 0..128 {
        let l = *m.get(pos)?;
        match l {
            0 => return Some(pos + 1),
            l if l & 0xc0 == 0xc0 => {
                m.get(pos + 1)?;
                return Some(pos + 2);
            }
            l if l & 0xc0 == 0 => pos += 1 + usize::from(l),
            _ => return None,
        }
    }
    None
}

/// Reads a possibly-compressed name as dotted text, following at most 16 pointers.
fn read_name(m: &[u8], mut pos: usize) -> Option<String> {
    let mut labels: Vec<String> = Vec::new();
    let mut jumps = 0;
    loop {
        let l = *m.get(pos)?;
        if l == 0 {
            break;
        }
        if l & 0xc0 == 0xc0 {
            jumps += 1;
            if jumps > 16 {
                return None;
            }
            pos = (usize::from(l & 0x3f) << 8) | usize::from(*m.get(pos + 1)?);
            continue;
        }
        if l & 0xc0 != 0 || labels.len() >= 64 {
            return None;
        }
        let label = m.get(pos + 1..pos + 1 + usize::from(l))?;
        labels.push(String::from_utf8_lossy(label).to_string());
        pos += 1 + usize::from(l);
    }
    clean_field(&labels.join("."))
}

/// Product and version from a `version.bind` string.
pub fn product_from_version_string(
    v: &str,
) -> Option<(&'static str, Option<String>, Option<String>)> {
    let lower = v.to_ascii_lowercase();
    if let Some(rest) = lower.strip_prefix("dnsmasq-") {
        return Some(("dnsmasq", non_empty(version_prefix(rest)), None));
    }
    if let Some(rest) = lower.strip_prefix("unbound ") {
        return Some(("Unbound", non_empty(version_prefix(rest)), None));
    }
    if let Some(rest) = v.strip_prefix("PowerDNS Recursor ") {
        return Some(("PowerDNS Recursor", non_empty(version_prefix(rest)), None));
    }
    if let Some(rest) = v.strip_prefix("PowerDNS Authoritative Server ") {
        return Some((
            "PowerDNS Authoritative Server",
            non_empty(version_prefix(rest)),
            None,
        ));
    }
    if let Some(rest) = v.strip_prefix("Knot DNS ") {
        return Some(("Knot DNS", non_empty(version_prefix(rest)), None));
    }
    // BIND answers its bare version, e.g. `9.18.28-1~deb12u2-Debian`.
    if v.starts_with("9.") && v.split('.').count() >= 3 {
        let head = version_prefix(v);
        let (ver, extra) = match head.split_once('-') {
            Some((a, b)) => (a.to_string(), clean_field(b)),
            None => (head.to_string(), None),
        };
        return Some(("ISC BIND", Some(ver), extra));
    }
    None
}

fn non_empty(v: &str) -> Option<String> {
    (!v.is_empty()).then(|| v.to_string())
}

/// Identifies a DNS server from an answer to [`version_bind_query`]; `name` is `domain` for
/// unicast DNS and `mdns` for multicast DNS.
pub fn identify(m: &[u8], name: &str, expected_id: Option<u16>) -> Option<Service> {
    let a = parse_response(m)?;
    if expected_id.is_some_and(|id| id != a.id) {
        return None;
    }
    let s = named(name);
    let Some(txt) = a.txt.first() else {
        return Some(s);
    };
    match product_from_version_string(txt) {
        Some((product, version, extra)) => {
            let mut s = with_product(s, product, version.as_deref());
            s.extra = extra;
            Some(s)
        }
        None => {
            let mut s = s;
            s.extra = Some(format!("version.bind: {txt}"));
            Some(s)
        }
    }
}

/// For TCP: the message inside the 2-byte length prefix, when complete.
pub fn unframe_tcp(data: &[u8]) -> Option<&[u8]> {
    let l = usize::from(u16::from_be_bytes([*data.first()?, *data.get(1)?]));
    data.get(2..2 + l)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// An answer to `version_bind_query(id)` carrying `txt`, with a compressed owner name.
    fn answer(id: u16, txt: &str) -> Vec<u8> {
        let mut m = version_bind_query(id);
        m[2] = 0x85; // QR, AA, RD
        m[3] = 0x80; // RA
        m[7] = 1; // ANCOUNT
        m.extend_from_slice(&[0xc0, 0x0c, 0, 16, 0, 3, 0, 0, 0, 0]);
        m.extend_from_slice(&((txt.len() + 1) as u16).to_be_bytes());
        m.push(txt.len() as u8);
        m.extend_from_slice(txt.as_bytes());
        m
    }

    #[test]
    fn dnsmasq() {
        let s = identify(&answer(7, "dnsmasq-2.89"), "domain", Some(7)).expect("dns");
        assert_eq!(s.name, "domain");
        assert_eq!(s.product.as_deref(), Some("dnsmasq"));
        assert_eq!(s.version.as_deref(), Some("2.89"));
        assert_eq!(
            s.cpe,
            vec!["cpe:2.3:a:thekelleys:dnsmasq:2.89:*:*:*:*:*:*:*".to_string()]
        );
        assert!(identify(&answer(7, "dnsmasq-2.89"), "domain", Some(8)).is_none());
    }

    #[test]
    fn bind_and_unbound() {
        let s = identify(&answer(1, "9.18.28-1~deb12u2-Debian"), "domain", None).expect("dns");
        assert_eq!(s.product.as_deref(), Some("ISC BIND"));
        assert_eq!(s.version.as_deref(), Some("9.18.28"));
        assert_eq!(s.extra.as_deref(), Some("1~deb12u2-Debian"));
        let s = identify(&answer(1, "unbound 1.17.1"), "domain", None).expect("dns");
        assert_eq!(
            (s.product.as_deref(), s.version.as_deref()),
            (Some("Unbound"), Some("1.17.1"))
        );
        let s = identify(&answer(1, "none of your business"), "domain", None).expect("dns");
        assert_eq!(s.product, None);
    }

    #[test]
    fn refused_is_still_dns() {
        let mut m = version_bind_query(3);
        m[2] = 0x81;
        m[3] = 0x85; // REFUSED
        let s = identify(&m, "domain", Some(3)).expect("dns");
        assert_eq!(s.product, None);
    }

    #[test]
    fn tcp_framing() {
        let q = version_bind_query_tcp(9);
        assert_eq!(unframe_tcp(&q), Some(&version_bind_query(9)[..]));
        assert_eq!(unframe_tcp(&q[..q.len() - 1]), None);
    }

    #[test]
    fn pointer_loops_are_bounded() {
        let mut m = mdns_services_query(0);
        m[2] = 0x84;
        m[7] = 1;
        // PTR answer whose target points at itself.
        let at = m.len();
        m.extend_from_slice(&[0xc0, 0x0c, 0, 12, 0, 1, 0, 0, 0, 10, 0, 2]);
        let self_ptr = (at + 12) as u16;
        m.extend_from_slice(&(0xc000 | self_ptr).to_be_bytes());
        let a = parse_response(&m).expect("parse");
        assert!(a.ptr.is_empty());
    }

    #[test]
    fn queries_are_not_answers() {
        assert!(parse_response(&version_bind_query(1)).is_none());
        assert!(parse_response(&mdns_services_query(1)).is_none());
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..1024)) {
            let _ = identify(&data, "domain", None);
            let _ = unframe_tcp(&data);
            let mut d = answer(1, "x");
            d.extend_from_slice(&data);
            let _ = parse_response(&d);
        }
        #[test]
        fn arbitrary_txt_never_panics(t in "[ -~]{0,200}") {
            let _ = identify(&answer(1, &t), "domain", Some(1));
        }
    }
}
