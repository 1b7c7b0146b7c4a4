//! The `dns.txt` manifest each generation carries: the versions it holds, as one
//! TXT-style version record (`dns_versions::VersionRecord`, with the custom-database
//! extension), for the server and for downstream mirrors (`--no-dns` reads it from
//! upstream).

use std::collections::BTreeMap;
use std::time::SystemTime;

use dns_versions::{DEFAULT_MAX_AGE, VersionRecord};

/// Largest manifest accepted from upstream.
pub const MAX_MANIFEST_LEN: u64 = dns_versions::MAX_RECORD_LEN as u64 + 2;

/// Renders the manifest for the given database versions, made at `now`. Databases
/// whose name the record format cannot carry (upper-case letters) are left out with a
/// warning; downstream mirrors then probe their headers.
///
/// ```
/// use std::collections::BTreeMap;
/// let v = BTreeMap::from([("daily".to_owned(), 27000), ("test".to_owned(), 6)]);
/// let text = mirror_core::manifest::render(&v, std::time::UNIX_EPOCH);
/// assert_eq!(text, "0.0.0:0:27000:0:0:0:0:0:test=6\n");
/// let back = mirror_core::manifest::parse(&text, std::time::UNIX_EPOCH).unwrap();
/// assert_eq!(back, v);
/// ```
pub fn render(versions: &BTreeMap<String, u32>, now: SystemTime) -> String {
    let mut record = VersionRecord::new(now, 0, 0, 0);
    for (db, &v) in versions {
        if let Err(e) = record.set_version(db, v) {
            tracing::warn!(db = %db, "left out of dns.txt: {e}");
        }
    }
    dns_versions::render_manifest(&record)
}

/// Parses a manifest into the versions it advertises (a version `0` means "not held"
/// and is left out). A manifest older than 12 hours at `now` is refused as stale: the
/// caller then probes the headers instead.
pub fn parse(text: &str, now: SystemTime) -> Result<BTreeMap<String, u32>, ManifestError> {
    let record = dns_versions::parse_manifest(text.as_bytes()).map_err(ManifestError::Parse)?;
    if record.is_stale(now, DEFAULT_MAX_AGE) {
        return Err(ManifestError::Stale {
            age_secs: record.age(now).as_secs(),
        });
    }
    Ok(versions_of(&record))
}

/// Why a manifest (or DNS version record) cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// Not a version record.
    #[error("not a version record")]
    Parse(#[source] dns_versions::Error),
    /// The DNS lookup failed.
    #[error("lookup failed")]
    Lookup(#[source] dns_versions::Error),
    /// Older than 12 hours.
    #[error("stale: made {age_secs} seconds ago")]
    Stale {
        /// Its age in seconds.
        age_secs: u64,
    },
}

/// The non-zero versions in a record, by database name.
pub(crate) fn versions_of(record: &VersionRecord) -> BTreeMap<String, u32> {
    let mut out = BTreeMap::new();
    for db in ["main", "daily", "bytecode"] {
        if let Some(v) = record.version_of(db).filter(|&v| v > 0) {
            out.insert(db.to_owned(), v);
        }
    }
    for (db, &v) in &record.extra {
        if v > 0 {
            out.insert(db.clone(), v);
        }
    }
    out
}
