//! What a generation proves, recorded inside it: `generations/g-<n>/.trust.json`.
//!
//! Every cdiff a generation publishes is either chain-proven (the previous published
//! base plus the cdiffs reproduce the `.cvd`) or, from a bootstrap backfill,
//! signature-verified but chain-unproven. Which ones are unproven is part of the
//! immutable snapshot: the engine writes the [`TrustRecord`] into the generation
//! before it is fsynced and switched, and derives the next generation's record from
//! the previous generation's, never from the mutable `status.json` (which only
//! mirrors it for readers).
//!
//! The file name starts with a dot and is outside the served-file grammar
//! ([`crate::model::FileName`]), so `sigserver` never serves it.
//!
//! A generation without a record (published by a release before this one) or with an
//! unreadable one is read conservatively ([`generation_trust`]): the unproven list of
//! a readable `status.json` for a generation without a record (the upgrade path), and
//! otherwise every cdiff counts as unproven.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, RecordError};
use crate::model::{Snapshot, valid_db_name};
use crate::status::MirrorStatus;

/// File name of the trust record inside a generation directory.
pub const TRUST_FILE: &str = ".trust.json";

/// The format version written in [`TrustRecord::format`].
pub const TRUST_FORMAT: u32 = 1;

/// Largest trust record read (defensive limit).
const MAX_TRUST_LEN: u64 = 16 << 20;

/// The content of `.trust.json`: for every database the generation holds, the cdiff
/// versions that are signature-verified but not chain-proven.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustRecord {
    /// Format version, [`TRUST_FORMAT`].
    pub format: u32,
    /// Per database held by the generation (every one is listed, an empty list meaning
    /// "all its cdiffs are chain-proven"), the unproven cdiff versions, ascending.
    pub unproven_cdiffs: BTreeMap<String, Vec<u32>>,
}

impl TrustRecord {
    /// A record of the given unproven cdiffs (each list is sorted and deduplicated).
    pub fn new(unproven_cdiffs: BTreeMap<String, Vec<u32>>) -> Self {
        let unproven_cdiffs = unproven_cdiffs
            .into_iter()
            .map(|(db, mut v)| {
                v.sort_unstable();
                v.dedup();
                (db, v)
            })
            .collect();
        Self {
            format: TRUST_FORMAT,
            unproven_cdiffs,
        }
    }

    /// Reads `gen_dir/.trust.json`: `Ok(None)` when there is none, an error when it is
    /// unreadable, not a record of this format, or names an invalid database.
    pub fn read(gen_dir: &Path) -> Result<Option<Self>, Error> {
        let path = gen_dir.join(TRUST_FILE);
        let Some(record) = crate::json_file::read_record::<Self>(&path, MAX_TRUST_LEN)? else {
            return Ok(None);
        };
        let corrupt = |reason: RecordError| Error::Corrupt {
            path: path.clone(),
            source: reason,
        };
        if record.format != TRUST_FORMAT {
            return Err(corrupt(RecordError::Format(record.format)));
        }
        if let Some(db) = record.unproven_cdiffs.keys().find(|d| !valid_db_name(d)) {
            return Err(corrupt(RecordError::DatabaseName(db.clone())));
        }
        Ok(Some(record))
    }

    /// The record as written into a generation (pretty JSON, newline-terminated).
    pub fn to_bytes(&self) -> std::io::Result<Vec<u8>> {
        crate::json_file::pretty(self)
    }
}

/// How the unproven cdiffs of a generation were determined.
#[derive(Debug)]
#[non_exhaustive]
pub enum TrustSource {
    /// The generation's own `.trust.json`.
    Record,
    /// The generation has no record (published by an older release); the unproven
    /// lists of a readable `status.json` were used (a database it does not list
    /// counts as all unproven).
    LegacyStatus,
    /// The generation has no record and `status.json` was unusable: every cdiff
    /// counts as unproven.
    Missing,
    /// The generation's record is unreadable or invalid: every cdiff counts as
    /// unproven.
    Corrupt(Error),
}

impl TrustSource {
    /// Whether the generation's own record was read (anything else is a conservative
    /// reconstruction, and the next sync publishes a generation with a record).
    pub fn is_record(&self) -> bool {
        matches!(self, TrustSource::Record)
    }
}

/// The unproven cdiffs of one generation, per database, and how they were determined.
#[derive(Debug)]
pub struct GenerationTrust {
    /// Unproven cdiff versions per database held, ascending; every held database is
    /// listed (an empty list: all proven).
    pub unproven: BTreeMap<String, Vec<u32>>,
    /// Where the lists came from.
    pub source: TrustSource,
}

impl GenerationTrust {
    /// The unproven cdiffs of `db` (empty when it holds none or is not held).
    pub fn unproven_of(&self, db: &str) -> &[u32] {
        self.unproven.get(db).map_or(&[], Vec::as_slice)
    }
}

/// The unproven cdiffs of the generation in `gen_dir`, whose content is `snapshot`:
/// from its record when it has a valid one (a database the record does not list
/// counts as all unproven); without a record, from `legacy` (the `status.json` of an
/// older release, when it was readable); otherwise every cdiff counts as unproven.
/// Each list is restricted to the cdiffs the snapshot holds.
pub fn generation_trust(
    gen_dir: &Path,
    snapshot: &Snapshot,
    legacy: Option<&MirrorStatus>,
) -> GenerationTrust {
    let (unproven, source) = match TrustRecord::read(gen_dir) {
        Ok(Some(r)) => (
            restrict(snapshot, |db| r.unproven_cdiffs.get(db).cloned()),
            TrustSource::Record,
        ),
        Ok(None) => match legacy {
            Some(st) => (
                restrict(snapshot, |db| {
                    st.databases.get(db).map(|d| d.unproven_cdiffs.clone())
                }),
                TrustSource::LegacyStatus,
            ),
            None => (restrict(snapshot, |_| None), TrustSource::Missing),
        },
        Err(e) => (restrict(snapshot, |_| None), TrustSource::Corrupt(e)),
    };
    GenerationTrust { unproven, source }
}

/// For every database of `snapshot`: the versions `listed` gives that it holds, or all
/// its cdiffs when `listed` gives nothing.
fn restrict(
    snapshot: &Snapshot,
    listed: impl Fn(&str) -> Option<Vec<u32>>,
) -> BTreeMap<String, Vec<u32>> {
    snapshot
        .databases
        .iter()
        .map(|(db, held)| {
            let v = match listed(db) {
                Some(l) => held
                    .cdiffs
                    .keys()
                    .copied()
                    .filter(|v| l.contains(v))
                    .collect(),
                None => held.cdiffs.keys().copied().collect(),
            };
            (db.clone(), v)
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::model::{FileName, HeldDatabase};
    use crate::status::DatabaseStatus;

    fn snapshot() -> Snapshot {
        let mut s = Snapshot::default();
        s.databases.insert(
            "test".into(),
            HeldDatabase {
                version: Some(6),
                cvd_sign: true,
                cdiffs: [(4, true), (5, true), (6, true)].into_iter().collect(),
            },
        );
        s
    }

    #[test]
    fn the_record_is_never_a_served_name() {
        assert_eq!(FileName::parse(TRUST_FILE), None);
        assert_eq!(crate::model::MirrorFile::parse(TRUST_FILE), None);
    }

    #[test]
    fn a_record_round_trips_and_is_restricted_to_what_is_held() {
        let dir = tempfile::tempdir().unwrap();
        let r = TrustRecord::new([("test".to_owned(), vec![5, 3, 4, 4])].into());
        assert_eq!(r.unproven_cdiffs["test"], vec![3, 4, 5]);
        std::fs::write(dir.path().join(TRUST_FILE), r.to_bytes().unwrap()).unwrap();
        assert_eq!(TrustRecord::read(dir.path()).unwrap(), Some(r));
        let t = generation_trust(dir.path(), &snapshot(), None);
        assert!(t.source.is_record());
        assert_eq!(t.unproven_of("test"), [4, 5]);
    }

    #[test]
    fn without_a_record_the_legacy_status_or_else_everything_is_unproven() {
        let dir = tempfile::tempdir().unwrap();
        let t = generation_trust(dir.path(), &snapshot(), None);
        assert!(matches!(t.source, TrustSource::Missing));
        assert_eq!(t.unproven_of("test"), [4, 5, 6]);
        let mut st = MirrorStatus::default();
        st.databases.insert(
            "test".into(),
            DatabaseStatus {
                unproven_cdiffs: vec![3, 4],
                ..Default::default()
            },
        );
        let t = generation_trust(dir.path(), &snapshot(), Some(&st));
        assert!(matches!(t.source, TrustSource::LegacyStatus));
        assert_eq!(t.unproven_of("test"), [4]);
        // a database the old status does not know about: all unproven
        let t = generation_trust(dir.path(), &snapshot(), Some(&MirrorStatus::default()));
        assert_eq!(t.unproven_of("test"), [4, 5, 6]);
    }

    #[test]
    fn a_corrupt_record_counts_every_cdiff_unproven() {
        let dir = tempfile::tempdir().unwrap();
        let mut st = MirrorStatus::default();
        st.databases
            .insert("test".into(), DatabaseStatus::default());
        for bad in [
            &b"{not json"[..],
            b"",
            br#"{"format":2,"unproven_cdiffs":{}}"#,
            br#"{"format":1,"unproven_cdiffs":{"../x":[]}}"#,
            br#"{"format":1,"unproven_cdiffs":{},"extra":1}"#,
        ] {
            std::fs::write(dir.path().join(TRUST_FILE), bad).unwrap();
            assert!(TrustRecord::read(dir.path()).is_err());
            let t = generation_trust(dir.path(), &snapshot(), Some(&st));
            assert!(matches!(t.source, TrustSource::Corrupt(_)), "{bad:?}");
            assert_eq!(t.unproven_of("test"), [4, 5, 6]);
        }
        // a record that does not list a held database: all of its cdiffs unproven
        let r = TrustRecord::new(BTreeMap::new());
        std::fs::write(dir.path().join(TRUST_FILE), r.to_bytes().unwrap()).unwrap();
        let t = generation_trust(dir.path(), &snapshot(), Some(&st));
        assert_eq!(t.unproven_of("test"), [4, 5, 6]);
    }
}
