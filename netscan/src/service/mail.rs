//! Mail-protocol greetings: SMTP (`220 ... ESMTP Postfix`), POP3 (`+OK ...`) and IMAP (`* OK ...`).
//!
//! Why: mail servers greet first and usually name their software in that greeting, which is
//! all the identification they give before authentication.

use super::text::{clean_field, contains_ci, first_line, version_prefix};
use super::{named, with_product, Service};

/// Identifies an SMTP server. `port_says_smtp` breaks the tie for greetings that name neither
/// mail nor FTP.
pub fn identify_smtp(data: &[u8], port_says_smtp: bool) -> Option<Service> {
    let line = first_line(data).unwrap_or(data);
    if !(line.starts_with(b"220") || line.starts_with(b"421") || line.starts_with(b"554")) {
        return None;
    }
    let says_smtp = contains_ci(line, b"smtp") || contains_ci(line, b"mail");
    let says_ftp = contains_ci(line, b"ftp");
    if !(says_smtp || (port_says_smtp && !says_ftp)) {
        return None;
    }
    let text = String::from_utf8_lossy(line.get(4..).unwrap_or_default()).to_string();
    let s = named("smtp");
    if text.contains("Postfix") {
        let mut s = with_product(s, "Postfix", None);
        s.extra = text
            .find("Postfix (")
            .and_then(|i| text[i + 9..].split(')').next())
            .and_then(clean_field);
        return Some(s);
    }
    if let Some(i) = text.find("Exim ") {
        return Some(with_product(
            s,
            "Exim",
            non_empty(version_prefix(&text[i + 5..])),
        ));
    }
    if let Some(i) = text.find("Sendmail ") {
        let v = text[i + 9..].split('/').next().map(version_prefix);
        return Some(with_product(s, "Sendmail", v.and_then(non_empty)));
    }
    if text.contains("OpenSMTPD") {
        return Some(with_product(s, "OpenSMTPD", None));
    }
    if text.contains("Microsoft ESMTP MAIL Service") {
        return Some(with_product(s, "Microsoft ESMTP", None));
    }
    Some(s)
}

/// Identifies a POP3 server from its `+OK` greeting.
pub fn identify_pop3(data: &[u8]) -> Option<Service> {
    let line = first_line(data).unwrap_or(data);
    if !line.starts_with(b"+OK") {
        return None;
    }
    let s = named("pop3");
    if contains_ci(line, b"Dovecot") {
        return Some(with_product(s, "Dovecot", None));
    }
    if contains_ci(line, b"Courier") {
        return Some(with_product(s, "Courier", None));
    }
    if let Some(i) = find(line, b"Cyrus POP3 v") {
        let t = String::from_utf8_lossy(&line[i + 12..]).to_string();
        return Some(with_product(s, "Cyrus IMAP", non_empty(cyrus_version(&t))));
    }
    Some(s)
}

/// Identifies an IMAP server from its `* OK` greeting.
pub fn identify_imap(data: &[u8]) -> Option<Service> {
    let line = first_line(data).unwrap_or(data);
    if !(line.starts_with(b"* OK") || line.starts_with(b"* PREAUTH") || line.starts_with(b"* BYE"))
    {
        return None;
    }
    let s = named("imap");
    if contains_ci(line, b"Dovecot") {
        return Some(with_product(s, "Dovecot", None));
    }
    if contains_ci(line, b"Courier-IMAP") {
        return Some(with_product(s, "Courier", None));
    }
    if let Some(i) = find(line, b"Cyrus IMAP v") {
        let t = String::from_utf8_lossy(&line[i + 12..]).to_string();
        return Some(with_product(s, "Cyrus IMAP", non_empty(cyrus_version(&t))));
    }
    Some(s)
}

/// Cyrus writes `v3.6.1-Debian-3.6.1-4`: the version is the dotted numeric head.
fn cyrus_version(t: &str) -> &str {
    let end = t
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_digit() || *c == '.'))
        .map(|(i, _)| i)
        .unwrap_or(t.len());
    &t[..end]
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn non_empty(v: &str) -> Option<&str> {
    (!v.is_empty()).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn postfix() {
        let s = identify_smtp(b"220 mx.example.org ESMTP Postfix (Debian/GNU)\r\n", false)
            .expect("smtp");
        assert_eq!(s.name, "smtp");
        assert_eq!(s.product.as_deref(), Some("Postfix"));
        assert_eq!(s.version, None);
        assert_eq!(s.extra.as_deref(), Some("Debian/GNU"));
        assert_eq!(
            s.cpe,
            vec!["cpe:2.3:a:postfix:postfix:*:*:*:*:*:*:*:*".to_string()]
        );
    }

    #[test]
    fn exim_sendmail_generic() {
        let s = identify_smtp(
            b"220 h ESMTP Exim 4.96 Sat, 21 Nov 2026 07:00:00 +0000\r\n",
            false,
        )
        .expect("smtp");
        assert_eq!(
            (s.product.as_deref(), s.version.as_deref()),
            (Some("Exim"), Some("4.96"))
        );
        let s = identify_smtp(
            b"220 h ESMTP Sendmail 8.17.1.9/8.17.1.9/Debian-2; Sat\r\n",
            false,
        )
        .expect("smtp");
        assert_eq!(
            (s.product.as_deref(), s.version.as_deref()),
            (Some("Sendmail"), Some("8.17.1.9"))
        );
        let s = identify_smtp(b"220 ready\r\n", true).expect("smtp");
        assert_eq!(s.product, None);
        assert!(identify_smtp(b"220 ready\r\n", false).is_none());
        assert!(identify_smtp(b"220 (vsFTPd 3.0.3)\r\n", true).is_none());
    }

    #[test]
    fn pop3_and_imap() {
        let s = identify_pop3(b"+OK Dovecot (Debian) ready.\r\n").expect("pop3");
        assert_eq!(
            (s.name.as_str(), s.product.as_deref()),
            ("pop3", Some("Dovecot"))
        );
        let s = identify_imap(b"* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ STARTTLS AUTH=PLAIN] Dovecot (Debian) ready.\r\n").expect("imap");
        assert_eq!(
            (s.name.as_str(), s.product.as_deref()),
            ("imap", Some("Dovecot"))
        );
        let s = identify_imap(b"* OK h Cyrus IMAP v3.6.1-Debian-3.6.1-4 server ready\r\n")
            .expect("imap");
        assert_eq!(s.version.as_deref(), Some("3.6.1"));
        assert!(identify_imap(b"+OK x\r\n").is_none());
        assert!(identify_pop3(b"* OK x\r\n").is_none());
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..1024), hint: bool) {
            let _ = identify_smtp(&data, hint);
            let _ = identify_pop3(&data);
            let _ = identify_imap(&data);
        }
        #[test]
        fn arbitrary_text_never_panics(t in ".{0,200}") {
            let _ = identify_smtp(format!("220 {t} Exim {t} Sendmail {t}").as_bytes(), true);
            let _ = identify_pop3(format!("+OK Cyrus POP3 v{t}").as_bytes());
            let _ = identify_imap(format!("* OK Cyrus IMAP v{t}").as_bytes());
        }
    }
}
