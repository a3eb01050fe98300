//! Small helpers for turning untrusted protocol bytes into strings a report may hold.
//!
//! Why: banners and version strings come from whoever answers on a port. Everything that ends up
//! in a report is bounded in length and stripped of control characters, so a hostile service can
//! neither bloat the report nor inject terminal escapes into the table output.

/// Longest banner kept in a report, in output characters.
pub const BANNER_MAX_CHARS: usize = 160;
/// Longest product, version or extra field kept.
pub const FIELD_MAX_CHARS: usize = 80;

/// Renders bytes for humans: printable ASCII as is, `\r \n \t \\` escaped, everything else as
/// `\xNN`, cut at [`BANNER_MAX_CHARS`] (a cut is marked with `...`).
pub fn escape_banner(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().min(BANNER_MAX_CHARS) + 4);
    for &b in data {
        let piece: std::borrow::Cow<'static, str> = match b {
            b'\r' => "\\r".into(),
            b'\n' => "\\n".into(),
            b'\t' => "\\t".into(),
            b'\\' => "\\\\".into(),
            0x20..=0x7e => char::from(b).to_string().into(),
            _ => format!("\\x{b:02x}").into(),
        };
        if out.len() + piece.len() > BANNER_MAX_CHARS {
            out.push_str("...");
            return out;
        }
        out.push_str(&piece);
    }
    out
}

/// A field value from the network: printable ASCII only (others dropped), trimmed, bounded.
/// Returns `None` when nothing printable remains.
pub fn clean_field(raw: &str) -> Option<String> {
    let s: String = raw
        .chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .take(FIELD_MAX_CHARS)
        .collect();
    let s = s.trim();
    if s.is_empty() {
        None
    } else {
        Some(s.to_string())
    }
}

/// Like [`clean_field`] over bytes (non-UTF-8 bytes are dropped).
pub fn clean_bytes(raw: &[u8]) -> Option<String> {
    clean_field(&String::from_utf8_lossy(raw))
}

/// The first line of `data` without its line terminator, if a terminator was seen.
pub fn first_line(data: &[u8]) -> Option<&[u8]> {
    let end = data.iter().position(|&b| b == b'\n')?;
    let line = data.get(..end)?;
    Some(line.strip_suffix(b"\r").unwrap_or(line))
}

/// Lines of `data` (split on `\n`, `\r` stripped); the last piece is returned even without a
/// terminator.
pub fn lines(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    data.split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
}

/// Case-insensitive search of an ASCII needle.
pub fn contains_ci(hay: &[u8], needle: &[u8]) -> bool {
    if needle.is_empty() {
        return true;
    }
    hay.windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

/// Offset of the first case-insensitive occurrence of `needle`.
pub fn find_ci(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || needle.len() > hay.len() {
        return None;
    }
    hay.windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle))
}

/// Splits a `Name/1.2.3 (extra)` or `Name_1.2.3` token: the version is the part after the first
/// `/` or `_` or `-` that starts with a digit.
pub fn split_product_version(token: &str) -> (String, Option<String>) {
    for (i, c) in token.char_indices() {
        if matches!(c, '/' | '_' | '-' | ' ') {
            let rest = &token[i + c.len_utf8()..];
            if rest.starts_with(|c: char| c.is_ascii_digit()) {
                return (token[..i].to_string(), Some(rest.to_string()));
            }
        }
    }
    (token.to_string(), None)
}

/// The leading run of version characters (digits, letters, `.`, `-`, `_`, `+`, `~`, `:`) of `s`.
pub fn version_prefix(s: &str) -> &str {
    let end = s
        .char_indices()
        .find(|(_, c)| {
            !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '+' | '~' | ':'))
        })
        .map(|(i, _)| i)
        .unwrap_or(s.len());
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn escapes_and_truncates() {
        assert_eq!(escape_banner(b"SSH-2.0-x\r\n"), "SSH-2.0-x\\r\\n");
        assert_eq!(escape_banner(&[0, 0xff, b'a']), "\\x00\\xffa");
        let long = escape_banner(&[0u8; 1000]);
        assert!(long.len() <= BANNER_MAX_CHARS + 3, "len {}", long.len());
        assert!(long.ends_with("..."));
    }

    #[test]
    fn fields_are_cleaned() {
        assert_eq!(clean_field(" nginx\u{1b}[31m "), Some("nginx[31m".into()));
        assert_eq!(clean_field("\u{0}\u{7}"), None);
        assert_eq!(
            clean_field(&"a".repeat(500)).map(|s| s.len()),
            Some(FIELD_MAX_CHARS)
        );
    }

    #[test]
    fn product_version_split() {
        assert_eq!(
            split_product_version("nginx/1.22.1"),
            ("nginx".into(), Some("1.22.1".into()))
        );
        assert_eq!(
            split_product_version("OpenSSH_9.2p1"),
            ("OpenSSH".into(), Some("9.2p1".into()))
        );
        assert_eq!(
            split_product_version("Microsoft-IIS/10.0"),
            ("Microsoft-IIS".into(), Some("10.0".into()))
        );
        assert_eq!(split_product_version("Caddy"), ("Caddy".into(), None));
        assert_eq!(version_prefix("2.89 extra"), "2.89");
    }

    proptest! {
        #[test]
        fn escape_is_bounded_and_printable(data in proptest::collection::vec(any::<u8>(), 0..4096)) {
            let s = escape_banner(&data);
            prop_assert!(s.len() <= BANNER_MAX_CHARS + 3);
            prop_assert!(s.bytes().all(|b| (0x20..0x7f).contains(&b)));
        }

        #[test]
        fn split_never_panics(s in ".{0,200}") {
            let _ = split_product_version(&s);
            let _ = version_prefix(&s);
            let _ = clean_field(&s);
        }
    }
}
