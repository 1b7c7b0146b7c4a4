//! The crate's error type.

use std::path::{Path, PathBuf};

/// Everything that can go wrong while keeping a mirror. Every message names the file,
/// URL or field concerned and the check that failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A local file system operation failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What was being done (`create directory`, `fsync`, ...).
        op: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The mirror directory holds something this tool did not make.
    #[error("mirror layout: {}: {reason}", path.display())]
    Layout {
        /// The offending path.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Another process holds `DIR/sync.lock`.
    #[error("{}: another sync holds the lock{}", path.display(), pid.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    LockHeld {
        /// The lock file.
        path: PathBuf,
        /// The holder's PID, as written in the lock file (diagnostic only).
        pid: Option<u32>,
    },
    /// A downloaded file failed verification; it is never published.
    #[error("{db}: {file} from {url}: verification failed: {check}")]
    Verification {
        /// Database name.
        db: String,
        /// File name (as served).
        file: String,
        /// Where it came from.
        url: String,
        /// The check that failed and why.
        check: String,
    },
    /// The cdiffs do not lead from the previous base to the new `.cvd`.
    #[error("{db}: chain check failed: {reason}")]
    Chain {
        /// Database name.
        db: String,
        /// What did not match (file names and versions).
        reason: String,
    },
    /// Upstream offered a version lower than advertised or than the one held.
    #[error("{db}: {url} offered version {offered}, but {expected} is required (rollback refused)")]
    Rollback {
        /// Database name.
        db: String,
        /// The URL of the offending file.
        url: String,
        /// The version it contained.
        offered: u32,
        /// The minimum acceptable version.
        expected: u32,
    },
    /// Every reachable upstream answered "not found" for a file.
    #[error("{file}: not found upstream: {reason}")]
    NotFound {
        /// The file name.
        file: String,
        /// The URLs tried.
        reason: String,
    },
    /// No upstream could be reached or served the file.
    #[error("{what}: upstream unreachable: {reason}")]
    Upstream {
        /// The file or URL(s) concerned.
        what: String,
        /// What happened at each upstream.
        reason: String,
    },
    /// Every upstream asked us to wait (HTTP 429 / `Retry-After`).
    #[error("{what}: rate-limited by every upstream: {reason}")]
    RateLimited {
        /// The file or URL(s) concerned.
        what: String,
        /// The cool-downs in force.
        reason: String,
    },
    /// A record the mirror keeps about itself (a generation's `.trust.json`) is
    /// unusable.
    #[error("{}: unusable record", path.display())]
    Corrupt {
        /// The record file.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: RecordError,
    },
    /// The configuration given to the engine is unusable.
    #[error("configuration: {0}")]
    Config(String),
}

/// Why a record (`.trust.json`, `status.json`) could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// Not valid JSON of the expected shape.
    #[error("not a valid record")]
    Json(#[source] serde_json::Error),
    /// A format version this release does not know.
    #[error("unknown format {0} (expected {expected})", expected = crate::trust::TRUST_FORMAT)]
    Format(u32),
    /// A database name outside the grammar.
    #[error("invalid database name {0:?}")]
    DatabaseName(String),
    /// Larger than any record this release writes.
    #[error("larger than {0} bytes")]
    TooLarge(u64),
}

/// The broad class of an [`Error`], as recorded in `status.json`
/// (`DatabaseStatus::last_error_kind`) and mapped to exit codes by `sigupdate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A file or signature did not verify.
    Verification,
    /// Chain inconsistency between cdiffs and `.cvd`.
    Chain,
    /// Rollback refused.
    Rollback,
    /// Upstream unreachable.
    Upstream,
    /// Rate-limited by every upstream.
    RateLimited,
    /// Another sync holds the lock.
    Locked,
    /// Local I/O, layout or configuration problem.
    Io,
}

impl ErrorKind {
    /// The name used in `status.json` and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Verification => "verification",
            ErrorKind::Chain => "chain",
            ErrorKind::Rollback => "rollback",
            ErrorKind::Upstream => "upstream",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::Locked => "locked",
            ErrorKind::Io => "io",
        }
    }
}

impl Error {
    /// The broad class of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Io { .. } | Error::Layout { .. } | Error::Corrupt { .. } | Error::Config(_) => {
                ErrorKind::Io
            }
            Error::LockHeld { .. } => ErrorKind::Locked,
            Error::Verification { .. } => ErrorKind::Verification,
            Error::Chain { .. } => ErrorKind::Chain,
            Error::Rollback { .. } => ErrorKind::Rollback,
            Error::Upstream { .. } | Error::NotFound { .. } => ErrorKind::Upstream,
            Error::RateLimited { .. } => ErrorKind::RateLimited,
        }
    }
}

/// `map_err` helper: wraps an `io::Error` with the path and operation.
pub(crate) fn io_err(path: &Path, op: &'static str) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.to_path_buf();
    move |source| Error::Io { path, op, source }
}

/// Displays an error with every cause in its [`source`](std::error::Error::source)
/// chain, separated by `": "` (as anyhow's `{:#}` does): for logs and `status.json`,
/// where a bare `Display` would show the outermost error only.
///
/// ```
/// let e = mirror_core::Error::Io {
///     path: "/srv/m/x".into(),
///     op: "open",
///     source: std::io::Error::new(std::io::ErrorKind::NotFound, "gone"),
/// };
/// assert_eq!(mirror_core::Chain(&e).to_string(), "open /srv/m/x: gone");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Chain<'a>(pub &'a (dyn std::error::Error + 'a));

impl std::fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut next = self.0.source();
        while let Some(e) = next {
            write!(f, ": {e}")?;
            next = e.source();
        }
        Ok(())
    }
}
