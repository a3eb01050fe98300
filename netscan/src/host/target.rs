//! `ssh://USER@HOST[:PORT]` targets of the host scan.
//!
//! Parsed by hand rather than with a general URL parser because the accepted language is tiny and
//! everything outside it (paths, queries, passwords in the URL, empty users) must be refused with
//! a reason, not silently dropped.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::error::NetscanError;

/// One host to inventory over SSH.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshTarget {
    pub user: String,
    /// A hostname, an IPv4 address, or an IPv6 address without brackets.
    pub host: String,
    pub port: u16,
    /// The target as the user wrote it.
    pub original: String,
}

/// Longest target accepted; real ones are far shorter, and the bound keeps error messages small.
const MAX_TARGET_LEN: usize = 1024;

impl SshTarget {
    /// Parses `ssh://USER@HOST[:PORT]`; HOST is a name, an IPv4 address or `[IPv6]`; PORT
    /// defaults to 22.
    pub fn parse(s: &str) -> Result<SshTarget, NetscanError> {
        let bad = |reason: &str| NetscanError::BadSshTarget {
            target: s.chars().take(200).collect(),
            reason: reason.to_owned(),
        };
        if s.len() > MAX_TARGET_LEN {
            return Err(bad("longer than 1024 bytes"));
        }
        let rest = s
            .strip_prefix("ssh://")
            .ok_or_else(|| bad("must start with ssh://"))?;
        if rest.contains(['/', '?', '#']) {
            return Err(bad("paths, queries and fragments are not allowed"));
        }
        if rest.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("contains whitespace or control characters"));
        }
        let (userinfo, hostport) = rest
            .rsplit_once('@')
            .ok_or_else(|| bad("a user is required (ssh://USER@HOST)"))?;
        if userinfo.contains(':') {
            return Err(bad(
                "passwords in the URL are not accepted; use --password-env",
            ));
        }
        if userinfo.is_empty() {
            return Err(bad("the user is empty"));
        }
        if userinfo.contains('@') || userinfo.starts_with('-') {
            return Err(bad("invalid user name"));
        }
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (addr, after) = v6
                .split_once(']')
                .ok_or_else(|| bad("unterminated [IPv6] address"))?;
            addr.parse::<Ipv6Addr>()
                .map_err(|_| bad("invalid IPv6 address in brackets"))?;
            let port = match after {
                "" => None,
                p => Some(
                    p.strip_prefix(':')
                        .ok_or_else(|| bad("unexpected text after ]"))?,
                ),
            };
            (addr.to_owned(), port)
        } else {
            let (host, port) = match hostport.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            };
            if host.is_empty() {
                return Err(bad("the host is empty"));
            }
            if host.parse::<Ipv4Addr>().is_err() && !valid_hostname(host) {
                return Err(bad(
                    "the host is not a hostname or IPv4 address (IPv6 goes in brackets)",
                ));
            }
            (host.to_owned(), port)
        };
        let port = match port {
            None => 22,
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n > 0 && p.bytes().all(|b| b.is_ascii_digit()) => n,
                _ => return Err(bad("the port is not a number from 1 to 65535")),
            },
        };
        Ok(SshTarget {
            user: userinfo.to_owned(),
            host,
            port,
            original: s.to_owned(),
        })
    }
}

/// RFC 1123 hostname: dot-separated labels of letters, digits and inner hyphens.
fn valid_hostname(h: &str) -> bool {
    let h = h.strip_suffix('.').unwrap_or(h);
    !h.is_empty()
        && h.len() <= 253
        && h.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> (String, String, u16) {
        match SshTarget::parse(s) {
            Ok(t) => (t.user, t.host, t.port),
            Err(e) => panic!("{s} should parse: {e}"),
        }
    }

    #[test]
    fn accepts_the_three_host_forms() {
        assert_eq!(
            ok("ssh://root@198.18.0.10"),
            ("root".into(), "198.18.0.10".into(), 22)
        );
        assert_eq!(
            ok("ssh://admin@[2001:db8::5]:2222"),
            ("admin".into(), "2001:db8::5".into(), 2222)
        );
        assert_eq!(
            ok("ssh://ops.user@web-1.example.test:22"),
            ("ops.user".into(), "web-1.example.test".into(), 22)
        );
        assert_eq!(ok("ssh://u@[::1]"), ("u".into(), "::1".into(), 22));
    }

    #[test]
    fn refuses_everything_else() {
        for bad in [
            "root@198.18.0.10",
            "ssh://198.18.0.10",
            "ssh://@198.18.0.10",
            "ssh://root:secret@198.18.0.10",
            "ssh://root@198.18.0.10/path",
            "ssh://root@198.18.0.10?x=1",
            "ssh://root@198.18.0.10#frag",
            "ssh://root@198.18.0.10:0",
            "ssh://root@198.18.0.10:65536",
            "ssh://root@198.18.0.10:+22",
            "ssh://root@198.18.0.10:",
            "ssh://root@2001:db8::5",
            "ssh://root@[2001:db8::5",
            "ssh://root@[nothex]:22",
            "ssh://root@[::1]x",
            "ssh://root@",
            "ssh://root@host_name",
            "ssh://-oProxyCommand=x@host",
            "ssh://ro ot@host",
            "ssh://a@b@host",
        ] {
            match SshTarget::parse(bad) {
                Err(NetscanError::BadSshTarget { target, reason }) => {
                    assert!(!reason.is_empty(), "{bad}: empty reason");
                    assert_eq!(target, bad);
                }
                other => panic!("{bad} should be refused, got {other:?}"),
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn never_panics_and_round_trips(user in "[a-z][a-z0-9._-]{0,15}", a in 0u8..=255, b in 0u8..=255, port in 1u16..) {
            let s = format!("ssh://{user}@198.18.{a}.{b}:{port}");
            let t = SshTarget::parse(&s);
            proptest::prop_assert!(t.is_ok(), "{s}: {t:?}");
            if let Ok(t) = t {
                proptest::prop_assert_eq!(t.user, user);
                proptest::prop_assert_eq!(t.port, port);
                proptest::prop_assert_eq!(t.original, s);
            }
        }

        #[test]
        fn arbitrary_text_never_panics(s in "\\PC{0,80}") {
            let _ = SshTarget::parse(&s);
        }
    }
}
