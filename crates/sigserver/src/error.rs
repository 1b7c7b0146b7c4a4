//! The crate's error type.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Why the server could not be configured or started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration value is missing or invalid.
    #[error("configuration: {field}: {reason}")]
    Config {
        /// The option (`listen`, `max_connections`, ...).
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The mirror directory is unusable.
    #[error("mirror directory {}: {reason}", path.display())]
    Dir {
        /// The directory.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The TLS certificate or key could not be loaded.
    #[error("TLS {what} {}: {reason}", path.display())]
    Tls {
        /// `certificate` or `key`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why it was refused.
        reason: String,
    },
    /// A listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// Whether this is a configuration/usage problem (exit code 2) rather than a
    /// runtime failure (exit code 1).
    pub fn is_config(&self) -> bool {
        !matches!(self, Error::Bind { .. })
    }
}
