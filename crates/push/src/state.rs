//! The push state of a mirror, `DIR/push.json`: notice counters, announced versions
//! not published yet, announcements no sync could confirm, downstream results and the
//! propagation histogram.
//!
//! Written (atomically) by the process that receives notices and syncs (`sigserver
//! --sync`, or `sigupdate watch`); read by `sigserver` for `/ready` and `/metrics` and
//! by `sigupdate status`. Like `status.json` it is information, never what decides
//! trust.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// File name of the push state inside a mirror directory.
pub const PUSH_STATE_FILE: &str = "push.json";

/// Upper bounds (seconds) of the propagation histogram's buckets.
pub const PROPAGATION_BUCKETS: &[f64] = &[
    0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
];

/// The push state document.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PushState {
    /// Notices received, by outcome (`accepted`, `unauthenticated`, `stale`,
    /// `replayed`, `malformed`, `too_large`, `rate_limited`).
    #[serde(default)]
    pub notices: BTreeMap<String, u64>,
    /// What accepted notices led to: `sync` (started or queued one),
    /// `already_published` (no sync needed), `unconfirmed` (it repeats a version a
    /// sync already found missing upstream).
    #[serde(default)]
    pub notice_actions: BTreeMap<String, u64>,
    /// Syncs run, by reason (`start`, `poll`, `push`, `dns`, `signal`).
    #[serde(default)]
    pub syncs: BTreeMap<String, u64>,
    /// Versions announced (by a notice) and not published here yet.
    #[serde(default)]
    pub announced: BTreeMap<String, Announcement>,
    /// Versions a notice announced that a sync from the notifying upstream did not find
    /// there (a lying or mistaken notice). Never retried on their own; the poll
    /// fallback still runs.
    #[serde(default)]
    pub unconfirmed: BTreeMap<String, Announcement>,
    /// Per downstream URL, the result of the notices sent to it.
    #[serde(default)]
    pub downstreams: BTreeMap<String, DownstreamState>,
    /// Time from the origin's publish to this mirror's, per published update.
    #[serde(default)]
    pub propagation: Histogram,
}

/// A version announced by a notice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Announcement {
    /// The version.
    pub version: u32,
    /// Who said so.
    pub sender: String,
    /// Unix seconds when it was first heard.
    pub since: i64,
}

/// What happened to the notices sent to one downstream.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DownstreamState {
    /// Unix seconds of the last accepted notice.
    pub last_success: Option<i64>,
    /// Unix seconds of the last failed attempt.
    pub last_failure: Option<i64>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// Notices it accepted.
    pub delivered: u64,
    /// Attempts that failed (each retry counts).
    pub failed_attempts: u64,
    /// Attempts that failed since the last delivery (0: the last attempt succeeded).
    #[serde(default)]
    pub consecutive_failures: u64,
    /// Notices given up on (every retry failed; the downstream's poll covers them).
    pub given_up: u64,
}

/// A cumulative histogram with the buckets of [`PROPAGATION_BUCKETS`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    /// Observations at or below each bucket's bound (same order as the bounds).
    pub buckets: Vec<u64>,
    /// Number of observations.
    pub count: u64,
    /// Sum of the observations (seconds).
    pub sum: f64,
}

impl Histogram {
    /// Adds one observation (seconds).
    pub fn observe(&mut self, secs: f64) {
        self.buckets.resize(PROPAGATION_BUCKETS.len(), 0);
        for (b, le) in self.buckets.iter_mut().zip(PROPAGATION_BUCKETS) {
            if secs <= *le {
                *b += 1;
            }
        }
        self.count += 1;
        self.sum += secs;
    }
}

impl PushState {
    /// Reads `dir/push.json`; `Ok(None)` when there is none.
    pub fn read(dir: &Path) -> Result<Option<Self>, Error> {
        let path = dir.join(PUSH_STATE_FILE);
        mirror_core::json_file::read(&path).map_err(|e| Error::State {
            path,
            what: "read".into(),
            source: Box::new(e),
        })
    }

    /// Writes `dir/push.json` atomically.
    pub fn store(&self, dir: &Path) -> Result<(), Error> {
        let path = dir.join(PUSH_STATE_FILE);
        mirror_core::json_file::store(&path, self).map_err(|e| Error::State {
            path,
            what: "write".into(),
            source: Box::new(e),
        })
    }

    /// Adds one to a counter of `map`.
    pub fn count(map: &mut BTreeMap<String, u64>, key: &str) {
        *map.entry(key.to_owned()).or_default() += 1;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative() {
        let mut h = Histogram::default();
        h.observe(0.3);
        h.observe(4.0);
        assert_eq!(h.count, 2);
        assert_eq!(h.buckets[0], 0); // ≤ 0.25
        assert_eq!(h.buckets[1], 1); // ≤ 0.5
        assert_eq!(h.buckets[4], 2); // ≤ 5
        assert!((h.sum - 4.3).abs() < 1e-9);
    }

    #[test]
    fn store_read_and_damage() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(PushState::read(dir.path()).unwrap(), None);
        let mut s = PushState::default();
        PushState::count(&mut s.notices, "accepted");
        s.propagation.observe(1.0);
        s.store(dir.path()).unwrap();
        assert_eq!(PushState::read(dir.path()).unwrap(), Some(s));
        std::fs::write(dir.path().join(PUSH_STATE_FILE), b"{\"notices\":").unwrap();
        let e = PushState::read(dir.path()).unwrap_err().to_string();
        assert!(e.contains("push.json") && e.contains("read"), "{e}");
    }
}
