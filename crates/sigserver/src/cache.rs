//! A bounded in-memory cache of small served files.
//!
//! Clients mostly fetch small files (cdiffs, `.sign`s, the 512-byte header probe of a
//! `.cvd`, `dns.txt`). Keeping them in memory saves a read and a buffer per request,
//! which matters most under many concurrent connections. Large files (above the
//! per-file limit) are always streamed in chunks.
//!
//! The key is the identity of the descriptor the request opened: device, inode, size
//! and modification time in nanoseconds (from its `fstat`). A published generation is
//! immutable, and a plain-directory publisher replaces files (new inode) or rewrites
//! them (new mtime), so a hit always has the bytes of the very file the request opened:
//! the one-snapshot-per-request guarantee is kept. Memory is bounded by the total
//! limit; the oldest entries are evicted first.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::sync::RwLock;

use bytes::Bytes;

/// The identity of an opened file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct FileId {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i128,
}

impl FileId {
    pub(crate) fn of(meta: &std::fs::Metadata) -> Self {
        FileId {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
        }
    }
}

#[derive(Debug, Default)]
struct Inner {
    map: HashMap<FileId, Bytes>,
    order: VecDeque<FileId>,
    total: u64,
}

/// Small-file cache; see the module docs.
#[derive(Debug)]
pub(crate) struct FileCache {
    max_total: u64,
    max_file: u64,
    inner: RwLock<Inner>,
}

/// Outcome of a lookup.
pub(crate) enum Cached {
    /// The whole file, from memory.
    Hit(Bytes),
    /// The whole file, just read and now cached.
    Loaded(Bytes),
    /// Not cacheable (too large, or the cache is off): stream it.
    Skip,
}

impl FileCache {
    pub(crate) fn new(max_total: u64, max_file: u64) -> Self {
        FileCache {
            max_total,
            max_file: max_file.min(max_total),
            inner: RwLock::new(Inner::default()),
        }
    }

    /// The whole content of `file` (freshly opened, positioned at 0) with identity `id`.
    pub(crate) fn get_or_load(&self, id: FileId, file: &File) -> io::Result<Cached> {
        if id.size > self.max_file {
            return Ok(Cached::Skip);
        }
        if let Some(b) = self.inner.read().ok().and_then(|g| g.map.get(&id).cloned()) {
            return Ok(Cached::Hit(b));
        }
        let mut buf = Vec::with_capacity(id.size as usize);
        file.take(id.size).read_to_end(&mut buf)?;
        if buf.len() as u64 != id.size {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "file shrank while being read",
            ));
        }
        let bytes = Bytes::from(buf);
        if let Ok(mut g) = self.inner.write()
            && !g.map.contains_key(&id)
        {
            while g.total + id.size > self.max_total {
                let Some(old) = g.order.pop_front() else {
                    break;
                };
                if let Some(b) = g.map.remove(&old) {
                    g.total -= b.len() as u64;
                }
            }
            g.total += id.size;
            g.order.push_back(id);
            g.map.insert(id, bytes.clone());
        }
        Ok(Cached::Loaded(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(dir: &std::path::Path, name: &str, data: &[u8]) -> (File, FileId) {
        let p = dir.join(name);
        std::fs::write(&p, data).unwrap();
        let f = File::open(&p).unwrap();
        let id = FileId::of(&f.metadata().unwrap());
        (f, id)
    }

    #[test]
    fn hits_after_load_and_stays_bounded() {
        let d = tempfile::tempdir().unwrap();
        let c = FileCache::new(10, 6);
        let (f, a) = file(d.path(), "a", b"aaaa");
        assert!(matches!(c.get_or_load(a, &f).unwrap(), Cached::Loaded(b) if b == "aaaa"));
        let (f2, _) = file(d.path(), "a2", b"zzzz");
        // Same identity, other descriptor: served from memory.
        assert!(matches!(c.get_or_load(a, &f2).unwrap(), Cached::Hit(b) if b == "aaaa"));
        let (f, big) = file(d.path(), "big", b"0123456789");
        assert!(matches!(c.get_or_load(big, &f).unwrap(), Cached::Skip));
        let (f, b) = file(d.path(), "b", b"bbbbb");
        assert!(matches!(c.get_or_load(b, &f).unwrap(), Cached::Loaded(_)));
        let (f, cc) = file(d.path(), "c", b"cccc");
        assert!(matches!(c.get_or_load(cc, &f).unwrap(), Cached::Loaded(_)));
        let g = c.inner.read().unwrap();
        assert!(g.total <= 10);
        assert!(!g.map.contains_key(&a), "oldest evicted");
    }

    #[test]
    fn a_replaced_file_is_a_different_entry() {
        let d = tempfile::tempdir().unwrap();
        let c = FileCache::new(100, 100);
        let (f, a) = file(d.path(), "x", b"one");
        let _ = c.get_or_load(a, &f).unwrap();
        std::fs::write(d.path().join("x.new"), b"two").unwrap();
        std::fs::rename(d.path().join("x.new"), d.path().join("x")).unwrap();
        let f = File::open(d.path().join("x")).unwrap();
        let b = FileId::of(&f.metadata().unwrap());
        assert_ne!(a, b);
        assert!(matches!(c.get_or_load(b, &f).unwrap(), Cached::Loaded(x) if x == "two"));
    }
}
