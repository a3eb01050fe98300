//! FTP greetings (RFC 959 reply 220), e.g. `220 (vsFTPd 3.0.3)`.
//!
//! Why: FTP servers greet first and most name themselves there. A bare `220` greeting is shared
//! with SMTP, so the port decides only when the text itself does not.

use super::text::{clean_field, contains_ci, first_line, version_prefix};
use super::{named, with_product, Service};

/// Identifies an FTP server from its greeting. `port_says_ftp` breaks the tie for greetings
/// that name neither FTP nor mail.
pub fn identify(data: &[u8], port_says_ftp: bool) -> Option<Service> {
    let line = first_line(data).unwrap_or(data);
    if !(line.starts_with(b"220") || line.starts_with(b"120") || line.starts_with(b"421")) {
        return None;
    }
    let text = String::from_utf8_lossy(line.get(4..).unwrap_or_default()).to_string();
    let says_ftp = contains_ci(data, b"ftp");
    let says_mail = contains_ci(line, b"smtp") || contains_ci(line, b"mail");
    if !(says_ftp || (port_says_ftp && !says_mail)) {
        return None;
    }
    let s = named("ftp");
    if let Some(i) = text.find("vsFTPd ") {
        let v = version_prefix(&text[i + 7..]);
        return Some(with_product(s, "vsftpd", non_empty(v)));
    }
    if let Some(i) = text.find("ProFTPD") {
        let rest = text[i + 7..].trim_start();
        let v = version_prefix(rest);
        let v = if v.starts_with(|c: char| c.is_ascii_digit()) {
            Some(v)
        } else {
            None
        };
        let mut s = with_product(s, "ProFTPD", v);
        s.extra = text
            .find('(')
            .and_then(|a| text[a + 1..].find(')').map(|b| &text[a + 1..a + 1 + b]))
            .and_then(clean_field);
        return Some(s);
    }
    if contains_ci(data, b"Pure-FTPd") {
        return Some(with_product(s, "Pure-FTPd", None));
    }
    if let Some(i) = text.find("FileZilla Server") {
        let v = version_prefix(text[i + 16..].trim_start());
        return Some(with_product(s, "FileZilla ftpd", non_empty(v)));
    }
    if text.contains("Microsoft FTP Service") {
        return Some(with_product(s, "Microsoft ftpd", None));
    }
    Some(s)
}

fn non_empty(v: &str) -> Option<&str> {
    (!v.is_empty()).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn vsftpd() {
        let s = identify(b"220 (vsFTPd 3.0.3)\r\n", false).expect("ftp");
        assert_eq!(s.name, "ftp");
        assert_eq!(s.product.as_deref(), Some("vsftpd"));
        assert_eq!(s.version.as_deref(), Some("3.0.3"));
        assert_eq!(
            s.cpe,
            vec!["cpe:2.3:a:beasts:vsftpd:3.0.3:*:*:*:*:*:*:*".to_string()]
        );
    }

    #[test]
    fn proftpd_and_pure() {
        let s = identify(
            b"220 ProFTPD 1.3.8 Server (Debian) [::ffff:127.0.0.1]\r\n",
            false,
        )
        .expect("ftp");
        assert_eq!(s.product.as_deref(), Some("ProFTPD"));
        assert_eq!(s.version.as_deref(), Some("1.3.8"));
        assert_eq!(s.extra.as_deref(), Some("Debian"));
        let s =
            identify(b"220 ProFTPD Server (Debian) [::ffff:127.0.0.1]\r\n", false).expect("ftp");
        assert_eq!(s.version, None);
        let s = identify(b"220---------- Welcome to Pure-FTPd [privsep] [TLS] ----------\r\n220-You are user number 1 of 50 allowed.\r\n", false).expect("ftp");
        assert_eq!(s.product.as_deref(), Some("Pure-FTPd"));
    }

    #[test]
    fn port_breaks_ties() {
        assert!(identify(b"220 Welcome\r\n", true).is_some());
        assert!(identify(b"220 Welcome\r\n", false).is_none());
        assert!(identify(b"220 mx ESMTP Postfix\r\n", true).is_none());
        assert!(identify(b"SSH-2.0-x\r\n", true).is_none());
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..1024), hint: bool) {
            let _ = identify(&data, hint);
            let mut d = b"220 ".to_vec();
            d.extend_from_slice(&data);
            let _ = identify(&d, hint);
        }
        #[test]
        fn arbitrary_text_never_panics(t in ".{0,200}") {
            let _ = identify(format!("220 {t}vsFTPd {t}ProFTPD{t}").as_bytes(), true);
        }
    }
}
