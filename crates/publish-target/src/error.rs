//! The publisher's errors.

use std::path::PathBuf;

/// A boxed error source (the store client's error stays out of the public types).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why publishing to a target failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    /// The target URL is not `s3://BUCKET[/PREFIX]` or `file:///PATH`.
    #[error("invalid publish target {url:?}: {reason}")]
    BadUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The store client could not be built (configuration from the environment).
    #[error("configuring the store for {url}")]
    Config {
        /// The target URL.
        url: String,
        /// The client's error.
        #[source]
        source: BoxError,
    },
    /// Nothing is published locally yet (`DIR/current` is missing).
    #[error("no generation is published in {dir} yet")]
    NothingPublished {
        /// The mirror directory.
        dir: PathBuf,
    },
    /// Reading the local generation failed.
    #[error("reading {path}")]
    Local {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A request to the store failed (network, 5xx, throttling, refused credentials).
    #[error("{op} {name} on the store")]
    Store {
        /// The operation (`PUT`, `HEAD`, `LIST`, `GET`, `DELETE`).
        op: &'static str,
        /// The object (or prefix).
        name: String,
        /// The client's error.
        #[source]
        source: BoxError,
    },
    /// Another publisher changed the object since this one listed the target: a
    /// conditional write was refused (412, or the object already existed).
    #[error("lost a race for {name}: another publisher changed it (conditional write refused)")]
    Conflict {
        /// The object.
        name: String,
    },
    /// An object read back after its write is not what was written.
    #[error("read-back of {name} does not match what was written ({what})")]
    ReadBack {
        /// The object.
        name: String,
        /// What differs.
        what: String,
    },
    /// The target holds a newer `<db>.cvd` than the local generation: it is not rolled
    /// back (another publisher is ahead).
    #[error(
        "the target holds {db} version {remote}, newer than the local {local}: not rolling it back"
    )]
    TargetAhead {
        /// The database.
        db: String,
        /// The target's version.
        remote: u32,
        /// The local version.
        local: u32,
    },
    /// The async runtime could not be started.
    #[error("starting the publish runtime")]
    Runtime(#[source] std::io::Error),
}

impl PublishError {
    /// Whether trying again later may succeed (network, store, conflict, read-back);
    /// configuration, local and roll-back errors are not retried within a sync.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            PublishError::Store { .. }
                | PublishError::Conflict { .. }
                | PublishError::ReadBack { .. }
        )
    }
}
