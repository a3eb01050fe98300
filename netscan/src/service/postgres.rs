//! PostgreSQL: the answer to a protocol-3.0 StartupMessage.
//!
//! Why: PostgreSQL never speaks first and does not reveal its version before authentication,
//! but its authentication request (`R`) or error (`E`, with `SFATAL`-style fields) is distinctive.

use super::text::clean_bytes;
use super::{named, with_product, Service};

/// StartupMessage for protocol 3.0, user `picket`, database `picket`.
pub fn probe() -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&0x0003_0000u32.to_be_bytes());
    for s in [
        "user",
        "picket",
        "database",
        "picket",
        "application_name",
        "picket",
    ] {
        body.extend_from_slice(s.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut msg = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    msg.extend_from_slice(&body);
    msg
}

/// True when one whole backend message (type byte, 4-byte length, body) is in `data`.
pub fn message_complete(data: &[u8]) -> bool {
    match data.get(1..5) {
        Some(l) => {
            let len = u32::from_be_bytes([l[0], l[1], l[2], l[3]]) as usize;
            data.len() >= len.saturating_add(1)
        }
        None => false,
    }
}

/// Identifies PostgreSQL from the first backend message.
pub fn identify(data: &[u8]) -> Option<Service> {
    let kind = *data.first()?;
    let l = data.get(1..5)?;
    let len = u32::from_be_bytes([l[0], l[1], l[2], l[3]]) as usize;
    match kind {
        b'R' => {
            // AuthenticationRequest: length 8 + optional data, code 0..=12.
            if !(8..=2048).contains(&len) {
                return None;
            }
            let c = data.get(5..9)?;
            let code = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
            if code > 12 {
                return None;
            }
            let mut s = with_product(named("postgresql"), "PostgreSQL", None);
            s.extra = Some(
                match code {
                    0 => "no authentication required",
                    3 => "password authentication",
                    5 => "md5 authentication",
                    10 => "SASL authentication",
                    _ => "authentication required",
                }
                .into(),
            );
            Some(s)
        }
        b'E' => {
            if !(5..=65536).contains(&len) {
                return None;
            }
            let body = data.get(5..)?;
            let body = body.get(..(len - 4).min(body.len()))?;
            let mut severity = false;
            let mut code = false;
            let mut message = None;
            for field in body.split(|&b| b == 0).take(32) {
                match field.first() {
                    Some(b'S') | Some(b'V') => {
                        severity |= matches!(
                            field.get(1..),
                            Some(b"FATAL") | Some(b"ERROR") | Some(b"PANIC")
                        )
                    }
                    Some(b'C') => code |= field.len() == 6,
                    Some(b'M') => message = field.get(1..).and_then(clean_bytes),
                    _ => {}
                }
            }
            if !(severity && code) {
                return None;
            }
            let mut s = with_product(named("postgresql"), "PostgreSQL", None);
            s.extra = message;
            Some(s)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn probe_is_well_formed() {
        let p = probe();
        assert_eq!(
            u32::from_be_bytes([p[0], p[1], p[2], p[3]]) as usize,
            p.len()
        );
        assert_eq!(&p[4..8], &[0, 3, 0, 0]);
    }

    #[test]
    fn sasl_request() {
        let data = b"R\x00\x00\x00\x17\x00\x00\x00\x0aSCRAM-SHA-256\x00\x00";
        assert!(message_complete(data));
        let s = identify(data).expect("pg");
        assert_eq!(s.name, "postgresql");
        assert_eq!(s.product.as_deref(), Some("PostgreSQL"));
        assert_eq!(s.extra.as_deref(), Some("SASL authentication"));
    }

    #[test]
    fn hba_error() {
        let body = b"SFATAL\0VFATAL\0C28000\0Mno pg_hba.conf entry for host \"10.0.0.1\", user \"picket\", database \"picket\", no encryption\0Fauth.c\0L543\0RClientAuthentication\0\0";
        let mut data = vec![b'E'];
        data.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
        data.extend_from_slice(body);
        assert!(message_complete(&data));
        let s = identify(&data).expect("pg");
        assert!(s
            .extra
            .as_deref()
            .is_some_and(|m| m.starts_with("no pg_hba.conf entry")));
    }

    #[test]
    fn hostile() {
        assert!(identify(b"R\x00\x00\x00\x08\x00\x00\x00\x63").is_none());
        assert!(identify(b"E\xff\xff\xff\xffSFATAL").is_none());
        assert!(identify(b"E\x00\x00\x00\x10Mhello\0\0").is_none());
        assert!(identify(b"HTTP/1.1 200 OK\r\n").is_none());
        assert!(!message_complete(b"E\xff\xff\xff\xff"));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..1024)) {
            let _ = identify(&data);
            let _ = message_complete(&data);
        }
    }
}
