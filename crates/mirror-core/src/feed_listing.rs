//! What third-party feeds a generation holds: `generations/g-<n>/feeds.json`.
//!
//! The feeds phase of the sync ([`crate::sync`]) puts every good feed file at
//! `<generation>/<feed>/<file>`, its `.sig` or sidecar beside it, and writes this
//! listing at the generation's root: per feed its verification mode and whether it is
//! unverified, per file its size, SHA-256, the upstream's `Last-Modified` and `ETag`,
//! how it was verified and the companion served beside it. `sigserver` serves exactly
//! the files and companions listed (with `Last-Modified` = the upstream's), `publish-target`
//! uploads them before the listing, `sigupdate status` and `/metrics` list them.
//!
//! The listing is also the per-file half of each feed's [`feeds::FeedState`] (the
//! validators sent next time describe the published files, so they can never point
//! at a file the mirror does not hold). The other half, when each feed was last
//! fetched (its `min_interval_secs` clock), changes without the content changing and
//! lives in the mirror directory: [`FEED_CLOCK_FILE`].
//!
//! The listing is written into the generation before it is made durable and switched;
//! it holds no URL and no token.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// File name of the listing at a generation's root (served as `/feeds.json`).
pub const FEEDS_FILE: &str = "feeds.json";

/// The format version written in [`FeedListing::format`].
pub const FEEDS_FORMAT: u32 = 1;

/// File name (in the mirror directory) of each feed's last fetch time.
pub const FEED_CLOCK_FILE: &str = "feed-clock.json";

/// The content of `feeds.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedListing {
    /// Format version, [`FEEDS_FORMAT`].
    pub format: u32,
    /// Per feed name.
    pub feeds: BTreeMap<String, ListedFeed>,
}

/// One feed in a [`FeedListing`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListedFeed {
    /// How its files are verified.
    pub verify: feeds::VerifyMode,
    /// `verify = "none"`: its files are published unverified.
    pub unverified: bool,
    /// Per file name (the companions are named in each entry).
    pub files: BTreeMap<String, ListedFile>,
}

/// One feed file in a [`ListedFeed`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListedFile {
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 (lower-case hex).
    pub sha256: String,
    /// The upstream's `Last-Modified` (Unix seconds), also the file's mtime.
    pub last_modified: Option<u64>,
    /// The upstream's `ETag`.
    pub etag: Option<String>,
    /// How it was verified.
    pub verification: feeds::Verification,
    /// The file served beside it (`<file>.sig`, `<file>.sha256`, `<file>.md5`).
    pub companion: Option<String>,
}

/// What a request name is in a [`FeedListing`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListedName<'a> {
    /// The feed file it is or travels beside.
    pub file: &'a ListedFile,
    /// Whether it is the companion (`.sig`/sidecar), not the file itself.
    pub companion: bool,
}

impl FeedListing {
    /// Reads `gen_dir/feeds.json`: `Ok(None)` when the generation has none (no feeds).
    ///
    /// # Errors
    /// `InvalidData` when it is too large or not a listing of format
    /// [`FEEDS_FORMAT`] whose names are valid feed and file names.
    pub fn read(gen_dir: &Path) -> std::io::Result<Option<FeedListing>> {
        let Some(l) = crate::json_file::read::<FeedListing>(&gen_dir.join(FEEDS_FILE))? else {
            return Ok(None);
        };
        let bad = |why: String| std::io::Error::new(std::io::ErrorKind::InvalidData, why);
        if l.format != FEEDS_FORMAT {
            return Err(bad(format!(
                "format {} (expected {FEEDS_FORMAT})",
                l.format
            )));
        }
        for (name, f) in &l.feeds {
            if !valid_component(name) {
                return Err(bad(format!("feed name {name:?}")));
            }
            for (file, e) in &f.files {
                if !valid_component(file)
                    || e.companion.as_deref().is_some_and(|c| !valid_component(c))
                {
                    return Err(bad(format!("file name {file:?} of feed {name:?}")));
                }
            }
        }
        Ok(Some(l))
    }

    /// The listing as written (pretty JSON, final newline).
    ///
    /// # Errors
    /// When it cannot be serialised (never for a listing built by the engine).
    pub fn to_bytes(&self) -> std::io::Result<Vec<u8>> {
        crate::json_file::pretty(self)
    }

    /// What `name` is in feed `feed`: a listed file or a listed file's companion.
    pub fn lookup(&self, feed: &str, name: &str) -> Option<ListedName<'_>> {
        let f = self.feeds.get(feed)?;
        if let Some(file) = f.files.get(name) {
            return Some(ListedName {
                file,
                companion: false,
            });
        }
        f.files
            .values()
            .find(|e| e.companion.as_deref() == Some(name))
            .map(|file| ListedName {
                file,
                companion: true,
            })
    }

    /// Every served path of the listing, `<feed>/<name>`, files before their
    /// companions (the order an uploader follows so that a companion never names a
    /// file not there yet), sorted by feed.
    pub fn paths(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (feed, f) in &self.feeds {
            for (file, e) in &f.files {
                out.push(format!("{feed}/{file}"));
                if let Some(c) = &e.companion {
                    out.push(format!("{feed}/{c}"));
                }
            }
        }
        out
    }

    /// Per feed, a fingerprint of what it holds (SHA-256 over its file names and
    /// digests, 32 hex digits): what push notices announce, so a downstream whose
    /// published feed differs syncs at once.
    pub fn fingerprints(&self) -> BTreeMap<String, String> {
        use sha2::Digest as _;
        self.feeds
            .iter()
            .map(|(name, f)| {
                let mut h = sha2::Sha256::new();
                for (file, e) in &f.files {
                    h.update(file.as_bytes());
                    h.update(b" ");
                    h.update(e.sha256.as_bytes());
                    h.update(b"\n");
                }
                let hex: String = h
                    .finalize()
                    .iter()
                    .take(16)
                    .map(|b| format!("{b:02x}"))
                    .collect();
                (name.clone(), hex)
            })
            .collect()
    }

    /// The per-file half of feed `feed`'s [`feeds::FeedState`], with `last_fetch`.
    pub fn state_of(&self, feed: &str, last_fetch: Option<u64>) -> feeds::FeedState {
        let files = self
            .feeds
            .get(feed)
            .map(|f| {
                f.files
                    .iter()
                    .map(|(name, e)| {
                        (
                            name.clone(),
                            feeds::FileState {
                                etag: e.etag.clone(),
                                last_modified: e.last_modified,
                                sha256: e.sha256.clone(),
                                size: e.size,
                                verification: e.verification.clone(),
                            },
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        feeds::FeedState { last_fetch, files }
    }
}

/// A name a listing may hold: one path component of `[A-Za-z0-9._-]`, not starting
/// with a dot, at most 255 bytes.
pub fn valid_component(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
}

/// Each feed's last fetch (Unix seconds), `DIR/feed-clock.json`: read (a missing or
/// unreadable file is an empty clock: the feeds are due, which costs conditional
/// requests only).
pub fn read_clock(mirror_dir: &Path) -> BTreeMap<String, u64> {
    match crate::json_file::read(&mirror_dir.join(FEED_CLOCK_FILE)) {
        Ok(Some(c)) => c,
        Ok(None) => BTreeMap::new(),
        Err(e) => {
            tracing::warn!(
                "{}: {e}; every feed counts as due",
                mirror_dir.join(FEED_CLOCK_FILE).display()
            );
            BTreeMap::new()
        }
    }
}

/// Writes `DIR/feed-clock.json` atomically.
///
/// # Errors
/// When it cannot be written.
pub fn store_clock(mirror_dir: &Path, clock: &BTreeMap<String, u64>) -> std::io::Result<()> {
    crate::json_file::store(&mirror_dir.join(FEED_CLOCK_FILE), clock)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn file(companion: Option<&str>) -> ListedFile {
        ListedFile {
            size: 3,
            sha256: "00".into(),
            last_modified: Some(1),
            etag: None,
            verification: feeds::Verification::Unverified,
            companion: companion.map(str::to_owned),
        }
    }

    #[test]
    fn lookup_finds_files_and_companions_only() {
        let mut l = FeedListing {
            format: FEEDS_FORMAT,
            feeds: BTreeMap::new(),
        };
        let mut files = BTreeMap::new();
        files.insert("a.ndb".to_owned(), file(Some("a.ndb.sig")));
        files.insert("b.hdb".to_owned(), file(None));
        l.feeds.insert(
            "ss".into(),
            ListedFeed {
                verify: feeds::VerifyMode::Openpgp,
                unverified: false,
                files,
            },
        );
        assert!(!l.lookup("ss", "a.ndb").unwrap().companion);
        assert!(l.lookup("ss", "a.ndb.sig").unwrap().companion);
        assert!(l.lookup("ss", "b.hdb.sig").is_none());
        assert!(l.lookup("other", "a.ndb").is_none());
        assert_eq!(l.paths(), ["ss/a.ndb", "ss/a.ndb.sig", "ss/b.hdb"]);
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FEEDS_FILE), l.to_bytes().unwrap()).unwrap();
        assert_eq!(FeedListing::read(dir.path()).unwrap().unwrap(), l);
        // A listing naming a path outside its feed is refused.
        let mut bad = l.clone();
        bad.feeds
            .get_mut("ss")
            .unwrap()
            .files
            .insert("../x".into(), file(None));
        std::fs::write(dir.path().join(FEEDS_FILE), bad.to_bytes().unwrap()).unwrap();
        assert!(FeedListing::read(dir.path()).is_err());
    }
}
