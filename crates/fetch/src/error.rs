//! The crate's one error type.

use std::path::PathBuf;
use std::time::SystemTime;

/// Everything that can go wrong while fetching; every variant names the URL (or path)
/// and the reason.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The URL or file name cannot be used.
    #[error("invalid URL {url}: {reason}")]
    InvalidUrl {
        /// The offending URL (or base URL + file name).
        url: String,
        /// Why it was refused.
        reason: String,
    },
    /// The server answered with an unexpected HTTP status.
    #[error("{url}: HTTP status {status}")]
    Status {
        /// The requested URL.
        url: String,
        /// The status code.
        status: u16,
    },
    /// Connecting, sending or receiving took longer than the configured timeout.
    #[error("{url}: timed out ({stage})")]
    Timeout {
        /// The requested URL.
        url: String,
        /// Which step timed out (connect, response, body, ...).
        stage: String,
    },
    /// The body is larger than the configured maximum.
    #[error("{url}: body larger than the limit of {limit} bytes")]
    TooLarge {
        /// The requested URL.
        url: String,
        /// The configured limit in bytes.
        limit: u64,
    },
    /// The body ended before `Content-Length` bytes arrived.
    #[error("{url}: truncated body: expected {expected} bytes, received {received}")]
    Truncated {
        /// The requested URL.
        url: String,
        /// Bytes announced by the server (for the whole file).
        expected: u64,
        /// Bytes received (for the whole file, including a resumed prefix).
        received: u64,
    },
    /// The connection could not be made or broke (DNS, refused, reset, TLS, proxy).
    #[error("{url}: connection failed: {reason}")]
    Connection {
        /// The requested URL.
        url: String,
        /// The underlying reason.
        reason: String,
    },
    /// The server violated HTTP in a way we refuse (bad `Content-Range`, too many
    /// redirects, malformed response).
    #[error("{url}: protocol error: {reason}")]
    Protocol {
        /// The requested URL.
        url: String,
        /// What was wrong.
        reason: String,
    },
    /// The upstream asked us to wait (`429`/`503` with `Retry-After`) and the cool-down
    /// has not ended; no request was (or will be) sent before `until`.
    #[error("upstream {upstream} is rate-limiting us until {}", httpdate::fmt_http_date(*until))]
    RateLimited {
        /// The upstream, as `host:port`.
        upstream: String,
        /// When requests may be sent again.
        until: SystemTime,
    },
    /// The upstream was skipped: it recently served an older version than advertised
    /// ([`Upstreams::mark_stale`](crate::Upstreams::mark_stale)).
    #[error("{url}: upstream marked stale until {}", httpdate::fmt_http_date(*until))]
    Stale {
        /// The URL that would have been requested.
        url: String,
        /// When the upstream will be tried again.
        until: SystemTime,
    },
    /// Every upstream in the list failed; the individual errors in order.
    #[error("{file}: all {} upstreams failed: {}", attempts.len(), summarize(attempts))]
    AllUpstreamsFailed {
        /// The file that was wanted.
        file: String,
        /// `(base URL, error)` for each upstream tried or skipped, in order.
        attempts: Vec<(String, Error)>,
    },
    /// The TLS handshake with `host` failed (a certificate refused, most often).
    #[error("{url}: certificate of {host} {problem}")]
    Tls {
        /// The requested URL.
        url: String,
        /// The server whose certificate was refused.
        host: String,
        /// What is wrong, in words an operator can act on.
        problem: String,
    },
    /// The proxy answered `407 Proxy Authentication Required`.
    #[error("{url}: proxy {proxy} {}", if *credentials_sent {
        "rejected the credentials given in the proxy URL (HTTP 407)"
    } else {
        "requires authentication (HTTP 407): give them in the proxy URL, http://user:password@host:port"
    })]
    ProxyAuth {
        /// The requested URL.
        url: String,
        /// The proxy as `host:port` (never its credentials).
        proxy: String,
        /// Whether the proxy URL held credentials (then they were refused).
        credentials_sent: bool,
    },
    /// No TLS client configuration can be made (no trusted root at all).
    #[error("TLS configuration: {0}")]
    TlsSetup(String),
    /// A CA certificate file given to trust cannot be used.
    #[error("CA certificate file {}: {reason}", path.display())]
    CaCert {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A local file operation failed.
    #[error("{}", path.display())]
    Io {
        /// The path being read, written or renamed.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// The attempts, each with its whole cause chain (they are not this error's
/// `source()`, so nothing is printed twice).
fn summarize(attempts: &[(String, Error)]) -> String {
    attempts
        .iter()
        .map(|(base, e)| {
            let mut s = format!("[{base}: {e}");
            let mut cause = std::error::Error::source(e);
            while let Some(c) = cause {
                s.push_str(&format!(": {c}"));
                cause = c.source();
            }
            s.push(']');
            s
        })
        .collect::<Vec<_>>()
        .join(" ")
}

impl Error {
    /// Whether retrying the same request later may succeed (timeouts, connection
    /// problems, truncated bodies, `5xx` other than with a `Retry-After` cool-down).
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Timeout { .. } | Error::Connection { .. } | Error::Truncated { .. } => true,
            Error::Status { status, .. } => matches!(status, 500 | 502 | 503 | 504 | 408),
            _ => false,
        }
    }

    /// Whether this is a `404 Not Found` (or every upstream answered `404`/`410`).
    pub fn is_not_found(&self) -> bool {
        match self {
            Error::Status { status, .. } => matches!(status, 404 | 410),
            Error::AllUpstreamsFailed { attempts, .. } => {
                !attempts.is_empty() && attempts.iter().all(|(_, e)| e.is_not_found())
            }
            _ => false,
        }
    }

    /// When requests may resume if this is a rate-limit error: for
    /// [`Error::RateLimited`], its `until`; for [`Error::AllUpstreamsFailed`] where every
    /// upstream is cooling down, the earliest end of those cool-downs.
    pub fn rate_limited_until(&self) -> Option<SystemTime> {
        match self {
            Error::RateLimited { until, .. } => Some(*until),
            Error::AllUpstreamsFailed { attempts, .. } => {
                let mut earliest: Option<SystemTime> = None;
                for (_, e) in attempts {
                    let t = e.rate_limited_until()?;
                    earliest = Some(earliest.map_or(t, |x| x.min(t)));
                }
                earliest
            }
            _ => None,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
