//! PEP 440 version ordering (PyPI), exactly as the `packaging` library's `Version` parses and
//! orders versions.
//!
//! Why `packaging` and not the PEP's prose: pip and every PyPI tool, including OSV's, decide with
//! `packaging`, and its regular expression accepts more than the canonical form: any case, a
//! leading `v`, surrounding whitespace, `alpha`/`beta`/`c`/`pre`/`preview` spellings, `-`, `_`
//! or `.` separators (`1.0-Alpha_1`), implicit numbers (`1.0a` is `1.0a0`), implicit post-releases
//! (`1.0-1` is `1.0.post1`), `rev`/`r` for post. Versions it rejects (the old "legacy" versions
//! such as `0.9-doduo`) are invalid here too.
//!
//! The order is packaging's `_cmpkey`: epoch, release with trailing zeros ignored (`1.0 ==
//! 1.0.0`), then pre-release (a dev-release with neither pre nor post sorts before every
//! pre-release: `1.0.dev0 < 1.0a1.dev0 < 1.0a1 < 1.0a1.post0.dev0 < 1.0a1.post0 < 1.0`), post,
//! dev, and the local version last (`1.0 < 1.0+abc`), segment by segment with numeric segments
//! above alphanumeric ones.
//!
//! Parsing borrows from the input and allocates nothing; numbers of any length compare as digit
//! strings, never overflowing (Python's ints are unbounded too).
//!
//! The one deliberate difference: Python's case-insensitive regex also lets four non-ASCII
//! letters stand in for ASCII ones (`K` KELVIN SIGN, `ſ` LONG S, `ı`, `İ`); we reject every
//! non-ASCII character other than the surrounding whitespace, which we trim as Python's `\s` does.

use super::VersionError;
use std::cmp::Ordering;

const ECOSYSTEM: &str = "pep440";

/// A parsed version, borrowing from the input. Numbers are digit strings; `""` is zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pep440<'a> {
    epoch: &'a str,
    /// Dot-separated digit runs.
    release: &'a str,
    /// (0 = a, 1 = b, 2 = rc; number)
    pre: Option<(u8, &'a str)>,
    post: Option<&'a str>,
    dev: Option<&'a str>,
    /// Segments separated by `.`, `_` or `-`.
    local: Option<&'a str>,
}

/// Python's `str.isspace()`, which is what `\s` matches in a `str` pattern.
fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

fn is_sep(c: Option<&u8>) -> bool {
    matches!(c, Some(b'-' | b'_' | b'.'))
}

/// End of the run of ASCII digits starting at `at`.
fn digits_end(b: &[u8], at: usize) -> usize {
    b.get(at..)
        .map(|rest| at + rest.iter().take_while(|c| c.is_ascii_digit()).count())
        .unwrap_or(at)
}

/// Length of the first of `words` that `b[at..]` starts with, case-insensitively, and its index.
/// Longest spellings come first in `words`; a shorter one is never the right choice when a longer
/// one matches, since what would follow it (`lpha`, `view`, `ev`) cannot continue a version.
fn keyword(b: &[u8], at: usize, words: &[&str]) -> Option<(usize, usize)> {
    let rest = b.get(at..)?;
    let first = rest.first()?.to_ascii_lowercase();
    words.iter().enumerate().find_map(|(i, w)| {
        let w = w.as_bytes();
        (w.first() == Some(&first)
            && rest.len() >= w.len()
            && rest[..w.len()].eq_ignore_ascii_case(w))
        .then_some((i, w.len()))
    })
}

const PRE_WORDS: &[&str] = &["preview", "pre", "alpha", "a", "beta", "b", "rc", "c"];
const PRE_RANKS: &[u8] = &[2, 2, 0, 0, 1, 1, 2, 2];
const POST_WORDS: &[&str] = &["post", "rev", "r"];

/// After a pre/post/dev keyword: `[-_.]?` then an optional number. Both are taken greedily, as
/// the regex does; whatever could follow a separator without a number could also follow without
/// it, so the greedy choice never turns a valid version invalid.
fn optional_number<'a>(t: &'a str, b: &[u8], at: usize) -> (&'a str, usize) {
    let num_start = if is_sep(b.get(at)) { at + 1 } else { at };
    let end = digits_end(b, num_start);
    (&t[num_start..end], end)
}

impl<'a> Pep440<'a> {
    fn parse(input: &'a str) -> Result<Self, VersionError> {
        VersionError::check_len(ECOSYSTEM, input)?;
        let invalid = |why: &str| VersionError::invalid(ECOSYSTEM, input, why.to_string());
        let t = input.trim_matches(is_py_space);
        if !t.is_ascii() {
            return Err(invalid("non-ASCII characters"));
        }
        let b = t.as_bytes();
        let mut p = 0;
        if matches!(b.first(), Some(b'v' | b'V')) {
            p = 1;
        }

        // Epoch: digits followed by '!'.
        let mut epoch = "";
        let first_end = digits_end(b, p);
        if first_end > p && b.get(first_end) == Some(&b'!') {
            epoch = &t[p..first_end];
            p = first_end + 1;
        }

        // Release: digits ('.' digits)*.
        let release_start = p;
        p = digits_end(b, p);
        if p == release_start {
            return Err(invalid("no release number"));
        }
        while b.get(p) == Some(&b'.') && b.get(p + 1).is_some_and(u8::is_ascii_digit) {
            p = digits_end(b, p + 1);
        }
        let release = &t[release_start..p];

        // Pre-release: [-_.]? (a|b|rc|...) [-_.]? digits?
        let mut pre = None;
        {
            let at = if is_sep(b.get(p)) { p + 1 } else { p };
            if let Some((i, len)) = keyword(b, at, PRE_WORDS) {
                let (num, end) = optional_number(t, b, at + len);
                pre = Some((PRE_RANKS.get(i).copied().unwrap_or(2), num));
                p = end;
            }
        }

        // Post-release: -digits | [-_.]? (post|rev|r) [-_.]? digits?
        let mut post = None;
        if b.get(p) == Some(&b'-') && b.get(p + 1).is_some_and(u8::is_ascii_digit) {
            let end = digits_end(b, p + 1);
            post = Some(&t[p + 1..end]);
            p = end;
        } else {
            let at = if is_sep(b.get(p)) { p + 1 } else { p };
            if let Some((_, len)) = keyword(b, at, POST_WORDS) {
                let (num, end) = optional_number(t, b, at + len);
                post = Some(num);
                p = end;
            }
        }

        // Dev-release: [-_.]? dev [-_.]? digits?
        let mut dev = None;
        {
            let at = if is_sep(b.get(p)) { p + 1 } else { p };
            if let Some((_, len)) = keyword(b, at, &["dev"]) {
                let (num, end) = optional_number(t, b, at + len);
                dev = Some(num);
                p = end;
            }
        }

        // Local version: + [a-z0-9]+ ([-_.] [a-z0-9]+)*
        let mut local = None;
        if b.get(p) == Some(&b'+') {
            let text = &t[p + 1..];
            let well_formed = !text.is_empty()
                && text
                    .split(['.', '_', '-'])
                    .all(|s| !s.is_empty() && s.bytes().all(|c| c.is_ascii_alphanumeric()));
            if !well_formed {
                return Err(invalid("malformed local version"));
            }
            local = Some(text);
            p = t.len();
        }

        if p != t.len() {
            return Err(invalid("not a PEP 440 version"));
        }
        Ok(Self {
            epoch,
            release,
            pre,
            post,
            dev,
            local,
        })
    }
}

/// Compares digit strings of any length numerically.
fn cmp_digits(a: &str, b: &str) -> Ordering {
    let a = a.trim_start_matches('0');
    let b = b.trim_start_matches('0');
    // A byte loop, not `str::cmp`: these are a few bytes long, and the libc `memcmp` call that
    // `str::cmp` makes dominated the comparison time.
    a.len().cmp(&b.len()).then_with(|| {
        a.bytes()
            .zip(b.bytes())
            .map(|(x, y)| x.cmp(&y))
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
    })
}

/// Release segments, the shorter padded with zeros (the same as packaging's dropping of
/// trailing zeros before comparing tuples).
fn cmp_release(a: &str, b: &str) -> Ordering {
    let (mut ia, mut ib) = (a.split('.'), b.split('.'));
    loop {
        match (ia.next(), ib.next()) {
            (None, None) => return Ordering::Equal,
            (x, y) => match cmp_digits(x.unwrap_or(""), y.unwrap_or("")) {
                Ordering::Equal => {}
                o => return o,
            },
        }
    }
}

/// packaging's `_cmpkey` slots as (class, rank, number): `NegativeInfinity` is class 0, a value 1,
/// `Infinity` 2.
fn pre_key<'a>(v: &Pep440<'a>) -> (u8, u8, &'a str) {
    match v.pre {
        Some((rank, n)) => (1, rank, n),
        None if v.post.is_none() && v.dev.is_some() => (0, 0, ""),
        None => (2, 0, ""),
    }
}

fn cmp_key(a: (u8, u8, &str), b: (u8, u8, &str)) -> Ordering {
    a.0.cmp(&b.0)
        .then(a.1.cmp(&b.1))
        .then_with(|| cmp_digits(a.2, b.2))
}

fn cmp_local_segment(a: &str, b: &str) -> Ordering {
    let num = |s: &str| s.bytes().all(|c| c.is_ascii_digit());
    match (num(a), num(b)) {
        (true, true) => cmp_digits(a, b),
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        (false, false) => a
            .bytes()
            .map(|c| c.to_ascii_lowercase())
            .cmp(b.bytes().map(|c| c.to_ascii_lowercase())),
    }
}

fn cmp_local(a: Option<&str>, b: Option<&str>) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(a), Some(b)) => {
            let (mut ia, mut ib) = (a.split(['.', '_', '-']), b.split(['.', '_', '-']));
            loop {
                match (ia.next(), ib.next()) {
                    (None, None) => return Ordering::Equal,
                    (None, Some(_)) => return Ordering::Less,
                    (Some(_), None) => return Ordering::Greater,
                    (Some(x), Some(y)) => match cmp_local_segment(x, y) {
                        Ordering::Equal => {}
                        o => return o,
                    },
                }
            }
        }
    }
}

fn post_key<'a>(v: &Pep440<'a>) -> (u8, u8, &'a str) {
    v.post.map_or((0, 0, ""), |n| (1, 0, n))
}

fn dev_key<'a>(v: &Pep440<'a>) -> (u8, u8, &'a str) {
    v.dev.map_or((2, 0, ""), |n| (1, 0, n))
}

fn cmp_parsed(a: &Pep440<'_>, b: &Pep440<'_>) -> Ordering {
    cmp_digits(a.epoch, b.epoch)
        .then_with(|| cmp_release(a.release, b.release))
        .then_with(|| cmp_key(pre_key(a), pre_key(b)))
        .then_with(|| cmp_key(post_key(a), post_key(b)))
        .then_with(|| cmp_key(dev_key(a), dev_key(b)))
        .then_with(|| cmp_local(a.local, b.local))
}

/// Compares two PEP 440 versions exactly as `packaging.version.Version` does.
pub fn compare(a: &str, b: &str) -> Result<Ordering, VersionError> {
    let pa = Pep440::parse(a)?;
    let pb = Pep440::parse(b)?;
    Ok(cmp_parsed(&pa, &pb))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::version::laws;
    use proptest::prelude::*;

    fn cmp(a: &str, b: &str) -> Ordering {
        compare(a, b).unwrap_or_else(|e| panic!("{a} vs {b}: {e}"))
    }

    /// packaging's own test ordering (tests/test_version.py, VERSIONS), strictly increasing.
    #[test]
    fn packaging_ordered_list() {
        let list = [
            "1.0.dev456",
            "1.0a1",
            "1.0a2.dev456",
            "1.0a12.dev456",
            "1.0a12",
            "1.0b1.dev456",
            "1.0b2",
            "1.0b2.post345.dev456",
            "1.0b2.post345",
            "1.0b2-346",
            "1.0c1.dev456",
            "1.0c1",
            "1.0rc2",
            "1.0c3",
            "1.0",
            "1.0.post456.dev34",
            "1.0.post456",
            "1.1.dev1",
            "1.2+123abc",
            "1.2+123abc456",
            "1.2+abc",
            "1.2+abc123",
            "1.2+abc123def",
            "1.2+1234.abc",
            "1.2+123456",
            "1.2.r32+123456",
            "1.2.rev33+123456",
            "1!1.0b2.post345.dev456",
            "1!1.0",
            "1!1.0.post456",
            "1!1.2.r32+123456",
        ];
        for (i, x) in list.iter().enumerate() {
            for (j, y) in list.iter().enumerate() {
                assert_eq!(cmp(x, y), i.cmp(&j), "{x} vs {y}");
            }
        }
    }

    #[test]
    fn spellings_and_normalisation() {
        let same = [
            ("1.0", "1.0.0"),
            ("v1.0", "1.0"),
            ("  1.0\n", "1.0"),
            ("1.0ALPHA1", "1.0a1"),
            ("1.0-beta.2", "1.0b2"),
            ("1.0_c_3", "1.0rc3"),
            ("1.0pre", "1.0rc0"),
            ("1.0.preview-4", "1.0rc4"),
            ("1.0-1", "1.0.post1"),
            ("1.0rev", "1.0.post0"),
            ("1.0-r-5", "1.0.post5"),
            ("1.0.DEV", "1.0.dev0"),
            ("1.0a.", "1.0a0"),
            ("1.0a.-post", "1.0a0.post0"),
            ("1.0+AbC.01", "1.0+abc.1"),
            ("1.0+a-b_c", "1.0+a.b.c"),
            ("0!1.0", "1.0"),
            ("1.000000000000000000000000000001", "1.1"),
        ];
        for (a, b) in same {
            assert_eq!(cmp(a, b), Ordering::Equal, "{a:?} vs {b:?}");
        }
        assert_eq!(cmp("1.0a-1", "1.0a1"), Ordering::Equal);
        assert_eq!(cmp("1!0.1", "99999"), Ordering::Greater);
        assert_eq!(
            cmp(
                "1.99999999999999999999999999999",
                "1.100000000000000000000000000000"
            ),
            Ordering::Less
        );
    }

    #[test]
    fn rejects_invalid() {
        for bad in [
            "",
            "v",
            "1.0-bulbasaur",
            "1.0+",
            "1.0+a..b",
            "1.0+a_",
            "1..0",
            "1.0.",
            "!1.0",
            "1!",
            "1.0a1a2",
            "1.0.post1.post2",
            "1.0 1",
            "1.0-",
            "1.0é",
            "1.0\u{212a}",
        ] {
            assert!(compare(bad, "1.0").is_err(), "{bad:?} accepted");
        }
        assert!(compare(&"1.".repeat(200), "1").is_err());
    }

    proptest! {
        #[test]
        fn reflexive_and_antisymmetric(
            a in "v?([0-9]!)?[0-9]{1,3}(\\.[0-9]{1,3}){0,3}([-_.]?(a|b|rc|c|alpha|pre)[0-9]{0,2})?(-[0-9]|\\.post[0-9]?)?(\\.dev[0-9]?)?(\\+[a-z0-9]{1,3}([._-][a-z0-9]{1,3}){0,2})?",
            b in "v?([0-9]!)?[0-9]{1,3}(\\.[0-9]{1,3}){0,3}([-_.]?(a|b|rc|c|alpha|pre)[0-9]{0,2})?(-[0-9]|\\.post[0-9]?)?(\\.dev[0-9]?)?(\\+[a-z0-9]{1,3}([._-][a-z0-9]{1,3}){0,2})?",
        ) {
            laws::valid_pair(compare, &a, &b)?;
        }

        #[test]
        fn transitive(mut v in proptest::collection::vec("[0-2](\\.[0-2]){0,2}(a[0-2]|rc)?(\\.post[0-1])?(\\.dev[0-1])?(\\+[a0-1]{1,2})?", 3)) {
            laws::transitive(compare, &mut v)?;
        }

        #[test]
        fn never_panics(a in "\\PC{0,40}", b in ".{0,40}") {
            if let Ok(o) = compare(&a, &b) {
                prop_assert_eq!(compare(&b, &a), Ok(o.reverse()));
            }
        }
    }
}
