//! NetBIOS name service: an NBSTAT (node status) query for `*` and its answer (RFC 1002 §4.2.17).
//!
//! Why: Windows hosts and Samba's nmbd answer node-status queries with their NetBIOS names and
//! workgroup, and nmbd gives itself away with an all-zero MAC address.

use super::text::clean_bytes;
use super::{named, with_product, Service};

/// Node-status query for the wildcard name `*`.
pub fn probe(id: u16) -> Vec<u8> {
    let mut p = id.to_be_bytes().to_vec();
    p.extend_from_slice(&[0x00, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    p.push(32);
    // First-level encoding of "*" followed by 15 NULs: each nibble + 'A'.
    let mut name = [0u8; 16];
    name[0] = b'*';
    for b in name {
        p.push(b'A' + (b >> 4));
        p.push(b'A' + (b & 0x0f));
    }
    p.push(0);
    p.extend_from_slice(&[0, 0x21, 0, 1]); // NBSTAT, IN
    p
}

/// Names from a node-status answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeStatus {
    pub names: Vec<(String, u8, bool)>,
    pub mac: [u8; 6],
}

/// Parses a node-status response.
pub fn parse(data: &[u8]) -> Option<NodeStatus> {
    let h = data.get(..12)?;
    if h[2] & 0x80 == 0 || u16::from_be_bytes([h[6], h[7]]) == 0 {
        return None;
    }
    // Answer name: 32-byte encoded name with length prefix, or a pointer.
    let mut pos = 12;
    match *data.get(pos)? {
        0x20 => pos += 34,
        l if l & 0xc0 == 0xc0 => pos += 2,
        _ => return None,
    }
    let rr = data.get(pos..pos + 10)?;
    if u16::from_be_bytes([rr[0], rr[1]]) != 0x21 {
        return None;
    }
    let rdlen = usize::from(u16::from_be_bytes([rr[8], rr[9]]));
    let rdata = data.get(pos + 10..pos + 10 + rdlen)?;
    let count = usize::from(*rdata.first()?);
    let mut st = NodeStatus::default();
    for i in 0..count.min(64) {
        let e = rdata.get(1 + i * 18..1 + (i + 1) * 18)?;
        let name = clean_bytes(&e[..15]).unwrap_or_default();
        st.names.push((name, e[15], e[16] & 0x80 != 0));
    }
    if let Some(mac) = rdata.get(1 + count * 18..1 + count * 18 + 6) {
        st.mac.copy_from_slice(mac);
    }
    Some(st)
}

/// Identifies a NetBIOS name service from a node-status answer.
pub fn identify(data: &[u8]) -> Option<Service> {
    let st = parse(data)?;
    let s = named("netbios-ns");
    let host = st
        .names
        .iter()
        .find(|(_, t, g)| *t == 0 && !g)
        .map(|(n, ..)| n.clone());
    let group = st
        .names
        .iter()
        .find(|(_, t, g)| *t == 0 && *g)
        .map(|(n, ..)| n.clone());
    let mut s = if st.mac == [0; 6] {
        with_product(s, "Samba nmbd", None)
    } else {
        s
    };
    let mut parts = Vec::new();
    if let Some(h) = host {
        parts.push(format!("name {h}"));
    }
    if let Some(g) = group {
        parts.push(format!("workgroup {g}"));
    }
    if st.mac != [0; 6] {
        let m = st
            .mac
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":");
        parts.push(format!("mac {m}"));
    }
    s.extra = (!parts.is_empty()).then(|| parts.join(", "));
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn answer(names: &[(&str, u8, bool)], mac: [u8; 6]) -> Vec<u8> {
        let q = probe(5);
        let mut a = q[..12].to_vec();
        a[2] = 0x84;
        a[5] = 0; // no question
        a[7] = 1;
        a.extend_from_slice(&q[12..46]);
        a.extend_from_slice(&[0, 0x21, 0, 1, 0, 0, 0, 0]);
        let mut rdata = vec![names.len() as u8];
        for (n, t, g) in names {
            let mut e = format!("{n:<15}").into_bytes();
            e.truncate(15);
            e.push(*t);
            e.extend_from_slice(&[if *g { 0x84 } else { 0x04 }, 0]);
            rdata.extend_from_slice(&e);
        }
        rdata.extend_from_slice(&mac);
        rdata.extend_from_slice(&[0; 40]);
        a.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        a.extend_from_slice(&rdata);
        a
    }

    #[test]
    fn probe_encoding() {
        let p = probe(1);
        assert_eq!(p.len(), 50);
        assert_eq!(&p[13..15], b"CK");
        assert_eq!(&p[15..17], b"AA");
    }

    #[test]
    fn samba() {
        let data = answer(&[("FILESRV", 0, false), ("WORKGROUP", 0, true)], [0; 6]);
        let s = identify(&data).expect("nbns");
        assert_eq!(s.name, "netbios-ns");
        assert_eq!(s.product.as_deref(), Some("Samba nmbd"));
        assert_eq!(
            s.extra.as_deref(),
            Some("name FILESRV, workgroup WORKGROUP")
        );
    }

    #[test]
    fn windows_mac() {
        let data = answer(&[("PC1", 0, false)], [0, 0x15, 0x5d, 1, 2, 3]);
        let s = identify(&data).expect("nbns");
        assert_eq!(s.product, None);
        assert!(s
            .extra
            .as_deref()
            .is_some_and(|e| e.contains("mac 00:15:5d:01:02:03")));
    }

    #[test]
    fn hostile() {
        assert!(identify(&probe(1)).is_none());
        let data = answer(&[("A", 0, false)], [1; 6]);
        for cut in 0..data.len() {
            let _ = identify(&data[..cut]);
        }
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = identify(&data);
        }
    }
}
