//! Request handling: routing, the file response (validators, conditionals, ranges),
//! the operations endpoints and the access log.

use std::net::SocketAddr;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use hyper::StatusCode;

use crate::cache::{Cached, FileCache, FileId};
use crate::config::Config;
use crate::metrics::{Metrics, RequestKind};
use crate::names::{self, FileKind, PathError};
use crate::open_files::{self, Opened};
use crate::range::{self, RangeOutcome};
use crate::ready;
use crate::request::{ContentRange, Method, Reply, ReplyBody, RequestHead};
use crate::validators::Validators;
use rate_limit::{ClientKey, RateLimiter};

/// Name of the symlink to the published generation (`ARCHITECTURE.md`).
pub const CURRENT: &str = mirror_core::layout::CURRENT;

/// `Cache-Control` for files that never change under their name.
pub const CACHE_IMMUTABLE: &str = mirror_core::model::CACHE_IMMUTABLE;
/// `Cache-Control` for files replaced by every publish (`<db>.cvd`, `dns.txt`).
pub const CACHE_MUTABLE: &str = mirror_core::model::CACHE_MUTABLE;
/// `Cache-Control` for the operations endpoints and error responses.
pub const CACHE_NONE: &str = "no-store";

/// Smallest body sent with `sendfile` (smaller: from the small-file cache, written
/// together with the head in one `writev`).
pub(crate) const SENDFILE_MIN: u64 = 16 * 1024;

/// Shared, read-only server state (plus atomics).
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) dir: PathBuf,
    pub(crate) current: PathBuf,
    pub(crate) metrics: Metrics,
    /// The per-client limiter (IPv4 address, IPv6 /64); consulted only while
    /// `rate_on` (both change on reload).
    pub(crate) rate: RateLimiter,
    pub(crate) rate_on: AtomicBool,
    /// Changed on reload ([`crate::Reloader`]); read with `Relaxed` loads only, so the
    /// request path writes nothing shared.
    pub(crate) access_log: AtomicBool,
    pub(crate) chunk: usize,
    /// Seconds; changed on reload.
    pub(crate) ready_max_age: AtomicU64,
    pub(crate) cache: FileCache,
    /// See [`crate::config::ConfigBuilder::ready_lag`].
    pub(crate) ready_lag: Duration,
    /// The in-process sync loop's push hub, when `/push` is served here.
    pub(crate) push: Option<std::sync::Arc<push::PushHub>>,
    /// `--behind-redirect`: where requests for what this mirror lacks go while it is
    /// provably behind.
    pub(crate) redirect: Option<crate::behind::Redirect>,
    /// What `/status` shows beyond the mirror directory.
    pub(crate) status_info: crate::status_page::StatusInfo,
    /// `/status*` only on the admin listeners.
    pub(crate) status_admin_only: bool,
    /// The downstream poller's cache (`None`: no downstreams).
    pub(crate) network: Option<std::sync::Arc<crate::network_view::NetworkView>>,
    /// The last `/status` document and when it was made (see `status_page::route`).
    pub(crate) status_cache: std::sync::Mutex<Option<(Instant, crate::status_page::StatusDoc)>>,
    /// The feeds listing of the generation `current` pointed at last (read once per
    /// generation, see [`feed_listing`]).
    pub(crate) feeds: std::sync::Mutex<Option<(PathBuf, FeedsOf)>>,
}

/// A generation's feeds listing (`None`: it has none).
type FeedsOf = Option<std::sync::Arc<mirror_core::feed_listing::FeedListing>>;

impl State {
    pub(crate) fn new(cfg: &Config) -> Self {
        State {
            dir: cfg.dir.clone(),
            current: cfg.dir.join(CURRENT),
            metrics: Metrics::default(),
            rate: cfg
                .rate_limit
                .map_or_else(|| RateLimiter::new(1.0, 1), |(r, b)| RateLimiter::new(r, b)),
            rate_on: AtomicBool::new(cfg.rate_limit.is_some()),
            access_log: AtomicBool::new(cfg.access_log),
            chunk: cfg.chunk_bytes,
            ready_max_age: AtomicU64::new(cfg.ready_max_age.as_secs()),
            cache: FileCache::new(cfg.cache_bytes, cfg.cache_max_file, cfg.workers),
            ready_lag: cfg.ready_lag,
            push: cfg.push.clone(),
            redirect: cfg.behind_redirect.as_deref().map(|u| {
                let r = crate::behind::Redirect::new(&cfg.dir, u);
                // the state at start: logged and recorded (`DIR/redirect.json`)
                let _ = r.behind(&cfg.dir, cfg.ready_lag);
                r
            }),
            status_info: crate::status_page::StatusInfo {
                name: cfg.status_name.clone(),
                upstreams: cfg.status_upstreams.clone(),
                version_source: cfg.status_version_source.clone(),
            },
            status_admin_only: cfg.status_admin_only,
            status_cache: std::sync::Mutex::new(None),
            feeds: std::sync::Mutex::new(None),
            network: crate::network_view::NetworkView::spawn(
                &cfg.network_downstreams,
                cfg.network_poll,
                &cfg.network_http,
            ),
        }
    }
}

impl State {
    /// Whether the access log is on (changes on reload).
    pub(crate) fn access_log(&self) -> bool {
        self.access_log.load(Ordering::Relaxed)
    }
}

/// One access log line, emitted once the response is finished (or abandoned).
#[derive(Debug)]
pub(crate) struct AccessRecord {
    peer: SocketAddr,
    method: String,
    path: String,
    status: u16,
    kind: RequestKind,
    start: Instant,
    user_agent: String,
    pub(crate) bytes_sent: u64,
}

impl AccessRecord {
    /// A record for `reply` to `req`, when the access log is on.
    pub(crate) fn new(
        state: &State,
        peer: SocketAddr,
        req: &RequestHead<'_>,
        reply: &Reply,
        start: Instant,
    ) -> Option<Box<AccessRecord>> {
        if !state.access_log() {
            return None;
        }
        let clip = |s: &str, n: usize| s.get(..s.len().min(n)).unwrap_or("-").to_owned();
        Some(Box::new(AccessRecord {
            peer,
            method: clip(req.method_text, 16),
            path: clip(req.path, names::MAX_PATH_LEN),
            status: reply.status.as_u16(),
            kind: reply.kind,
            start,
            user_agent: req
                .user_agent
                .map(|v| String::from_utf8_lossy(v).chars().take(200).collect())
                .unwrap_or_default(),
            bytes_sent: 0,
        }))
    }

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

/// Entry point for every request: the reply, counted in the request metrics.
/// `sendfile`: the connection sends file bodies with `sendfile` (large bodies are then
/// not taken from the small-file cache).
pub(crate) fn handle(
    state: &State,
    peer: SocketAddr,
    req: &RequestHead<'_>,
    sendfile: bool,
) -> Reply {
    handle_on(state, peer, req, sendfile, false)
}

/// [`handle`] for a request that came on an admin listener (`admin`): only the
/// operations endpoints are served there.
pub(crate) fn handle_on(
    state: &State,
    peer: SocketAddr,
    req: &RequestHead<'_>,
    sendfile: bool,
    admin: bool,
) -> Reply {
    let reply = match crate::status_page::route(state, req, admin) {
        Some(r) => r,
        None if admin && !matches!(req.path, "/health" | "/ready" | "/metrics" | "/trace") => {
            not_found(RequestKind::Other)
        }
        None => route(state, peer, req, sendfile),
    };
    state.metrics.request(reply.kind, reply.status.as_u16());
    reply
}

/// A reply produced by the protocol layer itself (malformed or oversized request
/// head), counted in the request metrics like any other.
pub(crate) fn protocol_error(state: &State, status: StatusCode, msg: &str) -> Reply {
    let reply = text(status, RequestKind::Other, msg.to_owned());
    state.metrics.request(reply.kind, reply.status.as_u16());
    reply
}

fn route(state: &State, peer: SocketAddr, req: &RequestHead<'_>, sendfile: bool) -> Reply {
    let path = req.path;
    let ops = match path {
        "/health" => Some(RequestKind::Health),
        "/ready" => Some(RequestKind::Ready),
        "/metrics" => Some(RequestKind::Metrics),
        _ => None,
    };
    let method = req.method();
    if method == Method::Other {
        let mut r = text(
            StatusCode::METHOD_NOT_ALLOWED,
            ops.unwrap_or(RequestKind::Other),
            "method not allowed\n",
        );
        r.allow = Some("GET, HEAD");
        return r;
    }
    let head = method == Method::Head;
    if path == "/trace" {
        let mut r = trace(state);
        if head {
            r.strip_body();
        }
        return r;
    }
    if let Some(kind) = ops {
        let mut r = match kind {
            RequestKind::Health => text(StatusCode::OK, kind, "ok\n"),
            RequestKind::Ready => {
                match ready::check(
                    &state.dir,
                    &state.current,
                    Duration::from_secs(state.ready_max_age.load(Ordering::Relaxed)),
                    state.ready_lag,
                    unix_now(),
                ) {
                    Ok(msg) => text(StatusCode::OK, kind, format!("{msg}\n")),
                    Err(msg) => text(StatusCode::SERVICE_UNAVAILABLE, kind, format!("{msg}\n")),
                }
            }
            _ => {
                // status.json overlaid with the published generation (its own record of
                // unproven cdiffs); status.json alone only if the generation is unreadable.
                let (status, readable) = match mirror_core::status::MirrorView::read(&state.dir) {
                    Ok(v) => (Some(v.status), v.status_error.is_none()),
                    Err(_) => {
                        let st = mirror_core::status::MirrorStatus::load(&state.dir).ok();
                        let readable = st.is_some();
                        (st, readable)
                    }
                };
                let mut body = state.metrics.render(status.as_ref(), readable, unix_now());
                let push_state = match push::state::PushState::read(&state.dir) {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::warn!("{e}");
                        None
                    }
                };
                if let Some(p) = &push_state {
                    body.push_str(&crate::metrics::render_push(p));
                }
                if let Some(st) = &status {
                    let dbs = push::behind::databases(
                        st,
                        push_state.as_ref(),
                        state.ready_lag,
                        unix_now(),
                    );
                    let redirect = state.redirect.as_ref().map(|r| {
                        // refreshes the redirect state (and logs a change) on scrapes too
                        let _ = r.behind(&state.dir, state.ready_lag);
                        (r.base(), r.sent.load(Ordering::Relaxed))
                    });
                    crate::metrics::render_behind(&mut body, &dbs, redirect);
                    crate::metrics::render_feeds(&mut body, st);
                }
                // the publish targets' state (DIR/targets.json), when sigupdate keeps any
                if let Ok(Some(t)) = mirror_core::targets::TargetsRecord::read(&state.dir) {
                    let local = status.as_ref().and_then(|s| s.generation.as_deref());
                    crate::metrics::render_targets(&mut body, &t, local);
                }
                let mut r = text(StatusCode::OK, kind, body);
                r.content_type = Some("text/plain; version=0.0.4; charset=utf-8");
                r
            }
        };
        if head {
            r.strip_body();
        }
        return r;
    }
    if state.rate_on.load(Ordering::Relaxed)
        && let Err(wait) = state.rate.check(ClientKey::from(peer.ip()), Instant::now())
    {
        state.metrics.rate_limited();
        let mut r = text(
            StatusCode::TOO_MANY_REQUESTS,
            RequestKind::Other,
            "too many requests\n",
        );
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        r.retry_after = Some(secs.max(1));
        return r;
    }
    if let Some(feed_path) = names::parse_feed_path(path) {
        return match feed_path {
            Ok(p) => feed_file(state, req, head, sendfile, &p),
            Err(PathError::BadRequest(why)) => text(
                StatusCode::BAD_REQUEST,
                RequestKind::Other,
                format!("bad request: {why}\n"),
            ),
            Err(_) => not_found(RequestKind::Feed),
        };
    }
    let name = match names::parse_request_path(path) {
        Ok(n) => n,
        Err(PathError::BadRequest(why)) => {
            return text(
                StatusCode::BAD_REQUEST,
                RequestKind::Other,
                format!("bad request: {why}\n"),
            );
        }
        Err(_) => return not_found(RequestKind::Other),
    };
    let kind = RequestKind::File(name.kind());
    if let Some(redirect) = &state.redirect
        && let Some(url) = redirect.target(&state.dir, state.ready_lag, name.name())
    {
        let mut r = Reply::new(StatusCode::FOUND, kind, CACHE_NONE);
        r.location = Some(url);
        return r;
    }
    match open_files::open(&state.dir, &state.current, name.name()) {
        Ok(Some(o)) => {
            let fkind = name.kind();
            let what = What {
                kind,
                cache_control: fkind.cache_control(),
                content_type: fkind.content_type(),
                // A database is dated by its build time (no downgrade: `build_time`).
                dating: if matches!(fkind, FileKind::Cvd | FileKind::Cld) {
                    Dating::BuildTime
                } else {
                    Dating::Mtime
                },
            };
            file_response(state, req, head, sendfile, &what, o)
        }
        Ok(None) => not_found(kind),
        Err(e) => {
            tracing::error!(file = name.name(), error = %e, "cannot open file");
            text(StatusCode::INTERNAL_SERVER_ERROR, kind, "internal error\n")
        }
    }
}

/// How a served file is dated (`Last-Modified`).
#[derive(Debug, Clone, Copy)]
enum Dating {
    /// Its modification time.
    Mtime,
    /// A `.cvd`/`.cld`: its header's build time.
    BuildTime,
    /// A feed file: the upstream's `Last-Modified` from the generation's listing.
    Upstream(u64),
}

/// What a file response is, besides the file.
#[derive(Debug, Clone, Copy)]
struct What {
    kind: RequestKind,
    cache_control: &'static str,
    content_type: &'static str,
    dating: Dating,
}

/// The generation `current` points at and its feeds listing (read once per
/// generation); `None` when nothing is published (a plain directory serves no feeds).
fn feed_listing(state: &State) -> std::io::Result<Option<(PathBuf, FeedsOf)>> {
    let target = match std::fs::read_link(&state.current) {
        Ok(t) => t,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::InvalidInput
            ) =>
        {
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    let gen_dir = state.dir.join(target);
    let mut cached = state
        .feeds
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((dir, listing)) = &*cached
        && *dir == gen_dir
    {
        return Ok(Some((gen_dir, listing.clone())));
    }
    let listing = mirror_core::feed_listing::FeedListing::read(&gen_dir)?.map(std::sync::Arc::new);
    *cached = Some((gen_dir.clone(), listing.clone()));
    Ok(Some((gen_dir, listing)))
}

/// `/<feed>/<file>`: a file (or its `.sig`/sidecar) the published generation's
/// `feeds.json` lists, from that generation, dated by the upstream's `Last-Modified`
/// and cached like a `.cvd`; 404 for anything not listed.
fn feed_file(
    state: &State,
    req: &RequestHead<'_>,
    head: bool,
    sendfile: bool,
    p: &names::FeedPath,
) -> Reply {
    let kind = RequestKind::Feed;
    let (gen_dir, listing) = match feed_listing(state) {
        Ok(Some((d, Some(l)))) => (d, l),
        Ok(_) => return not_found(kind),
        Err(e) => {
            tracing::error!(error = %e, "cannot read the feeds listing");
            return text(StatusCode::INTERNAL_SERVER_ERROR, kind, "internal error\n");
        }
    };
    let Some(listed) = listing.lookup(&p.feed, &p.file) else {
        return not_found(kind);
    };
    let dating = listed
        .file
        .last_modified
        .map_or(Dating::Mtime, Dating::Upstream);
    let what = What {
        kind,
        cache_control: CACHE_MUTABLE,
        content_type: "application/octet-stream",
        dating,
    };
    let name = format!("{}/{}", p.feed, p.file);
    match open_files::open(&state.dir, &gen_dir, &name) {
        Ok(Some(o)) => file_response(state, req, head, sendfile, &what, o),
        Ok(None) => not_found(kind),
        Err(e) => {
            tracing::error!(file = %name, error = %e, "cannot open feed file");
            text(StatusCode::INTERNAL_SERVER_ERROR, kind, "internal error\n")
        }
    }
}

fn file_response(
    state: &State,
    req: &RequestHead<'_>,
    head: bool,
    sendfile: bool,
    what: &What,
    opened: Opened,
) -> Reply {
    let Opened { file, meta } = opened;
    let kind = what.kind;
    let len = meta.len();
    let mut v = Validators::new(meta.ino(), len, meta.modified().unwrap_or(UNIX_EPOCH));
    match what.dating {
        Dating::Mtime => {}
        Dating::BuildTime => {
            if let Some(t) = crate::build_time::of(&file, &meta) {
                v = v.dated(t);
            }
        }
        Dating::Upstream(t) => v = v.dated(t),
    }
    let mut r = Reply::new(StatusCode::OK, kind, what.cache_control);
    r.accept_ranges = true;
    if v.not_modified(req.if_none_match(), req.if_modified_since) {
        r.status = StatusCode::NOT_MODIFIED;
        r.content_length = None;
        r.validators = Some(v);
        return r;
    }
    r.content_type = Some(what.content_type);
    // Range applies to GET only (RFC 9110 §14.2); a failed If-Range means "send it all".
    let outcome = match req.range {
        Some(range) if !head => {
            let applies = req.if_range.is_none_or(|ir| v.if_range_matches(ir));
            if applies {
                range::evaluate(range, len)
            } else {
                RangeOutcome::Full
            }
        }
        _ => RangeOutcome::Full,
    };
    r.validators = Some(v);
    let (start, count) = match outcome {
        RangeOutcome::Full => (0, len),
        RangeOutcome::Partial { start, end } => {
            r.status = StatusCode::PARTIAL_CONTENT;
            r.content_range = Some(ContentRange::Bytes { start, end, len });
            (start, end - start + 1)
        }
        RangeOutcome::Unsatisfiable => {
            r.status = StatusCode::RANGE_NOT_SATISFIABLE;
            r.content_range = Some(ContentRange::Unsatisfied { len });
            return r;
        }
    };
    r.content_length = Some(count);
    if head {
        return r;
    }
    // Connections that can `sendfile` send bodies from SENDFILE_MIN bytes up from the
    // descriptor (no copy through user space); smaller ones come from the small-file
    // cache and leave in one `writev` with the head.
    if sendfile && count >= SENDFILE_MIN {
        r.body = ReplyBody::File {
            file,
            start,
            len: count,
        };
        return r;
    }
    r.body = match state.cache.get_or_load(FileId::of(&meta), &file) {
        Ok(Cached::Hit(b)) => {
            state.metrics.cache(true);
            ReplyBody::Bytes(b.slice(start as usize..(start + count) as usize))
        }
        Ok(Cached::Loaded(b)) => {
            state.metrics.cache(false);
            ReplyBody::Bytes(b.slice(start as usize..(start + count) as usize))
        }
        Ok(Cached::Skip) => ReplyBody::File {
            file,
            start,
            len: count,
        },
        Err(e) => {
            tracing::error!(error = %e, "cannot read file");
            return text(StatusCode::INTERNAL_SERVER_ERROR, kind, "internal error\n");
        }
    };
    r
}

/// A `text/plain` reply that is never cached.
pub(crate) fn text(status: StatusCode, kind: RequestKind, body: impl Into<String>) -> Reply {
    let body: String = body.into();
    let mut r = Reply::new(status, kind, CACHE_NONE);
    r.content_type = Some("text/plain; charset=utf-8");
    r.content_length = Some(body.len() as u64);
    r.body = ReplyBody::Bytes(Bytes::from(body));
    r
}

/// `/trace`: where the published generation's databases came from (its
/// `.trace.json`, see `mirror_core::trace`).
fn trace(state: &State) -> Reply {
    let layout = mirror_core::layout::MirrorLayout::new(&state.dir);
    let generation = layout.current_generation();
    let gen_dir = match &generation {
        Ok(Some(g)) => Some(layout.generation(*g)),
        _ => None,
    };
    let record = match (generation, &gen_dir) {
        (Ok(_), Some(d)) => mirror_core::trace::TraceRecord::read(d),
        (Ok(_), None) => Ok(None),
        (Err(e), _) => Err(e),
    };
    // The generation's third-party feeds (its `feeds.json`), as `"feeds"` beside the
    // databases: what each file is and how it was verified (no URL, no token).
    let feeds = gen_dir.and_then(|d| {
        mirror_core::feed_listing::FeedListing::read(&d).unwrap_or_else(|e| {
            tracing::warn!("feeds listing unreadable: {e}");
            None
        })
    });
    let body = match record {
        Ok(Some(t)) => match feeds {
            None => t.to_bytes().map(Some).map_err(|e| e.to_string()),
            Some(l) => serde_json::to_value(&t)
                .and_then(|mut v| {
                    if let Some(o) = v.as_object_mut() {
                        o.insert("feeds".into(), serde_json::to_value(&l.feeds)?);
                    }
                    serde_json::to_vec_pretty(&v)
                })
                .map(Some)
                .map_err(|e| e.to_string()),
        },
        Ok(None) => Ok(None),
        Err(e) => Err(mirror_core::Chain(&e).to_string()),
    };
    match body {
        Ok(Some(body)) => {
            let mut r = Reply::new(StatusCode::OK, RequestKind::Other, CACHE_NONE);
            r.content_type = Some("application/json");
            r.content_length = Some(body.len() as u64);
            r.body = ReplyBody::Bytes(Bytes::from(body));
            r
        }
        Ok(None) => text(
            StatusCode::NOT_FOUND,
            RequestKind::Other,
            "no trace: nothing published by this release yet\n",
        ),
        Err(e) => {
            tracing::error!("trace unreadable: {e}");
            text(
                StatusCode::INTERNAL_SERVER_ERROR,
                RequestKind::Other,
                "trace unreadable\n",
            )
        }
    }
}

/// The answer to a `POST /push` (HTTP/1.1), counted in the request metrics.
pub(crate) fn push_reply(state: &State, reply: Option<push::Reply>) -> Reply {
    let reply = reply.unwrap_or_else(|| push::Reply {
        status: 404,
        body: "push notices are not accepted on this listener\n".into(),
    });
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut r = text(status, RequestKind::Other, reply.body);
    if status == StatusCode::METHOD_NOT_ALLOWED {
        r.allow = Some("POST");
    }
    // Never a 429 without a short Retry-After (a client without one waits hours).
    if status == StatusCode::TOO_MANY_REQUESTS {
        r.retry_after = Some(1);
    }
    state.metrics.request(r.kind, r.status.as_u16());
    r
}

fn not_found(kind: RequestKind) -> Reply {
    text(StatusCode::NOT_FOUND, kind, "not found\n")
}

/// Unix seconds now (0 before the epoch): the one clock of the status, redirect and
/// network-view code.
pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A push refusal for rate is the one other `429`: it carries a short
    /// `Retry-After` too, and no push refusal is a `403`.
    #[test]
    fn push_refusals_never_poison() {
        let d = tempfile::tempdir().unwrap();
        let cfg = Config::builder(d.path())
            .listen(["127.0.0.1:0".parse().unwrap()])
            .build()
            .unwrap();
        let state = State::new(&cfg);
        for status in [400, 401, 404, 405, 413, 429, 202] {
            let r = push_reply(
                &state,
                Some(push::Reply {
                    status,
                    body: String::new(),
                }),
            );
            assert_ne!(r.status.as_u16(), 403);
            assert_eq!(r.retry_after.is_some(), status == 429, "{status}");
            assert!(r.retry_after.is_none_or(|s| (1..=60).contains(&s)));
        }
        assert_eq!(push_reply(&state, None).status, StatusCode::NOT_FOUND);
    }
}
