//! The mirror's machine-readable status, `DIR/status.json`.
//!
//! Written by the sync engine after every sync attempt (atomically: temp file +
//! rename), read by `sigupdate status` and by `sigserver` for `/ready` and `/metrics`
//! (through [`MirrorView`], which overlays what the published generation holds).
//! A cache for readers: nothing that decides trust is taken from it (see
//! [`crate::trust`]); a missing or unreadable one is rebuilt by the next sync.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// File name of the status document inside a mirror directory.
pub const STATUS_FILE: &str = "status.json";

/// Everything a reader needs to know about a mirror directory.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MirrorStatus {
    /// Absolute path of the published snapshot (`DIR/current`), if anything was ever published.
    pub published_dir: Option<PathBuf>,
    /// Name of the generation directory `current` points at (e.g. `g-000042`).
    pub generation: Option<String>,
    /// Unix seconds of the last sync attempt (successful or not).
    pub last_attempt: Option<i64>,
    /// Unix seconds of the last sync that ended with every database verified and current.
    pub last_success: Option<i64>,
    /// Unix seconds of the last publish (snapshot switch).
    pub last_publish: Option<i64>,
    /// The last sync's overall error, if it failed.
    pub last_error: Option<String>,
    /// Per database state, keyed by database name (`daily`, `main`, `test`, ...).
    pub databases: BTreeMap<String, DatabaseStatus>,
    /// Per third-party feed (`[[feed]]`), keyed by feed name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub feeds: BTreeMap<String, FeedStatus>,
}

/// One third-party feed's state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedStatus {
    /// `verify = "none"`: its files are published unverified.
    pub unverified: bool,
    /// Unix seconds of its last fetch (its `min_interval_secs` clock).
    pub last_fetch: Option<i64>,
    /// Unix seconds at which it is due next.
    pub next_due: Option<i64>,
    /// Per configured file.
    pub files: BTreeMap<String, FeedFileStatus>,
}

/// One feed file's state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedFileStatus {
    /// Whether a good copy is published (new, unchanged or the last good one).
    pub published: bool,
    /// What the last sync did: `updated`, `unchanged`, `not_due`, `kept_last_good`,
    /// `failed`.
    pub outcome: String,
    /// Size of the published copy.
    pub size: Option<u64>,
    /// SHA-256 of the published copy.
    pub sha256: Option<String>,
    /// How the published copy was verified (`openpgp DSA-1024 sha1 <fingerprint>`,
    /// `sha256 sidecar`, `unverified`).
    pub verification: Option<String>,
    /// Unix seconds of the last sync that left the file good (updated or unchanged).
    pub last_success: Option<i64>,
    /// Why the last sync could not update it (no token ever: redacted).
    pub last_error: Option<String>,
    /// Kind of the last error, as for databases (`verification`, `upstream`,
    /// `rate_limited`, `io`).
    pub last_error_kind: Option<String>,
    /// Failed syncs since the last success.
    pub consecutive_failures: u32,
    /// Failed syncs in all (a counter for metrics).
    pub failures: u64,
}

/// One database's state in the published snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatabaseStatus {
    /// Version of `<db>.cvd` in the published snapshot.
    pub published_version: Option<u32>,
    /// Version upstream advertised at the last attempt.
    pub upstream_version: Option<u32>,
    /// Unix seconds at which upstream was first seen advertising
    /// [`upstream_version`](Self::upstream_version) (what `/ready` measures this
    /// mirror's lag from).
    #[serde(default)]
    pub upstream_seen_at: Option<i64>,
    /// Versions of the cdiffs kept in the published snapshot, ascending.
    pub cdiffs: Vec<u32>,
    /// Unix seconds of the last successful check of this database.
    pub last_success: Option<i64>,
    /// Why the last attempt for this database failed (file, URL and check), if it did.
    pub last_error: Option<String>,
    /// Kind of the last error, for metrics: `verification`, `chain`, `upstream`,
    /// `rate_limited`, `rollback`, `io`.
    pub last_error_kind: Option<String>,
    /// Number of failed attempts since the last success.
    pub consecutive_failures: u32,
    /// Chain-consistency failures seen (a counter for metrics; upstream published
    /// cdiffs that do not lead to its `.cvd`).
    #[serde(default)]
    pub chain_failures: u64,
    /// Those of [`cdiffs`](Self::cdiffs) that are signature-verified but not
    /// chain-proven, ascending: older cdiffs backfilled when no published base
    /// preceded them (bootstrap of an empty mirror, a restarted chain). They age out
    /// through normal pruning; every cdiff published on top of a held base is proven.
    /// A copy of the published generation's own record
    /// ([`crate::trust::TrustRecord`]), which is what decides: the engine never takes
    /// it from this file, and readers ([`MirrorView::read`]) overlay it from the
    /// generation.
    #[serde(default)]
    pub unproven_cdiffs: Vec<u32>,
    /// The cdiff version upstream answered "not found" for when older cdiffs were last
    /// backfilled; old cdiffs rarely come back, so for [`BACKFILL_RETRY_SECS`] later
    /// syncs do not ask again for it or anything older. Then it is asked for once more
    /// (a transient 404 or a changed upstream heals by itself); delete it to retry at
    /// once.
    #[serde(default)]
    pub backfill_missing: Option<u32>,
    /// When `backfill_missing` was recorded (Unix seconds). A record without it (from
    /// an older release) counts as expired.
    #[serde(default)]
    pub backfill_missing_at: Option<i64>,
}

/// How long a recorded `backfill_missing` keeps the backfill from asking upstream for
/// that version (and older) again: one day.
pub const BACKFILL_RETRY_SECS: i64 = 24 * 3600;

impl DatabaseStatus {
    /// The recorded `backfill_missing`, unless it is older than [`BACKFILL_RETRY_SECS`]
    /// at `now` (Unix seconds) or has no time.
    pub fn backfill_missing_in_force(&self, now: i64) -> Option<u32> {
        match (self.backfill_missing, self.backfill_missing_at) {
            (Some(m), Some(at)) if now.saturating_sub(at) < BACKFILL_RETRY_SECS => Some(m),
            _ => None,
        }
    }
}

impl MirrorStatus {
    /// The published versions on one line, e.g. `daily 27000, main 62` (`-` for a
    /// database with nothing published yet); what service managers show as status.
    pub fn versions_line(&self) -> String {
        let dbs: Vec<String> = self
            .databases
            .iter()
            .map(|(name, d)| match d.published_version {
                Some(v) => format!("{name} {v}"),
                None => format!("{name} -"),
            })
            .collect();
        dbs.join(", ")
    }

    /// Reads `DIR/status.json`; a missing file is the default (never synced) status.
    pub fn load(dir: &Path) -> std::io::Result<Self> {
        Self::read(dir).map(Option::unwrap_or_default)
    }

    /// Reads `DIR/status.json`; `Ok(None)` when there is none.
    pub fn read(dir: &Path) -> std::io::Result<Option<Self>> {
        crate::json_file::read(&dir.join(STATUS_FILE))
    }

    /// Writes `DIR/status.json` atomically (temp file, fsync, rename, fsync dir).
    pub fn store(&self, dir: &Path) -> std::io::Result<()> {
        crate::json_file::store(&dir.join(STATUS_FILE), self)
    }
}

/// What readers (`sigupdate status`, `sigserver`'s metrics) show: `status.json`
/// overlaid with the truth of the published generation — its name, the versions and
/// cdiffs of its files, and its own record of unproven cdiffs
/// ([`crate::trust::generation_trust`]). A lost or edited `status.json` therefore
/// never makes unproven cdiffs look proven.
#[derive(Debug)]
#[non_exhaustive]
pub struct MirrorView {
    /// The status, overlaid with the published generation.
    pub status: MirrorStatus,
    /// Why `status.json` could not be used, if it could not: unreadable, or missing
    /// while something is published (its times and errors are then unknown).
    pub status_error: Option<std::io::Error>,
    /// How the unproven cdiffs were determined (`None`: nothing is published).
    pub trust: Option<crate::trust::TrustSource>,
}

impl MirrorView {
    /// Reads the view of the mirror directory `dir`.
    pub fn read(dir: &Path) -> Result<Self, crate::Error> {
        let layout = crate::layout::MirrorLayout::new(dir);
        let current = layout.current_generation()?;
        let (mut status, status_error, readable) = match MirrorStatus::read(dir) {
            Ok(Some(s)) => (s, None, true),
            Ok(None) => {
                let missing = current.map(|_| std::io::Error::from(std::io::ErrorKind::NotFound));
                (MirrorStatus::default(), missing, false)
            }
            Err(e) => (MirrorStatus::default(), Some(e), false),
        };
        status.generation = current.map(|g| g.dir_name());
        status.published_dir = current
            .map(|_| std::path::absolute(layout.current()).unwrap_or_else(|_| layout.current()));
        let Some(id) = current else {
            return Ok(Self {
                status,
                status_error,
                trust: None,
            });
        };
        let gen_dir = layout.generation(id);
        let snap = crate::model::Snapshot::read(&gen_dir)?;
        let trust = crate::trust::generation_trust(&gen_dir, &snap, readable.then_some(&status));
        for (name, s) in status.databases.iter_mut() {
            if !snap.databases.contains_key(name) {
                s.published_version = None;
                s.cdiffs.clear();
                s.unproven_cdiffs.clear();
            }
        }
        for (name, held) in &snap.databases {
            let s = status.databases.entry(name.clone()).or_default();
            s.published_version = held.version;
            s.cdiffs = held.cdiffs.keys().copied().collect();
            s.unproven_cdiffs = trust.unproven_of(name).to_vec();
        }
        Ok(Self {
            status,
            status_error,
            trust: Some(trust.source),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn store_then_load_round_trips_and_old_documents_still_parse() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            MirrorStatus::load(dir.path()).unwrap(),
            MirrorStatus::default()
        );
        let mut s = MirrorStatus {
            generation: Some("g-000002".into()),
            last_error: Some("test: chain check failed".into()),
            ..Default::default()
        };
        s.databases.insert(
            "test".into(),
            DatabaseStatus {
                published_version: Some(6),
                cdiffs: vec![5, 6],
                unproven_cdiffs: vec![5],
                chain_failures: 2,
                ..Default::default()
            },
        );
        s.store(dir.path()).unwrap();
        assert_eq!(MirrorStatus::load(dir.path()).unwrap(), s);
        assert!(!dir.path().join(".status.json.tmp").exists());
        // a document written before `chain_failures` existed
        let old = r#"{"published_dir":null,"generation":null,"last_attempt":null,"last_success":null,
            "last_publish":null,"last_error":null,"databases":{"daily":{"published_version":1,
            "upstream_version":1,"cdiffs":[],"last_success":null,"last_error":null,
            "last_error_kind":null,"consecutive_failures":0}}}"#;
        std::fs::write(dir.path().join(STATUS_FILE), old).unwrap();
        let s = MirrorStatus::load(dir.path()).unwrap();
        assert_eq!(s.databases["daily"].chain_failures, 0);
        assert!(s.databases["daily"].unproven_cdiffs.is_empty());
        std::fs::write(dir.path().join(STATUS_FILE), b"{not json").unwrap();
        assert!(MirrorStatus::load(dir.path()).is_err());
    }
}
