//! The crate's error type.

use std::path::{Path, PathBuf};

/// A cause carried as an error value from outside the crate's own types (a
/// [`Transport`](crate::transport::Transport) or DNS source's reason): its chain is kept.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong while keeping a mirror. Every message names the file,
/// URL or field concerned and the check that failed; the cause is the
/// [`source`](std::error::Error::source), never repeated in the message, so a chain
/// printed with [`Chain`] (or anyhow's `{:#}`) names each cause once.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A local file system operation failed.
    #[error("{op} {}", path.display())]
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
    /// A published file cannot be read back (e.g. the header of a held `.cvd`).
    #[error("published file {}", path.display())]
    Published {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: CheckError,
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
    #[error("{db}: {file} from {url}: verification failed")]
    Verification {
        /// Database name.
        db: String,
        /// File name (as served).
        file: String,
        /// Where it came from.
        url: String,
        /// The check that failed and why.
        #[source]
        source: CheckError,
    },
    /// The cdiffs do not lead from the previous base to the new `.cvd`.
    #[error("{db}: chain check failed: {detail}")]
    Chain {
        /// Database name.
        db: String,
        /// Which files and versions were checked.
        detail: String,
        /// What did not match, or why the check could not run.
        #[source]
        source: CheckError,
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
    #[error("{file}: not found upstream")]
    NotFound {
        /// The file name.
        file: String,
        /// What the upstreams answered.
        #[source]
        source: BoxError,
    },
    /// No upstream could be reached or served the file.
    #[error("{what}: upstream unreachable")]
    Upstream {
        /// The file or URL(s) concerned.
        what: String,
        /// What happened at each upstream.
        #[source]
        source: BoxError,
    },
    /// Every upstream asked us to wait (HTTP 429 / `Retry-After`).
    #[error("{what}: rate-limited by every upstream")]
    RateLimited {
        /// The file or URL(s) concerned.
        what: String,
        /// The cool-downs in force.
        #[source]
        source: BoxError,
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
    /// A component could not be set up from the configuration given (e.g. the HTTP
    /// client).
    #[error("configuration: {what}")]
    Setup {
        /// What could not be set up.
        what: String,
        /// Why.
        #[source]
        source: BoxError,
    },
}

/// Why a downloaded or published file failed a check. Errors of `cvd-format` and
/// `cdiff` are carried as they are (their message and their causes).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckError {
    /// The `.cvd` container, its signatures, or a `.sign` file did not verify.
    #[error(transparent)]
    Format(Box<cvd_format::Error>),
    /// The cdiff did not verify, parse or apply.
    #[error(transparent)]
    Cdiff(Box<cdiff::Error>),
    /// The `.cvd` holds another database than its name says.
    #[error("the container holds database `{found}` (from its .info), not `{expected}`")]
    WrongDatabase {
        /// The name in its `.info`.
        found: String,
        /// The name asked for.
        expected: String,
    },
    /// The cdiff's header names another version than its file name.
    #[error("cdiff header says version {header}, name says {name}")]
    CdiffVersion {
        /// The version in the header.
        header: u32,
        /// The version in the file name.
        name: u32,
    },
    /// Fewer bytes than a header.
    #[error("{len} bytes, a header is {}", cvd_format::header::HEADER_SIZE)]
    ShortHeader {
        /// The bytes received.
        len: usize,
    },
    /// The 512-byte header probe of upstream's `.cvd` failed.
    #[error("header probe")]
    HeaderProbe(#[source] Box<CheckError>),
    /// A local file needed for the check could not be opened.
    #[error("open {}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The published base plus the cdiffs do not reproduce the new `.cvd`.
    #[error("first difference: {0}")]
    Differs(String),
    /// The chain check ended in a state this release does not know.
    #[error("inconsistent: {0}")]
    Inconsistent(String),
    /// A required `.sign` file is not available upstream.
    #[error("required .sign file is missing upstream")]
    SignMissing(#[source] BoxError),
}

impl From<cvd_format::Error> for CheckError {
    fn from(e: cvd_format::Error) -> Self {
        CheckError::Format(Box::new(e))
    }
}

impl From<cdiff::Error> for CheckError {
    fn from(e: cdiff::Error) -> Self {
        CheckError::Cdiff(Box::new(e))
    }
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
///
/// Ordered by importance, most important first (`Ord` follows it, and
/// [`SyncReport::worst`](crate::SyncReport::worst) reports the smallest): what
/// upstream served did not verify (chain, verification, rollback: someone serves bad
/// data), then local problems an operator must fix (I/O), then upstream trouble that
/// usually heals by itself (unreachable, then rate-limited: upstream asked us to wait),
/// then a concurrent sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Chain inconsistency between cdiffs and `.cvd`.
    Chain,
    /// A file or signature did not verify.
    Verification,
    /// Rollback refused.
    Rollback,
    /// Local I/O, layout or configuration problem.
    Io,
    /// Upstream unreachable.
    Upstream,
    /// Rate-limited by every upstream.
    RateLimited,
    /// Another sync holds the lock.
    Locked,
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
            Error::Io { .. }
            | Error::Layout { .. }
            | Error::Published { .. }
            | Error::Corrupt { .. }
            | Error::Config(_)
            | Error::Setup { .. } => ErrorKind::Io,
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::verify::Verifier;

    /// Formats `e` with anyhow's `{:#}` (each cause once, separated by `": "`) and
    /// checks that no cause's message is repeated by the one above it, and that
    /// [`Chain`] prints the same.
    fn assert_clean_chain(e: Error) -> String {
        let chain = Chain(&e).to_string();
        let mut messages = vec![e.to_string()];
        let mut next = std::error::Error::source(&e);
        while let Some(c) = next {
            messages.push(c.to_string());
            next = c.source();
        }
        assert!(messages.len() >= 2, "not a nested chain: {chain}");
        for (i, m) in messages.iter().enumerate() {
            for later in &messages[i + 1..] {
                assert!(
                    !m.contains(later.as_str()),
                    "{m:?} repeats its cause {later:?}"
                );
            }
        }
        let text = format!("{:#}", anyhow::Error::from(e));
        assert_eq!(text, chain);
        let segments: Vec<&str> = text.split(": ").collect();
        for (i, seg) in segments.iter().enumerate() {
            assert!(
                !segments[i + 1..].contains(seg),
                "segment {seg:?} twice in {text:?}"
            );
        }
        text
    }

    #[test]
    fn every_nested_chain_names_each_cause_once() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("test.cvd");
        let v = Verifier::new(None, std::time::SystemTime::now()).unwrap();
        let keys = cvd_format::KeySet::official();
        let verification = |source| Error::Verification {
            db: "test".into(),
            file: "test.cvd".into(),
            url: "http://127.0.0.1:9/test.cvd".into(),
            source,
        };
        // cvd-format: File -> Io -> the OS error
        let text = assert_clean_chain(verification(v.cvd(&missing, "test", &keys).unwrap_err()));
        assert!(
            text.contains("verification failed") && text.contains("os error 2"),
            "{text}"
        );
        // cdiff: Io -> the OS error
        let text = assert_clean_chain(verification(v.cdiff(&missing, &keys).unwrap_err()));
        assert!(text.contains("os error 2"), "{text}");
        // .sign: Open -> the OS error
        assert_clean_chain(verification(v.sign(&missing, &missing).unwrap_err()));
        // a damaged .cvd: cvd-format's own check, under the header probe
        std::fs::write(&missing, [b'x'; 600]).unwrap();
        let probe = crate::verify::header_version(&std::fs::read(&missing).unwrap()).unwrap_err();
        assert_clean_chain(verification(CheckError::HeaderProbe(Box::new(probe))));
        assert_clean_chain(verification(v.cvd(&missing, "test", &keys).unwrap_err()));
        // chain check whose base cannot be opened
        let text = assert_clean_chain(Error::Chain {
            db: "test".into(),
            detail: "test.cvd version 5 (published) + test-6.cdiff".into(),
            source: v
                .chain(&dir.path().join("nope"), &[], &missing, &keys)
                .unwrap_err(),
        });
        assert!(text.contains("chain check failed"), "{text}");
        // local I/O
        let text = assert_clean_chain(
            crate::layout::MirrorLayout::new(&missing)
                .create()
                .unwrap_err(),
        );
        assert!(text.starts_with("create directory"), "{text}");
        // the network: one upstream that refuses connections (feature `http`)
        #[cfg(feature = "http")]
        {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let mut t = crate::transport::HttpTransport::new(dir.path()).unwrap();
            use crate::transport::Transport;
            let e = t
                .download(
                    &[format!("http://127.0.0.1:{port}")],
                    "test.cvd",
                    dir.path(),
                    1 << 20,
                )
                .unwrap_err();
            let text = assert_clean_chain(e);
            assert!(
                text.starts_with("test.cvd: upstream unreachable: http://127.0.0.1:"),
                "{text}"
            );
        }
    }
}
