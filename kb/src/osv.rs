//! OSV advisories: the record model, a bounded parser, and the affected-range evaluation.
//!
//! Why this module: every advisory source Picket imports (Debian, Ubuntu, Alpine, Red Hat and its
//! rebuilds, GitHub/PyPI/npm/crates.io/Go/Maven advisories) is published in the OSV format, so one
//! model and one evaluation serve them all. The evaluation is the part that decides findings, so
//! it follows the OSV schema (1.6) to the letter:
//!
//! * a version is affected if it is listed in `versions`, or lies in any range;
//! * within a range, events are taken in version order (`introduced: "0"` before everything) and
//!   the version is affected when the last event at or below it opened the range: `introduced`
//!   at or below it, not followed by a `fixed` at or below it nor a `last_affected` below it;
//! * when a range has `limit` events the version must also be below one of them (`"*"` is no
//!   limit);
//! * `ECOSYSTEM` ranges use the package ecosystem's ordering ([`Ecosystem::from_osv`]); `SEMVER`
//!   ranges use SemVer ordering whatever the ecosystem; `GIT` ranges name commits, not package
//!   versions, and are skipped.
//!
//! Records come from feeds and mirrors we do not control, so parsing is a pure function over
//! bytes with a size cap, unknown fields are ignored (OSV keeps adding some), long free text is
//! cut, and every failure is an [`OsvError`] that names the record id when it can be read.

use crate::version::{self, Ecosystem, VersionError};
use serde::de::{IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use std::cmp::Ordering;
use std::fmt;

/// Largest record accepted. Real records are far smaller, even those listing hundreds of commits
/// or versions; a record near this size is a broken or hostile feed.
pub const MAX_RECORD_LEN: usize = 16 * 1024 * 1024;
/// `summary` is cut to this many bytes (at a character boundary).
pub const MAX_SUMMARY_LEN: usize = 1024;
/// `details` is cut to this many bytes (at a character boundary): findings show a summary and
/// link the advisory; storing whole write-ups for ~500k records would dominate the store.
pub const MAX_DETAILS_LEN: usize = 16 * 1024;
/// Longest record id accepted (real ones are under 40 bytes); ids become store keys.
pub const MAX_ID_LEN: usize = 128;

/// One OSV record.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Advisory {
    #[serde(default)]
    pub schema_version: Option<String>,
    pub id: String,
    /// RFC 3339 timestamp of the last change, kept as text (only compared for equality/ordering
    /// of the same feed's records).
    pub modified: String,
    #[serde(default)]
    pub published: Option<String>,
    /// Set when the record was retracted; such records must not produce findings.
    #[serde(default)]
    pub withdrawn: Option<String>,
    /// Other ids for the same vulnerability (CVE, GHSA, ...).
    #[serde(default, deserialize_with = "nullable")]
    pub aliases: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub related: Vec<String>,
    /// Schema 1.6: the upstream vulnerabilities a distribution record derives from.
    #[serde(default, deserialize_with = "nullable")]
    pub upstream: Vec<String>,
    #[serde(default, deserialize_with = "capped_summary")]
    pub summary: Option<String>,
    #[serde(default, deserialize_with = "capped_details")]
    pub details: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub severity: Vec<Severity>,
    #[serde(default, deserialize_with = "nullable")]
    pub affected: Vec<Affected>,
    #[serde(default, deserialize_with = "nullable")]
    pub references: Vec<Reference>,
    #[serde(default)]
    pub database_specific: Option<serde_json::Value>,
}

/// A severity score: a CVSS vector, or a distribution's own rating (Ubuntu's `high`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Severity {
    #[serde(rename = "type")]
    pub kind: SeverityType,
    pub score: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(from = "String")]
#[non_exhaustive]
pub enum SeverityType {
    CvssV2,
    CvssV3,
    CvssV4,
    Ubuntu,
    /// A type this model does not know yet, kept by name.
    Other(String),
}

impl From<String> for SeverityType {
    fn from(s: String) -> Self {
        match s.as_str() {
            "CVSS_V2" => Self::CvssV2,
            "CVSS_V3" => Self::CvssV3,
            "CVSS_V4" => Self::CvssV4,
            "Ubuntu" => Self::Ubuntu,
            _ => Self::Other(s),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Reference {
    #[serde(rename = "type")]
    pub kind: String,
    pub url: String,
}

/// The versions of one package that a record affects.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Affected {
    /// Absent for records that only name commits of a repository.
    #[serde(default)]
    pub package: Option<Package>,
    #[serde(default, deserialize_with = "nullable")]
    pub severity: Vec<Severity>,
    #[serde(default, deserialize_with = "nullable")]
    pub ranges: Vec<Range>,
    /// Affected versions listed one by one.
    #[serde(default, deserialize_with = "nullable")]
    pub versions: Vec<String>,
    #[serde(default)]
    pub ecosystem_specific: Option<serde_json::Value>,
    #[serde(default)]
    pub database_specific: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Package {
    /// OSV ecosystem, possibly with a release: `Debian:12`, `Ubuntu:22.04:LTS`, `PyPI`.
    pub ecosystem: String,
    /// For Debian and Ubuntu this is the *source* package name.
    pub name: String,
    #[serde(default)]
    pub purl: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Range {
    #[serde(rename = "type")]
    pub kind: RangeType,
    /// The repository of a `GIT` range.
    #[serde(default)]
    pub repo: Option<String>,
    #[serde(deserialize_with = "json_events")]
    pub events: Vec<Event>,
    #[serde(default)]
    pub database_specific: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(from = "String")]
#[non_exhaustive]
pub enum RangeType {
    Ecosystem,
    Semver,
    Git,
    /// A range type this model does not know; such ranges never match.
    Other(String),
}

impl From<String> for RangeType {
    fn from(s: String) -> Self {
        match s.as_str() {
            "ECOSYSTEM" => Self::Ecosystem,
            "SEMVER" => Self::Semver,
            "GIT" => Self::Git,
            _ => Self::Other(s),
        }
    }
}

/// One range event. The schema requires exactly one of the four keys per event object; any
/// other shape is refused at parse time rather than guessed at.
///
/// The derived serde impls are the store's (postcard) encoding; JSON events are read through
/// [`RawEvent`] by `Range`'s deserializer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    /// `"0"` means "from the first version".
    Introduced(String),
    /// The first version no longer affected.
    Fixed(String),
    /// The last version known to be affected (no fix known).
    LastAffected(String),
    /// An upper bound (exclusive) on the whole range; `"*"` means none.
    Limit(String),
}

#[derive(Deserialize)]
struct RawEvent {
    #[serde(default)]
    introduced: Option<String>,
    #[serde(default)]
    fixed: Option<String>,
    #[serde(default)]
    last_affected: Option<String>,
    #[serde(default)]
    limit: Option<String>,
}

fn json_events<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Event>, D::Error> {
    Vec::<RawEvent>::deserialize(d)?
        .into_iter()
        .map(|raw| Event::try_from(raw).map_err(serde::de::Error::custom))
        .collect()
}

impl TryFrom<RawEvent> for Event {
    type Error = &'static str;

    fn try_from(raw: RawEvent) -> Result<Self, Self::Error> {
        match (raw.introduced, raw.fixed, raw.last_affected, raw.limit) {
            (Some(v), None, None, None) => Ok(Self::Introduced(v)),
            (None, Some(v), None, None) => Ok(Self::Fixed(v)),
            (None, None, Some(v), None) => Ok(Self::LastAffected(v)),
            (None, None, None, Some(v)) => Ok(Self::Limit(v)),
            _ => Err(
                "a range event must have exactly one of introduced, fixed, last_affected, limit",
            ),
        }
    }
}

/// Why a record was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OsvError {
    #[error("OSV record of {len} bytes is larger than the {MAX_RECORD_LEN}-byte limit")]
    TooLarge { len: usize },
    /// Not JSON (or cut short).
    #[error("OSV record {} is not valid JSON at line {line}, column {column}: {message}", show_id(.id))]
    Json {
        id: Option<String>,
        line: usize,
        column: usize,
        message: String,
    },
    /// JSON, but not an OSV record: a missing required field, a wrong type, a malformed event.
    #[error("OSV record {} does not follow the schema at line {line}, column {column}: {message}", show_id(.id))]
    Schema {
        id: Option<String>,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("OSV record id {id:?} is invalid: {reason}")]
    InvalidId { id: String, reason: &'static str },
}

fn show_id(id: &Option<String>) -> String {
    match id {
        Some(id) => format!("{id:?}"),
        None => "(id unknown)".to_owned(),
    }
}

impl OsvError {
    /// The record id, when it could be read.
    pub fn id(&self) -> Option<&str> {
        match self {
            Self::TooLarge { .. } => None,
            Self::Json { id, .. } | Self::Schema { id, .. } => id.as_deref(),
            Self::InvalidId { id, .. } => Some(id),
        }
    }
}

/// Parses one OSV record (a JSON object).
pub fn parse_advisory(bytes: &[u8]) -> Result<Advisory, OsvError> {
    if bytes.len() > MAX_RECORD_LEN {
        return Err(OsvError::TooLarge { len: bytes.len() });
    }
    let advisory: Advisory = serde_json::from_slice(bytes).map_err(|e| {
        let id = probe_id(bytes);
        let (line, column) = (e.line(), e.column());
        // serde's messages may quote input; keep them to a line.
        let message = truncate(e.to_string(), 200);
        match e.classify() {
            serde_json::error::Category::Data => OsvError::Schema {
                id,
                line,
                column,
                message,
            },
            _ => OsvError::Json {
                id,
                line,
                column,
                message,
            },
        }
    })?;
    check_id(&advisory.id)?;
    Ok(advisory)
}

fn check_id(id: &str) -> Result<(), OsvError> {
    let reason = if id.is_empty() {
        "empty"
    } else if id.len() > MAX_ID_LEN {
        "too long"
    } else if id.chars().any(|c| c.is_control() || c.is_whitespace()) {
        "contains white space or control characters"
    } else {
        return Ok(());
    };
    Err(OsvError::InvalidId {
        id: truncate(id.to_owned(), MAX_ID_LEN),
        reason,
    })
}

/// Reads the top-level `id` of a record that failed to parse, so the error can name it. Keys are
/// read in order until the document breaks, so a record whose `id` precedes the damage (the
/// usual layout) is still named.
fn probe_id(bytes: &[u8]) -> Option<String> {
    struct Probe<'a>(&'a mut Option<String>);

    impl<'de> Visitor<'de> for Probe<'_> {
        type Value = ();

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an object")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                if key == "id" && self.0.is_none() {
                    if let Ok(id) = map.next_value::<String>() {
                        *self.0 = Some(truncate(id, MAX_ID_LEN));
                        continue;
                    }
                    return Ok(());
                }
                map.next_value::<IgnoredAny>()?;
            }
            Ok(())
        }
    }

    let mut id = None;
    let mut de = serde_json::Deserializer::from_slice(bytes);
    // The document is already known to be broken somewhere; only the side effect matters.
    let _ = de.deserialize_map(Probe(&mut id));
    id
}

/// `null` where a list is expected reads as an empty list: some exporters write `"aliases": null`.
fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

fn capped_summary<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.map(|s| truncate(s, MAX_SUMMARY_LEN)))
}

fn capped_details<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.map(|s| truncate(s, MAX_DETAILS_LEN)))
}

/// Cuts `s` to at most `max` bytes at a character boundary, marking the cut with `…`.
fn truncate(mut s: String, max: usize) -> String {
    if s.len() <= max {
        return s;
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    s.push('…');
    s
}

impl Advisory {
    pub fn is_withdrawn(&self) -> bool {
        self.withdrawn.is_some()
    }

    /// The CVE ids this record is known under: its own id, aliases and upstream ids, in that
    /// order, without repeats.
    pub fn cve_ids(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        let all = std::iter::once(&self.id)
            .chain(&self.aliases)
            .chain(&self.upstream);
        for id in all {
            if id.starts_with("CVE-") && !out.contains(&id.as_str()) {
                out.push(id);
            }
        }
        out
    }

    /// Whether `version` of package `name` in exactly `ecosystem` (release included, see
    /// [`Affected::is_for`]) is affected, over every entry for that package: `None` when it is
    /// not, or when the record is withdrawn. Errors as for [`Affected::affects`]: no entry says
    /// "affected" and at least one could not be evaluated.
    pub fn matches(
        &self,
        ecosystem: &str,
        name: &str,
        version: &str,
    ) -> Result<Option<Match>, VersionError> {
        if self.is_withdrawn() {
            return Ok(None);
        }
        let ordering = Ecosystem::from_osv(ecosystem);
        fold_entries(
            ordering,
            self.affected
                .iter()
                .filter(|a| a.is_for(ecosystem, name))
                .map(|entry| {
                    Ok(entry
                        .affects(version)?
                        .then(|| entry.fixed_version(version)))
                }),
        )
    }
}

/// An affected version: what a finding reports.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Match {
    /// The version that fixes it; `None` when no fix is known.
    pub fixed: Option<String>,
}

/// The higher of two fixed versions; the first when they cannot be ordered.
fn higher(ordering: Option<Ecosystem>, a: String, b: String) -> String {
    match ordering.map(|eco| version::compare(eco, &b, &a)) {
        Some(Ok(Ordering::Greater)) => b,
        _ => a,
    }
}

/// Splits an OSV ecosystem into its name and release: `Debian:12` -> (`Debian`, `12`),
/// `Ubuntu:22.04:LTS` -> (`Ubuntu`, `22.04:LTS`), `Ubuntu:Pro:18.04:LTS` -> (`Ubuntu`,
/// `Pro:18.04:LTS`), `PyPI` -> (`PyPI`, none). The release is kept whole because advisories for
/// one release say nothing about another (Debian:12 is not Debian:11, Pro is not the public
/// archive).
pub fn ecosystem_release(eco: &str) -> (&str, Option<&str>) {
    match eco.split_once(':') {
        Some((name, release)) if !release.is_empty() => (name, Some(release)),
        Some((name, _)) => (name, None),
        None => (eco, None),
    }
}

/// PEP 503 normalisation: PyPI names are case-insensitive and treat runs of `-`, `_`, `.` alike.
pub(crate) fn pypi_normalize(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut in_sep = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !in_sep {
                out.push('-');
            }
            in_sep = true;
        } else {
            out.extend(c.to_lowercase());
            in_sep = false;
        }
    }
    out
}

/// The verdict of one range for one version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Verdict<'a> {
    affected: bool,
    /// When affected: the `fixed` event closing the interval holding the version, if the
    /// interval is closed by one (not by `last_affected`, not left open).
    fixed: Option<&'a str>,
}

impl Affected {
    /// Whether this entry is about `name` in exactly `ecosystem` (release included). Names match
    /// exactly, except PyPI names, which are compared as PEP 503 normalises them.
    pub fn is_for(&self, ecosystem: &str, name: &str) -> bool {
        let Some(pkg) = &self.package else {
            return false;
        };
        if pkg.ecosystem != ecosystem {
            return false;
        }
        if ecosystem_release(ecosystem).0 == "PyPI" {
            pypi_normalize(&pkg.name) == pypi_normalize(name)
        } else {
            pkg.name == name
        }
    }

    /// The ordering of this package's ecosystem, if we have one.
    fn ordering(&self) -> Option<Ecosystem> {
        self.package
            .as_ref()
            .and_then(|p| Ecosystem::from_osv(&p.ecosystem))
    }

    /// The ranges we can evaluate, each with its ordering.
    fn orderable_ranges(&self) -> impl Iterator<Item = (Ecosystem, &Range)> {
        let package = self.ordering();
        self.ranges.iter().filter_map(move |r| match r.kind {
            RangeType::Ecosystem => package.map(|eco| (eco, r)),
            RangeType::Semver => Some((Ecosystem::Semver, r)),
            RangeType::Git | RangeType::Other(_) => None,
        })
    }

    /// Whether `version` of this package is affected. `ECOSYSTEM` ranges of an ecosystem we do
    /// not order are skipped, so for those only `versions` (and any `SEMVER` range) decides.
    ///
    /// An error means no range says "affected" and at least one could not be evaluated, because
    /// `version` or a version in the record is invalid for the ordering: the answer is unknown,
    /// not "no".
    pub fn affects(&self, version: &str) -> Result<bool, VersionError> {
        entry_affects(
            self.ordering(),
            &self.versions,
            self.orderable_ranges()
                .map(|(eco, r)| (eco, r.events.as_slice())),
            version,
        )
    }

    /// The version that fixes `version`: the `fixed` event closing the range interval that holds
    /// it. When several ranges hold it (overlapping ranges), the highest of their fixes, since
    /// upgrading to a lower one would leave it affected; `None` when any of them has no fix
    /// (`last_affected`, or open-ended), when `version` is not in any range, or when it cannot be
    /// evaluated.
    pub fn fixed_version(&self, version: &str) -> Option<String> {
        entry_fixed(
            self.orderable_ranges()
                .map(|(eco, r)| (eco, r.events.as_slice())),
            version,
        )
    }
}

/// [`Affected::affects`] over the parts of an entry, shared with the store's compact form
/// ([`crate::record::KbEntry`]) so that both decide exactly alike.
pub(crate) fn entry_affects<'a>(
    ordering: Option<Ecosystem>,
    versions: &[String],
    ranges: impl Iterator<Item = (Ecosystem, &'a [Event])>,
    version: &str,
) -> Result<bool, VersionError> {
    // Listed as the same string, or, when the ecosystem is ordered, as an equal version (PEP
    // 440's `1.0` is `1.0.0`; dpkg's `0:1.0` is `1.0`). Listed strings the ordering rejects only
    // match as strings.
    let listed = versions.iter().any(|listed| {
        listed == version
            || ordering
                .is_some_and(|eco| version::compare(eco, listed, version) == Ok(Ordering::Equal))
    });
    if listed {
        return Ok(true);
    }
    let mut failure = None;
    for (eco, events) in ranges {
        match evaluate(eco, events, version) {
            Ok(v) if v.affected => return Ok(true),
            Ok(_) => {}
            Err(e) => {
                failure.get_or_insert(e);
            }
        }
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(false),
    }
}

/// [`Affected::fixed_version`] over an entry's ranges.
pub(crate) fn entry_fixed<'a>(
    ranges: impl Iterator<Item = (Ecosystem, &'a [Event])>,
    version: &str,
) -> Option<String> {
    let mut best: Option<(Ecosystem, &str)> = None;
    for (eco, events) in ranges {
        let verdict = match evaluate(eco, events, version) {
            Ok(v) if v.affected => v,
            _ => continue,
        };
        let fix = verdict.fixed?;
        best = match best {
            Some((_, old)) if version::compare(eco, fix, old) != Ok(Ordering::Greater) => best,
            _ => Some((eco, fix)),
        };
    }
    best.map(|(_, fix)| fix.to_owned())
}

/// Folds the per-entry verdicts of one package into one match, as [`Advisory::matches`]
/// defines: affected when any entry is; the highest fix, or none if any affected entry has none;
/// an error only when nothing matched and some entry could not be evaluated.
pub(crate) fn fold_entries(
    ordering: Option<Ecosystem>,
    verdicts: impl Iterator<Item = Result<Option<Option<String>>, VersionError>>,
) -> Result<Option<Match>, VersionError> {
    let mut failure = None;
    let mut found: Option<Match> = None;
    for verdict in verdicts {
        let fixed = match verdict {
            Ok(Some(fixed)) => fixed,
            Ok(None) => continue,
            Err(e) => {
                failure.get_or_insert(e);
                continue;
            }
        };
        found = Some(match found {
            None => Match { fixed },
            // Entries overlap rarely (one per branch is the norm); when they do, as for
            // ranges: the highest fix, or none if any entry has none.
            Some(prev) => Match {
                fixed: match (prev.fixed, fixed) {
                    (Some(a), Some(b)) => Some(higher(ordering, a, b)),
                    _ => None,
                },
            },
        });
    }
    match (found, failure) {
        (Some(m), _) => Ok(Some(m)),
        (None, Some(e)) => Err(e),
        (None, None) => Ok(None),
    }
}

/// Where an event falls in the schema's sorted order: its version, then (for events at the same
/// version) `introduced` before `fixed`/`last_affected`, so that `introduced: X, fixed: X` is an
/// empty range rather than one starting at X.
fn event_key(e: &Event) -> Option<(&str, u8)> {
    match e {
        Event::Introduced(v) => Some((v, 0)),
        Event::Fixed(v) | Event::LastAffected(v) => Some((v, 1)),
        Event::Limit(_) => None,
    }
}

fn key_cmp(eco: Ecosystem, a: (&str, u8), b: (&str, u8)) -> Result<Ordering, VersionError> {
    let is_zero = |k: (&str, u8)| k == ("0", 0);
    Ok(match (is_zero(a), is_zero(b)) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        (false, false) => version::compare(eco, a.0, b.0)?.then(a.1.cmp(&b.1)),
    })
}

/// One range's verdict, per the schema's algorithm: walking the sorted events, the state at
/// `version` is set by the last event that applies to it (an `introduced` or `fixed` at or
/// below it, a `last_affected` below it). That event is the greatest applicable one, so it is
/// found in one pass without sorting — which also keeps an inconsistent ordering (Maven's is
/// not transitive) from doing anything worse than giving an odd answer.
fn evaluate<'a>(
    eco: Ecosystem,
    events: &'a [Event],
    version: &str,
) -> Result<Verdict<'a>, VersionError> {
    const UNAFFECTED: Verdict<'static> = Verdict {
        affected: false,
        fixed: None,
    };
    // Validates `version` even when no event needs comparing with it.
    version::compare(eco, version, version)?;

    let mut limited = false;
    let mut below_a_limit = false;
    for e in events {
        if let Event::Limit(l) = e {
            limited = true;
            if l == "*" || version::compare(eco, version, l)? == Ordering::Less {
                below_a_limit = true;
            }
        }
    }
    if limited && !below_a_limit {
        return Ok(UNAFFECTED);
    }

    // The greatest applicable event, and the least event still ahead that would close the range.
    let mut last: Option<&Event> = None;
    let mut next_close: Option<&Event> = None;
    for e in events {
        let applies = match e {
            Event::Introduced(v) => v == "0" || version::compare(eco, version, v)?.is_ge(),
            Event::Fixed(v) => version::compare(eco, version, v)?.is_ge(),
            Event::LastAffected(v) => version::compare(eco, version, v)?.is_gt(),
            Event::Limit(_) => continue,
        };
        let (slot, want) = if applies {
            (&mut last, Ordering::Greater)
        } else if matches!(e, Event::Fixed(_) | Event::LastAffected(_)) {
            (&mut next_close, Ordering::Less)
        } else {
            continue;
        };
        let replace = match (*slot).and_then(event_key) {
            None => true,
            Some(cur) => match event_key(e) {
                Some(new) => key_cmp(eco, new, cur)? == want,
                None => false,
            },
        };
        if replace {
            *slot = Some(e);
        }
    }

    if !matches!(last, Some(Event::Introduced(_))) {
        return Ok(UNAFFECTED);
    }
    Ok(Verdict {
        affected: true,
        fixed: match next_close {
            Some(Event::Fixed(f)) => Some(f),
            _ => None,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn affected(eco: &str, kind: &str, events: &str) -> Affected {
        let json = format!(
            r#"{{"package": {{"ecosystem": "{eco}", "name": "p"}},
                "ranges": [{{"type": "{kind}", "events": [{events}]}}]}}"#
        );
        serde_json::from_str(&json).unwrap()
    }

    #[test]
    fn ecosystem_release_splits_at_first_colon() {
        assert_eq!(ecosystem_release("Debian:12"), ("Debian", Some("12")));
        assert_eq!(
            ecosystem_release("Ubuntu:22.04:LTS"),
            ("Ubuntu", Some("22.04:LTS"))
        );
        assert_eq!(
            ecosystem_release("Ubuntu:Pro:18.04:LTS"),
            ("Ubuntu", Some("Pro:18.04:LTS"))
        );
        assert_eq!(ecosystem_release("AlmaLinux:9"), ("AlmaLinux", Some("9")));
        assert_eq!(
            ecosystem_release("Red Hat:enterprise_linux:9::baseos"),
            ("Red Hat", Some("enterprise_linux:9::baseos"))
        );
        assert_eq!(ecosystem_release("PyPI"), ("PyPI", None));
        assert_eq!(ecosystem_release("Debian:"), ("Debian", None));
        assert_eq!(ecosystem_release(""), ("", None));
    }

    #[test]
    fn pypi_names_are_normalised_others_exact() {
        let a: Affected =
            serde_json::from_str(r#"{"package": {"ecosystem": "PyPI", "name": "Zope.Interface"}}"#)
                .unwrap();
        assert!(a.is_for("PyPI", "zope-interface"));
        assert!(a.is_for("PyPI", "zope__interface"));
        assert!(!a.is_for("PyPI", "zopeinterface"));
        assert!(!a.is_for("npm", "Zope.Interface"));
        let d: Affected =
            serde_json::from_str(r#"{"package": {"ecosystem": "Debian:12", "name": "curl"}}"#)
                .unwrap();
        assert!(d.is_for("Debian:12", "curl"));
        assert!(!d.is_for("Debian:11", "curl"));
        assert!(!d.is_for("Debian:12", "Curl"));
    }

    #[test]
    fn same_version_introduced_and_fixed_is_empty() {
        let a = affected(
            "npm",
            "SEMVER",
            r#"{"fixed": "1.0.0"}, {"introduced": "1.0.0"}"#,
        );
        assert_eq!(a.affects("1.0.0"), Ok(false));
        assert_eq!(a.affects("1.0.1"), Ok(false));
        assert_eq!(a.affects("0.9.0"), Ok(false));
    }

    #[test]
    fn events_in_any_order() {
        // Records are not required to list events sorted.
        let a = affected(
            "npm",
            "SEMVER",
            r#"{"fixed": "2.5.0"}, {"introduced": "2.0.0"}, {"fixed": "1.5.0"}, {"introduced": "0"}"#,
        );
        for (v, want, fix) in [
            ("0.1.0", true, Some("1.5.0")),
            ("1.5.0", false, None),
            ("1.9.9", false, None),
            ("2.0.0", true, Some("2.5.0")),
            ("2.5.0", false, None),
        ] {
            assert_eq!(a.affects(v), Ok(want), "{v}");
            assert_eq!(a.fixed_version(v).as_deref(), fix, "{v}");
        }
    }

    #[test]
    fn limit_bounds_the_range() {
        let a = affected(
            "PyPI",
            "ECOSYSTEM",
            r#"{"introduced": "1.0"}, {"limit": "2.0"}"#,
        );
        assert_eq!(a.affects("0.9"), Ok(false));
        assert_eq!(a.affects("1.0"), Ok(true));
        assert_eq!(a.affects("2.0rc1"), Ok(true));
        assert_eq!(a.affects("2.0"), Ok(false));
        assert_eq!(a.fixed_version("1.5"), None);
        let star = affected(
            "PyPI",
            "ECOSYSTEM",
            r#"{"introduced": "1.0"}, {"limit": "*"}"#,
        );
        assert_eq!(star.affects("99"), Ok(true));
        let two = affected(
            "PyPI",
            "ECOSYSTEM",
            r#"{"introduced": "0"}, {"limit": "1.0"}, {"limit": "3.0"}"#,
        );
        assert_eq!(two.affects("2.0"), Ok(true), "below one of the limits");
        assert_eq!(two.affects("3.0"), Ok(false));
    }

    #[test]
    fn invalid_versions_are_errors_not_answers() {
        let a = affected(
            "PyPI",
            "ECOSYSTEM",
            r#"{"introduced": "0"}, {"fixed": "2.0"}"#,
        );
        assert!(a.affects("not a version").is_err());
        let bad = affected(
            "PyPI",
            "ECOSYSTEM",
            r#"{"introduced": "1.0"}, {"fixed": "garbage!"}"#,
        );
        assert!(bad.affects("1.5").is_err());
        assert_eq!(bad.fixed_version("1.5"), None);
        // A range with "0" alone still validates the queried version.
        let open = affected("Debian:12", "ECOSYSTEM", r#"{"introduced": "0"}"#);
        assert_eq!(open.affects("1.0-1"), Ok(true));
        assert!(open.affects("").is_err());
    }

    #[test]
    fn one_bad_range_does_not_hide_another_match() {
        let json = r#"{"package": {"ecosystem": "PyPI", "name": "p"}, "ranges": [
            {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "bad!"}]},
            {"type": "ECOSYSTEM", "events": [{"introduced": "1.0"}, {"fixed": "1.2"}]}]}"#;
        let a: Affected = serde_json::from_str(json).unwrap();
        assert_eq!(a.affects("1.1"), Ok(true));
        assert!(a.affects("1.3").is_err(), "unknown, not unaffected");
    }

    #[test]
    fn overlapping_ranges_report_the_highest_fix_or_none() {
        let json = r#"{"package": {"ecosystem": "npm", "name": "p"}, "ranges": [
            {"type": "SEMVER", "events": [{"introduced": "1.5.0"}, {"fixed": "1.8.0"}]},
            {"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "2.0.0"}]},
            {"type": "SEMVER", "events": [{"introduced": "3.0.0"}, {"fixed": "3.1.0"}]},
            {"type": "SEMVER", "events": [{"introduced": "3.0.5"}]}]}"#;
        let a: Affected = serde_json::from_str(json).unwrap();
        assert_eq!(a.fixed_version("1.6.0").as_deref(), Some("2.0.0"));
        assert_eq!(a.fixed_version("1.0.0").as_deref(), Some("2.0.0"));
        assert_eq!(a.fixed_version("3.0.1").as_deref(), Some("3.1.0"));
        assert_eq!(
            a.fixed_version("3.0.6"),
            None,
            "one holding range is unfixed"
        );
        assert_eq!(a.fixed_version("2.5.0"), None, "not affected");
    }

    #[test]
    fn matches_combines_entries_of_one_package() {
        let json = br#"{"id": "T-1", "modified": "m", "affected": [
            {"package": {"ecosystem": "npm", "name": "p"},
             "ranges": [{"type": "SEMVER", "events": [{"introduced": "1.5.0"}, {"fixed": "1.8.0"}]}]},
            {"package": {"ecosystem": "npm", "name": "p"},
             "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "2.0.0"}]}]},
            {"package": {"ecosystem": "npm", "name": "p"},
             "ranges": [{"type": "SEMVER", "events": [{"introduced": "bad"}]}]},
            {"package": {"ecosystem": "npm", "name": "q"},
             "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}]}]}]}"#;
        let adv = parse_advisory(json).unwrap();
        let fixed = |v| adv.matches("npm", "p", v).map(|m| m.map(|m| m.fixed));
        assert_eq!(fixed("1.6.0"), Ok(Some(Some("2.0.0".to_owned()))));
        assert_eq!(fixed("1.0.0"), Ok(Some(Some("2.0.0".to_owned()))));
        assert!(
            fixed("3.0.0").is_err(),
            "the bad entry leaves 3.0.0 undecided"
        );
        assert_eq!(
            adv.matches("npm", "q", "3.0.0").unwrap().unwrap().fixed,
            None
        );
        assert_eq!(adv.matches("npm", "r", "3.0.0"), Ok(None));
        assert_eq!(adv.matches("PyPI", "p", "1.0.0"), Ok(None));
    }

    #[test]
    fn truncate_cuts_at_char_boundary() {
        let s = "é".repeat(10); // 20 bytes
        let t = truncate(s, 9);
        assert!(t.len() <= 9, "{t}");
        assert!(t.ends_with('…'));
        assert_eq!(truncate("short".to_owned(), 9), "short");
    }

    #[test]
    fn probe_finds_id_before_damage_only() {
        assert_eq!(
            probe_id(br#"{"modified": 1, "id": "X-1", "affected": [}"#).as_deref(),
            Some("X-1")
        );
        assert_eq!(probe_id(br#"{"affected": [}, "id": "X-1"}"#), None);
        assert_eq!(probe_id(b"[1, 2]"), None);
    }

    /// The schema's reference algorithm, literally: sort the events, walk them.
    fn reference(events: &[(u8, u32)], limits: &[u32], v: u32) -> bool {
        if !limits.is_empty() && !limits.iter().any(|&l| v < l) {
            return false;
        }
        let mut sorted = events.to_vec();
        sorted.sort_by_key(|&(kind, ver)| (ver, u8::from(kind != 0)));
        let mut affected = false;
        for (kind, ver) in sorted {
            match kind {
                0 if v >= ver => affected = true,
                1 if v >= ver => affected = false,
                2 if v > ver => affected = false,
                _ => {}
            }
        }
        affected
    }

    proptest! {
        #[test]
        fn evaluation_matches_the_schema_algorithm(
            events in prop::collection::vec((0u8..3, 0u32..12), 0..8),
            limits in prop::collection::vec(1u32..12, 0..2),
            v in 0u32..13,
        ) {
            let mut list: Vec<Event> = events
                .iter()
                .map(|&(kind, ver)| {
                    let s = format!("{ver}.0.0");
                    match kind {
                        0 => Event::Introduced(s),
                        1 => Event::Fixed(s),
                        _ => Event::LastAffected(s),
                    }
                })
                .collect();
            list.extend(limits.iter().map(|l| Event::Limit(format!("{l}.0.0"))));
            let got = evaluate(Ecosystem::Semver, &list, &format!("{v}.0.0")).unwrap();
            let want = reference(&events, &limits, v);
            prop_assert_eq!(got.affected, want);
            if got.affected {
                // The fix is the least `fixed`/`last_affected` above v, when it is a `fixed`.
                let close = events
                    .iter()
                    .filter(|&&(k, ver)| (k == 1 && ver > v) || (k == 2 && ver >= v))
                    .min_by_key(|&&(_, ver)| ver);
                let want_fix = match close {
                    Some(&(1, ver)) if !events.contains(&(2, ver)) => Some(format!("{ver}.0.0")),
                    _ => None,
                };
                if !close.is_some_and(|&(_, ver)| events.contains(&(1, ver)) && events.contains(&(2, ver))) {
                    prop_assert_eq!(got.fixed.map(str::to_owned), want_fix);
                }
            }
        }

        #[test]
        fn introduced_zero_is_from_the_beginning(v in 0u32..100) {
            let list = [Event::Introduced("0".into())];
            let got = evaluate(Ecosystem::Semver, &list, &format!("0.{v}.0-alpha")).unwrap();
            prop_assert!(got.affected);
        }
    }
}
