//! rpm version ordering (Red Hat, AlmaLinux, Rocky, SUSE), exact to rpm's `rpmvercmp` and the
//! EVR comparison of `rpm.labelCompare`.
//!
//! Why its own module: rpm's rules differ from dpkg's in ways that flip real answers: every
//! non-alphanumeric byte is a separator (so `1.0` = `1_0`), a numeric segment beats an alphabetic
//! one, `~` sorts before everything and `^` after the end of the string but before anything else.
//!
//! An EVR string `[epoch:]version[-release]` is split as rpm's `parseEVR` does: an epoch only when
//! the string starts with ASCII digits (possibly none) followed by `:`; the release after the
//! last `-`. As in `labelCompare`, a missing epoch is `0`, a missing release sorts before any
//! release, even an empty one (`1.0` < `1.0-`), and an empty version is refused (`-1`, `1:`).

use super::VersionError;
use std::cmp::Ordering;

const ECOSYSTEM: &str = "rpm";

/// Compares two rpm EVR strings.
pub fn compare(a: &str, b: &str) -> Result<Ordering, VersionError> {
    let (ea, va, ra) = split_evr(a)?;
    let (eb, vb, rb) = split_evr(b)?;
    Ok(rpmvercmp(ea, eb)
        .then_with(|| rpmvercmp(va, vb))
        .then_with(|| match (ra, rb) {
            (Some(x), Some(y)) => rpmvercmp(x, y),
            (x, y) => x.is_some().cmp(&y.is_some()),
        }))
}

type Evr<'a> = (&'a [u8], &'a [u8], Option<&'a [u8]>);

/// rpm's `parseEVR`, borrowing from the input.
fn split_evr(evr: &str) -> Result<Evr<'_>, VersionError> {
    VersionError::check_len(ECOSYSTEM, evr)?;
    let s = evr.as_bytes();
    if s.contains(&0) {
        // rpm works on C strings; a NUL would silently cut the version short.
        return Err(VersionError::invalid(ECOSYSTEM, evr, "contains a NUL byte"));
    }
    let digits = s.iter().take_while(|c| c.is_ascii_digit()).count();
    let (epoch, version_release) = if s.get(digits) == Some(&b':') {
        let e = s.get(..digits).unwrap_or_default();
        let e: &[u8] = if e.is_empty() { b"0" } else { e };
        (e, s.get(digits + 1..).unwrap_or_default())
    } else {
        (&b"0"[..], s)
    };
    let (version, release) = match version_release.iter().rposition(|c| *c == b'-') {
        Some(h) => {
            let (v, r) = version_release.split_at(h);
            (v, Some(r.get(1..).unwrap_or_default()))
        }
        None => (version_release, None),
    };
    if version.is_empty() {
        // rpm refuses to compare an EVR without a version ("invalid version").
        return Err(VersionError::invalid(ECOSYSTEM, evr, "version is empty"));
    }
    Ok((epoch, version, release))
}

/// Whether rpm treats `c` as part of a segment or as a marker (rpm's ctype is ASCII-only).
fn is_kept(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'~' || c == b'^'
}

/// rpm's `rpmvercmp` over byte strings.
fn rpmvercmp(a: &[u8], b: &[u8]) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    let (mut i, mut j) = (0usize, 0usize);
    while i < a.len() || j < b.len() {
        while i < a.len() && !a.get(i).copied().is_some_and(is_kept) {
            i += 1;
        }
        while j < b.len() && !b.get(j).copied().is_some_and(is_kept) {
            j += 1;
        }
        let (ca, cb) = (a.get(i).copied(), b.get(j).copied());
        // `~` sorts before everything, the end of the string included.
        if ca == Some(b'~') || cb == Some(b'~') {
            if ca != Some(b'~') {
                return Ordering::Greater;
            }
            if cb != Some(b'~') {
                return Ordering::Less;
            }
            i += 1;
            j += 1;
            continue;
        }
        // `^` sorts after the end of the string but before anything else.
        if ca == Some(b'^') || cb == Some(b'^') {
            match (ca, cb) {
                (None, _) => return Ordering::Less,
                (_, None) => return Ordering::Greater,
                (Some(x), _) if x != b'^' => return Ordering::Greater,
                (_, Some(y)) if y != b'^' => return Ordering::Less,
                _ => {}
            }
            i += 1;
            j += 1;
            continue;
        }
        let (Some(first), Some(_)) = (ca, cb) else {
            break;
        };
        let numeric = first.is_ascii_digit();
        let class = |c: &u8| {
            if numeric {
                c.is_ascii_digit()
            } else {
                c.is_ascii_alphabetic()
            }
        };
        let seg_a = segment(a, i, class);
        let seg_b = segment(b, j, class);
        i += seg_a.len();
        j += seg_b.len();
        if seg_b.is_empty() {
            // Different kinds: a numeric segment is newer than an alphabetic one.
            return if numeric {
                Ordering::Greater
            } else {
                Ordering::Less
            };
        }
        let ord = if numeric {
            let na = strip_zeros(seg_a);
            let nb = strip_zeros(seg_b);
            na.len().cmp(&nb.len()).then_with(|| na.cmp(nb))
        } else {
            seg_a.cmp(seg_b)
        };
        if ord != Ordering::Equal {
            return ord;
        }
    }
    match (i < a.len(), j < b.len()) {
        (false, false) => Ordering::Equal,
        (false, true) => Ordering::Less,
        _ => Ordering::Greater,
    }
}

fn segment(s: &[u8], start: usize, class: impl Fn(&u8) -> bool) -> &[u8] {
    let rest = s.get(start..).unwrap_or_default();
    let n = rest.iter().take_while(|c| class(c)).count();
    rest.get(..n).unwrap_or_default()
}

fn strip_zeros(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|c| **c == b'0').count();
    s.get(n..).unwrap_or_default()
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
        assert_eq!(cmp("1.0^git1", "1.0"), Ordering::Greater);
        assert_eq!(cmp("1.0^git1", "1.0.1"), Ordering::Less);
        assert_eq!(cmp("1.0^git1", "1.0~rc1"), Ordering::Greater);
        assert_eq!(cmp("1.0", "1_0"), Ordering::Equal);
        assert_eq!(cmp("1.0a", "1.0.1"), Ordering::Less);
        assert_eq!(cmp("1.0", "1.0-1"), Ordering::Less);
        assert_eq!(cmp("1.0", "1.0-"), Ordering::Less);
        assert_eq!(cmp("0:1.0", "1.0"), Ordering::Equal);
        assert_eq!(cmp(":1.0", "1.0"), Ordering::Equal);
        assert_eq!(cmp("1:1.0", "2.0"), Ordering::Greater);
        assert_eq!(cmp("001:1", "1:1"), Ordering::Equal);
        assert_eq!(cmp("a:1", "b:1"), Ordering::Less);
        assert_eq!(
            cmp("1.000000000000000000000000000002", "1.2"),
            Ordering::Equal
        );
    }

    #[test]
    fn rejects_nul_empty_version_and_overlong() {
        assert!(compare("1\0", "1").is_err());
        for v in ["", "-1", "1:", "1:-2", ":"] {
            assert!(compare(v, "1").is_err(), "{v:?}");
        }
        let long = "1".repeat(super::super::MAX_VERSION_LEN + 1);
        assert!(matches!(
            compare("1", &long),
            Err(VersionError::TooLong { .. })
        ));
    }

    proptest! {
        #[test]
        fn reflexive(a in "\\PC{0,40}") {
            laws::reflexive(compare, &a)?;
        }

        #[test]
        fn antisymmetric(a in "[0-9a-zA-Z._:~^+-]{0,20}", b in "[0-9a-zA-Z._:~^+-]{0,20}") {
            laws::antisymmetric(compare, &a, &b)?;
        }

        #[test]
        fn never_panics(a in any::<String>(), b in "\\PC*") {
            let _ = compare(&a, &b);
            let _ = compare(&b, &a);
        }
    }
}
