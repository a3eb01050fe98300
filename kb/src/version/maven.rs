//! Maven version ordering: a port of `org.apache.maven.artifact.versioning.ComparableVersion` as
//! shipped in maven-artifact 3.8.6.
//!
//! Why a faithful port of the implementation rather than the POM reference's prose: the two
//! disagree in corners, and a version range is resolved by the implementation. Why 3.8.6 and not
//! 3.9: 3.8.6 is the release that sorted OSV's Maven versions into our fixture
//! (`maven-versions-generated.txt`, 14,700 pairs, all agreeing), and 3.9 changed the order of
//! some real published versions (MNG-7644 reads a trailing `.X` as `-X`, so `1.5.9.RC1` moved
//! above `1.5.9-RC0`; MNG-7559 added "combination" items, so `3.2.0rc2` moved above
//! `3.2.0-rc.1`). OSV's own matchers (osv.dev, osv-scalibr) follow the 3.8.6 order on those.
//! [`compare_3_8_7`] gives the 3.8.7 order (3.8.6 plus MNG-7644; 18 of the fixture pairs flip),
//! and is what `tests/oracle_maven.rs` checks against the real 3.8.7 jar Debian ships: the two
//! differ only in that rule, so the oracle exercises all of the port.
//!
//! The structure follows Java's: items are numbers, qualifiers, and nested lists (a `-` or a
//! digit/letter transition opens a sub-list); trailing null items (`0`, ``/`ga`/`final`/
//! `release`, empty lists) are removed by `normalize`, so `1` == `1.0` == `1.0.0` == `1-0` ==
//! `1.ga`. Qualifiers: alpha (`a1`) < beta (`b1`) < milestone (`m1`) < rc = cr < snapshot < "" <
//! sp < anything else (lexically).
//!
//! Java quirks kept on purpose: numbers are typed by their digit count after stripping leading
//! zeros (int ≤ 9, long ≤ 18, BigInteger beyond) and a wider type always compares greater; an
//! all-zero string is not stripped, so `0000000000` is a "long" 0 (`1.0000000000.1 > 1.5`).
//! Numbers of any length are compared as digit strings, never overflowing.
//!
//! Where we refuse what Maven accepts: the empty string, and non-ASCII text (Java's
//! `Character.isDigit` and locale lowering are Unicode-wide; no real Maven version needs that, and
//! an approximation would silently misorder).

use super::VersionError;
use std::borrow::Cow;
use std::cmp::Ordering;

const ECOSYSTEM: &str = "maven";

/// Java's IntItem / LongItem / BigIntegerItem, as a digit string.
#[derive(Debug, Clone, Copy)]
struct Num<'a> {
    /// 0 = int, 1 = long, 2 = BigInteger: Java orders a wider type above a narrower one.
    kind: u8,
    /// Digits with every leading zero removed ("" is zero).
    digits: &'a str,
}

impl<'a> Num<'a> {
    fn new(buf: &'a str) -> Self {
        let digits = buf.trim_start_matches('0');
        // Java's stripLeadingZeroes keeps an all-zero string whole.
        let java_len = if digits.is_empty() {
            buf.len()
        } else {
            digits.len()
        };
        let kind = match java_len {
            0..=9 => 0,
            10..=18 => 1,
            _ => 2,
        };
        Self { kind, digits }
    }

    const ZERO: Num<'static> = Num {
        kind: 0,
        digits: "",
    };

    fn is_null(&self) -> bool {
        self.digits.is_empty()
    }

    fn cmp(&self, other: &Self) -> Ordering {
        self.kind.cmp(&other.kind).then_with(|| {
            self.digits
                .len()
                .cmp(&other.digits.len())
                .then_with(|| cmp_bytes(self.digits, other.digits))
        })
    }
}

/// Bytewise order by a plain loop: the libc `memcmp` behind `str::cmp` costs more than these few
/// bytes do.
fn cmp_bytes(a: &str, b: &str) -> Ordering {
    a.bytes()
        .zip(b.bytes())
        .map(|(x, y)| x.cmp(&y))
        .find(|o| o.is_ne())
        .unwrap_or_else(|| a.len().cmp(&b.len()))
}

/// Java's StringItem: a qualifier, ranked as `comparableQualifier` ranks it.
#[derive(Debug, Clone, Copy)]
struct Qualifier<'a> {
    /// alpha 0, beta 1, milestone 2, rc 3, snapshot 4, "" (ga, final, release) 5, sp 6,
    /// anything else 7 (then ordered by its text).
    rank: u8,
    text: &'a str,
}

const RELEASE_RANK: u8 = 5;

impl<'a> Qualifier<'a> {
    fn new(value: &'a str, followed_by_digit: bool) -> Self {
        let value = match (followed_by_digit, value) {
            (true, "a") => "alpha",
            (true, "b") => "beta",
            (true, "m") => "milestone",
            (_, "cr") => "rc",
            (_, "ga" | "final" | "release") => "",
            (_, v) => v,
        };
        let rank = match value {
            "alpha" => 0,
            "beta" => 1,
            "milestone" => 2,
            "rc" => 3,
            "snapshot" => 4,
            "" => RELEASE_RANK,
            "sp" => 6,
            _ => 7,
        };
        Self { rank, text: value }
    }

    fn is_null(&self) -> bool {
        self.text.is_empty()
    }

    fn cmp(&self, other: &Self) -> Ordering {
        self.rank.cmp(&other.rank).then_with(|| {
            if self.rank == 7 {
                cmp_bytes(self.text, other.text)
            } else {
                Ordering::Equal
            }
        })
    }

    /// Compared with a missing item: `1-rc < 1`, `1-ga == 1`, `1-sp > 1`.
    fn cmp_null(&self) -> Ordering {
        self.rank.cmp(&RELEASE_RANK)
    }
}

/// One token of a parsed version. Java builds a tree of `ListItem`s, but a sub-list is always
/// the last item of its parent (nothing is added to a parent after a sub-list opens), so the tree
/// is a chain: the version is stored flat, each `Open` starting the sub-list that ends its
/// parent. One vector per version, no allocation per list.
#[derive(Debug, Clone, Copy)]
enum Token<'a> {
    Num(Num<'a>),
    Str(Qualifier<'a>),
    Open,
}

impl Token<'_> {
    fn is_null_item(&self) -> bool {
        match self {
            Token::Num(n) => n.is_null(),
            Token::Str(q) => q.is_null(),
            Token::Open => false,
        }
    }
}

/// An item of a list, as Java's `Item`; `List` is a sub-list's tokens up to the version's end.
#[derive(Clone, Copy)]
enum Item<'s, 'a> {
    Num(&'s Num<'a>),
    Str(&'s Qualifier<'a>),
    List(&'s [Token<'a>]),
}

/// The `i`th item of the list made of `tokens` (its own items, then its sub-list if any).
fn item<'s, 'a>(tokens: &'s [Token<'a>], i: usize) -> Option<Item<'s, 'a>> {
    match tokens.get(i)? {
        Token::Num(n) => Some(Item::Num(n)),
        Token::Str(q) => Some(Item::Str(q)),
        Token::Open => Some(Item::List(tokens.get(i + 1..).unwrap_or(&[]))),
    }
}

/// Java's `ListItem.compareTo`; `None` is Java's `null` (the shorter list's padding).
fn cmp_list(l: &[Token<'_>], r: Option<&[Token<'_>]>) -> Ordering {
    let mut i = 0;
    loop {
        let a = item(l, i);
        let b = r.and_then(|r| item(r, i));
        let o = match (a, b) {
            (None, None) => return Ordering::Equal,
            (Some(x), y) => cmp_item(x, y),
            (None, Some(y)) => cmp_item(y, None).reverse(),
        };
        if o != Ordering::Equal {
            return o;
        }
        // A sub-list is the last item: nothing follows it on either side.
        if matches!(a, Some(Item::List(_))) || matches!(b, Some(Item::List(_))) {
            return Ordering::Equal;
        }
        i += 1;
    }
}

/// `ComparableVersion`'s `Item.compareTo`; `None` is Java's `null`.
fn cmp_item(a: Item<'_, '_>, b: Option<Item<'_, '_>>) -> Ordering {
    use Ordering::{Equal, Greater, Less};
    match a {
        Item::Num(x) => match b {
            None => {
                if x.is_null() {
                    Equal
                } else {
                    Greater
                }
            }
            Some(Item::Num(y)) => x.cmp(y),
            Some(_) => Greater,
        },
        Item::Str(q) => match b {
            None => q.cmp_null(),
            Some(Item::Num(_)) | Some(Item::List(_)) => Less,
            Some(Item::Str(r)) => q.cmp(r),
        },
        Item::List(l) => match b {
            // Every item against null (MNG-6964), which is what padding `l` with nulls gives.
            None => cmp_list(l, None),
            Some(Item::Num(_)) => Less,
            Some(Item::Str(_)) => Greater,
            Some(Item::List(r)) => cmp_list(l, Some(r)),
        },
    }
}

/// Java's `parseItem`.
fn parse_item(digit: bool, buf: &str) -> Token<'_> {
    if digit {
        Token::Num(Num::new(buf))
    } else {
        Token::Str(Qualifier::new(buf, false))
    }
}

/// Pushes `Open`, after Java's `normalize` of the list it ends: null items (`0`, ``) just
/// before a sub-list are removed (Java looks past a non-empty sub-list).
fn open(tokens: &mut Vec<Token<'_>>) {
    while tokens.last().is_some_and(Token::is_null_item) {
        tokens.pop();
    }
    tokens.push(Token::Open);
}

/// Java's `parseVersion` over an already lower-cased ASCII string, into flat tokens, with
/// `normalize` applied to every list: trailing null items go, and an empty sub-list goes with
/// its `Open` (which may leave its parent with trailing nulls, removed in turn).
///
/// `MNG_7644`: Maven 3.8.7's change (kept in 3.9) that reads a qualifier after a dot as if after
/// a hyphen when it is followed by a digit or ends the version (`1.0.0.X1` is `1.0.0-X1`).
fn parse<'a, const MNG_7644: bool>(v: &'a str) -> Vec<Token<'a>> {
    let b = v.as_bytes();
    let mut tokens: Vec<Token<'a>> = Vec::with_capacity(b.len() / 2 + 2);
    // Whether the innermost list (the tokens after the last `Open`) is empty.
    let list_empty = |t: &[Token<'_>]| matches!(t.last(), None | Some(Token::Open));
    let mut is_digit = false;
    let mut start = 0;
    for (i, &c) in b.iter().enumerate() {
        if c == b'.' || c == b'-' {
            if i == start {
                tokens.push(Token::Num(Num::ZERO));
            } else {
                tokens.push(parse_item(is_digit, &v[start..i]));
            }
            start = i + 1;
            if c == b'-' {
                // A hyphen opens a sub-list.
                open(&mut tokens);
            }
        } else if c.is_ascii_digit() {
            if !is_digit && i > start {
                // letter -> digit transition: `a1` is `alpha-1`, in a sub-list.
                if MNG_7644 && !list_empty(&tokens) {
                    open(&mut tokens);
                }
                tokens.push(Token::Str(Qualifier::new(&v[start..i], true)));
                start = i;
                open(&mut tokens);
            }
            is_digit = true;
        } else {
            if is_digit && i > start {
                tokens.push(parse_item(true, &v[start..i]));
                start = i;
                open(&mut tokens);
            }
            is_digit = false;
        }
    }
    if b.len() > start {
        if MNG_7644 && !is_digit && !list_empty(&tokens) {
            open(&mut tokens);
        }
        tokens.push(parse_item(is_digit, &v[start..]));
    }
    loop {
        while tokens.last().is_some_and(Token::is_null_item) {
            tokens.pop();
        }
        if matches!(tokens.last(), Some(Token::Open)) {
            tokens.pop();
        } else {
            break;
        }
    }
    tokens
}

fn lowered(version: &str) -> Result<Cow<'_, str>, VersionError> {
    VersionError::check_len(ECOSYSTEM, version)?;
    if version.is_empty() {
        return Err(VersionError::invalid(ECOSYSTEM, version, "empty"));
    }
    if !version.is_ascii() {
        return Err(VersionError::invalid(
            ECOSYSTEM,
            version,
            "non-ASCII characters",
        ));
    }
    if version.bytes().any(|c| c.is_ascii_uppercase()) {
        Ok(Cow::Owned(version.to_ascii_lowercase()))
    } else {
        Ok(Cow::Borrowed(version))
    }
}

/// Compares two Maven versions exactly as maven-artifact 3.8.6's `ComparableVersion.compareTo`.
/// This is the order OSV's Maven ranges were computed with (module docs).
pub fn compare(a: &str, b: &str) -> Result<Ordering, VersionError> {
    compare_impl::<false>(a, b)
}

/// Compares two Maven versions as maven-artifact 3.8.7 does: 3.8.6 plus MNG-7644, which reads a
/// qualifier after a dot like one after a hyphen when a digit follows it or it ends the version
/// (`1.5.9.RC1` == `1.5.9-RC1`, so `1.5.9.RC1 > 1.5.9-RC0`, where 3.8.6 says `<`). Exposed so the
/// rest of the port can be checked against the 3.8.7 jar Debian ships (`tests/oracle_maven.rs`),
/// and for callers that must agree with a current Maven build rather than with OSV.
pub fn compare_3_8_7(a: &str, b: &str) -> Result<Ordering, VersionError> {
    compare_impl::<true>(a, b)
}

fn compare_impl<const MNG_7644: bool>(a: &str, b: &str) -> Result<Ordering, VersionError> {
    let la = lowered(a)?;
    let lb = lowered(b)?;
    let ta = parse::<MNG_7644>(&la);
    let tb = parse::<MNG_7644>(&lb);
    Ok(cmp_list(&ta, Some(&tb)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::version::laws;
    use proptest::prelude::*;

    fn cmp(a: &str, b: &str) -> Ordering {
        compare(a, b).unwrap_or_else(|e| panic!("{a} vs {b}: {e}"))
    }

    /// From Maven's TestComparableVersion (`testVersionsQualifier` / `testVersionsNumber`): each
    /// sorted list is strictly increasing.
    #[test]
    fn maven_ordered_lists() {
        let qualifiers = [
            "1-alpha2snapshot",
            "1-alpha2",
            "1-alpha-123",
            "1-beta-2",
            "1-beta123",
            "1-m2",
            "1-m11",
            "1-rc",
            "1-cr2",
            "1-rc123",
            "1-SNAPSHOT",
            "1",
            "1-sp",
            "1-sp2",
            "1-sp123",
            "1-abc",
            "1-def",
            "1-pom-1",
            "1-1-snapshot",
            "1-1",
            "1-2",
            "1-123",
        ];
        let numbers = [
            "2.0", "2-1", "2.0.a", "2.0.0.a", "2.0.2", "2.0.123", "2.1.0", "2.1-a", "2.1b",
            "2.1-c", "2.1-1", "2.1.0.1", "2.2", "2.123", "11.a2", "11.a11", "11.b2", "11.b11",
            "11.m2", "11.m11", "11", "11.a", "11b", "11c", "11m",
        ];
        for list in [&qualifiers[..], &numbers[..]] {
            for (i, x) in list.iter().enumerate() {
                for (j, y) in list.iter().enumerate() {
                    assert_eq!(cmp(x, y), i.cmp(&j), "{x} vs {y}");
                }
            }
        }
    }

    #[test]
    fn java_number_quirks_and_big_numbers() {
        // An all-zero run of 10+ digits is a Java `LongItem`, above every `IntItem`.
        assert_eq!(cmp("1.0000000000.1", "1.5"), Ordering::Greater);
        assert_eq!(cmp("1.000000000.1", "1.5"), Ordering::Less);
        assert_eq!(cmp("1.0000000000", "1"), Ordering::Equal);
        let big = "123456789012345678901234567890123456789";
        assert_eq!(cmp(big, &format!("{big}0")), Ordering::Less);
        assert_eq!(cmp(&format!("{big}.1"), big), Ordering::Greater);
    }

    /// Maven's order is not transitive, so neither is ours (no transitivity property test here):
    /// 3.8.6 keeps a trailing `.sp` in the main list but `-rc` in a sub-list, and a qualifier
    /// sorts below a sub-list: 1 < 1.sp < 1-rc < 1. MNG-7644 (3.8.7) reads that `.sp` as `-sp`,
    /// but `1.sp-0` (normalised to `[1, sp]`) still closes the same cycle; the 3.8.7 jar answers
    /// exactly so.
    #[test]
    fn maven_3_8_6_has_cycles() {
        assert_eq!(cmp("1", "1.sp"), Ordering::Less);
        assert_eq!(cmp("1.sp", "1-rc"), Ordering::Less);
        assert_eq!(cmp("1-rc", "1"), Ordering::Less);
        let new = |a, b| compare_3_8_7(a, b).unwrap();
        assert_eq!(new("1", "1.sp"), Ordering::Less);
        assert_eq!(new("1.sp", "1-rc"), Ordering::Greater);
        assert_eq!(new("1-rc", "1"), Ordering::Less);
        assert_eq!(new("1", "1.sp-0"), Ordering::Less);
        assert_eq!(new("1.sp-0", "1-rc"), Ordering::Less);
        assert_eq!(new("1.5.9.RC1", "1.5.9-RC0"), Ordering::Greater);
        assert_eq!(cmp("1.5.9.RC1", "1.5.9-RC0"), Ordering::Less);
    }

    #[test]
    fn refuses_empty_long_and_non_ascii() {
        assert!(compare("", "1").is_err());
        assert!(compare("1", "1.é").is_err());
        assert!(compare(&"1.".repeat(200), "1").is_err());
    }

    proptest! {
        #[test]
        fn reflexive_and_antisymmetric(a in "[0-9a-zA-Z.-]{1,20}", b in "[0-9a-zA-Z.-]{1,20}") {
            laws::valid_pair(compare, &a, &b)?;
        }

        #[test]
        fn never_panics(a in "\\PC{0,40}", b in ".{0,40}") {
            if let Ok(o) = compare(&a, &b) {
                prop_assert_eq!(compare(&b, &a), Ok(o.reverse()));
            }
        }

        #[test]
        fn deep_nesting_is_fine(n in 1usize..120) {
            let deep = "a1".repeat(n);
            prop_assert_eq!(compare(&deep, &deep), Ok(Ordering::Equal));
        }
    }
}
