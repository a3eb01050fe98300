//! The body log: result-chunk bodies (the encoded findings) in append-only segment files beside
//! sled, which keeps only a small reference to each.
//!
//! Why not in sled: sled keeps recently written values in memory well beyond its cache capacity.
//! With chunk bodies stored as sled values the platform's RSS followed the data ingested (560 MiB
//! after 4.4 M findings with 4 MiB segments; 1.7 GiB with values as sled blobs); with bodies here
//! it stays flat, since a body is written once and read only by findings queries.
//!
//! Layout of `STATE_DIR/bodies/`: `seg-NNNNNNNN.log`, each up to [`SEGMENT_LIMIT`] bytes,
//! bodies back to back. A [`BodyRef`] names segment, offset, length and a SHA-256 prefix of the
//! bytes, so a torn or damaged body is reported as corruption, never decoded as findings. Bytes
//! that no reference names (a crash between append and index, or a concurrent duplicate that lost
//! the index race) are dead space; nothing is ever deleted.
//!
//! Durability order: a body is synced (fdatasync) before the sled record that names it is
//! written, so a record on disk always points at bytes on disk.

use crate::error::PlatformError;
use serde::{Deserialize, Serialize};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// A segment is closed (synced, never written again) once it reaches this size.
pub const SEGMENT_LIMIT: u64 = 256 * 1024 * 1024;
/// Largest body accepted (a full chunk is well under a megabyte; bodies come from capped requests).
pub const MAX_BODY: usize = 16 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BodyRef {
    pub segment: u32,
    pub offset: u64,
    pub len: u32,
    pub digest: [u8; 16],
}

#[derive(Debug)]
struct Writer {
    segment: u32,
    file: File,
    len: u64,
}

#[derive(Debug)]
pub struct BodyLog {
    dir: PathBuf,
    writer: Mutex<Writer>,
}

fn seg_path(dir: &Path, segment: u32) -> PathBuf {
    dir.join(format!("seg-{segment:08}.log"))
}

fn digest(bytes: &[u8]) -> [u8; 16] {
    let d = ring::digest::digest(&ring::digest::SHA256, bytes);
    let mut out = [0u8; 16];
    out.copy_from_slice(d.as_ref().get(..16).unwrap_or(&[0u8; 16]));
    out
}

fn open_append(path: &Path) -> Result<(File, u64), PlatformError> {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .open(path)
        .map_err(|e| PlatformError::io("opening", path, e))?;
    let len = file
        .metadata()
        .map_err(|e| PlatformError::io("reading the size of", path, e))?
        .len();
    Ok((file, len))
}

impl BodyLog {
    pub fn open(dir: &Path) -> Result<BodyLog, PlatformError> {
        fs::create_dir_all(dir).map_err(|e| PlatformError::io("creating", dir, e))?;
        let mut last = 0u32;
        for entry in fs::read_dir(dir).map_err(|e| PlatformError::io("listing", dir, e))? {
            let entry = entry.map_err(|e| PlatformError::io("listing", dir, e))?;
            let name = entry.file_name();
            let n = name
                .to_str()
                .and_then(|n| n.strip_prefix("seg-"))
                .and_then(|n| n.strip_suffix(".log"))
                .and_then(|n| n.parse::<u32>().ok());
            if let Some(n) = n {
                last = last.max(n);
            }
        }
        let segment = last.max(1);
        let (file, len) = open_append(&seg_path(dir, segment))?;
        Ok(BodyLog {
            dir: dir.to_path_buf(),
            writer: Mutex::new(Writer { segment, file, len }),
        })
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Writer>, PlatformError> {
        self.writer
            .lock()
            .map_err(|_| PlatformError::Unavailable("body log writer poisoned".into()))
    }

    /// Appends a body (not yet synced: see [`BodyLog::sync`]).
    pub fn append(&self, bytes: &[u8]) -> Result<BodyRef, PlatformError> {
        if bytes.len() > MAX_BODY {
            return Err(PlatformError::TooLarge { limit: MAX_BODY });
        }
        let len =
            u32::try_from(bytes.len()).map_err(|_| PlatformError::TooLarge { limit: MAX_BODY })?;
        let digest = digest(bytes);
        let mut w = self.lock()?;
        if w.len > 0 && w.len + u64::from(len) > SEGMENT_LIMIT {
            // The full segment is synced before the next one is used, so a later sync of the
            // current segment covers every body written before it.
            let old = seg_path(&self.dir, w.segment);
            w.file
                .sync_all()
                .map_err(|e| PlatformError::io("syncing", &old, e))?;
            let segment = w.segment + 1;
            let (file, flen) = open_append(&seg_path(&self.dir, segment))?;
            *w = Writer {
                segment,
                file,
                len: flen,
            };
        }
        let offset = w.len;
        let path = seg_path(&self.dir, w.segment);
        if let Err(e) = w.file.write_all(bytes) {
            // A partial write leaves dead bytes; re-read the size so the next offset is right.
            w.len = w.file.metadata().map(|m| m.len()).unwrap_or(w.len);
            return Err(PlatformError::io("appending to", path, e));
        }
        w.len += u64::from(len);
        Ok(BodyRef {
            segment: w.segment,
            offset,
            len,
            digest,
        })
    }

    /// Makes every appended body durable.
    pub fn sync(&self) -> Result<(), PlatformError> {
        let (file, segment) = {
            let w = self.lock()?;
            let f = w
                .file
                .try_clone()
                .map_err(|e| PlatformError::io("duplicating", seg_path(&self.dir, w.segment), e))?;
            (f, w.segment)
        };
        file.sync_data()
            .map_err(|e| PlatformError::io("syncing", seg_path(&self.dir, segment), e))
    }

    pub fn read(&self, r: &BodyRef) -> Result<Vec<u8>, PlatformError> {
        let path = seg_path(&self.dir, r.segment);
        let corrupt = |detail: String| PlatformError::Corrupt {
            tree: "bodies",
            key: format!("{}@{}", path.display(), r.offset),
            detail,
        };
        if r.len as usize > MAX_BODY {
            return Err(corrupt(format!("length {} over the cap", r.len)));
        }
        let file = File::open(&path).map_err(|e| PlatformError::io("opening", &path, e))?;
        let mut buf = vec![0u8; r.len as usize];
        file.read_exact_at(&mut buf, r.offset)
            .map_err(|e| corrupt(format!("reading: {e}")))?;
        if digest(&buf) != r.digest {
            return Err(corrupt("digest mismatch".into()));
        }
        Ok(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_read_reopen_and_damage() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let log = BodyLog::open(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        let a = log.append(b"first body").unwrap_or_else(|e| panic!("{e}"));
        let b = log.append(b"second").unwrap_or_else(|e| panic!("{e}"));
        log.sync().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(log.read(&a).ok(), Some(b"first body".to_vec()));
        assert_eq!(log.read(&b).ok(), Some(b"second".to_vec()));
        drop(log);
        let log = BodyLog::open(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        let c = log.append(b"third").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.offset, 16, "appends continue at the end after a reopen");
        assert_eq!(log.read(&b).ok(), Some(b"second".to_vec()));
        // A flipped byte is corruption, not findings.
        let path = seg_path(dir.path(), a.segment);
        let mut bytes = fs::read(&path).unwrap_or_default();
        bytes[0] ^= 1;
        fs::write(&path, bytes).unwrap_or_else(|e| panic!("{e}"));
        let e = log
            .read(&a)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            e.contains("digest mismatch") && e.contains("seg-00000001.log"),
            "{e}"
        );
    }
}
