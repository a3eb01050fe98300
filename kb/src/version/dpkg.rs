//! dpkg version ordering (Debian, Ubuntu), exact to `dpkg --compare-versions`.
//!
//! Why its own module: Debian advisories say "fixed in `1:2.3-4+deb12u1`" and the host reports
//! what dpkg has installed; only dpkg's own rules (epochs, `~` before the end of the string,
//! letters before other punctuation, numbers of any length) decide whether the host is affected.
//!
//! Grammar, as dpkg 1.21 parses it: `[epoch:]upstream[-revision]`. Leading blanks are
//! skipped; trailing blanks (space, tab) are dropped and any other text after a blank is an error.
//! The epoch is whatever precedes the first `:` and must be a `strtol` number in `0..=i32::MAX`
//! (leading white space and a sign are accepted, as `strtol` does); the revision follows the last `-` and must not be empty;
//! the upstream part must not be empty. Other oddities (an upstream part not starting with a digit,
//! characters outside dpkg's allowed set) are only warnings for dpkg and compare normally here.
//! `dpkg --compare-versions` takes an empty string or `<unknown>` as "no version"; that is a
//! command-line convenience, not a version, so both are errors here.

use super::VersionError;
use std::cmp::Ordering;

const ECOSYSTEM: &str = "dpkg";

/// A parsed version, borrowing from the input: parsing allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Parsed<'a> {
    epoch: i64,
    upstream: &'a [u8],
    revision: &'a [u8],
}

/// Compares two dpkg versions.
pub fn compare(a: &str, b: &str) -> Result<Ordering, VersionError> {
    let pa = parse(a)?;
    let pb = parse(b)?;
    Ok(pa
        .epoch
        .cmp(&pb.epoch)
        .then_with(|| verrevcmp(pa.upstream, pb.upstream))
        .then_with(|| verrevcmp(pa.revision, pb.revision)))
}

/// Whether dpkg accepts `v` as a version (warnings included, as `--compare-versions` does).
pub fn is_valid(v: &str) -> bool {
    parse(v).is_ok()
}

fn parse(version: &str) -> Result<Parsed<'_>, VersionError> {
    VersionError::check_len(ECOSYSTEM, version)?;
    let err = |reason: &str| VersionError::invalid(ECOSYSTEM, version, reason);
    let bytes = version.as_bytes();
    if bytes.contains(&0) {
        // A C string ends at NUL, so no dpkg ever sees such a version.
        return Err(err("contains a NUL byte"));
    }
    if bytes.is_empty() || version == "<unknown>" {
        return Err(err("dpkg takes this as no version at all"));
    }
    // dpkg skips leading blanks (space, tab) and ends the version at the first blank; other
    // white space is part of the version (only the epoch's strtol skips it).
    let start = bytes
        .iter()
        .position(|c| !is_blank(*c))
        .ok_or_else(|| err("version string is empty"))?;
    let s = bytes.get(start..).unwrap_or_default();
    let end = s.iter().position(|c| is_blank(*c)).unwrap_or(s.len());
    let (s, tail) = s.split_at(end);
    if tail.iter().any(|c| !is_blank(*c)) {
        return Err(err("version string has embedded spaces"));
    }

    let (epoch, rest) = match s.iter().position(|c| *c == b':') {
        Some(colon) => {
            let (e, rest) = s.split_at(colon);
            let epoch = parse_epoch(e).map_err(err)?;
            let rest = rest.get(1..).unwrap_or_default();
            if rest.is_empty() {
                return Err(err("nothing after colon in version number"));
            }
            (epoch, rest)
        }
        None => (0, s),
    };
    let (upstream, revision) = match rest.iter().rposition(|c| *c == b'-') {
        Some(h) => {
            let (u, r) = rest.split_at(h);
            let r = r.get(1..).unwrap_or_default();
            if r.is_empty() {
                return Err(err("revision number is empty"));
            }
            (u, r)
        }
        None => (rest, &b""[..]),
    };
    if upstream.is_empty() {
        return Err(err("version number is empty"));
    }
    Ok(Parsed {
        epoch,
        upstream,
        revision,
    })
}

/// The epoch as C's `strtol` reads it (optional sign, decimal digits), which must consume the
/// whole text before the colon and land in `0..=i32::MAX`.
fn parse_epoch(e: &[u8]) -> Result<i64, &'static str> {
    // strtol skips leading white space (isspace, vertical tab included).
    let skip = e
        .iter()
        .take_while(|c| c.is_ascii_whitespace() || **c == 0x0b)
        .count();
    let e = e.get(skip..).unwrap_or_default();
    let (negative, digits) = match e.first() {
        Some(b'+') => (false, e.get(1..).unwrap_or_default()),
        Some(b'-') => (true, e.get(1..).unwrap_or_default()),
        _ => (false, e),
    };
    if !digits.first().is_some_and(u8::is_ascii_digit) {
        // strtol consumed nothing.
        return Err("epoch in version is empty");
    }
    if !digits.iter().all(u8::is_ascii_digit) {
        return Err("epoch in version is not number");
    }
    let significant = digits
        .iter()
        .position(|c| *c != b'0')
        .map_or(&b""[..], |i| digits.get(i..).unwrap_or_default());
    if significant.len() > 10 {
        return Err(if negative {
            "epoch in version is negative"
        } else {
            "epoch in version is too big"
        });
    }
    let value = significant
        .iter()
        .fold(0i64, |acc, c| acc * 10 + i64::from(c - b'0'));
    if negative && value != 0 {
        return Err("epoch in version is negative");
    }
    if value > i64::from(i32::MAX) {
        return Err("epoch in version is too big");
    }
    Ok(value)
}

fn is_blank(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

/// dpkg's `order()`: where a non-digit byte sorts. `~` below everything (even the end), the end
/// and digits at 0, letters by their code, other bytes after all letters. dpkg reads a `char`,
/// which is signed on the platforms Debian ships, so bytes >= 0x80 land between the letters and
/// the ASCII punctuation.
fn order(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(b'~') => -1,
        Some(c) if c >= 0x80 => i32::from(c),
        Some(c) => i32::from(c) + 256,
    }
}

/// dpkg's `verrevcmp`: alternating non-digit and digit runs; digit runs compare as numbers of
/// any length (leading zeros dropped, then the longer run wins, then the first differing digit).
fn verrevcmp(a: &[u8], b: &[u8]) -> Ordering {
    let (mut i, mut j) = (0usize, 0usize);
    let digit_at = |s: &[u8], k: usize| s.get(k).is_some_and(u8::is_ascii_digit);
    while i < a.len() || j < b.len() {
        while (i < a.len() && !digit_at(a, i)) || (j < b.len() && !digit_at(b, j)) {
            let ac = order(a.get(i).copied());
            let bc = order(b.get(j).copied());
            if ac != bc {
                return ac.cmp(&bc);
            }
            i += 1;
            j += 1;
        }
        while a.get(i) == Some(&b'0') {
            i += 1;
        }
        while b.get(j) == Some(&b'0') {
            j += 1;
        }
        let mut first_diff = Ordering::Equal;
        while digit_at(a, i) && digit_at(b, j) {
            if first_diff == Ordering::Equal {
                first_diff = a.get(i).cmp(&b.get(j));
            }
            i += 1;
            j += 1;
        }
        if digit_at(a, i) {
            return Ordering::Greater;
        }
        if digit_at(b, j) {
            return Ordering::Less;
        }
        if first_diff != Ordering::Equal {
            return first_diff;
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::version::laws;
    use proptest::prelude::*;

    fn cmp(a: &str, b: &str) -> Ordering {
        match compare(a, b) {
            Ok(o) => o,
            Err(e) => panic!("{a} vs {b}: {e}"),
        }
    }

    #[test]
    fn known_orderings() {
        assert_eq!(cmp("1.0~rc1", "1.0"), Ordering::Less);
        assert_eq!(cmp("1.0", "1.0-0"), Ordering::Equal);
        assert_eq!(cmp("1:1.0", "2.0"), Ordering::Greater);
        assert_eq!(cmp("1.0a", "1.0+"), Ordering::Less);
        assert_eq!(cmp("1.0~~", "1.0~"), Ordering::Less);
        assert_eq!(cmp("1.0é", "1.0+"), Ordering::Less);
        assert_eq!(cmp("1.0é", "1.0z"), Ordering::Greater);
        assert_eq!(cmp("+1:0", "1:0"), Ordering::Equal);
        assert_eq!(cmp("-0:1", "1"), Ordering::Equal);
        assert_eq!(cmp("\n1:0", "1:0"), Ordering::Equal);
        assert_eq!(cmp("\t1:0", "1:0"), Ordering::Equal);
        assert_eq!(cmp("\n33-1", "33-1"), Ordering::Greater);
        assert_eq!(cmp("1:0\t ", "1:0"), Ordering::Equal);
        assert_eq!(cmp("1:1:1", "1:1"), Ordering::Greater);
        assert_eq!(
            cmp("1.000000000000000000000000000002", "1.2"),
            Ordering::Equal
        );
        assert_eq!(
            cmp(
                "1.99999999999999999999999999999",
                "1.100000000000000000000000000000"
            ),
            Ordering::Less
        );
    }

    #[test]
    fn rejects_what_dpkg_rejects() {
        for v in [
            "",
            "<unknown>",
            " ",
            "1.0-",
            ":1",
            "1:",
            "-1:1",
            "1 0",
            "1:-1",
            "0x1:0",
            "2147483648:1",
            "99999999999:1",
            "1.0-1:2",
            "a\0",
        ] {
            assert!(compare(v, "1").is_err(), "{v:?} should be rejected");
        }
        assert_eq!(cmp("2147483647:1", "1"), Ordering::Greater);
        let long = "1".repeat(super::super::MAX_VERSION_LEN + 1);
        assert!(matches!(
            compare(&long, "1"),
            Err(VersionError::TooLong { .. })
        ));
    }

    proptest! {
        #[test]
        fn reflexive(a in "\\PC{0,40}") {
            laws::reflexive(compare, &a)?;
        }

        #[test]
        fn antisymmetric(a in "[0-9a-zA-Z.:~+-]{1,20}", b in "[0-9a-zA-Z.:~+-]{1,20}") {
            laws::antisymmetric(compare, &a, &b)?;
        }

        #[test]
        fn never_panics(a in any::<String>(), b in "\\PC*") {
            let _ = compare(&a, &b);
            let _ = compare(&b, &a);
        }
    }
}
