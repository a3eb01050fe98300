//! The knowledge base's stored form of an advisory: what matching and findings need, and nothing
//! else.
//!
//! Why a second model next to [`crate::osv`]: an OSV record carries free text, references and
//! open-ended JSON (`database_specific`, `ecosystem_specific`) that no finding uses and that
//! postcard cannot encode. The store keeps two kinds of record per advisory:
//!
//! * [`KbAdvisory`]: the advisory-level facts a finding shows (id, aliases, a one-line title, a
//!   severity already decided at import) and the packages it names;
//! * [`KbPackage`]: per (ecosystem, package), the ranges and listed versions — the only part read
//!   when a host's package is looked up, so matching a package never decodes anything about
//!   other packages.
//!
//! The evaluation is [`crate::osv`]'s own (`entry_affects`, `entry_fixed`, `fold_entries`), so a
//! stored advisory decides exactly as the parsed record does; a property test below checks that.

use crate::osv::{self, Advisory, Event, Match, RangeType, SeverityType};
use crate::version::{Ecosystem, VersionError};
use picket_model::Severity;
use serde::{Deserialize, Serialize};

/// Longest title kept (bytes, cut at a character boundary).
pub const MAX_TITLE_LEN: usize = 200;

/// An advisory as the knowledge base keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KbAdvisory {
    pub id: String,
    /// OSV `modified`, compared to decide whether a re-imported record changed.
    pub modified: String,
    /// Withdrawn records are kept (so a re-import reports them unchanged) but never indexed.
    pub withdrawn: bool,
    /// Aliases and upstream ids (CVE, GHSA...), without repeats, the record's own id excluded.
    pub aliases: Vec<String>,
    /// The summary, or the first line of the details, cut to [`MAX_TITLE_LEN`].
    pub title: String,
    pub severity: Severity,
    /// Where the severity came from: `Ubuntu priority high`, `CVSS_V3 9.8`, `Debian urgency
    /// low`, `database severity MODERATE`, or `unknown` (then the severity is `medium`).
    pub severity_source: String,
    /// The (ecosystem, key name) pairs this advisory has a [`KbPackage`] for.
    pub packages: Vec<(String, String)>,
}

/// What one advisory says about one package of one ecosystem (release included).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KbPackage {
    pub ecosystem: String,
    /// The package name as the record gives it.
    pub name: String,
    /// One entry per OSV `affected` object for this package (usually one; one per branch in
    /// some feeds). Kept apart because the schema evaluates them apart.
    pub entries: Vec<KbEntry>,
}

/// One `affected` object, reduced to what can be evaluated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KbEntry {
    pub versions: Vec<String>,
    pub ranges: Vec<KbRange>,
}

/// How a stored range is ordered. `GIT` and unknown range types are dropped at import: they
/// never decide a package version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KbRangeKind {
    /// The package ecosystem's own ordering.
    Ecosystem,
    /// SemVer, whatever the ecosystem.
    Semver,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KbRange {
    pub kind: KbRangeKind,
    pub events: Vec<Event>,
}

/// The name under which a package is indexed: PyPI names as PEP 503 normalises them (so `Django`
/// finds `django`), every other ecosystem's names as they are.
pub fn index_name(ecosystem: &str, name: &str) -> String {
    if osv::ecosystem_release(ecosystem).0 == "PyPI" {
        osv::pypi_normalize(name)
    } else {
        name.to_owned()
    }
}

impl KbPackage {
    /// Whether `version` of this package is affected; as [`Advisory::matches`].
    pub fn matches(&self, version: &str) -> Result<Option<Match>, VersionError> {
        let ordering = Ecosystem::from_osv(&self.ecosystem);
        osv::fold_entries(
            ordering,
            self.entries.iter().map(|entry| {
                let ranges = || entry.orderable(ordering);
                Ok(
                    osv::entry_affects(ordering, &entry.versions, ranges(), version)?
                        .then(|| osv::entry_fixed(ranges(), version)),
                )
            }),
        )
    }
}

impl KbEntry {
    /// Drops listed versions that the ranges already hold. Distribution feeds list every
    /// affected version of a range (Ubuntu's records, dozens each); those add nothing to the
    /// answer: a version equal to a listed one that its range holds is held by the same range.
    /// Versions the ranges do not hold, or that cannot be evaluated, are kept.
    fn drop_versions_in_ranges(&mut self, ordering: Option<Ecosystem>) {
        let ranges: Vec<(Ecosystem, Vec<Event>)> = self
            .orderable(ordering)
            .map(|(eco, events)| (eco, events.to_vec()))
            .collect();
        self.versions.retain(|v| {
            osv::entry_affects(
                ordering,
                &[],
                ranges.iter().map(|(e, ev)| (*e, ev.as_slice())),
                v,
            ) != Ok(true)
        });
    }

    fn orderable(&self, package: Option<Ecosystem>) -> impl Iterator<Item = (Ecosystem, &[Event])> {
        self.ranges.iter().filter_map(move |r| match r.kind {
            KbRangeKind::Ecosystem => package.map(|eco| (eco, r.events.as_slice())),
            KbRangeKind::Semver => Some((Ecosystem::Semver, r.events.as_slice())),
        })
    }
}

/// Characters that cannot appear in a stored ecosystem or package name: the index key joins them
/// with NUL.
fn valid_key_part(s: &str) -> bool {
    !s.is_empty() && s.len() <= 256 && !s.contains('\0')
}

/// Why a parsed record cannot be stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    #[error("advisory {id}: affected package name {name:?} in {ecosystem:?} is empty, too long or contains NUL")]
    BadPackage {
        id: String,
        ecosystem: String,
        name: String,
    },
}

/// The stored form of a parsed record: the advisory and one [`KbPackage`] per package it names.
/// Entries without a package (commit-only records) are dropped.
pub fn from_osv(adv: &Advisory) -> Result<(KbAdvisory, Vec<KbPackage>), RecordError> {
    let mut packages: Vec<KbPackage> = Vec::new();
    for affected in &adv.affected {
        let Some(pkg) = &affected.package else {
            continue;
        };
        if !valid_key_part(&pkg.ecosystem) || !valid_key_part(&pkg.name) {
            return Err(RecordError::BadPackage {
                id: adv.id.clone(),
                ecosystem: pkg.ecosystem.clone(),
                name: pkg.name.clone(),
            });
        }
        let mut entry = KbEntry {
            versions: affected.versions.clone(),
            ranges: affected
                .ranges
                .iter()
                .filter_map(|r| {
                    let kind = match r.kind {
                        RangeType::Ecosystem => KbRangeKind::Ecosystem,
                        RangeType::Semver => KbRangeKind::Semver,
                        _ => return None,
                    };
                    Some(KbRange {
                        kind,
                        events: r.events.clone(),
                    })
                })
                .collect(),
        };
        entry.drop_versions_in_ranges(Ecosystem::from_osv(&pkg.ecosystem));
        let key = index_name(&pkg.ecosystem, &pkg.name);
        match packages
            .iter_mut()
            .find(|p| p.ecosystem == pkg.ecosystem && index_name(&p.ecosystem, &p.name) == key)
        {
            Some(p) => p.entries.push(entry),
            None => packages.push(KbPackage {
                ecosystem: pkg.ecosystem.clone(),
                name: pkg.name.clone(),
                entries: vec![entry],
            }),
        }
    }

    let mut aliases: Vec<String> = Vec::new();
    for a in adv.aliases.iter().chain(&adv.upstream) {
        if a != &adv.id && !aliases.contains(a) {
            aliases.push(a.clone());
        }
    }
    let (severity, severity_source) = severity_of(adv);
    let kb = KbAdvisory {
        id: adv.id.clone(),
        modified: adv.modified.clone(),
        withdrawn: adv.is_withdrawn(),
        aliases,
        title: title_of(adv),
        severity,
        severity_source,
        packages: packages
            .iter()
            .map(|p| (p.ecosystem.clone(), index_name(&p.ecosystem, &p.name)))
            .collect(),
    };
    Ok((kb, packages))
}

fn title_of(adv: &Advisory) -> String {
    let text = adv
        .summary
        .as_deref()
        .filter(|s| !s.trim().is_empty())
        .or(adv.details.as_deref())
        .unwrap_or("");
    let line = text.trim().lines().next().unwrap_or("").trim();
    let mut out = String::new();
    for c in line.chars() {
        if out.len() + c.len_utf8() > MAX_TITLE_LEN {
            out.push('…');
            break;
        }
        out.push(if c.is_control() { ' ' } else { c });
    }
    out
}

/// The severity of an advisory, decided once at import.
///
/// A distribution's own rating comes first (Ubuntu's priority, Debian's urgency, the
/// `database_specific.severity` of GitHub and others): it weighs the flaw as that distribution
/// builds the package, which is what a host running it is exposed to. Otherwise the highest-
/// version CVSS vector's base score. With neither, `medium`: an advisory about an installed
/// package is never `info`, and the source says `unknown` so a reader can tell.
pub fn severity_of(adv: &Advisory) -> (Severity, String) {
    let all_severity = adv
        .severity
        .iter()
        .chain(adv.affected.iter().flat_map(|a| &a.severity));
    // Distribution ratings.
    let mut rated: Option<(Severity, String)> = None;
    let mut consider = |sev: Option<Severity>, source: String| {
        if let Some(sev) = sev {
            if rated.as_ref().is_none_or(|(old, _)| sev > *old) {
                rated = Some((sev, source));
            }
        }
    };
    for s in all_severity.clone() {
        if s.kind == SeverityType::Ubuntu {
            consider(rating(&s.score), format!("Ubuntu priority {}", s.score));
        }
    }
    let db_severity = std::iter::once(&adv.database_specific)
        .chain(adv.affected.iter().map(|a| &a.database_specific))
        .filter_map(|v| v.as_ref()?.get("severity")?.as_str());
    for s in db_severity {
        consider(rating(s), format!("database severity {s}"));
    }
    let urgency = adv
        .affected
        .iter()
        .filter_map(|a| a.ecosystem_specific.as_ref()?.get("urgency")?.as_str());
    for u in urgency {
        consider(rating(u), format!("Debian urgency {u}"));
    }
    if let Some(r) = rated {
        return r;
    }
    // CVSS: the newest version wins; within one version, the highest score.
    let mut best: Option<(u8, f64, String)> = None;
    for s in all_severity {
        let version = match s.kind {
            SeverityType::CvssV4 => 4,
            SeverityType::CvssV3 => 3,
            SeverityType::CvssV2 => 2,
            _ => continue,
        };
        let Ok(vector) = s.score.parse::<cvss::Cvss>() else {
            continue;
        };
        let score = vector.score();
        if best
            .as_ref()
            .is_none_or(|(v, sc, _)| (version, score) > (*v, *sc))
        {
            best = Some((version, score, s.score.clone()));
        }
    }
    match best {
        Some((v, score, _)) => (cvss_level(score), format!("CVSS_V{v} {score:.1}")),
        None => (Severity::Medium, "unknown".to_owned()),
    }
}

/// A rating word as distributions write it. Debian marks an urgency its team has not reviewed
/// with `*` or `**`; the word still counts. Words that are not ratings (`not yet assigned`,
/// `end-of-life`) give none.
fn rating(word: &str) -> Option<Severity> {
    let w = word.trim().trim_end_matches('*').to_ascii_lowercase();
    Some(match w.as_str() {
        "critical" => Severity::Critical,
        "high" | "important" => Severity::High,
        "medium" | "moderate" => Severity::Medium,
        "low" | "negligible" | "unimportant" => Severity::Low,
        _ => return None,
    })
}

/// CVSS qualitative rating scale (v3.1 and v4.0 section "Qualitative Severity Rating Scale").
fn cvss_level(score: f64) -> Severity {
    if score >= 9.0 {
        Severity::Critical
    } else if score >= 7.0 {
        Severity::High
    } else if score >= 4.0 {
        Severity::Medium
    } else if score > 0.0 {
        Severity::Low
    } else {
        Severity::Info
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::osv::parse_advisory;

    fn fixture(name: &str) -> Advisory {
        let path = format!("{}/testdata/osv/{name}", env!("CARGO_MANIFEST_DIR"));
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        parse_advisory(&bytes).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn stored_form_decides_like_the_record_for_every_fixture() {
        let dir = format!("{}/testdata/osv", env!("CARGO_MANIFEST_DIR"));
        let mut checked = 0;
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{dir}: {e}")) {
            let path = entry.map(|e| e.path()).unwrap_or_default();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            let adv = fixture(name);
            let (kb, pkgs) = from_osv(&adv).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(kb.packages.len(), pkgs.len());
            for pkg in &pkgs {
                // Every version the record mentions, and a few around them.
                let mut probes: Vec<String> = vec!["0".into(), "0.0.1".into(), "99999".into()];
                for a in adv
                    .affected
                    .iter()
                    .filter(|a| a.is_for(&pkg.ecosystem, &pkg.name))
                {
                    probes.extend(a.versions.iter().cloned());
                    for r in &a.ranges {
                        for e in &r.events {
                            let (Event::Introduced(v)
                            | Event::Fixed(v)
                            | Event::LastAffected(v)
                            | Event::Limit(v)) = e;
                            probes.push(v.clone());
                            probes.push(format!("{v}.1"));
                            probes.push(format!("{v}~1"));
                        }
                    }
                }
                for v in &probes {
                    let want = adv.matches(&pkg.ecosystem, &pkg.name, v);
                    let got = if kb.withdrawn {
                        Ok(None)
                    } else {
                        pkg.matches(v)
                    };
                    assert_eq!(got, want, "{name} {} {} at {v}", pkg.ecosystem, pkg.name);
                    checked += 1;
                }
            }
            // And it survives the store's encoding.
            let bytes = postcard::to_stdvec(&(kb.clone(), pkgs.clone())).unwrap_or_default();
            let back: Result<(KbAdvisory, Vec<KbPackage>), _> = postcard::from_bytes(&bytes);
            assert_eq!(back.ok(), Some((kb, pkgs)), "{name} round trip");
        }
        assert!(checked > 100, "only {checked} probes");
    }

    #[test]
    fn severity_prefers_distribution_ratings_then_cvss() {
        let usn = fixture("USN-6429-1.json");
        assert_eq!(
            severity_of(&usn),
            (Severity::High, "Ubuntu priority high".to_owned())
        );
        let ghsa = fixture("GHSA-jfh8-c2jp-5v3q.json");
        let (sev, source) = severity_of(&ghsa);
        assert!(source.starts_with("database severity"), "{source}");
        assert!(sev >= Severity::Medium);
    }

    #[test]
    fn cvss_vector_scores_when_no_rating() {
        let json = br#"{"id":"X-1","modified":"2024-01-01T00:00:00Z","severity":[
            {"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"},
            {"type":"CVSS_V2","score":"AV:N/AC:L/Au:N/C:N/I:N/A:P"}]}"#;
        let adv = parse_advisory(json).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            severity_of(&adv),
            (Severity::Critical, "CVSS_V3 9.8".to_owned())
        );
        let none = parse_advisory(br#"{"id":"X-2","modified":"2024-01-01T00:00:00Z"}"#)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(severity_of(&none), (Severity::Medium, "unknown".to_owned()));
    }

    #[test]
    fn debian_urgency_with_stars_counts_unassigned_does_not() {
        assert_eq!(rating("low**"), Some(Severity::Low));
        assert_eq!(rating("not yet assigned"), None);
        assert_eq!(rating("unimportant"), Some(Severity::Low));
    }

    #[test]
    fn nul_in_a_package_name_is_refused() {
        let json = br#"{"id":"X-3","modified":"2024-01-01T00:00:00Z","affected":[
            {"package":{"ecosystem":"PyPI","name":"a\u0000b"},"versions":["1"]}]}"#;
        let adv = parse_advisory(json).unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            from_osv(&adv),
            Err(RecordError::BadPackage { .. })
        ));
    }

    #[test]
    fn titles_are_one_line_and_bounded() {
        let long = "x".repeat(500);
        let json = format!(
            r#"{{"id":"X-4","modified":"2024-01-01T00:00:00Z","details":"{long}\nsecond line"}}"#
        );
        let adv = parse_advisory(json.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        let t = title_of(&adv);
        assert!(t.len() <= MAX_TITLE_LEN + '…'.len_utf8());
        assert!(!t.contains('\n'));
    }
}
