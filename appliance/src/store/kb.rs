//! The knowledge base's part of the store: advisories imported from OSV, indexed for lookup by
//! (ecosystem, package).
//!
//! Layout: `STATE_DIR/store/kb-N/` is a sled database of its own, and `KB_CURRENT` names the live
//! one. Its one tree, `kb`, holds three kinds of key:
//! - `a` ID → [`KbAdvisory`] (every advisory imported, withdrawn ones too);
//! - `p` ECOSYSTEM NUL NAME NUL ID → the [`KbEntry`] list of what advisory ID says about that
//!   package (only for advisories that are not withdrawn) — a host's package is matched with one
//!   prefix scan that reads nothing about other packages;
//! - `m` `status` → [`KbMeta`] (counts per ecosystem and the age of the data).
//!
//! Why a database per import rather than updates in place: an import that changes anything
//! writes a complete new generation — the unchanged records copied from the live one, the new
//! ones merged in, all in key order — and then replaces `KB_CURRENT` atomically. So
//! - a killed import leaves the previous knowledge base exactly as it was (the half-written
//!   generation is removed at the next open);
//! - sled's space amplification stays that of one sequential write: updating ~400,000 records in
//!   place, or in one atomic sled batch, grew the directory to 4× the live data and the batch
//!   to 8 GiB of memory, while a sorted bulk load into a fresh database keeps both small;
//! - the scan history in `gen-N/` is untouched by imports, and its lock and guard are not held
//!   up by a long import's writes.
//!
//! An import that changes nothing writes nothing. The knowledge base is derived data: if its
//! files are damaged, sled's error is reported and `kb import` of the sources rebuilds it.

use super::{
    decode, encode, parse_numbered, read_pointer, sled_err, write_pointer, Result, Store,
    StoreError, CACHE_BYTES,
};
use picket_kb::record::{self, KbAdvisory, KbEntry, KbPackage};
use picket_kb::source::{self, SourceRecord};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Instant;

const TREE_KB: &str = "kb";
const KB_CURRENT: &str = "KB_CURRENT";
const KB_PREFIX: &str = "kb-";
/// The import's temporary file of encoded records (removed when the import ends, and by the
/// next open if it was killed).
const SPILL_FILE: &str = "kb-import.tmp";
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
    /// When an import last changed records of this ecosystem.
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
    /// Advisories in the knowledge base afterwards (withdrawn ones not counted).
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

/// An open knowledge-base generation.
#[derive(Debug)]
pub(super) struct KbDb {
    generation: u64,
    path: PathBuf,
    db: sled::Db,
    tree: sled::Tree,
}

/// Where an encoded value lies in the import's spill file.
#[derive(Debug, Clone, Copy)]
struct Loc {
    offset: u64,
    len: u32,
}

/// The encoded records of an import, written to a temporary file as they are read, so that
/// memory holds only ids and keys (~100 bytes per record) whatever the size of the feed: kept in
/// memory, 200,000 records took 800 MB, most of it allocator fragmentation between the
/// long-lived records and each record's short-lived JSON.
struct Spill {
    path: PathBuf,
    out: io::BufWriter<fs::File>,
    len: u64,
}

impl Spill {
    fn create(path: PathBuf) -> Result<Spill> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .map_err(io_err("create", &path))?;
        Ok(Spill {
            path,
            out: io::BufWriter::with_capacity(1 << 20, file),
            len: 0,
        })
    }

    fn push(&mut self, bytes: &[u8]) -> Result<Loc> {
        use std::io::Write;
        let len = u32::try_from(bytes.len()).map_err(|_| StoreError::Encode {
            what: "an imported record".into(),
            reason: format!("{} bytes is too large", bytes.len()),
        })?;
        self.out
            .write_all(bytes)
            .map_err(io_err("write", &self.path))?;
        let loc = Loc {
            offset: self.len,
            len,
        };
        self.len += u64::from(len);
        Ok(loc)
    }

    /// Ends writing; the records are then read back with [`SpillReader::get`].
    fn finish(self) -> Result<SpillReader> {
        let path = self.path;
        let file = self
            .out
            .into_inner()
            .map_err(|e| io_err("write", &path)(e.into_error()))?;
        Ok(SpillReader { path, file })
    }
}

struct SpillReader {
    path: PathBuf,
    file: fs::File,
}

impl SpillReader {
    fn get(&self, loc: Loc) -> Result<Vec<u8>> {
        use std::os::unix::fs::FileExt;
        let mut buf = vec![0u8; loc.len as usize];
        self.file
            .read_exact_at(&mut buf, loc.offset)
            .map_err(io_err("read", &self.path))?;
        Ok(buf)
    }
}

impl Drop for SpillReader {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// One advisory read by an import; its encoded form is in the spill file.
struct Pending {
    modified: String,
    advisory: Loc,
    withdrawn: bool,
    /// (index key, encoded entries) per package.
    packages: Vec<(Vec<u8>, Loc)>,
    /// Ecosystems it names (for the counts), empty when withdrawn.
    ecosystems: Vec<String>,
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

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> StoreError {
    let path = path.to_path_buf();
    move |source| StoreError::Io { op, path, source }
}

fn kb_path(root: &Path, generation: u64) -> PathBuf {
    root.join(format!("{KB_PREFIX}{generation}"))
}

fn parse_kb_generation(name: &str) -> Option<u64> {
    parse_numbered(name, KB_PREFIX)
}

/// The live knowledge-base generation named by `KB_CURRENT`, if any.
fn read_current(root: &Path) -> Result<Option<u64>> {
    read_pointer(root, KB_CURRENT, KB_PREFIX)
}

/// Removes knowledge-base generations other than the live one: what an interrupted import
/// left, or the previous generation an import did not get to remove.
pub(super) fn remove_stale(root: &Path) -> Result<()> {
    let live = read_current(root)?;
    let spill = root.join(SPILL_FILE);
    match fs::remove_file(&spill) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            return Err(io_err("remove stale", &spill)(e))
        }
        _ => {}
    }
    let entries = fs::read_dir(root).map_err(io_err("read directory", root))?;
    for entry in entries {
        let entry = entry.map_err(io_err("read directory", root))?;
        let Some(g) = entry.file_name().to_str().and_then(parse_kb_generation) else {
            continue;
        };
        if Some(g) != live {
            let path = entry.path();
            tracing::info!(
                "removing stale knowledge-base generation {}",
                path.display()
            );
            fs::remove_dir_all(&path).map_err(io_err("remove stale generation", &path))?;
        }
    }
    Ok(())
}

fn open_kb(path: &Path, generation: u64) -> Result<KbDb> {
    let db = sled::Config::new()
        .path(path)
        .cache_capacity(CACHE_BYTES)
        .mode(sled::Mode::LowSpace)
        .flush_every_ms(Some(1000))
        .open()
        .map_err(|e| sled_err("open", path, e))?;
    let tree = db
        .open_tree(TREE_KB)
        .map_err(|e| sled_err("open tree", path, e))?;
    Ok(KbDb {
        generation,
        path: path.to_path_buf(),
        db,
        tree,
    })
}

impl Store {
    /// The live knowledge base, opened on first use; `None` before the first import.
    fn kb_db(&self) -> Result<Option<&KbDb>> {
        if let Some(kb) = self.kb.get() {
            return Ok(Some(kb));
        }
        let Some(generation) = read_current(self.root())? else {
            return Ok(None);
        };
        let kb = open_kb(&kb_path(self.root(), generation), generation)?;
        Ok(Some(self.kb.get_or_init(|| kb)))
    }

    /// The knowledge base's counts (empty before the first import).
    pub fn kb_meta(&self) -> Result<KbMeta> {
        let Some(kb) = self.kb_db()? else {
            return Ok(KbMeta::default());
        };
        match kb
            .tree
            .get(META_KEY)
            .map_err(|e| sled_err("read", &kb.path, e))?
        {
            Some(bytes) => decode(TREE_KB, "mstatus", &bytes),
            None => Ok(KbMeta::default()),
        }
    }

    /// One stored advisory.
    pub fn kb_advisory(&self, id: &str) -> Result<Option<KbAdvisory>> {
        let Some(kb) = self.kb_db()? else {
            return Ok(None);
        };
        match kb
            .tree
            .get(adv_key(id))
            .map_err(|e| sled_err("read", &kb.path, e))?
        {
            Some(bytes) => Ok(Some(decode(TREE_KB, &format!("a{id}"), &bytes)?)),
            None => Ok(None),
        }
    }

    /// The advisories naming package `name` (index form, see [`record::index_name`]) in exactly
    /// `ecosystem`, with what each says about it.
    pub fn kb_candidates(&self, ecosystem: &str, name: &str) -> Result<Vec<(String, KbPackage)>> {
        let Some(kb) = self.kb_db()? else {
            return Ok(Vec::new());
        };
        let prefix = pkg_prefix(ecosystem, name);
        let mut out = Vec::new();
        for item in kb.tree.scan_prefix(&prefix) {
            let (k, v) = item.map_err(|e| sled_err("read", &kb.path, e))?;
            let id = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
            let entries: Vec<KbEntry> = decode(TREE_KB, &format!("p{ecosystem}/{name}/{id}"), &v)?;
            out.push((
                id,
                KbPackage {
                    ecosystem: ecosystem.to_owned(),
                    name: name.to_owned(),
                    entries,
                },
            ));
        }
        Ok(out)
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

    /// Disk use of the live knowledge base.
    pub fn kb_disk_bytes(&self) -> Result<u64> {
        let Some(g) = read_current(self.root())? else {
            return Ok(0);
        };
        let path = kb_path(self.root(), g);
        crate::fsutil::disk_usage(&path).map_err(io_err("measure", &path))
    }

    /// Imports every OSV record under `paths` (files, directories, zip archives).
    ///
    /// Idempotent: records whose stored form is unchanged are not rewritten, and an import that
    /// changes nothing writes nothing. When the same id appears twice, the later `modified`
    /// wins. Malformed records are skipped and reported. A source that cannot be read at all
    /// aborts the import before anything is written. Otherwise the new knowledge base is
    /// written as a new generation and made live atomically (see the module docs).
    pub fn kb_import(
        &mut self,
        paths: &[PathBuf],
        progress: &mut dyn FnMut(u64),
    ) -> std::result::Result<ImportReport, ImportError> {
        let started = Instant::now();
        let mut report = ImportReport::default();
        let spill = Spill::create(self.root().join(SPILL_FILE))?;
        let (pending, spill) = read_sources(paths, spill, &mut report, progress)?;

        // What changes, compared with the live generation.
        let old = self.kb_db()?;
        let mut meta = self.kb_meta()?;
        let stamp = crate::report::rfc3339(crate::report::now_utc());
        // The new entries, to merge in key order with the live generation's.
        let mut fresh: Vec<(Vec<u8>, Fresh)> = Vec::new();
        let mut replaced_keys: BTreeSet<Vec<u8>> = BTreeSet::new();
        let mut newest: BTreeMap<String, String> = BTreeMap::new();
        let mut any_change = false;
        for (id, p) in pending {
            for e in &p.ecosystems {
                let n = newest.entry(e.clone()).or_default();
                if p.modified > *n {
                    n.clone_from(&p.modified);
                }
            }
            let key = adv_key(&id);
            let old_bytes = match old {
                Some(kb) => kb
                    .tree
                    .get(&key)
                    .map_err(|e| sled_err("read", &kb.path, e))?,
                None => None,
            };
            let s = &mut report.sources[p.source];
            let new_bytes = spill.get(p.advisory)?;
            if old_bytes.as_deref() == Some(new_bytes.as_slice()) {
                s.unchanged += 1;
                report.unchanged += 1;
                continue;
            }
            any_change = true;
            if let Some(b) = &old_bytes {
                // A stored record that does not decode is an error, not something to drop:
                // its index entries could not be found to replace.
                let o: KbAdvisory = decode(TREE_KB, &format!("a{id}"), b)?;
                for (e, n) in &o.packages {
                    replaced_keys.insert(pkg_key(e, n, &id));
                }
                if o.withdrawn {
                    meta.withdrawn = meta.withdrawn.saturating_sub(1);
                } else {
                    meta.advisories = meta.advisories.saturating_sub(1);
                    for e in o.packages.iter().map(|(e, _)| e).collect::<BTreeSet<_>>() {
                        if let Some(m) = meta.ecosystems.get_mut(e) {
                            m.advisories = m.advisories.saturating_sub(1);
                        }
                    }
                }
                s.updated += 1;
                report.updated += 1;
            } else {
                s.added += 1;
                report.added += 1;
            }
            if p.withdrawn {
                s.withdrawn += 1;
                report.withdrawn += 1;
                meta.withdrawn += 1;
            } else {
                meta.advisories += 1;
                for e in &p.ecosystems {
                    let m = meta.ecosystems.entry(e.clone()).or_default();
                    m.advisories += 1;
                    m.imported_at.clone_from(&stamp);
                }
            }
            // The advisory key itself is rewritten in place by the merge below.
            fresh.push((key, Fresh::Spilled(p.advisory)));
            fresh.extend(p.packages.into_iter().map(|(k, l)| (k, Fresh::Spilled(l))));
        }
        report.advisories = meta.advisories;
        if !any_change {
            report.duration_ms = ms_since(started);
            return Ok(report);
        }
        for (eco, n) in newest {
            let m = meta.ecosystems.entry(eco).or_default();
            if n > m.newest_modified {
                m.newest_modified = n;
            }
        }
        meta.imported_at = stamp;
        fresh.push((
            META_KEY.to_vec(),
            Fresh::Bytes(encode("knowledge base status", &meta)?),
        ));
        fresh.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        fresh.dedup_by(|a, b| a.0 == b.0);

        let generation = old.map_or(1, |kb| kb.generation + 1);
        let path = kb_path(self.root(), generation);
        if path.exists() {
            fs::remove_dir_all(&path).map_err(io_err("remove stale", &path))?;
        }
        let new = open_kb(&path, generation)?;
        let write = |k: &[u8], v: &[u8]| -> Result<()> {
            new.tree
                .insert(k, v)
                .map(|_| ())
                .map_err(|e| sled_err("write", &path, e))
        };
        let write_fresh = |k: &[u8], v: Fresh| -> Result<()> {
            match v {
                Fresh::Spilled(loc) => write(k, &spill.get(loc)?),
                Fresh::Bytes(b) => write(k, &b),
            }
        };
        let mut fresh = fresh.into_iter().peekable();
        if let Some(kb) = old {
            for item in kb.tree.iter() {
                let (k, v) = item.map_err(|e| sled_err("read", &kb.path, e))?;
                if k.as_ref() == META_KEY || replaced_keys.contains(k.as_ref()) {
                    continue;
                }
                while let Some((fk, fv)) = fresh.next_if(|(fk, _)| fk.as_slice() < k.as_ref()) {
                    write_fresh(&fk, fv)?;
                }
                if fresh
                    .peek()
                    .is_some_and(|(fk, _)| fk.as_slice() == k.as_ref())
                {
                    // Replaced by the new record (an index key of an updated advisory).
                    continue;
                }
                write(&k, &v)?;
            }
        }
        for (k, v) in fresh {
            write_fresh(&k, v)?;
        }
        new.db.flush().map_err(|e| sled_err("flush", &path, e))?;

        // The switch.
        write_pointer(self.root(), KB_CURRENT, KB_PREFIX, generation)?;
        let old_path = self.kb.take().map(|kb| kb.path.clone());
        let _ = self.kb.set(new);
        if let Some(p) = old_path {
            // A failure here only leaves garbage that the next open removes.
            if let Err(e) = fs::remove_dir_all(&p) {
                tracing::warn!("cannot remove old knowledge base {}: {e}", p.display());
            }
        }
        report.duration_ms = ms_since(started);
        Ok(report)
    }
}

fn ms_since(t: Instant) -> u64 {
    u64::try_from(t.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// What the parsing thread hands over for one record.
enum Parsed {
    Record {
        src: usize,
        id: String,
        modified: String,
        withdrawn: bool,
        advisory: Vec<u8>,
        /// (index key, encoded entries) per package.
        packages: Vec<(Vec<u8>, Vec<u8>)>,
        ecosystems: Vec<String>,
    },
    Malformed {
        src: usize,
        issue: ImportIssue,
    },
    EncodeFailed(StoreError),
    SourceFailed(source::SourceError),
}

/// Records in flight between the parsing thread and the importer.
const PARSED_QUEUE: usize = 1024;

/// Reads and encodes every record of every source. A source that cannot be read is an error;
/// malformed records are counted and listed in the report.
///
/// Parsing runs on a thread of its own. Besides overlapping JSON parsing with the spill writes,
/// this keeps the parser's short-lived allocations (every string of every record) in that
/// thread's malloc arena, apart from the long-lived per-record entries made here: interleaved in
/// one arena they fragmented glibc's heap to 830 MB resident for a 160 MB live peak on 200,000
/// records.
fn read_sources(
    paths: &[PathBuf],
    mut spill: Spill,
    report: &mut ImportReport,
    progress: &mut dyn FnMut(u64),
) -> std::result::Result<(HashMap<String, Pending>, SpillReader), ImportError> {
    let mut pending: HashMap<String, Pending> = HashMap::new();
    let mut read = 0u64;
    for path in paths {
        report.sources.push(SourceReport {
            path: path.display().to_string(),
            ..SourceReport::default()
        });
    }
    let (tx, rx) = std::sync::mpsc::sync_channel::<Parsed>(PARSED_QUEUE);
    let outcome: std::result::Result<(), ImportError> = std::thread::scope(|scope| {
        scope.spawn(move || parse_sources(paths, &tx));
        let mut failure: Option<ImportError> = None;
        for msg in rx {
            if failure.is_some() {
                // Drain, so the parser is never blocked on a full queue.
                continue;
            }
            match msg {
                Parsed::SourceFailed(e) => failure = Some(ImportError::Source(e)),
                Parsed::EncodeFailed(e) => failure = Some(e.into()),
                Parsed::Malformed { src, issue } => {
                    read += 1;
                    if let Some(s) = report.sources.get_mut(src) {
                        s.records += 1;
                        s.malformed += 1;
                    }
                    report.malformed += 1;
                    if report.errors.len() < MAX_REPORTED_ERRORS {
                        report.errors.push(issue);
                    }
                }
                Parsed::Record {
                    src,
                    id,
                    modified,
                    withdrawn,
                    advisory,
                    packages,
                    ecosystems,
                } => {
                    read += 1;
                    if read.is_multiple_of(4096) {
                        progress(read);
                    }
                    if let Some(s) = report.sources.get_mut(src) {
                        s.records += 1;
                    }
                    if pending.get(&id).is_some_and(|old| old.modified > modified) {
                        continue;
                    }
                    let stored = (|| -> Result<Pending> {
                        let advisory = spill.push(&advisory)?;
                        let mut locs = Vec::with_capacity(packages.len());
                        for (key, bytes) in &packages {
                            // Copied, so that what is kept was allocated by this thread.
                            locs.push((key.as_slice().to_vec(), spill.push(bytes)?));
                        }
                        Ok(Pending {
                            modified: modified.as_str().to_owned(),
                            advisory,
                            withdrawn,
                            packages: locs,
                            ecosystems: ecosystems.iter().map(|e| e.as_str().to_owned()).collect(),
                            source: src,
                        })
                    })();
                    match stored {
                        Ok(p) => {
                            pending.insert(id.as_str().to_owned(), p);
                        }
                        Err(e) => failure = Some(e.into()),
                    }
                }
            }
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(()),
        }
    });
    outcome?;
    progress(read);
    Ok((pending, spill.finish()?))
}

/// The parsing thread: every record of every source, parsed, reduced and encoded.
fn parse_sources(paths: &[PathBuf], tx: &std::sync::mpsc::SyncSender<Parsed>) {
    for (src, path) in paths.iter().enumerate() {
        let errors = source::read_records(path, &mut |rec: SourceRecord| {
            let _ = tx.send(parse_one(src, rec));
        });
        if let Some(e) = errors.into_iter().next() {
            let _ = tx.send(Parsed::SourceFailed(e));
            return;
        }
    }
}

fn parse_one(src: usize, rec: SourceRecord) -> Parsed {
    let issue = |id: Option<String>, error: String| Parsed::Malformed {
        src,
        issue: ImportIssue {
            path: rec.origin.path.display().to_string(),
            entry: rec.origin.entry.clone(),
            id,
            error,
        },
    };
    let adv = match &rec.advisory {
        Ok(a) => a,
        Err(e) => return issue(e.id().map(str::to_owned), e.to_string()),
    };
    let (kb, pkgs) = match record::from_osv(adv) {
        Ok(x) => x,
        Err(e) => return issue(Some(adv.id.clone()), e.to_string()),
    };
    let advisory = match encode(&format!("advisory {}", adv.id), &kb) {
        Ok(b) => b,
        Err(e) => return Parsed::EncodeFailed(e),
    };
    let mut packages = Vec::with_capacity(pkgs.len());
    let mut ecosystems: Vec<String> = Vec::new();
    if !kb.withdrawn {
        for p in &pkgs {
            let name = record::index_name(&p.ecosystem, &p.name);
            match encode(&format!("package {} of {}", p.name, adv.id), &p.entries) {
                Ok(bytes) => packages.push((pkg_key(&p.ecosystem, &name, &adv.id), bytes)),
                Err(e) => return Parsed::EncodeFailed(e),
            }
            if !ecosystems.contains(&p.ecosystem) {
                ecosystems.push(p.ecosystem.clone());
            }
        }
    }
    Parsed::Record {
        src,
        id: adv.id.clone(),
        modified: adv.modified.clone(),
        withdrawn: kb.withdrawn,
        advisory,
        packages,
        ecosystems,
    }
}

/// A value of the new generation: spilled by the import, or made at the end (the status).
enum Fresh {
    Spilled(Loc),
    Bytes(Vec<u8>),
}

/// Whether an import error was caused by the user's input (exit 2) rather than the store.
pub fn is_input_error(e: &ImportError) -> bool {
    matches!(e, ImportError::Source(_))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_keys_are_prefixed_by_their_package_only() {
        let k = pkg_key("Debian:12", "openssl", "DSA-5532-1");
        assert!(k.ends_with(b"\0DSA-5532-1"));
        assert!(k.starts_with(&pkg_prefix("Debian:12", "openssl")));
        // A package whose name extends another's is not under the other's prefix.
        assert!(!pkg_key("Debian:12", "openssl-dev", "X")
            .starts_with(&pkg_prefix("Debian:12", "openssl")));
    }

    #[test]
    fn generation_names_are_strict() {
        assert_eq!(parse_kb_generation("kb-7"), Some(7));
        for bad in ["kb-", "kb-0", "kb-x", "gen-1", "kb-1 ", "kb--1"] {
            assert_eq!(parse_kb_generation(bad), None, "{bad}");
        }
    }
}
