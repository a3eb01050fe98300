//! NTP: a version-4 client request and the server's mode-4 answer (RFC 5905 §7.3).
//!
//! Why: NTP servers stay silent to anything but a well-formed request; the answer's stratum and
//! reference id say what kind of clock it is.

use super::{named, Service};

/// A 48-byte NTPv4 client request (LI 0, VN 4, mode 3) carrying `transmit` as its timestamp.
pub fn probe(transmit: u64) -> Vec<u8> {
    let mut p = vec![0u8; 48];
    p[0] = 0x23;
    p[40..48].copy_from_slice(&transmit.to_be_bytes());
    p
}

/// Identifies an NTP server from a mode-4 (server) or mode-5 (broadcast) packet.
pub fn identify(data: &[u8]) -> Option<Service> {
    if data.len() < 48 {
        return None;
    }
    let first = *data.first()?;
    let version = (first >> 3) & 7;
    let mode = first & 7;
    if !(1..=4).contains(&version) || !(mode == 4 || mode == 5) {
        return None;
    }
    let stratum = *data.get(1)?;
    let refid = data.get(12..16)?;
    let mut s = named("ntp");
    let reference = if stratum <= 1 && refid.iter().all(|b| b.is_ascii_graphic() || *b == 0) {
        let t: String = refid
            .iter()
            .filter(|b| **b != 0)
            .map(|&b| char::from(b))
            .collect();
        format!(", reference {t}")
    } else {
        String::new()
    };
    s.extra = Some(format!("v{version}, stratum {stratum}{reference}"));
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn server_reply() {
        let mut r = vec![0u8; 48];
        r[0] = 0x24; // v4, server
        r[1] = 1;
        r[12..16].copy_from_slice(b"GPS\0");
        let s = identify(&r).expect("ntp");
        assert_eq!(s.name, "ntp");
        assert_eq!(s.extra.as_deref(), Some("v4, stratum 1, reference GPS"));
    }

    #[test]
    fn request_is_not_reply() {
        assert!(identify(&probe(1)).is_none());
        assert!(identify(&[0x24; 10]).is_none());
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..128)) {
            let _ = identify(&data);
        }
    }
}
