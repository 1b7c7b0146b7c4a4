//! The engine's view of the network: a small trait, so that the engine is testable
//! without sockets, with an implementation over the `fetch` crate for real use
//! ([`HttpTransport`], feature `http`, on by default). Without the feature the trait is
//! the seam: the crate then brings no HTTP client, and its user brings the transport.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::error::Error;

/// A file downloaded into a local directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Downloaded {
    /// Where the complete file now is.
    pub path: PathBuf,
    /// The URL it came from (names the upstream in errors).
    pub url: String,
    /// Bytes transferred over the network for it (0 when not modified / reused).
    pub bytes: u64,
}

/// Downloads from a list of upstream base URLs, failing over in order.
///
/// Implementations skip upstreams in a `Retry-After` cool-down and upstreams
/// [`reject`](Transport::reject)ed during this run, and return
/// [`Error::NotFound`] when every reachable upstream answered 404,
/// [`Error::RateLimited`] when every upstream is cooling down, and
/// [`Error::Upstream`] when none could be reached.
pub trait Transport {
    /// Downloads `<base>/<file>` from the first usable upstream in `bases` into
    /// `dest_dir/<file>` (replacing any file there), refusing bodies above `max_size`.
    fn download(
        &mut self,
        bases: &[String],
        file: &str,
        dest_dir: &Path,
        max_size: u64,
    ) -> Result<Downloaded, Error>;

    /// Reads at most the first `len` bytes of `<base>/<file>` (HTTP `Range`), returning
    /// them with the URL they came from. With `if_modified_since` (the build time of
    /// the copy held, sent as `If-Modified-Since` like freshclam does) `Ok(None)` means
    /// the upstream's file is not newer (`304`): no body is transferred, even from a
    /// server or proxy that ignores `Range`.
    fn read_head(
        &mut self,
        bases: &[String],
        file: &str,
        len: usize,
        if_modified_since: Option<SystemTime>,
    ) -> Result<Option<(Vec<u8>, String)>, Error>;

    /// Marks the upstream that served `url` as unusable for the rest of this run (it
    /// served a stale or bad file); later calls try the next upstream.
    fn reject(&mut self, url: &str, reason: &str);

    /// The HTTP client of this transport, for the third-party feeds phase (its
    /// conditional requests, cool-downs per host and failover are `fetch`'s, through
    /// the same client and `cooldown.json` as the databases). `None` (the default, e.g.
    /// a transport without HTTP): feeds are not fetched and their published state is
    /// carried over. Feature `http`.
    #[cfg(feature = "http")]
    fn http_client(&self) -> Option<&fetch::Client> {
        None
    }
}

/// Progress callback: file name, bytes received so far, total size if announced.
pub type ProgressFn = Box<dyn FnMut(&str, u64, Option<u64>)>;

#[cfg(feature = "http")]
/// How long an upstream that served a bad or stale file is skipped: in practice the
/// rest of the run, as every sync makes a new [`HttpTransport`] and the marks are not
/// persisted (see the `fetch` crate docs on why, unlike `Retry-After` cool-downs).
const STALE_FOR: std::time::Duration = std::time::Duration::from_secs(6 * 3600);

#[cfg(feature = "http")]
/// The real [`Transport`]: HTTP(S) through the `fetch` crate (conditional, resumable,
/// `Retry-After` cool-downs persisted in `DIR/cooldown.json`, failover in order).
pub struct HttpTransport {
    client: fetch::Client,
    lists: Vec<fetch::Upstreams>,
    progress: Option<ProgressFn>,
}

#[cfg(feature = "http")]
impl std::fmt::Debug for HttpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpTransport")
            .field("lists", &self.lists)
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "http")]
impl HttpTransport {
    /// A transport whose cool-downs persist in `DIR/cooldown.json` of the mirror `dir`.
    pub fn new(dir: &Path) -> Result<Self, Error> {
        let client = fetch::Client::builder()
            .cooldown_file(dir.join("cooldown.json"))
            .build()
            .map_err(|e| Error::Setup {
                what: "HTTP client".into(),
                source: Box::new(e),
            })?;
        Ok(Self {
            client,
            lists: Vec::new(),
            progress: None,
        })
    }

    /// A transport over an existing `fetch` client (custom timeouts, retries, proxy).
    pub fn from_client(client: fetch::Client) -> Self {
        Self {
            client,
            lists: Vec::new(),
            progress: None,
        }
    }

    /// Calls `f` after every received chunk (for progress bars).
    pub fn with_progress(mut self, f: ProgressFn) -> Self {
        self.progress = Some(f);
        self
    }

    fn list(&mut self, bases: &[String]) -> Result<usize, Error> {
        let norm: Vec<String> = bases
            .iter()
            .map(|b| b.trim_end_matches('/').to_owned())
            .collect();
        if let Some(i) = self.lists.iter().position(|l| l.bases() == norm.as_slice()) {
            return Ok(i);
        }
        let l = fetch::Upstreams::new(norm).map_err(|e| Error::Setup {
            what: "upstream list".into(),
            source: Box::new(e),
        })?;
        self.lists.push(l);
        Ok(self.lists.len() - 1)
    }
}

#[cfg(feature = "http")]
fn map_fetch_error(file: &str, e: fetch::Error) -> Error {
    if e.is_not_found() {
        return Error::NotFound {
            file: file.to_owned(),
            source: Box::new(e),
        };
    }
    if e.rate_limited_until().is_some() {
        return Error::RateLimited {
            what: file.to_owned(),
            source: Box::new(e),
        };
    }
    // One upstream tried: its own error is the cause (the summary would only repeat
    // the file name around it).
    let e = match e {
        fetch::Error::AllUpstreamsFailed { mut attempts, file } if attempts.len() == 1 => {
            match attempts.pop() {
                Some((_, only)) => only,
                None => fetch::Error::AllUpstreamsFailed { attempts, file },
            }
        }
        e => e,
    };
    match e {
        fetch::Error::Io { path, source } => Error::Io {
            path,
            op: "download into",
            source,
        },
        e => Error::Upstream {
            what: file.to_owned(),
            source: Box::new(e),
        },
    }
}

#[cfg(feature = "http")]
impl Transport for HttpTransport {
    fn download(
        &mut self,
        bases: &[String],
        file: &str,
        dest_dir: &Path,
        max_size: u64,
    ) -> Result<Downloaded, Error> {
        let i = self.list(bases)?;
        let before = self.client.body_bytes();
        let mut noop = |_: &str, _: u64, _: Option<u64>| {};
        let progress: &mut dyn FnMut(&str, u64, Option<u64>) = match &mut self.progress {
            Some(p) => p.as_mut(),
            None => &mut noop,
        };
        let got = self.lists[i]
            .download(
                &self.client,
                file,
                dest_dir,
                &fetch::Conditional::none(),
                Some(max_size),
                &mut |p: fetch::Progress| progress(file, p.received, p.total),
            )
            .map_err(|e| map_fetch_error(file, e))?;
        match got.value {
            fetch::Outcome::Downloaded(d) => Ok(Downloaded {
                path: d.path,
                url: got.url,
                bytes: self.client.body_bytes().saturating_sub(before),
            }),
            fetch::Outcome::NotModified => Err(Error::Upstream {
                what: got.url,
                source: "unexpected 304 Not Modified to an unconditional request".into(),
            }),
        }
    }

    fn read_head(
        &mut self,
        bases: &[String],
        file: &str,
        len: usize,
        if_modified_since: Option<SystemTime>,
    ) -> Result<Option<(Vec<u8>, String)>, Error> {
        let i = self.list(bases)?;
        let cond = if_modified_since.map_or_else(fetch::Conditional::none, |t| {
            fetch::Conditional::modified_since(t)
        });
        let got = self.lists[i]
            .fetch_range(&self.client, file, 0..len as u64, &cond)
            .map_err(|e| map_fetch_error(file, e))?;
        Ok(got.value.map(|head| (head, got.url)))
    }

    fn http_client(&self) -> Option<&fetch::Client> {
        Some(&self.client)
    }

    fn reject(&mut self, url: &str, reason: &str) {
        tracing::debug!(%url, "upstream rejected for this run: {reason}");
        for l in &self.lists {
            l.mark_stale(url, STALE_FOR);
        }
    }
}
