//! Small file-system helpers shared by the store and the report writers.
//!
//! Why a module: both the store's generation pointer and `--output FILE` must never leave a
//! half-written file behind (a reader sees the old content or the new one, nothing in between),
//! and both need the same write-to-temporary, fsync, rename, fsync-directory dance.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` atomically: a temporary file in the same directory is written,
/// synced and renamed over `path`, then the directory is synced so the rename itself is durable.
///
/// `mode` is the file's exact permission: it is set after creation, because the process umask
/// narrows the creation mode (under a unit's `UMask=0077`, networkd files meant to be 0644 came out
/// 0600 and systemd-networkd silently ignored them). The rename keeps the temporary's mode.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let dir = parent_dir(path);
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".tmp-{}", std::process::id()));
    let tmp = dir.join(tmp_name);
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        f.set_permissions(fs::Permissions::from_mode(mode))?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)?;
        sync_dir(&dir)
    })();
    if result.is_err() {
        // Best effort: the temporary is ours and useless once the write failed.
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Makes a directory's entries (creations, renames, removals) durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The directory that holds `path` (`.` for a bare file name).
pub fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Bytes a directory tree occupies on disk (allocated blocks, so sparse files count as what they
/// really use), without following symbolic links.
pub fn disk_usage(path: &Path) -> io::Result<u64> {
    use std::os::unix::fs::MetadataExt;
    let meta = fs::symlink_metadata(path)?;
    let mut total = meta.blocks() * 512;
    if meta.is_dir() {
        for entry in fs::read_dir(path)? {
            total += disk_usage(&entry?.path())?;
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_content_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().map_err(|e| e.to_string());
        let dir = match dir {
            Ok(d) => d,
            Err(e) => panic!("tempdir: {e}"),
        };
        let target = dir.path().join("report.json");
        assert!(write_atomic(&target, b"old", 0o600).is_ok());
        assert!(write_atomic(&target, b"new content", 0o600).is_ok());
        assert_eq!(fs::read(&target).ok().as_deref(), Some(&b"new content"[..]));
        let names: Vec<_> = fs::read_dir(dir.path())
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names.len(), 1, "only the target remains: {names:?}");
    }

    #[test]
    fn atomic_write_into_missing_directory_fails_without_creating_it() {
        let dir = match tempfile::tempdir() {
            Ok(d) => d,
            Err(e) => panic!("tempdir: {e}"),
        };
        let target = dir.path().join("missing").join("report.json");
        assert!(write_atomic(&target, b"x", 0o600).is_err());
        assert!(!dir.path().join("missing").exists());
    }

    #[test]
    fn the_mode_is_exact_whatever_the_umask() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("f");
        // A umask of 0077 (as under a hardened unit) must not narrow 0644.
        let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
        let written = write_atomic(&path, b"x", 0o644);
        nix::sys::stat::umask(old);
        written.unwrap_or_else(|e| panic!("{e}"));
        let mode = fs::metadata(&path)
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap_or(0);
        assert_eq!(mode, 0o644);
        write_atomic(&path, b"y", 0o600).unwrap_or_else(|e| panic!("{e}"));
        let mode = fs::metadata(&path)
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap_or(0);
        assert_eq!(mode, 0o600);
    }
}
