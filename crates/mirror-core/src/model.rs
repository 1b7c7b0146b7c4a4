//! The mirror model: which databases a snapshot holds, at which version, with which
//! cdiffs and `.sign` files — read back from a generation directory.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use crate::error::{Error, io_err};

/// Longest database name accepted.
pub const MAX_DB_NAME: usize = 64;
/// Most files accepted in one generation directory (defensive limit).
pub const MAX_FILES_PER_GENERATION: usize = 100_000;
/// File name of the TXT-style version manifest in each generation.
pub const MANIFEST_FILE: &str = "dns.txt";

/// Checks a database name: 1 to [`MAX_DB_NAME`] ASCII letters, digits or `_`.
///
/// ```
/// assert!(mirror_core::model::valid_db_name("daily"));
/// assert!(!mirror_core::model::valid_db_name("../etc"));
/// assert!(!mirror_core::model::valid_db_name("a-b"));
/// ```
pub fn valid_db_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_DB_NAME
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// One file a mirror serves, identified by its name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MirrorFile {
    /// `<db>.cvd`: the newest full database.
    Cvd {
        /// Database name.
        db: String,
    },
    /// `<db>-<version>.cvd.sign`: the 1.5 detached signature of the `.cvd`.
    CvdSign {
        /// Database name.
        db: String,
        /// Version of the `.cvd` it signs.
        version: u32,
    },
    /// `<db>-<version>.cdiff`: the patch producing `version` from `version - 1`.
    Cdiff {
        /// Database name.
        db: String,
        /// The version the patch produces.
        version: u32,
    },
    /// `<db>-<version>.cdiff.sign`: the 1.5 detached signature of a cdiff.
    CdiffSign {
        /// Database name.
        db: String,
        /// Version of the cdiff it signs.
        version: u32,
    },
    /// `dns.txt`: the TXT-style version manifest.
    Manifest,
}

impl MirrorFile {
    /// Classifies a file name; `None` for anything that is not a mirror file.
    ///
    /// ```
    /// use mirror_core::model::MirrorFile;
    /// assert_eq!(
    ///     MirrorFile::parse("daily-27001.cdiff.sign"),
    ///     Some(MirrorFile::CdiffSign { db: "daily".into(), version: 27001 })
    /// );
    /// assert_eq!(MirrorFile::parse("daily.cld"), None);
    /// ```
    pub fn parse(name: &str) -> Option<Self> {
        if name == MANIFEST_FILE {
            return Some(MirrorFile::Manifest);
        }
        if let Some(db) = name.strip_suffix(".cvd") {
            return valid_db_name(db).then(|| MirrorFile::Cvd { db: db.to_owned() });
        }
        let (stem, kind) = if let Some(s) = name.strip_suffix(".cvd.sign") {
            (s, 0)
        } else if let Some(s) = name.strip_suffix(".cdiff.sign") {
            (s, 1)
        } else if let Some(s) = name.strip_suffix(".cdiff") {
            (s, 2)
        } else {
            return None;
        };
        let (db, v) = stem.rsplit_once('-')?;
        let canonical = !v.is_empty()
            && v.len() <= 10
            && v.bytes().all(|b| b.is_ascii_digit())
            && (v == "0" || !v.starts_with('0'));
        if !valid_db_name(db) || !canonical {
            return None;
        }
        let version: u32 = v.parse().ok()?;
        let db = db.to_owned();
        Some(match kind {
            0 => MirrorFile::CvdSign { db, version },
            1 => MirrorFile::CdiffSign { db, version },
            _ => MirrorFile::Cdiff { db, version },
        })
    }

    /// The database this file belongs to (`None` for the manifest).
    pub fn db(&self) -> Option<&str> {
        match self {
            MirrorFile::Cvd { db }
            | MirrorFile::CvdSign { db, .. }
            | MirrorFile::Cdiff { db, .. }
            | MirrorFile::CdiffSign { db, .. } => Some(db),
            MirrorFile::Manifest => None,
        }
    }

    /// Whether this is a `.sign` file.
    pub fn is_sign(&self) -> bool {
        matches!(
            self,
            MirrorFile::CvdSign { .. } | MirrorFile::CdiffSign { .. }
        )
    }
}

impl fmt::Display for MirrorFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MirrorFile::Cvd { db } => write!(f, "{db}.cvd"),
            MirrorFile::CvdSign { db, version } => write!(f, "{db}-{version}.cvd.sign"),
            MirrorFile::Cdiff { db, version } => write!(f, "{db}-{version}.cdiff"),
            MirrorFile::CdiffSign { db, version } => write!(f, "{db}-{version}.cdiff.sign"),
            MirrorFile::Manifest => f.write_str(MANIFEST_FILE),
        }
    }
}

/// What a snapshot holds of one database.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeldDatabase {
    /// Version of `<db>.cvd` (from its header), if the `.cvd` is present.
    pub version: Option<u32>,
    /// Whether `<db>-<version>.cvd.sign` is present.
    pub cvd_sign: bool,
    /// Versions of the kept cdiffs, each with whether its `.sign` is present.
    pub cdiffs: BTreeMap<u32, bool>,
}

impl HeldDatabase {
    /// The lowest version from which the kept cdiffs form an unbroken chain up to
    /// [`version`](Self::version): the base a client must hold to update incrementally.
    /// Equal to `version` when no cdiff is kept.
    pub fn chain_floor(&self) -> Option<u32> {
        let top = self.version?;
        let mut floor = top;
        while floor > 0 && self.cdiffs.contains_key(&floor) {
            floor -= 1;
        }
        Some(floor)
    }

    /// The files of `db` this entry names: the `.cvd` and its `.sign` when a `.cvd`
    /// is held, then each kept cdiff for which `keep_cdiff` holds, with its `.sign`.
    pub(crate) fn files(&self, db: &str, keep_cdiff: impl Fn(u32) -> bool) -> Vec<MirrorFile> {
        let mut out = Vec::new();
        if let Some(version) = self.version {
            out.push(MirrorFile::Cvd { db: db.to_owned() });
            if self.cvd_sign {
                out.push(MirrorFile::CvdSign {
                    db: db.to_owned(),
                    version,
                });
            }
        }
        for (&version, &sign) in &self.cdiffs {
            if keep_cdiff(version) {
                out.push(MirrorFile::Cdiff {
                    db: db.to_owned(),
                    version,
                });
                if sign {
                    out.push(MirrorFile::CdiffSign {
                        db: db.to_owned(),
                        version,
                    });
                }
            }
        }
        out
    }
}

/// A published (or candidate) snapshot: every database it holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Databases by name.
    pub databases: BTreeMap<String, HeldDatabase>,
    /// Whether the snapshot has a `dns.txt` manifest.
    pub has_manifest: bool,
}

impl Snapshot {
    /// Reads a snapshot directory (e.g. `DIR/current`). Files that are not mirror files
    /// are ignored; the version of each `<db>.cvd` comes from its header.
    pub fn read(dir: &Path) -> Result<Self, Error> {
        let mut files = Vec::new();
        let rd = std::fs::read_dir(dir).map_err(io_err(dir, "list directory"))?;
        for entry in rd {
            let entry = entry.map_err(io_err(dir, "list directory"))?;
            if files.len() >= MAX_FILES_PER_GENERATION {
                return Err(Error::Layout {
                    path: dir.to_path_buf(),
                    reason: format!("more than {MAX_FILES_PER_GENERATION} files"),
                });
            }
            if let Some(file) = entry.file_name().to_str().and_then(MirrorFile::parse) {
                files.push(file);
            }
        }
        // `.cvd` and cdiffs first, so that `.sign` files find what they sign.
        files.sort_by_key(MirrorFile::is_sign);
        let mut snap = Snapshot::default();
        for file in files {
            match file {
                MirrorFile::Manifest => snap.has_manifest = true,
                MirrorFile::Cvd { db } => {
                    let version = crate::verify::cvd_file_version(&dir.join(format!("{db}.cvd")))?;
                    snap.databases.entry(db).or_default().version = Some(version);
                }
                MirrorFile::Cdiff { db, version } => {
                    snap.databases
                        .entry(db)
                        .or_default()
                        .cdiffs
                        .insert(version, false);
                }
                MirrorFile::CvdSign { db, version } => {
                    if let Some(d) = snap
                        .databases
                        .get_mut(&db)
                        .filter(|d| d.version == Some(version))
                    {
                        d.cvd_sign = true;
                    }
                }
                MirrorFile::CdiffSign { db, version } => {
                    if let Some(has) = snap
                        .databases
                        .get_mut(&db)
                        .and_then(|d| d.cdiffs.get_mut(&version))
                    {
                        *has = true;
                    }
                }
            }
        }
        Ok(snap)
    }

    /// The file names this snapshot serves for `db` (`.cvd`, its `.sign`, cdiffs and
    /// their `.sign`s).
    pub fn files_of(&self, db: &str) -> Vec<MirrorFile> {
        self.databases
            .get(db)
            .map(|d| d.files(db, |_| true))
            .unwrap_or_default()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn chain_floor_stops_at_the_first_gap() {
        let mut d = HeldDatabase {
            version: Some(10),
            ..Default::default()
        };
        assert_eq!(d.chain_floor(), Some(10));
        for v in [10, 9, 8, 5] {
            d.cdiffs.insert(v, true);
        }
        assert_eq!(d.chain_floor(), Some(7));
        assert_eq!(HeldDatabase::default().chain_floor(), None);
    }

    #[test]
    fn rejects_odd_names() {
        for n in [
            "x.cdiff",
            "-1.cdiff",
            "a-.cdiff",
            "a-1x.cdiff",
            "a-99999999999.cdiff",
            "../a.cvd",
            "a b.cvd",
            ".cvd",
            "a-1.cvd",
            "a-1.cld",
            "a-01.cdiff",
        ] {
            assert_eq!(MirrorFile::parse(n), None, "{n}");
        }
    }

    proptest! {
        #[test]
        fn names_round_trip(db in "[a-zA-Z0-9_]{1,64}", version: u32, kind in 0u8..5) {
            let f = match kind {
                0 => MirrorFile::Cvd { db },
                1 => MirrorFile::CvdSign { db, version },
                2 => MirrorFile::Cdiff { db, version },
                3 => MirrorFile::CdiffSign { db, version },
                _ => MirrorFile::Manifest,
            };
            prop_assert_eq!(MirrorFile::parse(&f.to_string()), Some(f));
        }

        #[test]
        fn parse_never_panics(name in "\\PC{0,80}") {
            if let Some(f) = MirrorFile::parse(&name) {
                prop_assert_eq!(f.to_string(), name);
            }
        }
    }
}
