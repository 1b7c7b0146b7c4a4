//! The crate's one error type.

use std::path::PathBuf;
use std::time::Duration;

/// Everything that can go wrong while learning upstream versions; every variant names
/// the record, DNS name, URL or path, and the reason.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A standard field of the version record is missing or invalid.
    #[error("version record {record:?}: field {field} ({name}): {reason}")]
    Field {
        /// The record (an excerpt when long).
        record: String,
        /// The field's position (0-based, as in the spec).
        field: usize,
        /// The field's meaning.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The version record as a whole is unusable (empty, too long, bad extension).
    #[error("version record {record:?}: {reason}")]
    Record {
        /// The record (an excerpt when long).
        record: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The name does not exist (`NXDOMAIN`) or has no TXT record.
    #[error("DNS {name}: no TXT record ({reason})")]
    NotFound {
        /// The queried name.
        name: String,
        /// NXDOMAIN, no records, ...
        reason: String,
    },
    /// No answer arrived in time.
    #[error("DNS {name}: no answer within {timeout:?}")]
    Timeout {
        /// The queried name.
        name: String,
        /// The configured per-attempt timeout.
        timeout: Duration,
    },
    /// Any other resolver failure (no name servers configured, network error, ...).
    #[error("DNS {name}: {reason}")]
    Dns {
        /// The queried name.
        name: String,
        /// The reason.
        reason: String,
    },
    /// The first 512 bytes of a `.cvd` are not a usable CVD header.
    #[error("{url}: not a CVD header: {reason}")]
    Header {
        /// Where the bytes came from.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// An HTTP download (header probe, manifest) failed.
    #[error(transparent)]
    Fetch(#[from] fetch::Error),
    /// Reading or writing a manifest file failed.
    #[error("{}", path.display())]
    Io {
        /// The manifest path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}
