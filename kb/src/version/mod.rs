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
