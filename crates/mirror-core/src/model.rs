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
pub const MANIFEST_FILE: &str = dns_versions::MANIFEST_NAME;

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

/// The kinds of name in the mirror's file-name grammar (see [`FileName`]).
///
/// Deliberately not `#[non_exhaustive]`: a crate that maps kinds to behaviour (what
/// `sigserver` serves, with which headers) must decide for every new kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FileNameKind {
    /// `<db>.cvd`: the newest signed database.
    Cvd,
    /// `<db>.cld`: a database a client rebuilt locally (unsigned). Never published by
    /// the sync engine, but part of the grammar so that servers agree on it.
    Cld,
    /// `<db>-<v>.cdiff`: the patch producing version `v`.
    Cdiff,
    /// `<db>-<v>.cvd.sign`: the 1.5 detached signature of `.cvd` version `v`.
    CvdSign,
    /// `<db>-<v>.cdiff.sign`: the 1.5 detached signature of cdiff `v`.
    CdiffSign,
    /// `dns.txt`: the TXT-style version manifest.
    Manifest,
}

impl FileNameKind {
    /// Every kind, in a fixed order (for tables indexed by kind, e.g. metrics).
    pub const ALL: [FileNameKind; 6] = [
        FileNameKind::Cvd,
        FileNameKind::Cld,
        FileNameKind::Cdiff,
        FileNameKind::CvdSign,
        FileNameKind::CdiffSign,
        FileNameKind::Manifest,
    ];

    /// Whether names of this kind carry a version (`<db>-<v>...`).
    pub fn is_versioned(self) -> bool {
        matches!(
            self,
            FileNameKind::Cdiff | FileNameKind::CvdSign | FileNameKind::CdiffSign
        )
    }

    /// The `Content-Type` a file of this kind is served (or uploaded) with.
    pub fn content_type(self) -> &'static str {
        match self {
            FileNameKind::Manifest => "text/plain; charset=utf-8",
            FileNameKind::Cvd
            | FileNameKind::Cld
            | FileNameKind::Cdiff
            | FileNameKind::CvdSign
            | FileNameKind::CdiffSign => "application/octet-stream",
        }
    }

    /// The `Cache-Control` a file of this kind is served (or uploaded) with:
    /// [`CACHE_IMMUTABLE`] for the versioned names (their content never changes),
    /// [`CACHE_MUTABLE`] for the pointers replaced by every publish.
    pub fn cache_control(self) -> &'static str {
        if self.is_versioned() {
            CACHE_IMMUTABLE
        } else {
            CACHE_MUTABLE
        }
    }
}

/// `Cache-Control` of files that never change under their name: one year, immutable.
pub const CACHE_IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// `Cache-Control` of files replaced by every publish (`<db>.cvd`, `dns.txt`): a
/// minute, then revalidated.
pub const CACHE_MUTABLE: &str = "public, max-age=60, must-revalidate";

/// A name of the mirror's file-name grammar, split into its parts: the one definition
/// of which names are mirror files (`sigserver` serves exactly these).
///
/// db = 1 to [`MAX_DB_NAME`] ASCII letters, digits or `_` ([`valid_db_name`]);
/// v = a canonical decimal `u32` (no sign, no leading zeros):
///
/// | name | kind |
/// |---|---|
/// | `<db>.cvd` | [`FileNameKind::Cvd`] |
/// | `<db>.cld` | [`FileNameKind::Cld`] |
/// | `<db>-<v>.cdiff` | [`FileNameKind::Cdiff`] |
/// | `<db>-<v>.cvd.sign` | [`FileNameKind::CvdSign`] |
/// | `<db>-<v>.cdiff.sign` | [`FileNameKind::CdiffSign`] |
/// | `dns.txt` ([`MANIFEST_FILE`]) | [`FileNameKind::Manifest`] |
///
/// A parsed name prints back exactly as it was spelled.
///
/// ```
/// use mirror_core::model::{FileName, FileNameKind};
/// let n = FileName::parse("daily-27001.cvd.sign").unwrap();
/// assert_eq!((n.kind(), n.db(), n.version()), (FileNameKind::CvdSign, Some("daily"), Some(27001)));
/// assert_eq!(FileName::parse("main.cld").map(|n| n.kind()), Some(FileNameKind::Cld));
/// assert_eq!(FileName::parse("daily-027001.cdiff"), None);
/// assert_eq!(FileName::parse("../main.cvd"), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileName<'a> {
    kind: FileNameKind,
    db: Option<&'a str>,
    version: Option<u32>,
}

impl<'a> FileName<'a> {
    /// Parses a bare file name (no directory part); `None` for anything outside the
    /// grammar.
    pub fn parse(name: &'a str) -> Option<Self> {
        if name == MANIFEST_FILE {
            return Some(FileName {
                kind: FileNameKind::Manifest,
                db: None,
                version: None,
            });
        }
        for (suffix, kind) in [(".cvd", FileNameKind::Cvd), (".cld", FileNameKind::Cld)] {
            if let Some(db) = name.strip_suffix(suffix) {
                return valid_db_name(db).then_some(FileName {
                    kind,
                    db: Some(db),
                    version: None,
                });
            }
        }
        let (stem, kind) = [
            (".cvd.sign", FileNameKind::CvdSign),
            (".cdiff.sign", FileNameKind::CdiffSign),
            (".cdiff", FileNameKind::Cdiff),
        ]
        .into_iter()
        .find_map(|(suffix, kind)| Some((name.strip_suffix(suffix)?, kind)))?;
        let (db, v) = stem.rsplit_once('-')?;
        let version = canonical_u32(v)?;
        valid_db_name(db).then_some(FileName {
            kind,
            db: Some(db),
            version: Some(version),
        })
    }

    /// The kind of file the name denotes.
    pub fn kind(&self) -> FileNameKind {
        self.kind
    }

    /// The database name (`None` for the manifest).
    pub fn db(&self) -> Option<&'a str> {
        self.db
    }

    /// The version in the name (`Some` exactly for [versioned](FileNameKind::is_versioned) kinds).
    pub fn version(&self) -> Option<u32> {
        self.version
    }
}

impl fmt::Display for FileName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let db = self.db.unwrap_or_default();
        let v = self.version.unwrap_or_default();
        match self.kind {
            FileNameKind::Cvd => write!(f, "{db}.cvd"),
            FileNameKind::Cld => write!(f, "{db}.cld"),
            FileNameKind::Cdiff => write!(f, "{db}-{v}.cdiff"),
            FileNameKind::CvdSign => write!(f, "{db}-{v}.cvd.sign"),
            FileNameKind::CdiffSign => write!(f, "{db}-{v}.cdiff.sign"),
            FileNameKind::Manifest => f.write_str(MANIFEST_FILE),
        }
    }
}

/// A canonical decimal `u32`: digits only, no leading zero except `0` itself.
fn canonical_u32(v: &str) -> Option<u32> {
    let canonical = !v.is_empty()
        && v.len() <= 10
        && v.bytes().all(|b| b.is_ascii_digit())
        && (v == "0" || !v.starts_with('0'));
    if canonical { v.parse().ok() } else { None }
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
    /// Classifies a file name by the [`FileName`] grammar; `None` for anything that is
    /// not a file the sync engine publishes (outside the grammar, or a `.cld`).
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
        let n = FileName::parse(name)?;
        let db = n.db().unwrap_or_default().to_owned();
        let version = n.version().unwrap_or_default();
        match n.kind() {
            FileNameKind::Manifest => Some(MirrorFile::Manifest),
            FileNameKind::Cvd => Some(MirrorFile::Cvd { db }),
            FileNameKind::Cld => None,
            FileNameKind::Cdiff => Some(MirrorFile::Cdiff { db, version }),
            FileNameKind::CvdSign => Some(MirrorFile::CvdSign { db, version }),
            FileNameKind::CdiffSign => Some(MirrorFile::CdiffSign { db, version }),
        }
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

    /// This file's name in the [`FileName`] grammar.
    pub fn name(&self) -> FileName<'_> {
        let (kind, version) = match self {
            MirrorFile::Cvd { .. } => (FileNameKind::Cvd, None),
            MirrorFile::CvdSign { version, .. } => (FileNameKind::CvdSign, Some(*version)),
            MirrorFile::Cdiff { version, .. } => (FileNameKind::Cdiff, Some(*version)),
            MirrorFile::CdiffSign { version, .. } => (FileNameKind::CdiffSign, Some(*version)),
            MirrorFile::Manifest => (FileNameKind::Manifest, None),
        };
        FileName {
            kind,
            db: self.db(),
            version,
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
        self.name().fmt(f)
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
            assert_eq!(FileName::parse(n), None, "{n}");
        }
        for n in [
            "a-4294967296.cdiff",
            "a.cld.sign",
            "a-1.cld.sign",
            "DNS.TXT",
            "dns.txt.sign",
        ] {
            assert_eq!(FileName::parse(n), None, "{n}");
        }
        let long = "a".repeat(MAX_DB_NAME + 1);
        assert_eq!(FileName::parse(&format!("{long}.cvd")), None);
        assert!(FileName::parse(&format!("{}.cvd", &long[1..])).is_some());
    }

    #[test]
    fn cld_is_a_name_but_not_a_published_file() {
        let n = FileName::parse("daily.cld").unwrap();
        assert_eq!(
            (n.kind(), n.db(), n.version()),
            (FileNameKind::Cld, Some("daily"), None)
        );
        assert_eq!(MirrorFile::parse("daily.cld"), None);
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
                prop_assert_eq!(f.to_string(), name.clone());
            }
            if let Some(n) = FileName::parse(&name) {
                prop_assert_eq!(n.to_string(), name.clone());
            }
        }

        #[test]
        fn file_names_round_trip(db in "[a-zA-Z0-9_]{1,64}", v: u32, kind in 0u8..6) {
            let (name, kind) = match kind {
                0 => (format!("{db}.cvd"), FileNameKind::Cvd),
                1 => (format!("{db}.cld"), FileNameKind::Cld),
                2 => (format!("{db}-{v}.cdiff"), FileNameKind::Cdiff),
                3 => (format!("{db}-{v}.cvd.sign"), FileNameKind::CvdSign),
                4 => (format!("{db}-{v}.cdiff.sign"), FileNameKind::CdiffSign),
                _ => (MANIFEST_FILE.to_owned(), FileNameKind::Manifest),
            };
            let n = FileName::parse(&name).unwrap();
            prop_assert_eq!(n.kind(), kind);
            prop_assert_eq!(n.version().is_some(), kind.is_versioned());
            prop_assert_eq!(n.version().is_some_and(|x| x == v), kind.is_versioned());
            prop_assert_eq!(n.to_string(), name.clone());
            // The published files are exactly the grammar's names minus `.cld`.
            prop_assert_eq!(MirrorFile::parse(&name).is_some(), kind != FileNameKind::Cld);
        }
    }
}
