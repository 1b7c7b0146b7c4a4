//! Where a generation's databases came from: `generations/g-<n>/.trace.json`.
//!
//! For every database a generation holds, the [`TraceRecord`] names the version, the
//! upstream its `.cvd` was fetched from, when this mirror published it, and the chain
//! of hops it travelled: the origin that first published it, then each mirror that
//! passed it on (with the time it published it), ending with this mirror. The hops
//! before this mirror come from the push notice that started the sync
//! ([`SyncHints`]); a version learned by polling has no earlier hops.
//!
//! The trace is information for operators (`sigserver` serves it as `/trace`): it
//! decides nothing. Like [`crate::trust`]'s record it is written into the generation
//! before the generation is made durable and switched, and its name is outside the
//! served-file grammar. A database that a generation carries over unchanged keeps its
//! entry from the previous generation.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, RecordError};
use crate::model::valid_db_name;

/// File name of the trace record inside a generation directory.
pub const TRACE_FILE: &str = ".trace.json";

/// The format version written in [`TraceRecord::format`].
pub const TRACE_FORMAT: u32 = 1;

/// Largest trace record read.
const MAX_TRACE_LEN: u64 = 4 << 20;

/// Most hops kept per database (a longer chain keeps its first and last ones).
pub const MAX_HOPS: usize = 32;

/// One mirror on a database version's way here.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Hop {
    /// The mirror's name (its configured push name; `origin` for the first publisher
    /// when it has no other).
    pub mirror: String,
    /// Unix milliseconds at which that mirror published the version.
    pub published_ms: u64,
}

/// One database's entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatabaseTrace {
    /// The published `<db>.cvd` version.
    pub version: u32,
    /// The URL the `.cvd` was fetched from (`None`: unknown, e.g. carried from a
    /// generation of an older release).
    pub fetched_from: Option<String>,
    /// Unix milliseconds at which this mirror published it.
    pub published_ms: u64,
    /// The hops, origin first, this mirror last.
    pub hops: Vec<Hop>,
}

impl DatabaseTrace {
    /// Milliseconds from the origin's publish (the first hop) to this mirror's.
    pub fn propagation_ms(&self) -> Option<u64> {
        let first = self.hops.first()?;
        Some(self.published_ms.saturating_sub(first.published_ms))
    }
}

/// The content of `.trace.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceRecord {
    /// Format version, [`TRACE_FORMAT`].
    pub format: u32,
    /// This mirror's name.
    pub mirror: String,
    /// Per database.
    pub databases: BTreeMap<String, DatabaseTrace>,
}

impl TraceRecord {
    /// Reads `gen_dir/.trace.json`: `Ok(None)` when there is none.
    pub fn read(gen_dir: &Path) -> Result<Option<Self>, Error> {
        let path = gen_dir.join(TRACE_FILE);
        let Some(record) = crate::json_file::read_record::<Self>(&path, MAX_TRACE_LEN)? else {
            return Ok(None);
        };
        let corrupt = |reason: RecordError| Error::Corrupt {
            path: path.clone(),
            source: reason,
        };
        if record.format != TRACE_FORMAT {
            return Err(corrupt(RecordError::Format(record.format)));
        }
        if let Some(db) = record.databases.keys().find(|d| !valid_db_name(d)) {
            return Err(corrupt(RecordError::DatabaseName(db.clone())));
        }
        Ok(Some(record))
    }

    /// The record as written into a generation (pretty JSON, newline-terminated).
    pub fn to_bytes(&self) -> std::io::Result<Vec<u8>> {
        crate::json_file::pretty(self)
    }
}

/// What the caller knows about why this sync runs: for each database, the version a
/// push notice announced and the hops it travelled so far (origin first). Hints decide
/// nothing about what is published; they only fill in the trace when the version
/// published is the one announced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncHints {
    /// Per database: the announced version and its hops.
    pub announced: BTreeMap<String, (u32, Vec<Hop>)>,
}

impl SyncHints {
    /// No hints (a poll).
    pub fn none() -> Self {
        Self::default()
    }

    /// The hops before this mirror for `db` at `version`: the announced ones when the
    /// version matches, else none.
    pub fn hops_for(&self, db: &str, version: u32) -> Vec<Hop> {
        match self.announced.get(db) {
            Some((v, hops)) if *v == version => hops.clone(),
            _ => Vec::new(),
        }
    }
}

/// Bounds a hop list to [`MAX_HOPS`], keeping the origin and the most recent ones.
pub fn bounded_hops(mut hops: Vec<Hop>) -> Vec<Hop> {
    if hops.len() > MAX_HOPS {
        let tail = hops.split_off(hops.len() - (MAX_HOPS - 1));
        hops.truncate(1);
        hops.extend(tail);
    }
    hops
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test
mod tests {
    use super::*;

    fn hop(n: u64) -> Hop {
        Hop {
            mirror: format!("m{n}"),
            published_ms: n,
        }
    }

    #[test]
    fn round_trip_and_damage() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(TraceRecord::read(dir.path()).unwrap(), None);
        let mut r = TraceRecord {
            format: TRACE_FORMAT,
            mirror: "tier1".into(),
            databases: BTreeMap::new(),
        };
        r.databases.insert(
            "daily".into(),
            DatabaseTrace {
                version: 7,
                fetched_from: Some("http://up/daily.cvd".into()),
                published_ms: 1_500,
                hops: vec![hop(1_000), hop(1_500)],
            },
        );
        std::fs::write(dir.path().join(TRACE_FILE), r.to_bytes().unwrap()).unwrap();
        let back = TraceRecord::read(dir.path()).unwrap().unwrap();
        assert_eq!(back, r);
        assert_eq!(back.databases["daily"].propagation_ms(), Some(500));
        std::fs::write(dir.path().join(TRACE_FILE), b"{\"format\":2}").unwrap();
        assert!(TraceRecord::read(dir.path()).is_err());
        let bad = r.to_bytes().unwrap();
        std::fs::write(dir.path().join(TRACE_FILE), &bad[..bad.len() / 2]).unwrap();
        assert!(TraceRecord::read(dir.path()).is_err());
    }

    #[test]
    fn hops_are_bounded_keeping_origin_and_latest() {
        let hops: Vec<Hop> = (0..100).map(hop).collect();
        let b = bounded_hops(hops);
        assert_eq!(b.len(), MAX_HOPS);
        assert_eq!(b[0], hop(0));
        assert_eq!(b[MAX_HOPS - 1], hop(99));
        assert_eq!(b[1], hop(100 - (MAX_HOPS as u64 - 1)));
        let short: Vec<Hop> = (0..3).map(hop).collect();
        assert_eq!(bounded_hops(short.clone()), short);
    }

    #[test]
    fn hints_apply_only_to_the_announced_version() {
        let mut h = SyncHints::none();
        h.announced.insert("daily".into(), (5, vec![hop(1)]));
        assert_eq!(h.hops_for("daily", 5), vec![hop(1)]);
        assert!(h.hops_for("daily", 6).is_empty());
        assert!(h.hops_for("main", 5).is_empty());
    }
}
