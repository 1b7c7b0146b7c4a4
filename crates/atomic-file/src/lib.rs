//! The one write-temp-fsync-rename helper of the workspace.
//!
//! A reader of a path replaced through this crate sees the old content or the new
//! content, never a partial file, and after a crash the new content is either fully
//! there or not at all:
//!
//! 1. the new content goes to a temporary file in the *same directory* (a rename is
//!    atomic only within one file system);
//! 2. the temporary file is fsynced (its data is on disk before its name is);
//! 3. it is renamed over the destination;
//! 4. the directory is fsynced (the rename itself is on disk).
//!
//! [`write()`] does all four for content in memory (`status.json`, `cooldown.json`).
//! [`commit`] does steps 2–4 for a temporary file the caller wrote itself under a name
//! it had to choose (`fetch`'s resumable `.part` downloads, `cdiff`'s `.cld` that is
//! verified before it replaces anything). [`sync_dir`] is step 4 alone, for callers
//! that create several entries and make them durable at once (`mirror-core`'s
//! generation directories).
//!
//! Temporary names come from the `tempfile` crate (unique, removed on error), so two
//! processes replacing the same file never write into each other's temporary file.
//! Errors are plain [`std::io::Error`]s: every caller names the path in its own error
//! type.
//!
//! # Features and dependency count
//!
//! | feature set | crates pulled in |
//! |---|---|
//! | minimal (`--no-default-features`) | 9 |
//! | default (the same: the crate has no features) | 9 |
//!
//! No async runtime, DNS or HTTP client in the minimal set. Counted, and kept current,
//! by `cargo xtask light-check` (run by CI, which fails when a row is stale or when a
//! minimal build pulls tokio, hickory, reqwest, ureq or hyper): the distinct crates,
//! by name and version, of `cargo tree -p atomic-file -e normal --no-dedupe` (with
//! `--no-default-features` for the minimal row), the crate itself not counted; in
//! shell terms `... --prefix none --no-dedupe | sort -u | wc -l`, minus one. Build and
//! dev dependencies are not counted.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

/// The directory holding `path` (`.` for a bare file name).
fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Replaces `path` with `bytes` atomically and durably (steps 1–4 above).
///
/// ```
/// let dir = tempfile::tempdir()?;
/// let p = dir.path().join("status.json");
/// atomic_file::write(&p, b"{}")?;
/// atomic_file::write(&p, b"{\"v\":1}")?;
/// assert_eq!(std::fs::read(&p)?, b"{\"v\":1}");
/// assert_eq!(std::fs::read_dir(dir.path())?.count(), 1, "no temporary file left");
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # Errors
/// Any I/O error creating, writing, syncing or renaming; the destination is then
/// unchanged and the temporary file removed.
pub fn write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = parent(path);
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a file path"))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{}.", name.to_string_lossy()))
        .suffix(".tmp")
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    sync_dir(dir)
}

/// Makes the finished temporary file `tmp` (open as `file`) the new `dest`: fsyncs
/// it, renames it over `dest` (same directory) and fsyncs the directory (steps 2–4).
///
/// # Errors
/// Any I/O error syncing or renaming; `tmp` is left for the caller to remove or
/// resume.
pub fn commit(file: File, tmp: &Path, dest: &Path) -> io::Result<()> {
    file.sync_all()?;
    drop(file);
    std::fs::rename(tmp, dest)?;
    sync_dir(parent(dest))
}

/// Fsyncs the directory `dir`, so that entries created, renamed or removed in it are
/// durable.
///
/// # Errors
/// Opening or syncing the directory failed.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn commit_replaces_the_destination() {
        let dir = tempfile::tempdir().unwrap();
        let (tmp, dest) = (dir.path().join("a.part"), dir.path().join("a"));
        std::fs::write(&dest, b"old").unwrap();
        let mut f = File::create(&tmp).unwrap();
        f.write_all(b"new").unwrap();
        commit(f, &tmp, &dest).unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"new");
        assert!(!tmp.exists());
    }

    #[test]
    fn a_failed_write_leaves_the_old_content_and_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("x");
        std::fs::write(&dest, b"old").unwrap();
        // Renaming a file over a non-empty directory fails.
        let blocked = dir.path().join("d");
        std::fs::create_dir(&blocked).unwrap();
        std::fs::write(blocked.join("f"), b"").unwrap();
        assert!(write(&blocked, b"new").is_err());
        assert_eq!(std::fs::read(&dest).unwrap(), b"old");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[test]
    fn a_bare_file_name_is_in_the_current_directory() {
        assert_eq!(parent(Path::new("x")), Path::new("."));
        assert_eq!(parent(Path::new("/a/x")), Path::new("/a"));
    }
}
