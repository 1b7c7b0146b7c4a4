//! The crate's one error type.

use std::time::Duration;

/// Everything that can go wrong while learning upstream versions; every variant names
/// the record or DNS name, and the reason.
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
}
