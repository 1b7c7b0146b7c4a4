//! The push crate's errors.

use std::path::PathBuf;

/// Everything that can go wrong with notices, secrets and the state file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A notice body over the limit.
    #[error("notice of {len} bytes is larger than the limit of {limit}")]
    TooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// A notice body that is not JSON of the notice's shape.
    #[error("notice is not valid JSON")]
    Json(#[source] serde_json::Error),
    /// A notice whose content breaks a rule.
    #[error("invalid notice: {0}")]
    Invalid(String),
    /// A MAC that does not match (or is not a MAC).
    #[error("signature does not match")]
    BadSignature,
    /// A secret that cannot be used.
    #[error("push secret: {0}")]
    Secret(String),
    /// A secret file that cannot be read.
    #[error("push secret {}: cannot read", path.display())]
    SecretFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The push state file cannot be read or written.
    #[error("push state {}: {what}", path.display())]
    State {
        /// The file.
        path: PathBuf,
        /// What failed.
        what: String,
        /// Why.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A setting that cannot work.
    #[error("push settings: {0}")]
    Settings(String),
}
