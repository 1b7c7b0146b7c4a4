//! The mirror directory layout (see `ARCHITECTURE.md`).
//!
//! ```text
//! DIR/
//!   current -> generations/g-<n>   symlink, replaced atomically
//!   generations/g-<n>/             immutable, complete, verified snapshots
//!   staging/                       downloads and generations being built (never served)
//!   status.json                    see [`crate::status`]
//!   sync.lock                      see [`crate::lock`]
//! ```

use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::{Error, io_err};

/// Name of the symlink that points at the published generation.
pub const CURRENT: &str = "current";
/// Directory holding the generation directories.
pub const GENERATIONS: &str = "generations";
/// Directory holding downloads and generations under construction.
pub const STAGING: &str = "staging";
/// Lock file held for the whole sync.
pub const LOCK_FILE: &str = "sync.lock";

/// Upper bound on the number of generation directories looked at (defensive limit).
pub const MAX_GENERATIONS: usize = 100_000;

/// The number of a generation directory, `g-<n>` (printed zero-padded to six digits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GenerationId(pub u64);

impl GenerationId {
    /// Parses a directory name of the form `g-<digits>`; anything else is `None`.
    ///
    /// ```
    /// use mirror_core::layout::GenerationId;
    /// assert_eq!(GenerationId::parse("g-000042"), Some(GenerationId(42)));
    /// assert_eq!(GenerationId::parse("g-"), None);
    /// assert_eq!(GenerationId::parse("x-1"), None);
    /// ```
    pub fn parse(name: &str) -> Option<Self> {
        let digits = name.strip_prefix("g-")?;
        if digits.is_empty() || digits.len() > 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok().map(GenerationId)
    }

    /// The directory name, e.g. `g-000042`.
    pub fn dir_name(self) -> String {
        self.to_string()
    }

    /// The next generation number.
    pub fn next(self) -> Self {
        GenerationId(self.0.saturating_add(1))
    }
}

impl fmt::Display for GenerationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "g-{:06}", self.0)
    }
}

/// Paths inside one mirror directory.
///
/// ```
/// use mirror_core::layout::MirrorLayout;
/// let l = MirrorLayout::new("/srv/mirror");
/// assert_eq!(l.current(), std::path::Path::new("/srv/mirror/current"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorLayout {
    root: PathBuf,
}

impl MirrorLayout {
    /// A layout rooted at `root` (nothing is touched on disk).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// Creates `root`, `generations/` and `staging/` if they are missing.
    pub fn create(&self) -> Result<(), Error> {
        for d in [self.root.clone(), self.generations(), self.staging()] {
            std::fs::create_dir_all(&d).map_err(io_err(&d, "create directory"))?;
        }
        Ok(())
    }

    /// The mirror directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `DIR/current`, the stable published path.
    pub fn current(&self) -> PathBuf {
        self.root.join(CURRENT)
    }

    /// `DIR/generations`.
    pub fn generations(&self) -> PathBuf {
        self.root.join(GENERATIONS)
    }

    /// `DIR/generations/g-<n>`.
    pub fn generation(&self, id: GenerationId) -> PathBuf {
        self.generations().join(id.dir_name())
    }

    /// `DIR/staging`.
    pub fn staging(&self) -> PathBuf {
        self.root.join(STAGING)
    }

    /// `DIR/sync.lock`.
    pub fn lock_file(&self) -> PathBuf {
        self.root.join(LOCK_FILE)
    }

    /// The generation `current` points at, or `None` when nothing was published yet.
    ///
    /// A `current` that exists but does not point at `generations/g-<n>` is an error:
    /// this directory was not made by this tool.
    pub fn current_generation(&self) -> Result<Option<GenerationId>, Error> {
        let link = self.current();
        let target = match std::fs::read_link(&link) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(&link, "read symlink")(e)),
        };
        let mut comps = target.components();
        let parent = comps.next().and_then(|c| c.as_os_str().to_str());
        let name = comps.next().and_then(|c| c.as_os_str().to_str());
        match (parent, name, comps.next()) {
            (Some(GENERATIONS), Some(name), None) => match GenerationId::parse(name) {
                Some(id) => Ok(Some(id)),
                None => Err(Error::Layout {
                    path: link,
                    reason: format!("points at {}, not a generation", target.display()),
                }),
            },
            _ => Err(Error::Layout {
                path: link,
                reason: format!(
                    "points at {}, expected {GENERATIONS}/g-<n>",
                    target.display()
                ),
            }),
        }
    }

    /// The generation directories present, ascending (other entries are ignored).
    pub fn list_generations(&self) -> Result<Vec<GenerationId>, Error> {
        let dir = self.generations();
        let rd = match std::fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err(&dir, "list directory")(e)),
        };
        let mut ids = Vec::new();
        for entry in rd {
            let entry = entry.map_err(io_err(&dir, "list directory"))?;
            if let Some(id) = entry.file_name().to_str().and_then(GenerationId::parse) {
                ids.push(id);
                if ids.len() > MAX_GENERATIONS {
                    return Err(Error::Layout {
                        path: dir,
                        reason: format!("more than {MAX_GENERATIONS} generations"),
                    });
                }
            }
        }
        ids.sort();
        Ok(ids)
    }
}

/// Fsyncs a directory so that entries created, renamed or removed in it are durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), Error> {
    atomic_file::sync_dir(dir).map_err(io_err(dir, "fsync directory"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn generation_names_round_trip_and_order() {
        for n in [0u64, 1, 42, 999_999, 1_000_000, u64::MAX] {
            let id = GenerationId(n);
            assert_eq!(GenerationId::parse(&id.dir_name()), Some(id));
        }
        assert!(GenerationId(9) < GenerationId(10));
        for bad in [
            "",
            "g",
            "g-",
            "g-1a",
            "g--1",
            "G-1",
            "g-+1",
            "g-99999999999999999999",
        ] {
            assert_eq!(GenerationId::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn current_generation_reads_the_symlink() {
        let tmp = tempfile::tempdir().unwrap();
        let l = MirrorLayout::new(tmp.path());
        l.create().unwrap();
        assert_eq!(l.current_generation().unwrap(), None);
        std::os::unix::fs::symlink("generations/g-000007", l.current()).unwrap();
        assert_eq!(l.current_generation().unwrap(), Some(GenerationId(7)));
        std::fs::remove_file(l.current()).unwrap();
        std::os::unix::fs::symlink("/etc", l.current()).unwrap();
        assert!(matches!(l.current_generation(), Err(Error::Layout { .. })));
    }

    #[test]
    fn list_generations_ignores_other_entries() {
        let tmp = tempfile::tempdir().unwrap();
        let l = MirrorLayout::new(tmp.path());
        l.create().unwrap();
        for d in ["g-000003", "g-000001", "junk", ".g-000009.tmp"] {
            std::fs::create_dir(l.generations().join(d)).unwrap();
        }
        assert_eq!(
            l.list_generations().unwrap(),
            vec![GenerationId(1), GenerationId(3)]
        );
    }
}
