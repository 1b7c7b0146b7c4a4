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
//!
//! The cache is split into one shard per worker thread, each with an equal part of the
//! total limit (and files up to the smaller of the per-file limit and that part): a
//! worker only ever touches its own shard, so no lock word or reference count is
//! bounced between CPUs on every request. A hot file is held once per worker.

use std::cell::Cell;
use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io;
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

thread_local! {
    static WORKER: Cell<usize> = const { Cell::new(0) };
}

/// Declares the calling thread to be worker `w` (it then uses shard `w`).
pub(crate) fn set_worker_index(w: usize) {
    WORKER.with(|c| c.set(w));
}

/// Small-file cache; see the module docs.
#[derive(Debug)]
pub(crate) struct FileCache {
    shards: Box<[Shard]>,
}

/// One worker's part of the cache.
#[derive(Debug)]
struct Shard {
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
    /// At most `max_total` bytes in all, split evenly over `workers` shards.
    pub(crate) fn new(max_total: u64, max_file: u64, workers: usize) -> Self {
        let n = workers.max(1);
        let part = max_total / n as u64;
        FileCache {
            shards: (0..n)
                .map(|_| Shard {
                    max_total: part,
                    max_file: max_file.min(part),
                    inner: RwLock::new(Inner::default()),
                })
                .collect(),
        }
    }

    /// The whole content of `file` (read by position) with identity `id`,
    /// from the calling worker's shard.
    pub(crate) fn get_or_load(&self, id: FileId, file: &File) -> io::Result<Cached> {
        let w = WORKER.with(Cell::get);
        match self.shards.get(w % self.shards.len().max(1)) {
            Some(s) => s.get_or_load(id, file),
            None => Ok(Cached::Skip),
        }
    }
}

impl Shard {
    fn get_or_load(&self, id: FileId, file: &File) -> io::Result<Cached> {
        if id.size > self.max_file {
            return Ok(Cached::Skip);
        }
        if let Some(b) = self.inner.read().ok().and_then(|g| g.map.get(&id).cloned()) {
            return Ok(Cached::Hit(b));
        }
        // By position: the descriptor may be shared (open-file cache).
        let mut buf = vec![0u8; id.size as usize];
        crate::open_files::read_exact_at(file, &mut buf, 0)?;
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
        let c = FileCache::new(10, 6, 1);
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
        let g = c.shards[0].inner.read().unwrap();
        assert!(g.total <= 10);
        assert!(!g.map.contains_key(&a), "oldest evicted");
    }

    #[test]
    fn a_replaced_file_is_a_different_entry() {
        let d = tempfile::tempdir().unwrap();
        let c = FileCache::new(100, 100, 1);
        let (f, a) = file(d.path(), "x", b"one");
        let _ = c.get_or_load(a, &f).unwrap();
        std::fs::write(d.path().join("x.new"), b"two").unwrap();
        std::fs::rename(d.path().join("x.new"), d.path().join("x")).unwrap();
        let f = File::open(d.path().join("x")).unwrap();
        let b = FileId::of(&f.metadata().unwrap());
        assert_ne!(a, b);
        assert!(matches!(c.get_or_load(b, &f).unwrap(), Cached::Loaded(x) if x == "two"));
    }

    #[test]
    fn shards_split_the_total_and_are_per_worker() {
        let d = tempfile::tempdir().unwrap();
        let c = FileCache::new(12, 100, 2);
        assert!(c.shards.iter().all(|s| s.max_total == 6 && s.max_file == 6));
        let (f, a) = file(d.path(), "a", b"aaaa");
        set_worker_index(0);
        assert!(matches!(c.get_or_load(a, &f).unwrap(), Cached::Loaded(_)));
        assert!(matches!(c.get_or_load(a, &f).unwrap(), Cached::Hit(_)));
        set_worker_index(1);
        // Worker 1 has its own shard: first a load there (a request's own descriptor),
        // then hits.
        let f = File::open(d.path().join("a")).unwrap();
        assert!(matches!(c.get_or_load(a, &f).unwrap(), Cached::Loaded(b) if b == "aaaa"));
        assert!(matches!(c.get_or_load(a, &f).unwrap(), Cached::Hit(_)));
        let (f, big) = file(d.path(), "big", b"0123456");
        assert!(matches!(c.get_or_load(big, &f).unwrap(), Cached::Skip));
        let total: u64 = c.shards.iter().map(|s| s.inner.read().unwrap().total).sum();
        assert!(total <= 12);
        set_worker_index(0);
    }
}
