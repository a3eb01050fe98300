//! memcached's text protocol answer to `version`: `VERSION 1.6.18`.
//!
//! Why: memcached is silent until asked, and `version` is the one command that needs no state.

use super::text::{clean_field, first_line, version_prefix};
use super::{named, with_product, Service};

/// The probe.
pub const PROBE: &[u8] = b"version\r\n";

/// Identifies memcached from a reply to [`PROBE`].
pub fn identify(data: &[u8]) -> Option<Service> {
    let line = first_line(data)?;
    let rest = line.strip_prefix(b"VERSION ")?;
    let text = String::from_utf8_lossy(rest);
    let v = version_prefix(text.trim());
    if !v.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let v = clean_field(v)?;
    Some(with_product(named("memcached"), "memcached", Some(&v)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn version_line() {
        let s = identify(b"VERSION 1.6.18\r\n").expect("memcached");
        assert_eq!(s.name, "memcached");
        assert_eq!(s.product.as_deref(), Some("memcached"));
        assert_eq!(s.version.as_deref(), Some("1.6.18"));
        assert_eq!(
            s.cpe,
            vec!["cpe:2.3:a:memcached:memcached:1.6.18:*:*:*:*:*:*:*".to_string()]
        );
    }

    #[test]
    fn rejects_others() {
        assert!(identify(b"ERROR\r\n").is_none());
        assert!(identify(b"VERSION 1.6.18").is_none(), "no terminator yet");
        assert!(identify(b"VERSION abc\r\n").is_none());
        assert!(identify(b"HTTP/1.1 200 OK\r\n").is_none());
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..1024)) {
            let _ = identify(&data);
            let mut d = b"VERSION ".to_vec();
            d.extend_from_slice(&data);
            let _ = identify(&d);
        }
    }
}
