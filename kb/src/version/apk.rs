//! apk version ordering (Alpine), exact to the current apk-tools (`apk version -t`, the
//! token-based `apk_version_compare` with `~commit-hash` support).
//!
//! Why its own module: Alpine versions follow a Gentoo-like grammar,
//! `digit{.digit}...{letter}{_suffix{number}}...{~hash}{-r#}`, where `_alpha`, `_beta`, `_pre`
//! and `_rc` sort below the bare version and `_cvs`, `_svn`, `_git`, `_hg`, `_p` above it, and a
//! digit group with a leading zero compares as a string. None of that matches dpkg or rpm.
//!
//! apk compares token by token and stops at the first token it cannot read; it never refuses to
//! compare, so neither does [`compare`] (only over-long input is an error). Text past an invalid
//! token is ignored, exactly as apk ignores it: two versions that differ only after such a point
//! compare equal. [`is_valid`] says whether apk itself would accept a version (`apk version -c`),
//! for callers that want to treat such versions as suspect. Numbers are read as apk reads them,
//! into a 64-bit integer that wraps on overflow.

use super::VersionError;
use std::cmp::Ordering;

const ECOSYSTEM: &str = "apk";

/// Token kinds in the order apk ranks them: the order is the semantics (a version that goes on
/// with a lower-ranked token is the greater one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    InitialDigit,
    Digit,
    Letter,
    Suffix,
    SuffixNo,
    CommitHash,
    RevisionNo,
    End,
    Invalid,
}

/// Suffix ranks; everything below `NONE` is a pre-release.
const SUFFIX_NONE: u8 = 5;

#[derive(Debug, Clone, Copy)]
struct Token<'a> {
    kind: Kind,
    suffix: u8,
    number: u64,
    text: &'a [u8],
}

/// A cursor over one version string; yields apk's tokens without allocating.
struct Tokens<'a> {
    rest: &'a [u8],
    tok: Token<'a>,
}

impl<'a> Tokens<'a> {
    fn first(s: &'a [u8]) -> Self {
        let mut t = Tokens {
            rest: s,
            tok: Token {
                kind: Kind::InitialDigit,
                suffix: 0,
                number: 0,
                text: &[],
            },
        };
        t.digits();
        t
    }

    fn take(&mut self, accept: impl Fn(u8) -> bool) -> &'a [u8] {
        let n = self.rest.iter().take_while(|c| accept(**c)).count();
        let (taken, rest) = self.rest.split_at(n);
        self.rest = rest;
        taken
    }

    fn digits(&mut self) {
        let text = self.take(|c| c.is_ascii_digit());
        self.tok.number = text.iter().fold(0u64, |acc, c| {
            acc.wrapping_mul(10).wrapping_add(u64::from(c - b'0'))
        });
        self.tok.text = text;
        if text.is_empty() {
            self.tok.kind = Kind::Invalid;
        }
    }

    fn next(&mut self) {
        let kind = self.tok.kind;
        let Some(&c) = self.rest.first() else {
            self.tok.kind = Kind::End;
            return;
        };
        match c {
            b'a'..=b'z' if kind <= Kind::Digit => {
                self.tok.text = self.rest.get(..1).unwrap_or_default();
                self.rest = self.rest.get(1..).unwrap_or_default();
                self.tok.kind = Kind::Letter;
            }
            b'.' | b'0'..=b'9' => {
                if c == b'.' {
                    if kind > Kind::Digit {
                        self.tok.kind = Kind::Invalid;
                        return;
                    }
                    self.rest = self.rest.get(1..).unwrap_or_default();
                }
                self.tok.kind = match kind {
                    Kind::InitialDigit | Kind::Digit => Kind::Digit,
                    Kind::Suffix => Kind::SuffixNo,
                    _ => {
                        self.tok.kind = Kind::Invalid;
                        return;
                    }
                };
                self.digits();
            }
            b'_' if kind <= Kind::SuffixNo => {
                self.rest = self.rest.get(1..).unwrap_or_default();
                let text = self.take(|c| c.is_ascii_lowercase());
                self.tok.text = text;
                self.tok.suffix = suffix_rank(text);
                self.tok.kind = if self.tok.suffix == 0 {
                    Kind::Invalid
                } else {
                    Kind::Suffix
                };
            }
            b'~' if kind < Kind::CommitHash => {
                self.rest = self.rest.get(1..).unwrap_or_default();
                let text = self.take(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c));
                self.tok.text = text;
                self.tok.kind = if text.is_empty() {
                    Kind::Invalid
                } else {
                    Kind::CommitHash
                };
            }
            b'-' if kind < Kind::RevisionNo && self.rest.starts_with(b"-r") => {
                self.rest = self.rest.get(2..).unwrap_or_default();
                self.tok.kind = Kind::RevisionNo;
                self.digits();
            }
            _ => self.tok.kind = Kind::Invalid,
        }
    }
}

fn suffix_rank(s: &[u8]) -> u8 {
    match s {
        b"alpha" => 1,
        b"beta" => 2,
        b"pre" => 3,
        b"rc" => 4,
        b"cvs" => 6,
        b"svn" => 7,
        b"git" => 8,
        b"hg" => 9,
        b"p" => 10,
        _ => 0,
    }
}

/// Compares two tokens of the same kind.
fn token_cmp(a: &Token<'_>, b: &Token<'_>) -> Ordering {
    match a.kind {
        // A digit group (after the first) with a leading zero compares as a string, as in
        // Gentoo's rules: 1.02 < 1.1.
        Kind::Digit if a.text.first() == Some(&b'0') || b.text.first() == Some(&b'0') => {
            a.text.cmp(b.text)
        }
        Kind::Digit | Kind::InitialDigit | Kind::SuffixNo | Kind::RevisionNo => {
            a.number.cmp(&b.number)
        }
        Kind::Letter => a.text.first().cmp(&b.text.first()),
        Kind::Suffix => a.suffix.cmp(&b.suffix),
        _ => a.text.cmp(b.text),
    }
}

/// Compares two apk versions.
pub fn compare(a: &str, b: &str) -> Result<Ordering, VersionError> {
    VersionError::check_len(ECOSYSTEM, a)?;
    VersionError::check_len(ECOSYSTEM, b)?;
    let mut ta = Tokens::first(a.as_bytes());
    let mut tb = Tokens::first(b.as_bytes());
    // Every step consumes input or ends the walk, so the loop runs at most len + 1 times.
    while ta.tok.kind == tb.tok.kind && ta.tok.kind < Kind::End {
        let r = token_cmp(&ta.tok, &tb.tok);
        if r != Ordering::Equal {
            return Ok(r);
        }
        ta.next();
        tb.next();
    }
    let (ka, kb) = (ta.tok.kind, tb.tok.kind);
    if ka == kb {
        return Ok(Ordering::Equal);
    }
    // Equal so far: the longer version is greater unless it goes on with a pre-release suffix.
    if ka == Kind::Suffix && ta.tok.suffix < SUFFIX_NONE {
        return Ok(Ordering::Less);
    }
    if kb == Kind::Suffix && tb.tok.suffix < SUFFIX_NONE {
        return Ok(Ordering::Greater);
    }
    Ok(kb.cmp(&ka))
}

/// Whether apk accepts `v` as a well-formed version (`apk version -c`).
pub fn is_valid(v: &str) -> bool {
    if v.len() > super::MAX_VERSION_LEN {
        return false;
    }
    let mut t = Tokens::first(v.as_bytes());
    while t.tok.kind < Kind::End {
        t.next();
    }
    t.tok.kind == Kind::End
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
        assert_eq!(cmp("1.2_rc1", "1.2"), Ordering::Less);
        assert_eq!(cmp("1.2_p1", "1.2"), Ordering::Greater);
        assert_eq!(cmp("1.2-r1", "1.2"), Ordering::Greater);
        assert_eq!(cmp("1.2a", "1.2"), Ordering::Greater);
        assert_eq!(cmp("1.2a", "1.2.1"), Ordering::Less);
        assert_eq!(cmp("1.02", "1.1"), Ordering::Less);
        assert_eq!(cmp("1.0_alpha_pre2", "1.0_alpha"), Ordering::Less);
        // A commit hash is more version, like any token that is not a pre-release suffix.
        assert_eq!(cmp("1.0~abc1", "1.0"), Ordering::Greater);
        assert_eq!(cmp("1.0~abc1", "1.0~abc2"), Ordering::Less);
        assert_eq!(cmp("1.0~abc1-r1", "1.0~abc1"), Ordering::Greater);
        assert_eq!(cmp("1-r1", "1-r01"), Ordering::Equal);
        // apk reads numbers into a wrapping 64-bit integer: 2^64 reads as 0.
        assert_eq!(cmp("18446744073709551616", "0"), Ordering::Equal);
    }

    #[test]
    fn validity() {
        for v in ["1", "1.2.3b_rc1_p2~cafe-r3", "0.1", "1_git20240101"] {
            assert!(is_valid(v), "{v}");
        }
        for v in [
            "", "a", ".1", "1-r", "1.2.0A", "1_foo", "1a1", "1~", "1-r1-r2",
        ] {
            assert!(!is_valid(v), "{v}");
        }
    }

    #[test]
    fn overlong_is_an_error() {
        let long = "1".repeat(super::super::MAX_VERSION_LEN + 1);
        assert!(matches!(
            compare(&long, "1"),
            Err(VersionError::TooLong { .. })
        ));
    }

    proptest! {
        #[test]
        fn reflexive(a in "\\PC{0,40}") {
            // apk never refuses a comparison, so every string must equal itself.
            prop_assert!(compare(&a, &a).is_ok());
            laws::reflexive(compare, &a)?;
        }

        #[test]
        fn antisymmetric(a in "[0-9a-z._~-]{0,20}", b in "[0-9a-z._~-]{0,20}") {
            prop_assert!(compare(&a, &b).is_ok());
            laws::antisymmetric(compare, &a, &b)?;
        }

        #[test]
        fn antisymmetric_structured(
            a in "[0-9]{1,3}(\\.[0-9]{1,3}){0,3}[a-c]?(_(alpha|rc|p|git)[0-9]?){0,2}(~[0-9a-f]{1,3})?(-r[0-9])?",
            b in "[0-9]{1,3}(\\.[0-9]{1,3}){0,3}[a-c]?(_(alpha|rc|p|git)[0-9]?){0,2}(~[0-9a-f]{1,3})?(-r[0-9])?",
        ) {
            prop_assert!(is_valid(&a) && is_valid(&b));
            laws::valid_pair(compare, &a, &b)?;
        }

        #[test]
        fn never_panics(a in any::<String>(), b in "\\PC*") {
            let _ = compare(&a, &b);
            let _ = compare(&b, &a);
            let _ = is_valid(&a);
        }
    }
}
