//! Version comparison per ecosystem, exact to each ecosystem's reference implementation.
//!
//! A vulnerability match is only as good as its version comparison: `1:2.0` vs `2.0` (dpkg
//! epochs), `1.0~rc1` vs `1.0` (tilde sorts before everything), `1.0^git1` (rpm caret), `1.0.0rc1`
//! vs `1.0.0` (PEP 440 pre-releases), `1.0-SNAPSHOT` (Maven qualifiers)... A wrong answer is a false
//! positive or, worse, a missed vulnerability. Each module implements one ecosystem's algorithm and
//! is tested against the reference tool itself where one runs here (`dpkg --compare-versions`,
//! rpm's `labelCompare`) and against the ordered pairs in `kb/testdata/version-order/`.
//!
//! Comparison never panics and never allocates without bound: inputs come from scanned hosts and
//! advisory feeds, so a version string is untrusted text. Strings that the ecosystem's grammar
//! rejects give a [`VersionError`] naming the string.

use std::cmp::Ordering;

pub mod apk;
pub mod dpkg;
pub mod maven;
pub mod pep440;
pub mod rpm;
pub mod semver;

/// Longest version string accepted; longer input is refused rather than compared.
pub const MAX_VERSION_LEN: usize = 256;

/// The ecosystems whose version ordering we implement, named as OSV names them (prefix only:
/// `Debian:12` and `Ubuntu:22.04:LTS` both compare as [`Ecosystem::Debian`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Ecosystem {
    /// dpkg ordering: Debian, Ubuntu.
    Debian,
    /// rpm ordering: Red Hat, AlmaLinux, Rocky Linux.
    Rpm,
    /// apk ordering: Alpine.
    Alpine,
    /// PEP 440: PyPI.
    Pypi,
    /// Maven's ComparableVersion.
    Maven,
    /// Semantic Versioning 2.0 (npm, crates.io, Go).
    Semver,
}

impl Ecosystem {
    /// Maps an OSV ecosystem name (`Debian:12`, `Red Hat`, `AlmaLinux:9`, `PyPI`, `crates.io`, ...)
    /// to its ordering; `None` for ecosystems we do not order.
    pub fn from_osv(name: &str) -> Option<Self> {
        let base = name.split(':').next().unwrap_or(name);
        match base {
            "Debian" | "Ubuntu" => Some(Self::Debian),
            "Red Hat" | "AlmaLinux" | "Rocky Linux" | "openSUSE" | "SUSE" => Some(Self::Rpm),
            "Alpine" => Some(Self::Alpine),
            "PyPI" => Some(Self::Pypi),
            "Maven" => Some(Self::Maven),
            "npm" | "crates.io" | "Go" => Some(Self::Semver),
            _ => None,
        }
    }
}

/// A version string that the ecosystem's grammar rejects.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VersionError {
    #[error("{ecosystem} version {version:?} is invalid: {reason}")]
    Invalid {
        ecosystem: &'static str,
        version: String,
        reason: String,
    },
    #[error("{ecosystem} version of {len} bytes is longer than the {MAX_VERSION_LEN}-byte limit")]
    TooLong { ecosystem: &'static str, len: usize },
}

impl VersionError {
    pub(crate) fn invalid(
        ecosystem: &'static str,
        version: &str,
        reason: impl Into<String>,
    ) -> Self {
        let mut v: String = version.chars().take(64).collect();
        if v.len() < version.len() {
            v.push('…');
        }
        Self::Invalid {
            ecosystem,
            version: v,
            reason: reason.into(),
        }
    }

    pub(crate) fn check_len(ecosystem: &'static str, version: &str) -> Result<(), Self> {
        if version.len() > MAX_VERSION_LEN {
            Err(Self::TooLong {
                ecosystem,
                len: version.len(),
            })
        } else {
            Ok(())
        }
    }
}

/// Compares two versions of `ecosystem`.
pub fn compare(ecosystem: Ecosystem, a: &str, b: &str) -> Result<Ordering, VersionError> {
    match ecosystem {
        Ecosystem::Debian => dpkg::compare(a, b),
        Ecosystem::Rpm => rpm::compare(a, b),
        Ecosystem::Alpine => apk::compare(a, b),
        Ecosystem::Pypi => pep440::compare(a, b),
        Ecosystem::Maven => maven::compare(a, b),
        Ecosystem::Semver => semver::compare(a, b),
    }
}

/// The laws every comparator's property tests check, with inputs each module draws from its own
/// grammar.
#[cfg(test)]
pub(crate) mod laws {
    use super::VersionError;
    use proptest::prelude::*;
    use std::cmp::Ordering;

    pub(crate) type Compare = fn(&str, &str) -> Result<Ordering, VersionError>;

    /// A version the grammar accepts equals itself.
    pub(crate) fn reflexive(compare: Compare, a: &str) -> Result<(), TestCaseError> {
        if let Ok(o) = compare(a, a) {
            prop_assert_eq!(o, Ordering::Equal, "{:?} vs itself", a);
        }
        Ok(())
    }

    /// Both directions agree (`a < b` exactly when `b > a`), or both refuse the pair.
    pub(crate) fn antisymmetric(compare: Compare, a: &str, b: &str) -> Result<(), TestCaseError> {
        match (compare(a, b), compare(b, a)) {
            (Ok(x), Ok(y)) => prop_assert_eq!(x, y.reverse(), "{:?} vs {:?}", a, b),
            (Err(_), Err(_)) => {}
            (x, y) => prop_assert!(false, "one-sided error: {:?} {:?}", x, y),
        }
        Ok(())
    }

    /// For two versions the grammar must accept: both valid, reflexive and antisymmetric.
    pub(crate) fn valid_pair(compare: Compare, a: &str, b: &str) -> Result<(), TestCaseError> {
        prop_assert_eq!(compare(a, a), Ok(Ordering::Equal));
        let ab = compare(a, b).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let ba = compare(b, a).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(ab, ba.reverse(), "{:?} vs {:?}", a, b);
        Ok(())
    }

    /// After sorting three versions, the first is not above the last.
    pub(crate) fn transitive(compare: Compare, v: &mut [String]) -> Result<(), TestCaseError> {
        v.sort_by(|a, b| compare(a, b).unwrap_or(Ordering::Equal));
        if let (Some(first), Some(last)) = (v.first(), v.last()) {
            prop_assert_ne!(compare(first, last), Ok(Ordering::Greater));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn osv_names_map_to_orderings() {
        assert_eq!(Ecosystem::from_osv("Debian:12"), Some(Ecosystem::Debian));
        assert_eq!(
            Ecosystem::from_osv("Ubuntu:22.04:LTS"),
            Some(Ecosystem::Debian)
        );
        assert_eq!(Ecosystem::from_osv("AlmaLinux:9"), Some(Ecosystem::Rpm));
        assert_eq!(Ecosystem::from_osv("crates.io"), Some(Ecosystem::Semver));
        assert_eq!(Ecosystem::from_osv("Hex"), None);
    }
}
