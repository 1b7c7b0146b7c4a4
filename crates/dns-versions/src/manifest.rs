//! A mirror's own version record, published as a file (`dns.txt`) so downstream tiers
//! can learn versions without DNS (`--no-dns`).
//!
//! The file holds exactly one line: the [`VersionRecord`] in its TXT format (with the
//! custom-database extension when needed), followed by a newline.

use std::io::Write;
use std::path::Path;

use crate::record::MAX_RECORD_LEN;
use crate::{Error, VersionRecord};

/// The manifest's file name in a published snapshot.
pub const MANIFEST_NAME: &str = "dns.txt";

/// Reads and parses a manifest file.
///
/// # Errors
/// [`Error::Io`] when the file cannot be read or is larger than a record can be;
/// [`Error::Field`] / [`Error::Record`] for its content.
pub fn read_manifest(path: &Path) -> Result<VersionRecord, Error> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let len = std::fs::metadata(path).map_err(io)?.len();
    if len > (MAX_RECORD_LEN + 2) as u64 {
        return Err(io(std::io::Error::other(format!(
            "{len} bytes is too large for a version manifest"
        ))));
    }
    let bytes = std::fs::read(path).map_err(io)?;
    parse_manifest(&bytes)
}

/// Parses manifest bytes (one record line, optional trailing newline).
///
/// # Errors
/// [`Error::Field`] / [`Error::Record`].
pub fn parse_manifest(bytes: &[u8]) -> Result<VersionRecord, Error> {
    let text = std::str::from_utf8(bytes).map_err(|_| Error::Record {
        record: String::from_utf8_lossy(&bytes[..bytes.len().min(80)]).into_owned(),
        reason: "not UTF-8".into(),
    })?;
    let line = text.trim();
    if line.contains('\n') {
        return Err(Error::Record {
            record: line.chars().take(80).collect(),
            reason: "a manifest holds exactly one line".into(),
        });
    }
    VersionRecord::parse(line)
}

/// Writes `record` to `path` atomically (a temp file in the same directory, fsync,
/// rename), so readers see the old or the new manifest, never a partial one.
///
/// # Errors
/// [`Error::Io`].
pub fn write_manifest(path: &Path, record: &VersionRecord) -> Result<(), Error> {
    let io = |p: &Path, source| Error::Io {
        path: p.to_path_buf(),
        source,
    };
    let name = path
        .file_name()
        .ok_or_else(|| io(path, std::io::Error::other("not a file path")))?;
    let tmp = path.with_file_name(format!(".{}.tmp", name.to_string_lossy()));
    let mut f = std::fs::File::create(&tmp).map_err(|e| io(&tmp, e))?;
    f.write_all(format!("{record}\n").as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| io(&tmp, e))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(|e| io(path, e))
}

/// Downloads `<base_url>/dns.txt` (at most a record's length) and parses it.
///
/// # Errors
/// [`Error::Fetch`] for the request; [`Error::Record`] when the file is larger than a
/// record can be; [`Error::Field`] / [`Error::Record`] for its content.
pub fn fetch_manifest(client: &fetch::Client, base_url: &str) -> Result<VersionRecord, Error> {
    let url = format!("{}/{MANIFEST_NAME}", base_url.trim_end_matches('/'));
    let limit = (MAX_RECORD_LEN + 2) as u64;
    let bytes = client.fetch_range(&url, 0..limit + 1)?;
    if bytes.len() as u64 > limit {
        return Err(Error::Record {
            record: url,
            reason: "manifest is larger than a version record can be".into(),
        });
    }
    parse_manifest(&bytes)
}
