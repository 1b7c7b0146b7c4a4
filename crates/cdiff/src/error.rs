//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong parsing, verifying, applying, chaining or generating
/// `.cdiff` patches.
///
/// Messages name the file (patch, database member or directory), the script line where
/// there is one, and the reason.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A malformed `.cdiff` container (header, gzip stream or signature text).
    #[error("{name}: malformed cdiff container: {reason}")]
    Container {
        /// The patch (file name or a caller-supplied label).
        name: String,
        /// Why it was rejected.
        reason: String,
    },

    /// The container's signature does not verify with the CDIFF key.
    #[error("{name}: cdiff signature does not verify: {reason}")]
    Signature {
        /// The patch.
        name: String,
        /// Why it failed.
        reason: String,
    },

    /// A limit (size, count, length) was exceeded.
    #[error("{what} exceeds the limit of {limit}")]
    Limit {
        /// What was too large (names the file where known).
        what: String,
        /// The limit that was exceeded.
        limit: u64,
    },

    /// A syntax error in the decompressed script.
    #[error("script line {line}: {reason}")]
    Syntax {
        /// 1-based script line number.
        line: usize,
        /// What is wrong with the line.
        reason: String,
    },

    /// A command that is well-formed but cannot be applied to the database.
    #[error("script line {line}: cannot apply to `{file}`: {reason}")]
    Apply {
        /// 1-based script line number of the failing command.
        line: usize,
        /// The database file being edited.
        file: String,
        /// Why it failed.
        reason: String,
    },

    /// The patches given to a chain operation do not form a valid chain.
    #[error("patch chain: {reason}")]
    Chain {
        /// What is wrong (gap, duplicate, wrong version).
        reason: String,
    },

    /// The database produced by applying patches is not a valid database
    /// (e.g. its `.info` does not verify or does not match the members).
    #[error("patched database is invalid: {reason}")]
    Result {
        /// Why the result was rejected.
        reason: String,
    },

    /// Two databases cannot be expressed as a cdiff script (see `generate`).
    #[error("cannot express the change to `{file}` as a cdiff script: {reason}")]
    Unrepresentable {
        /// The database file.
        file: String,
        /// Why.
        reason: String,
    },

    /// An error from the CVD/CLD container layer.
    #[error("{context}")]
    Format {
        /// What was being read or written.
        context: String,
        /// The underlying error.
        #[source]
        source: Box<cvd_format::Error>,
    },

    /// A local I/O error.
    #[error("I/O error on {}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// True when the error means "the input did not verify or does not apply" (exit
    /// code 1 in `sigupdate`), false for local I/O problems.
    pub fn is_verification_failure(&self) -> bool {
        match self {
            Error::Io { .. } => false,
            Error::Format { source, .. } => source.is_verification_failure(),
            _ => true,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
