//! The platform's store: appliances, enrollment codes, jobs, commands, scans and result chunks.
//!
//! Why one module: this is the only code that touches sled, so the trees, key layouts and the
//! record envelope are defined and versioned in one place, and the rest of the platform sees typed
//! records and typed errors.
//!
//! Layout of `STATE_DIR/store/` (a sled database, directory 0700). Trees:
//! - `meta`: `schema` → [`SCHEMA_VERSION`] (a store written by a newer platform is refused; a
//!   schema 1 store is upgraded in place, since schema 2 only adds the `revoked` tree).
//! - `appliances`: appliance id → [`ApplianceRec`] (current and superseded certificate serials,
//!   sealing key, last heartbeat).
//! - `revoked`: appliance id → [`RevocationRec`] (schema 2). Written once, by compare-and-swap,
//!   and never removed: every call of a revoked appliance is refused, whichever certificate it
//!   presents. A tree of its own, so appliance records keep their format.
//! - `codes`: SHA-256 of the normalised enrollment code → [`CodeRec`]. The code itself is never
//!   stored. Consumption is a compare-and-swap, so of two concurrent enrollments with one code
//!   exactly one wins.
//! - `jobs`: job id → [`JobRec`]; `appliance_jobs`: `appliance/job` → `[]` (every job of an
//!   appliance); `live_jobs`: the same keys for jobs still to do or scheduled to run again, so a
//!   poll reads only those, however many finished jobs an appliance has. After every job update
//!   the entry is settled (inserted if live, else removed and re-checked), so concurrent updates
//!   can leave a stale entry (skipped and removed by the next poll) but never lose a live one.
//! - `commands`: command id → [`CommandRec`]; `open_commands`: `appliance/command` → `[]` for
//!   commands not yet answered.
//! - `scans`: `appliance/scan` → [`ScanRec`] (counters, chunk 0's report part).
//! - `chunks`: `appliance/scan` `\0` `seq (u32 BE)` → [`ChunkRec`]: one record per chunk naming its
//!   body in the body log (`STATE_DIR/bodies/`, see [`bodies`]): the chunk's findings encoded together, so
//!   ingest is one append and one small insert per chunk, not one record per finding.
//!
//! Every value is an envelope: `u16` record format (big endian), then the postcard body (JSON for
//! `commands`, whose tagged enum postcard cannot decode). An
//! undecodable or newer record is an error naming the tree and key, never a panic.
//!
//! Durability: a chunk's body is appended and synced, then its record is inserted (with its scan's
//! counters, in one transaction) and the log is flushed (fsync), before the platform answers
//! `stored`; so an acknowledged chunk survives a crash, and an unacknowledged one is re-sent by the
//! appliance and stored then. Idempotency comes from the chunk key: the transaction inserts only if
//! the key is absent.

pub mod bodies;

use crate::error::PlatformError;
use bodies::{BodyLog, BodyRef};
use picket_model::api::{
    ApplianceView, Command, CommandResult, Heartbeat, Job, JobState, JobView, ResultChunk,
    StoredFinding,
};
use picket_model::{Finding, ScanKind};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};
use std::path::Path;

pub const SCHEMA_VERSION: u16 = 2;
const RECORD_FORMAT: u16 = 1;

/// Retries of a compare-and-swap update before giving up (contention is per record and rare).
const CAS_RETRIES: usize = 64;

/// Default and largest number of findings one query returns.
pub const DEFAULT_FINDINGS_LIMIT: usize = 10_000;
pub const MAX_FINDINGS_LIMIT: usize = 200_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApplianceRec {
    pub id: String,
    pub label: Option<String>,
    pub hostname: String,
    pub picket_version: String,
    /// X25519 public key, hex, to which job credentials are sealed.
    pub sealing_key: String,
    pub enrolled_at: i64,
    pub cert_serial: String,
    pub cert_not_after: i64,
    /// Serials replaced by a renewal, each with the time until which it is still accepted.
    pub superseded: Vec<(String, i64)>,
    pub last_seen: Option<i64>,
    pub last_heartbeat: Option<Heartbeat>,
    pub last_heartbeat_at: Option<i64>,
}

/// An operator's revocation of an appliance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevocationRec {
    pub revoked_at: i64,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeRec {
    pub label: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    /// Set once, atomically, by the enrollment that consumed the code.
    pub used_by: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRec {
    pub job: Job,
    pub appliance_id: String,
    pub state: JobState,
    pub reason: Option<String>,
    pub scan_id: Option<String>,
    pub chunks_expected: Option<u32>,
    pub updated_at: i64,
    /// Scheduled jobs: when the next run is due (set when a run ends).
    pub next_run_at: Option<i64>,
    pub runs: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandRec {
    pub appliance_id: String,
    pub command: Command,
    pub result: Option<CommandResult>,
    pub answered_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanRec {
    pub appliance_id: String,
    pub scan_id: String,
    pub job_id: Option<String>,
    pub kind: ScanKind,
    pub total: u32,
    pub chunks: u32,
    pub findings: u64,
    pub started_at: String,
    pub finished_at: String,
    pub targets: Vec<String>,
    /// Chunk 0's kind-specific report part, in the body log (it can be megabytes; the scan
    /// record is read on every chunk's ingest).
    pub report_part: Option<BodyRef>,
    pub first_received: i64,
    pub last_received: i64,
}

/// Where a chunk's findings (and chunk 0's report part) were appended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkBodies {
    pub findings: BodyRef,
    pub report_part: Option<BodyRef>,
}

/// The index record of a chunk; its findings are in the body log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkRec {
    pub job_id: Option<String>,
    pub kind: ScanKind,
    pub findings: u32,
    pub body: BodyRef,
}

/// An operator's view of a remote command and its answer (platform-only type).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandView {
    pub command: Command,
    pub appliance_id: String,
    pub result: Option<CommandResult>,
    pub answered_at: Option<String>,
}

/// Outcome of consuming an enrollment code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumedCode {
    pub label: Option<String>,
}

/// Group commit: one thread owns every flush of the log. Callers queue a request and wait; the
/// thread takes all queued requests, fsyncs once, and answers them all.
///
/// Why not sled's `flush_async`: it runs `flush` on sled's own I/O pool, and the log write a flush
/// waits for is queued on that same pool, which grows only when its queue is deep. A handful of
/// concurrent `flush_async` calls occupied every pool thread waiting for a write none of them
/// could run, and the platform stopped (seen with 16 concurrent enrollments). Blocking flushes on
/// the runtime's worker threads would stall request handling instead.
#[derive(Debug)]
struct Flusher {
    tx: std::sync::Mutex<std::sync::mpsc::Sender<tokio::sync::oneshot::Sender<Result<(), String>>>>,
    /// Joined on drop, so that once the last `Store` is gone the thread's handle on the database
    /// is gone too and the same directory can be opened again at once (a restart in-process).
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Flusher {
    fn drop(&mut self) {
        // Replacing the sender closes the channel; the thread finishes its batch and ends.
        let (closed, _) = std::sync::mpsc::channel();
        if let Ok(mut tx) = self.tx.lock() {
            *tx = closed;
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Requests answered by one fsync, at most.
const FLUSH_BATCH: usize = 4096;

impl Flusher {
    fn start(db: sled::Db, bodies: std::sync::Arc<BodyLog>) -> Result<Flusher, PlatformError> {
        let (tx, rx) =
            std::sync::mpsc::channel::<tokio::sync::oneshot::Sender<Result<(), String>>>();
        let thread = std::thread::Builder::new()
            .name("store-flush".into())
            .spawn(move || {
                // Ends when every Store clone (and so the sender) is gone.
                while let Ok(first) = rx.recv() {
                    let mut batch = vec![first];
                    while batch.len() < FLUSH_BATCH {
                        match rx.try_recv() {
                            Ok(w) => batch.push(w),
                            Err(_) => break,
                        }
                    }
                    // Bodies first: a record flushed by sled must never name unsynced bytes.
                    let result = bodies
                        .sync()
                        .map_err(|e| e.to_string())
                        .and_then(|()| db.flush().map(|_| ()).map_err(|e| e.to_string()));
                    for w in batch {
                        let _ = w.send(result.clone());
                    }
                }
            })
            .map_err(|e| PlatformError::io("starting the flush thread of", "store", e))?;
        Ok(Flusher {
            tx: std::sync::Mutex::new(tx),
            thread: Some(thread),
        })
    }
}

#[derive(Debug, Clone)]
pub struct Store {
    db: sled::Db,
    bodies: std::sync::Arc<BodyLog>,
    flusher: std::sync::Arc<Flusher>,
    meta: sled::Tree,
    appliances: sled::Tree,
    revoked: sled::Tree,
    codes: sled::Tree,
    jobs: sled::Tree,
    appliance_jobs: sled::Tree,
    live_jobs: sled::Tree,
    commands: sled::Tree,
    open_commands: sled::Tree,
    scans: sled::Tree,
    chunks: sled::Tree,
}

pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

pub fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

fn encode<T: Serialize>(what: &'static str, v: &T) -> Result<Vec<u8>, PlatformError> {
    enveloped(what, |out| {
        postcard::to_io(v, out)
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
}

/// Commands are JSON inside the envelope: `CommandKind` is an internally tagged enum, which
/// postcard (not self-describing) cannot decode.
fn encode_json<T: Serialize>(what: &'static str, v: &T) -> Result<Vec<u8>, PlatformError> {
    enveloped(what, |out| {
        serde_json::to_writer(out, v).map_err(|e| e.to_string())
    })
}

/// The format header, then what `write` appends.
fn enveloped(
    what: &'static str,
    write: impl FnOnce(&mut Vec<u8>) -> Result<(), String>,
) -> Result<Vec<u8>, PlatformError> {
    let mut out = RECORD_FORMAT.to_be_bytes().to_vec();
    write(&mut out).map_err(|e| PlatformError::Corrupt {
        tree: what,
        key: String::new(),
        detail: format!("encoding: {e}"),
    })?;
    Ok(out)
}

fn decode_json<T: DeserializeOwned>(
    tree: &'static str,
    key: &[u8],
    bytes: &[u8],
) -> Result<T, PlatformError> {
    let body = envelope_body(tree, key, bytes)?;
    serde_json::from_slice(body).map_err(|e| corrupt(tree, key, e.to_string()))
}

fn decode<T: DeserializeOwned>(
    tree: &'static str,
    key: &[u8],
    bytes: &[u8],
) -> Result<T, PlatformError> {
    let body = envelope_body(tree, key, bytes)?;
    postcard::from_bytes(body).map_err(|e| corrupt(tree, key, e.to_string()))
}

/// A record's bytes after the format header, once the header says this platform can read them.
fn envelope_body<'a>(
    tree: &'static str,
    key: &[u8],
    bytes: &'a [u8],
) -> Result<&'a [u8], PlatformError> {
    let (head, body) = bytes
        .split_at_checked(2)
        .ok_or_else(|| corrupt(tree, key, "shorter than the envelope".into()))?;
    let format = u16::from_be_bytes([head[0], head[1]]);
    if format != RECORD_FORMAT {
        return Err(corrupt(
            tree,
            key,
            format!("record format {format}, this platform reads {RECORD_FORMAT}"),
        ));
    }
    Ok(body)
}

fn corrupt(tree: &'static str, key: &[u8], detail: String) -> PlatformError {
    PlatformError::Corrupt {
        tree,
        key: String::from_utf8_lossy(key).into_owned(),
        detail,
    }
}

/// `appliance/rest`: appliance ids are ours (no `/`), so the prefix is unambiguous.
fn pair_key(appliance: &str, rest: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(appliance.len() + rest.len() + 1);
    k.extend_from_slice(appliance.as_bytes());
    k.push(b'/');
    k.extend_from_slice(rest.as_bytes());
    k
}

fn chunk_key(appliance: &str, scan: &str, seq: u32) -> Vec<u8> {
    let mut k = pair_key(appliance, scan);
    k.push(0);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

fn chunk_prefix(appliance: &str, scan: &str) -> Vec<u8> {
    let mut k = pair_key(appliance, scan);
    k.push(0);
    k
}

fn random_hex(n: usize) -> Result<String, PlatformError> {
    use ring::rand::SecureRandom;
    let mut b = vec![0u8; n];
    ring::rand::SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| PlatformError::Unavailable("system random generator failed".into()))?;
    Ok(crate::ca::hex(&b))
}

/// A new id: a sortable UTC time, then random hex (`job-20261121T101010Z-1a2b3c4d`).
pub fn new_id(prefix: &str) -> Result<String, PlatformError> {
    let t = time::OffsetDateTime::now_utc();
    Ok(format!(
        "{prefix}-{:04}{:02}{:02}T{:02}{:02}{:02}Z-{}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        random_hex(6)?
    ))
}

/// Appliance-chosen ids (scan ids) become parts of keys: a narrow alphabet keeps them so.
pub fn valid_scan_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

impl Store {
    pub fn open(state_dir: &Path, cache_bytes: u64) -> Result<Store, PlatformError> {
        let dir = state_dir.join("store");
        {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
                .map_err(|e| PlatformError::io("creating", &dir, e))?;
        }
        let db = sled::Config::new()
            .path(&dir)
            .cache_capacity(cache_bytes)
            .open()
            .map_err(|source| match source {
                // sled reports the held lock as an I/O error whose text names it.
                sled::Error::Io(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.to_string().contains("could not acquire lock") =>
                {
                    PlatformError::Unavailable(format!(
                        "store {} is in use by another process",
                        dir.display()
                    ))
                }
                source => PlatformError::Store {
                    context: "opening",
                    source,
                },
            })?;
        // Opened after sled, whose lock keeps a second process out of both.
        let bodies = std::sync::Arc::new(BodyLog::open(&state_dir.join("bodies"))?);
        let tree = |name: &str| {
            db.open_tree(name)
                .map_err(PlatformError::store("opening a tree"))
        };
        let store = Store {
            meta: tree("meta")?,
            appliances: tree("appliances")?,
            revoked: tree("revoked")?,
            codes: tree("codes")?,
            jobs: tree("jobs")?,
            appliance_jobs: tree("appliance_jobs")?,
            live_jobs: tree("live_jobs")?,
            commands: tree("commands")?,
            open_commands: tree("open_commands")?,
            scans: tree("scans")?,
            chunks: tree("chunks")?,
            flusher: std::sync::Arc::new(Flusher::start(db.clone(), bodies.clone())?),
            bodies,
            db,
        };
        match store
            .meta
            .get("schema")
            .map_err(PlatformError::store("reading meta"))?
        {
            None => {
                store
                    .meta
                    .insert("schema", &SCHEMA_VERSION.to_be_bytes())
                    .map_err(PlatformError::store("writing meta"))?;
            }
            Some(v) => {
                let found = v
                    .as_ref()
                    .try_into()
                    .map(u16::from_be_bytes)
                    .unwrap_or(u16::MAX);
                if found == 1 {
                    // Schema 2 only added the `revoked` tree, opened (empty) above.
                    store
                        .meta
                        .insert("schema", &SCHEMA_VERSION.to_be_bytes())
                        .map_err(PlatformError::store("writing meta"))?;
                } else if found != SCHEMA_VERSION {
                    return Err(PlatformError::Corrupt {
                        tree: "meta",
                        key: "schema".into(),
                        detail: format!("schema {found}, this platform reads {SCHEMA_VERSION}"),
                    });
                }
            }
        }
        Ok(store)
    }

    /// Returns once everything written before the call is on disk (group commit, see [`Flusher`]).
    pub async fn flush(&self) -> Result<(), PlatformError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let gone = || PlatformError::Unavailable("the store's flush thread has stopped".into());
        self.flusher
            .tx
            .lock()
            .map_err(|_| gone())?
            .send(tx)
            .map_err(|_| gone())?;
        rx.await
            .map_err(|_| gone())?
            .map_err(|e| PlatformError::Store {
                context: "flushing",
                source: sled::Error::Io(std::io::Error::other(e)),
            })
    }

    /// A flush from a thread outside the runtime (the command-line helpers).
    pub fn flush_blocking(&self) -> Result<(), PlatformError> {
        self.bodies.sync()?;
        self.db
            .flush()
            .map(|_| ())
            .map_err(PlatformError::store("flushing"))
    }

    fn get<T: DeserializeOwned>(
        tree: &sled::Tree,
        name: &'static str,
        key: &[u8],
    ) -> Result<Option<T>, PlatformError> {
        match tree.get(key).map_err(PlatformError::store("reading"))? {
            None => Ok(None),
            Some(v) => decode(name, key, &v).map(Some),
        }
    }

    /// Read-modify-write of one record by compare-and-swap. `f` returns the new value (or an
    /// error, which aborts without writing).
    fn update<T, F>(
        tree: &sled::Tree,
        name: &'static str,
        key: &[u8],
        mut f: F,
    ) -> Result<T, PlatformError>
    where
        T: Serialize + DeserializeOwned,
        F: FnMut(Option<T>) -> Result<T, PlatformError>,
    {
        for _ in 0..CAS_RETRIES {
            let old = tree.get(key).map_err(PlatformError::store("reading"))?;
            let decoded = match &old {
                Some(v) => Some(decode::<T>(name, key, v)?),
                None => None,
            };
            let new = f(decoded)?;
            let bytes = encode(name, &new)?;
            match tree
                .compare_and_swap(key, old, Some(bytes))
                .map_err(PlatformError::store("updating"))?
            {
                Ok(()) => return Ok(new),
                Err(_) => continue,
            }
        }
        Err(PlatformError::Unavailable(format!(
            "record {} in {name} is contended",
            String::from_utf8_lossy(key)
        )))
    }

    /// Read-modify-write of a record that must exist: `NotFound` (as `what`) when it does not.
    fn update_existing<T, F>(
        tree: &sled::Tree,
        name: &'static str,
        what: &'static str,
        id: &str,
        mut f: F,
    ) -> Result<T, PlatformError>
    where
        T: Serialize + DeserializeOwned,
        F: FnMut(&mut T) -> Result<(), PlatformError>,
    {
        Self::update(tree, name, id.as_bytes(), |old: Option<T>| {
            let mut rec = old.ok_or_else(|| PlatformError::NotFound {
                what,
                id: id.to_string(),
            })?;
            f(&mut rec)?;
            Ok(rec)
        })
    }

    /// Every record of a tree, in key order.
    fn all<T: DeserializeOwned>(
        tree: &sled::Tree,
        name: &'static str,
        context: &'static str,
    ) -> Result<Vec<T>, PlatformError> {
        let mut out = Vec::new();
        for kv in tree.iter() {
            let (k, v) = kv.map_err(PlatformError::store(context))?;
            out.push(decode(name, &k, &v)?);
        }
        Ok(out)
    }

    // ---- enrollment codes ----

    pub fn code_hash(code: &str) -> Vec<u8> {
        let norm: String = code
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .map(|c| c.to_ascii_uppercase())
            .collect();
        ring::digest::digest(&ring::digest::SHA256, norm.as_bytes())
            .as_ref()
            .to_vec()
    }

    pub fn add_code(&self, code: &str, rec: &CodeRec) -> Result<(), PlatformError> {
        self.codes
            .insert(Self::code_hash(code), encode("codes", rec)?)
            .map_err(PlatformError::store("writing a code"))?;
        Ok(())
    }

    /// Whether the code could be consumed now (without consuming it), so that enrollment refuses
    /// a wrong code before spending any signing work on it.
    pub fn check_code(&self, code: &str) -> Result<(), PlatformError> {
        let rec: Option<CodeRec> = Self::get(&self.codes, "codes", &Self::code_hash(code))?;
        match rec {
            None => Err(PlatformError::Unauthorized(
                "unknown enrollment code".into(),
            )),
            Some(r) if r.used_by.is_some() => Err(PlatformError::CodeUsed),
            Some(r) if r.expires_at <= now() => Err(PlatformError::CodeExpired),
            Some(_) => Ok(()),
        }
    }

    /// Marks the code used by `appliance_id`, atomically: of concurrent callers with the same code
    /// exactly one gets `Ok`, the others [`PlatformError::CodeUsed`].
    pub fn consume_code(
        &self,
        code: &str,
        appliance_id: &str,
    ) -> Result<ConsumedCode, PlatformError> {
        let key = Self::code_hash(code);
        let now = now();
        let rec: CodeRec = Self::update(&self.codes, "codes", &key, |old: Option<CodeRec>| {
            let Some(mut rec) = old else {
                return Err(PlatformError::Unauthorized(
                    "unknown enrollment code".into(),
                ));
            };
            if rec.used_by.is_some() {
                return Err(PlatformError::CodeUsed);
            }
            if rec.expires_at <= now {
                return Err(PlatformError::CodeExpired);
            }
            rec.used_by = Some(appliance_id.to_string());
            Ok(rec)
        })?;
        Ok(ConsumedCode { label: rec.label })
    }

    // ---- appliances ----

    pub fn put_appliance(&self, rec: &ApplianceRec) -> Result<(), PlatformError> {
        self.appliances
            .insert(rec.id.as_bytes(), encode("appliances", rec)?)
            .map_err(PlatformError::store("writing an appliance"))?;
        Ok(())
    }

    pub fn appliance(&self, id: &str) -> Result<Option<ApplianceRec>, PlatformError> {
        Self::get(&self.appliances, "appliances", id.as_bytes())
    }

    pub fn update_appliance<F>(&self, id: &str, f: F) -> Result<ApplianceRec, PlatformError>
    where
        F: FnMut(&mut ApplianceRec) -> Result<(), PlatformError>,
    {
        Self::update_existing(&self.appliances, "appliances", "appliance", id, f)
    }

    pub fn appliances(&self) -> Result<Vec<ApplianceRec>, PlatformError> {
        Self::all(&self.appliances, "appliances", "listing appliances")
    }

    pub fn revocation(&self, id: &str) -> Result<Option<RevocationRec>, PlatformError> {
        Self::get(&self.revoked, "revoked", id.as_bytes())
    }

    /// The refusal every call of a revoked appliance gets.
    pub fn refuse_if_revoked(&self, appliance_id: &str) -> Result<(), PlatformError> {
        match self.revocation(appliance_id)? {
            Some(r) => Err(PlatformError::Revoked {
                appliance: appliance_id.to_owned(),
                at: rfc3339(r.revoked_at),
            }),
            None => Ok(()),
        }
    }

    /// Revokes a known appliance, once: a second call keeps (and returns) the first revocation.
    /// Not flushed: callers flush before answering.
    pub fn revoke(&self, id: &str, reason: Option<String>) -> Result<RevocationRec, PlatformError> {
        if self.appliance(id)?.is_none() {
            return Err(PlatformError::NotFound {
                what: "appliance",
                id: id.to_string(),
            });
        }
        let rec = RevocationRec {
            revoked_at: now(),
            reason,
        };
        let swapped = self
            .revoked
            .compare_and_swap(id.as_bytes(), None::<&[u8]>, Some(encode("revoked", &rec)?))
            .map_err(PlatformError::store("revoking an appliance"))?;
        match swapped {
            Ok(()) => Ok(rec),
            Err(_) => self.revocation(id)?.ok_or_else(|| PlatformError::Corrupt {
                tree: "revoked",
                key: id.to_string(),
                detail: "revocation vanished".into(),
            }),
        }
    }

    /// Is this (verified) certificate still the appliance's? The current serial always; a
    /// superseded one until its grace period ends.
    pub fn authorize(
        &self,
        appliance_id: &str,
        serial: &str,
    ) -> Result<ApplianceRec, PlatformError> {
        let rec = self.appliance(appliance_id)?.ok_or_else(|| {
            PlatformError::Unauthorized(format!("unknown appliance {appliance_id}"))
        })?;
        self.refuse_if_revoked(appliance_id)?;
        if rec.cert_serial == serial {
            return Ok(rec);
        }
        let now = now();
        if rec
            .superseded
            .iter()
            .any(|(s, until)| s == serial && *until > now)
        {
            return Ok(rec);
        }
        Err(PlatformError::Unauthorized(format!(
            "certificate {serial} of appliance {appliance_id} was superseded"
        )))
    }

    // ---- jobs ----

    pub fn put_job(&self, rec: &JobRec) -> Result<(), PlatformError> {
        let body = encode("jobs", rec)?;
        let index = pair_key(&rec.appliance_id, &rec.job.id);
        let live = is_live(rec);
        (&self.jobs, &self.appliance_jobs, &self.live_jobs)
            .transaction(|(jobs, idx, live_idx)| {
                jobs.insert(rec.job.id.as_bytes(), body.clone())?;
                idx.insert(index.clone(), &[] as &[u8])?;
                if live {
                    live_idx.insert(index.clone(), &[] as &[u8])?;
                }
                Ok::<(), ConflictableTransactionError<PlatformError>>(())
            })
            .map_err(tx_error("writing a job"))
    }

    /// Brings the job's `live_jobs` entry in line with the job (see the module docs).
    fn settle_live(&self, appliance_id: &str, job_id: &str) -> Result<(), PlatformError> {
        let key = pair_key(appliance_id, job_id);
        let live_now = |s: &Self| -> Result<bool, PlatformError> {
            Ok(s.job(job_id)?.is_some_and(|j| is_live(&j)))
        };
        let err = PlatformError::store("updating live jobs");
        if live_now(self)? {
            self.live_jobs.insert(key, &[] as &[u8]).map_err(err)?;
        } else {
            self.live_jobs
                .remove(&key)
                .map_err(PlatformError::store("updating live jobs"))?;
            if live_now(self)? {
                self.live_jobs.insert(key, &[] as &[u8]).map_err(err)?;
            }
        }
        Ok(())
    }

    /// The appliance's jobs still to do or scheduled (stale index entries are removed).
    pub fn live_jobs_of(&self, appliance_id: &str) -> Result<Vec<JobRec>, PlatformError> {
        let mut out = Vec::new();
        let mut stale = Vec::new();
        for kv in self.live_jobs.scan_prefix(pair_key(appliance_id, "")) {
            let (k, _) = kv.map_err(PlatformError::store("listing live jobs"))?;
            let id = String::from_utf8_lossy(k.get(appliance_id.len() + 1..).unwrap_or_default())
                .into_owned();
            match self.job(&id)? {
                Some(rec) if is_live(&rec) => out.push(rec),
                _ => stale.push(id),
            }
        }
        for id in stale {
            self.settle_live(appliance_id, &id)?;
        }
        Ok(out)
    }

    pub fn job(&self, id: &str) -> Result<Option<JobRec>, PlatformError> {
        Self::get(&self.jobs, "jobs", id.as_bytes())
    }

    pub fn update_job<F>(&self, id: &str, f: F) -> Result<JobRec, PlatformError>
    where
        F: FnMut(&mut JobRec) -> Result<(), PlatformError>,
    {
        let appliance =
            self.job(id)?
                .map(|j| j.appliance_id)
                .ok_or_else(|| PlatformError::NotFound {
                    what: "job",
                    id: id.to_string(),
                })?;
        // Indexed before the change, settled after: a crash in between leaves at worst a stale
        // entry, never a live job missing from the index.
        self.live_jobs
            .insert(pair_key(&appliance, id), &[] as &[u8])
            .map_err(PlatformError::store("updating live jobs"))?;
        let rec = Self::update_existing(&self.jobs, "jobs", "job", id, f)?;
        self.settle_live(&appliance, id)?;
        Ok(rec)
    }

    pub fn jobs(&self) -> Result<Vec<JobRec>, PlatformError> {
        Self::all(&self.jobs, "jobs", "listing jobs")
    }

    pub fn jobs_of(&self, appliance_id: &str) -> Result<Vec<JobRec>, PlatformError> {
        let mut out = Vec::new();
        for kv in self.appliance_jobs.scan_prefix(pair_key(appliance_id, "")) {
            let (k, _) = kv.map_err(PlatformError::store("listing jobs"))?;
            let id = k.get(appliance_id.len() + 1..).unwrap_or_default();
            if let Some(rec) = Self::get::<JobRec>(&self.jobs, "jobs", id)? {
                out.push(rec);
            }
        }
        Ok(out)
    }

    pub fn job_view(&self, rec: &JobRec) -> Result<JobView, PlatformError> {
        let scan = match &rec.scan_id {
            Some(s) => self.scan(&rec.appliance_id, s)?,
            None => None,
        };
        Ok(JobView {
            job: rec.job.clone(),
            appliance_id: rec.appliance_id.clone(),
            state: rec.state,
            reason: rec.reason.clone(),
            scan_id: rec.scan_id.clone(),
            chunks_received: scan.as_ref().map(|s| s.chunks).unwrap_or(0),
            chunks_expected: rec.chunks_expected.or(scan.as_ref().map(|s| s.total)),
            findings: scan.as_ref().map(|s| s.findings).unwrap_or(0),
            updated_at: rfc3339(rec.updated_at),
        })
    }

    // ---- commands ----

    pub fn put_command(&self, rec: &CommandRec) -> Result<(), PlatformError> {
        let body = encode_json("commands", rec)?;
        let index = pair_key(&rec.appliance_id, &rec.command.id);
        (&self.commands, &self.open_commands)
            .transaction(|(cmds, idx)| {
                cmds.insert(rec.command.id.as_bytes(), body.clone())?;
                idx.insert(index.clone(), &[] as &[u8])?;
                Ok::<(), ConflictableTransactionError<PlatformError>>(())
            })
            .map_err(tx_error("writing a command"))
    }

    pub fn command(&self, id: &str) -> Result<Option<CommandRec>, PlatformError> {
        match self
            .commands
            .get(id.as_bytes())
            .map_err(PlatformError::store("reading"))?
        {
            None => Ok(None),
            Some(v) => decode_json("commands", id.as_bytes(), &v).map(Some),
        }
    }

    pub fn open_commands(&self, appliance_id: &str) -> Result<Vec<Command>, PlatformError> {
        let mut out = Vec::new();
        for kv in self.open_commands.scan_prefix(pair_key(appliance_id, "")) {
            let (k, _) = kv.map_err(PlatformError::store("listing commands"))?;
            let id = k.get(appliance_id.len() + 1..).unwrap_or_default();
            let id = String::from_utf8_lossy(id);
            if let Some(rec) = self.command(&id)? {
                out.push(rec.command);
            }
        }
        Ok(out)
    }

    pub fn commands_of(&self, appliance_id: &str) -> Result<Vec<CommandView>, PlatformError> {
        let mut out = Vec::new();
        for kv in self.commands.iter() {
            let (k, v) = kv.map_err(PlatformError::store("listing commands"))?;
            let rec: CommandRec = decode_json("commands", &k, &v)?;
            if rec.appliance_id == appliance_id {
                out.push(CommandView {
                    command: rec.command,
                    appliance_id: rec.appliance_id,
                    result: rec.result,
                    answered_at: rec.answered_at.map(rfc3339),
                });
            }
        }
        Ok(out)
    }

    /// Records an appliance's answer; the command leaves the appliance's open list. A second
    /// answer to the same command is refused (the first one stands).
    pub fn answer_command(
        &self,
        appliance_id: &str,
        command_id: &str,
        result: CommandResult,
    ) -> Result<(), PlatformError> {
        let body_of = |rec: &CommandRec| encode_json("commands", rec);
        let existing = self.command(command_id)?;
        let Some(mut rec) = existing.filter(|r| r.appliance_id == appliance_id) else {
            return Err(PlatformError::NotFound {
                what: "command",
                id: command_id.to_string(),
            });
        };
        if rec.result.is_some() {
            return Err(PlatformError::Conflict(format!(
                "command {command_id} was already answered"
            )));
        }
        rec.result = Some(result);
        rec.answered_at = Some(now());
        let body = body_of(&rec)?;
        let index = pair_key(appliance_id, command_id);
        (&self.commands, &self.open_commands)
            .transaction(|(cmds, idx)| {
                cmds.insert(command_id.as_bytes(), body.clone())?;
                idx.remove(index.clone())?;
                Ok::<(), ConflictableTransactionError<PlatformError>>(())
            })
            .map_err(tx_error("answering a command"))
    }

    // ---- results ----

    pub fn scan(
        &self,
        appliance_id: &str,
        scan_id: &str,
    ) -> Result<Option<ScanRec>, PlatformError> {
        Self::get(&self.scans, "scans", &pair_key(appliance_id, scan_id))
    }

    /// Whether this chunk is already stored (a re-send).
    pub fn has_chunk(
        &self,
        appliance_id: &str,
        scan_id: &str,
        seq: u32,
    ) -> Result<bool, PlatformError> {
        self.chunks
            .contains_key(chunk_key(appliance_id, scan_id, seq))
            .map_err(PlatformError::store("reading chunks"))
    }

    /// Appends a chunk's findings to the body log. Not durable until [`Store::flush`]; only then
    /// may [`Store::ingest`] name it.
    pub fn append_body(&self, chunk: &ResultChunk) -> Result<ChunkBodies, PlatformError> {
        let bytes = postcard::to_stdvec(&chunk.findings).map_err(|e| PlatformError::Corrupt {
            tree: "bodies",
            key: chunk.key(),
            detail: format!("encoding: {e}"),
        })?;
        let findings = self.bodies.append(&bytes)?;
        let report_part = match (&chunk.report_part, chunk.seq) {
            (Some(part), 0) => Some(self.bodies.append(part.as_bytes())?),
            _ => None,
        };
        Ok(ChunkBodies {
            findings,
            report_part,
        })
    }

    /// A scan's report part (chunk 0's `report_part`), if it sent one.
    pub fn report_part(&self, scan: &ScanRec) -> Result<Option<String>, PlatformError> {
        match &scan.report_part {
            None => Ok(None),
            Some(r) => {
                let bytes = self.bodies.read(r)?;
                String::from_utf8(bytes)
                    .map(Some)
                    .map_err(|e| PlatformError::Corrupt {
                        tree: "bodies",
                        key: format!("{}/{} report part", scan.appliance_id, scan.scan_id),
                        detail: e.to_string(),
                    })
            }
        }
    }

    /// Records a chunk whose body is durable, unless (appliance, scan, seq) is already stored;
    /// returns whether it was new. The chunk and its scan's counters change in one transaction,
    /// so the counters are exact whatever the interleaving of retries.
    pub fn ingest(
        &self,
        appliance_id: &str,
        chunk: &ResultChunk,
        body: ChunkBodies,
    ) -> Result<bool, PlatformError> {
        let key = chunk_key(appliance_id, &chunk.scan_id, chunk.seq);
        let skey = pair_key(appliance_id, &chunk.scan_id);
        let n = u32::try_from(chunk.findings.len()).unwrap_or(u32::MAX);
        let rec = encode(
            "chunks",
            &ChunkRec {
                job_id: chunk.job_id.clone(),
                kind: chunk.kind,
                findings: n,
                body: body.findings,
            },
        )?;
        let now = now();
        (&self.chunks, &self.scans)
            .transaction(|(chunks, scans)| {
                if chunks.get(&key)?.is_some() {
                    return Ok(false);
                }
                let mut scan = match scans.get(&skey)? {
                    Some(v) => decode::<ScanRec>("scans", &skey, &v)
                        .map_err(ConflictableTransactionError::Abort)?,
                    None => ScanRec {
                        appliance_id: appliance_id.to_string(),
                        scan_id: chunk.scan_id.clone(),
                        job_id: chunk.job_id.clone(),
                        kind: chunk.kind,
                        total: chunk.total,
                        chunks: 0,
                        findings: 0,
                        started_at: chunk.started_at.clone(),
                        finished_at: chunk.finished_at.clone(),
                        targets: chunk.targets.clone(),
                        report_part: None,
                        first_received: now,
                        last_received: now,
                    },
                };
                scan.chunks = scan.chunks.saturating_add(1);
                scan.findings = scan.findings.saturating_add(u64::from(n));
                scan.last_received = now;
                if body.report_part.is_some() {
                    scan.report_part = body.report_part.clone();
                }
                let enc = encode("scans", &scan).map_err(ConflictableTransactionError::Abort)?;
                chunks.insert(key.clone(), rec.clone())?;
                scans.insert(skey.clone(), enc)?;
                Ok(true)
            })
            .map_err(tx_error("storing a result chunk"))
    }

    /// The whole ingest from a thread outside the runtime (tests, tools): check, append, sync,
    /// record, flush.
    pub fn ingest_blocking(
        &self,
        appliance_id: &str,
        chunk: &ResultChunk,
    ) -> Result<bool, PlatformError> {
        if self.has_chunk(appliance_id, &chunk.scan_id, chunk.seq)? {
            return Ok(false);
        }
        let body = self.append_body(chunk)?;
        self.flush_blocking()?;
        let stored = self.ingest(appliance_id, chunk, body)?;
        self.flush_blocking()?;
        Ok(stored)
    }

    pub fn scans(&self, appliance_id: Option<&str>) -> Result<Vec<ScanRec>, PlatformError> {
        let iter = match appliance_id {
            Some(a) => self.scans.scan_prefix(pair_key(a, "")),
            None => self.scans.iter(),
        };
        let mut out = Vec::new();
        for kv in iter {
            let (k, v) = kv.map_err(PlatformError::store("listing scans"))?;
            out.push(decode("scans", &k, &v)?);
        }
        Ok(out)
    }

    /// Findings filtered by appliance, job and scan, at most `limit`, in scan then chunk order.
    pub fn findings(
        &self,
        appliance_id: Option<&str>,
        job_id: Option<&str>,
        scan_id: Option<&str>,
        limit: usize,
    ) -> Result<Vec<StoredFinding>, PlatformError> {
        let mut out = Vec::new();
        for scan in self.scans(appliance_id)? {
            if job_id.is_some_and(|j| scan.job_id.as_deref() != Some(j)) {
                continue;
            }
            if scan_id.is_some_and(|s| scan.scan_id != s) {
                continue;
            }
            for kv in self
                .chunks
                .scan_prefix(chunk_prefix(&scan.appliance_id, &scan.scan_id))
            {
                let (k, v) = kv.map_err(PlatformError::store("reading chunks"))?;
                let chunk: ChunkRec = decode("chunks", &k, &v)?;
                let bytes = self.bodies.read(&chunk.body)?;
                let findings: Vec<Finding> =
                    postcard::from_bytes(&bytes).map_err(|e| PlatformError::Corrupt {
                        tree: "bodies",
                        key: String::from_utf8_lossy(&k).into_owned(),
                        detail: e.to_string(),
                    })?;
                for finding in findings {
                    if out.len() >= limit {
                        return Ok(out);
                    }
                    out.push(StoredFinding {
                        appliance_id: scan.appliance_id.clone(),
                        scan_id: scan.scan_id.clone(),
                        job_id: chunk.job_id.clone(),
                        kind: chunk.kind,
                        severity: finding.severity,
                        finding,
                    });
                }
            }
        }
        Ok(out)
    }

    /// Chunks stored in all (for tests and the load benchmark's exact counts).
    pub fn chunk_count(&self) -> usize {
        self.chunks.len()
    }
}

fn tx_error(
    context: &'static str,
) -> impl FnOnce(TransactionError<PlatformError>) -> PlatformError {
    move |e| match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(source) => PlatformError::Store { context, source },
    }
}

/// The view an operator sees. `online` and `last_seen` come from the caller's live tracker.
pub fn appliance_view(
    rec: &ApplianceRec,
    revoked: Option<&RevocationRec>,
    online: bool,
    last_seen: Option<i64>,
) -> ApplianceView {
    let seen = match (rec.last_seen, last_seen) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    ApplianceView {
        id: rec.id.clone(),
        label: rec.label.clone(),
        hostname: rec.hostname.clone(),
        enrolled_at: rfc3339(rec.enrolled_at),
        last_seen: seen.map(rfc3339),
        // A revoked appliance may still hold a poll open until it ends; it is not "online".
        online: online && revoked.is_none(),
        certificate_not_after: rfc3339(rec.cert_not_after),
        last_heartbeat: rec.last_heartbeat.clone(),
        revoked_at: revoked.map(|r| rfc3339(r.revoked_at)),
        revoked_reason: revoked.and_then(|r| r.reason.clone()),
    }
}

/// A job the appliance still has to run: open, or scheduled to run again.
pub fn is_live(rec: &JobRec) -> bool {
    is_open(rec.state) || rec.next_run_at.is_some()
}

/// The states in which a job is still the appliance's to do.
pub fn is_open(state: JobState) -> bool {
    matches!(
        state,
        JobState::Pending | JobState::Accepted | JobState::Running
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use picket_model::{Asset, Severity};

    #[test]
    fn envelopes_round_trip_and_foreign_records_are_corrupt() {
        let v = vec!["a".to_string(), "b".to_string()];
        let p = encode("t", &v).unwrap_or_default();
        let j = encode_json("t", &v).unwrap_or_default();
        assert_eq!(decode::<Vec<String>>("t", b"k", &p).ok(), Some(v.clone()));
        assert_eq!(decode_json::<Vec<String>>("t", b"k", &j).ok(), Some(v));
        let detail = |r: Result<Vec<String>, PlatformError>| match r {
            Err(PlatformError::Corrupt { tree, key, detail }) => {
                assert_eq!((tree, key.as_str()), ("t", "k"));
                detail
            }
            other => panic!("not a corrupt record: {other:?}"),
        };
        assert_eq!(detail(decode("t", b"k", &[0])), "shorter than the envelope");
        assert_eq!(
            detail(decode_json("t", b"k", &[0, 9, b'[', b']'])),
            "record format 9, this platform reads 1"
        );
        assert!(
            !detail(decode("t", b"k", &j)).is_empty(),
            "JSON is not postcard"
        );
    }

    #[test]
    fn a_schema_1_store_is_upgraded_and_a_newer_one_refused() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let set_schema = |v: u16| {
            let store = Store::open(dir.path(), 1 << 20).unwrap_or_else(|e| panic!("{e}"));
            store
                .meta
                .insert("schema", &v.to_be_bytes())
                .unwrap_or_else(|e| panic!("{e}"));
            store.flush_blocking().unwrap_or_else(|e| panic!("{e}"));
        };
        set_schema(1);
        let store = Store::open(dir.path(), 1 << 20).unwrap_or_else(|e| panic!("{e}"));
        let schema = store.meta.get("schema").ok().flatten().map(|v| v.to_vec());
        assert_eq!(schema, Some(SCHEMA_VERSION.to_be_bytes().to_vec()));
        assert_eq!(store.revocation("apl-x").ok(), Some(None));
        drop(store);
        set_schema(SCHEMA_VERSION + 1);
        match Store::open(dir.path(), 1 << 20) {
            Err(PlatformError::Corrupt { tree, detail, .. }) => {
                assert_eq!(tree, "meta");
                assert!(detail.contains("this platform reads 2"), "{detail}");
            }
            other => panic!("a newer store must be refused, got {other:?}"),
        }
    }

    fn finding(i: usize) -> Finding {
        Finding {
            id: format!("f{i}"),
            title: format!("finding {i}"),
            severity: Severity::High,
            cwe: vec![79],
            cve: vec!["CVE-2024-0001".into()],
            asset: Asset {
                address: Some("198.18.0.2".into()),
                port: Some(22),
                ..Asset::default()
            },
            evidence: "seen".into(),
            remediation: "fix".into(),
        }
    }

    fn chunk(scan: &str, seq: u32, n: usize) -> ResultChunk {
        ResultChunk {
            scan_id: scan.into(),
            job_id: None,
            kind: ScanKind::Net,
            seq,
            total: 2,
            started_at: "2026-11-21T10:00:00Z".into(),
            finished_at: "2026-11-21T10:01:00Z".into(),
            targets: vec!["198.18.0.0/24".into()],
            findings: (0..n).map(finding).collect(),
            report_part: None,
        }
    }

    #[test]
    fn ingest_is_idempotent_and_counts_exactly() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let store = Store::open(dir.path(), 1 << 20).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            store.ingest_blocking("a1", &chunk("s1", 0, 3)).ok(),
            Some(true)
        );
        assert_eq!(
            store.ingest_blocking("a1", &chunk("s1", 0, 3)).ok(),
            Some(false)
        );
        assert_eq!(
            store.ingest_blocking("a1", &chunk("s1", 1, 2)).ok(),
            Some(true)
        );
        // Same scan id from another appliance is another scan.
        assert_eq!(
            store.ingest_blocking("a2", &chunk("s1", 0, 1)).ok(),
            Some(true)
        );
        let scan = store
            .scan("a1", "s1")
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("no scan"));
        assert_eq!((scan.chunks, scan.findings), (2, 5));
        let all = store
            .findings(Some("a1"), None, None, 100)
            .unwrap_or_default();
        assert_eq!(all.len(), 5);
        assert_eq!(
            store
                .findings(None, None, None, 100)
                .unwrap_or_default()
                .len(),
            6
        );
        assert_eq!(
            store
                .findings(None, None, None, 4)
                .unwrap_or_default()
                .len(),
            4
        );
        assert_eq!(store.chunk_count(), 3);
        let mut first = chunk("s2", 0, 1);
        first.report_part = Some("{\"hosts\":[]}".into());
        assert_eq!(store.ingest_blocking("a1", &first).ok(), Some(true));
        let scan = store
            .scan("a1", "s2")
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("no scan"));
        assert_eq!(
            store.report_part(&scan).ok().flatten().as_deref(),
            Some("{\"hosts\":[]}")
        );
    }

    #[test]
    fn codes_are_single_use_and_expire() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let store = Store::open(dir.path(), 1 << 20).unwrap_or_else(|e| panic!("{e}"));
        let rec = CodeRec {
            label: Some("lab".into()),
            created_at: now(),
            expires_at: now() + 60,
            used_by: None,
        };
        store
            .add_code("ABCD-EFGH", &rec)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(store.consume_code("abcd efgh", "x").is_ok());
        assert!(matches!(
            store.consume_code("ABCDEFGH", "y"),
            Err(PlatformError::CodeUsed)
        ));
        store
            .add_code(
                "OLD",
                &CodeRec {
                    expires_at: now() - 1,
                    ..rec
                },
            )
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            store.consume_code("old", "y"),
            Err(PlatformError::CodeExpired)
        ));
        assert!(matches!(
            store.consume_code("nope", "y"),
            Err(PlatformError::Unauthorized(_))
        ));
    }

    #[test]
    fn damaged_records_name_tree_and_key() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let store = Store::open(dir.path(), 1 << 20).unwrap_or_else(|e| panic!("{e}"));
        store
            .jobs
            .insert("j1", &[0u8, 9, 1, 2][..])
            .unwrap_or_else(|e| panic!("{e}"));
        let e = store
            .job("j1")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            e.contains("jobs") && e.contains("j1") && e.contains("format 9"),
            "{e}"
        );
    }

    #[test]
    fn commands_round_trip() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let store = Store::open(dir.path(), 1 << 20).unwrap_or_else(|e| panic!("{e}"));
        for (i, kind) in [
            picket_model::api::CommandKind::CancelJob {
                job_id: "j1".into(),
            },
            picket_model::api::CommandKind::UpdateConfig {
                toml: "a = 1".into(),
            },
            picket_model::api::CommandKind::Reboot,
        ]
        .into_iter()
        .enumerate()
        {
            let rec = CommandRec {
                appliance_id: "a1".into(),
                command: Command {
                    id: format!("c{i}"),
                    kind,
                    created_at: rfc3339(now()),
                },
                result: None,
                answered_at: None,
            };
            store.put_command(&rec).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(store.command(&rec.command.id).ok().flatten(), Some(rec));
        }
        assert_eq!(store.open_commands("a1").unwrap_or_default().len(), 3);
        let r = CommandResult {
            ok: true,
            message: "m".into(),
            output: None,
        };
        store
            .answer_command("a1", "c1", r.clone())
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            store.answer_command("a1", "c1", r.clone()),
            Err(PlatformError::Conflict(_))
        ));
        assert!(matches!(
            store.answer_command("a2", "c0", r),
            Err(PlatformError::NotFound { .. })
        ));
        assert_eq!(store.open_commands("a1").unwrap_or_default().len(), 2);
    }

    #[test]
    fn live_jobs_follow_state_and_schedule() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let store = Store::open(dir.path(), 1 << 20).unwrap_or_else(|e| panic!("{e}"));
        let job = |id: &str, every: Option<u64>| JobRec {
            job: Job {
                id: id.into(),
                kind: ScanKind::Net,
                targets: vec!["198.18.0.2".into()],
                options: picket_model::api::JobOptions::default(),
                every_secs: every,
                timeout_secs: 60,
                credentials: None,
                revision: 1,
                created_at: String::new(),
            },
            appliance_id: "a1".into(),
            state: JobState::Pending,
            reason: None,
            scan_id: None,
            chunks_expected: None,
            updated_at: 0,
            next_run_at: None,
            runs: 0,
        };
        for (id, every) in [("j1", None), ("j2", Some(60)), ("j3", None)] {
            store
                .put_job(&job(id, every))
                .unwrap_or_else(|e| panic!("{e}"));
        }
        let ids = |s: &Store| -> Vec<String> {
            s.live_jobs_of("a1")
                .unwrap_or_default()
                .into_iter()
                .map(|j| j.job.id)
                .collect()
        };
        assert_eq!(ids(&store), ["j1", "j2", "j3"]);
        for id in ["j1", "j2"] {
            store
                .update_job(id, |j| {
                    j.state = JobState::Done;
                    j.next_run_at = j.job.every_secs.map(|e| now() + e as i64);
                    Ok(())
                })
                .unwrap_or_else(|e| panic!("{e}"));
        }
        // j1 is finished for good; j2 will run again; j3 is still to do.
        assert_eq!(ids(&store), ["j2", "j3"]);
        assert_eq!(store.jobs_of("a1").unwrap_or_default().len(), 3);
        // A stale entry (as a crash between index and update leaves) is skipped and removed.
        store
            .live_jobs
            .insert(pair_key("a1", "j1"), &[] as &[u8])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ids(&store), ["j2", "j3"]);
        assert_eq!(store.live_jobs.len(), 2);
    }

    #[test]
    fn scan_ids_are_narrow() {
        assert!(valid_scan_id("20261121T101010Z-abcd1234"));
        assert!(!valid_scan_id("a/b"));
        assert!(!valid_scan_id("a\0b"));
        assert!(!valid_scan_id(""));
        assert!(!valid_scan_id(&"a".repeat(129)));
    }
}
