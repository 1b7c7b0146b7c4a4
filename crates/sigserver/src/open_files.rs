//! Opening a served file in the published snapshot, with a small per-thread cache of
//! open descriptors.
//!
//! Without the cache every request costs `openat`, `fstat` and `close`; with it, a
//! request for a file served before costs one `statx` of its path. The cached
//! descriptor is used only when that `statx` shows the very inode it holds (device,
//! inode, size and modification time in ns). The descriptor keeps the inode alive, so
//! its number cannot be reused while cached: a match means the path names that file
//! now, and the response is exactly what opening the path would have served. A
//! publish that replaces the file (new inode) or rewrites it (new size or mtime) fails
//! the check and the path is opened again; a file hard-linked unchanged into the next
//! generation keeps its descriptor.
//!
//! Only files under `DIR/current` are cached (the mirror layout). A plain directory is
//! always opened afresh: there the decision between `DIR/current/<name>` and
//! `DIR/<name>` is made per request.
//!
//! Each worker thread has its own map of at most [`MAX_OPEN`] descriptors; when it is
//! full it is emptied. A cached descriptor of a file pruned from the mirror keeps the
//! file's blocks allocated until the entry is replaced or the map is emptied, so disk
//! space of at most [`MAX_OPEN`] files per worker can stay held after a prune.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::cache::FileId;

/// Most descriptors cached per worker thread.
pub const MAX_OPEN: usize = 128;

/// O_NONBLOCK: opening a FIFO planted under a mirror name must not block a runtime
/// thread; the flag has no effect on regular files (the only kind served). Its value
/// differs between architectures, hence rustix's constant.
#[cfg(target_os = "linux")]
const OPEN_FLAGS: i32 = rustix::fs::OFlags::NONBLOCK.bits() as i32;
/// Elsewhere (no rustix): plain opens.
#[cfg(not(target_os = "linux"))]
const OPEN_FLAGS: i32 = 0;

/// An opened served file and its metadata (from the same inode).
#[derive(Debug, Clone)]
pub(crate) struct Opened {
    pub(crate) file: Arc<File>,
    pub(crate) meta: std::fs::Metadata,
}

thread_local! {
    static OPEN: RefCell<HashMap<PathBuf, Opened>> = RefCell::new(HashMap::new());
}

/// `dir/name` in one allocation of the exact size (`join` allocates, then grows).
fn join(dir: &Path, name: &str) -> PathBuf {
    let d = dir.as_os_str();
    let mut p = std::ffi::OsString::with_capacity(d.len() + 1 + name.len());
    p.push(d);
    p.push("/");
    p.push(name);
    PathBuf::from(p)
}

/// Opens `name` in the published snapshot: `DIR/current/<name>` when `DIR/current`
/// exists, else `DIR/<name>` (a plain directory). The path is resolved once; the
/// metadata and the body come from the descriptor, so a concurrent snapshot switch or
/// prune cannot mix two snapshots in one response. `None` for anything that is not a
/// regular file.
pub(crate) fn open(dir: &Path, current: &Path, name: &str) -> io::Result<Option<Opened>> {
    let path = join(current, name);
    let cached = OPEN.with(|m| m.borrow().get(&path).cloned());
    if let Some(hit) = cached
        && let Ok(now) = std::fs::metadata(&path)
        && FileId::of(&now) == FileId::of(&hit.meta)
    {
        return Ok(Some(Opened {
            file: hit.file,
            meta: now,
        }));
    }
    let (opened, under_current) = match open_at(&path)? {
        Some(o) => (Some(o), true),
        None => match std::fs::symlink_metadata(current) {
            Ok(_) => (None, true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => (open_at(&join(dir, name))?, false),
            Err(e) => return Err(e),
        },
    };
    if under_current {
        OPEN.with(|m| {
            let mut m = m.borrow_mut();
            match &opened {
                Some(o) => {
                    if m.len() >= MAX_OPEN && !m.contains_key(&path) {
                        m.clear();
                    }
                    m.insert(path, o.clone());
                }
                None => {
                    m.remove(&path);
                }
            }
        });
    }
    Ok(opened)
}

/// Fills `buf` from `file` at offset `at` (by position: descriptors are shared by the
/// requests of a worker). A file shorter than expected is an `UnexpectedEof` error
/// saying so.
pub(crate) fn read_exact_at(file: &File, buf: &mut [u8], at: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, at).map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            io::Error::new(e.kind(), "file shrank while being served")
        } else {
            e
        }
    })
}

/// Opens a regular file: `None` if missing or not a regular file.
fn open_at(path: &Path) -> io::Result<Option<Opened>> {
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(OPEN_FLAGS)
        .open(path)
    {
        Ok(f) => f,
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Ok(None);
    }
    Ok(Some(Opened {
        file: Arc::new(file),
        meta,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(o: &Opened) -> Vec<u8> {
        let mut v = vec![0u8; o.meta.len() as usize];
        std::os::unix::fs::FileExt::read_exact_at(&*o.file, &mut v, 0).unwrap();
        v
    }

    fn layout() -> (tempfile::TempDir, PathBuf) {
        let d = tempfile::tempdir().unwrap();
        for g in ["g-1", "g-2"] {
            std::fs::create_dir_all(d.path().join("generations").join(g)).unwrap();
        }
        std::fs::write(d.path().join("generations/g-1/a.cvd"), b"one").unwrap();
        std::os::unix::fs::symlink("generations/g-1", d.path().join("current")).unwrap();
        let cur = d.path().join("current");
        (d, cur)
    }

    fn switch(d: &Path, to: &str) {
        let tmp = d.join("current.tmp");
        std::os::unix::fs::symlink(format!("generations/{to}"), &tmp).unwrap();
        std::fs::rename(&tmp, d.join("current")).unwrap();
    }

    #[test]
    fn a_switched_snapshot_is_never_served_from_the_cache() {
        let (d, cur) = layout();
        let first = open(d.path(), &cur, "a.cvd").unwrap().unwrap();
        let again = open(d.path(), &cur, "a.cvd").unwrap().unwrap();
        assert!(
            Arc::ptr_eq(&first.file, &again.file),
            "second open is a cache hit"
        );
        // New content under the same name in the next generation.
        std::fs::write(d.path().join("generations/g-2/a.cvd"), b"two").unwrap();
        switch(d.path(), "g-2");
        let next = open(d.path(), &cur, "a.cvd").unwrap().unwrap();
        assert_eq!(read(&next), b"two");
        // Hard-linked unchanged into a third generation: the same inode, still cached.
        std::fs::create_dir_all(d.path().join("generations/g-3")).unwrap();
        std::fs::hard_link(
            d.path().join("generations/g-2/a.cvd"),
            d.path().join("generations/g-3/a.cvd"),
        )
        .unwrap();
        switch(d.path(), "g-3");
        let linked = open(d.path(), &cur, "a.cvd").unwrap().unwrap();
        assert!(Arc::ptr_eq(&next.file, &linked.file));
        // Removed from the snapshot: not found, and forgotten.
        std::fs::create_dir_all(d.path().join("generations/g-4")).unwrap();
        switch(d.path(), "g-4");
        assert!(open(d.path(), &cur, "a.cvd").unwrap().is_none());
    }

    #[test]
    fn rewritten_in_place_is_reopened() {
        let (d, cur) = layout();
        let p = d.path().join("generations/g-1/a.cvd");
        let first = open(d.path(), &cur, "a.cvd").unwrap().unwrap();
        std::fs::write(&p, b"longer content").unwrap();
        let next = open(d.path(), &cur, "a.cvd").unwrap().unwrap();
        assert_eq!(next.meta.len(), 14);
        assert_eq!(read(&next), b"longer content");
        drop(first);
    }

    #[test]
    fn plain_directories_and_non_files() {
        let d = tempfile::tempdir().unwrap();
        let cur = d.path().join("current");
        std::fs::write(d.path().join("b.cvd"), b"plain").unwrap();
        std::fs::create_dir(d.path().join("dir.cvd")).unwrap();
        let o = open(d.path(), &cur, "b.cvd").unwrap().unwrap();
        assert_eq!(read(&o), b"plain");
        assert!(open(d.path(), &cur, "dir.cvd").unwrap().is_none());
        assert!(open(d.path(), &cur, "missing.cvd").unwrap().is_none());
        // Not cached: replaced in place, the new file is served at once.
        std::fs::write(d.path().join("b.cvd.tmp"), b"fresh").unwrap();
        std::fs::rename(d.path().join("b.cvd.tmp"), d.path().join("b.cvd")).unwrap();
        assert_eq!(
            read(&open(d.path(), &cur, "b.cvd").unwrap().unwrap()),
            b"fresh"
        );
    }
}
