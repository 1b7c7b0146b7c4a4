//! The versions of the published snapshot, resolved per query and cached per
//! generation.
//!
//! Every query reads the `current` symlink (one `readlink`, through mirror-core's
//! [`MirrorLayout::current_generation`]); the versions of a generation are read once
//! (mirror-core's [`Snapshot::read`]: the header of each `<db>.cvd`) and kept while
//! `current` points at it. A generation never changes after it is published, so the
//! cache is exact, and the record changes in the same step as the files that HTTP
//! serves. A plain directory (no `current`, or a `current` not made by mirror-core)
//! has no generation to key on: its versions are re-read when its modification time
//! changes, and at least every [`PLAIN_REFRESH`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mirror_core::layout::{GenerationId, MirrorLayout};
use mirror_core::model::Snapshot;

use super::answer::Published;

/// How long the versions of a plain directory are reused without re-reading.
pub(crate) const PLAIN_REFRESH: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Key {
    Generation(GenerationId),
    Plain { path: PathBuf, mtime: SystemTime },
}

#[derive(Debug)]
struct Cached {
    key: Key,
    at: Instant,
    value: Option<Arc<Published>>,
}

/// Where the published versions come from.
#[derive(Debug)]
pub(crate) struct PublishedSource {
    layout: MirrorLayout,
    cache: Mutex<Option<Cached>>,
}

impl PublishedSource {
    pub(crate) fn new(dir: &Path) -> PublishedSource {
        PublishedSource {
            layout: MirrorLayout::new(dir),
            cache: Mutex::new(None),
        }
    }

    /// The versions of the snapshot `DIR/current` points at now (`None`: unreadable,
    /// logged).
    pub(crate) fn get(&self) -> Option<Arc<Published>> {
        let (key, path, serial) = match self.layout.current_generation() {
            Ok(Some(id)) => (
                Key::Generation(id),
                self.layout.generation(id),
                // The SOA serial: generation numbers only grow (mod 2^32, RFC 1982).
                id.0 as u32,
            ),
            Ok(None) => plain(self.layout.root())?,
            // `current` exists but is not mirror-core's: HTTP serves it as is.
            Err(_) => plain(&self.layout.current())?,
        };
        let mut cache = match self.cache.lock() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(c) = cache.as_ref()
            && c.key == key
            && (matches!(key, Key::Generation(_)) || c.at.elapsed() < PLAIN_REFRESH)
        {
            return c.value.clone();
        }
        let value = match Snapshot::read(&path) {
            Ok(snap) => {
                let versions: BTreeMap<String, u32> = snap
                    .databases
                    .iter()
                    .filter_map(|(db, d)| d.version.map(|v| (db.clone(), v)))
                    .collect();
                tracing::info!(
                    snapshot = %path.display(),
                    serial,
                    ?versions,
                    "DNS: now announcing this snapshot"
                );
                Some(Arc::new(Published::new(&versions, serial)))
            }
            Err(e) => {
                tracing::error!(snapshot = %path.display(), error = %e, "DNS: cannot read the published snapshot; answering SERVFAIL");
                None
            }
        };
        *cache = Some(Cached {
            key,
            at: Instant::now(),
            value: value.clone(),
        });
        value
    }
}

fn plain(path: &Path) -> Option<(Key, PathBuf, u32)> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(dir = %path.display(), error = %e, "DNS: cannot read the served directory");
            return None;
        }
    };
    let mtime = meta.modified().unwrap_or(UNIX_EPOCH);
    let serial = mtime
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as u32);
    Some((
        Key::Plain {
            path: path.to_path_buf(),
            mtime,
        },
        path.to_path_buf(),
        serial,
    ))
}
