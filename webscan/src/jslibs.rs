//! Outdated JavaScript libraries, recognised from signatures kept as data
//! (`webscan/data/jslibs.json`, compiled in; a newer copy can be passed in by the knowledge
//! base), so new advisories need no code change.

use regex::Regex;
use serde::Deserialize;

/// The signatures shipped with this version.
pub const BUILTIN: &str = include_str!("../data/jslibs.json");

#[derive(Debug, Clone, Deserialize)]
struct File {
    libraries: Vec<LibraryDef>,
}

#[derive(Debug, Clone, Deserialize)]
struct LibraryDef {
    name: String,
    filename: String,
    content: Vec<String>,
    advisories: Vec<Advisory>,
}

/// One advisory's affected range.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Advisory {
    pub introduced: String,
    pub fixed: String,
    pub cve: Vec<String>,
    pub severity: String,
    pub summary: String,
}

#[derive(Debug)]
struct Library {
    name: String,
    filename: Regex,
    content: Vec<Regex>,
    advisories: Vec<Advisory>,
}

/// The compiled signature set.
#[derive(Debug)]
pub struct Signatures {
    libs: Vec<Library>,
}

/// A library found at a version with the advisories that apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outdated {
    pub library: String,
    pub version: String,
    pub advisories: Vec<Advisory>,
}

fn build(p: &str) -> Result<Regex, String> {
    regex::RegexBuilder::new(p)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| format!("{p}: {e}"))
}

impl Signatures {
    /// Compiles a signature file.
    pub fn parse(json: &str) -> Result<Signatures, String> {
        let f: File = serde_json::from_str(json).map_err(|e| e.to_string())?;
        let mut libs = Vec::new();
        for l in f.libraries {
            libs.push(Library {
                filename: build(&format!("(?i){}", l.filename))?,
                content: l
                    .content
                    .iter()
                    .map(|c| build(c))
                    .collect::<Result<_, _>>()?,
                name: l.name,
                advisories: l.advisories,
            });
        }
        Ok(Signatures { libs })
    }

    /// The built-in signatures.
    pub fn builtin() -> Signatures {
        Signatures::parse(BUILTIN).unwrap_or(Signatures { libs: Vec::new() })
    }

    /// The library a script is (by its URL, else its first 4 KiB), if outdated.
    pub fn check(&self, script_url: &str, content: Option<&str>) -> Option<Outdated> {
        let file = script_url.rsplit('/').next().unwrap_or_default();
        let file = file.split('?').next().unwrap_or_default();
        for lib in &self.libs {
            let mut version = lib
                .filename
                .captures(file)
                .and_then(|c| c.get(1))
                .map(|m| m.as_str().to_owned());
            if version.is_none() {
                if let Some(text) = content {
                    let head: String = text.chars().take(4096).collect();
                    version = lib
                        .content
                        .iter()
                        .find_map(|r| r.captures(&head).and_then(|c| c.get(1)))
                        .map(|m| m.as_str().to_owned());
                }
            }
            let Some(v) = version else { continue };
            let advisories: Vec<Advisory> = lib
                .advisories
                .iter()
                .filter(|a| {
                    compare(&v, &a.introduced) != std::cmp::Ordering::Less
                        && compare(&v, &a.fixed) == std::cmp::Ordering::Less
                })
                .cloned()
                .collect();
            if advisories.is_empty() {
                return None;
            }
            return Some(Outdated {
                library: lib.name.clone(),
                version: v,
                advisories,
            });
        }
        None
    }
}

/// Numeric dotted-version order (`1.12.4` > `1.9.1`; missing parts are 0).
pub fn compare(a: &str, b: &str) -> std::cmp::Ordering {
    let parse = |s: &str| -> Vec<u64> {
        s.split('.')
            .map(|p| {
                p.chars()
                    .take_while(char::is_ascii_digit)
                    .collect::<String>()
                    .parse()
                    .unwrap_or(0)
            })
            .collect()
    };
    let (mut x, mut y) = (parse(a), parse(b));
    let n = x.len().max(y.len());
    x.resize(n, 0);
    y.resize(n, 0);
    x.cmp(&y)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_signatures_compile_and_match_real_versions() {
        let s = Signatures::parse(BUILTIN).unwrap_or_else(|e| panic!("{e}"));
        let o = s
            .check("/static/js/jquery-1.8.3.min.js", None)
            .unwrap_or_else(|| panic!("not found"));
        assert_eq!(
            (o.library.as_str(), o.version.as_str()),
            ("jquery", "1.8.3")
        );
        let cves: Vec<_> = o.advisories.iter().flat_map(|a| a.cve.clone()).collect();
        assert!(
            cves.contains(&"CVE-2012-6708".to_owned())
                && cves.contains(&"CVE-2020-11022".to_owned())
        );
        assert!(s.check("/js/jquery-3.7.1.min.js", None).is_none());
        let c = s.check(
            "/js/lib.js",
            Some("/*! jQuery v3.4.1 | (c) JS Foundation */"),
        );
        assert_eq!(c.map(|o| o.version), Some("3.4.1".into()));
        assert!(s.check("/js/app.js", Some("console.log(1)")).is_none());
        assert_eq!(compare("1.12.4", "1.9.1"), std::cmp::Ordering::Greater);
        assert_eq!(compare("3.5", "3.5.0"), std::cmp::Ordering::Equal);
    }
}
