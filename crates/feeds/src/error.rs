//! The crate's one error type.

use std::path::PathBuf;
use std::time::SystemTime;

use crate::redact::RedactedUrl;

/// How an [`Error`] counts for the caller's exit code and metrics (the order of
/// `mirror-core`'s error kinds: verification is the most important failure).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// A file, signature, sidecar or load check refused the content (exit code 1).
    Verification,
    /// Bad configuration or a local file problem (exit code 2).
    Local,
    /// No upstream answered usefully (exit code 3).
    Upstream,
    /// Every upstream is in a `Retry-After` cool-down (exit code 4).
    RateLimited,
}

/// What a failed fetch was, without the URL's secret (the message is redacted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FetchFailure {
    /// Every upstream answered `404`/`410`.
    NotFound,
    /// Every upstream is cooling down after `429`/`503` with `Retry-After`.
    RateLimited,
    /// The body was larger than the feed's `max_file_size`.
    TooLarge,
    /// Anything else: connection, timeout, other status, protocol.
    Other,
}

/// Everything that can go wrong in this crate. Every variant names the feed, file, path
/// or URL concerned; no message ever contains a feed's token (URLs are
/// [`RedactedUrl`]s, fetch messages are redacted before they are stored).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration text is not valid TOML or does not have the `[[feed]]` shape.
    #[error("feed configuration: {reason}")]
    Syntax {
        /// What the parser said (a feed's token never appears: only file paths are
        /// configured).
        reason: String,
    },
    /// A feed's configuration is invalid.
    #[error("feed {feed:?}: {key}: {reason}")]
    Config {
        /// The feed's name (or `#N` when the name itself is the problem).
        feed: String,
        /// The configuration key at fault (`name`, `url`, `files`, `keys`, ...).
        key: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A configured key or token file cannot be read.
    #[error("feed {feed:?}: {key}: cannot read {}", path.display())]
    ReadConfigFile {
        /// The feed's name.
        feed: String,
        /// `keys` or `token_file`.
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A configured OpenPGP key does not parse (or holds no usable key).
    #[error("feed {feed:?}: keys: {} is not a usable OpenPGP public key: {reason}", path.display())]
    BadKey {
        /// The feed's name.
        feed: String,
        /// The key file (`builtin:NAME` for a vendored key).
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The detached signature does not parse as one OpenPGP signature packet.
    #[error("{file}.sig: malformed OpenPGP signature: {reason}")]
    MalformedSignature {
        /// The signed file.
        file: String,
        /// What is wrong.
        reason: String,
    },
    /// The signature was made by a key that is not configured for the feed.
    #[error("{file}.sig: signed by an unknown key (issuer {issuers}); configured: {configured}")]
    UnknownKey {
        /// The signed file.
        file: String,
        /// The issuer key ids / fingerprints named in the signature (hex).
        issuers: String,
        /// The configured keys' fingerprints (hex).
        configured: String,
    },
    /// The signature uses a digest algorithm the feed's policy does not allow.
    #[error("{file}.sig: digest {digest} not allowed by the feed's policy (allowed: {allowed})")]
    DigestNotAllowed {
        /// The signed file.
        file: String,
        /// The signature's digest algorithm.
        digest: String,
        /// The feed's allowed digests.
        allowed: String,
    },
    /// The signature does not verify over the file with the key that it names.
    #[error("{file}.sig: bad signature by key {key}: {reason}")]
    BadSignature {
        /// The signed file.
        file: String,
        /// The fingerprint of the configured key that the signature names (hex).
        key: String,
        /// What the verifier said.
        reason: String,
    },
    /// The file has no signature or sidecar upstream (`404`), so it cannot be verified.
    #[error("{file}: missing {what} at {url}")]
    MissingSignature {
        /// The file.
        file: String,
        /// `signature` or `sha256 sidecar` / `md5 sidecar`.
        what: &'static str,
        /// Where it was looked for.
        url: RedactedUrl,
    },
    /// A `.sha256` / `.md5` sidecar does not have the `sha256sum` format.
    #[error("{file}: malformed {algorithm} sidecar: {reason}")]
    MalformedSidecar {
        /// The file the sidecar is for.
        file: String,
        /// `sha256` or `md5`.
        algorithm: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The file's digest differs from its sidecar.
    #[error("{file}: {algorithm} mismatch: sidecar says {expected}, file has {actual}")]
    SidecarMismatch {
        /// The file.
        file: String,
        /// `sha256` or `md5`.
        algorithm: &'static str,
        /// The sidecar's digest (hex).
        expected: String,
        /// The file's digest (hex).
        actual: String,
    },
    /// ClamAV's engine refused to load the file.
    #[error("{file}: ClamAV's engine refused it: {message}")]
    LoadCheck {
        /// The file.
        file: String,
        /// The engine's message (its `ERROR`/`LibClamAV Error` lines), or the timeout.
        message: String,
    },
    /// Fetching a file failed (after the fetch crate's retries and failover).
    #[error("{file}: fetching {url} failed: {message}")]
    Fetch {
        /// The file (or its `.sig` / sidecar).
        file: String,
        /// The first upstream's URL for it, token replaced.
        url: RedactedUrl,
        /// What kind of failure.
        failure: FetchFailure,
        /// The fetch crate's message chain, every occurrence of the token replaced.
        message: String,
        /// For [`FetchFailure::RateLimited`]: when requests may be sent again.
        until: Option<SystemTime>,
    },
    /// A local file operation failed.
    #[error("{}", path.display())]
    Io {
        /// The path being read, written, linked or removed.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// How this error counts (exit code order: verification first).
    pub fn class(&self) -> ErrorClass {
        match self {
            Error::MalformedSignature { .. }
            | Error::UnknownKey { .. }
            | Error::DigestNotAllowed { .. }
            | Error::BadSignature { .. }
            | Error::MissingSignature { .. }
            | Error::MalformedSidecar { .. }
            | Error::SidecarMismatch { .. }
            | Error::LoadCheck { .. } => ErrorClass::Verification,
            Error::Fetch {
                failure: FetchFailure::RateLimited,
                ..
            } => ErrorClass::RateLimited,
            Error::Fetch {
                failure: FetchFailure::TooLarge,
                ..
            } => ErrorClass::Verification,
            Error::Fetch { .. } => ErrorClass::Upstream,
            Error::Syntax { .. }
            | Error::Config { .. }
            | Error::ReadConfigFile { .. }
            | Error::BadKey { .. }
            | Error::Io { .. } => ErrorClass::Local,
        }
    }

    /// The whole chain (`message: cause: cause`) as one line, for reports and logs.
    pub fn chain(&self) -> String {
        let mut s = self.to_string();
        let mut cause = std::error::Error::source(self);
        while let Some(c) = cause {
            s.push_str(": ");
            s.push_str(&c.to_string());
            cause = c.source();
        }
        s
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
