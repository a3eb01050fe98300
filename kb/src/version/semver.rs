//! SemVer ordering for npm, crates.io and Go, as OSV's reference client (osv-scalibr's `semantic`
//! package) applies it.
//!
//! Why lenient: OSV ranges for these ecosystems are written by hand and hold versions that strict
//! SemVer 2.0.0 rejects (`1.2`, `0`, `1.36.0rc1`, `v1.2.3` for Go, `1.1.3.4.5`). Refusing them would
//! drop advisories, so we read them exactly as osv-scalibr does, which is what OSV's own tooling
//! decides with:
//!
//! * an optional leading `v` is dropped;
//! * the version starts with dot-separated digit runs (its numeric components); missing ones
//!   count as 0 (`1.2` == `1.2.0`, `0` == `0.0.0`), empty ones are skipped (`1..2` == `1.2`);
//! * the first character that is neither a digit nor a dot starts the "build" string, so
//!   `1.36.0rc1` has pre-release `rc1` and `1.2.3-beta+x` has pre-release `beta`;
//! * components after the third are appended to that string as `.N` (osv-scalibr's rule: `1.2.3.4`
//!   has pre-release identifiers `["", "4"]` and so sorts *below* `1.2.3`);
//! * build metadata (`+...`) is ignored, one leading `-` is dropped, and the rest is compared as
//!   SemVer pre-release identifiers: numeric ones numerically and below alphanumeric ones,
//!   alphanumeric ones bytewise (so `r100 < r2` and `R2 < r100`), a longer set above its prefix.
//!
//! For every strict SemVer 2.0.0 version this is exactly SemVer precedence. Where we refuse what
//! osv-scalibr accepts: a version that does not start (after the `v`) with a digit, e.g. `""`,
//! `v`, `abc`, `.5` — those carry no version number, and guessing one would hide the bad data.
//! Numeric identifiers are ASCII digits only (Go's `big.Int` would also take a sign, `-1`).
//! Numbers of any length compare as digit strings, without overflow.

use super::VersionError;
use std::cmp::Ordering;

const ECOSYSTEM: &str = "semver";

/// A parsed version, borrowing from the input; building it allocates nothing.
#[derive(Debug, Clone, Copy)]
struct Semver<'a> {
    /// The text holding the numeric components (digits and dots), up to the build string.
    numeric: &'a str,
    /// From the first non-digit, non-dot character to the end.
    build: &'a str,
}

impl<'a> Semver<'a> {
    fn parse(input: &'a str) -> Result<Self, VersionError> {
        VersionError::check_len(ECOSYSTEM, input)?;
        let s = input.strip_prefix('v').unwrap_or(input);
        if !s.as_bytes().first().is_some_and(u8::is_ascii_digit) {
            return Err(VersionError::invalid(
                ECOSYSTEM,
                input,
                "must start with a number (after an optional 'v')",
            ));
        }
        let end = s
            .bytes()
            .position(|c| !(c.is_ascii_digit() || c == b'.'))
            .unwrap_or(s.len());
        let (numeric, build) = s.split_at(end);
        Ok(Self { numeric, build })
    }

    /// The first three numeric components, empty ones (from `..` or a trailing `.`) skipped.
    fn components(&self) -> impl Iterator<Item = &'a str> {
        self.numeric.split('.').filter(|c| !c.is_empty()).take(3)
    }

    /// Pre-release identifiers, or `None` for a release.
    fn pre_release(&self) -> Option<PreRelease<'a>> {
        let (text, extras) = match self.build.split_once('+') {
            // Extra components are appended after the build string, so a `+` swallows them.
            Some((before, _)) => (before, ""),
            None => (self.build, self.extra_components()),
        };
        let text = text.strip_prefix('-').unwrap_or(text);
        if text.is_empty() && extras.is_empty() {
            None
        } else {
            Some(PreRelease { text, extras })
        }
    }

    /// The text of the components after the third (may still hold empty ones).
    fn extra_components(&self) -> &'a str {
        let mut seen = 0;
        let mut rest = self.numeric;
        while seen < 3 {
            let trimmed = rest.trim_start_matches('.');
            if trimmed.is_empty() {
                return "";
            }
            let end = trimmed.find('.').unwrap_or(trimmed.len());
            rest = &trimmed[end..];
            seen += 1;
        }
        rest
    }
}

#[derive(Debug, Clone, Copy)]
struct PreRelease<'a> {
    text: &'a str,
    extras: &'a str,
}

impl<'a> PreRelease<'a> {
    fn identifiers(self) -> impl Iterator<Item = &'a str> {
        // `"".split('.')` yields one empty identifier: osv-scalibr's `".4"` for `1.2.3.4`.
        let extras = if self.extras.is_empty() {
            None
        } else {
            Some(self.extras.split('.').filter(|c| !c.is_empty()))
        };
        self.text.split('.').chain(extras.into_iter().flatten())
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

fn is_numeric(id: &str) -> bool {
    !id.is_empty() && id.bytes().all(|c| c.is_ascii_digit())
}

fn cmp_identifier(a: &str, b: &str) -> Ordering {
    match (is_numeric(a), is_numeric(b)) {
        (true, true) => cmp_digits(a, b),
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        (false, false) => a.as_bytes().cmp(b.as_bytes()),
    }
}

fn cmp_parsed(a: &Semver<'_>, b: &Semver<'_>) -> Ordering {
    let (mut ca, mut cb) = (a.components(), b.components());
    loop {
        match (ca.next(), cb.next()) {
            (None, None) => break,
            (x, y) => match cmp_digits(x.unwrap_or(""), y.unwrap_or("")) {
                Ordering::Equal => {}
                other => return other,
            },
        }
    }
    match (a.pre_release(), b.pre_release()) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(x), Some(y)) => {
            let (mut ia, mut ib) = (x.identifiers(), y.identifiers());
            loop {
                match (ia.next(), ib.next()) {
                    (None, None) => return Ordering::Equal,
                    (None, Some(_)) => return Ordering::Less,
                    (Some(_), None) => return Ordering::Greater,
                    (Some(p), Some(q)) => match cmp_identifier(p, q) {
                        Ordering::Equal => {}
                        other => return other,
                    },
                }
            }
        }
    }
}

/// Compares two SemVer versions (npm, crates.io, Go), with osv-scalibr's leniency (module docs).
pub fn compare(a: &str, b: &str) -> Result<Ordering, VersionError> {
    let pa = Semver::parse(a)?;
    let pb = Semver::parse(b)?;
    Ok(cmp_parsed(&pa, &pb))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::version::laws;
    use proptest::prelude::*;

    /// Strict SemVer 2.0.0: no leading zeros in numbers, non-empty identifiers.
    const STRICT: &str = "(0|[1-9][0-9]{0,2})\\.(0|[1-9][0-9]{0,2})\\.(0|[1-9][0-9]{0,2})\
        (-(0|[1-9][0-9]{0,2}|[0-9a-zA-Z-]{0,3}[a-zA-Z-][0-9a-zA-Z-]{0,3})\
        (\\.(0|[1-9][0-9]{0,2}|[0-9a-zA-Z-]{0,3}[a-zA-Z-][0-9a-zA-Z-]{0,3})){0,3})?\
        (\\+[0-9a-zA-Z-]{1,4}(\\.[0-9a-zA-Z-]{1,4}){0,2})?";

    fn cmp(a: &str, b: &str) -> Ordering {
        compare(a, b).unwrap_or_else(|e| panic!("{a} vs {b}: {e}"))
    }

    #[test]
    fn spec_precedence_chain() {
        let chain = [
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
            "1.0.1",
            "1.1.0",
            "2.0.0",
        ];
        for w in chain.windows(2) {
            assert_eq!(cmp(w[0], w[1]), Ordering::Less, "{} < {}", w[0], w[1]);
        }
    }

    #[test]
    fn lenient_forms() {
        assert_eq!(cmp("1.2", "1.2.0"), Ordering::Equal);
        assert_eq!(cmp("0", "0.0.0"), Ordering::Equal);
        assert_eq!(cmp("v1.2.3", "1.2.3"), Ordering::Equal);
        assert_eq!(cmp("1.2.3+a", "1.2.3+b"), Ordering::Equal);
        assert_eq!(cmp("1.36.0rc1", "1.36.0"), Ordering::Less);
        // osv-scalibr: a fourth component becomes a pre-release identifier.
        assert_eq!(cmp("1.2.3.4", "1.2.3"), Ordering::Less);
        assert_eq!(cmp("1.2.3.4", "1.2.3.5"), Ordering::Less);
        assert_eq!(cmp("1.2.3.4+x", "1.2.3"), Ordering::Equal);
        assert_eq!(cmp("1.2.3.4-beta", "1.2.3-beta.4"), Ordering::Equal);
        let big = "99999999999999999999999999999999999999999999";
        assert_eq!(cmp(big, "1"), Ordering::Greater);
        assert_eq!(cmp(&format!("1.0.0-{big}"), "1.0.0-2"), Ordering::Greater);
    }

    #[test]
    fn rejects_versions_without_a_number() {
        for bad in ["", "v", "abc", ".5", "-1", " 1.0.0", "vv1"] {
            assert!(compare(bad, "1.0.0").is_err(), "{bad:?} accepted");
            assert!(compare("1.0.0", bad).is_err(), "{bad:?} accepted");
        }
        assert!(compare(&"1".repeat(300), "1").is_err());
    }

    proptest! {
        #[test]
        fn reflexive_and_antisymmetric(a in "v?[0-9]{1,3}(\\.[0-9]{1,3}){0,4}(-[0-9a-zA-Z.-]{0,8})?(\\+[0-9a-z.]{0,5})?",
                                       b in "v?[0-9]{1,3}(\\.[0-9]{1,3}){0,4}(-[0-9a-zA-Z.-]{0,8})?(\\+[0-9a-z.]{0,5})?") {
            laws::valid_pair(compare, &a, &b)?;
        }

        #[test]
        fn transitive(mut v in proptest::collection::vec("[0-9]{1,2}(\\.[0-9]{1,2}){0,4}(-[0-9a-c.]{0,4})?", 3)) {
            laws::transitive(compare, &mut v)?;
        }

        /// For strict SemVer 2.0.0 versions the order is exactly SemVer precedence, as the
        /// `semver` crate (dtolnay's) computes it.
        #[test]
        fn strict_versions_match_the_semver_crate(
            a in STRICT, b in STRICT, same_core in any::<bool>(),
        ) {
            // Half the pairs share major.minor.patch so pre-release rules get exercised.
            let b = if same_core {
                let core_a = a.split(['-', '+']).next().unwrap_or("");
                let rest_b = b.find(['-', '+']).map_or("", |i| &b[i..]);
                format!("{core_a}{rest_b}")
            } else {
                b
            };
            let va = ::semver::Version::parse(&a).map_err(|e| TestCaseError::fail(format!("{a}: {e}")))?;
            let vb = ::semver::Version::parse(&b).map_err(|e| TestCaseError::fail(format!("{b}: {e}")))?;
            prop_assert_eq!(compare(&a, &b), Ok(va.cmp_precedence(&vb)), "{} vs {}", a, b);
        }

        #[test]
        fn never_panics(a in "\\PC{0,40}", b in ".{0,40}") {
            let _ = compare(&a, &b);
            if let Ok(o) = compare(&a, &b) {
                prop_assert_eq!(compare(&b, &a), Ok(o.reverse()));
            }
        }
    }
}
