//! Matching an operating system's installed packages against the knowledge base.
//!
//! Why here and not in the scanner: which advisories apply to an installed package is the part
//! that decides false positives, and it is pure: given the OS, the running kernel, the package
//! list and a way to fetch the advisories of one (ecosystem, name), the answer follows. The rules:
//!
//! * **The exact release.** A host is matched against its distribution release's ecosystem only
//!   (`Debian:12`, `Ubuntu:22.04:LTS`, `Alpine:v3.20`, `Rocky Linux:9`): an advisory for
//!   Debian 11, for Ubuntu Pro (ESM) or for a backports stream says nothing about this host.
//!   Red Hat publishes one ecosystem per repository of a release
//!   (`Red Hat:enterprise_linux:9::baseos`, `...::appstream`); those are the same release and are
//!   all used, while EUS/AUS streams (`Red Hat:rhel_eus:...`) are not.
//! * **The name the feed uses.** Debian, Ubuntu and Alpine advisories name *source* packages and
//!   give source versions, so a binary package is looked up by its source name and source
//!   version (a binary named like some source package is not thereby that package). The Red Hat
//!   family names binary rpms with `epoch:version-release`.
//! * **The running kernel.** Of the installed kernel packages only the running one is matched:
//!   an installed but not booted kernel is not exposed, and an old booted one is. A newer
//!   installed kernel than the running one is reported, since only a reboot activates its fixes.

use crate::record::{index_name, KbPackage};
use crate::version::{self, Ecosystem, VersionError};
use picket_model::{OsRelease, Package};
use std::cmp::Ordering;
use std::collections::HashMap;

/// The package family of a distribution: decides names and versions looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Debian,
    Ubuntu,
    Alpine,
    /// Red Hat Enterprise Linux and its rebuilds.
    Rpm,
}

/// Why a host's packages cannot be matched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DistroError {
    #[error("operating system {id:?} {version:?} is not one the knowledge base covers (Debian, Ubuntu, Alpine, Red Hat Enterprise Linux, Rocky Linux, AlmaLinux)")]
    Unsupported { id: String, version: String },
    #[error("operating system {id:?} gives no usable VERSION_ID ({version:?}), so its release is unknown")]
    NoRelease { id: String, version: String },
}

/// The release ecosystems of a host, and how its packages are looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    pub family: Family,
    /// The ecosystem packages are reported under (`Debian:12`).
    pub primary: String,
    /// Every ecosystem looked up (the primary, plus Red Hat's per-repository streams).
    pub ecosystems: Vec<String>,
}

/// The release of `os`. `known` lists the ecosystems the knowledge base holds; it is consulted
/// only for Red Hat, whose per-repository ecosystem names are not derivable from os-release.
pub fn release_of(os: &OsRelease, known: &[String]) -> Result<Release, DistroError> {
    let id = os.id.to_ascii_lowercase();
    let version = os.version_id.trim();
    let no_release = || DistroError::NoRelease {
        id: os.id.clone(),
        version: os.version_id.clone(),
    };
    let major = version
        .split('.')
        .next()
        .filter(|m| !m.is_empty() && m.bytes().all(|b| b.is_ascii_digit()));
    let (family, primary) = match id.as_str() {
        "debian" => (
            Family::Debian,
            format!("Debian:{}", major.ok_or_else(no_release)?),
        ),
        "ubuntu" => {
            if version.is_empty() {
                return Err(no_release());
            }
            // OSV names LTS releases `Ubuntu:22.04:LTS`, the others `Ubuntu:23.10`.
            let lts = os.name.contains("LTS");
            (
                Family::Ubuntu,
                if lts {
                    format!("Ubuntu:{version}:LTS")
                } else {
                    format!("Ubuntu:{version}")
                },
            )
        }
        "alpine" => {
            let mut parts = version.split('.');
            let (Some(a), Some(b)) = (parts.next(), parts.next()) else {
                return Err(no_release());
            };
            (Family::Alpine, format!("Alpine:v{a}.{b}"))
        }
        "rocky" => (
            Family::Rpm,
            format!("Rocky Linux:{}", major.ok_or_else(no_release)?),
        ),
        "almalinux" => (
            Family::Rpm,
            format!("AlmaLinux:{}", major.ok_or_else(no_release)?),
        ),
        "rhel" => {
            let major = major.ok_or_else(no_release)?;
            let prefix = format!("Red Hat:enterprise_linux:{major}::");
            let mut ecosystems: Vec<String> = known
                .iter()
                .filter(|e| e.starts_with(&prefix))
                .cloned()
                .collect();
            ecosystems.sort();
            let primary = format!("Red Hat:enterprise_linux:{major}");
            if ecosystems.is_empty() {
                ecosystems.push(primary.clone());
            }
            return Ok(Release {
                family: Family::Rpm,
                primary,
                ecosystems,
            });
        }
        _ => {
            return Err(DistroError::Unsupported {
                id: os.id.clone(),
                version: os.version_id.clone(),
            })
        }
    };
    Ok(Release {
        family,
        ecosystems: vec![primary.clone()],
        primary,
    })
}

/// The ordering of a family's versions.
fn ordering(family: Family) -> Ecosystem {
    match family {
        Family::Debian | Family::Ubuntu => Ecosystem::Debian,
        Family::Alpine => Ecosystem::Alpine,
        Family::Rpm => Ecosystem::Rpm,
    }
}

/// Kernel packages and how they relate to the running kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelState {
    /// Indexes of installed kernel packages that are not the running kernel (not matched).
    pub not_running: Vec<usize>,
    /// The running kernel's package, when one is installed.
    pub running: Option<usize>,
    /// The newest installed kernel package when it is newer than the running one.
    pub newer_installed: Option<usize>,
}

/// Whether a package is an installed kernel image, and the kernel release (`uname -r`) it boots.
fn kernel_release_of(family: Family, pkg: &Package) -> Option<String> {
    match family {
        // linux-image-6.1.0-18-amd64, linux-image-unsigned-6.5.0-14-generic; not the meta
        // packages (linux-image-amd64), whose names hold no release.
        Family::Debian | Family::Ubuntu => {
            let rest = pkg
                .name
                .strip_prefix("linux-image-unsigned-")
                .or_else(|| pkg.name.strip_prefix("linux-image-"))?;
            rest.starts_with(|c: char| c.is_ascii_digit())
                .then(|| rest.to_owned())
        }
        // kernel-core 5.14.0-427.13.1.el9_4 x86_64 boots 5.14.0-427.13.1.el9_4.x86_64.
        Family::Rpm => {
            if !matches!(pkg.name.as_str(), "kernel" | "kernel-core") {
                return None;
            }
            let evr = pkg
                .version
                .split_once(':')
                .map_or(pkg.version.as_str(), |(_, v)| v);
            Some(format!("{evr}.{}", pkg.arch))
        }
        Family::Alpine => {
            // linux-lts 6.6.58-r0 boots 6.6.58-0-lts.
            let flavor = pkg.name.strip_prefix("linux-")?;
            if flavor.contains('-') || flavor == "firmware" || flavor == "headers" {
                return None;
            }
            let (ver, rel) = pkg.version.rsplit_once("-r")?;
            Some(format!("{ver}-{rel}-{flavor}"))
        }
    }
}

/// Which kernel packages are running, installed only, or newer than the running one.
pub fn kernel_state(family: Family, packages: &[Package], running: &str) -> KernelState {
    let eco = ordering(family);
    let mut state = KernelState {
        not_running: Vec::new(),
        running: None,
        newer_installed: None,
    };
    let mut newest: Option<usize> = None;
    for (i, pkg) in packages.iter().enumerate() {
        let Some(release) = kernel_release_of(family, pkg) else {
            continue;
        };
        if release == running {
            state.running = Some(i);
        } else {
            state.not_running.push(i);
        }
        let newer = newest.is_none_or(|n| {
            version::compare(eco, &pkg.version, &packages[n].version) == Ok(Ordering::Greater)
        });
        if newer {
            newest = Some(i);
        }
    }
    if let (Some(r), Some(n)) = (state.running, newest) {
        if version::compare(eco, &packages[n].version, &packages[r].version)
            == Ok(Ordering::Greater)
        {
            state.newer_installed = Some(n);
        }
    }
    state
}

/// The kernel source a kernel image was built from, as advisories name it. Debian has one,
/// `linux` (signed in `linux-signed-ARCH`). Ubuntu has one per kernel line — `linux`,
/// `linux-hwe-6.5`, `linux-aws`... — each signed in the same name with `-signed` inserted
/// (`linux-signed-hwe-6.5`), so the line is kept and the signing removed.
fn kernel_source(family: Family, source_name: &str) -> String {
    match family {
        Family::Ubuntu => match source_name.strip_prefix("linux-signed") {
            Some(rest) if rest.is_empty() || rest.starts_with('-') => format!("linux{rest}"),
            _ if source_name.starts_with("linux") => source_name.to_owned(),
            _ => "linux".to_owned(),
        },
        _ => "linux".to_owned(),
    }
}

/// The (name, version) under which a package is looked up in its family's advisories.
pub fn lookup_key(family: Family, pkg: &Package) -> (String, String) {
    match family {
        Family::Debian | Family::Ubuntu => {
            // Kernel images are built by a `linux*` source but shipped from a signing source
            // whose own version differs (Debian's `linux-signed-amd64` 6.1.76+1 for `linux`
            // 6.1.76-1): advisories name the kernel source, and the image carries its version.
            if kernel_release_of(family, pkg).is_some() {
                return (kernel_source(family, &pkg.source_name), pkg.version.clone());
            }
            let name = if pkg.source_name.is_empty() {
                &pkg.name
            } else {
                &pkg.source_name
            };
            let ver = if pkg.source_version.is_empty() {
                &pkg.version
            } else {
                &pkg.source_version
            };
            (name.clone(), ver.clone())
        }
        Family::Alpine => {
            let name = if pkg.source_name.is_empty() {
                &pkg.name
            } else {
                &pkg.source_name
            };
            (name.clone(), pkg.version.clone())
        }
        Family::Rpm => (pkg.name.clone(), pkg.version.clone()),
    }
}

/// The advisories the knowledge base holds for one (ecosystem, index name): (advisory id,
/// what it says about the package).
pub type Candidates = Vec<(String, KbPackage)>;

/// Per (ecosystem, name, version) looked up: each matching advisory's id and fix, or why it
/// could not be evaluated.
type Verdicts = Vec<Result<(String, Option<String>), (String, VersionError)>>;

/// One affected package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// Index into the package list.
    pub package: usize,
    pub advisory: String,
    /// The ecosystem the advisory was found under.
    pub ecosystem: String,
    /// The name and version compared (the source's, for source-named feeds).
    pub looked_up: (String, String),
    /// `None`: no fix is known.
    pub fixed: Option<String>,
}

/// An advisory that could not be evaluated for a package (a version the ordering rejects).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unevaluated {
    pub package: usize,
    pub advisory: String,
    pub error: VersionError,
}

/// The outcome of matching one host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostMatches {
    pub hits: Vec<Hit>,
    pub unevaluated: Vec<Unevaluated>,
    pub kernel: KernelState,
}

/// Matches `packages` of a host of `release` running kernel `running_kernel`. `fetch(ecosystem,
/// index name)` returns the (advisory id, package record) pairs the knowledge base holds; it is
/// called once per distinct (ecosystem, name) — binaries of one source share the lookup.
pub fn match_host<E>(
    release: &Release,
    running_kernel: &str,
    packages: &[Package],
    fetch: &mut dyn FnMut(&str, &str) -> Result<Candidates, E>,
) -> Result<HostMatches, E> {
    match_host_cached(
        release,
        running_kernel,
        packages,
        fetch,
        &mut MatchCache::default(),
    )
}

/// What matching has looked up and decided, kept across the hosts of a fleet: hosts of one
/// release mostly run the same package versions, so each (ecosystem, name, version) is decided
/// once per fleet rather than once per host.
#[derive(Debug, Default)]
pub struct MatchCache {
    candidates: HashMap<(String, String), Candidates>,
    /// Per (ecosystem, name, version): the verdicts, shared by binaries of one source.
    verdicts: HashMap<(String, String, String), Verdicts>,
}

/// [`match_host`] with a cache shared by several hosts.
pub fn match_host_cached<E>(
    release: &Release,
    running_kernel: &str,
    packages: &[Package],
    fetch: &mut dyn FnMut(&str, &str) -> Result<Candidates, E>,
    shared: &mut MatchCache,
) -> Result<HostMatches, E> {
    let kernel = kernel_state(release.family, packages, running_kernel);
    let MatchCache {
        candidates: cache,
        verdicts,
    } = shared;
    let mut out = HostMatches {
        hits: Vec::new(),
        unevaluated: Vec::new(),
        kernel,
    };
    for (i, pkg) in packages.iter().enumerate() {
        if out.kernel.not_running.contains(&i) {
            continue;
        }
        let (name, ver) = lookup_key(release.family, pkg);
        for eco in &release.ecosystems {
            let key = (eco.clone(), name.clone(), ver.clone());
            if !verdicts.contains_key(&key) {
                let idx = (eco.clone(), index_name(eco, &name));
                if !cache.contains_key(&idx) {
                    let found = fetch(&idx.0, &idx.1)?;
                    cache.insert(idx.clone(), found);
                }
                let mut v = Vec::new();
                for (id, kbp) in cache.get(&idx).into_iter().flatten() {
                    match kbp.matches(&ver) {
                        Ok(Some(m)) => v.push(Ok((id.clone(), m.fixed))),
                        Ok(None) => {}
                        Err(e) => v.push(Err((id.clone(), e))),
                    }
                }
                verdicts.insert(key.clone(), v);
            }
            for verdict in verdicts.get(&key).into_iter().flatten() {
                match verdict {
                    Ok((id, fixed)) => out.hits.push(Hit {
                        package: i,
                        advisory: id.clone(),
                        ecosystem: eco.clone(),
                        looked_up: (name.clone(), ver.clone()),
                        fixed: fixed.clone(),
                    }),
                    Err((id, e)) => out.unevaluated.push(Unevaluated {
                        package: i,
                        advisory: id.clone(),
                        error: e.clone(),
                    }),
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::osv::parse_advisory;
    use crate::record::from_osv;

    fn os(id: &str, version: &str, name: &str) -> OsRelease {
        OsRelease {
            id: id.into(),
            version_id: version.into(),
            name: name.into(),
            ..OsRelease::default()
        }
    }

    fn pkg(name: &str, version: &str, source: &str, source_version: &str) -> Package {
        Package {
            name: name.into(),
            version: version.into(),
            arch: "amd64".into(),
            source_name: source.into(),
            source_version: source_version.into(),
            ecosystem: String::new(),
        }
    }

    #[test]
    fn releases_are_exact() {
        let r = |o: OsRelease| release_of(&o, &[]).map(|r| r.ecosystems);
        assert_eq!(
            r(os("debian", "12", "Debian GNU/Linux 12 (bookworm)")),
            Ok(vec!["Debian:12".into()])
        );
        assert_eq!(
            r(os("ubuntu", "22.04", "Ubuntu 22.04.4 LTS")),
            Ok(vec!["Ubuntu:22.04:LTS".into()])
        );
        assert_eq!(
            r(os("ubuntu", "23.10", "Ubuntu 23.10")),
            Ok(vec!["Ubuntu:23.10".into()])
        );
        assert_eq!(
            r(os("alpine", "3.20.3", "Alpine Linux v3.20")),
            Ok(vec!["Alpine:v3.20".into()])
        );
        assert_eq!(
            r(os("rocky", "9.4", "Rocky Linux 9.4 (Blue Onyx)")),
            Ok(vec!["Rocky Linux:9".into()])
        );
        assert_eq!(
            r(os("almalinux", "8.10", "AlmaLinux 8.10")),
            Ok(vec!["AlmaLinux:8".into()])
        );
        assert!(matches!(
            r(os("debian", "", "Debian GNU/Linux trixie/sid")),
            Err(DistroError::NoRelease { .. })
        ));
        assert!(matches!(
            r(os("gentoo", "2.15", "Gentoo")),
            Err(DistroError::Unsupported { .. })
        ));
        let known = [
            "Red Hat:enterprise_linux:9::appstream".to_owned(),
            "Red Hat:enterprise_linux:9::baseos".to_owned(),
            "Red Hat:rhel_eus:9.2::baseos".to_owned(),
            "Red Hat:enterprise_linux:8::baseos".to_owned(),
        ];
        assert_eq!(
            release_of(&os("rhel", "9.4", "Red Hat Enterprise Linux 9.4"), &known)
                .map(|r| r.ecosystems),
            Ok(vec![known[0].clone(), known[1].clone()])
        );
    }

    #[test]
    fn only_the_running_kernel_is_matched_and_a_newer_one_is_noticed() {
        let pkgs = vec![
            pkg(
                "linux-image-6.1.0-17-amd64",
                "6.1.69-1",
                "linux-signed-amd64",
                "6.1.69+1",
            ),
            pkg(
                "linux-image-6.1.0-18-amd64",
                "6.1.76-1",
                "linux-signed-amd64",
                "6.1.76+1",
            ),
            pkg(
                "linux-image-amd64",
                "6.1.76-1",
                "linux-signed-amd64",
                "6.1.76+1",
            ),
            pkg("bash", "5.2.15-2+b2", "bash", "5.2.15-2"),
        ];
        let st = kernel_state(Family::Debian, &pkgs, "6.1.0-17-amd64");
        assert_eq!(st.running, Some(0));
        assert_eq!(st.not_running, vec![1]);
        assert_eq!(st.newer_installed, Some(1));
        assert_eq!(
            lookup_key(Family::Debian, &pkgs[0]),
            ("linux".into(), "6.1.69-1".into())
        );
        assert_eq!(
            lookup_key(Family::Debian, &pkgs[3]),
            ("bash".into(), "5.2.15-2".into())
        );
        let ubuntu = [
            pkg(
                "linux-image-6.5.0-14-generic",
                "6.5.0-14.14~22.04.1",
                "linux-signed-hwe-6.5",
                "6.5.0-14.14~22.04.1",
            ),
            pkg(
                "linux-image-5.15.0-91-generic",
                "5.15.0-91.101",
                "linux-signed",
                "5.15.0-91.101",
            ),
            pkg(
                "linux-image-6.2.0-1018-aws",
                "6.2.0-1018.18~22.04.1",
                "linux-aws-6.2",
                "6.2.0-1018.18~22.04.1",
            ),
        ];
        let keys: Vec<String> = ubuntu
            .iter()
            .map(|p| lookup_key(Family::Ubuntu, p).0)
            .collect();
        assert_eq!(keys, ["linux-hwe-6.5", "linux", "linux-aws-6.2"]);
        let mut rpm = pkg("kernel-core", "5.14.0-427.13.1.el9_4", "kernel", "");
        rpm.arch = "x86_64".into();
        assert_eq!(
            kernel_release_of(Family::Rpm, &rpm).as_deref(),
            Some("5.14.0-427.13.1.el9_4.x86_64")
        );
    }

    #[test]
    fn source_names_binaries_share_one_lookup_and_other_releases_never_match() {
        let adv = |id: &str, eco: &str, name: &str, fixed: &str| {
            let json = format!(
                r#"{{"id":"{id}","modified":"2024-01-01T00:00:00Z","affected":[{{"package":{{"ecosystem":"{eco}","name":"{name}"}},
                "ranges":[{{"type":"ECOSYSTEM","events":[{{"introduced":"0"}},{{"fixed":"{fixed}"}}]}}]}}]}}"#
            );
            let a = parse_advisory(json.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
            let (kb, pkgs) = from_osv(&a).unwrap_or_else(|e| panic!("{e}"));
            (
                kb.id,
                pkgs.into_iter()
                    .next()
                    .unwrap_or_else(|| panic!("no package")),
            )
        };
        let kb = [
            adv("A-1", "Debian:12", "openssl", "3.0.11-1~deb12u2"),
            adv("A-2", "Debian:11", "openssl", "9.9"),
            adv("A-3", "Debian:12", "libssl3", "9.9"),
        ];
        let pkgs = vec![
            pkg("libssl3", "3.0.11-1~deb12u1", "openssl", "3.0.11-1~deb12u1"),
            pkg("openssl", "3.0.11-1~deb12u1", "openssl", "3.0.11-1~deb12u1"),
        ];
        let release =
            release_of(&os("debian", "12", "Debian"), &[]).unwrap_or_else(|e| panic!("{e}"));
        let mut calls = 0;
        let m: Result<HostMatches, ()> = match_host(&release, "6.1.0", &pkgs, &mut |eco, name| {
            calls += 1;
            Ok(kb
                .iter()
                .filter(|(_, p)| p.ecosystem == eco && p.name == name)
                .cloned()
                .collect())
        });
        let m = m.unwrap_or_else(|()| panic!("fetch failed"));
        assert_eq!(calls, 1);
        let got: Vec<(usize, &str, Option<&str>)> = m
            .hits
            .iter()
            .map(|h| (h.package, h.advisory.as_str(), h.fixed.as_deref()))
            .collect();
        assert_eq!(
            got,
            vec![
                (0, "A-1", Some("3.0.11-1~deb12u2")),
                (1, "A-1", Some("3.0.11-1~deb12u2"))
            ]
        );
    }
}
