//! `/status.json`: what the status page shows, gathered from the mirror directory.
//!
//! [`StatusDoc`] is the stable, documented schema of `GET /status.json` (and the data
//! the HTML page of [`crate::status_html`] renders). Its [`format`](StatusDoc::format)
//! is [`STATUS_FORMAT`]; fields are only ever added within one format (readers ignore
//! unknown fields and treat missing ones as absent), and a change of meaning or a
//! removal bumps the format.
//!
//! Everything comes from files the sync side writes (read only, never trusted for
//! anything but display): `status.json` overlaid with the published generation
//! ([`mirror_core::status::MirrorView`]), each kept generation's `.trace.json`,
//! `push.json` (announcements, downstream results, the propagation histogram) and
//! `cooldown.json`, plus `/ready`'s own verdict ([`crate::ready::check`]). Nothing is
//! fetched from the network on a request: the downstream subtree comes from the cache
//! of [`crate::network_view`].
//!
//! **Safe to expose:** every URL is passed through [`redact`] (user info and query
//! strings removed), as is every error text taken from the files (they quote URLs).
//! Push secrets and key paths are never read here.

use crate::serve::unix_now;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use std::sync::atomic::Ordering;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::serve::State;

/// The format version of [`StatusDoc`].
pub const STATUS_FORMAT: u32 = 1;

/// Most kept generations whose traces feed the propagation chart.
pub const MAX_TRACE_GENERATIONS: usize = 32;

/// The document served as `/status.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StatusDoc {
    /// Schema version, [`STATUS_FORMAT`].
    pub format: u32,
    /// This mirror's name (its push name, else the name in its trace), if known.
    pub mirror: Option<String>,
    /// Unix seconds at which the document was made.
    pub generated_at: i64,
    /// `/ready`'s verdict and reason.
    pub ready: Readiness,
    /// The published generation (`g-<n>`).
    pub generation: Option<String>,
    /// Unix seconds of the last sync attempt.
    pub last_attempt: Option<i64>,
    /// Unix seconds of the last fully successful sync.
    pub last_success: Option<i64>,
    /// Unix seconds of the last publish.
    pub last_publish: Option<i64>,
    /// The last sync's error (redacted).
    pub last_error: Option<String>,
    /// Per database (official and custom), by name.
    pub databases: BTreeMap<String, DatabaseView>,
    /// The configured upstreams, in failover order.
    pub upstreams: Vec<UpstreamView>,
    /// Downstreams this mirror sends push notices to.
    pub downstreams: Vec<DownstreamView>,
    /// Propagation: the histogram and the per-version traces.
    pub propagation: PropagationView,
    /// The downstream subtree as last polled (empty without downstreams).
    pub network: Vec<NetworkNode>,
    /// Third-party feeds (`status.json`'s), by name: per file published or not, how it
    /// was verified, its last error (tokens are never in it).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub feeds: BTreeMap<String, mirror_core::status::FeedStatus>,
}

/// Whether `/ready` answers 200, and why.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Readiness {
    /// `/ready` answers 200.
    pub ready: bool,
    /// Its one-line reason.
    pub reason: String,
    /// The lag after which an announced, unpublished version makes it not ready
    /// (seconds).
    pub lag_secs: u64,
}

/// One database.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DatabaseView {
    /// Served `.cvd` version.
    pub version: Option<u32>,
    /// Build time of the served `.cvd` (Unix seconds, from its header).
    pub build_time: Option<i64>,
    /// Newest version known to exist upstream.
    pub newest_known: Option<u32>,
    /// Where [`newest_known`](Self::newest_known) came from: `upstream` (read at the
    /// last sync; with `--sync` it names how: `upstream (DNS TXT, else manifest or
    /// headers)` or `upstream (manifest or headers)`) or `notice from <sender>`.
    pub newest_source: Option<String>,
    /// Unix seconds since which a newer version is known and not served.
    pub behind_since: Option<i64>,
    /// Unix seconds of the last successful check of this database.
    pub last_success: Option<i64>,
    /// The last error for this database (redacted).
    pub last_error: Option<String>,
    /// Cdiff versions held, ascending.
    pub cdiffs: Vec<u32>,
    /// Of those, the ones not chain-proven.
    pub cdiffs_unproven: Vec<u32>,
    /// Whether `<db>-<v>.cvd.sign` is held for the served `.cvd`.
    pub cvd_signed: bool,
    /// How many held cdiffs have their `.sign`.
    pub cdiffs_signed: usize,
    /// The trace of the served version.
    pub trace: Option<TraceView>,
}

/// Where a version came from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TraceView {
    /// The version.
    pub version: u32,
    /// The URL its `.cvd` was fetched from (redacted).
    pub fetched_from: Option<String>,
    /// Unix milliseconds of this mirror's publish.
    pub published_ms: u64,
    /// Origin first, this mirror last: `(mirror, published Unix ms)`.
    pub hops: Vec<HopView>,
    /// Milliseconds from the origin's publish to this mirror's (`None` for a version
    /// learned by polling: no earlier hop).
    pub propagation_ms: Option<u64>,
}

/// One hop of a trace.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HopView {
    /// The mirror's name.
    pub mirror: String,
    /// Unix milliseconds at which it published the version.
    pub published_ms: u64,
}

/// One configured upstream.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct UpstreamView {
    /// Its URL (redacted).
    pub url: String,
    /// Position in the failover order (0 is tried first).
    pub order: usize,
    /// Whether the served `.cvd` files were fetched from it.
    pub served_last_sync: bool,
    /// Unix seconds until which it is in a `Retry-After` cool-down.
    pub cooldown_until: Option<i64>,
}

/// One push downstream.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DownstreamView {
    /// Its push URL (redacted).
    pub url: String,
    /// Unix seconds of the last accepted notice.
    pub last_success: Option<i64>,
    /// Unix seconds of the last failed attempt.
    pub last_failure: Option<i64>,
    /// Why it failed (redacted).
    pub last_error: Option<String>,
    /// Notices delivered.
    pub delivered: u64,
    /// Failed attempts since the last delivery.
    pub consecutive_failures: u64,
    /// Notices given up on.
    pub given_up: u64,
}

/// Propagation data for the chart.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PropagationView {
    /// Cumulative histogram of seconds from origin to here, per published update.
    pub buckets: Vec<BucketView>,
    /// Observations.
    pub count: u64,
    /// Sum of the observations (seconds).
    pub sum_secs: f64,
    /// Per kept generation's traced database version, oldest first.
    pub versions: Vec<VersionPropagation>,
}

/// One histogram bucket.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BucketView {
    /// Upper bound, seconds.
    pub le: f64,
    /// Observations at or below it (cumulative).
    pub count: u64,
}

/// How long one version took from its origin to here.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct VersionPropagation {
    /// Database.
    pub db: String,
    /// Version.
    pub version: u32,
    /// Milliseconds from origin to here.
    pub propagation_ms: u64,
    /// Hops (origin and this mirror included).
    pub hops: usize,
}

/// A mirror in the downstream subtree, as polled by [`crate::network_view`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NetworkNode {
    /// The `/status.json` URL polled (redacted).
    pub url: String,
    /// Its name, as it reports it.
    pub mirror: Option<String>,
    /// `current`, `behind_one`, `behind_long`, `behind` or `unreachable` (see
    /// [`crate::network_view`]).
    pub state: String,
    /// Why it is unreachable, if it is.
    pub error: Option<String>,
    /// Unix seconds of the last successful poll.
    pub polled_at: Option<i64>,
    /// Its served versions.
    pub versions: BTreeMap<String, u32>,
    /// Its readiness.
    pub ready: Option<bool>,
    /// Unix seconds of its last fully successful sync, as it reports it.
    pub last_success: Option<i64>,
    /// Unix seconds since which it knows of a newer version it does not serve (the
    /// earliest over its databases), as it reports it.
    pub behind_since: Option<i64>,
    /// Its own downstreams, as it reported them.
    pub children: Vec<NetworkNode>,
}

/// Extra information the status page shows that is not in the mirror directory:
/// given by configuration ([`crate::ConfigBuilder::status_upstreams`] and friends).
#[derive(Debug, Clone, Default)]
pub(crate) struct StatusInfo {
    pub(crate) name: Option<String>,
    pub(crate) upstreams: Vec<String>,
    pub(crate) version_source: Option<String>,
}

/// Removes credentials from a text that may hold URLs: user info (`user:pass@`) and
/// query strings are replaced by `…` wherever `://` occurs.
///
/// ```
/// assert_eq!(
///     sigserver::status_page::redact("get http://u:secret@h:1/p?token=x failed"),
///     "get http://…@h:1/p?… failed"
/// );
/// ```
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == '>' || c == '<')
            .unwrap_or(tail.len());
        let (url, after) = tail.split_at(end);
        let authority_end = url.find(['/', '?', '#']).unwrap_or(url.len());
        let (authority, path) = url.split_at(authority_end);
        match authority.rfind('@') {
            Some(at) => {
                out.push('…');
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        match path.find(['?', '#']) {
            Some(q) => {
                out.push_str(&path[..q + 1]);
                out.push('…');
            }
            None => out.push_str(path),
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

/// Answers `/status` and `/status.json` (`None` for any other path). On the public
/// listeners (`admin` false) they are 404 when configured admin-only.
pub(crate) fn route(
    state: &State,
    req: &crate::request::RequestHead<'_>,
    admin: bool,
) -> Option<crate::request::Reply> {
    use crate::metrics::RequestKind;
    use crate::request::{Method, Reply, ReplyBody};
    use hyper::StatusCode;
    let json = match req.path {
        "/status" => false,
        "/status.json" => true,
        _ => return None,
    };
    if state.status_admin_only && !admin {
        return Some(crate::serve::text(
            StatusCode::NOT_FOUND,
            RequestKind::Other,
            "not found\n",
        ));
    }
    let method = req.method();
    if method == Method::Other {
        let mut r = crate::serve::text(
            StatusCode::METHOD_NOT_ALLOWED,
            RequestKind::Other,
            "method not allowed\n",
        );
        r.allow = Some("GET, HEAD");
        return Some(r);
    }
    let doc = cached(state);
    let (body, ctype) = if json {
        let mut b = serde_json::to_vec_pretty(&doc).unwrap_or_default();
        b.push(b'\n');
        (b, "application/json")
    } else {
        (
            crate::status_html::render(&doc).into_bytes(),
            "text/html; charset=utf-8",
        )
    };
    let mut r = Reply::new(StatusCode::OK, RequestKind::Other, crate::serve::CACHE_NONE);
    r.content_type = Some(ctype);
    r.content_length = Some(body.len() as u64);
    r.body = ReplyBody::Bytes(bytes::Bytes::from(body));
    if method == Method::Head {
        r.strip_body();
    }
    Some(r)
}

/// How long a gathered document is reused: `/status` reads a few dozen small files,
/// so a burst of requests (or a public page being refreshed by many) reads them at
/// most once per this interval.
pub const STATUS_CACHE: Duration = Duration::from_secs(1);

fn cached(state: &State) -> StatusDoc {
    let mut g = state.status_cache.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((at, doc)) = g.as_ref()
        && at.elapsed() < STATUS_CACHE
    {
        return doc.clone();
    }
    let doc = gather(state, unix_now());
    *g = Some((std::time::Instant::now(), doc.clone()));
    doc
}

/// Gathers the document for the mirror served by `state` at Unix time `now`.
pub(crate) fn gather(state: &State, now: i64) -> StatusDoc {
    let dir = &state.dir;
    let lag = state.ready_lag;
    let ready = crate::ready::check(
        dir,
        &state.current,
        Duration::from_secs(state.ready_max_age.load(Ordering::Relaxed)),
        lag,
        now,
    );
    let (ready, reason) = match ready {
        Ok(r) => (true, r),
        Err(r) => (false, r),
    };
    let mut doc = StatusDoc {
        format: STATUS_FORMAT,
        mirror: state.status_info.name.clone(),
        generated_at: now,
        ready: Readiness {
            ready,
            reason: redact(&reason),
            lag_secs: lag.as_secs(),
        },
        ..StatusDoc::default()
    };
    let view = mirror_core::status::MirrorView::read(dir).ok();
    let status = match &view {
        Some(v) => v.status.clone(),
        None => mirror_core::status::MirrorStatus::load(dir).unwrap_or_default(),
    };
    doc.generation = status.generation.clone();
    doc.last_attempt = status.last_attempt;
    doc.last_success = status.last_success;
    doc.last_publish = status.last_publish;
    doc.last_error = status.last_error.as_deref().map(redact);
    doc.feeds = status.feeds.clone();
    for f in doc.feeds.values_mut() {
        for file in f.files.values_mut() {
            file.last_error = file.last_error.as_deref().map(redact);
        }
    }

    let layout = mirror_core::layout::MirrorLayout::new(dir);
    let current = layout.current_generation().ok().flatten();
    let gen_dir = current.map(|g| layout.generation(g));
    let snapshot = gen_dir
        .as_deref()
        .and_then(|g| mirror_core::model::Snapshot::read(g).ok());
    let trace = gen_dir
        .as_deref()
        .and_then(|g| mirror_core::trace::TraceRecord::read(g).ok().flatten());
    let push = push::state::PushState::read(dir).ok().flatten();
    if doc.mirror.is_none() {
        doc.mirror = trace.as_ref().map(|t| t.mirror.clone());
    }

    for (name, s) in &status.databases {
        let mut d = DatabaseView {
            version: s.published_version,
            newest_known: s.upstream_version,
            newest_source: s
                .upstream_version
                .map(|_| match &state.status_info.version_source {
                    Some(how) => format!("upstream ({how})"),
                    None => "upstream".to_owned(),
                }),
            last_success: s.last_success,
            last_error: s.last_error.as_deref().map(redact),
            cdiffs: s.cdiffs.clone(),
            cdiffs_unproven: s.unproven_cdiffs.clone(),
            ..DatabaseView::default()
        };
        if let (Some(up), Some(seen)) = (s.upstream_version, s.upstream_seen_at)
            && s.published_version.is_none_or(|p| p < up)
        {
            d.behind_since = Some(seen);
        }
        doc.databases.insert(name.clone(), d);
    }
    if let Some(snap) = &snapshot {
        for (name, held) in &snap.databases {
            let d = doc.databases.entry(name.clone()).or_default();
            d.version = held.version;
            d.cvd_signed = held.cvd_sign;
            d.cdiffs = held.cdiffs.keys().copied().collect();
            d.cdiffs_signed = held.cdiffs.values().filter(|s| **s).count();
            if let Some(g) = &gen_dir {
                d.build_time = build_time(&g.join(format!("{name}.cvd")));
            }
        }
    }
    if let Some(p) = &push {
        for (name, a) in &p.announced {
            let d = doc.databases.entry(name.clone()).or_default();
            if d.newest_known.is_none_or(|n| n < a.version) && d.version < Some(a.version) {
                d.newest_known = Some(a.version);
                d.newest_source = Some(format!("notice from {}", a.sender));
                d.behind_since = Some(d.behind_since.map_or(a.since, |b| b.min(a.since)));
            }
        }
        for (url, s) in &p.downstreams {
            doc.downstreams.push(DownstreamView {
                url: redact(url),
                last_success: s.last_success,
                last_failure: s.last_failure,
                last_error: s.last_error.as_deref().map(redact),
                delivered: s.delivered,
                consecutive_failures: s.consecutive_failures,
                given_up: s.given_up,
            });
        }
        doc.propagation.buckets = push::state::PROPAGATION_BUCKETS
            .iter()
            .zip(&p.propagation.buckets)
            .map(|(&le, &count)| BucketView { le, count })
            .collect();
        doc.propagation.count = p.propagation.count;
        doc.propagation.sum_secs = p.propagation.sum;
    }
    if let Some(t) = &trace {
        for (name, dt) in &t.databases {
            if let Some(d) = doc.databases.get_mut(name) {
                d.trace = Some(trace_view(dt));
            }
        }
    }

    let fetched: Vec<&str> = trace
        .iter()
        .flat_map(|t| t.databases.values())
        .filter_map(|d| d.fetched_from.as_deref())
        .collect();
    let cooldowns = fetch::read_cooldowns(&dir.join("cooldown.json")).unwrap_or_default();
    for (order, url) in state.status_info.upstreams.iter().enumerate() {
        let base = url.trim_end_matches('/');
        let key = fetch::upstream_key(url).ok();
        doc.upstreams.push(UpstreamView {
            url: redact(url),
            order,
            served_last_sync: fetched.iter().any(|f| f.starts_with(base)),
            cooldown_until: key
                .and_then(|k| cooldowns.get(&k).copied())
                .and_then(|u| i64::try_from(u).ok())
                .filter(|&u| u > now),
        });
    }
    doc.propagation.versions = version_propagation(&layout);
    if let Some(net) = &state.network {
        doc.network = net.snapshot(&doc);
    }
    doc
}

fn trace_view(dt: &mirror_core::trace::DatabaseTrace) -> TraceView {
    TraceView {
        version: dt.version,
        fetched_from: dt.fetched_from.as_deref().map(redact),
        published_ms: dt.published_ms,
        hops: dt
            .hops
            .iter()
            .map(|h| HopView {
                mirror: h.mirror.clone(),
                published_ms: h.published_ms,
            })
            .collect(),
        propagation_ms: dt.propagation_ms().filter(|_| dt.hops.len() >= 2),
    }
}

/// Seconds from origin to here of every traced version in the kept generations.
fn version_propagation(layout: &mirror_core::layout::MirrorLayout) -> Vec<VersionPropagation> {
    let mut ids = layout.list_generations().unwrap_or_default();
    let skip = ids.len().saturating_sub(MAX_TRACE_GENERATIONS);
    ids.drain(..skip);
    let mut seen = BTreeMap::new();
    for id in ids {
        let Ok(Some(t)) = mirror_core::trace::TraceRecord::read(&layout.generation(id)) else {
            continue;
        };
        for (db, dt) in t.databases {
            // A version learned by polling has only this mirror as hop: no origin time.
            if dt.hops.len() < 2 {
                continue;
            }
            if let Some(ms) = dt.propagation_ms() {
                seen.entry((dt.published_ms, db.clone(), dt.version))
                    .or_insert(VersionPropagation {
                        db,
                        version: dt.version,
                        propagation_ms: ms,
                        hops: dt.hops.len(),
                    });
            }
        }
    }
    // A version carried over by later generations appears once (its own publish).
    let mut out: Vec<VersionPropagation> = Vec::new();
    for (_, v) in seen {
        if !out.iter().any(|o| o.db == v.db && o.version == v.version) {
            out.push(v);
        }
    }
    out
}

/// Build time (Unix seconds) from a `.cvd` header; `None` when unreadable.
fn build_time(path: &Path) -> Option<i64> {
    let mut raw = [0u8; cvd_format::header::HEADER_SIZE];
    std::fs::File::open(path).ok()?.read_exact(&mut raw).ok()?;
    let h = cvd_format::Header::parse(&raw).ok()?;
    Some(h.build_time.unix_timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_removes_user_info_and_queries_only() {
        assert_eq!(redact("http://h/x"), "http://h/x");
        assert_eq!(redact("https://a:b@h:8/x y"), "https://…@h:8/x y");
        assert_eq!(redact("a https://h/p?k=s#f b"), "a https://h/p?… b");
        assert_eq!(redact("x://u@h"), "x://…@h");
        assert_eq!(redact("no url"), "no url");
        assert!(!redact("GET http://tok@h/p?key=secret, http://u:pw@g/").contains("secret"));
        assert!(!redact("GET http://tok@h/p?key=secret, http://u:pw@g/").contains("pw"));
    }
}
