//! A real, deliberately simple HTTP/1.1 server on `127.0.0.1` that can misbehave on
//! command: the upstream simulator for `fetch`, `mirror-core`, `sigserver` and
//! end-to-end tests.
//!
//! It is built on `std::net::TcpListener` and one thread per connection, with no
//! framework, so every byte on the wire is under the test's control. Each response
//! carries `Connection: close` (one request per connection); that keeps the fault
//! injection exact (a dropped body never poisons a pooled connection).
//!
//! # Content
//!
//! Files come from a directory ([`TestServer::start_dir`]) or an in-memory map
//! ([`TestServer::start`] + [`TestServer::put`]); both can change while the server
//! runs (a "new version upstream" is a [`TestServer::put`] or a file write). Request
//! paths are URL paths (`/daily.cvd`); in directory mode they map to files directly
//! under the root (no `..`, no sub-directories).
//!
//! # Protocol support
//!
//! `GET` and `HEAD`; `ETag` (a strong tag derived from the content) and
//! `Last-Modified` (the file's mtime, or the time it was [`put`](TestServer::put));
//! `If-None-Match` and `If-Modified-Since` (→ `304`); `Range: bytes=a-b`, `a-`, `-n`
//! (→ `206` with `Content-Range`, or `416`), honouring `If-Range` (an ETag or date that
//! does not match makes the server ignore `Range`).
//!
//! [`TestServer::start_tls`] and [`TestServer::start_dir_tls`] serve the same over
//! HTTPS (rustls, with a certificate from [`crate::tls`]): the URLs become
//! `https://127.0.0.1:PORT/...`, and every handshake the server refuses or a client
//! aborts (e.g. with an `UnknownCA` alert) is recorded in [`Stats::tls_failures`].
//!
//! It also acts as an HTTP proxy: a `CONNECT host:port` is logged (path =
//! `host:port`) and answered `200`, and the tunnelled request is served from this
//! server's own content; a forward-proxy request (absolute-form target,
//! `GET http://host:port/path`) is served from this server's content too, logged with
//! [`RequestRecord::proxied`] = `host:port` — so a test can prove that a client uses
//! its proxy setting.
//!
//! # Faults
//!
//! [`TestServer::set_fault`] injects a [`Fault`] for one path or for every path
//! ([`Scope::All`]); [`TestServer::set_fault_times`] makes it apply to the next `n`
//! matching requests only, after which the server behaves again (how a test proves
//! that a client retries, resumes or fails over). A path-specific fault wins over a
//! global one.
//!
//! # Counters
//!
//! [`TestServer::stats`] returns the request count and the response-body bytes
//! written per path, plus a log of every request line and its headers, so tests can
//! assert "a second sync downloaded 0 body bytes" or "the client sent `If-Range`".
//!
//! ```
//! use testkit::http::{Fault, Scope, TestServer};
//!
//! let server = TestServer::start();
//! server.put("/daily.cvd", b"hello".to_vec());
//! server.set_fault_times(Scope::path("/daily.cvd"), Fault::Status(500), 1);
//! assert!(server.url("/daily.cvd").starts_with("http://127.0.0.1:"));
//! assert_eq!(server.stats().requests("/daily.cvd"), 0);
//! // the server stops when `server` is dropped
//! ```

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The `Retry-After` value of a rate-limit or unavailable response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetryAfter {
    /// `Retry-After: <seconds>`.
    Seconds(u64),
    /// `Retry-After: <HTTP-date>` (IMF-fixdate).
    Date(SystemTime),
    /// A literal header value (for malformed-header tests).
    Raw(String),
}

impl RetryAfter {
    fn header_value(&self) -> String {
        match self {
            RetryAfter::Seconds(s) => s.to_string(),
            RetryAfter::Date(t) => httpdate::fmt_http_date(*t),
            RetryAfter::Raw(s) => s.clone(),
        }
    }
}

/// A misbehaviour the server applies to matching requests (more may be added).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Answer with this status and a short text body (e.g. `404`, `500`, `503`).
    Status(u16),
    /// `429 Too Many Requests`, with `Retry-After` when given.
    RateLimit(Option<RetryAfter>),
    /// `503 Service Unavailable`, with `Retry-After` when given.
    Unavailable(Option<RetryAfter>),
    /// Send the normal headers (with the full `Content-Length`), then only the first
    /// `n` body bytes, then close the connection.
    DropAfter(u64),
    /// Send the body in chunks of `chunk` bytes with `delay` between them.
    Slow {
        /// Bytes per write.
        chunk: usize,
        /// Pause before each write.
        delay: Duration,
    },
    /// Announce this `Content-Length` but send the real body, then close.
    ContentLength(u64),
    /// Ignore `Range` (and `If-Range`): always answer `200` with the whole file.
    IgnoreRange,
    /// Ignore `If-None-Match` / `If-Modified-Since`: never answer `304`.
    IgnoreConditional,
    /// Answer `302 Found` with `Location: <target>`; a target starting with `/` is a
    /// path on this server.
    Redirect(String),
    /// Serve a body of this many bytes (`'x'` repeated) instead of the file.
    Oversized(u64),
    /// Serve these bytes instead of the file (same validators as the real file unless
    /// the file does not exist).
    Content(Vec<u8>),
    /// Send the normal body without `Content-Length`, delimited by closing the
    /// connection (HTTP/1.0 style): the client cannot know the size in advance.
    NoContentLength,
    /// `200` without `Content-Length`, then `'x'` bytes forever, until the client
    /// hangs up (or the server stops): proves a client enforces its size limit while
    /// streaming.
    EndlessBody,
    /// Accept the connection, read the request, and never answer (until the server
    /// stops; the client must time out).
    Hang,
}

/// Which requests a fault applies to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Every path.
    All,
    /// One URL path, e.g. `/daily.cvd`.
    Path(String),
}

impl Scope {
    /// A scope for one URL path (a leading `/` is added when missing).
    pub fn path(p: &str) -> Scope {
        if p.starts_with('/') {
            Scope::Path(p.to_string())
        } else {
            Scope::Path(format!("/{p}"))
        }
    }
}

/// One request as the server saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    /// `GET` or `HEAD` (or whatever the client sent).
    pub method: String,
    /// The URL path (without query).
    pub path: String,
    /// Header names lower-cased, in arrival order.
    pub headers: Vec<(String, String)>,
    /// The status the server answered (0 when it never answered).
    pub status: u16,
    /// For a forward-proxy request (absolute-form target `http://host:port/path`):
    /// the `host:port` it was addressed to.
    pub proxied: Option<String>,
}

impl RequestRecord {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A snapshot of the server's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    requests: HashMap<String, u64>,
    body_bytes: HashMap<String, u64>,
    log: Vec<RequestRecord>,
    tls_failures: Vec<String>,
}

impl Stats {
    /// Requests received for `path`.
    pub fn requests(&self, path: &str) -> u64 {
        self.requests.get(path).copied().unwrap_or(0)
    }
    /// Requests received for all paths.
    pub fn total_requests(&self) -> u64 {
        self.requests.values().sum()
    }
    /// Response-body bytes written for `path` (headers not counted). Counted before
    /// each write reaches the socket, so bytes a client has received are always
    /// included; a chunk whose write fails is not counted.
    pub fn body_bytes(&self, path: &str) -> u64 {
        self.body_bytes.get(path).copied().unwrap_or(0)
    }
    /// Response-body bytes written for all paths.
    pub fn total_body_bytes(&self) -> u64 {
        self.body_bytes.values().sum()
    }
    /// Every request, in arrival order.
    pub fn log(&self) -> &[RequestRecord] {
        &self.log
    }
    /// Every TLS handshake that failed (HTTPS mode), as rustls describes it on the
    /// server's side (e.g. `received fatal alert: UnknownCA` when a client did not trust
    /// the certificate), in arrival order.
    pub fn tls_failures(&self) -> &[String] {
        &self.tls_failures
    }
    /// The requests for `path`, in arrival order.
    pub fn log_for(&self, path: &str) -> Vec<&RequestRecord> {
        self.log.iter().filter(|r| r.path == path).collect()
    }
}

#[derive(Debug, Clone)]
struct Entry {
    body: Vec<u8>,
    modified: SystemTime,
}

enum Source {
    Dir(PathBuf),
    Map(HashMap<String, Entry>),
}

struct FaultSlot {
    fault: Fault,
    remaining: Option<u64>,
}

struct State {
    source: Source,
    faults: HashMap<Scope, FaultSlot>,
    stats: Stats,
}

struct Shared {
    state: Mutex<State>,
    stop: AtomicBool,
    tls: Option<Arc<rustls::ServerConfig>>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking test thread must not make every later request fail.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running test server; it stops (and joins its accept thread) on drop.
pub struct TestServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for TestServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestServer")
            .field("addr", &self.addr)
            .finish()
    }
}

/// Limit on a request head, so a broken client cannot make the server buffer forever.
const MAX_REQUEST_HEAD: usize = 64 * 1024;

impl TestServer {
    /// Starts a server with an empty in-memory file map (fill it with [`put`](Self::put)).
    ///
    /// # Panics
    /// When no loopback port can be bound (test support: failing loudly is right).
    pub fn start() -> TestServer {
        Self::start_with(Source::Map(HashMap::new()), None)
    }

    /// [`start`](Self::start) over HTTPS, presenting `cert` (e.g.
    /// [`crate::tls::TestPki::server`]).
    ///
    /// # Panics
    /// When no loopback port can be bound or rustls refuses the certificate.
    #[allow(clippy::expect_used)]
    pub fn start_tls(cert: &crate::tls::ServerCert) -> TestServer {
        let config = cert.server_config().expect("TLS configuration");
        Self::start_with(Source::Map(HashMap::new()), Some(config))
    }

    /// [`start_dir`](Self::start_dir) over HTTPS, presenting `cert`.
    ///
    /// # Panics
    /// When no loopback port can be bound or rustls refuses the certificate.
    #[allow(clippy::expect_used)]
    pub fn start_dir_tls(root: impl Into<PathBuf>, cert: &crate::tls::ServerCert) -> TestServer {
        let config = cert.server_config().expect("TLS configuration");
        Self::start_with(Source::Dir(root.into()), Some(config))
    }

    /// Starts a server serving the files directly under `root`.
    ///
    /// # Panics
    /// When no loopback port can be bound.
    pub fn start_dir(root: impl Into<PathBuf>) -> TestServer {
        Self::start_with(Source::Dir(root.into()), None)
    }

    #[allow(clippy::expect_used)]
    fn start_with(source: Source, tls: Option<Arc<rustls::ServerConfig>>) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local_addr");
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                source,
                faults: HashMap::new(),
                stats: Stats::default(),
            }),
            stop: AtomicBool::new(false),
            tls,
        });
        let s2 = Arc::clone(&shared);
        let accept = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s2.stop.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = conn {
                    let s3 = Arc::clone(&s2);
                    std::thread::spawn(move || handle_connection(stream, &s3));
                }
            }
        });
        TestServer {
            addr,
            shared,
            accept: Some(accept),
        }
    }

    /// The server's socket address (always on `127.0.0.1`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `https` when the server speaks TLS, else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.shared.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// The base URL, `http://127.0.0.1:<port>` (`https://` in HTTPS mode; no trailing
    /// slash).
    pub fn base_url(&self) -> String {
        format!("{}://{}", self.scheme(), self.addr)
    }

    /// The base URL naming the server as `host` instead of its address, e.g.
    /// `https://localhost:<port>` (the name a certificate is checked against).
    pub fn base_url_as(&self, host: &str) -> String {
        format!("{}://{host}:{}", self.scheme(), self.addr.port())
    }

    /// The URL of `path` on this server (`path` with or without a leading `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url(), normalize(path))
    }

    /// Adds or replaces an in-memory file, with `Last-Modified` = now (whole seconds).
    /// In directory mode the file is written under the root instead.
    pub fn put(&self, path: &str, body: Vec<u8>) {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        self.put_modified(path, body, UNIX_EPOCH + Duration::from_secs(secs));
    }

    /// Adds or replaces a file with an explicit `Last-Modified` time.
    ///
    /// # Panics
    /// In directory mode, when the file cannot be written.
    #[allow(clippy::expect_used)]
    pub fn put_modified(&self, path: &str, body: Vec<u8>, modified: SystemTime) {
        let path = normalize(path);
        let mut st = self.shared.lock();
        match &mut st.source {
            Source::Map(m) => {
                m.insert(path, Entry { body, modified });
            }
            Source::Dir(root) => {
                let file = root.join(path.trim_start_matches('/'));
                std::fs::write(&file, body).expect("write test file");
                let f = std::fs::File::options()
                    .write(true)
                    .open(&file)
                    .expect("open test file");
                f.set_modified(modified).expect("set mtime");
            }
        }
    }

    /// Removes a file (later requests get `404`).
    pub fn remove(&self, path: &str) {
        let path = normalize(path);
        let mut st = self.shared.lock();
        match &mut st.source {
            Source::Map(m) => {
                m.remove(&path);
            }
            Source::Dir(root) => {
                let _ = std::fs::remove_file(root.join(path.trim_start_matches('/')));
            }
        }
    }

    /// Injects `fault` for every later request in `scope`, until cleared.
    pub fn set_fault(&self, scope: Scope, fault: Fault) {
        self.shared.lock().faults.insert(
            scope,
            FaultSlot {
                fault,
                remaining: None,
            },
        );
    }

    /// Injects `fault` for the next `times` requests in `scope` only.
    pub fn set_fault_times(&self, scope: Scope, fault: Fault, times: u64) {
        self.shared.lock().faults.insert(
            scope,
            FaultSlot {
                fault,
                remaining: Some(times),
            },
        );
    }

    /// Removes the fault for `scope`.
    pub fn clear_fault(&self, scope: &Scope) {
        self.shared.lock().faults.remove(scope);
    }

    /// Removes every fault.
    pub fn clear_faults(&self) {
        self.shared.lock().faults.clear();
    }

    /// A snapshot of the counters and request log.
    pub fn stats(&self) -> Stats {
        self.shared.lock().stats.clone()
    }

    /// Zeroes the counters and clears the request log.
    pub fn reset_stats(&self) {
        self.shared.lock().stats = Stats::default();
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the stop flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

fn normalize(path: &str) -> String {
    if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    }
}

struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    proxied: Option<String>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn read_request(stream: &mut Conn) -> Option<Request> {
    let mut reader = BufReader::new(Read::by_ref(stream).take(MAX_REQUEST_HEAD as u64));
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let mut target = parts.next()?;
    let mut proxied = None;
    if let Some(rest) = target
        .strip_prefix("http://")
        .or_else(|| target.strip_prefix("https://"))
    {
        let end = rest.find('/').unwrap_or(rest.len());
        proxied = Some(rest[..end].to_string());
        target = if end == rest.len() { "/" } else { &rest[end..] };
    }
    let path = target.split('?').next().unwrap_or("/").to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).ok()? == 0 {
            return None;
        }
        let h = h.trim_end_matches(['\r', '\n']);
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    Some(Request {
        method,
        path,
        headers,
        proxied,
    })
}

fn etag_of(body: &[u8]) -> String {
    // FNV-1a: cheap, deterministic, content-derived.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in body {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("\"{h:016x}-{}\"", body.len())
}

fn lookup(state: &State, path: &str) -> Option<Entry> {
    match &state.source {
        Source::Map(m) => m.get(path).cloned(),
        Source::Dir(root) => {
            let name = path.strip_prefix('/')?;
            if name.is_empty() || name.contains('/') || name.contains('\\') || name == ".." {
                return None;
            }
            let file: &Path = &root.join(name);
            let body = std::fs::read(file).ok()?;
            let modified = std::fs::metadata(file)
                .and_then(|m| m.modified())
                .unwrap_or(UNIX_EPOCH);
            // HTTP dates have whole seconds.
            let secs = modified
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            Some(Entry {
                body,
                modified: UNIX_EPOCH + Duration::from_secs(secs),
            })
        }
    }
}

fn take_fault(state: &mut State, path: &str) -> Option<Fault> {
    for scope in [Scope::Path(path.to_string()), Scope::All] {
        let Some(slot) = state.faults.get_mut(&scope) else {
            continue;
        };
        let fault = slot.fault.clone();
        match &mut slot.remaining {
            None => {}
            Some(0) => {
                state.faults.remove(&scope);
                continue;
            }
            Some(n) => {
                *n -= 1;
                if *n == 0 {
                    state.faults.remove(&scope);
                }
            }
        }
        return Some(fault);
    }
    None
}

/// Parses `bytes=a-b` against a body length into an inclusive range; `Err(())` = 416.
#[allow(clippy::result_unit_err)]
fn parse_range(value: &str, len: u64) -> Option<Result<(u64, u64), ()>> {
    let spec = value.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None; // multi-range: ignore, serve 200
    }
    let (a, b) = spec.split_once('-')?;
    let (a, b) = (a.trim(), b.trim());
    let r = if a.is_empty() {
        let n: u64 = b.parse().ok()?;
        if n == 0 || len == 0 {
            return Some(Err(()));
        }
        (len.saturating_sub(n), len - 1)
    } else {
        let start: u64 = a.parse().ok()?;
        let end: u64 = if b.is_empty() {
            len.saturating_sub(1)
        } else {
            b.parse::<u64>().ok()?.min(len.saturating_sub(1))
        };
        if start >= len || end < start {
            return Some(Err(()));
        }
        (start, end)
    };
    Some(Ok(r))
}

struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Overrides the `Content-Length` header.
    content_length: Option<u64>,
    /// Send only this many body bytes, then close.
    drop_after: Option<u64>,
    slow: Option<(usize, Duration)>,
    hang: bool,
    no_length: bool,
    endless: bool,
}

impl Response {
    fn new(status: u16, body: Vec<u8>) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body,
            content_length: None,
            drop_after: None,
            slow: None,
            hang: false,
            no_length: false,
            endless: false,
        }
    }
    fn header(mut self, k: &str, v: impl Into<String>) -> Response {
        self.headers.push((k.to_string(), v.into()));
        self
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        206 => "Partial Content",
        302 => "Found",
        304 => "Not Modified",
        404 => "Not Found",
        416 => "Range Not Satisfiable",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

fn build_response(req: &Request, entry: Option<Entry>, fault: Option<Fault>) -> Response {
    let mut ignore_range = false;
    let mut ignore_cond = false;
    let mut entry = entry;
    let mut post: Option<Fault> = None;
    match fault {
        Some(Fault::Status(s)) => return Response::new(s, format!("status {s}\n").into_bytes()),
        Some(Fault::RateLimit(ra)) => {
            let r = Response::new(429, b"slow down\n".to_vec());
            return match ra {
                Some(v) => r.header("Retry-After", v.header_value()),
                None => r,
            };
        }
        Some(Fault::Unavailable(ra)) => {
            let r = Response::new(503, b"unavailable\n".to_vec());
            return match ra {
                Some(v) => r.header("Retry-After", v.header_value()),
                None => r,
            };
        }
        Some(Fault::Redirect(to)) => {
            return Response::new(302, Vec::new()).header("Location", to);
        }
        Some(Fault::Hang) => {
            let mut r = Response::new(200, Vec::new());
            r.hang = true;
            return r;
        }
        Some(Fault::EndlessBody) => {
            let mut r = Response::new(200, Vec::new());
            r.endless = true;
            r.no_length = true;
            return r;
        }
        Some(Fault::IgnoreRange) => ignore_range = true,
        Some(Fault::IgnoreConditional) => ignore_cond = true,
        Some(Fault::Oversized(n)) => {
            let modified = entry.as_ref().map(|e| e.modified).unwrap_or(UNIX_EPOCH);
            entry = Some(Entry {
                body: vec![b'x'; usize::try_from(n).unwrap_or(usize::MAX)],
                modified,
            });
            ignore_range = true;
            ignore_cond = true;
        }
        Some(Fault::Content(bytes)) => {
            let modified = entry.as_ref().map(|e| e.modified).unwrap_or(UNIX_EPOCH);
            entry = Some(Entry {
                body: bytes,
                modified,
            });
        }
        Some(
            f @ (Fault::DropAfter(_)
            | Fault::Slow { .. }
            | Fault::ContentLength(_)
            | Fault::NoContentLength),
        ) => post = Some(f),
        None => {}
    }
    let Some(entry) = entry else {
        return Response::new(404, b"not found\n".to_vec());
    };
    let etag = etag_of(&entry.body);
    let last_modified = httpdate::fmt_http_date(entry.modified);
    let len = entry.body.len() as u64;

    let mut resp = if !ignore_cond && not_modified(req, &etag, entry.modified) {
        Response::new(304, Vec::new())
    } else {
        let range = if ignore_range {
            None
        } else {
            req.header("range").and_then(|r| {
                if let Some(ir) = req.header("if-range") {
                    let ok = if ir.starts_with('"') {
                        ir == etag
                    } else {
                        httpdate::parse_http_date(ir).ok() == Some(entry.modified)
                    };
                    if !ok {
                        return None;
                    }
                }
                parse_range(r, len)
            })
        };
        match range {
            None => Response::new(200, entry.body),
            Some(Err(())) => {
                Response::new(416, Vec::new()).header("Content-Range", format!("bytes */{len}"))
            }
            Some(Ok((a, b))) => {
                let (a, b) = (a as usize, b as usize);
                Response::new(206, entry.body[a..=b].to_vec())
                    .header("Content-Range", format!("bytes {a}-{b}/{len}"))
            }
        }
    };
    resp = resp
        .header("ETag", etag)
        .header("Last-Modified", last_modified);
    if !ignore_range {
        resp = resp.header("Accept-Ranges", "bytes");
    }
    match post {
        Some(Fault::DropAfter(n)) => resp.drop_after = Some(n),
        Some(Fault::Slow { chunk, delay }) => resp.slow = Some((chunk.max(1), delay)),
        Some(Fault::ContentLength(n)) => resp.content_length = Some(n),
        Some(Fault::NoContentLength) => resp.no_length = true,
        _ => {}
    }
    resp
}

fn not_modified(req: &Request, etag: &str, modified: SystemTime) -> bool {
    if let Some(inm) = req.header("if-none-match") {
        return inm.split(',').any(|t| {
            let t = t.trim();
            t == "*" || t.trim_start_matches("W/") == etag
        });
    }
    if let Some(ims) = req.header("if-modified-since")
        && let Ok(t) = httpdate::parse_http_date(ims)
    {
        return modified <= t;
    }
    false
}

fn add_body_bytes(shared: &Shared, path: &str, n: u64, add: bool) {
    let mut st = shared.lock();
    let e = st.stats.body_bytes.entry(path.to_string()).or_insert(0);
    *e = if add { *e + n } else { e.saturating_sub(n) };
}

/// One accepted connection, plain or TLS.
enum Conn {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ServerConnection, TcpStream>>),
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf),
            Conn::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Conn::Plain(s) => s.write(buf),
            Conn::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Conn::Plain(s) => s.flush(),
            Conn::Tls(s) => s.flush(),
        }
    }
}

impl Conn {
    /// Ends the response: TLS `close_notify`, then a TCP shutdown.
    fn finish(&mut self) {
        let tcp = match self {
            Conn::Plain(s) => s,
            Conn::Tls(s) => {
                s.conn.send_close_notify();
                let _ = s.flush();
                &mut s.sock
            }
        };
        let _ = tcp.flush();
        let _ = tcp.shutdown(Shutdown::Both);
    }
}

/// Wraps an accepted socket: as is, or after a complete TLS handshake (a failed one
/// is recorded in the stats and ends the connection).
fn accept_conn(tcp: TcpStream, shared: &Shared) -> Option<Conn> {
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(30)));
    let _ = tcp.set_write_timeout(Some(Duration::from_secs(30)));
    let Some(config) = &shared.tls else {
        return Some(Conn::Plain(tcp));
    };
    let mut tcp = tcp;
    let mut conn = match rustls::ServerConnection::new(Arc::clone(config)) {
        Ok(c) => c,
        Err(e) => {
            shared.lock().stats.tls_failures.push(e.to_string());
            return None;
        }
    };
    while conn.is_handshaking() {
        if let Err(e) = conn.complete_io(&mut tcp) {
            // rustls reports a peer's alert as an InvalidData error wrapping its own
            let text = e
                .get_ref()
                .map_or_else(|| e.to_string(), ToString::to_string);
            shared.lock().stats.tls_failures.push(text);
            return None;
        }
    }
    Some(Conn::Tls(Box::new(rustls::StreamOwned::new(conn, tcp))))
}

fn handle_connection(tcp: TcpStream, shared: &Shared) {
    let Some(mut stream) = accept_conn(tcp, shared) else {
        return;
    };
    let Some(mut req) = read_request(&mut stream) else {
        return;
    };
    if req.method.eq_ignore_ascii_case("CONNECT") {
        // Act as an HTTP proxy: accept the tunnel, then serve the tunnelled request
        // ourselves (whatever host it was meant for).
        shared.lock().stats.log.push(RequestRecord {
            method: req.method.clone(),
            path: req.path.clone(),
            headers: req.headers.clone(),
            status: 200,
            proxied: None,
        });
        if stream
            .write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
            .is_err()
        {
            return;
        }
        let Some(inner) = read_request(&mut stream) else {
            return;
        };
        req = inner;
    }
    let resp = {
        let mut st = shared.lock();
        let fault = take_fault(&mut st, &req.path);
        let entry = lookup(&st, &req.path);
        let resp = build_response(&req, entry, fault);
        *st.stats.requests.entry(req.path.clone()).or_insert(0) += 1;
        st.stats.log.push(RequestRecord {
            method: req.method.clone(),
            path: req.path.clone(),
            headers: req.headers.clone(),
            status: if resp.hang { 0 } else { resp.status },
            proxied: req.proxied.clone(),
        });
        resp
    };
    if resp.hang {
        // The fault itself: hold the connection, answering nothing, until the server
        // stops (no state is read after this sleep).
        while !shared.stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(20));
        }
        return;
    }
    let is_head = req.method.eq_ignore_ascii_case("HEAD");
    let body_len = resp.body.len() as u64;
    let mut head = format!("HTTP/1.1 {} {}\r\n", resp.status, reason(resp.status));
    for (k, v) in &resp.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if resp.status != 304 && !resp.no_length {
        let cl = resp.content_length.unwrap_or(body_len);
        head.push_str(&format!("Content-Length: {cl}\r\n"));
    }
    head.push_str("Connection: close\r\n\r\n");
    if stream.write_all(head.as_bytes()).is_err() {
        return;
    }
    if is_head || resp.status == 304 {
        stream.finish();
        return;
    }
    // Bytes are counted *before* they are handed to the socket (and uncounted if the
    // write fails), so a client that has received them always sees them in `stats()`.
    let mut send_chunk = |c: &[u8]| -> bool {
        add_body_bytes(shared, &req.path, c.len() as u64, true);
        if stream.write_all(c).is_err() {
            add_body_bytes(shared, &req.path, c.len() as u64, false);
            return false;
        }
        true
    };
    if resp.endless {
        let chunk = [b'x'; 16 * 1024];
        loop {
            if shared.stop.load(Ordering::SeqCst) || !send_chunk(&chunk) {
                break;
            }
        }
        return;
    }
    let send = match resp.drop_after {
        Some(n) => n.min(body_len) as usize,
        None => resp.body.len(),
    };
    let body = &resp.body[..send];
    match resp.slow {
        Some((chunk, delay)) => {
            for c in body.chunks(chunk) {
                // The fault itself: a slow server.
                std::thread::sleep(delay);
                if !send_chunk(c) || shared.stop.load(Ordering::SeqCst) {
                    break;
                }
            }
        }
        None => {
            for c in body.chunks(64 * 1024) {
                if !send_chunk(c) {
                    break;
                }
            }
        }
    }
    stream.finish();
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a panic is a failure report
mod tests {
    use super::*;

    fn get(server: &TestServer, path: &str, extra: &str) -> String {
        let mut s = crate::net::connect(server.addr()).unwrap();
        write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n{extra}\r\n").unwrap();
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    }

    #[test]
    fn serves_ranges_conditionals_and_faults() {
        let server = TestServer::start();
        server.put("/a", b"0123456789".to_vec());
        let full = get(&server, "/a", "");
        assert!(full.starts_with("HTTP/1.1 200"));
        assert!(full.ends_with("0123456789"));
        let part = get(&server, "/a", "Range: bytes=2-4\r\n");
        assert!(part.starts_with("HTTP/1.1 206"));
        assert!(part.contains("Content-Range: bytes 2-4/10"));
        assert!(part.ends_with("234"));
        let etag = etag_of(b"0123456789");
        let nm = get(&server, "/a", &format!("If-None-Match: {etag}\r\n"));
        assert!(nm.starts_with("HTTP/1.1 304"));
        let bad = get(&server, "/a", "Range: bytes=20-\r\n");
        assert!(bad.starts_with("HTTP/1.1 416"));
        server.set_fault_times(Scope::path("/a"), Fault::Status(500), 1);
        assert!(get(&server, "/a", "").starts_with("HTTP/1.1 500"));
        assert!(get(&server, "/a", "").starts_with("HTTP/1.1 200"));
        server.set_fault(Scope::All, Fault::RateLimit(Some(RetryAfter::Seconds(7))));
        let rl = get(&server, "/a", "");
        assert!(rl.starts_with("HTTP/1.1 429"));
        assert!(rl.contains("Retry-After: 7"));
        server.clear_faults();
        server.set_fault(Scope::path("/a"), Fault::DropAfter(3));
        let dropped = get(&server, "/a", "");
        assert!(dropped.contains("Content-Length: 10"));
        assert!(dropped.ends_with("\r\n\r\n012"));
        assert_eq!(get(&server, "/missing", "").get(..12), Some("HTTP/1.1 404"));
        let st = server.stats();
        assert_eq!(st.requests("/a"), 8);
        // full + range + "status 500\n" + full + "slow down\n" + dropped (304/416: none)
        assert_eq!(st.body_bytes("/a"), 10 + 3 + 11 + 10 + 10 + 3);
    }

    #[test]
    fn if_range_mismatch_serves_whole_file() {
        let server = TestServer::start();
        server.put("/a", b"abcdef".to_vec());
        let r = get(&server, "/a", "Range: bytes=2-\r\nIf-Range: \"other\"\r\n");
        assert!(r.starts_with("HTTP/1.1 200"));
        assert!(r.ends_with("abcdef"));
    }

    /// A GET over TLS trusting `ca`, naming the server `name`: the response, or the
    /// client's error.
    fn get_tls(server: &TestServer, ca: &crate::tls::Ca, name: &str) -> Result<String, String> {
        let conn = rustls::ClientConnection::new(
            ca.client_config().unwrap(),
            rustls::pki_types::ServerName::try_from(name.to_owned()).unwrap(),
        )
        .unwrap();
        let tcp = crate::net::connect(server.addr()).unwrap();
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        write!(tls, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n").map_err(|e| e.to_string())?;
        let mut out = String::new();
        tls.read_to_string(&mut out).map_err(|e| e.to_string())?;
        Ok(out)
    }

    #[test]
    fn https_mode_serves_with_the_private_ca_and_records_refusals() {
        let dir = std::env::temp_dir().join(format!("testkit-https-{}", std::process::id()));
        let pki = crate::tls::TestPki::new(&dir).unwrap();
        let server = TestServer::start_tls(&pki.server);
        server.put("/a", b"over tls".to_vec());
        assert!(server.base_url().starts_with("https://127.0.0.1:"));
        assert_eq!(
            server.base_url_as("localhost"),
            format!("https://localhost:{}", server.addr().port())
        );
        for name in ["localhost", "127.0.0.1"] {
            let ok = get_tls(&server, &pki.ca, name).unwrap();
            assert!(
                ok.starts_with("HTTP/1.1 200") && ok.ends_with("over tls"),
                "{ok}"
            );
        }
        assert!(server.stats().tls_failures().is_empty());
        // a client trusting another CA refuses the certificate, and the server sees why
        let err = get_tls(&server, &pki.other_ca, "localhost").unwrap_err();
        assert!(err.contains("UnknownIssuer"), "{err}");
        // a name the certificate does not carry
        let wrong = TestServer::start_tls(&pki.wrong_name);
        wrong.put("/a", b"x".to_vec());
        let err = get_tls(&wrong, &pki.ca, "localhost").unwrap_err();
        assert!(err.contains("not valid for name"), "{err}");
        let got = crate::wait::until_some("the refused handshake", Duration::from_secs(10), || {
            let f = server.stats().tls_failures().to_vec();
            (!f.is_empty()).then_some(f)
        });
        assert!(got[0].contains("UnknownCA"), "{got:?}");
        assert_eq!(server.stats().requests("/a"), 2);
        drop(server);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn serves_a_directory() {
        let dir = std::env::temp_dir().join(format!("testkit-http-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("f.txt"), b"file").unwrap();
        let server = TestServer::start_dir(&dir);
        assert!(get(&server, "/f.txt", "").ends_with("file"));
        assert!(get(&server, "/../f.txt", "").starts_with("HTTP/1.1 404"));
        drop(server);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
