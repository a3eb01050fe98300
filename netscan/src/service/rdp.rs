//! RDP: the X.224 Connection Confirm answering a Connection Request with an RDP negotiation
//! request (MS-RDPBCGR 2.2.1.1 and 2.2.1.2).
//!
//! Why: RDP servers (Windows, xrdp) say nothing until a client sends the TPKT-framed X.224
//! request; the confirm's negotiation response tells which security protocol they chose.

use super::{named, Service};

/// Connection Request with RDP_NEG_REQ asking for TLS, CredSSP and RDSTLS.
pub const PROBE: &[u8] = &[
    0x03, 0x00, 0x00, 0x13, // TPKT, length 19
    0x0e, 0xe0, 0x00, 0x00, 0x00, 0x00, 0x00, // X.224 CR
    0x01, 0x00, 0x08, 0x00, 0x0b, 0x00, 0x00, 0x00, // RDP_NEG_REQ: TLS|CredSSP|RDSTLS
];

/// True when the whole TPKT the header announces is in `data`.
pub fn tpkt_complete(data: &[u8]) -> bool {
    match data.get(..4) {
        Some(h) if h[0] == 3 => data.len() >= usize::from(u16::from_be_bytes([h[2], h[3]])),
        Some(_) => true,
        None => false,
    }
}

/// Identifies an RDP server from its Connection Confirm.
pub fn identify(data: &[u8]) -> Option<Service> {
    let h = data.get(..4)?;
    let tpkt_len = usize::from(u16::from_be_bytes([h[2], h[3]]));
    if h[0] != 3 || h[1] != 0 || !(11..=1024).contains(&tpkt_len) {
        return None;
    }
    let x224 = data.get(4..)?;
    let li = usize::from(*x224.first()?);
    // Connection Confirm code 0xd0 (the low nibble carries credit, always 0 here).
    if x224.get(1)? & 0xf0 != 0xd0 || li < 6 {
        return None;
    }
    let mut s = named("ms-wbt-server");
    if let Some(neg) = x224.get(7..15) {
        s.extra = match (neg[0], u32::from_le_bytes([neg[4], neg[5], neg[6], neg[7]])) {
            (0x02, 0) => Some("security: standard RDP".into()),
            (0x02, 1) => Some("security: TLS".into()),
            (0x02, 2) | (0x02, 0x0a) => Some("security: CredSSP (NLA)".into()),
            (0x02, 4) => Some("security: RDSTLS".into()),
            (0x02, 8) => Some("security: CredSSP with early user authorization".into()),
            (0x03, code) => Some(format!("negotiation failure {code}")),
            _ => None,
        };
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn confirm_with_credssp() {
        let data = [
            0x03, 0x00, 0x00, 0x13, 0x0e, 0xd0, 0x00, 0x00, 0x12, 0x34, 0x00, 0x02, 0x1f, 0x08,
            0x00, 0x02, 0x00, 0x00, 0x00,
        ];
        assert!(tpkt_complete(&data));
        let s = identify(&data).expect("rdp");
        assert_eq!(s.name, "ms-wbt-server");
        assert_eq!(s.extra.as_deref(), Some("security: CredSSP (NLA)"));
    }

    #[test]
    fn confirm_without_negotiation() {
        let data = [
            0x03, 0x00, 0x00, 0x0b, 0x06, 0xd0, 0x00, 0x00, 0x12, 0x34, 0x00,
        ];
        let s = identify(&data).expect("rdp");
        assert_eq!(s.extra, None);
    }

    #[test]
    fn hostile() {
        assert!(identify(PROBE).is_none(), "a request is not a confirm");
        assert!(identify(&[3, 0, 0xff, 0xff, 0x0e, 0xd0]).is_none());
        assert!(identify(b"HTTP/1.1 400").is_none());
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = identify(&data);
            let _ = tpkt_complete(&data);
        }
    }
}
