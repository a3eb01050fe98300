//! MySQL/MariaDB initial handshake packets (protocol v10) and pre-auth error packets.
//!
//! Why: the server sends its version string in the very first packet, before authentication;
//! MariaDB prefixes it with `5.5.5-` for old clients.

use super::text::{clean_bytes, contains_ci};
use super::{named, with_product, Service};

/// True when a whole packet (3-byte little-endian length, sequence id, payload) is in `data`.
pub fn packet_complete(data: &[u8]) -> bool {
    match data.get(..3) {
        Some(h) => {
            let len = usize::from(h[0]) | usize::from(h[1]) << 8 | usize::from(h[2]) << 16;
            data.len() >= len + 4
        }
        None => false,
    }
}

/// Identifies MySQL or MariaDB from the server's first packet.
pub fn identify(data: &[u8]) -> Option<Service> {
    let header = data.get(..4)?;
    let len = usize::from(header[0]) | usize::from(header[1]) << 8 | usize::from(header[2]) << 16;
    // The greeting is sequence 0; a real one is a few dozen to a few hundred bytes.
    if header[3] != 0 || !(5..=4096).contains(&len) {
        return None;
    }
    let payload = data.get(4..)?;
    let payload = payload.get(..len.min(payload.len()))?;
    match payload.first()? {
        0x0a => {
            let rest = payload.get(1..)?;
            let nul = rest.iter().position(|&b| b == 0)?;
            let raw = rest.get(..nul)?;
            if raw.is_empty() || !raw.iter().all(|b| b.is_ascii_graphic()) {
                return None;
            }
            let ver = clean_bytes(raw)?;
            Some(version_service(&ver))
        }
        0xff => {
            // ERR packet: 0xff, error code (2 bytes), message. Pre-auth errors such as 1130
            // ("Host ... is not allowed to connect to this MySQL server") still prove MySQL.
            let code = u16::from_le_bytes([*payload.get(1)?, *payload.get(2)?]);
            let msg = payload.get(3..)?;
            let mysql_text = contains_ci(msg, b"mysql") || contains_ci(msg, b"mariadb");
            if !(mysql_text || (1040..=1300).contains(&code)) {
                return None;
            }
            let product = if contains_ci(msg, b"mariadb") {
                "MariaDB"
            } else {
                "MySQL"
            };
            let mut s = with_product(named("mysql"), product, None);
            s.extra = clean_bytes(
                msg.strip_prefix(b"#")
                    .map(|m| m.get(5..).unwrap_or_default())
                    .unwrap_or(msg),
            );
            Some(s)
        }
        _ => None,
    }
}

fn version_service(ver: &str) -> Service {
    let s = named("mysql");
    if let Some(i) = ver.find("-MariaDB") {
        let head = &ver[..i];
        let version = head.strip_prefix("5.5.5-").unwrap_or(head);
        let tail = ver[i + 8..].trim_start_matches('-');
        let mut s = with_product(s, "MariaDB", Some(version));
        s.extra = super::text::clean_field(tail);
        return s;
    }
    let (version, extra) = match ver.split_once('-') {
        Some((v, e)) => (v, super::text::clean_field(e)),
        None => (ver, None),
    };
    let mut s = with_product(s, "MySQL", Some(version));
    s.extra = extra;
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn greeting(version: &str) -> Vec<u8> {
        let mut payload = vec![0x0a];
        payload.extend_from_slice(version.as_bytes());
        payload.push(0);
        payload.extend_from_slice(&[0x2c, 0, 0, 0]); // thread id
        payload.extend_from_slice(b"abcdefgh\0");
        payload.extend_from_slice(&[0xff, 0xf7, 0x2d, 0x02, 0, 0xff, 0x81, 0x15]);
        payload.extend_from_slice(&[0; 10]);
        payload.extend_from_slice(b"ijklmnopqrst\0mysql_native_password\0");
        let mut p = vec![payload.len() as u8, 0, 0, 0];
        p.extend_from_slice(&payload);
        p
    }

    #[test]
    fn mysql8() {
        let g = greeting("8.0.35-0ubuntu0.22.04.1");
        assert!(packet_complete(&g));
        assert!(!packet_complete(&g[..g.len() - 1]));
        let s = identify(&g).expect("mysql");
        assert_eq!(s.name, "mysql");
        assert_eq!(s.product.as_deref(), Some("MySQL"));
        assert_eq!(s.version.as_deref(), Some("8.0.35"));
        assert_eq!(s.extra.as_deref(), Some("0ubuntu0.22.04.1"));
        assert_eq!(
            s.cpe,
            vec!["cpe:2.3:a:oracle:mysql:8.0.35:*:*:*:*:*:*:*".to_string()]
        );
    }

    #[test]
    fn mariadb() {
        let s = identify(&greeting("5.5.5-10.11.4-MariaDB-1~deb12u1")).expect("mysql");
        assert_eq!(s.product.as_deref(), Some("MariaDB"));
        assert_eq!(s.version.as_deref(), Some("10.11.4"));
        assert_eq!(s.extra.as_deref(), Some("1~deb12u1"));
    }

    #[test]
    fn host_not_allowed() {
        let msg = b"\xffj\x04Host '10.0.0.5' is not allowed to connect to this MariaDB server";
        let mut p = vec![msg.len() as u8, 0, 0, 0];
        p.extend_from_slice(msg);
        let s = identify(&p).expect("mysql");
        assert_eq!(s.product.as_deref(), Some("MariaDB"));
    }

    #[test]
    fn hostile() {
        assert!(identify(b"SSH-2.0-OpenSSH\r\n").is_none());
        assert!(identify(&[0x05, 0, 0, 0, 0x0a, 1, 2, 3, 4]).is_none());
        assert!(identify(&[0xff, 0xff, 0xff, 0, 0x0a]).is_none());
        assert!(identify(&[]).is_none());
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..1024)) {
            let _ = identify(&data);
            let _ = packet_complete(&data);
        }
        #[test]
        fn arbitrary_versions_never_panic(v in "[ -~]{0,100}") {
            let _ = identify(&greeting(&v));
        }
    }
}
