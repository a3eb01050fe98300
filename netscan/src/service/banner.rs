//! Server-first greetings that need no module of their own: VNC (`RFB 003.008`) and telnet
//! option negotiation.
//!
//! Why: both talk first and are common on appliances; recognising them spares the port a
//! round of useless probes.

use super::{named, Service};

/// VNC's RFB protocol version greeting.
pub fn identify_vnc(data: &[u8]) -> Option<Service> {
    let g = data.get(..12)?;
    if !(g.starts_with(b"RFB ") && g[7] == b'.' && g[11] == b'\n') {
        return None;
    }
    let major: u32 = std::str::from_utf8(&g[4..7]).ok()?.parse().ok()?;
    let minor: u32 = std::str::from_utf8(&g[8..11]).ok()?.parse().ok()?;
    let mut s = named("vnc");
    s.extra = Some(format!("protocol {major}.{minor}"));
    Some(s)
}

/// Telnet servers open with IAC DO/WILL/DONT/WONT option negotiation.
pub fn identify_telnet(data: &[u8]) -> Option<Service> {
    match data {
        [0xff, cmd, _opt, ..] if (0xfb..=0xfe).contains(cmd) => Some(named("telnet")),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn vnc() {
        let s = identify_vnc(b"RFB 003.008\n").expect("vnc");
        assert_eq!(s.extra.as_deref(), Some("protocol 3.8"));
        assert!(identify_vnc(b"RFB 00x.008\n").is_none());
        assert!(identify_vnc(b"RFB 003.00").is_none());
    }

    #[test]
    fn telnet() {
        assert!(identify_telnet(&[0xff, 0xfd, 0x18, 0xff, 0xfd, 0x20]).is_some());
        assert!(identify_telnet(&[0xff, 0xff, 0xff]).is_none());
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = identify_vnc(&data);
            let _ = identify_telnet(&data);
        }
    }
}
