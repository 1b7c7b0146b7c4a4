//! Failover across an ordered list of upstream base URLs.

use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use crate::{Client, Conditional, Error, Outcome, Progress, upstream_key};

/// The largest number of upstreams in one list.
pub const MAX_UPSTREAMS: usize = 64;

/// How long an upstream that could not be reached (connection refused or reset, or
/// timed out, after the client's retries) is tried after the others.
pub const UNREACHABLE_FOR: Duration = Duration::from_secs(60);

/// A successful fetch through [`Upstreams`]: what happened and which upstream did it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched<T> {
    /// The result ([`Outcome`] for downloads, the bytes for range reads).
    pub value: T,
    /// The base URL of the upstream that answered.
    pub base: String,
    /// The full URL requested.
    pub url: String,
}

/// An ordered list of upstream base URLs (e.g. `https://database.clamav.net`, or
/// another mirror), tried in order.
///
/// An upstream is skipped while it is in a `Retry-After` cool-down (no request is
/// sent) or while it is [marked stale](Upstreams::mark_stale) because it served an
/// older version than advertised. Stale marks live in memory, for the lifetime of the
/// list; cool-downs are kept by the [`Client`] and persisted (why the two differ: the
/// crate docs, "Cool-downs persist, stale marks do not").
///
/// ```
/// let ups = fetch::Upstreams::new(["http://127.0.0.1:1/", "https://database.clamav.net"])?;
/// assert_eq!(ups.url(&ups.bases()[0], "daily.cvd"), "http://127.0.0.1:1/daily.cvd");
/// # Ok::<(), fetch::Error>(())
/// ```
#[derive(Debug)]
pub struct Upstreams {
    bases: Vec<String>,
    stale: Mutex<HashMap<String, SystemTime>>,
    /// Upstreams that could not be reached, until when they are tried last.
    unreachable: Mutex<HashMap<String, SystemTime>>,
}

impl Upstreams {
    /// A list of base URLs (trailing `/` removed).
    ///
    /// # Errors
    /// [`Error::InvalidUrl`] for an empty or too long list, or a URL that is not
    /// `http(s)://host[:port][/path]`.
    pub fn new<I, S>(bases: I) -> Result<Upstreams, Error>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut list = Vec::new();
        for b in bases {
            let b: String = b.into();
            let b = b.trim_end_matches('/').to_string();
            upstream_key(&b)?;
            if b.contains(['?', '#']) {
                return Err(Error::InvalidUrl {
                    url: b,
                    reason: "a base URL has no query or fragment".into(),
                });
            }
            list.push(b);
            if list.len() > MAX_UPSTREAMS {
                return Err(Error::InvalidUrl {
                    url: list.join(" "),
                    reason: format!("more than {MAX_UPSTREAMS} upstreams"),
                });
            }
        }
        if list.is_empty() {
            return Err(Error::InvalidUrl {
                url: String::new(),
                reason: "no upstream configured".into(),
            });
        }
        Ok(Upstreams {
            bases: list,
            stale: Mutex::new(HashMap::new()),
            unreachable: Mutex::new(HashMap::new()),
        })
    }

    /// The base URLs, in order.
    pub fn bases(&self) -> &[String] {
        &self.bases
    }

    /// `base/file`.
    pub fn url(&self, base: &str, file: &str) -> String {
        format!("{}/{file}", base.trim_end_matches('/'))
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, SystemTime>> {
        self.stale.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Marks the upstream whose base URL is `base_or_url` (or a prefix of it: a full
    /// file URL works) as stale for `duration`: it is skipped until then.
    pub fn mark_stale(&self, base_or_url: &str, duration: Duration) {
        let until = SystemTime::now() + duration;
        for b in &self.bases {
            if base_or_url == b || base_or_url.starts_with(&format!("{b}/")) {
                tracing::warn!(upstream = %b, ?duration, "upstream marked stale");
                self.lock().insert(b.clone(), until);
            }
        }
    }

    /// When the stale mark of `base` ends, if it is active.
    pub fn stale_until(&self, base: &str) -> Option<SystemTime> {
        let t = *self.lock().get(base)?;
        (t > SystemTime::now()).then_some(t)
    }

    /// Whether `base` could not be reached within the last [`UNREACHABLE_FOR`]: it is
    /// then tried after the reachable ones (a dead master costs its retries once, not
    /// once per file).
    pub fn unreachable(&self, base: &str) -> bool {
        let map = self.unreachable.lock().unwrap_or_else(|e| e.into_inner());
        map.get(base).is_some_and(|t| *t > SystemTime::now())
    }

    fn each<T>(
        &self,
        client: &Client,
        file: &str,
        mut op: impl FnMut(&str) -> Result<T, Error>,
    ) -> Result<Fetched<T>, Error> {
        let mut attempts = Vec::new();
        // The configured order, reachable upstreams first.
        let (up, down): (Vec<&String>, Vec<&String>) =
            self.bases.iter().partition(|b| !self.unreachable(b));
        for base in up.into_iter().chain(down) {
            let url = self.url(base, file);
            if let Some(until) = self.stale_until(base) {
                attempts.push((base.clone(), Error::Stale { url, until }));
                continue;
            }
            if let Some(until) = client.cooldown_until(&url) {
                attempts.push((
                    base.clone(),
                    Error::RateLimited {
                        upstream: upstream_key(&url)?,
                        until,
                    },
                ));
                continue;
            }
            match op(&url) {
                Ok(value) => {
                    if self.unreachable(base) {
                        self.unreachable
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .remove(base.as_str());
                    }
                    return Ok(Fetched {
                        value,
                        base: base.clone(),
                        url,
                    });
                }
                Err(e @ (Error::Io { .. } | Error::InvalidUrl { .. })) => return Err(e),
                Err(e) => {
                    if matches!(e, Error::Connection { .. } | Error::Timeout { .. }) {
                        self.unreachable
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .insert(base.clone(), SystemTime::now() + UNREACHABLE_FOR);
                    } else {
                        self.unreachable
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .remove(base.as_str());
                    }
                    tracing::info!(%url, error = %e, "upstream failed; trying the next one");
                    attempts.push((base.clone(), e));
                }
            }
        }
        Err(Error::AllUpstreamsFailed {
            file: file.to_string(),
            attempts,
        })
    }

    /// Downloads `file` from the first usable upstream into `dest_dir/file` (see
    /// [`Client::download_limited`]), failing over to the next upstream on any
    /// network or HTTP error. `max_size` `None` means the client's limit.
    ///
    /// # Errors
    /// [`Error::AllUpstreamsFailed`] with every upstream's error (check
    /// [`Error::is_not_found`] and [`Error::rate_limited_until`]); [`Error::Io`] and
    /// [`Error::InvalidUrl`] stop the failover at once (they are local problems).
    pub fn download(
        &self,
        client: &Client,
        file: &str,
        dest_dir: &Path,
        cond: &Conditional,
        max_size: Option<u64>,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Fetched<Outcome>, Error> {
        self.each(client, file, |url| match max_size {
            Some(m) => client.download_limited(url, dest_dir, file, cond, m, progress),
            None => client.download(url, dest_dir, file, cond, progress),
        })
    }

    /// Reads bytes `range` of `file` from the first usable upstream, `None` when it
    /// answers `304` to the validators of `cond` (see [`Client::fetch_range`]).
    ///
    /// # Errors
    /// As [`Upstreams::download`].
    pub fn fetch_range(
        &self,
        client: &Client,
        file: &str,
        range: Range<u64>,
        cond: &Conditional,
    ) -> Result<Fetched<Option<Vec<u8>>>, Error> {
        self.each(client, file, |url| {
            client.fetch_range(url, range.clone(), cond)
        })
    }
}
