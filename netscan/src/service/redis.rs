//! Redis (RESP) answers to `INFO server`.
//!
//! Why: Redis says nothing until asked; `INFO server` returns `redis_version` when no password is
//! set, and a `-NOAUTH`/`-DENIED` error still proves the protocol when one is.

use super::text::{clean_field, contains_ci, lines};
use super::{named, with_product, Service};

/// The probe: an inline command, which every Redis since 1.0 accepts.
pub const PROBE: &[u8] = b"INFO server\r\n";

/// Identifies Redis (or Valkey) from a reply to [`PROBE`].
pub fn identify(data: &[u8]) -> Option<Service> {
    let s = named("redis");
    if data.starts_with(b"$") {
        let mut product = None;
        let mut version = None;
        let mut extra = None;
        for line in lines(data).take(200) {
            let line = String::from_utf8_lossy(line);
            if let Some(v) = line.strip_prefix("redis_version:") {
                version = clean_field(v);
                product.get_or_insert("Redis");
            } else if let Some(v) = line.strip_prefix("valkey_version:") {
                version = clean_field(v);
                product = Some("Valkey");
            } else if line.starts_with("server_name:valkey") {
                product = Some("Valkey");
            } else if let Some(v) = line.strip_prefix("redis_mode:") {
                extra = clean_field(v).map(|m| format!("mode {m}"));
            }
        }
        let product = product?;
        let mut s = with_product(s, product, version.as_deref());
        s.extra = extra;
        return Some(s);
    }
    if data.starts_with(b"-NOAUTH")
        || data.starts_with(b"-DENIED Redis")
        || data.starts_with(b"-WRONGPASS")
        || (data.starts_with(b"-ERR") && contains_ci(data, b"redis"))
        // Redis's own wording when it receives another protocol's request (e.g. our HTTP GET).
        || (data.starts_with(b"-ERR wrong number of arguments for '") && contains_ci(data, b"' command"))
        || (data.starts_with(b"-ERR unknown command '") && contains_ci(data, b"with args beginning with"))
    {
        let mut s = with_product(s, "Redis", None);
        s.extra = if data.starts_with(b"-NOAUTH") {
            Some("authentication required".into())
        } else if data.starts_with(b"-DENIED") {
            Some("protected mode".into())
        } else {
            None
        };
        return Some(s);
    }
    None
}

/// True when a RESP reply is complete: a simple line, or a bulk string of the announced length.
pub fn reply_complete(data: &[u8]) -> bool {
    let Some(nl) = data.iter().position(|&b| b == b'\n') else {
        return false;
    };
    if !data.starts_with(b"$") {
        return true;
    }
    let len: Option<usize> = std::str::from_utf8(data.get(1..nl).unwrap_or_default())
        .ok()
        .and_then(|s| s.trim().parse().ok());
    match len {
        Some(len) => data.len() >= (nl + 1).saturating_add(len).saturating_add(2),
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn info(body: &str) -> Vec<u8> {
        format!("${}\r\n{}\r\n", body.len(), body).into_bytes()
    }

    #[test]
    fn redis_info() {
        let data = info("# Server\r\nredis_version:7.0.15\r\nredis_git_sha1:00000000\r\nredis_mode:standalone\r\nos:Linux 6.1.0 x86_64\r\n");
        assert!(reply_complete(&data));
        assert!(!reply_complete(&data[..data.len() - 5]));
        let s = identify(&data).expect("redis");
        assert_eq!(s.name, "redis");
        assert_eq!(s.product.as_deref(), Some("Redis"));
        assert_eq!(s.version.as_deref(), Some("7.0.15"));
        assert_eq!(s.extra.as_deref(), Some("mode standalone"));
        assert_eq!(
            s.cpe,
            vec!["cpe:2.3:a:redis:redis:7.0.15:*:*:*:*:*:*:*".to_string()]
        );
    }

    #[test]
    fn noauth_and_denied() {
        let s = identify(b"-NOAUTH Authentication required.\r\n").expect("redis");
        assert_eq!(s.product.as_deref(), Some("Redis"));
        assert_eq!(s.version, None);
        assert!(identify(
            b"-DENIED Redis is running in protected mode because protected mode is enabled\r\n"
        )
        .is_some());
    }

    #[test]
    fn answers_to_other_protocols() {
        let s = identify(b"-ERR wrong number of arguments for 'get' command\r\n").expect("redis");
        assert_eq!(s.product.as_deref(), Some("Redis"));
        assert!(
            identify(b"-ERR unknown command 'version', with args beginning with: \r\n").is_some()
        );
        assert!(identify(b"-ERR unknown command\r\n").is_none());
    }

    #[test]
    fn not_redis() {
        assert!(identify(b"-ERR unknown command\r\n").is_none());
        assert!(identify(b"$5\r\nhello\r\n").is_none());
        assert!(identify(b"VERSION 1.6.18\r\n").is_none());
        assert!(!reply_complete(b"$999999999\r\n"));
        assert!(
            reply_complete(b"$99999999999999999999999\r\n"),
            "unparseable length: stop reading"
        );
        assert!(reply_complete(b"$abc\r\n"));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = identify(&data);
            let _ = reply_complete(&data);
            let mut d = b"$".to_vec();
            d.extend_from_slice(&data);
            let _ = identify(&d);
            let _ = reply_complete(&d);
        }
    }
}
