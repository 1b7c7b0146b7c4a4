//! A mirror's own version record, published as a file (`dns.txt`) so downstream tiers
//! can learn versions without DNS (`--no-dns`).
//!
//! The file holds exactly one line: the [`VersionRecord`] in its TXT format (with the
//! custom-database extension when needed), followed by a newline.

use crate::{Error, VersionRecord};

/// The manifest's file name in a published snapshot.
pub const MANIFEST_NAME: &str = "dns.txt";

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

/// The manifest text of `record`: its one line and a newline (what
/// [`parse_manifest`] reads back).
///
/// ```
/// let r = dns_versions::VersionRecord::new(std::time::UNIX_EPOCH, 0, 27000, 0);
/// let text = dns_versions::render_manifest(&r);
/// assert_eq!(text, "0.0.0:0:27000:0:0:0:0:0\n");
/// assert_eq!(dns_versions::parse_manifest(text.as_bytes())?, r);
/// # Ok::<(), dns_versions::Error>(())
/// ```
pub fn render_manifest(record: &VersionRecord) -> String {
    format!("{record}\n")
}
