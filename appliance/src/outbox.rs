//! The outbox: results kept in the store until the platform has acknowledged them.
//!
//! Why: the link to the platform goes down, the platform restarts, the box loses power. A scan's
//! results are cut into chunks (at most [`api::MAX_FINDINGS_PER_CHUNK`] findings, idempotency key
//! `scan_id:seq`) and written to the `outbox` tree in the same transaction that marks the job's run
//! finished, flushed before the job is reported Done; they are uploaded in write order and each is
//! deleted only after the platform acknowledged it. A re-sent chunk (answer lost) is stored once by
//! the platform's idempotency, so nothing acknowledged is lost and nothing is duplicated.
//!
//! Offline for long, the outbox is capped by `outbox.quota_bytes`: the oldest chunks are dropped
//! first, and the dropped chunks and findings are counted (persistently) and reported in every
//! heartbeat.

use crate::store::{StateBatch, StateTree, Store, StoreError};
use picket_model::api::{self, ResultChunk};
use picket_model::{Finding, ScanKind};
use serde::{Deserialize, Serialize};

/// Counter keys in the `counters` tree.
pub const DROPPED_CHUNKS: &[u8] = b"dropped_chunks";
pub const DROPPED_FINDINGS: &[u8] = b"dropped_findings";

/// One stored chunk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxEntry {
    /// The chunk as JSON (what is sent), so the stored bytes are the uploaded bytes and do not
    /// depend on postcard's view of `serde_json`-shaped report parts.
    pub chunk_json: Vec<u8>,
    pub findings: u32,
    pub scan_id: String,
    pub seq: u32,
}

impl OutboxEntry {
    pub fn key(&self) -> String {
        format!("{}:{}", self.scan_id, self.seq)
    }
}

/// What a scan produced, before chunking.
#[derive(Debug, Clone)]
pub struct ScanResults {
    pub scan_id: String,
    pub job_id: Option<String>,
    pub kind: ScanKind,
    pub started_at: String,
    pub finished_at: String,
    pub targets: Vec<String>,
    pub findings: Vec<Finding>,
    /// JSON text of the kind-specific part (`{"hosts": [...]}`), sent with chunk 0.
    pub report_part: Option<String>,
}

/// Cuts results into chunks: ceil(findings / MAX) chunks, at least one (a scan with no findings
/// still tells the platform it ran), chunk 0 carrying the report part.
pub fn chunk(r: ScanResults) -> Vec<ResultChunk> {
    let per = api::MAX_FINDINGS_PER_CHUNK;
    let total = r.findings.len().div_ceil(per).max(1);
    let total_u32 = u32::try_from(total).unwrap_or(u32::MAX);
    let mut out = Vec::with_capacity(total);
    let mut findings = r.findings.into_iter();
    for seq in 0..total_u32 {
        let part: Vec<Finding> = findings.by_ref().take(per).collect();
        out.push(ResultChunk {
            scan_id: r.scan_id.clone(),
            job_id: r.job_id.clone(),
            kind: r.kind,
            seq,
            total: total_u32,
            started_at: r.started_at.clone(),
            finished_at: r.finished_at.clone(),
            targets: r.targets.clone(),
            findings: part,
            report_part: if seq == 0 {
                r.report_part.clone()
            } else {
                None
            },
        });
    }
    out
}

/// Live totals of the outbox, kept in memory (computed once at start, then updated on every
/// change) so that the heartbeat and the quota need not read every chunk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxStats {
    pub chunks: u64,
    pub bytes: u64,
    pub dropped_chunks: u64,
    pub dropped_findings: u64,
}

/// The outbox over the store.
#[derive(Debug)]
pub struct Outbox {
    pub stats: OutboxStats,
    pub quota_bytes: u64,
    /// Keys and sizes of stored entries in order (small: a few dozen bytes per chunk).
    index: std::collections::VecDeque<(Vec<u8>, u64, u32)>,
}

/// The entries to add for a finished run, with the drops the quota forces; applied by the caller
/// in the same transaction as the job's record.
#[derive(Debug, Default)]
pub struct Planned {
    pub batch: StateBatch,
    pub counters: StateBatch,
    added: Vec<(Vec<u8>, u64, u32)>,
    dropped: Vec<Vec<u8>>,
    dropped_chunks: u64,
    dropped_findings: u64,
    pub chunk_count: u32,
}

impl Outbox {
    /// Reads the outbox's index and counters.
    pub fn open(store: &Store, quota_bytes: u64) -> Result<Outbox, StoreError> {
        let mut index = std::collections::VecDeque::new();
        let mut stats = OutboxStats::default();
        let mut after: Option<Vec<u8>> = None;
        loop {
            // Small pages: each entry holds up to 500 findings (a few hundred KB).
            let page = store.state_scan::<OutboxEntry>(StateTree::Outbox, after.as_deref(), 8)?;
            let Some((last, _)) = page.last() else { break };
            after = Some(last.clone());
            for (k, v) in page {
                match v {
                    Ok(e) => {
                        let size = (k.len() + e.chunk_json.len() + e.scan_id.len() + 16) as u64;
                        stats.chunks += 1;
                        stats.bytes += size;
                        index.push_back((k, size, e.findings));
                    }
                    // An unreadable entry is left in place and reported, never silently deleted.
                    Err(e) => tracing::error!("outbox entry unreadable: {e}"),
                }
            }
        }
        stats.dropped_chunks = store
            .state_get::<u64>(StateTree::Counters, DROPPED_CHUNKS)?
            .unwrap_or(0);
        stats.dropped_findings = store
            .state_get::<u64>(StateTree::Counters, DROPPED_FINDINGS)?
            .unwrap_or(0);
        Ok(Outbox {
            stats,
            quota_bytes,
            index,
        })
    }

    /// Plans adding `chunks`: the entries, and the oldest entries dropped to stay within the
    /// quota (the new run's own oldest chunks too, if it alone exceeds it).
    pub fn plan(&self, store: &Store, chunks: &[ResultChunk]) -> Result<Planned, StoreError> {
        let mut p = Planned::default();
        let mut new: Vec<(Vec<u8>, u64, u32)> = Vec::new();
        for c in chunks {
            let json = serde_json::to_vec(c).map_err(|e| StoreError::Encode {
                what: format!("result chunk {}", c.key()),
                reason: e.to_string(),
            })?;
            let key = store.next_sequence()?.to_be_bytes().to_vec();
            let entry = OutboxEntry {
                findings: u32::try_from(c.findings.len()).unwrap_or(u32::MAX),
                chunk_json: json,
                scan_id: c.scan_id.clone(),
                seq: c.seq,
            };
            let size = (key.len() + entry.chunk_json.len() + entry.scan_id.len() + 16) as u64;
            p.batch.put(&key, &entry)?;
            new.push((key, size, entry.findings));
        }
        let incoming: u64 = new.iter().map(|n| n.1).sum();
        let mut total = self.stats.bytes + incoming;
        // Oldest first: the stored entries, then the new ones.
        let mut candidates = self.index.iter().chain(new.iter());
        let mut dropped_new = 0usize;
        while total > self.quota_bytes {
            let Some((k, size, findings)) = candidates.next() else {
                break;
            };
            total -= size;
            p.dropped_chunks += 1;
            p.dropped_findings += u64::from(*findings);
            if new.iter().any(|n| &n.0 == k) {
                dropped_new += 1;
            } else {
                p.dropped.push(k.clone());
            }
            p.batch.remove(k);
        }
        p.added = new.into_iter().skip(dropped_new).collect();
        p.chunk_count = u32::try_from(chunks.len()).unwrap_or(u32::MAX);
        if p.dropped_chunks > 0 {
            p.counters.put(
                DROPPED_CHUNKS,
                &(self.stats.dropped_chunks + p.dropped_chunks),
            )?;
            p.counters.put(
                DROPPED_FINDINGS,
                &(self.stats.dropped_findings + p.dropped_findings),
            )?;
            tracing::warn!(
                "outbox quota {} bytes reached: dropped {} oldest chunk(s), {} finding(s)",
                self.quota_bytes,
                p.dropped_chunks,
                p.dropped_findings
            );
        }
        Ok(p)
    }

    /// Records in memory what a plan did once its transaction committed.
    pub fn committed(&mut self, p: Planned) {
        let Planned {
            added,
            dropped,
            dropped_chunks,
            dropped_findings,
            ..
        } = p;
        self.index.retain(|(k, size, _)| {
            let gone = dropped.contains(k);
            if gone {
                self.stats.chunks = self.stats.chunks.saturating_sub(1);
                self.stats.bytes = self.stats.bytes.saturating_sub(*size);
            }
            !gone
        });
        for a in added {
            self.stats.chunks += 1;
            self.stats.bytes += a.1;
            self.index.push_back(a);
        }
        self.stats.dropped_chunks += dropped_chunks;
        self.stats.dropped_findings += dropped_findings;
    }

    /// The oldest entry, to upload next.
    pub fn first(&self, store: &Store) -> Result<Option<(Vec<u8>, OutboxEntry)>, StoreError> {
        let Some((key, _, _)) = self.index.front() else {
            return Ok(None);
        };
        match store.state_get::<OutboxEntry>(StateTree::Outbox, key)? {
            Some(e) => Ok(Some((key.clone(), e))),
            None => Ok(None),
        }
    }

    /// Deletes an acknowledged entry (durable on return).
    pub fn acknowledged(&mut self, store: &Store, key: &[u8]) -> Result<(), StoreError> {
        store.state_remove(StateTree::Outbox, key)?;
        if let Some(pos) = self.index.iter().position(|(k, _, _)| k == key) {
            if let Some((_, size, _)) = self.index.remove(pos) {
                self.stats.chunks = self.stats.chunks.saturating_sub(1);
                self.stats.bytes = self.stats.bytes.saturating_sub(size);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use picket_model::{Asset, Severity};

    fn finding(i: usize) -> Finding {
        Finding {
            id: format!("f{i}"),
            title: "t".into(),
            severity: Severity::Info,
            cwe: vec![],
            cve: vec![],
            asset: Asset::default(),
            evidence: "e".repeat(100),
            remediation: String::new(),
        }
    }

    fn results(n: usize, id: &str) -> ScanResults {
        ScanResults {
            scan_id: id.into(),
            job_id: Some("j".into()),
            kind: ScanKind::Net,
            started_at: String::new(),
            finished_at: String::new(),
            targets: vec![],
            findings: (0..n).map(finding).collect(),
            report_part: Some("{\"hosts\":[]}".into()),
        }
    }

    #[test]
    fn chunking_keeps_every_finding_once_and_in_order() {
        for n in [0, 1, 499, 500, 501, 1234] {
            let chunks = chunk(results(n, "s"));
            assert_eq!(chunks.len(), n.div_ceil(500).max(1), "n={n}");
            let ids: Vec<String> = chunks
                .iter()
                .flat_map(|c| c.findings.iter().map(|f| f.id.clone()))
                .collect();
            assert_eq!(ids, (0..n).map(|i| format!("f{i}")).collect::<Vec<_>>());
            assert!(chunks.iter().all(|c| c.total as usize == chunks.len()));
            assert!(chunks.iter().enumerate().all(|(i, c)| c.seq as usize == i));
            assert!(chunks[0].report_part.is_some());
            assert!(chunks.iter().skip(1).all(|c| c.report_part.is_none()));
        }
    }

    #[test]
    fn quota_drops_oldest_first_and_counts_them() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let store = Store::open(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        let one = chunk(results(500, "a"));
        let ob = Outbox::open(&store, u64::MAX).unwrap_or_else(|e| panic!("{e}"));
        let p = ob.plan(&store, &one).unwrap_or_else(|e| panic!("{e}"));
        let size_one = {
            let mut probe = Outbox::open(&store, u64::MAX).unwrap_or_else(|e| panic!("{e}"));
            let q = probe.plan(&store, &one).unwrap_or_else(|e| panic!("{e}"));
            let s: u64 = q.added.iter().map(|a| a.1).sum();
            probe.committed(Planned::default());
            s
        };
        store
            .state_apply_all(vec![(StateTree::Outbox, std::mem::take(&mut { p.batch }))])
            .unwrap_or_else(|e| panic!("{e}"));
        let mut ob =
            Outbox::open(&store, size_one * 2 + size_one / 2).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ob.stats.chunks, 1);
        for id in ["b", "c"] {
            let mut p = ob
                .plan(&store, &chunk(results(500, id)))
                .unwrap_or_else(|e| panic!("{e}"));
            let batch = std::mem::take(&mut p.batch);
            let counters = std::mem::take(&mut p.counters);
            store
                .state_apply_all(vec![
                    (StateTree::Outbox, batch),
                    (StateTree::Counters, counters),
                ])
                .unwrap_or_else(|e| panic!("{e}"));
            ob.committed(p);
        }
        // Three chunks of one size, room for two and a half: the oldest ("a") went.
        assert_eq!(ob.stats.chunks, 2);
        assert_eq!(
            (ob.stats.dropped_chunks, ob.stats.dropped_findings),
            (1, 500)
        );
        let first = ob.first(&store).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(first.map(|f| f.1.scan_id), Some("b".to_string()));
        let reopened = Outbox::open(&store, 1 << 40).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            reopened.stats, ob.stats,
            "counters and index survive a reopen"
        );
    }
}
