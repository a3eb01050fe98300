//! The knowledge base's part of the store: advisories imported from OSV, indexed for lookup by
//! (ecosystem, package).
//!
//! One sled tree, `kb`, with three kinds of key:
//! - `a` ID → [`KbAdvisory`] (every advisory ever imported, withdrawn ones too);
//! - `p` ECOSYSTEM NUL NAME NUL ID → [`KbPackage`] (what advisory ID says about that package;
//!   only for advisories that are not withdrawn) — a host's package is matched with one prefix
//!   scan that reads nothing about other packages;
//! - `m` `status` → [`KbMeta`] (counts per ecosystem and the age of the data).
//!
//! Why one tree: an import is applied as one sled batch, which sled applies atomically (also
//! across a crash), and batches are per tree. So a killed import leaves the previous knowledge
//! base exactly as it was, and a finished one is all there — never an advisory without its index
//! entries or counts that disagree with the records. The price is that the whole change set of
//! an import is held in memory until it is applied: a few hundred bytes per changed advisory.

use super::{decode, encode, sled_err, Result, Store, StoreError};
use picket_kb::record::{self, KbAdvisory, KbPackage};
use picket_kb::source::{self, SourceRecord};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::time::Instant;

pub(super) const TREE_KB: &str = "kb";
const META_KEY: &[u8] = b"mstatus";
/// At most this many per-record errors are kept for the report; the rest are only counted.
const MAX_REPORTED_ERRORS: usize = 1000;

/// Counts and age of the knowledge base.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KbMeta {
    pub ecosystems: BTreeMap<String, EcosystemMeta>,
    /// When the last import that changed anything finished (RFC 3339), empty before the first.
    pub imported_at: String,
    pub advisories: u64,
    pub withdrawn: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EcosystemMeta {
    /// Advisories (not withdrawn) with at least one package in this ecosystem.
    pub advisories: u64,
    /// The latest `modified` of this ecosystem's advisories: how fresh the feed is.
    pub newest_modified: String,
    /// When records of this ecosystem were last imported (changed or not).
    pub imported_at: String,
}

/// What one import source contributed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SourceReport {
    pub path: String,
    pub records: u64,
    pub added: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub withdrawn: u64,
    pub malformed: u64,
}

/// A record that was skipped, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportIssue {
    pub path: String,
    pub entry: Option<String>,
    pub id: Option<String>,
    pub error: String,
}

/// The outcome of `kb import`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    pub sources: Vec<SourceReport>,
    pub added: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub withdrawn: u64,
    pub malformed: u64,
    /// The first [`MAX_REPORTED_ERRORS`] skipped records.
    pub errors: Vec<ImportIssue>,
    pub advisories: u64,
    pub duration_ms: u64,
}

/// Why an import did not happen at all (nothing was changed).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    /// A source could not be read (missing path, unreadable or damaged archive).
    #[error("{0}")]
    Source(#[from] source::SourceError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One advisory waiting to be written.
struct Pending {
    modified: String,
    advisory: KbAdvisory,
    packages: Vec<KbPackage>,
    /// Index into the report's sources.
    source: usize,
}

fn adv_key(id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + id.len());
    k.push(b'a');
    k.extend_from_slice(id.as_bytes());
    k
}

fn pkg_prefix(ecosystem: &str, name: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(3 + ecosystem.len() + name.len());
    k.push(b'p');
    k.extend_from_slice(ecosystem.as_bytes());
    k.push(0);
    k.extend_from_slice(name.as_bytes());
    k.push(0);
    k
}

fn pkg_key(ecosystem: &str, name: &str, id: &str) -> Vec<u8> {
    let mut k = pkg_prefix(ecosystem, name);
    k.extend_from_slice(id.as_bytes());
    k
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

impl Store {
    fn kb_tree(&self) -> Result<&sled::Tree> {
        Ok(&self.t()?.kb)
    }

    /// The knowledge base's counts (empty before the first import).
    pub fn kb_meta(&self) -> Result<KbMeta> {
        match self
            .kb_tree()?
            .get(META_KEY)
            .map_err(|e| sled_err("read", &self.gen_path(), e))?
        {
            Some(bytes) => decode(TREE_KB, "mstatus", &bytes),
            None => Ok(KbMeta::default()),
        }
    }

    /// One stored advisory.
    pub fn kb_advisory(&self, id: &str) -> Result<Option<KbAdvisory>> {
        match self
            .kb_tree()?
            .get(adv_key(id))
            .map_err(|e| sled_err("read", &self.gen_path(), e))?
        {
            Some(bytes) => Ok(Some(decode(TREE_KB, &format!("a{id}"), &bytes)?)),
            None => Ok(None),
        }
    }

    /// The advisories naming package `name` (index form, see [`record::index_name`]) in exactly
    /// `ecosystem`, with what each says about it.
    pub fn kb_candidates(&self, ecosystem: &str, name: &str) -> Result<Vec<(String, KbPackage)>> {
        let prefix = pkg_prefix(ecosystem, name);
        let mut out = Vec::new();
        for item in self.kb_tree()?.scan_prefix(&prefix) {
            let (k, v) = item.map_err(|e| sled_err("read", &self.gen_path(), e))?;
            let id = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
            let pkg: KbPackage = decode(TREE_KB, &format!("p{ecosystem}/{name}/{id}"), &v)?;
            out.push((id, pkg));
        }
        Ok(out)
    }

    /// Imports every OSV record under `paths` (files, directories, zip archives).
    ///
    /// Idempotent: a record whose stored form is unchanged is not rewritten. When the same id
    /// appears twice, the later `modified` wins. Malformed records are skipped and reported. A
    /// source that cannot be read at all aborts the import before anything is written, and the
    /// whole change set is applied as one atomic batch, then flushed: an import either happened
    /// entirely or not at all, whenever the process dies.
    pub fn kb_import(
        &mut self,
        paths: &[PathBuf],
        progress: &mut dyn FnMut(u64),
    ) -> std::result::Result<ImportReport, ImportError> {
        let started = Instant::now();
        let mut report = ImportReport::default();
        let mut pending: HashMap<String, Pending> = HashMap::new();
        let mut seen_ecosystems: BTreeMap<String, String> = BTreeMap::new();
        let mut read = 0u64;
        for path in paths {
            let src = report.sources.len();
            report.sources.push(SourceReport {
                path: path.display().to_string(),
                ..SourceReport::default()
            });
            let mut issues = Vec::new();
            let errors = source::read_records(path, &mut |rec: SourceRecord| {
                read += 1;
                if read % 4096 == 0 {
                    progress(read);
                }
                let s = &mut report.sources[src];
                s.records += 1;
                let issue = |id: Option<String>, error: String| ImportIssue {
                    path: rec.origin.path.display().to_string(),
                    entry: rec.origin.entry.clone(),
                    id,
                    error,
                };
                let adv = match rec.advisory {
                    Ok(a) => a,
                    Err(e) => {
                        s.malformed += 1;
                        issues.push(issue(e.id().map(str::to_owned), e.to_string()));
                        return;
                    }
                };
                let (kb, pkgs) = match record::from_osv(&adv) {
                    Ok(x) => x,
                    Err(e) => {
                        s.malformed += 1;
                        issues.push(issue(Some(adv.id.clone()), e.to_string()));
                        return;
                    }
                };
                for p in &pkgs {
                    let newest = seen_ecosystems.entry(p.ecosystem.clone()).or_default();
                    if adv.modified > *newest {
                        newest.clone_from(&adv.modified);
                    }
                }
                match pending.get(&adv.id) {
                    Some(old) if old.modified > adv.modified => {}
                    _ => {
                        pending.insert(
                            adv.id.clone(),
                            Pending {
                                modified: adv.modified.clone(),
                                advisory: kb,
                                packages: pkgs,
                                source: src,
                            },
                        );
                    }
                }
            });
            if let Some(e) = errors.into_iter().next() {
                return Err(ImportError::Source(e));
            }
            report.malformed += report.sources[src].malformed;
            for i in issues {
                if report.errors.len() < MAX_REPORTED_ERRORS {
                    report.errors.push(i);
                }
            }
        }
        progress(read);

        // Compare with what is stored and build the batch.
        let path = self.gen_path();
        let tree = self.kb_tree()?.clone();
        let mut meta = self.kb_meta()?;
        let mut batch = sled::Batch::default();
        let mut ids: Vec<&String> = pending.keys().collect();
        ids.sort();
        let stamp = now_rfc3339();
        for id in ids {
            let Some(p) = pending.get(id) else { continue };
            let new_bytes = encode(&format!("advisory {id}"), &p.advisory)?;
            let old_bytes = tree
                .get(adv_key(id))
                .map_err(|e| sled_err("read", &path, e))?;
            let s = &mut report.sources[p.source];
            let old: Option<KbAdvisory> = match &old_bytes {
                Some(b) if b.as_ref() == new_bytes.as_slice() => {
                    // Byte-identical stored form; the package records follow from the same
                    // record, so nothing to write.
                    s.unchanged += 1;
                    report.unchanged += 1;
                    continue;
                }
                // A stored record that does not decode is an error, not something to overwrite:
                // its index entries could not be cleaned up.
                Some(b) => Some(decode(TREE_KB, &format!("a{id}"), b)?),
                None => None,
            };
            if old_bytes.is_some() {
                s.updated += 1;
                report.updated += 1;
            } else {
                s.added += 1;
                report.added += 1;
            }
            if p.advisory.withdrawn {
                s.withdrawn += 1;
                report.withdrawn += 1;
            }
            // Counts: out with the old, in with the new.
            let ecos = |a: &KbAdvisory| -> BTreeSet<String> {
                if a.withdrawn {
                    BTreeSet::new()
                } else {
                    a.packages.iter().map(|(e, _)| e.clone()).collect()
                }
            };
            if let Some(o) = &old {
                for e in ecos(o) {
                    if let Some(m) = meta.ecosystems.get_mut(&e) {
                        m.advisories = m.advisories.saturating_sub(1);
                    }
                }
                if o.withdrawn {
                    meta.withdrawn = meta.withdrawn.saturating_sub(1);
                } else {
                    meta.advisories = meta.advisories.saturating_sub(1);
                }
                for (e, n) in &o.packages {
                    batch.remove(pkg_key(e, n, id));
                }
            }
            for e in ecos(&p.advisory) {
                meta.ecosystems.entry(e).or_default().advisories += 1;
            }
            if p.advisory.withdrawn {
                meta.withdrawn += 1;
            } else {
                meta.advisories += 1;
                for pkg in &p.packages {
                    let name = record::index_name(&pkg.ecosystem, &pkg.name);
                    let bytes = encode(&format!("package {} of {id}", pkg.name), pkg)?;
                    batch.insert(pkg_key(&pkg.ecosystem, &name, id), bytes);
                }
            }
            batch.insert(adv_key(id), new_bytes);
        }
        for (eco, newest) in seen_ecosystems {
            let m = meta.ecosystems.entry(eco).or_default();
            if newest > m.newest_modified {
                m.newest_modified = newest;
            }
            m.imported_at.clone_from(&stamp);
        }
        meta.ecosystems
            .retain(|_, m| m.advisories > 0 || !m.imported_at.is_empty());
        if report.added + report.updated > 0 {
            meta.imported_at = stamp;
        }
        batch.insert(META_KEY, encode("knowledge base status", &meta)?);
        tree.apply_batch(batch)
            .map_err(|e| sled_err("import into", &path, e))?;
        self.flush()?;
        report.advisories = meta.advisories;
        report.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        Ok(report)
    }

    /// The distinct ecosystems the knowledge base has advisories for.
    pub fn kb_ecosystems(&self) -> Result<Vec<String>> {
        Ok(self
            .kb_meta()?
            .ecosystems
            .into_iter()
            .filter(|(_, m)| m.advisories > 0)
            .map(|(e, _)| e)
            .collect())
    }
}

/// Whether an import error was caused by the user's input (exit 2) rather than the store.
pub fn is_input_error(e: &ImportError) -> bool {
    matches!(e, ImportError::Source(_))
}
