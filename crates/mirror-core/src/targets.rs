//! `DIR/targets.json`: the state of the mirror's publish targets (object storage
//! buckets, other directories), written by `sigupdate` after each publish to them and
//! read by `sigupdate status` and `sigserver`'s `/metrics`.
//!
//! Like `status.json` it is a cache for readers and a hint for the publisher (the ETag
//! it last wrote per object, the objects waiting out their deletion grace), never what
//! decides trust: a lost file costs one listing and a few `HEAD` requests on the next
//! publish. The publisher (`crates/publish-target`) owns the format; this module only
//! holds the serde types and the one reader and writer, so that readers need no object
//! storage client.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// The file name under the mirror directory.
pub const TARGETS_FILE: &str = "targets.json";

/// The current format number of [`TargetsRecord`].
pub const TARGETS_FORMAT: u32 = 1;

/// Every publish target of a mirror, by target URL (`s3://bucket/prefix`,
/// `file:///path`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetsRecord {
    /// Format number ([`TARGETS_FORMAT`]).
    pub format: u32,
    /// Per target URL, its state.
    pub targets: BTreeMap<String, TargetState>,
}

/// What a publisher knows about one target.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetState {
    /// The local generation (`g-<n>`) the last publish tried to bring the target to.
    pub wanted_generation: Option<String>,
    /// The local generation the target completely holds (every file, pointers last),
    /// `None` before the first complete publish.
    pub published_generation: Option<String>,
    /// Database versions the target's `<db>.cvd` objects hold, as last published.
    pub versions: BTreeMap<String, u32>,
    /// Unix time of the last publish attempt.
    pub last_attempt_unix: Option<i64>,
    /// Unix time of the last complete publish.
    pub last_success_unix: Option<i64>,
    /// The error of the last attempt, when it failed (the whole chain, one line).
    pub last_error: Option<String>,
    /// Publishes in a row that did not complete (0 after a complete one).
    pub consecutive_failures: u32,
    /// Conflicts lost to another publisher (a conditional write refused), in total.
    pub conflicts: u64,
    /// What the last attempt sent.
    pub last_run: RunCounters,
    /// Per object name (without the prefix): what the publisher last wrote or saw.
    pub objects: BTreeMap<String, ObjectRecord>,
    /// Objects no longer in the published generation, by name, with the Unix time they
    /// left it; deleted once the grace period has passed.
    pub pending_deletes: BTreeMap<String, i64>,
}

impl TargetState {
    /// Whether the target does not (yet) hold the generation published locally as
    /// `local_generation`.
    pub fn lagging(&self, local_generation: Option<&str>) -> bool {
        match local_generation {
            None => false,
            Some(g) => self.published_generation.as_deref() != Some(g),
        }
    }
}

/// One object as the publisher knows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRecord {
    /// SHA-256 of the content, lower-case hex.
    pub sha256: String,
    /// The ETag the store returned for it.
    pub etag: Option<String>,
    /// Size in bytes.
    pub size: u64,
}

/// Requests and bytes of one publish attempt.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunCounters {
    /// PUT requests.
    pub puts: u64,
    /// Bytes sent in PUT bodies.
    pub bytes_sent: u64,
    /// Bytes of the files that were new or changed on the target.
    pub bytes_new: u64,
    /// Every request (LIST pages, HEAD, GET, PUT, DELETE).
    pub requests: u64,
    /// DELETE requests.
    pub deletes: u64,
}

impl TargetsRecord {
    /// Reads `DIR/targets.json`; `Ok(None)` when there is none (no target configured
    /// yet, or never published).
    pub fn read(dir: &Path) -> std::io::Result<Option<Self>> {
        crate::json_file::read(&dir.join(TARGETS_FILE))
    }

    /// Writes `DIR/targets.json` atomically (temp file, fsync, rename, fsync dir).
    pub fn store(&self, dir: &Path) -> std::io::Result<()> {
        crate::json_file::store(&dir.join(TARGETS_FILE), self)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_missing_is_none() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(TargetsRecord::read(dir.path()).unwrap(), None);
        let mut r = TargetsRecord {
            format: TARGETS_FORMAT,
            ..Default::default()
        };
        let t = TargetState {
            published_generation: Some("g-000002".into()),
            ..Default::default()
        };
        assert!(t.lagging(Some("g-000003")));
        assert!(!t.lagging(Some("g-000002")));
        r.targets.insert("s3://b/p".into(), t);
        r.store(dir.path()).unwrap();
        assert_eq!(TargetsRecord::read(dir.path()).unwrap(), Some(r));
        std::fs::write(dir.path().join(TARGETS_FILE), b"{").unwrap();
        assert!(TargetsRecord::read(dir.path()).is_err());
    }
}
