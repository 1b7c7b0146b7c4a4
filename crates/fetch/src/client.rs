//! The blocking HTTP client: builder, single-URL downloads with resume and cool-downs,
//! and range reads.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::cooldown::{Cooldowns, parse_retry_after};
use crate::http::ProxyRule;
use crate::{Backoff, Error, HttpSettings};

/// The default `User-Agent`: product, version, and what it is.
pub const DEFAULT_USER_AGENT: &str =
    concat!("clamav-mirror/", env!("CARGO_PKG_VERSION"), " (+sigupdate)");

/// The largest range [`Client::fetch_range`] reads (it is meant for header probes).
pub const MAX_RANGE_LEN: u64 = 1024 * 1024;

/// Validators of the local copy, sent as `If-None-Match` / `If-Modified-Since`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conditional {
    /// The `ETag` the server gave for the local copy.
    pub etag: Option<String>,
    /// The local copy's modification time (the server's `Last-Modified` when it was
    /// downloaded by this crate, which sets the file's mtime to it).
    pub last_modified: Option<SystemTime>,
}

impl Conditional {
    /// No validators: always download.
    pub fn none() -> Conditional {
        Conditional::default()
    }

    /// `If-Modified-Since` from the modification time of the file at `path`, or no
    /// validators when it does not exist.
    ///
    /// # Errors
    /// [`Error::Io`] when the file exists but its metadata cannot be read.
    pub fn from_file(path: &Path) -> Result<Conditional, Error> {
        match std::fs::metadata(path) {
            Ok(m) => Ok(Conditional {
                etag: None,
                last_modified: Some(m.modified().map_err(|e| Error::io(path, e))?),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Conditional::none()),
            Err(e) => Err(Error::io(path, e)),
        }
    }

    /// `If-Modified-Since` = `t` (e.g. the build time of the copy held): a server
    /// whose file is not newer answers `304` with no body.
    pub fn modified_since(t: SystemTime) -> Conditional {
        Conditional {
            etag: None,
            last_modified: Some(t),
        }
    }

    fn is_some(&self) -> bool {
        self.etag.is_some() || self.last_modified.is_some()
    }

    /// The request headers carrying these validators.
    fn headers(&self) -> Vec<(&'static str, String)> {
        let mut h = Vec::new();
        if let Some(e) = &self.etag {
            h.push(("If-None-Match", e.clone()));
        }
        if let Some(t) = self.last_modified {
            h.push(("If-Modified-Since", httpdate::fmt_http_date(t)));
        }
        h
    }
}

/// Progress of one download, passed to the progress callback after each chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Bytes of the file present so far (including a resumed prefix).
    pub received: u64,
    /// The file's total size, when the server announced it.
    pub total: Option<u64>,
}

/// A file that was completely downloaded and renamed into place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Downloaded {
    /// The final path (`dest_dir/file_name`).
    pub path: PathBuf,
    /// Size in bytes.
    pub size: u64,
    /// The server's `ETag`, if any.
    pub etag: Option<String>,
    /// The server's `Last-Modified`, if any (also set as the file's mtime).
    pub last_modified: Option<SystemTime>,
    /// Whether the download resumed a partial file from an earlier attempt.
    pub resumed: bool,
    /// Body bytes received by the final, successful request (`size` minus a resumed
    /// prefix).
    pub transferred: u64,
}

/// The result of [`Client::download`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The server answered `304 Not Modified`: the local copy is current; nothing was
    /// written.
    NotModified,
    /// The file was downloaded.
    Downloaded(Downloaded),
}

/// Builds a [`Client`]; every option has a safe default.
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    user_agent: String,
    connect_timeout: Duration,
    read_timeout: Duration,
    max_body: u64,
    max_redirects: u32,
    retries: u32,
    backoff_base: Duration,
    backoff_cap: Duration,
    default_cooldown: Duration,
    max_cooldown: Duration,
    http: HttpSettings,
    /// No proxy at all (settings and environment ignored).
    direct: bool,
    cooldown_file: Option<PathBuf>,
}

impl Default for ClientBuilder {
    fn default() -> Self {
        ClientBuilder {
            user_agent: DEFAULT_USER_AGENT.to_string(),
            connect_timeout: Duration::from_secs(15),
            read_timeout: Duration::from_secs(60),
            max_body: 1024 * 1024 * 1024,
            max_redirects: 5,
            retries: 3,
            backoff_base: Duration::from_secs(1),
            backoff_cap: Duration::from_secs(60),
            default_cooldown: Duration::from_secs(3600),
            max_cooldown: Duration::from_secs(7 * 24 * 3600),
            http: HttpSettings::default(),
            direct: false,
            cooldown_file: None,
        }
    }
}

impl ClientBuilder {
    /// The `User-Agent` header (default [`DEFAULT_USER_AGENT`]); upstreams block
    /// anonymous clients, so it should name the product and version.
    pub fn user_agent(mut self, ua: impl Into<String>) -> Self {
        self.user_agent = ua.into();
        self
    }
    /// Maximum time to establish a connection (default 15 s).
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = d;
        self
    }
    /// Maximum time any single read may wait for data (default 60 s).
    pub fn read_timeout(mut self, d: Duration) -> Self {
        self.read_timeout = d;
        self
    }
    /// Maximum size of one downloaded file (default 1 GiB).
    pub fn max_body(mut self, bytes: u64) -> Self {
        self.max_body = bytes;
        self
    }
    /// Maximum redirects followed per request (default 5).
    pub fn max_redirects(mut self, n: u32) -> Self {
        self.max_redirects = n;
        self
    }
    /// Retries of a transient failure (timeouts, connection errors, truncated bodies,
    /// `5xx` without `Retry-After`) per URL (default 3, so up to 4 attempts).
    pub fn retries(mut self, n: u32) -> Self {
        self.retries = n;
        self
    }
    /// Exponential backoff between retries: `base * 2^attempt`, capped at `cap`, with
    /// jitter (a random 50–100 % of that). Default 1 s, capped at 60 s.
    pub fn backoff(mut self, base: Duration, cap: Duration) -> Self {
        self.backoff_base = base;
        self.backoff_cap = cap;
        self
    }
    /// Cool-down applied after a `429` without a usable `Retry-After` (default 1 h).
    pub fn default_cooldown(mut self, d: Duration) -> Self {
        self.default_cooldown = d;
        self
    }
    /// Upper bound on any cool-down, whatever `Retry-After` says (default 7 days).
    pub fn max_cooldown(mut self, d: Duration) -> Self {
        self.max_cooldown = d;
        self
    }
    /// Use this proxy URL (e.g. `http://proxy:3128`, `http://user:password@proxy:3128`)
    /// instead of the environment.
    pub fn proxy(mut self, url: impl Into<String>) -> Self {
        self.http.proxy = Some(url.into());
        self.direct = false;
        self
    }
    /// Use no proxy at all, whatever the settings and the environment say.
    pub fn no_proxy(mut self) -> Self {
        self.direct = true;
        self
    }
    /// Trust the CA certificates of this file (PEM or DER) besides the system's roots.
    pub fn ca_cert(mut self, path: impl Into<PathBuf>) -> Self {
        self.http.ca_certs.push(path.into());
        self
    }
    /// The operator's TLS and proxy settings (replacing those given before, and
    /// undoing [`ClientBuilder::no_proxy`]): extra CAs, proxy, hosts without proxy.
    pub fn http_settings(mut self, settings: HttpSettings) -> Self {
        self.http = settings;
        self.direct = false;
        self
    }
    /// Persist cool-downs in this JSON file (e.g. `DIR/cooldown.json`), loading any
    /// that an earlier process recorded. Without it, cool-downs live in memory only.
    pub fn cooldown_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.cooldown_file = Some(path.into());
        self
    }

    /// Builds the client. The default proxy comes from the standard environment
    /// variables (`ALL_PROXY`, `HTTPS_PROXY`, `HTTP_PROXY`, lower-case too, honouring
    /// `NO_PROXY`).
    ///
    /// # Errors
    /// [`Error::InvalidUrl`] for a bad proxy URL; [`Error::Io`] when the cool-down file
    /// exists but cannot be read.
    pub fn build(self) -> Result<Client, Error> {
        let proxies = if self.direct {
            Vec::new()
        } else {
            self.http.proxy_rules(&|v| std::env::var(v).ok())
        };
        let mut headers = reqwest::header::HeaderMap::new();
        // Raw bytes: no content coding is asked for (none is decoded either).
        headers.insert(
            reqwest::header::ACCEPT_ENCODING,
            reqwest::header::HeaderValue::from_static("identity"),
        );
        let redirects = match self.max_redirects {
            0 => reqwest::redirect::Policy::none(),
            n => reqwest::redirect::Policy::limited(n as usize),
        };
        let http = self
            .http
            .blocking_builder(self.direct)?
            .user_agent(self.user_agent.as_str())
            .default_headers(headers)
            .redirect(redirects)
            .connect_timeout(self.connect_timeout)
            // Until the response head, and then per read of the body.
            .timeout(self.read_timeout)
            .build()
            .map_err(|e| Error::InvalidUrl {
                url: String::new(),
                reason: format!("cannot build the HTTP client: {}", crate::http::chain(&e)),
            })?;
        let cooldowns = Cooldowns::load(self.cooldown_file.clone())?;
        Ok(Client {
            http,
            proxies,
            cfg: self,
            cooldowns: Mutex::new(cooldowns),
            body_bytes: AtomicU64::new(0),
        })
    }
}

/// A blocking HTTP client for signature downloads (`Send + Sync`: share it by
/// reference or `Arc` across threads).
#[derive(Debug)]
pub struct Client {
    http: reqwest::blocking::Client,
    /// The proxies in effect (for messages about them).
    proxies: Vec<ProxyRule>,
    cfg: ClientBuilder,
    cooldowns: Mutex<Cooldowns>,
    body_bytes: AtomicU64,
}

/// What is recorded next to a `.part` file so that a resume can be validated.
#[derive(Debug, Serialize, Deserialize)]
struct PartMeta {
    url: String,
    etag: Option<String>,
    last_modified: Option<String>,
}

impl PartMeta {
    /// The strong validator usable in `If-Range`.
    fn validator(&self) -> Option<String> {
        match &self.etag {
            Some(e) if !e.starts_with("W/") => Some(e.clone()),
            _ => self.last_modified.clone(),
        }
    }
}

struct Response {
    status: u16,
    url: String,
    inner: reqwest::blocking::Response,
}

impl Response {
    fn header(&self, name: &str) -> Option<String> {
        self.inner
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }
    fn content_length(&self) -> Option<u64> {
        self.header("content-length")?.trim().parse().ok()
    }
}

/// `host:port` of a URL: the key of cool-downs.
///
/// ```
/// assert_eq!(fetch::upstream_key("https://database.clamav.net/daily.cvd").unwrap(), "database.clamav.net:443");
/// assert_eq!(fetch::upstream_key("http://127.0.0.1:8080/x").unwrap(), "127.0.0.1:8080");
/// ```
///
/// # Errors
/// [`Error::InvalidUrl`] when the URL has no host or an unsupported scheme.
pub fn upstream_key(url: &str) -> Result<String, Error> {
    let bad = |reason: &str| Error::InvalidUrl {
        url: url.to_string(),
        reason: reason.to_string(),
    };
    let uri: reqwest::Url = url.parse().map_err(|e| bad(&format!("{e}")))?;
    if !matches!(uri.scheme(), "http" | "https") {
        return Err(bad("scheme must be http or https"));
    }
    let host = uri.host_str().ok_or_else(|| bad("no host"))?;
    let port = uri
        .port_or_known_default()
        .ok_or_else(|| bad("scheme must be http or https"))?;
    Ok(format!("{host}:{port}"))
}

fn valid_file_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

/// A failed request (or body read) as the crate's error: TLS and proxy problems in
/// plain words, then timeouts, redirects, connection failures.
fn map_reqwest(url: &str, proxies: &[ProxyRule], e: &reqwest::Error) -> Error {
    if let Some(plain) = crate::http::classify(url, proxies, e) {
        return plain;
    }
    let url = url.to_string();
    if e.is_redirect() {
        return Error::Protocol {
            url,
            reason: "too many redirects".into(),
        };
    }
    if e.is_timeout() {
        return Error::Timeout {
            url,
            stage: if e.is_connect() {
                "connect".into()
            } else if e.is_body() || e.is_decode() {
                "body".into()
            } else {
                "response".into()
            },
        };
    }
    if e.is_builder() {
        return Error::InvalidUrl {
            url,
            reason: crate::http::chain(e),
        };
    }
    Error::Connection {
        url,
        reason: crate::http::chain(e),
    }
}

fn map_io(url: &str, proxies: &[ProxyRule], e: std::io::Error) -> Error {
    if let Some(r) = e.get_ref().and_then(|x| x.downcast_ref::<reqwest::Error>()) {
        return map_reqwest(url, proxies, r);
    }
    match e.kind() {
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => Error::Timeout {
            url: url.to_string(),
            stage: "read".into(),
        },
        _ => Error::Connection {
            url: url.to_string(),
            reason: crate::http::chain(&e),
        },
    }
}

fn remove_quiet(p: &Path) {
    if let Err(e) = std::fs::remove_file(p)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(path = %p.display(), error = %e, "cannot remove");
    }
}

/// Parses `bytes a-b/total` (total may be `*`).
fn parse_content_range(v: &str) -> Option<(u64, u64, Option<u64>)> {
    let rest = v.trim().strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let (a, b) = range.split_once('-')?;
    let a: u64 = a.trim().parse().ok()?;
    let b: u64 = b.trim().parse().ok()?;
    let total = if total.trim() == "*" {
        None
    } else {
        Some(total.trim().parse().ok()?)
    };
    (b >= a && total.is_none_or(|t| b < t)).then_some((a, b, total))
}

/// Size of one read / write chunk.
const CHUNK: usize = 64 * 1024;

enum Attempt {
    Done(Outcome),
    /// The partial file cannot be resumed: start over (without counting a retry).
    Restart,
}

impl Client {
    /// A builder with safe defaults.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// Response-body bytes received so far by this client (all requests).
    pub fn body_bytes(&self) -> u64 {
        self.body_bytes.load(Ordering::Relaxed)
    }

    /// The end of the cool-down for the upstream serving `url`, if one is active.
    pub fn cooldown_until(&self, url: &str) -> Option<SystemTime> {
        let key = upstream_key(url).ok()?;
        self.lock_cooldowns().until(&key, SystemTime::now())
    }

    fn lock_cooldowns(&self) -> MutexGuard<'_, Cooldowns> {
        self.cooldowns.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn backoff(&self, attempt: u32) -> Duration {
        Backoff::new(self.cfg.backoff_base, self.cfg.backoff_cap).delay(attempt)
    }

    /// Runs `op` with the cool-down check and transient-error retries.
    fn with_retries<T>(
        &self,
        url: &str,
        mut op: impl FnMut() -> Result<T, Error>,
    ) -> Result<T, Error> {
        let key = upstream_key(url)?;
        let mut attempt = 0u32;
        loop {
            if let Some(until) = self.lock_cooldowns().until(&key, SystemTime::now()) {
                return Err(Error::RateLimited {
                    upstream: key,
                    until,
                });
            }
            match op() {
                Err(e) if e.is_transient() && attempt < self.cfg.retries => {
                    let wait = self.backoff(attempt);
                    tracing::info!(%url, error = %e, ?wait, attempt, "transient failure; retrying");
                    std::thread::sleep(wait);
                    attempt += 1;
                }
                r => return r,
            }
        }
    }

    fn send(&self, url: &str, headers: &[(&str, String)]) -> Result<Response, Error> {
        let mut req = self.http.get(url);
        for (k, v) in headers {
            req = req.header(*k, v.as_str());
        }
        let inner = req
            .send()
            .map_err(|e| map_reqwest(url, &self.proxies, &e))?;
        let status = inner.status().as_u16();
        let resp = Response {
            status,
            url: url.to_string(),
            inner,
        };
        if status == 407 {
            // A forward proxy (plain `http://` upstream) refusing us.
            return Err(crate::http::proxy_auth_error(url, &self.proxies));
        }
        if matches!(status, 429 | 503) {
            self.rate_limited(&resp)?;
        }
        Ok(resp)
    }

    /// Records a cool-down for a `429`/`503`; returns the error to report. A `503`
    /// without `Retry-After` is an ordinary (transient) status.
    fn rate_limited(&self, resp: &Response) -> Result<(), Error> {
        let now = SystemTime::now();
        let key = upstream_key(&resp.url)?;
        let ra = resp
            .header("retry-after")
            .and_then(|v| parse_retry_after(&v, now));
        let until = match (resp.status, ra) {
            (_, Some(t)) => t,
            (429, None) => now + self.cfg.default_cooldown,
            _ => {
                return Err(Error::Status {
                    url: resp.url.clone(),
                    status: resp.status,
                });
            }
        };
        let until = until.min(now + self.cfg.max_cooldown);
        if until <= now {
            // A Retry-After in the past: retry like any transient failure.
            return Err(Error::Status {
                url: resp.url.clone(),
                status: resp.status,
            });
        }
        tracing::warn!(url = %resp.url, upstream = %key, until = %httpdate::fmt_http_date(until), "rate limited");
        self.lock_cooldowns().set(&key, until, now)?;
        Err(Error::RateLimited {
            upstream: key,
            until,
        })
    }

    /// Downloads `url` into `dest_dir/file_name` with the client's size limit; see
    /// [`Client::download_limited`].
    ///
    /// # Errors
    /// See [`Client::download_limited`].
    pub fn download(
        &self,
        url: &str,
        dest_dir: &Path,
        file_name: &str,
        cond: &Conditional,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Outcome, Error> {
        self.download_limited(url, dest_dir, file_name, cond, self.cfg.max_body, progress)
    }

    /// Downloads `url` into `dest_dir/file_name`, refusing more than `max_size` bytes.
    ///
    /// The body streams into `dest_dir/<file_name>.part`; only after a clean end (every
    /// announced byte received) is it fsynced and renamed to `file_name` (whose mtime
    /// is set to `Last-Modified`). An interrupted download
    /// leaves the `.part` file and a `.part.meta` sidecar with the server's validator;
    /// the next call resumes with `Range` + `If-Range`, and starts over when the server
    /// ignores the range or the file changed. Transient failures are retried with
    /// jittered exponential backoff; `429`/`503` with `Retry-After` start a cool-down
    /// for the upstream and are never retried into.
    ///
    /// # Errors
    /// [`Error::RateLimited`] (also when a cool-down is already active: no request is
    /// sent), [`Error::Status`], [`Error::Timeout`], [`Error::Connection`],
    /// [`Error::Truncated`], [`Error::TooLarge`], [`Error::Protocol`],
    /// [`Error::InvalidUrl`] (also for a `file_name` that is not a plain file name),
    /// [`Error::Io`] on the destination directory.
    pub fn download_limited(
        &self,
        url: &str,
        dest_dir: &Path,
        file_name: &str,
        cond: &Conditional,
        max_size: u64,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Outcome, Error> {
        if !valid_file_name(file_name) {
            return Err(Error::InvalidUrl {
                url: url.to_string(),
                reason: format!("{file_name:?} is not a plain file name"),
            });
        }
        self.with_retries(url, || {
            let mut allow_resume = true;
            loop {
                match self.attempt(
                    url,
                    dest_dir,
                    file_name,
                    cond,
                    max_size,
                    allow_resume,
                    progress,
                )? {
                    Attempt::Done(o) => return Ok(o),
                    Attempt::Restart if allow_resume => allow_resume = false,
                    Attempt::Restart => {
                        return Err(Error::Protocol {
                            url: url.to_string(),
                            reason: "server refused a fresh download".into(),
                        });
                    }
                }
            }
        })
    }

    fn load_resume(&self, url: &str, part: &Path, meta: &Path) -> Option<(u64, PartMeta)> {
        let len = std::fs::metadata(part).ok()?.len();
        let m = std::fs::read(meta).ok().filter(|b| b.len() < 64 * 1024)?;
        let m: PartMeta = serde_json::from_slice(&m).ok()?;
        (len > 0 && m.url == url && m.validator().is_some()).then_some((len, m))
    }

    #[allow(clippy::too_many_arguments)]
    fn attempt(
        &self,
        url: &str,
        dest_dir: &Path,
        file_name: &str,
        cond: &Conditional,
        max_size: u64,
        allow_resume: bool,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Attempt, Error> {
        let final_path = dest_dir.join(file_name);
        let part = dest_dir.join(format!("{file_name}.part"));
        let meta = dest_dir.join(format!("{file_name}.part.meta"));
        let resume = if allow_resume {
            self.load_resume(url, &part, &meta)
        } else {
            None
        };
        if resume.is_none() {
            remove_quiet(&part);
            remove_quiet(&meta);
        }
        let mut headers = cond.headers();
        if let Some((off, m)) = &resume {
            headers.push(("Range", format!("bytes={off}-")));
            if let Some(v) = m.validator() {
                headers.push(("If-Range", v));
            }
        }
        let resp = self.send(url, &headers)?;
        let etag = resp.header("etag");
        let lm_raw = resp.header("last-modified");
        let last_modified = lm_raw
            .as_deref()
            .and_then(|v| httpdate::parse_http_date(v).ok());
        let (offset, total) = match resp.status {
            304 if cond.is_some() => {
                remove_quiet(&part);
                remove_quiet(&meta);
                return Ok(Attempt::Done(Outcome::NotModified));
            }
            200 => {
                let total = resp.content_length();
                (0u64, total)
            }
            206 => {
                let Some((off, m)) = &resume else {
                    return Err(Error::Protocol {
                        url: url.to_string(),
                        reason: "206 Partial Content to a request without Range".into(),
                    });
                };
                let cr = resp
                    .header("content-range")
                    .and_then(|v| parse_content_range(&v));
                let same_file = match (&m.etag, &etag, &m.last_modified, &lm_raw) {
                    (Some(a), Some(b), _, _) => a == b,
                    (_, _, Some(a), Some(b)) => a == b,
                    _ => false,
                };
                match cr {
                    Some((a, _, Some(t))) if a == *off && same_file => (*off, Some(t)),
                    _ => {
                        tracing::info!(%url, "resume refused (range or validator mismatch); restarting");
                        return Ok(Attempt::Restart);
                    }
                }
            }
            416 if resume.is_some() => return Ok(Attempt::Restart),
            status => {
                return Err(Error::Status {
                    url: url.to_string(),
                    status,
                });
            }
        };
        if let Some(t) = total
            && t > max_size
        {
            remove_quiet(&part);
            remove_quiet(&meta);
            return Err(Error::TooLarge {
                url: url.to_string(),
                limit: max_size,
            });
        }
        let resumable = etag.as_ref().is_some_and(|e| !e.starts_with("W/")) || lm_raw.is_some();
        let mut file = if offset > 0 {
            let f = OpenOptions::new()
                .append(true)
                .open(&part)
                .map_err(|e| Error::io(&part, e))?;
            // The prefix must still be what the resume offset was computed from.
            if f.metadata().map_err(|e| Error::io(&part, e))?.len() != offset {
                return Ok(Attempt::Restart);
            }
            f
        } else {
            if resumable {
                let m = PartMeta {
                    url: url.to_string(),
                    etag: etag.clone(),
                    last_modified: lm_raw.clone(),
                };
                let json = serde_json::to_vec(&m)
                    .map_err(|e| Error::io(&meta, std::io::Error::other(e)))?;
                std::fs::write(&meta, json).map_err(|e| Error::io(&meta, e))?;
            }
            File::create(&part).map_err(|e| Error::io(&part, e))?
        };
        let cleanup = |keep: bool| {
            if !(keep && resumable) {
                remove_quiet(&part);
                remove_quiet(&meta);
            }
        };
        let mut reader = resp.inner;
        let mut received = offset;
        progress(Progress { received, total });
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let _ = file.flush();
                    let err = match map_io(url, &self.proxies, e) {
                        Error::Connection { .. } if total.is_some() => Error::Truncated {
                            url: url.to_string(),
                            expected: total.unwrap_or(0),
                            received,
                        },
                        other => other,
                    };
                    cleanup(true);
                    return Err(err);
                }
            };
            self.body_bytes.fetch_add(n as u64, Ordering::Relaxed);
            received += n as u64;
            if received > max_size {
                drop(file);
                cleanup(false);
                return Err(Error::TooLarge {
                    url: url.to_string(),
                    limit: max_size,
                });
            }
            if let Err(e) = file.write_all(&buf[..n]) {
                drop(file);
                cleanup(false);
                return Err(Error::io(&part, e));
            }
            progress(Progress { received, total });
        }
        if let Some(t) = total
            && received != t
        {
            drop(file);
            cleanup(received < t);
            return Err(Error::Truncated {
                url: url.to_string(),
                expected: t,
                received,
            });
        }
        if let Some(t) = last_modified {
            // Best effort: the mtime is what `Conditional::from_file` reads back.
            if let Err(e) = file.set_modified(t) {
                tracing::debug!(path = %part.display(), error = %e, "cannot set mtime");
            }
        }
        // The `.part` name is fixed (resume); the final step is the workspace's one.
        atomic_file::commit(file, &part, &final_path).map_err(|e| Error::io(&final_path, e))?;
        remove_quiet(&meta);
        Ok(Attempt::Done(Outcome::Downloaded(Downloaded {
            path: final_path,
            size: received,
            etag,
            last_modified,
            resumed: offset > 0,
            transferred: received - offset,
        })))
    }

    /// Reads bytes `range` of `url` (e.g. `0..512` for a CVD header probe) with
    /// `Range`, and the validators of `cond` (`If-Modified-Since` = the build time of
    /// the copy held, as freshclam does): `Ok(None)` is the server's `304 Not
    /// Modified`, so an upstream or proxy that ignores `Range` still does not stream a
    /// whole file for a probe. A server that ignores both is read only up to
    /// `range.end` and the connection closed (not pooled: at most hyper's read buffer
    /// arrives beyond the range). The result is shorter than the range when the file is.
    ///
    /// # Errors
    /// [`Error::InvalidUrl`] for an empty range or one longer than [`MAX_RANGE_LEN`];
    /// otherwise as [`Client::download`] (no file is written).
    pub fn fetch_range(
        &self,
        url: &str,
        range: Range<u64>,
        cond: &Conditional,
    ) -> Result<Option<Vec<u8>>, Error> {
        if range.end <= range.start || range.end - range.start > MAX_RANGE_LEN {
            return Err(Error::InvalidUrl {
                url: url.to_string(),
                reason: format!("unsupported range {range:?}"),
            });
        }
        self.with_retries(url, || self.range_once(url, range.clone(), cond))
    }

    fn range_once(
        &self,
        url: &str,
        range: Range<u64>,
        cond: &Conditional,
    ) -> Result<Option<Vec<u8>>, Error> {
        let mut headers = cond.headers();
        headers.push(("Range", format!("bytes={}-{}", range.start, range.end - 1)));
        let resp = self.send(url, &headers)?;
        let skip = match resp.status {
            206 => {
                let cr = resp
                    .header("content-range")
                    .and_then(|v| parse_content_range(&v));
                match cr {
                    Some((a, _, _)) if a == range.start => 0,
                    _ => {
                        return Err(Error::Protocol {
                            url: url.to_string(),
                            reason: "Content-Range does not match the requested range".into(),
                        });
                    }
                }
            }
            200 => range.start,
            304 if cond.is_some() => return Ok(None),
            416 => return Ok(Some(Vec::new())),
            status => {
                return Err(Error::Status {
                    url: url.to_string(),
                    status,
                });
            }
        };
        let want = skip + (range.end - range.start);
        // Dropping the response before its end closes the connection (it is not
        // pooled): a server that ignores `Range` streams no further than hyper's read
        // buffer.
        let mut reader = resp.inner.take(want);
        let mut out = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    self.body_bytes.fetch_add(n as u64, Ordering::Relaxed);
                    out.extend_from_slice(&buf[..n]);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(map_io(url, &self.proxies, e)),
            }
        }
        let skip = usize::try_from(skip).unwrap_or(usize::MAX).min(out.len());
        Ok(Some(out.split_off(skip)))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a panic is a failure report
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_exponentially_with_jitter_and_a_cap() {
        let c = Client::builder()
            .no_proxy()
            .backoff(Duration::from_millis(100), Duration::from_secs(2))
            .build()
            .unwrap();
        for attempt in 0..40 {
            let full = Duration::from_millis(100)
                .saturating_mul(2u32.saturating_pow(attempt.min(20)))
                .min(Duration::from_secs(2));
            for _ in 0..20 {
                let d = c.backoff(attempt);
                assert!(
                    d >= full / 2 && d <= full,
                    "attempt {attempt}: {d:?} vs {full:?}"
                );
            }
        }
    }

    #[test]
    fn content_range_parsing() {
        assert_eq!(
            parse_content_range("bytes 0-511/9000"),
            Some((0, 511, Some(9000)))
        );
        assert_eq!(parse_content_range("bytes 5-9/*"), Some((5, 9, None)));
        for bad in [
            "bytes 9-5/10",
            "bytes 0-10/10",
            "items 0-1/2",
            "bytes x-1/2",
            "bytes */10",
        ] {
            assert_eq!(parse_content_range(bad), None, "{bad}");
        }
    }

    #[test]
    fn file_names() {
        for ok in ["daily.cvd", "daily-27000.cdiff", "main.cvd.sign", "dns.txt"] {
            assert!(valid_file_name(ok), "{ok}");
        }
        for bad in ["", ".", "..", ".x", "a/b", "a\\b", "a b", "a\0"] {
            assert!(!valid_file_name(bad), "{bad:?}");
        }
    }
}
