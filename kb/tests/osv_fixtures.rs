//! OSV records modelled on each feed Picket imports (`kb/testdata/osv/`), parsed and evaluated
//! version by version, boundaries included; and the parser's refusals, which must name the record.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use picket_kb::osv::{
    parse_advisory, Advisory, Event, OsvError, RangeType, SeverityType, MAX_DETAILS_LEN,
    MAX_RECORD_LEN,
};
use proptest::prelude::*;
use std::path::PathBuf;

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/osv")
}

fn read(name: &str) -> Vec<u8> {
    let path = fixture_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn load(name: &str) -> Advisory {
    parse_advisory(&read(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn all_fixtures() -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<_> = std::fs::read_dir(fixture_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect();
    out.sort();
    out
}

/// (ecosystem, package, version, affected?, fixed version reported)
type Case = (
    &'static str,
    &'static str,
    &'static str,
    bool,
    Option<&'static str>,
);

/// Evaluates every case against the advisory's entries for that exact ecosystem and package.
fn check(file: &str, cases: &[Case]) {
    let adv = load(file);
    for &(eco, name, version, want, want_fix) in cases {
        let entries: Vec<_> = adv
            .affected
            .iter()
            .filter(|a| a.is_for(eco, name))
            .collect();
        assert!(!entries.is_empty(), "{file}: no entry for {eco}/{name}");
        let mut affected = false;
        let mut fixes = Vec::new();
        for entry in &entries {
            let hit = entry
                .affects(version)
                .unwrap_or_else(|e| panic!("{file}: {eco}/{name} {version}: {e}"));
            if hit {
                affected = true;
                fixes.push(entry.fixed_version(version));
            } else {
                assert_eq!(
                    entry.fixed_version(version),
                    None,
                    "{file}: {eco}/{name} {version}: a fix reported for an unaffected version"
                );
            }
        }
        assert_eq!(
            affected, want,
            "{file}: {eco}/{name} {version}: affected should be {want}"
        );
        // In these fixtures at most one entry holds any version.
        assert!(
            fixes.len() <= 1,
            "{file}: {eco}/{name} {version}: {fixes:?}"
        );
        let fix = fixes.into_iter().next().flatten();
        assert_eq!(
            fix.as_deref(),
            want_fix,
            "{file}: {eco}/{name} {version}: fixed version"
        );
        let m = adv.matches(eco, name, version).unwrap();
        assert_eq!(
            m.as_ref().map(|m| m.fixed.as_deref()),
            want.then_some(want_fix),
            "{file}: {eco}/{name} {version}: Advisory::matches"
        );
    }
}

#[test]
fn every_fixture_parses_with_its_id() {
    let fixtures = all_fixtures();
    assert_eq!(
        fixtures.len(),
        15,
        "fixture count changed: update the tables"
    );
    for (name, bytes) in &fixtures {
        let adv = parse_advisory(bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!adv.modified.is_empty(), "{name}");
        assert!(!adv.affected.is_empty(), "{name}: no affected entries");
        // The file name is the id, with ':' (not allowed in file names everywhere) as '-',
        // except for the hand-written records named after what they exercise.
        let stem = name.trim_end_matches(".json");
        let named_by_purpose = [
            "GHSA-django-multi",
            "GHSA-last-affected",
            "GHSA-withdrawn",
            "OSV-limit",
        ];
        if !named_by_purpose.contains(&stem) {
            assert_eq!(adv.id.replace(':', "-"), stem);
        }
    }
}

#[test]
fn debian_dsa_per_release_with_epochs_and_tildes() {
    let f = None;
    check(
        "DSA-5504-1.json",
        &[
            (
                "Debian:12",
                "bind9",
                "1:9.18.16-1~deb12u1",
                true,
                Some("1:9.18.19-1~deb12u1"),
            ),
            (
                "Debian:12",
                "bind9",
                "1:9.18.12-1",
                true,
                Some("1:9.18.19-1~deb12u1"),
            ),
            // No epoch is epoch 0, below any 1: version.
            (
                "Debian:12",
                "bind9",
                "9.18.19-1~deb12u1",
                true,
                Some("1:9.18.19-1~deb12u1"),
            ),
            (
                "Debian:12",
                "bind9",
                "9.99-1",
                true,
                Some("1:9.18.19-1~deb12u1"),
            ),
            (
                "Debian:12",
                "bind9",
                "1:9.18.19-1~deb12u0",
                true,
                Some("1:9.18.19-1~deb12u1"),
            ),
            // Exactly the fix, and the unsuffixed version the tilde sorts before.
            ("Debian:12", "bind9", "1:9.18.19-1~deb12u1", false, f),
            ("Debian:12", "bind9", "1:9.18.19-1", false, f),
            ("Debian:12", "bind9", "1:9.18.24-1~deb12u1", false, f),
            // Debian:11 has its own fix: bookworm's fixed version is not bullseye's.
            (
                "Debian:11",
                "bind9",
                "1:9.16.42-1~deb11u1",
                true,
                Some("1:9.16.44-1~deb11u1"),
            ),
            ("Debian:11", "bind9", "1:9.16.44-1~deb11u1", false, f),
            (
                "Debian:11",
                "bind9",
                "1:9.16.44-1~deb11u0+b1",
                true,
                Some("1:9.16.44-1~deb11u1"),
            ),
        ],
    );
    let adv = load("DSA-5504-1.json");
    assert!(!adv.affected.iter().any(|a| a.is_for("Debian:10", "bind9")));
    assert_eq!(adv.cve_ids(), ["CVE-2023-3341", "CVE-2023-4236"]);
    let deb11 = adv
        .affected
        .iter()
        .find(|a| a.is_for("Debian:11", "bind9"))
        .unwrap();
    // The same version read against the other release's entry gives the other answer.
    assert_eq!(deb11.affects("1:9.18.16-1~deb12u1"), Ok(false));
}

#[test]
fn debian_unfixed_record() {
    check(
        "DEBIAN-CVE-2024-0001.json",
        &[
            ("Debian:12", "libexample", "2.4.1-1", true, None),
            ("Debian:12", "libexample", "99:9.9-9", true, None),
            ("Debian:12", "libexample", "0.1~rc1-1", true, None),
            ("Debian:13", "libexample", "2.4.1-1", true, Some("2.4.1-2")),
            (
                "Debian:13",
                "libexample",
                "2.4.1-2~bpo12+1",
                true,
                Some("2.4.1-2"),
            ),
            ("Debian:13", "libexample", "2.4.1-2", false, None),
            ("Debian:13", "libexample", "2.4.1-2+b1", false, None),
        ],
    );
    let adv = load("DEBIAN-CVE-2024-0001.json");
    assert!(adv.references.is_empty(), "null reads as empty");
    assert_eq!(adv.cve_ids(), ["CVE-2024-0001"]);
}

#[test]
fn ubuntu_usn() {
    check(
        "USN-6429-1.json",
        &[
            (
                "Ubuntu:22.04:LTS",
                "curl",
                "7.81.0-1ubuntu1.13",
                true,
                Some("7.81.0-1ubuntu1.14"),
            ),
            (
                "Ubuntu:22.04:LTS",
                "curl",
                "7.81.0-1",
                true,
                Some("7.81.0-1ubuntu1.14"),
            ),
            (
                "Ubuntu:22.04:LTS",
                "curl",
                "7.81.0-1ubuntu1.14",
                false,
                None,
            ),
            (
                "Ubuntu:22.04:LTS",
                "curl",
                "7.81.0-1ubuntu1.15",
                false,
                None,
            ),
            (
                "Ubuntu:20.04:LTS",
                "curl",
                "7.68.0-1ubuntu2.7",
                true,
                Some("7.68.0-1ubuntu2.20"),
            ),
            // 2.20 > 2.7: numeric, not textual.
            (
                "Ubuntu:20.04:LTS",
                "curl",
                "7.68.0-1ubuntu2.20",
                false,
                None,
            ),
        ],
    );
    let adv = load("USN-6429-1.json");
    assert_eq!(adv.severity.len(), 1);
    assert_eq!(adv.severity[0].kind, SeverityType::Ubuntu);
    assert_eq!(adv.severity[0].score, "high");
    assert!(!adv
        .affected
        .iter()
        .any(|a| a.is_for("Ubuntu:22.04", "curl")));
    // CVEs of a USN are `related`, not aliases.
    assert!(adv.cve_ids().is_empty());
    assert!(adv.related.iter().any(|r| r == "CVE-2023-38545"));
    let binaries = adv.affected[0].ecosystem_specific.as_ref().unwrap()["binaries"].clone();
    assert_eq!(binaries[1]["binary_name"], "libcurl4");
}

#[test]
fn alpine() {
    check(
        "ALPINE-CVE-2023-38545.json",
        &[
            ("Alpine:v3.18", "curl", "8.3.0-r2", true, Some("8.4.0-r0")),
            (
                "Alpine:v3.18",
                "curl",
                "8.4.0_rc1-r0",
                true,
                Some("8.4.0-r0"),
            ),
            ("Alpine:v3.18", "curl", "8.4.0-r0", false, None),
            ("Alpine:v3.18", "curl", "8.4.0-r1", false, None),
            ("Alpine:v3.18", "curl", "8.10.1-r0", false, None),
            ("Alpine:v3.17", "curl", "7.88.1-r1", true, Some("8.4.0-r0")),
        ],
    );
}

#[test]
fn rpm_family_with_epochs() {
    check(
        "ALSA-2023-7877.json",
        &[
            // Epoch 1 beats any epoch-0 version, however high.
            (
                "AlmaLinux:9",
                "openssl",
                "3.0.7-25.el9",
                true,
                Some("1:3.0.7-24.el9"),
            ),
            (
                "AlmaLinux:9",
                "openssl",
                "1:3.0.7-23.el9",
                true,
                Some("1:3.0.7-24.el9"),
            ),
            (
                "AlmaLinux:9",
                "openssl",
                "1:3.0.7-18.el9_2",
                true,
                Some("1:3.0.7-24.el9"),
            ),
            ("AlmaLinux:9", "openssl", "1:3.0.7-24.el9", false, None),
            ("AlmaLinux:9", "openssl", "1:3.0.7-24.el9_3", false, None),
            ("AlmaLinux:9", "openssl", "2:1.0-1.el9", false, None),
            (
                "AlmaLinux:9",
                "openssl-libs",
                "1:3.0.1-47.el9_1",
                true,
                Some("1:3.0.7-24.el9"),
            ),
            (
                "AlmaLinux:9",
                "bind",
                "32:9.16.23-11.el9_2.2",
                true,
                Some("32:9.16.23-14.el9_3"),
            ),
            (
                "AlmaLinux:9",
                "bind",
                "9.16.23-20.el9",
                true,
                Some("32:9.16.23-14.el9_3"),
            ),
            ("AlmaLinux:9", "bind", "32:9.16.23-14.el9_3", false, None),
        ],
    );
    check(
        "RHSA-2023-5763.json",
        &[
            // `0:` and no epoch are the same.
            (
                "Red Hat:enterprise_linux:9::baseos",
                "libcurl",
                "7.76.1-26.el9_3.2",
                false,
                None,
            ),
            (
                "Red Hat:enterprise_linux:9::baseos",
                "libcurl",
                "7.76.1-26.el9_3.1",
                true,
                Some("0:7.76.1-26.el9_3.2"),
            ),
            (
                "Red Hat:enterprise_linux:9::baseos",
                "libcurl",
                "0:7.76.1-26.el9",
                true,
                Some("0:7.76.1-26.el9_3.2"),
            ),
            (
                "Rocky Linux:9",
                "curl",
                "7.76.1-23.el9_2.4",
                true,
                Some("7.76.1-26.el9_3.2"),
            ),
            ("Rocky Linux:9", "curl", "7.76.1-26.el9_3.2", false, None),
        ],
    );
    let rhsa = load("RHSA-2023-5763.json");
    assert_eq!(rhsa.severity[0].kind, SeverityType::CvssV3);
    assert!(!rhsa
        .affected
        .iter()
        .any(|a| a.is_for("AlmaLinux:9", "curl")));
}

#[test]
fn pypi_versions_lists_and_ranges() {
    check(
        "PYSEC-2023-74.json",
        &[
            ("PyPI", "requests", "2.3.0", true, Some("2.31.0")),
            ("PyPI", "requests", "2.30.0", true, Some("2.31.0")),
            ("PyPI", "requests", "2.30", true, Some("2.31.0")),
            ("PyPI", "requests", "2.28.2.post1", true, Some("2.31.0")),
            ("PyPI", "requests", "2.31.0rc1", true, Some("2.31.0")),
            ("PyPI", "requests", "2.31.0", false, None),
            ("PyPI", "requests", "2.31", false, None),
            ("PyPI", "requests", "2.2.1", false, None),
            ("PyPI", "requests", "2.3.0rc1", false, None),
            // Listed versions only: PEP 440 equality, so 1.0.0 is 1.0; no fix is known.
            ("PyPI", "requests-oldfork", "1.0", true, None),
            ("PyPI", "requests-oldfork", "1.0.0", true, None),
            ("PyPI", "Requests_OldFork", "1.2.post1", true, None),
            ("PyPI", "requests-oldfork", "1.2", false, None),
            ("PyPI", "requests-oldfork", "1.1.1", false, None),
        ],
    );
    let adv = load("PYSEC-2023-74.json");
    assert_eq!(adv.cve_ids(), ["CVE-2023-32681"], "GHSA alias is not a CVE");
    // The GIT-only entry names commits: no package, never matches a package version.
    let git = &adv.affected[2];
    assert!(git.package.is_none());
    assert_eq!(git.ranges[0].kind, RangeType::Git);
    assert_eq!(git.affects("2.30.0"), Ok(false));
    assert_eq!(git.affects("0"), Ok(false));
}

#[test]
fn pypi_several_ranges_and_prereleases() {
    check(
        "GHSA-django-multi.json",
        &[
            ("PyPI", "django", "3.2", true, Some("3.2.23")),
            ("PyPI", "Django", "3.2.22", true, Some("3.2.23")),
            ("PyPI", "django", "3.2.23", false, None),
            ("PyPI", "django", "3.1.14", false, None),
            ("PyPI", "django", "3.2rc1", false, None),
            ("PyPI", "django", "4.0", false, None),
            ("PyPI", "django", "4.1", true, Some("4.1.13")),
            ("PyPI", "django", "4.1.12", true, Some("4.1.13")),
            ("PyPI", "django", "4.1.13", false, None),
            // Between the ranges: above 4.1.13, below 4.2.
            ("PyPI", "django", "4.2rc1", false, None),
            ("PyPI", "django", "4.2", true, Some("4.2.7")),
            ("PyPI", "django", "4.2.0", true, Some("4.2.7")),
            ("PyPI", "django", "4.2.6.post1", true, Some("4.2.7")),
            ("PyPI", "django", "4.2.7rc1", true, Some("4.2.7")),
            ("PyPI", "django", "4.2.7", false, None),
            ("PyPI", "django", "5.0", false, None),
        ],
    );
    let adv = load("GHSA-django-multi.json");
    assert_eq!(adv.database_specific.as_ref().unwrap()["severity"], "HIGH");
}

#[test]
fn npm_semver_ranges() {
    check(
        "GHSA-c2qf-rxjj-qqgw.json",
        &[
            ("npm", "semver", "0.0.1", true, Some("5.7.2")),
            ("npm", "semver", "5.7.1", true, Some("5.7.2")),
            ("npm", "semver", "5.7.2", false, None),
            ("npm", "semver", "6.0.0-rc.1", false, None),
            ("npm", "semver", "6.0.0", true, Some("6.3.1")),
            ("npm", "semver", "6.3.0", true, Some("6.3.1")),
            ("npm", "semver", "6.3.1", false, None),
            ("npm", "semver", "7.0.0-beta.1", false, None),
            ("npm", "semver", "7.0.0", true, Some("7.5.2")),
            ("npm", "semver", "7.5.1", true, Some("7.5.2")),
            ("npm", "semver", "7.5.2-rc.1", true, Some("7.5.2")),
            ("npm", "semver", "7.5.2", false, None),
            ("npm", "semver", "7.5.2+build.5", false, None),
            ("npm", "semver", "7.6.0", false, None),
        ],
    );
    let adv = load("GHSA-c2qf-rxjj-qqgw.json");
    assert!(
        !adv.affected.iter().any(|a| a.is_for("npm", "Semver")),
        "npm names are exact"
    );
}

#[test]
fn crates_io() {
    check(
        "RUSTSEC-2023-0044.json",
        &[
            ("crates.io", "openssl", "0.9.24", false, None),
            ("crates.io", "openssl", "0.10.0", true, Some("0.10.55")),
            ("crates.io", "openssl", "0.10.54", true, Some("0.10.55")),
            (
                "crates.io",
                "openssl",
                "0.10.55-alpha.1",
                true,
                Some("0.10.55"),
            ),
            ("crates.io", "openssl", "0.10.55", false, None),
            ("crates.io", "openssl", "0.10.64", false, None),
        ],
    );
    let adv = load("RUSTSEC-2023-0044.json");
    assert!(
        adv.affected[0].severity.is_empty(),
        "null severity reads as empty"
    );
    assert!(adv.cve_ids().is_empty());
}

#[test]
fn go_several_intervals_in_one_range() {
    check(
        "GO-2023-2102.json",
        &[
            ("Go", "stdlib", "1.19.13", true, Some("1.20.10")),
            ("Go", "stdlib", "1.20.9", true, Some("1.20.10")),
            ("Go", "stdlib", "1.20.10", false, None),
            ("Go", "stdlib", "1.20.14", false, None),
            // 1.21.0-0 is below every 1.21.0 pre-release.
            ("Go", "stdlib", "1.21.0-rc.2", true, Some("1.21.3")),
            ("Go", "stdlib", "1.21.0", true, Some("1.21.3")),
            ("Go", "stdlib", "1.21.2", true, Some("1.21.3")),
            ("Go", "stdlib", "1.21.3", false, None),
            ("Go", "stdlib", "1.22.0", false, None),
            ("Go", "golang.org/x/net", "v0.16.0", true, Some("0.17.0")),
            (
                "Go",
                "golang.org/x/net",
                "0.0.0-20230101000000-abcdefabcdef",
                true,
                Some("0.17.0"),
            ),
            ("Go", "golang.org/x/net", "v0.17.0", false, None),
            ("Go", "golang.org/x/net", "0.17.0", false, None),
        ],
    );
    let adv = load("GO-2023-2102.json");
    assert_eq!(adv.cve_ids(), ["CVE-2023-39325"]);
}

#[test]
fn maven_qualifiers() {
    check(
        "GHSA-jfh8-c2jp-5v3q.json",
        &[
            (
                "Maven",
                "org.apache.logging.log4j:log4j-core",
                "2.0-alpha1",
                false,
                None,
            ),
            (
                "Maven",
                "org.apache.logging.log4j:log4j-core",
                "2.0-beta8",
                false,
                None,
            ),
            (
                "Maven",
                "org.apache.logging.log4j:log4j-core",
                "2.0-beta9",
                true,
                Some("2.3.1"),
            ),
            (
                "Maven",
                "org.apache.logging.log4j:log4j-core",
                "2.0-rc1",
                true,
                Some("2.3.1"),
            ),
            (
                "Maven",
                "org.apache.logging.log4j:log4j-core",
                "2.0",
                true,
                Some("2.3.1"),
            ),
            (
                "Maven",
                "org.apache.logging.log4j:log4j-core",
                "2.3",
                true,
                Some("2.3.1"),
            ),
            (
                "Maven",
                "org.apache.logging.log4j:log4j-core",
                "2.3.1",
                false,
                None,
            ),
            (
                "Maven",
                "org.apache.logging.log4j:log4j-core",
                "2.4",
                true,
                Some("2.12.2"),
            ),
            (
                "Maven",
                "org.apache.logging.log4j:log4j-core",
                "2.12.1",
                true,
                Some("2.12.2"),
            ),
            (
                "Maven",
                "org.apache.logging.log4j:log4j-core",
                "2.12.2",
                false,
                None,
            ),
            (
                "Maven",
                "org.apache.logging.log4j:log4j-core",
                "2.12.3",
                false,
                None,
            ),
            (
                "Maven",
                "org.apache.logging.log4j:log4j-core",
                "2.13.0",
                true,
                Some("2.15.0"),
            ),
            (
                "Maven",
                "org.apache.logging.log4j:log4j-core",
                "2.14.1",
                true,
                Some("2.15.0"),
            ),
            (
                "Maven",
                "org.apache.logging.log4j:log4j-core",
                "2.15.0-rc1",
                true,
                Some("2.15.0"),
            ),
            (
                "Maven",
                "org.apache.logging.log4j:log4j-core",
                "2.15.0",
                false,
                None,
            ),
            (
                "Maven",
                "org.apache.logging.log4j:log4j-core",
                "2.17.1",
                false,
                None,
            ),
        ],
    );
}

#[test]
fn last_affected_is_inclusive_and_unfixed() {
    check(
        "GHSA-last-affected.json",
        &[
            ("PyPI", "example-lib", "1.1.9", false, None),
            ("PyPI", "example-lib", "1.2.0", true, None),
            ("PyPI", "example-lib", "1.4.2", true, None),
            ("PyPI", "example-lib", "1.4.2.post1", false, None),
            ("PyPI", "example-lib", "1.4.3rc1", false, None),
            ("PyPI", "example-lib", "1.4.3", false, None),
            ("npm", "example-js", "1.0.4", true, Some("1.0.5")),
            ("npm", "example-js", "1.0.5", false, None),
            ("npm", "example-js", "2.0.0", true, None),
            ("npm", "example-js", "2.3.0-beta", true, None),
            ("npm", "example-js", "2.3.0", true, None),
            ("npm", "example-js", "2.3.1", false, None),
        ],
    );
}

#[test]
fn limit_events() {
    check(
        "OSV-limit.json",
        &[
            ("Go", "example.com/mod", "0.9.0", false, None),
            ("Go", "example.com/mod", "1.0.0", true, None),
            ("Go", "example.com/mod", "1.9.9", true, None),
            ("Go", "example.com/mod", "2.0.0-rc1", true, None),
            ("Go", "example.com/mod", "2.0.0", false, None),
            // An ecosystem we do not order: only the versions list counts; the GIT range
            // (whose events are commits) never matches a version.
            ("OSS-Fuzz", "example", "v1.1", true, None),
            ("OSS-Fuzz", "example", "v1.3", false, None),
            ("OSS-Fuzz", "example", "a1b2c3", false, None),
        ],
    );
    let adv = load("OSV-limit.json");
    assert_eq!(
        adv.affected[1].ranges[0].events,
        [
            Event::Introduced("a1b2c3".into()),
            Event::Limit("d4e5f6".into())
        ]
    );
    assert_eq!(
        adv.affected[1].ranges[0].repo.as_deref(),
        Some("https://example.com/example.git")
    );
}

#[test]
fn withdrawn_records_are_reported_as_withdrawn() {
    let adv = load("GHSA-withdrawn.json");
    assert!(adv.is_withdrawn());
    // Its ranges still read as affected, but a withdrawn record matches nothing.
    assert_eq!(adv.affected[0].affects("1.0.0"), Ok(true));
    assert_eq!(adv.matches("npm", "left-pad", "1.0.0"), Ok(None));
    assert_eq!(adv.withdrawn.as_deref(), Some("2023-05-01T12:00:00Z"));
    let withdrawn: Vec<String> = all_fixtures()
        .iter()
        .map(|(_, b)| parse_advisory(b).unwrap())
        .filter(Advisory::is_withdrawn)
        .map(|a| a.id)
        .collect();
    assert_eq!(withdrawn, ["GHSA-w4xx-withdrawn"]);
}

fn dsa_with(replace: &str, with: &str) -> Vec<u8> {
    let text = String::from_utf8(read("DSA-5504-1.json")).unwrap();
    assert!(text.contains(replace), "{replace}");
    text.replacen(replace, with, 1).into_bytes()
}

#[test]
fn truncated_json_is_a_syntax_error_naming_the_record() {
    let bytes = read("DSA-5504-1.json");
    let err = parse_advisory(&bytes[..bytes.len() / 2]).unwrap_err();
    assert!(matches!(err, OsvError::Json { .. }), "{err:?}");
    assert_eq!(err.id(), Some("DSA-5504-1"));
    assert!(err.to_string().contains("DSA-5504-1"), "{err}");
    let OsvError::Json { line, .. } = err else {
        unreachable!()
    };
    assert!(line > 1, "position reported: {line}");
}

#[test]
fn wrong_types_are_schema_errors_naming_the_record() {
    for (what, bytes) in [
        (
            "aliases as a string",
            dsa_with(r#""upstream": ["#, r#""aliases": "CVE-1", "upstream": ["#),
        ),
        (
            "modified missing",
            dsa_with(r#""modified": "2023-09-21T15:02:33.000000Z","#, ""),
        ),
        (
            "a number as a version",
            dsa_with(
                r#"{ "fixed": "1:9.16.44-1~deb11u1" }"#,
                r#"{ "fixed": 9.16 }"#,
            ),
        ),
        (
            "two keys in one event",
            dsa_with(
                r#"{ "introduced": "0" }"#,
                r#"{ "introduced": "0", "fixed": "1" }"#,
            ),
        ),
        ("an empty event", dsa_with(r#"{ "introduced": "0" }"#, "{}")),
        ("events missing", dsa_with(r#""events": ["#, r#""evts": ["#)),
        ("package without name", dsa_with(r#""name": "bind9","#, "")),
        (
            "affected not a list",
            dsa_with(r#""affected": ["#, r#""affected": 1, "x": ["#),
        ),
    ] {
        let err = parse_advisory(&bytes).unwrap_err();
        assert_eq!(err.id(), Some("DSA-5504-1"), "{what}: {err}");
        assert!(matches!(err, OsvError::Schema { .. }), "{what}: {err:?}");
        assert!(err.to_string().contains("\"DSA-5504-1\""), "{what}: {err}");
    }
    let err = parse_advisory(&dsa_with(r#"{ "introduced": "0" }"#, "{}")).unwrap_err();
    assert!(err.to_string().contains("exactly one"), "{err}");
}

#[test]
fn refusals_without_an_id() {
    for (what, bytes) in [
        ("empty", b"".to_vec()),
        ("array", b"[1, 2]".to_vec()),
        ("string", br#""DSA-1""#.to_vec()),
        ("no id", br#"{"modified": "2024-01-01T00:00:00Z"}"#.to_vec()),
        ("id not a string", br#"{"id": 5, "modified": "x"}"#.to_vec()),
        (
            "not UTF-8",
            b"{\"id\": \"\xff\xfe\", \"modified\": \"x\"}".to_vec(),
        ),
        ("deep nesting", "[".repeat(100_000).into_bytes()),
        ("deep nesting in a kept blob", {
            let mut v = br#"{"id": "X-1", "modified": "m", "database_specific": "#.to_vec();
            v.extend("[".repeat(10_000).into_bytes());
            v
        }),
    ] {
        let err = parse_advisory(&bytes).unwrap_err();
        if what == "deep nesting in a kept blob" {
            assert_eq!(err.id(), Some("X-1"), "{what}: {err}");
        } else {
            assert_eq!(err.id(), None, "{what}: {err}");
        }
        assert!(err.to_string().contains("OSV record"), "{what}: {err}");
    }
}

#[test]
fn invalid_ids_are_refused() {
    for id in ["", "DSA 5504", "DSA-\n1", &"X".repeat(200)] {
        let json = format!(
            r#"{{"id": {}, "modified": "2024-01-01T00:00:00Z"}}"#,
            serde_json_string(id)
        );
        let err = parse_advisory(json.as_bytes()).unwrap_err();
        assert!(matches!(err, OsvError::InvalidId { .. }), "{id:?}: {err:?}");
        assert!(err.id().is_some_and(|e| e.len() <= 128), "{err:?}");
    }
}

fn serde_json_string(s: &str) -> String {
    let escaped: String = s
        .chars()
        .map(|c| match c {
            '\n' => "\\n".to_owned(),
            '"' => "\\\"".to_owned(),
            c => c.to_string(),
        })
        .collect();
    format!("\"{escaped}\"")
}

#[test]
fn huge_input_is_refused_before_parsing() {
    let mut bytes = vec![b' '; MAX_RECORD_LEN + 1];
    bytes[0] = b'{';
    let err = parse_advisory(&bytes).unwrap_err();
    assert_eq!(
        err,
        OsvError::TooLarge {
            len: MAX_RECORD_LEN + 1
        }
    );
    assert_eq!(err.id(), None);
}

#[test]
fn long_details_are_cut_and_unknown_fields_ignored() {
    let details = "é".repeat(MAX_DETAILS_LEN); // twice the cap in bytes
    let json = format!(
        r#"{{"id": "X-2", "modified": "m", "details": "{details}", "summary": "{}",
            "some_future_field": {{"nested": [1, 2, {{"a": null}}]}},
            "affected": [{{"package": {{"ecosystem": "npm", "name": "p", "future": 1}},
                           "ranges": [{{"type": "SEMVER", "events": [{{"introduced": "0", "note": "x"}}]}},
                                      {{"type": "FUTURE_TYPE", "events": [{{"introduced": "zz"}}]}}]}}]}}"#,
        "s".repeat(5000)
    );
    let adv = parse_advisory(json.as_bytes()).unwrap();
    let d = adv.details.unwrap();
    assert!(
        d.len() <= MAX_DETAILS_LEN && d.len() > MAX_DETAILS_LEN - 8,
        "{}",
        d.len()
    );
    assert!(d.ends_with('…'));
    assert!(adv.summary.unwrap().len() <= picket_kb::osv::MAX_SUMMARY_LEN);
    let a = &adv.affected[0];
    assert_eq!(a.ranges[1].kind, RangeType::Other("FUTURE_TYPE".into()));
    // The unknown range type is skipped, not misread.
    assert_eq!(a.affects("1.0.0"), Ok(true));
    assert_eq!(a.fixed_version("1.0.0"), None);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn parse_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_advisory(&bytes);
    }

    /// Damaged real-shaped records reach deeper into the parser than random bytes; whatever
    /// parses must also evaluate without panicking.
    #[test]
    fn damaged_fixtures_never_panic(
        pick in any::<prop::sample::Index>(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
        version in "[0-9a-z.:~+_-]{0,20}",
    ) {
        let fixtures = all_fixtures();
        let (_, original) = &fixtures[pick.index(fixtures.len())];
        let mut bytes = original.clone();
        for (at, b) in edits {
            let i = at.index(bytes.len());
            bytes[i] = b;
        }
        if cut.index(4) == 0 {
            bytes.truncate(cut.index(bytes.len()));
        }
        if let Ok(adv) = parse_advisory(&bytes) {
            for a in &adv.affected {
                let _ = a.affects(&version);
                let _ = a.fixed_version(&version);
            }
        }
    }
}
