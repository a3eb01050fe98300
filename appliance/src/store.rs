//! The appliance's store: the history of scans, kept on disk under `--state-dir`.
//!
//! Why one module: this is the only code that touches sled, so the on-disk format — the
//! directory layout, the lock, the trees and the record envelope — is defined and versioned in
//! one place, and the rest of the appliance sees typed records and typed errors.
//!
//! Layout of `STATE_DIR/store/` (mode 0700):
//! - `lock`: an advisory `flock` held for as long as a [`Store`] is open, so a second process gets
//!   [`StoreError::Locked`] instead of sled's untyped I/O error, and so compaction can swap
//!   directories without anyone else looking.
//! - `CURRENT`: the name of the live generation directory (`gen-N`), replaced atomically.
//! - `gen-N/`: a sled database with the trees `scans` (id → full report), `summaries`
//!   (id → the few fields `scans list` shows, so listing does not decode every report), `order`
//!   (big-endian save sequence number → id: ids sort by start second only, so `latest` and the
//!   list order come from here) and `meta` (`schema` → [`SCHEMA_VERSION`]).
//!
//! Every value is an envelope: a postcard `u16` record format, then the postcard body. A newer
//! format or undecodable bytes give an error naming the tree and key, never a panic, and never
//! lead to the record being overwritten or dropped.
//!
//! - `MANIFEST` and `SEAL`: the store's own record of acknowledged scans and of a clean close,
//!   which catch sled's silent truncation of a damaged log (see [`guard`]).
//!
//! Durability: [`Store::save`] returns only after sled's `flush()` (which fsyncs its log) and the
//! manifest naming the scan are on disk, so a process killed right after it reported a saved scan
//! loses nothing, and a later loss of that scan is reported as corruption, not ignored.
//!
//! Memory: sled's page cache is capped at [`CACHE_BYTES`], and the crate is built with its
//! `miri_optimizations` feature, whose only effect outside Miri is that sled's ~40 metrics
//! histograms are allocated zeroed (calloc) instead of written element by element: that alone
//! took 21 MiB of resident memory on every open.
//!
//! Compaction: sled reclaims space from rewritten segments only lazily, so under churn (scans
//! saved and pruned) the directory grows well beyond the live data. [`Store::compact`] copies the
//! live records, byte for byte, into a fresh generation and swaps `CURRENT`; a crash at any point
//! leaves either the old or the new generation live, and the other is removed at the next open.

use picket_model::{HostReport, NetReport, ScanKind, Severity};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Version of the store's layout and trees; a store written by a newer picket is refused.
/// 2: the daemon's state trees ([`StateTree`]); an older picket must not open (and compact away)
/// them, so opening a version-1 store upgrades its number.
pub const SCHEMA_VERSION: u16 = 2;
/// Version of the record envelope's body encoding.
pub const RECORD_FORMAT: u16 = 1;

/// sled's page cache. The default (1 GiB) lets the cache grow with the database; scan history is
/// read rarely and sequentially, so a small cache costs little and keeps the binary's peak memory
/// below that of the scanners it replaces.
pub const CACHE_BYTES: u64 = 2 * 1024 * 1024;
/// Compaction runs when the directory is more than this many times the live data...
pub const COMPACT_FACTOR: u64 = 4;
/// ...and bigger than this floor (sled's fixed overhead makes small stores look bloated).
pub const COMPACT_FLOOR_BYTES: u64 = 16 * 1024 * 1024;

mod guard;
mod kb;

pub use kb::{
    is_input_error, EcosystemMeta, ImportError, ImportIssue, ImportReport, KbMeta, SourceReport,
};

const TREE_SCANS: &str = "scans";
const TREE_SUMMARIES: &str = "summaries";
const TREE_META: &str = "meta";
const TREE_ORDER: &str = "order";
/// SSH host keys pinned for `scan host`: `HOST:PORT` → OpenSSH public key line.
const TREE_HOSTKEYS: &str = "hostkeys";
/// Per scan id, the bytes of its `scans` record (key and value), kept so that measuring the live
/// data for compaction does not read every report: a 50-host host scan is ~130 MB.
const TREE_SIZES: &str = "sizes";
const META_SCHEMA: &[u8] = b"schema";

/// The daemon's trees: its state beside the scan history, under the same lock, envelope and
/// flush-before-acknowledge rules (see `daemon`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StateTree {
    /// Console settings, the enrollment identity (public parts), the key-encryption-key source,
    /// the platform-managed configuration fragment.
    Settings,
    /// Secrets encrypted under the key-encryption key (device key, sealing key, proxy password).
    Secrets,
    /// Jobs taken from the platform and their runs' state.
    Jobs,
    /// Result chunks waiting for the platform's acknowledgement, keyed by a big-endian sequence.
    Outbox,
    /// Counters that must survive restarts (dropped chunks, ...).
    Counters,
}

impl StateTree {
    pub const ALL: [StateTree; 5] = [
        StateTree::Settings,
        StateTree::Secrets,
        StateTree::Jobs,
        StateTree::Outbox,
        StateTree::Counters,
    ];

    /// The sled tree name.
    pub fn name(self) -> &'static str {
        match self {
            StateTree::Settings => "settings",
            StateTree::Secrets => "secrets",
            StateTree::Jobs => "jobs",
            StateTree::Outbox => "outbox",
            StateTree::Counters => "counters",
        }
    }

    fn index(self) -> usize {
        match self {
            StateTree::Settings => 0,
            StateTree::Secrets => 1,
            StateTree::Jobs => 2,
            StateTree::Outbox => 3,
            StateTree::Counters => 4,
        }
    }
}

/// Puts and removes applied to one [`StateTree`] atomically by [`Store::state_apply`].
#[derive(Debug)]
pub struct StateBatch {
    batch: sled::Batch,
    empty: bool,
    /// Bytes of keys and values put (for the free-space check).
    bytes: u64,
}

impl Default for StateBatch {
    fn default() -> Self {
        StateBatch::new()
    }
}

impl StateBatch {
    pub fn new() -> StateBatch {
        StateBatch {
            batch: sled::Batch::default(),
            empty: true,
            bytes: 0,
        }
    }

    /// Adds a put of `value` (in the record envelope) under `key`.
    pub fn put<T: Serialize>(&mut self, key: &[u8], value: &T) -> Result<()> {
        let bytes = encode(&String::from_utf8_lossy(key), value)?;
        self.bytes += (key.len() + bytes.len()) as u64;
        self.batch.insert(key, bytes);
        self.empty = false;
        Ok(())
    }

    pub fn remove(&mut self, key: &[u8]) {
        self.batch.remove(key);
        self.bytes += key.len() as u64;
        self.empty = false;
    }
}

/// Free space kept in reserve by daemon writes (see [`Store::ensure_space`]).
pub const STATE_MIN_FREE_BYTES: u64 = 1024 * 1024;
const STORE_DIR: &str = "store";
const LOCK_FILE: &str = "lock";
const CURRENT_FILE: &str = "CURRENT";
const GEN_PREFIX: &str = "gen-";

/// Errors of the store. Every variant names the path, tree or key it is about.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Another process holds the store.
    #[error("the store {} is in use by another picket process", path.display())]
    Locked { path: PathBuf },

    /// A file-system operation failed.
    #[error("cannot {op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },

    /// The database files are damaged (sled detected corruption, or the layout is inconsistent).
    /// Nothing has been deleted or rewritten.
    #[error("the store {} is corrupted: {reason} (the files were left untouched)", path.display())]
    Corrupt { path: PathBuf, reason: String },

    /// The store was written by a newer picket.
    #[error(
        "the store {} has schema version {found}, this picket understands up to {supported}",
        path.display()
    )]
    UnsupportedSchema {
        path: PathBuf,
        found: u16,
        supported: u16,
    },

    /// A record's envelope names a format this picket does not know.
    #[error(
        "record {key:?} in tree {tree} has format {format}, this picket understands up to {supported}"
    )]
    UnknownRecordFormat {
        tree: &'static str,
        key: String,
        format: u16,
        supported: u16,
    },

    /// A record's bytes do not decode.
    #[error("record {key:?} in tree {tree} is corrupted: {reason}")]
    CorruptRecord {
        tree: &'static str,
        key: String,
        reason: String,
    },

    /// A record could not be encoded.
    #[error("cannot encode {what}: {reason}")]
    Encode { what: String, reason: String },

    /// A scan with this id is already stored (ids carry 32 random bits; this is a bug or a replay).
    #[error("a scan with id {id:?} is already stored")]
    Duplicate { id: String },

    /// Any other database failure.
    #[error("store operation {op} failed on {}: {reason}", path.display())]
    Db {
        op: &'static str,
        path: PathBuf,
        reason: String,
    },
}

/// Result alias of the store.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A stored scan. New scan kinds become new variants (postcard encodes the variant index, so
/// existing records keep decoding).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
#[allow(clippy::large_enum_variant)] // one per stored scan, moved rarely; boxing would change nothing on disk but add indirection everywhere
pub enum StoredScan {
    Net(NetReport),
    Host(HostReport),
    Web(picket_model::WebReport),
}

impl StoredScan {
    pub fn id(&self) -> &str {
        match self {
            StoredScan::Net(r) => &r.scan.id,
            StoredScan::Host(r) => &r.scan.id,
            StoredScan::Web(r) => &r.scan.id,
        }
    }

    pub fn kind(&self) -> ScanKind {
        match self {
            StoredScan::Net(r) => r.scan.kind,
            StoredScan::Host(r) => r.scan.kind,
            StoredScan::Web(r) => r.scan.kind,
        }
    }

    /// The summary `scans list` shows.
    pub fn summary(&self) -> ScanSummary {
        match self {
            StoredScan::Net(r) => ScanSummary::new(
                &r.scan,
                r.findings.iter().map(|f| f.severity),
                r.hosts
                    .iter()
                    .filter(|h| h.status == picket_model::HostStatus::Up)
                    .count() as u64,
                r.hosts
                    .iter()
                    .flat_map(|h| &h.ports)
                    .filter(|p| p.state == picket_model::PortState::Open)
                    .count() as u64,
            ),
            // Hosts up: those inventoried; open ports: the listening TCP sockets they had.
            StoredScan::Host(r) => ScanSummary::new(
                &r.scan,
                r.findings.iter().map(|f| f.severity),
                r.stats.succeeded,
                r.hosts
                    .iter()
                    .flat_map(|h| &h.listening)
                    .filter(|s| s.protocol == picket_model::Protocol::Tcp)
                    .count() as u64,
            ),
            // A web scan: one site; "open ports" has no meaning, so 0.
            StoredScan::Web(r) => {
                ScanSummary::new(&r.scan, r.findings.iter().map(|f| f.severity), 1, 0)
            }
        }
    }
}

/// What `scans list` shows of a scan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanSummary {
    pub id: String,
    pub kind: ScanKind,
    pub started_at: String,
    pub finished_at: String,
    pub targets: Vec<String>,
    pub hosts_up: u64,
    pub open_ports: u64,
    pub findings: SeverityCounts,
}

impl ScanSummary {
    fn new(
        scan: &picket_model::ScanMeta,
        severities: impl Iterator<Item = Severity>,
        hosts_up: u64,
        open_ports: u64,
    ) -> ScanSummary {
        let mut findings = SeverityCounts::default();
        for s in severities {
            findings.add(s);
        }
        ScanSummary {
            id: scan.id.clone(),
            kind: scan.kind,
            started_at: scan.started_at.clone(),
            finished_at: scan.finished_at.clone(),
            targets: scan.targets.clone(),
            hosts_up,
            open_ports,
            findings,
        }
    }
}

/// Number of findings per severity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeverityCounts {
    pub critical: u64,
    pub high: u64,
    pub medium: u64,
    pub low: u64,
    pub info: u64,
}

impl SeverityCounts {
    pub fn add(&mut self, s: Severity) {
        match s {
            Severity::Critical => self.critical += 1,
            Severity::High => self.high += 1,
            Severity::Medium => self.medium += 1,
            Severity::Low => self.low += 1,
            Severity::Info => self.info += 1,
        }
    }

    pub fn total(&self) -> u64 {
        self.critical + self.high + self.medium + self.low + self.info
    }
}

/// One line of `scans list`: a summary, or the error that kept it from being read.
#[derive(Debug)]
pub struct ListEntry {
    pub id: String,
    pub summary: Result<ScanSummary>,
}

/// How a user's scan reference (`latest`, `previous`, an id or a unique prefix) resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    Found(String),
    NotFound,
    /// The prefix matches several scans; at most a few are listed.
    Ambiguous(Vec<String>),
}

/// Disk use of the store, for deciding on and reporting compaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// Bytes the live generation occupies on disk.
    pub disk_bytes: u64,
    /// Bytes of keys and values of all records.
    pub live_bytes: u64,
}

/// A record of the `order` tree.
struct OrderEntry {
    key: Vec<u8>,
    /// The sequence number, for messages.
    seq: String,
    id: Result<String>,
}

/// The sled handles of the live generation.
#[derive(Debug)]
struct Trees {
    db: sled::Db,
    scans: sled::Tree,
    summaries: sled::Tree,
    order: sled::Tree,
    meta: sled::Tree,
    hostkeys: sled::Tree,
    sizes: sled::Tree,
    /// Indexed by [`StateTree::index`].
    state: Vec<sled::Tree>,
}

/// The open store. Holds the lock until dropped; on a clean drop it seals the database files
/// (see [`guard`]) so the next open knows they are exactly as left.
#[derive(Debug)]
pub struct Store {
    root: PathBuf,
    generation: u64,
    /// `None` only after a compaction failed half-way; every operation then reports it.
    trees: Option<Trees>,
    /// Ids of every scan whose save was acknowledged, mirrored in the `MANIFEST` file.
    manifest: BTreeSet<String>,
    /// Whether the files were sealed by a clean close when this store was opened.
    opened_sealed: bool,
    /// Set once the open verified the store: only a verified store is sealed when dropped.
    verified: bool,
    /// The knowledge base's database, opened on first use (see [`kb`]).
    kb: std::cell::OnceCell<kb::KbDb>,
    // Dropped last: the lock outlives the database handles and the seal.
    _lock: File,
}

impl Store {
    /// Opens (creating if needed) the store under `state_dir`, failing at once if another process
    /// holds it.
    pub fn open(state_dir: &Path) -> Result<Store> {
        Self::open_waiting(state_dir, Duration::ZERO)
    }

    /// Opens the store, waiting up to `wait` for another process to release it.
    pub fn open_waiting(state_dir: &Path, wait: Duration) -> Result<Store> {
        let root = state_dir.join(STORE_DIR);
        create_private_dir(state_dir)?;
        create_private_dir(&root)?;
        // The store directory is ours alone whatever umask or earlier version created it.
        fs::set_permissions(&root, fs::Permissions::from_mode(0o700)).map_err(|source| {
            StoreError::Io {
                op: "set permissions of",
                path: root.clone(),
                source,
            }
        })?;
        let lock = acquire_lock(&root, wait)?;
        let generation = match read_current(&root)? {
            Some(g) => g,
            None => {
                if !list_generations(&root)?.is_empty() {
                    return Err(StoreError::Corrupt {
                        path: root.clone(),
                        reason: format!(
                            "{CURRENT_FILE} is missing but generation directories exist"
                        ),
                    });
                }
                // A new store: its (empty) manifest exists before the store does.
                guard::write_manifest(&root, &BTreeSet::new())?;
                write_current(&root, 1)?;
                1
            }
        };
        remove_stale_generations(&root, generation)?;
        kb::remove_stale(&root)?;
        guard::finish_interrupted_open(&root, generation)?;
        let manifest = guard::read_manifest(&root)?;

        // sled treats damage in its log as a torn write: it silently drops everything after it
        // and overwrites it. Unless the files are exactly as a clean close left them, open a
        // copy's original instead of trusting sled: copy first, verify after, put back if bad.
        let path = gen_path(&root, generation);
        let sealed = guard::is_sealed(&root, generation)?;
        guard::remove_seal(&root)?;
        let copy = if sealed {
            None
        } else {
            tracing::info!(
                "store {} was not closed cleanly; verifying it",
                root.display()
            );
            Some(guard::safety_copy(&root, generation)?)
        };
        // The store gets its own handle of the lock, so that a failed open below, which drops the
        // store, still holds the lock while it puts the copy back.
        let store_lock = lock.try_clone().map_err(|source| StoreError::Io {
            op: "duplicate lock of",
            path: root.clone(),
            source,
        })?;
        let opened = Self::open_generation(&path).and_then(|trees| {
            let mut store = Store {
                root: root.clone(),
                generation,
                trees: Some(trees),
                manifest,
                opened_sealed: sealed,
                verified: false,
                kb: std::cell::OnceCell::new(),
                _lock: store_lock,
            };
            store.check_schema()?;
            store.verify_manifest()?;
            store.verified = true;
            Ok(store)
        });
        let result = match (opened, copy) {
            (Ok(store), Some(copy)) => {
                guard::discard_copy(&copy);
                Ok(store)
            }
            (Ok(store), None) => Ok(store),
            (Err(e), Some(_)) => match guard::restore_copy(&root, generation) {
                Ok(()) => Err(e),
                Err(restore) => {
                    tracing::error!("{e}");
                    Err(restore)
                }
            },
            (Err(e), None) => Err(e),
        };
        drop(lock);
        result
    }

    fn open_generation(path: &Path) -> Result<Trees> {
        let db = sled_config(path)
            .open()
            .map_err(|e| sled_err("open", path, e))?;
        let tree = |name: &'static str| {
            db.open_tree(name)
                .map_err(|e| sled_err("open tree", path, e))
        };
        Ok(Trees {
            scans: tree(TREE_SCANS)?,
            summaries: tree(TREE_SUMMARIES)?,
            order: tree(TREE_ORDER)?,
            meta: tree(TREE_META)?,
            hostkeys: tree(TREE_HOSTKEYS)?,
            sizes: tree(TREE_SIZES)?,
            state: StateTree::ALL
                .iter()
                .map(|t| tree(t.name()))
                .collect::<Result<Vec<_>>>()?,
            db,
        })
    }

    fn t(&self) -> Result<&Trees> {
        self.trees.as_ref().ok_or_else(|| StoreError::Db {
            op: "use",
            path: self.gen_path(),
            reason: "the store was closed after a failed compaction".to_owned(),
        })
    }

    /// Checks that every scan whose save was acknowledged is in the database, and records in the
    /// manifest the scans that were saved but not yet acknowledged when a process died.
    fn verify_manifest(&mut self) -> Result<()> {
        let mut present = BTreeSet::new();
        // The summaries, not the reports: both are written by one transaction into the same log,
        // so a truncated log loses both, and walking the reports would read every one of them
        // (a 50-host host scan is ~130 MB) on every open.
        for k in self.t()?.summaries.iter().keys() {
            let k = k.map_err(|e| sled_err("verify", &self.gen_path(), e))?;
            present.insert(String::from_utf8_lossy(&k).into_owned());
        }
        let missing: Vec<&String> = self.manifest.difference(&present).collect();
        if let Some(first) = missing.first() {
            return Err(StoreError::Corrupt {
                path: self.gen_path(),
                reason: format!(
                    "{} saved scan(s) are missing from the database (first: {first})",
                    missing.len()
                ),
            });
        }
        if present != self.manifest {
            guard::write_manifest(&self.root, &present)?;
            self.manifest = present;
        }
        Ok(())
    }

    fn check_schema(&self) -> Result<()> {
        let path = self.gen_path();
        match self
            .t()?
            .meta
            .get(META_SCHEMA)
            .map_err(|e| sled_err("read schema", &path, e))?
        {
            Some(bytes) => {
                let found: u16 = decode(TREE_META, "schema", &bytes)?;
                if found > SCHEMA_VERSION {
                    return Err(StoreError::UnsupportedSchema {
                        path,
                        found,
                        supported: SCHEMA_VERSION,
                    });
                }
                if found < SCHEMA_VERSION {
                    // Older layouts are subsets of this one; the number keeps older pickets out.
                    let bytes = encode("schema version", &SCHEMA_VERSION)?;
                    self.t()?
                        .meta
                        .insert(META_SCHEMA, bytes)
                        .map_err(|e| sled_err("write schema", &path, e))?;
                    self.flush()?;
                }
                Ok(())
            }
            None => {
                let bytes = encode("schema version", &SCHEMA_VERSION)?;
                self.t()?
                    .meta
                    .insert(META_SCHEMA, bytes)
                    .map_err(|e| sled_err("write schema", &path, e))?;
                self.flush()
            }
        }
    }

    /// Whether the last process closed the store cleanly. When it did not (killed, crashed, or
    /// the files changed at rest), the open verified every acknowledged scan before proceeding.
    pub fn was_closed_cleanly(&self) -> bool {
        self.opened_sealed
    }

    /// The directory of the live database.
    pub fn gen_path(&self) -> PathBuf {
        gen_path(&self.root, self.generation)
    }

    /// The store's top directory (`STATE_DIR/store`).
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn flush(&self) -> Result<()> {
        self.t()?
            .db
            .flush()
            .map(|_| ())
            .map_err(|e| sled_err("flush", &self.gen_path(), e))
    }

    /// Saves a scan. Returns only once the record is on stable storage (sled flushed, then the
    /// manifest that vouches for it written).
    pub fn save(&mut self, scan: &StoredScan) -> Result<()> {
        let id = scan.id().to_owned();
        let full = encode(&format!("scan {id}"), scan)?;
        let summary = encode(&format!("summary of scan {id}"), &scan.summary())?;
        self.ensure_space((full.len() + summary.len()) as u64)?;
        self.put_record(&id, full, summary)?;
        self.flush()?;
        let mut ids = self.manifest.clone();
        ids.insert(id);
        guard::write_manifest(&self.root, &ids)?;
        self.manifest = ids;
        Ok(())
    }

    fn put_record(&self, id: &str, full: Vec<u8>, summary: Vec<u8>) -> Result<()> {
        use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};
        let key = id.as_bytes();
        let t = self.t()?;
        let seq =
            t.db.generate_id()
                .map_err(|e| sled_err("save", &self.gen_path(), e))?
                .to_be_bytes();
        let order_value = encode(&format!("order of scan {id}"), &id)?;
        let size = encode(
            &format!("size of scan {id}"),
            &((key.len() + full.len()) as u64),
        )?;
        let res = (&t.scans, &t.summaries, &t.order, &t.sizes).transaction(
            |(scans, summaries, order, sizes)| {
                if summaries.get(key)?.is_some() {
                    return Err(ConflictableTransactionError::Abort(()));
                }
                scans.insert(key, full.as_slice())?;
                summaries.insert(key, summary.as_slice())?;
                order.insert(&seq, order_value.as_slice())?;
                sizes.insert(key, size.as_slice())?;
                Ok(())
            },
        );
        match res {
            Ok(()) => Ok(()),
            Err(TransactionError::Abort(())) => Err(StoreError::Duplicate { id: id.to_owned() }),
            Err(TransactionError::Storage(e)) => Err(sled_err("save", &self.gen_path(), e)),
        }
    }

    /// Deletes a scan; returns whether it existed. Durable on return. The manifest stops vouching
    /// for the scan before the database forgets it.
    pub fn delete(&mut self, id: &str) -> Result<bool> {
        use sled::transaction::{TransactionError, Transactional};
        if self.manifest.contains(id) {
            let mut ids = self.manifest.clone();
            ids.remove(id);
            guard::write_manifest(&self.root, &ids)?;
            self.manifest = ids;
        }
        let key = id.as_bytes();
        let mut seqs = Vec::new();
        for e in self.ordered()? {
            if e.id.as_deref().ok() == Some(id) {
                seqs.push(e.key);
            }
        }
        let t = self.t()?;
        let res: std::result::Result<bool, TransactionError<()>> =
            (&t.scans, &t.summaries, &t.order, &t.sizes).transaction(
                |(scans, summaries, order, sizes)| {
                    let existed = scans.remove(key)?.is_some();
                    summaries.remove(key)?;
                    sizes.remove(key)?;
                    for seq in &seqs {
                        order.remove(seq.as_slice())?;
                    }
                    Ok(existed)
                },
            );
        let existed = res.map_err(|e| sled_err_txn("delete", &self.gen_path(), e))?;
        self.flush()?;
        Ok(existed)
    }

    /// Reads a scan by its exact id.
    pub fn get(&self, id: &str) -> Result<Option<StoredScan>> {
        match self
            .t()?
            .scans
            .get(id.as_bytes())
            .map_err(|e| sled_err("read", &self.gen_path(), e))?
        {
            Some(bytes) => decode(TREE_SCANS, id, &bytes).map(Some),
            None => Ok(None),
        }
    }

    /// The save order: each sequence key with the id it names (or why that record is unreadable).
    fn ordered(&self) -> Result<Vec<OrderEntry>> {
        let mut out = Vec::new();
        for item in self.t()?.order.iter() {
            let (k, v) = item.map_err(|e| sled_err("list", &self.gen_path(), e))?;
            let seq = <[u8; 8]>::try_from(k.as_ref())
                .map(u64::from_be_bytes)
                .map(|n| n.to_string())
                .unwrap_or_else(|_| format!("{:?}", k.as_ref()));
            let id = decode(TREE_ORDER, &seq, &v);
            out.push(OrderEntry {
                key: k.to_vec(),
                seq,
                id,
            });
        }
        Ok(out)
    }

    /// Every stored scan's summary, oldest first. A record that cannot be read is listed with
    /// its error, so one damaged record does not hide the others.
    pub fn list(&self) -> Result<Vec<ListEntry>> {
        let path = self.gen_path();
        let mut out = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for OrderEntry { seq, id, .. } in self.ordered()? {
            match id {
                Ok(id) => {
                    if !seen.insert(id.clone()) {
                        continue;
                    }
                    let value = self
                        .t()?
                        .summaries
                        .get(id.as_bytes())
                        .map_err(|e| sled_err("list", &path, e))?;
                    if let Some(value) = value {
                        let summary = decode(TREE_SUMMARIES, &id, &value);
                        out.push(ListEntry { id, summary });
                    }
                }
                Err(e) => out.push(ListEntry {
                    id: format!("order record {seq}"),
                    summary: Err(e),
                }),
            }
        }
        // Summaries whose order record is damaged still get listed, after the others.
        for item in self.t()?.summaries.iter() {
            let (key, value) = item.map_err(|e| sled_err("list", &path, e))?;
            let id = String::from_utf8_lossy(&key).into_owned();
            if !seen.contains(&id) {
                let summary = decode(TREE_SUMMARIES, &id, &value);
                out.push(ListEntry { id, summary });
            }
        }
        Ok(out)
    }

    /// Every stored id, oldest saved first.
    pub fn ids(&self) -> Result<Vec<String>> {
        Ok(self
            .ordered()?
            .into_iter()
            .filter_map(|e| e.id.ok())
            .collect())
    }

    /// Resolves `latest`, `previous`, an exact id or a unique id prefix.
    pub fn resolve(&self, reference: &str) -> Result<Resolved> {
        let path = self.gen_path();
        let nth_last = |n: usize| -> Result<Resolved> {
            let ids = self.ids()?;
            Ok(
                match ids.len().checked_sub(n + 1).and_then(|i| ids.get(i)) {
                    Some(id) => Resolved::Found(id.clone()),
                    None => Resolved::NotFound,
                },
            )
        };
        match reference {
            "latest" => return nth_last(0),
            "previous" => return nth_last(1),
            _ => {}
        }
        if reference.is_empty() {
            return Ok(Resolved::NotFound);
        }
        let mut matches = Vec::new();
        for k in self.t()?.scans.scan_prefix(reference.as_bytes()).keys() {
            let k = k.map_err(|e| sled_err("list", &path, e))?;
            let id = String::from_utf8_lossy(&k).into_owned();
            if id == reference {
                return Ok(Resolved::Found(id));
            }
            matches.push(id);
            if matches.len() > 5 {
                break;
            }
        }
        Ok(match matches.len() {
            0 => Resolved::NotFound,
            1 => Resolved::Found(matches.remove(0)),
            _ => Resolved::Ambiguous(matches),
        })
    }

    /// The SSH host key pinned for `host_port` (`HOST:PORT`), as an OpenSSH public key line.
    pub fn host_key(&self, host_port: &str) -> Result<Option<String>> {
        match self
            .t()?
            .hostkeys
            .get(host_port.as_bytes())
            .map_err(|e| sled_err("read", &self.gen_path(), e))?
        {
            Some(b) => Ok(Some(decode(TREE_HOSTKEYS, host_port, &b)?)),
            None => Ok(None),
        }
    }

    /// Pins `key` for `host_port`. Durable on return.
    pub fn set_host_key(&mut self, host_port: &str, key: &str) -> Result<()> {
        let bytes = encode(&format!("host key of {host_port}"), &key)?;
        self.t()?
            .hostkeys
            .insert(host_port.as_bytes(), bytes)
            .map_err(|e| sled_err("write", &self.gen_path(), e))?;
        self.flush()
    }

    fn state_tree(&self, tree: StateTree) -> Result<&sled::Tree> {
        self.t()?
            .state
            .get(tree.index())
            .ok_or_else(|| StoreError::Db {
                op: "open tree",
                path: self.gen_path(),
                reason: format!("state tree {} missing", tree.name()),
            })
    }

    /// Reads one record of a daemon state tree.
    pub fn state_get<T: DeserializeOwned>(&self, tree: StateTree, key: &[u8]) -> Result<Option<T>> {
        match self
            .state_tree(tree)?
            .get(key)
            .map_err(|e| sled_err("read", &self.gen_path(), e))?
        {
            Some(b) => Ok(Some(decode(
                tree.name(),
                &String::from_utf8_lossy(key),
                &b,
            )?)),
            None => Ok(None),
        }
    }

    /// Writes one record of a daemon state tree. Durable on return.
    pub fn state_put<T: Serialize>(&self, tree: StateTree, key: &[u8], value: &T) -> Result<()> {
        let mut b = StateBatch::new();
        b.put(key, value)?;
        self.state_apply(tree, b)
    }

    /// Removes one record of a daemon state tree; returns whether it existed. Durable on return.
    pub fn state_remove(&self, tree: StateTree, key: &[u8]) -> Result<bool> {
        self.ensure_space(key.len() as u64)?;
        let existed = self
            .state_tree(tree)?
            .remove(key)
            .map_err(|e| sled_err("write", &self.gen_path(), e))?
            .is_some();
        self.flush()?;
        Ok(existed)
    }

    /// Refuses a write of about `bytes` when the file system could not take it with room to
    /// spare. sled does not recover from ENOSPC in its log (later operations stall or fail), so
    /// the daemon must fail the one write cleanly instead of letting sled hit a full disk.
    pub fn ensure_space(&self, bytes: u64) -> Result<()> {
        let free = self.free_bytes()?;
        let need = bytes.saturating_mul(3).saturating_add(STATE_MIN_FREE_BYTES);
        if free < need {
            return Err(StoreError::Io {
                op: "write (disk nearly full) to",
                path: self.gen_path(),
                source: io::Error::new(
                    io::ErrorKind::StorageFull,
                    format!("{free} bytes free, {need} needed"),
                ),
            });
        }
        Ok(())
    }

    /// Applies a batch atomically (all or nothing, also across a crash). Durable on return.
    pub fn state_apply(&self, tree: StateTree, batch: StateBatch) -> Result<()> {
        if batch.empty {
            return Ok(());
        }
        self.ensure_space(batch.bytes)?;
        self.state_tree(tree)?
            .apply_batch(batch.batch)
            .map_err(|e| sled_err("write", &self.gen_path(), e))?;
        self.flush()
    }

    /// Applies batches to several state trees in one transaction (all or nothing, also across
    /// a crash). Durable on return.
    pub fn state_apply_all(&self, batches: Vec<(StateTree, StateBatch)>) -> Result<()> {
        use sled::transaction::{TransactionError, Transactional};
        let batches: Vec<_> = batches.into_iter().filter(|(_, b)| !b.empty).collect();
        if batches.is_empty() {
            return Ok(());
        }
        self.ensure_space(batches.iter().map(|(_, b)| b.bytes).sum())?;
        let trees = batches
            .iter()
            .map(|(t, _)| self.state_tree(*t))
            .collect::<Result<Vec<&sled::Tree>>>()?;
        let res: std::result::Result<(), TransactionError<()>> =
            trees.as_slice().transaction(|tx| {
                for (t, (_, b)) in tx.iter().zip(&batches) {
                    t.apply_batch(&b.batch)?;
                }
                Ok(())
            });
        res.map_err(|e| sled_err_txn("write", &self.gen_path(), e))?;
        self.flush()
    }

    /// Up to `limit` records of a state tree in key order, starting after `after` (exclusive)
    /// when given. A record that does not decode comes back as its error, with its key.
    #[allow(clippy::type_complexity)]
    pub fn state_scan<T: DeserializeOwned>(
        &self,
        tree: StateTree,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Result<T>)>> {
        let t = self.state_tree(tree)?;
        let iter = match after {
            Some(a) => {
                t.range::<&[u8], _>((std::ops::Bound::Excluded(a), std::ops::Bound::Unbounded))
            }
            None => t.iter(),
        };
        let mut out = Vec::new();
        for item in iter.take(limit) {
            let (k, v) = item.map_err(|e| sled_err("read", &self.gen_path(), e))?;
            let value = decode(tree.name(), &String::from_utf8_lossy(&k), &v);
            out.push((k.to_vec(), value));
        }
        Ok(out)
    }

    /// Number of records and bytes (keys and values) of a state tree. Reads every value.
    pub fn state_stats(&self, tree: StateTree) -> Result<(u64, u64)> {
        let (mut n, mut bytes) = (0u64, 0u64);
        for item in self.state_tree(tree)?.iter() {
            let (k, v) = item.map_err(|e| sled_err("read", &self.gen_path(), e))?;
            n += 1;
            bytes += (k.len() + v.len()) as u64;
        }
        Ok((n, bytes))
    }

    /// A number larger than any this store returned before, also across restarts (sled's
    /// persistent id generator): the outbox's order.
    pub fn next_sequence(&self) -> Result<u64> {
        self.t()?
            .db
            .generate_id()
            .map_err(|e| sled_err("generate id", &self.gen_path(), e))
    }

    /// Free bytes on the store's file system (for the heartbeat and the disk-full warning).
    pub fn free_bytes(&self) -> Result<u64> {
        fs2::available_space(&self.root).map_err(|source| StoreError::Io {
            op: "measure free space of",
            path: self.root.clone(),
            source,
        })
    }

    /// Disk use of the live generation and the bytes of live records.
    pub fn usage(&self) -> Result<Usage> {
        let path = self.gen_path();
        let disk_bytes = crate::fsutil::disk_usage(&path).map_err(|source| StoreError::Io {
            op: "measure",
            path: path.clone(),
            source,
        })?;
        let mut live_bytes = 0u64;
        let t = self.t()?;
        for tree in [&t.summaries, &t.order, &t.meta, &t.hostkeys, &t.sizes]
            .into_iter()
            .chain(t.state.iter())
        {
            for item in tree.iter() {
                let (k, v) = item.map_err(|e| sled_err("measure", &path, e))?;
                live_bytes += (k.len() + v.len()) as u64;
            }
        }
        // The reports themselves, by their recorded sizes; a scan saved before sizes were
        // recorded is read once here.
        for key in t.summaries.iter().keys() {
            let key = key.map_err(|e| sled_err("measure", &path, e))?;
            let id = String::from_utf8_lossy(&key).into_owned();
            let recorded = t
                .sizes
                .get(&key)
                .map_err(|e| sled_err("measure", &path, e))?
                .map(|b| decode::<u64>(TREE_SIZES, &id, &b))
                .transpose()?;
            live_bytes += match recorded {
                Some(n) => n,
                None => t
                    .scans
                    .get(&key)
                    .map_err(|e| sled_err("measure", &path, e))?
                    .map_or(0, |v| (key.len() + v.len()) as u64),
            };
        }
        Ok(Usage {
            disk_bytes,
            live_bytes,
        })
    }

    /// Whether the directory has grown past [`COMPACT_FACTOR`] × the live data (and the floor).
    pub fn needs_compaction(&self) -> Result<bool> {
        let path = self.gen_path();
        let disk = crate::fsutil::disk_usage(&path).map_err(|source| StoreError::Io {
            op: "measure",
            path,
            source,
        })?;
        // Only a store past the floor is worth reading through to count its live bytes.
        if disk <= COMPACT_FLOOR_BYTES {
            return Ok(false);
        }
        let u = self.usage()?;
        Ok(u.disk_bytes > u.live_bytes.saturating_mul(COMPACT_FACTOR))
    }

    /// Compacts if [`Store::needs_compaction`]; returns whether it did.
    pub fn compact_if_bloated(&mut self) -> Result<bool> {
        if self.needs_compaction()? {
            self.compact()?;
            Ok(true)
        } else {
            Ok(false)
        }
    }

    /// Copies every record, byte for byte, into a fresh generation, makes it live atomically and
    /// removes the old one. Records that do not decode are copied as they are.
    pub fn compact(&mut self) -> Result<()> {
        let next = self.generation + 1;
        let next_path = gen_path(&self.root, next);
        if next_path.exists() {
            fs::remove_dir_all(&next_path).map_err(|source| StoreError::Io {
                op: "remove stale",
                path: next_path.clone(),
                source,
            })?;
        }
        {
            let fresh = Self::open_generation(&next_path)?;
            let t = self.t()?;
            for (src, dst) in [
                (&t.scans, &fresh.scans),
                (&t.summaries, &fresh.summaries),
                (&t.order, &fresh.order),
                (&t.meta, &fresh.meta),
                (&t.hostkeys, &fresh.hostkeys),
                (&t.sizes, &fresh.sizes),
            ]
            .into_iter()
            .chain(t.state.iter().zip(fresh.state.iter()))
            {
                for item in src.iter() {
                    let (k, v) = item.map_err(|e| sled_err("read", &self.gen_path(), e))?;
                    dst.insert(k, v)
                        .map_err(|e| sled_err("write", &next_path, e))?;
                }
            }
            fresh
                .db
                .flush()
                .map_err(|e| sled_err("flush", &next_path, e))?;
        }
        // The fresh generation starts sealed, so the next open need not copy it.
        guard::seal(&self.root, next)?;
        // The switch: from here on the new generation is the store.
        write_current(&self.root, next)?;
        let old = self.gen_path();
        drop(self.trees.take());
        self.generation = next;
        // A failure here only leaves garbage that the next open removes.
        if let Err(e) = fs::remove_dir_all(&old) {
            tracing::warn!("cannot remove old store generation {}: {e}", old.display());
        }
        guard::remove_seal(&self.root)?;
        self.trees = Some(Self::open_generation(&next_path)?);
        Ok(())
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        let Some(trees) = self.trees.take() else {
            return;
        };
        if !self.verified {
            return;
        }
        let flushed = trees.db.flush();
        // sled's flusher thread is joined when the last handle goes, so after this the files
        // are quiet and can be sealed.
        drop(trees);
        if flushed.is_ok() {
            if let Err(e) = guard::seal(&self.root, self.generation) {
                tracing::warn!("cannot seal the store {}: {e}", self.root.display());
            }
        }
    }
}

fn sled_config(path: &Path) -> sled::Config {
    sled::Config::new()
        .path(path)
        .cache_capacity(CACHE_BYTES)
        .mode(sled::Mode::LowSpace)
        .flush_every_ms(Some(1000))
}

fn gen_path(root: &Path, generation: u64) -> PathBuf {
    root.join(format!("{GEN_PREFIX}{generation}"))
}

fn create_private_dir(path: &Path) -> Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|source| StoreError::Io {
            op: "create directory",
            path: path.to_path_buf(),
            source,
        })
}

fn acquire_lock(root: &Path, wait: Duration) -> Result<File> {
    use fs2::FileExt;
    let path = root.join(LOCK_FILE);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .map_err(|source| StoreError::Io {
            op: "open lock file",
            path: path.clone(),
            source,
        })?;
    let deadline = Instant::now() + wait;
    loop {
        match file.try_lock_exclusive() {
            Ok(()) => return Ok(file),
            Err(e) if e.kind() == fs2::lock_contended_error().kind() => {
                if Instant::now() >= deadline {
                    return Err(StoreError::Locked {
                        path: root.to_path_buf(),
                    });
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(source) => {
                return Err(StoreError::Io {
                    op: "lock",
                    path,
                    source,
                })
            }
        }
    }
}

fn parse_generation(name: &str) -> Option<u64> {
    parse_numbered(name, GEN_PREFIX)
}

/// `PREFIX` followed by a generation number (1 or more, no sign, no leading junk): the names of
/// the scan database's and the knowledge base's generation directories.
fn parse_numbered(name: &str, prefix: &str) -> Option<u64> {
    let digits = name.strip_prefix(prefix)?;
    if digits.is_empty() || digits.len() > 19 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().filter(|g| *g > 0)
}

fn read_current(root: &Path) -> Result<Option<u64>> {
    read_pointer(root, CURRENT_FILE, GEN_PREFIX)
}

/// The generation named by the pointer file `file` (`CURRENT`, `KB_CURRENT`), if it exists.
fn read_pointer(root: &Path, file: &str, prefix: &str) -> Result<Option<u64>> {
    let path = root.join(file);
    let text = match fs::read(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(StoreError::Io {
                op: "read",
                path,
                source,
            })
        }
    };
    let name = std::str::from_utf8(&text).unwrap_or("").trim();
    parse_numbered(name, prefix)
        .map(Some)
        .ok_or_else(|| StoreError::Corrupt {
            path: path.clone(),
            reason: format!(
                "{file} does not name a generation ({:?})",
                String::from_utf8_lossy(&text[..text.len().min(64)])
            ),
        })
}

fn write_current(root: &Path, generation: u64) -> Result<()> {
    write_pointer(root, CURRENT_FILE, GEN_PREFIX, generation)
}

/// Points `file` at `PREFIX``generation`, atomically (the switch of a generation swap).
fn write_pointer(root: &Path, file: &str, prefix: &str, generation: u64) -> Result<()> {
    let path = root.join(file);
    crate::fsutil::write_atomic(&path, format!("{prefix}{generation}\n").as_bytes(), 0o600).map_err(
        |source| StoreError::Io {
            op: "write",
            path,
            source,
        },
    )
}

fn list_generations(root: &Path) -> Result<Vec<u64>> {
    let entries = fs::read_dir(root).map_err(|source| StoreError::Io {
        op: "read directory",
        path: root.to_path_buf(),
        source,
    })?;
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| StoreError::Io {
            op: "read directory",
            path: root.to_path_buf(),
            source,
        })?;
        if let Some(g) = entry.file_name().to_str().and_then(parse_generation) {
            out.push(g);
        }
    }
    Ok(out)
}

/// Removes generations other than the live one: the remains of an interrupted compaction (a
/// partial copy, or the old generation that was not yet removed).
fn remove_stale_generations(root: &Path, live: u64) -> Result<()> {
    for g in list_generations(root)? {
        if g != live {
            let path = gen_path(root, g);
            tracing::info!("removing stale store generation {}", path.display());
            fs::remove_dir_all(&path).map_err(|source| StoreError::Io {
                op: "remove stale generation",
                path,
                source,
            })?;
        }
    }
    Ok(())
}

fn encode<T: Serialize>(what: &str, body: &T) -> Result<Vec<u8>> {
    let err = |e: postcard::Error| StoreError::Encode {
        what: what.to_owned(),
        reason: e.to_string(),
    };
    let mut out = postcard::to_stdvec(&RECORD_FORMAT).map_err(err)?;
    out.extend(postcard::to_stdvec(body).map_err(err)?);
    Ok(out)
}

fn decode<T: DeserializeOwned>(tree: &'static str, key: &str, bytes: &[u8]) -> Result<T> {
    let key_str = || key.to_owned();
    let corrupt = |reason: String| StoreError::CorruptRecord {
        tree,
        key: key_str(),
        reason,
    };
    let (format, body) = postcard::take_from_bytes::<u16>(bytes)
        .map_err(|e| corrupt(format!("bad envelope: {e}")))?;
    if format != RECORD_FORMAT {
        return Err(StoreError::UnknownRecordFormat {
            tree,
            key: key_str(),
            format,
            supported: RECORD_FORMAT,
        });
    }
    let (value, rest) =
        postcard::take_from_bytes::<T>(body).map_err(|e| corrupt(format!("bad body: {e}")))?;
    if !rest.is_empty() {
        return Err(corrupt(format!("{} trailing bytes", rest.len())));
    }
    Ok(value)
}

fn sled_err(op: &'static str, path: &Path, e: sled::Error) -> StoreError {
    match e {
        sled::Error::Corruption { at, .. } => StoreError::Corrupt {
            path: path.to_path_buf(),
            reason: match at {
                Some(at) => format!("sled detected corruption at {at:?}"),
                None => "sled detected corruption".to_owned(),
            },
        },
        sled::Error::Io(source) => StoreError::Io {
            op,
            path: path.to_path_buf(),
            source,
        },
        other => StoreError::Db {
            op,
            path: path.to_path_buf(),
            reason: other.to_string(),
        },
    }
}

fn sled_err_txn(
    op: &'static str,
    path: &Path,
    e: sled::transaction::TransactionError<()>,
) -> StoreError {
    match e {
        sled::transaction::TransactionError::Storage(e) => sled_err(op, path, e),
        sled::transaction::TransactionError::Abort(()) => StoreError::Db {
            op,
            path: path.to_path_buf(),
            reason: "transaction aborted".to_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_round_trips_and_rejects_newer_formats() {
        let bytes = encode("test", &(7u32, "x".to_string())).unwrap_or_default();
        let back: Result<(u32, String)> = decode("t", "k", &bytes);
        assert_eq!(back.ok(), Some((7, "x".to_string())));

        let mut newer = postcard::to_stdvec(&(RECORD_FORMAT + 1)).unwrap_or_default();
        newer.extend_from_slice(&bytes[1..]);
        match decode::<(u32, String)>("t", "k", &newer) {
            Err(StoreError::UnknownRecordFormat { key, format, .. }) => {
                assert_eq!(key, "k");
                assert_eq!(format, RECORD_FORMAT + 1);
            }
            other => panic!("expected UnknownRecordFormat, got {other:?}"),
        }
    }

    #[test]
    fn envelope_rejects_truncated_and_trailing_bytes() {
        let bytes = encode("test", &(7u32, "hello".to_string())).unwrap_or_default();
        for cut in 0..bytes.len() {
            assert!(
                matches!(
                    decode::<(u32, String)>("t", "k", &bytes[..cut]),
                    Err(StoreError::CorruptRecord { .. })
                ),
                "truncated at {cut}"
            );
        }
        let mut long = bytes.clone();
        long.push(0);
        assert!(matches!(
            decode::<(u32, String)>("t", "k", &long),
            Err(StoreError::CorruptRecord { .. })
        ));
    }

    #[test]
    fn random_and_mutated_bytes_never_panic_the_decoder() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
        let report = NetReport {
            picket_version: "0.1.0".into(),
            scan: picket_model::ScanMeta {
                id: "20261121T070000Z-deadbeef".into(),
                kind: ScanKind::Net,
                started_at: "2026-11-21T07:00:00Z".into(),
                finished_at: "2026-11-21T07:00:01Z".into(),
                targets: vec!["198.18.0.0/24".into()],
            },
            hosts: vec![],
            findings: vec![],
            stats: picket_model::ScanStats::default(),
        };
        let good = encode("test", &StoredScan::Net(report)).unwrap_or_default();
        for _ in 0..20_000 {
            let mut bytes = good.clone();
            match rng.gen_range(0..3) {
                0 => {
                    let i = rng.gen_range(0..bytes.len());
                    bytes[i] = rng.gen();
                }
                1 => bytes.truncate(rng.gen_range(0..bytes.len())),
                _ => {
                    let n = rng.gen_range(0..64);
                    bytes = (0..n).map(|_| rng.gen()).collect();
                }
            }
            // Any outcome but a panic is fine; errors must name the key.
            if let Err(e) = decode::<StoredScan>(TREE_SCANS, "k", &bytes) {
                assert!(e.to_string().contains("\"k\""), "{e}");
            }
        }
    }

    #[test]
    fn generation_names_are_strict() {
        assert_eq!(parse_generation("gen-1"), Some(1));
        assert_eq!(parse_generation("gen-42"), Some(42));
        for bad in [
            "gen-",
            "gen-0",
            "gen--1",
            "gen-1/..",
            "gen-+1",
            "x-1",
            "gen-99999999999999999999",
        ] {
            assert_eq!(parse_generation(bad), None, "{bad}");
        }
    }
}
