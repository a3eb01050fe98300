//! Reading OSV records from what users hand to `picket kb import`: single JSON files,
//! directories of them, and the per-ecosystem zip archives osv.dev publishes (`all.zip`).
//!
//! Why a module: every input is untrusted (a mirror, a USB stick, a half-downloaded archive), so
//! the walking and unpacking is bounded in one place — record size, entries per archive,
//! directory depth — and every failure names the file and archive entry. A bad record is
//! reported and the walk goes on; only an unreadable file or archive stops that one source.

use crate::osv::{self, Advisory, OsvError, MAX_RECORD_LEN};
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// Most entries read from one zip archive (osv.dev's largest, Debian's, holds ~60,000).
pub const MAX_ZIP_ENTRIES: usize = 2_000_000;
/// Deepest directory nesting followed.
pub const MAX_DEPTH: usize = 16;

/// Errors that stop reading one source (a file, a directory, an archive).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    #[error("cannot read {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{} is not a readable zip archive: {reason}", path.display())]
    Zip { path: PathBuf, reason: String },
    #[error("{}: {reason}", path.display())]
    Unsupported { path: PathBuf, reason: String },
}

/// Where a record came from, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The file (a `.json`, or the archive).
    pub path: PathBuf,
    /// The entry inside an archive.
    pub entry: Option<String>,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.entry {
            Some(e) => write!(f, "{}!{e}", self.path.display()),
            None => write!(f, "{}", self.path.display()),
        }
    }
}

/// One record read from a source: parsed, or the reason it could not be.
#[derive(Debug)]
pub struct SourceRecord {
    pub origin: Origin,
    pub advisory: Result<Advisory, OsvError>,
}

/// Calls `each` for every record under `path` (a `.json` file, a zip archive, or a directory
/// holding either, walked in name order). Returns the errors of sources that could not be read
/// at all; records that do not parse are passed to `each` as errors.
pub fn read_records(path: &Path, each: &mut dyn FnMut(SourceRecord)) -> Vec<SourceError> {
    let mut errors = Vec::new();
    walk(path, 0, each, &mut errors);
    errors
}

fn walk(
    path: &Path,
    depth: usize,
    each: &mut dyn FnMut(SourceRecord),
    errors: &mut Vec<SourceError>,
) {
    let io_err = |source| SourceError::Io {
        path: path.to_owned(),
        source,
    };
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) => return errors.push(io_err(e)),
    };
    if meta.is_dir() {
        if depth >= MAX_DEPTH {
            return errors.push(SourceError::Unsupported {
                path: path.to_owned(),
                reason: format!("directories nested deeper than {MAX_DEPTH} are not followed"),
            });
        }
        let mut children: Vec<PathBuf> = match fs::read_dir(path) {
            Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
            Err(e) => return errors.push(io_err(e)),
        };
        children.sort();
        for child in children {
            // Inside directories only the two kinds we read; other files (READMEs, checksums)
            // are not errors.
            let is_dir = child.is_dir();
            if is_dir || has_ext(&child, "json") || has_ext(&child, "zip") {
                walk(&child, depth + 1, each, errors);
            }
        }
        return;
    }
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) => return errors.push(io_err(e)),
    };
    let mut magic = [0u8; 4];
    // A local file header, or the end record alone (an empty archive).
    let is_zip = matches!(file.read(&mut magic), Ok(4) if &magic == b"PK\x03\x04" || &magic == b"PK\x05\x06");
    if is_zip {
        if let Err(e) = read_zip(path, each) {
            errors.push(e);
        }
        return;
    }
    let origin = Origin {
        path: path.to_owned(),
        entry: None,
    };
    if meta.len() > MAX_RECORD_LEN as u64 {
        return each(SourceRecord {
            origin,
            advisory: Err(OsvError::TooLarge {
                len: usize::try_from(meta.len()).unwrap_or(usize::MAX),
            }),
        });
    }
    match fs::read(path) {
        Ok(bytes) => each(SourceRecord {
            origin,
            advisory: osv::parse_advisory(&bytes),
        }),
        Err(e) => errors.push(io_err(e)),
    }
}

fn has_ext(path: &Path, ext: &str) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case(ext))
}

fn read_zip(path: &Path, each: &mut dyn FnMut(SourceRecord)) -> Result<(), SourceError> {
    let zip_err = |reason: String| SourceError::Zip {
        path: path.to_owned(),
        reason,
    };
    let file = File::open(path).map_err(|source| SourceError::Io {
        path: path.to_owned(),
        source,
    })?;
    let mut archive =
        zip::ZipArchive::new(io::BufReader::new(file)).map_err(|e| zip_err(e.to_string()))?;
    if archive.len() > MAX_ZIP_ENTRIES {
        return Err(zip_err(format!(
            "{} entries, more than the limit of {MAX_ZIP_ENTRIES}",
            archive.len()
        )));
    }
    let mut buf = Vec::new();
    for i in 0..archive.len() {
        let mut entry = match archive.by_index(i) {
            Ok(e) => e,
            // A damaged entry header: report it as that entry's failure and go on.
            Err(e) => {
                each(SourceRecord {
                    origin: Origin {
                        path: path.to_owned(),
                        entry: Some(format!("#{i}")),
                    },
                    advisory: Err(OsvError::Json {
                        id: None,
                        line: 0,
                        column: 0,
                        message: format!("unreadable archive entry: {e}"),
                    }),
                });
                continue;
            }
        };
        let name = String::from_utf8_lossy(entry.name_raw()).into_owned();
        if entry.is_dir() || !name.to_ascii_lowercase().ends_with(".json") {
            continue;
        }
        let origin = Origin {
            path: path.to_owned(),
            entry: Some(name),
        };
        // The declared size may lie; the read is capped either way, so a zip bomb costs at most
        // one record's worth of memory.
        buf.clear();
        let read = (&mut entry)
            .take(MAX_RECORD_LEN as u64 + 1)
            .read_to_end(&mut buf);
        let advisory = match read {
            Err(e) => Err(OsvError::Json {
                id: None,
                line: 0,
                column: 0,
                message: format!("cannot decompress: {e}"),
            }),
            Ok(_) if buf.len() > MAX_RECORD_LEN => Err(OsvError::TooLarge { len: buf.len() }),
            Ok(_) => osv::parse_advisory(&buf),
        };
        each(SourceRecord { origin, advisory });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    type Collected = (Vec<(String, Result<String, String>)>, Vec<String>);

    fn collect(path: &Path) -> Collected {
        let mut out = Vec::new();
        let errors = read_records(path, &mut |r| {
            out.push((
                r.origin.to_string(),
                r.advisory.map(|a| a.id).map_err(|e| e.to_string()),
            ))
        });
        (out, errors.iter().map(|e| e.to_string()).collect())
    }

    fn write_zip(path: &Path, entries: &[(&str, &[u8])]) {
        let file = File::create(path).unwrap_or_else(|e| panic!("{e}"));
        let mut zip = zip::ZipWriter::new(file);
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (name, bytes) in entries {
            zip.start_file(*name, opts)
                .unwrap_or_else(|e| panic!("{e}"));
            zip.write_all(bytes).unwrap_or_else(|e| panic!("{e}"));
        }
        zip.finish().unwrap_or_else(|e| panic!("{e}"));
    }

    const GOOD: &[u8] = br#"{"id":"T-1","modified":"2024-01-01T00:00:00Z"}"#;

    #[test]
    fn files_directories_and_zips_are_read_and_bad_records_named() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let d = dir.path();
        fs::write(d.join("a.json"), GOOD).unwrap_or_else(|e| panic!("{e}"));
        fs::write(d.join("README.md"), "not a record").unwrap_or_else(|e| panic!("{e}"));
        fs::create_dir(d.join("sub")).unwrap_or_else(|e| panic!("{e}"));
        fs::write(d.join("sub/broken.json"), b"{\"id\":\"T-2\",").unwrap_or_else(|e| panic!("{e}"));
        write_zip(
            &d.join("all.zip"),
            &[
                (
                    "T-3.json",
                    br#"{"id":"T-3","modified":"2024-01-01T00:00:00Z"}"#,
                ),
                ("notes.txt", b"skipped"),
                ("T-4.json", b"\xff\xfe"),
            ],
        );
        let (records, errors) = collect(d);
        assert!(errors.is_empty(), "{errors:?}");
        let shown: Vec<String> = records
            .iter()
            .map(|(o, r)| {
                let o = o.replace(&d.display().to_string(), "");
                match r {
                    Ok(id) => format!("{o} {id}"),
                    Err(_) => format!("{o} ERR"),
                }
            })
            .collect();
        assert_eq!(
            shown,
            [
                "/a.json T-1",
                "/all.zip!T-3.json T-3",
                "/all.zip!T-4.json ERR",
                "/sub/broken.json ERR"
            ]
        );
        assert!(records[3].1.as_ref().is_err_and(|e| e.contains("T-2")));
    }

    #[test]
    fn a_truncated_archive_is_a_source_error_naming_it() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let zip_path = dir.path().join("all.zip");
        write_zip(&zip_path, &[("T-3.json", GOOD)]);
        let bytes = fs::read(&zip_path).unwrap_or_default();
        fs::write(&zip_path, &bytes[..bytes.len() / 2]).unwrap_or_else(|e| panic!("{e}"));
        let (records, errors) = collect(&zip_path);
        assert!(records.is_empty());
        assert_eq!(errors.len(), 1);
        assert!(errors[0].contains("all.zip"), "{}", errors[0]);
    }

    #[test]
    fn a_missing_path_is_an_io_error_naming_it() {
        let (_, errors) = collect(Path::new("/nonexistent/osv"));
        assert!(errors[0].contains("/nonexistent/osv"));
    }

    #[test]
    fn oversized_entries_are_refused_with_bounded_memory() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let zip_path = dir.path().join("bomb.zip");
        // 20 MiB of zeros deflates to ~20 KiB: the read stops at the cap.
        let big = vec![b' '; MAX_RECORD_LEN + 4 * 1024 * 1024];
        write_zip(&zip_path, &[("BIG.json", &big), ("T-1.json", GOOD)]);
        let (records, errors) = collect(&zip_path);
        assert!(errors.is_empty());
        assert!(records[0]
            .1
            .as_ref()
            .is_err_and(|e| e.contains("larger than")));
        assert_eq!(records[1].1, Ok("T-1".to_owned()));
    }
}
