//! SSH identification strings (RFC 4253 §4.2): `SSH-protoversion-softwareversion SP comments`.
//!
//! Why: every SSH server announces itself before the client says anything, and the software
//! version plus the distribution's patch comment are exactly what vulnerability matching needs.

use super::text::{clean_field, lines, split_product_version};
use super::{named, with_product, Service};

/// The parts of an identification string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshIdent {
    pub proto: String,
    pub software: String,
    pub comments: Option<String>,
}

/// Parses the first `SSH-` line of a server greeting (servers may send other lines before it).
pub fn parse_ident(data: &[u8]) -> Option<SshIdent> {
    // RFC 4253 allows lines before the identification string; look at a bounded number.
    let line = lines(data).take(32).find(|l| l.starts_with(b"SSH-"))?;
    let line = std::str::from_utf8(line).ok()?;
    let rest = line.strip_prefix("SSH-")?;
    let (proto, rest) = rest.split_once('-')?;
    if proto.is_empty() || !proto.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    let (software, comments) = match rest.split_once(' ') {
        Some((s, c)) => (s, clean_field(c)),
        None => (rest, None),
    };
    Some(SshIdent {
        proto: proto.to_string(),
        software: clean_field(software)?,
        comments,
    })
}

/// Identifies an SSH server from its greeting.
pub fn identify(data: &[u8]) -> Option<Service> {
    let id = parse_ident(data)?;
    let (name, version) = split_product_version(&id.software);
    let product = match name.to_ascii_lowercase().as_str() {
        "openssh" => "OpenSSH".to_string(),
        "dropbear" => "Dropbear sshd".to_string(),
        "libssh" => "libssh".to_string(),
        _ => name,
    };
    let mut s = with_product(named("ssh"), &product, version.as_deref());
    s.extra = id.comments;
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn debian_openssh() {
        let s = identify(b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n").expect("ssh");
        assert_eq!(s.name, "ssh");
        assert_eq!(s.product.as_deref(), Some("OpenSSH"));
        assert_eq!(s.version.as_deref(), Some("9.2p1"));
        assert_eq!(s.extra.as_deref(), Some("Debian-2+deb12u3"));
        assert_eq!(
            s.cpe,
            vec!["cpe:2.3:a:openbsd:openssh:9.2p1:*:*:*:*:*:*:*".to_string()]
        );
    }

    #[test]
    fn dropbear_and_preamble_lines() {
        let s = identify(b"Welcome\r\nSSH-2.0-dropbear_2022.83\r\n").expect("ssh");
        assert_eq!(s.product.as_deref(), Some("Dropbear sshd"));
        assert_eq!(s.version.as_deref(), Some("2022.83"));
        assert_eq!(s.extra, None);
    }

    #[test]
    fn unknown_implementation_and_old_protocol() {
        let s = identify(b"SSH-1.99-Cisco-1.25\n").expect("ssh");
        assert_eq!(s.product.as_deref(), Some("Cisco"));
        assert_eq!(s.version.as_deref(), Some("1.25"));
        assert!(s.cpe.is_empty());
    }

    #[test]
    fn rejects_non_ssh() {
        assert!(identify(b"220 (vsFTPd 3.0.3)\r\n").is_none());
        assert!(identify(b"SSH-").is_none());
        assert!(identify(b"SSH-x.y-foo\r\n").is_none());
        assert!(identify(&[0xff; 100]).is_none());
        // Truncated: no terminator yet is still a usable line.
        assert!(identify(b"SSH-2.0-OpenSSH_9.2").is_some());
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = identify(&data);
        }

        #[test]
        fn prefixed_arbitrary_never_panics(tail in ".{0,300}") {
            let data = format!("SSH-2.0-{tail}");
            let _ = identify(data.as_bytes());
        }
    }
}
