//! Request handling: routing, the file response (validators, conditionals, ranges),
//! the operations endpoints and the access log.

use std::convert::Infallible;
use std::fs::File;
use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode, Version};

use crate::body::ServeBody;
use crate::cache::{Cached, FileCache, FileId};
use crate::config::Config;
use crate::metrics::{Metrics, RequestKind};
use crate::names::{self, FileKind, PathError};
use crate::range::{self, RangeOutcome};
use crate::ratelimit::RateLimiter;
use crate::ready;
use crate::sendfile::SendQueue;
use crate::validators::Validators;

/// Name of the symlink to the published generation (`ARCHITECTURE.md`).
pub const CURRENT: &str = mirror_core::layout::CURRENT;

/// `Cache-Control` for files that never change under their name.
pub const CACHE_IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// `Cache-Control` for files replaced by every publish (`<db>.cvd`, `dns.txt`).
pub const CACHE_MUTABLE: &str = "public, max-age=60, must-revalidate";
/// `Cache-Control` for the operations endpoints and error responses.
pub const CACHE_NONE: &str = "no-store";

/// O_NONBLOCK: opening a FIFO planted under a mirror name must not block a runtime
/// thread; the flag has no effect on regular files (the only kind served).
#[cfg(all(
    target_os = "linux",
    any(
        target_arch = "x86_64",
        target_arch = "x86",
        target_arch = "aarch64",
        target_arch = "arm",
        target_arch = "riscv64"
    )
))]
const OPEN_FLAGS: i32 = 0o4000;
#[cfg(not(all(
    target_os = "linux",
    any(
        target_arch = "x86_64",
        target_arch = "x86",
        target_arch = "aarch64",
        target_arch = "arm",
        target_arch = "riscv64"
    )
)))]
const OPEN_FLAGS: i32 = 0;

/// Smallest body sent with `sendfile` (smaller: from the small-file cache, written
/// together with the head in one `writev`).
pub(crate) const SENDFILE_MIN: u64 = 16 * 1024;

/// Shared, read-only server state (plus atomics).
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) dir: PathBuf,
    pub(crate) current: PathBuf,
    pub(crate) metrics: Metrics,
    pub(crate) rate: Option<RateLimiter>,
    pub(crate) access_log: bool,
    pub(crate) chunk: usize,
    pub(crate) ready_max_age: Duration,
    pub(crate) cache: FileCache,
    /// Send file bodies with `sendfile` on plain-TCP HTTP/1 connections.
    pub(crate) sendfile: bool,
}

impl State {
    pub(crate) fn new(cfg: &Config) -> Self {
        State {
            dir: cfg.dir.clone(),
            current: cfg.dir.join(CURRENT),
            metrics: Metrics::default(),
            rate: cfg.rate_limit.map(|(r, b)| RateLimiter::new(r, b)),
            access_log: cfg.access_log,
            chunk: cfg.chunk_bytes,
            ready_max_age: cfg.ready_max_age,
            cache: FileCache::new(cfg.cache_bytes, cfg.cache_max_file, cfg.workers),
            sendfile: cfg.sendfile,
        }
    }
}

/// One connection's context, shared by its requests and their bodies.
#[derive(Debug)]
pub(crate) struct ConnCtx {
    pub(crate) state: Arc<State>,
    pub(crate) peer: SocketAddr,
    /// The connection's `sendfile` queue (plain-TCP HTTP/1 only).
    pub(crate) sendfile: Option<Arc<SendQueue>>,
}

/// One access log line, emitted when the response body is dropped.
#[derive(Debug)]
pub(crate) struct AccessRecord {
    peer: SocketAddr,
    method: Method,
    path: String,
    status: u16,
    kind: RequestKind,
    start: Instant,
    user_agent: String,
    pub(crate) bytes_sent: u64,
}

impl AccessRecord {
    pub(crate) fn emit(self, complete: bool) {
        tracing::info!(
            target: "sigserver::access",
            remote = %self.peer,
            method = %self.method,
            path = %self.path,
            status = self.status,
            kind = self.kind.label(),
            bytes = self.bytes_sent,
            complete,
            duration_us = self.start.elapsed().as_micros() as u64,
            user_agent = %self.user_agent,
            "access"
        );
    }
}

/// Entry point for every request.
pub(crate) fn handle<B>(
    ctx: &Arc<ConnCtx>,
    req: &Request<B>,
) -> Result<Response<ServeBody>, Infallible> {
    let (state, peer, sendfile) = (&ctx.state, ctx.peer, ctx.sendfile.as_ref());
    let start = Instant::now();
    let (kind, resp) = route(state, peer, sendfile, req);
    let status = resp.status().as_u16();
    state.metrics.request(kind, status);
    let log = state.access_log.then(|| {
        let path = req.uri().path();
        let path = path
            .get(..path.len().min(names::MAX_PATH_LEN))
            .unwrap_or("-");
        Box::new(AccessRecord {
            peer,
            method: req.method().clone(),
            path: path.to_owned(),
            status,
            kind,
            start,
            user_agent: req
                .headers()
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(|s| s.chars().take(200).collect())
                .unwrap_or_default(),
            bytes_sent: 0,
        })
    });
    let (parts, body) = resp.into_parts();
    let body = body.accounted(ctx.clone(), kind, log);
    Ok(Response::from_parts(parts, body))
}

fn route<B>(
    state: &Arc<State>,
    peer: SocketAddr,
    sendfile: Option<&Arc<SendQueue>>,
    req: &Request<B>,
) -> (RequestKind, Response<ServeBody>) {
    let path = req.uri().path();
    let ops = match path {
        "/health" => Some(RequestKind::Health),
        "/ready" => Some(RequestKind::Ready),
        "/metrics" => Some(RequestKind::Metrics),
        _ => None,
    };
    let get_or_head = req.method() == Method::GET || req.method() == Method::HEAD;
    if !get_or_head {
        let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return (ops.unwrap_or(RequestKind::Other), r);
    }
    let head = req.method() == Method::HEAD;
    if let Some(kind) = ops {
        let mut r = match kind {
            RequestKind::Health => text(StatusCode::OK, "ok\n"),
            RequestKind::Ready => {
                match ready::check(&state.dir, &state.current, state.ready_max_age, unix_now()) {
                    Ok(msg) => text(StatusCode::OK, format!("{msg}\n")),
                    Err(msg) => text(StatusCode::SERVICE_UNAVAILABLE, format!("{msg}\n")),
                }
            }
            _ => {
                let status = mirror_core::status::MirrorStatus::load(&state.dir).ok();
                let mut r = text(
                    StatusCode::OK,
                    state.metrics.render(status.as_ref(), unix_now()),
                );
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
                );
                r
            }
        };
        if head {
            strip_body(&mut r);
        }
        return (kind, r);
    }
    if let Some(rl) = &state.rate
        && let Err(wait) = rl.check(peer.ip(), Instant::now())
    {
        state.metrics.rate_limited();
        let mut r = text(StatusCode::TOO_MANY_REQUESTS, "too many requests\n");
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        return (RequestKind::Other, r);
    }
    let name = match names::parse_request_path(path) {
        Ok(n) => n,
        Err(PathError::BadRequest(why)) => {
            return (
                RequestKind::Other,
                text(StatusCode::BAD_REQUEST, format!("bad request: {why}\n")),
            );
        }
        Err(_) => return (RequestKind::Other, not_found()),
    };
    let kind = RequestKind::File(name.kind());
    let resp = match open_in_snapshot(&state.dir, &state.current, name.name()) {
        Ok(Some((file, meta))) => {
            file_response(state, req, head, sendfile, name.kind(), file, &meta)
        }
        Ok(None) => not_found(),
        Err(e) => {
            tracing::error!(file = name.name(), error = %e, "cannot open file");
            text(StatusCode::INTERNAL_SERVER_ERROR, "internal error\n")
        }
    };
    (kind, resp)
}

/// Opens `name` in the published snapshot: `DIR/current/<name>` when `DIR/current`
/// exists, else `DIR/<name>` (a plain directory). The path is resolved once by the
/// `open` call; everything afterwards (metadata, body) comes from the descriptor, so
/// a concurrent snapshot switch or prune cannot mix two snapshots in one response.
/// `None` for anything that is not a regular file.
pub(crate) fn open_in_snapshot(
    dir: &Path,
    current: &Path,
    name: &str,
) -> io::Result<Option<(File, std::fs::Metadata)>> {
    let open = |p: PathBuf| {
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(OPEN_FLAGS)
            .open(p)
    };
    let missing = |e: &io::Error| {
        matches!(
            e.kind(),
            io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
        )
    };
    let file = match open(current.join(name)) {
        Ok(f) => f,
        Err(e) if missing(&e) => match std::fs::symlink_metadata(current) {
            Ok(_) => return Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => match open(dir.join(name)) {
                Ok(f) => f,
                Err(e) if missing(&e) => return Ok(None),
                Err(e) => return Err(e),
            },
            Err(e) => return Err(e),
        },
        Err(e) => return Err(e),
    };
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Ok(None);
    }
    Ok(Some((file, meta)))
}

fn file_response<B>(
    state: &State,
    req: &Request<B>,
    head: bool,
    sendfile: Option<&Arc<SendQueue>>,
    kind: FileKind,
    file: File,
    meta: &std::fs::Metadata,
) -> Response<ServeBody> {
    let len = meta.len();
    let v = Validators::new(meta.ino(), len, meta.modified().unwrap_or(UNIX_EPOCH));
    let h = req.headers();
    let mut resp = Response::new(ServeBody::empty());
    {
        let hm = resp.headers_mut();
        put(hm, header::ETAG, v.etag());
        put(hm, header::LAST_MODIFIED, v.last_modified());
        hm.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static(if kind.is_immutable() {
                CACHE_IMMUTABLE
            } else {
                CACHE_MUTABLE
            }),
        );
        hm.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    }
    let inm: Vec<&[u8]> = h
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .map(HeaderValue::as_bytes)
        .collect();
    let ims = h.get(header::IF_MODIFIED_SINCE).map(HeaderValue::as_bytes);
    if v.not_modified(&inm, ims) {
        *resp.status_mut() = StatusCode::NOT_MODIFIED;
        return resp;
    }
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(kind.content_type()),
    );
    // Range applies to GET only (RFC 9110 §14.2); a failed If-Range means "send it all".
    let outcome = match h.get(header::RANGE) {
        Some(r) if !head => {
            let applies = h
                .get(header::IF_RANGE)
                .is_none_or(|ir| v.if_range_matches(ir.as_bytes()));
            if applies {
                range::evaluate(r.as_bytes(), len)
            } else {
                RangeOutcome::Full
            }
        }
        _ => RangeOutcome::Full,
    };
    let (start, count) = match outcome {
        RangeOutcome::Full => (0, len),
        RangeOutcome::Partial { start, end } => {
            *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
            put(
                resp.headers_mut(),
                header::CONTENT_RANGE,
                &format!("bytes {start}-{end}/{len}"),
            );
            (start, end - start + 1)
        }
        RangeOutcome::Unsatisfiable => {
            *resp.status_mut() = StatusCode::RANGE_NOT_SATISFIABLE;
            let hm = resp.headers_mut();
            put(hm, header::CONTENT_RANGE, &format!("bytes */{len}"));
            hm.insert(header::CONTENT_LENGTH, HeaderValue::from(0u64));
            return resp;
        }
    };
    resp.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(count));
    if !head {
        // HTTP/1 on plain TCP: bodies from SENDFILE_MIN bytes up go out with `sendfile`
        // (no copy through user space); smaller ones in one `writev` with the head.
        let v = req.version();
        if let Some(q) = sendfile
            && count >= SENDFILE_MIN
            && (v == Version::HTTP_11 || v == Version::HTTP_10)
        {
            *resp.body_mut() = ServeBody::sendfile(file, start, count, q.clone());
            return resp;
        }
        let body = match state.cache.get_or_load(FileId::of(meta), &file) {
            Ok(Cached::Hit(b)) => {
                state.metrics.cache(true);
                ServeBody::bytes(b.slice(start as usize..(start + count) as usize))
            }
            Ok(Cached::Loaded(b)) => {
                state.metrics.cache(false);
                ServeBody::bytes(b.slice(start as usize..(start + count) as usize))
            }
            Ok(Cached::Skip) => ServeBody::file(file, start, count, state.chunk),
            Err(e) => {
                tracing::error!(error = %e, "cannot read file");
                return text(StatusCode::INTERNAL_SERVER_ERROR, "internal error\n");
            }
        };
        *resp.body_mut() = body;
    }
    resp
}

fn put(h: &mut HeaderMap, name: header::HeaderName, v: &str) {
    if let Ok(v) = HeaderValue::from_str(v) {
        h.insert(name, v);
    }
}

fn text(status: StatusCode, body: impl Into<String>) -> Response<ServeBody> {
    let body = body.into();
    let mut r = Response::new(ServeBody::empty());
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(CACHE_NONE));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    *r.body_mut() = ServeBody::bytes(body);
    r
}

fn strip_body(r: &mut Response<ServeBody>) {
    *r.body_mut() = ServeBody::empty();
}

fn not_found() -> Response<ServeBody> {
    text(StatusCode::NOT_FOUND, "not found\n")
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
