//! Counters for `/metrics`, exposed in the Prometheus text format (version 0.0.4).
//!
//! The exposition is written by hand over a fixed table of atomics: the label sets are
//! small and known in advance (file kind × status), so a registry crate would add a
//! dependency tree, locking and allocation per update for nothing. Mirror state
//! (published versions, snapshot age, sync errors, chain-unproven cdiffs, chain-check
//! failures) is read from `status.json` at scrape time, so it is always the current
//! truth and costs nothing per request.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};

use mirror_core::status::MirrorStatus;

use crate::dns::{Outcome as DnsOutcome, Transport as DnsTransport};
use crate::names::{FileKind, Serving as _};

/// What a request was for, as a metrics label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestKind {
    /// A mirror file.
    File(FileKind),
    /// `/health`.
    Health,
    /// `/ready`.
    Ready,
    /// `/metrics`.
    Metrics,
    /// Anything else (rejected paths, other methods, rate-limited requests).
    Other,
    /// A third-party feed's file or its `.sig`/sidecar (`/<feed>/<file>`).
    Feed,
}

const N_KINDS: usize = FileKind::ALL.len() + 5;

impl RequestKind {
    fn index(self) -> usize {
        match self {
            RequestKind::File(k) => FileKind::ALL.iter().position(|&x| x == k).unwrap_or(0),
            RequestKind::Health => FileKind::ALL.len(),
            RequestKind::Ready => FileKind::ALL.len() + 1,
            RequestKind::Metrics => FileKind::ALL.len() + 2,
            RequestKind::Other => FileKind::ALL.len() + 3,
            RequestKind::Feed => FileKind::ALL.len() + 4,
        }
    }

    /// The label value (`cvd`, `cdiff`, `health`, `other`, ...).
    pub fn label(self) -> &'static str {
        match self {
            RequestKind::File(k) => k.label(),
            RequestKind::Health => "health",
            RequestKind::Ready => "ready",
            RequestKind::Metrics => "metrics",
            RequestKind::Other => "other",
            RequestKind::Feed => "feed",
        }
    }

    fn from_index(i: usize) -> Self {
        match i {
            i if i < FileKind::ALL.len() => RequestKind::File(FileKind::ALL[i]),
            i if i == FileKind::ALL.len() => RequestKind::Health,
            i if i == FileKind::ALL.len() + 1 => RequestKind::Ready,
            i if i == FileKind::ALL.len() + 2 => RequestKind::Metrics,
            i if i == FileKind::ALL.len() + 4 => RequestKind::Feed,
            _ => RequestKind::Other,
        }
    }
}

/// Status codes this server produces; anything else is counted as `other`.
const STATUSES: [u16; 14] = [
    200, 206, 302, 304, 400, 404, 405, 416, 429, 431, 500, 503, 408, 413,
];
const N_STATUS: usize = STATUSES.len() + 1;

/// Shards of the per-request counters: each thread adds to its own shard (its own
/// cache lines), so worker threads never bounce a counter between CPUs; a scrape sums.
const SHARDS: usize = 8;

/// The per-request counters of one shard, on cache lines of their own.
#[derive(Debug)]
#[repr(align(128))]
struct Shard {
    requests: [[AtomicU64; N_STATUS]; N_KINDS],
    bytes: [AtomicU64; N_KINDS],
    cache_hits: AtomicU64,
    cache_misses: AtomicU64,
}

impl Default for Shard {
    fn default() -> Self {
        Shard {
            requests: std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0))),
            bytes: std::array::from_fn(|_| AtomicU64::new(0)),
            cache_hits: AtomicU64::new(0),
            cache_misses: AtomicU64::new(0),
        }
    }
}

/// This thread's shard index (assigned round-robin on first use).
fn shard_index() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static INDEX: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
    }
    INDEX.with(|i| *i)
}

/// The server's counters. All updates are relaxed atomic adds; per-request counters
/// are sharded by thread.
#[derive(Debug)]
pub struct Metrics {
    shards: Box<[Shard; SHARDS]>,
    open_connections: AtomicI64,
    connections_total: AtomicU64,
    rate_limited: AtomicU64,
    /// DNS queries by transport and outcome (not on the HTTP path: not sharded).
    dns: [[AtomicU64; DnsOutcome::ALL.len()]; DnsTransport::ALL.len()],
    started: std::time::Instant,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            shards: Box::new(std::array::from_fn(|_| Shard::default())),
            open_connections: AtomicI64::new(0),
            connections_total: AtomicU64::new(0),
            rate_limited: AtomicU64::new(0),
            dns: std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0))),
            started: std::time::Instant::now(),
        }
    }
}

impl Metrics {
    /// Counts one response.
    pub fn request(&self, kind: RequestKind, status: u16) {
        let s = STATUSES
            .iter()
            .position(|&x| x == status)
            .unwrap_or(STATUSES.len());
        self.shard().requests[kind.index()][s].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts body bytes handed to the connection.
    pub fn bytes(&self, kind: RequestKind, n: u64) {
        self.shard().bytes[kind.index()].fetch_add(n, Ordering::Relaxed);
    }

    /// A connection was accepted.
    pub fn connection_opened(&self) {
        self.open_connections.fetch_add(1, Ordering::Relaxed);
        self.connections_total.fetch_add(1, Ordering::Relaxed);
    }

    /// A connection ended.
    pub fn connection_closed(&self) {
        self.open_connections.fetch_sub(1, Ordering::Relaxed);
    }

    /// A request was refused by the per-client rate limit.
    pub fn rate_limited(&self) {
        self.rate_limited.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one DNS query by how it arrived and what became of it.
    pub fn dns_query(&self, transport: DnsTransport, outcome: DnsOutcome) {
        let t = DnsTransport::ALL
            .iter()
            .position(|&x| x == transport)
            .unwrap_or(0);
        let o = DnsOutcome::ALL
            .iter()
            .position(|&x| x == outcome)
            .unwrap_or(0);
        self.dns[t][o].fetch_add(1, Ordering::Relaxed);
    }

    /// A file body was served from the small-file cache (`true`) or read into it.
    pub fn cache(&self, hit: bool) {
        let shard = self.shard();
        let c = if hit {
            &shard.cache_hits
        } else {
            &shard.cache_misses
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// Currently open connections.
    pub fn open_connections(&self) -> i64 {
        self.open_connections.load(Ordering::Relaxed)
    }

    fn shard(&self) -> &Shard {
        &self.shards[shard_index()]
    }

    /// Sum of one counter over all shards.
    fn sum(&self, f: impl Fn(&Shard) -> &AtomicU64) -> u64 {
        self.shards
            .iter()
            .map(|s| f(s).load(Ordering::Relaxed))
            .fold(0u64, u64::wrapping_add)
    }

    /// Renders the exposition. `status` is the mirror's status as readers see it
    /// (`mirror_core::status::MirrorView`: `status.json` overlaid with the published
    /// generation), `status_readable` whether `status.json` itself was usable, and
    /// `now` the current Unix time in seconds.
    pub fn render(&self, status: Option<&MirrorStatus>, status_readable: bool, now: i64) -> String {
        let mut out = String::with_capacity(4096);
        out.push_str(
            "# HELP sigserver_requests_total Responses sent, by file kind and status code.\n",
        );
        out.push_str("# TYPE sigserver_requests_total counter\n");
        for k in 0..N_KINDS {
            for s in 0..N_STATUS {
                let n = self.sum(|sh| &sh.requests[k][s]);
                if n == 0 {
                    continue;
                }
                let code = STATUSES
                    .get(s)
                    .map_or_else(|| "other".to_owned(), u16::to_string);
                let _ = writeln!(
                    out,
                    "sigserver_requests_total{{kind=\"{}\",status=\"{code}\"}} {n}",
                    RequestKind::from_index(k).label()
                );
            }
        }
        out.push_str("# HELP sigserver_sent_bytes_total Body bytes sent, by file kind.\n");
        out.push_str("# TYPE sigserver_sent_bytes_total counter\n");
        for k in 0..N_KINDS {
            let _ = writeln!(
                out,
                "sigserver_sent_bytes_total{{kind=\"{}\"}} {}",
                RequestKind::from_index(k).label(),
                self.sum(|sh| &sh.bytes[k])
            );
        }
        gauge(
            &mut out,
            "sigserver_open_connections",
            "Connections currently open.",
            self.open_connections() as f64,
        );
        counter(
            &mut out,
            "sigserver_connections_total",
            "Connections accepted.",
            self.connections_total.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "sigserver_rate_limited_total",
            "Requests refused by the per-client rate limit.",
            self.rate_limited.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "sigserver_file_cache_hits_total",
            "File bodies served from the small-file cache.",
            self.sum(|sh| &sh.cache_hits),
        );
        counter(
            &mut out,
            "sigserver_file_cache_misses_total",
            "File bodies read from disk into the small-file cache.",
            self.sum(|sh| &sh.cache_misses),
        );
        out.push_str("# HELP sigserver_dns_queries_total DNS queries, by transport and outcome (answered, nodata, nxdomain, refused, formerr, notimp, servfail, truncated, rate_limited, dropped).\n");
        out.push_str("# TYPE sigserver_dns_queries_total counter\n");
        for (ti, t) in DnsTransport::ALL.iter().enumerate() {
            for (oi, o) in DnsOutcome::ALL.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "sigserver_dns_queries_total{{transport=\"{}\",outcome=\"{}\"}} {}",
                    t.label(),
                    o.label(),
                    self.dns[ti][oi].load(Ordering::Relaxed)
                );
            }
        }
        gauge(
            &mut out,
            "sigserver_uptime_seconds",
            "Seconds since the server started.",
            self.started.elapsed().as_secs_f64(),
        );

        gauge(
            &mut out,
            "sigserver_mirror_status_readable",
            "Whether status.json could be read (0 when invalid, or missing while something is published; versions and unproven cdiffs then come from the published generation alone).",
            if status_readable { 1.0 } else { 0.0 },
        );
        let Some(st) = status else {
            return out;
        };
        out.push_str("# HELP sigserver_mirror_published_version Version of <db>.cvd in the published snapshot.\n");
        out.push_str("# TYPE sigserver_mirror_published_version gauge\n");
        for (db, d) in &st.databases {
            if let Some(v) = d.published_version {
                let _ = writeln!(
                    out,
                    "sigserver_mirror_published_version{{db=\"{}\"}} {v}",
                    escape(db)
                );
            }
        }
        out.push_str("# HELP sigserver_mirror_sync_failures Consecutive failed sync attempts per database, labelled with the kind of the last error.\n");
        out.push_str("# TYPE sigserver_mirror_sync_failures gauge\n");
        for (db, d) in &st.databases {
            let kind = d.last_error_kind.as_deref().unwrap_or("none");
            let _ = writeln!(
                out,
                "sigserver_mirror_sync_failures{{db=\"{}\",kind=\"{}\"}} {}",
                escape(db),
                escape(kind),
                d.consecutive_failures
            );
        }
        out.push_str("# HELP sigserver_mirror_unproven_cdiffs Published cdiffs per database that are signature-verified but not chain-proven (from the published generation's own trust record, never from status.json alone).\n");
        out.push_str("# TYPE sigserver_mirror_unproven_cdiffs gauge\n");
        for (db, d) in &st.databases {
            let _ = writeln!(
                out,
                "sigserver_mirror_unproven_cdiffs{{db=\"{}\"}} {}",
                escape(db),
                d.unproven_cdiffs.len()
            );
        }
        out.push_str("# HELP sigserver_mirror_chain_failures_total Syncs per database refused because upstream's cdiffs did not lead to its .cvd (status.json chain_failures).\n");
        out.push_str("# TYPE sigserver_mirror_chain_failures_total counter\n");
        for (db, d) in &st.databases {
            let _ = writeln!(
                out,
                "sigserver_mirror_chain_failures_total{{db=\"{}\"}} {}",
                escape(db),
                d.chain_failures
            );
        }
        if let Some(p) = st.last_publish {
            gauge(
                &mut out,
                "sigserver_mirror_snapshot_age_seconds",
                "Seconds since the published snapshot was switched.",
                (now - p).max(0) as f64,
            );
            gauge(
                &mut out,
                "sigserver_mirror_last_publish_timestamp_seconds",
                "Unix time of the last publish.",
                p as f64,
            );
        }
        if let Some(s) = st.last_success {
            gauge(
                &mut out,
                "sigserver_mirror_last_success_timestamp_seconds",
                "Unix time of the last fully successful sync.",
                s as f64,
            );
        }
        if let Some(a) = st.last_attempt {
            gauge(
                &mut out,
                "sigserver_mirror_last_attempt_timestamp_seconds",
                "Unix time of the last sync attempt.",
                a as f64,
            );
        }
        gauge(
            &mut out,
            "sigserver_mirror_last_sync_failed",
            "1 when the last sync attempt ended with an error.",
            if st.last_error.is_some() { 1.0 } else { 0.0 },
        );
        out
    }
}

/// Appends the publish targets' state (`DIR/targets.json`, written by `sigupdate`
/// `--publish`): per target, whether it lags behind the generation published locally
/// (`local`), when it last held it, its failures in a row, lost races and the last
/// publish's PUTs and bytes.
pub fn render_targets(
    out: &mut String,
    targets: &mirror_core::targets::TargetsRecord,
    local: Option<&str>,
) {
    type Field = fn(&mirror_core::targets::TargetState) -> Option<f64>;
    let rows: [(&str, &str, &str, Field); 6] = [
        (
            "sigserver_target_lagging",
            "gauge",
            "1 when the publish target does not hold the generation published locally.",
            |_| None,
        ),
        (
            "sigserver_target_last_success_timestamp_seconds",
            "gauge",
            "Unix time the target last received a complete generation.",
            |t| t.last_success_unix.map(|v| v as f64),
        ),
        (
            "sigserver_target_consecutive_failures",
            "gauge",
            "Publishes to the target in a row that did not complete.",
            |t| Some(f64::from(t.consecutive_failures)),
        ),
        (
            "sigserver_target_conflicts_total",
            "counter",
            "Races lost to another publisher (conditional writes refused) on the target.",
            |t| Some(t.conflicts as f64),
        ),
        (
            "sigserver_target_last_run_puts",
            "gauge",
            "PUT requests of the last publish to the target.",
            |t| Some(t.last_run.puts as f64),
        ),
        (
            "sigserver_target_last_run_sent_bytes",
            "gauge",
            "Bytes sent by the last publish to the target.",
            |t| Some(t.last_run.bytes_sent as f64),
        ),
    ];
    for (i, (name, kind, help, field)) in rows.iter().enumerate() {
        let _ = writeln!(
            out,
            "# HELP {name} {help}
# TYPE {name} {kind}"
        );
        for (url, t) in &targets.targets {
            let v = if i == 0 {
                Some(if t.lagging(local) { 1.0 } else { 0.0 })
            } else {
                field(t)
            };
            if let Some(v) = v {
                let _ = writeln!(out, "{name}{{target=\"{}\"}} {v}", escape(url));
            }
        }
    }
}

/// The third-party feeds of `status.json` (per feed: unverified; per file: published,
/// last success, failures). Names only: a feed's URL or token never appears.
pub(crate) fn render_feeds(out: &mut String, status: &MirrorStatus) {
    if status.feeds.is_empty() {
        return;
    }
    let family = |out: &mut String, name: &str, kind: &str, help: &str| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    };
    family(
        out,
        "sigserver_feed_unverified",
        "gauge",
        "1 when a third-party feed is published unverified (verify = \"none\").",
    );
    for (feed, f) in &status.feeds {
        let _ = writeln!(
            out,
            "sigserver_feed_unverified{{feed=\"{}\"}} {}",
            escape(feed),
            u8::from(f.unverified)
        );
    }
    type Field = fn(&mirror_core::status::FeedFileStatus) -> Option<u64>;
    let per_file: [(&str, &str, &str, Field); 4] = [
        (
            "sigserver_feed_file_published",
            "gauge",
            "1 when a good copy of the feed file is published (new, unchanged or the last good one).",
            |s| Some(u64::from(s.published)),
        ),
        (
            "sigserver_feed_file_last_success_timestamp_seconds",
            "gauge",
            "Unix time of the last sync that left the feed file good.",
            |s| s.last_success.and_then(|t| u64::try_from(t).ok()),
        ),
        (
            "sigserver_feed_file_consecutive_failures",
            "gauge",
            "Failed syncs of the feed file since its last success.",
            |s| Some(u64::from(s.consecutive_failures)),
        ),
        (
            "sigserver_feed_file_failures_total",
            "counter",
            "Failed syncs of the feed file (verification, load check, upstream).",
            |s| Some(s.failures),
        ),
    ];
    for (name, kind, help, field) in per_file {
        family(out, name, kind, help);
        for (feed, f) in &status.feeds {
            for (file, st) in &f.files {
                if let Some(v) = field(st) {
                    let _ = writeln!(
                        out,
                        "{name}{{feed=\"{}\",file=\"{}\"}} {v}",
                        escape(feed),
                        escape(file)
                    );
                }
            }
        }
    }
}

fn gauge(out: &mut String, name: &str, help: &str, v: f64) {
    let _ = write!(
        out,
        "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}\n"
    );
}

fn counter(out: &mut String, name: &str, help: &str, v: u64) {
    let _ = write!(
        out,
        "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}\n"
    );
}

/// Escapes a label value (`\`, `"` and newline), per the text format.
/// Per database: served version, newest known version, since when behind, whether
/// provably behind and whether its requests are redirected (`--behind-redirect`); and
/// the redirects sent. `redirect`: the target and the redirects sent so far, when
/// redirects are configured.
pub fn render_behind(
    out: &mut String,
    dbs: &[push::behind::Database],
    redirect: Option<(&str, u64)>,
) {
    let gauge = |out: &mut String,
                 name: &str,
                 help: &str,
                 value: &dyn Fn(&push::behind::Database) -> Option<f64>| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for d in dbs {
            if let Some(v) = value(d) {
                let _ = writeln!(out, "{name}{{db=\"{}\"}} {v}", escape(&d.db));
            }
        }
    };
    gauge(
        out,
        "sigserver_db_served_version",
        "Version of <db> served (published).",
        &|d| d.serving.map(f64::from),
    );
    gauge(
        out,
        "sigserver_db_newest_known_version",
        "Newest version of <db> known (upstream, push notices, or what is served).",
        &|d| d.newest.map(f64::from),
    );
    gauge(
        out,
        "sigserver_db_behind_since_seconds",
        "Unix time since which a newer version of <db> is known and not served (0: not behind).",
        &|d| Some(d.behind_since.map_or(0.0, |s| s as f64)),
    );
    gauge(
        out,
        "sigserver_db_provably_behind",
        "1 when <db> is behind for longer than the ready lag (/ready answers 503).",
        &|d| Some(if d.provably_behind { 1.0 } else { 0.0 }),
    );
    gauge(
        out,
        "sigserver_db_redirect_active",
        "1 when requests for what this mirror lacks of <db> are redirected (--behind-redirect).",
        &|d| {
            Some(if d.provably_behind && redirect.is_some() {
                1.0
            } else {
                0.0
            })
        },
    );
    if let Some((target, sent)) = redirect {
        let _ = writeln!(
            out,
            "# HELP sigserver_behind_redirects_total Requests answered with 302 to the --behind-redirect target.\n# TYPE sigserver_behind_redirects_total counter\nsigserver_behind_redirects_total{{target=\"{}\"}} {sent}",
            escape(target)
        );
    }
}

fn escape(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

/// The push state (`DIR/push.json`) as Prometheus text: notices by outcome and what
/// they led to, syncs by reason, announced and unconfirmed versions, per-downstream
/// delivery, and the propagation histogram (origin's publish → published here).
pub fn render_push(p: &push::state::PushState) -> String {
    let mut out = String::with_capacity(2048);
    let counter = |out: &mut String,
                   name: &str,
                   help: &str,
                   label: &str,
                   m: &std::collections::BTreeMap<String, u64>| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for (k, v) in m {
            let _ = writeln!(out, "{name}{{{label}=\"{}\"}} {v}", escape(k));
        }
    };
    counter(
        &mut out,
        "clamav_mirror_push_notices_total",
        "Push notices received, by outcome (accepted or why refused).",
        "outcome",
        &p.notices,
    );
    counter(
        &mut out,
        "clamav_mirror_push_notice_actions_total",
        "What accepted notices led to: sync, already_published, unconfirmed.",
        "action",
        &p.notice_actions,
    );
    counter(
        &mut out,
        "clamav_mirror_syncs_total",
        "Syncs started, by reason (start, poll, push, dns, signal).",
        "reason",
        &p.syncs,
    );
    let gauge =
        |out: &mut String,
         name: &str,
         help: &str,
         m: &std::collections::BTreeMap<String, push::state::Announcement>| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
            for (db, a) in m {
                let _ = writeln!(
                    out,
                    "{name}{{db=\"{}\",sender=\"{}\"}} {}",
                    escape(db),
                    escape(&a.sender),
                    a.version
                );
            }
        };
    gauge(
        &mut out,
        "clamav_mirror_push_announced_version",
        "Version announced by a push notice and not published here yet.",
        &p.announced,
    );
    gauge(
        &mut out,
        "clamav_mirror_push_unconfirmed_version",
        "Version a notice announced that a sync did not find upstream (not retried).",
        &p.unconfirmed,
    );
    type Field = fn(&push::state::DownstreamState) -> Option<u64>;
    let per_downstream: [(&str, &str, &str, Field); 5] = [
        (
            "clamav_mirror_downstream_delivered_total",
            "counter",
            "Notices a downstream accepted.",
            |d| Some(d.delivered),
        ),
        (
            "clamav_mirror_downstream_failed_attempts_total",
            "counter",
            "Failed attempts to notify a downstream.",
            |d| Some(d.failed_attempts),
        ),
        (
            "clamav_mirror_downstream_consecutive_failures",
            "gauge",
            "Failed attempts to notify a downstream since its last delivery.",
            |d| Some(d.consecutive_failures),
        ),
        (
            "clamav_mirror_downstream_given_up_total",
            "counter",
            "Notices given up on after every retry failed.",
            |d| Some(d.given_up),
        ),
        (
            "clamav_mirror_downstream_last_success_timestamp_seconds",
            "gauge",
            "Unix time a downstream last accepted a notice.",
            |d| d.last_success.and_then(|t| u64::try_from(t).ok()),
        ),
    ];
    for (name, kind, help, field) in per_downstream {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (u, d) in &p.downstreams {
            if let Some(v) = field(d) {
                // The label is the URL without credentials or query (a push URL may
                // carry them; /metrics is often scraped from afar).
                let label = crate::status_page::redact(u);
                let _ = writeln!(out, "{name}{{downstream=\"{}\"}} {v}", escape(&label));
            }
        }
    }
    let h = &p.propagation;
    out.push_str("# HELP clamav_mirror_propagation_seconds Time from the origin's publish to the publish here, per pushed update.\n# TYPE clamav_mirror_propagation_seconds histogram\n");
    for (i, le) in push::state::PROPAGATION_BUCKETS.iter().enumerate() {
        let _ = writeln!(
            out,
            "clamav_mirror_propagation_seconds_bucket{{le=\"{le}\"}} {}",
            h.buckets.get(i).copied().unwrap_or(0)
        );
    }
    let _ = writeln!(
        out,
        "clamav_mirror_propagation_seconds_bucket{{le=\"+Inf\"}} {}",
        h.count
    );
    let _ = writeln!(out, "clamav_mirror_propagation_seconds_sum {}", h.sum);
    let _ = writeln!(out, "clamav_mirror_propagation_seconds_count {}", h.count);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use mirror_core::status::DatabaseStatus;

    #[test]
    fn downstream_labels_carry_no_credentials_or_query() {
        let mut p = push::state::PushState::default();
        p.downstreams.insert(
            "https://tier2:s3cret@tier2.example:8443/push?token=abc".into(),
            push::state::DownstreamState {
                delivered: 3,
                ..Default::default()
            },
        );
        let text = render_push(&p);
        assert!(
            text.contains("clamav_mirror_downstream_delivered_total{downstream=\"https://…@tier2.example:8443/push?…\"} 3"),
            "{text}"
        );
        assert!(!text.contains("s3cret") && !text.contains("abc"), "{text}");
    }

    #[test]
    fn counts_and_renders() {
        let m = Metrics::default();
        m.request(RequestKind::File(FileKind::Cdiff), 200);
        m.request(RequestKind::File(FileKind::Cdiff), 200);
        m.request(RequestKind::Other, 404);
        m.request(RequestKind::Health, 299);
        m.bytes(RequestKind::File(FileKind::Cvd), 512);
        let mut st = MirrorStatus {
            last_publish: Some(1000),
            ..Default::default()
        };
        st.databases.insert(
            "da\"ily".into(),
            DatabaseStatus {
                published_version: Some(27001),
                last_error_kind: Some("upstream".into()),
                consecutive_failures: 3,
                chain_failures: 4,
                cdiffs: vec![5, 6, 7],
                unproven_cdiffs: vec![5, 6],
                ..Default::default()
            },
        );
        let text = m.render(Some(&st), true, 1600);
        assert!(
            text.contains("sigserver_mirror_unproven_cdiffs{db=\"da\\\"ily\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("sigserver_mirror_chain_failures_total{db=\"da\\\"ily\"} 4\n"));
        assert!(text.contains("# TYPE sigserver_mirror_chain_failures_total counter\n"));
        assert!(
            text.contains("sigserver_requests_total{kind=\"cdiff\",status=\"200\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("sigserver_requests_total{kind=\"other\",status=\"404\"} 1\n"));
        assert!(text.contains("sigserver_requests_total{kind=\"health\",status=\"other\"} 1\n"));
        assert!(text.contains("sigserver_sent_bytes_total{kind=\"cvd\"} 512\n"));
        assert!(text.contains("sigserver_mirror_published_version{db=\"da\\\"ily\"} 27001\n"));
        assert!(
            text.contains("sigserver_mirror_sync_failures{db=\"da\\\"ily\",kind=\"upstream\"} 3\n")
        );
        assert!(text.contains("sigserver_mirror_snapshot_age_seconds 600\n"));
        m.dns_query(DnsTransport::Tcp, DnsOutcome::NxDomain);
        let text = m.render(None, false, 0);
        assert!(
            text.contains(
                "sigserver_dns_queries_total{transport=\"tcp\",outcome=\"nxdomain\"} 1\n"
            ),
            "{text}"
        );
        assert!(text.contains(
            "sigserver_dns_queries_total{transport=\"udp\",outcome=\"rate_limited\"} 0\n"
        ));
        assert!(!m.render(None, false, 0).contains("published_version{"));
    }

    #[test]
    fn renders_targets() {
        use mirror_core::targets::{TargetState, TargetsRecord};
        let mut t = TargetsRecord::default();
        t.targets.insert(
            "s3://b/p".into(),
            TargetState {
                published_generation: Some("g-000001".into()),
                consecutive_failures: 2,
                ..Default::default()
            },
        );
        t.targets.insert(
            "file:///x".into(),
            TargetState {
                published_generation: Some("g-000002".into()),
                last_success_unix: Some(7),
                ..Default::default()
            },
        );
        let mut out = String::new();
        render_targets(&mut out, &t, Some("g-000002"));
        assert!(
            out.contains("sigserver_target_lagging{target=\"s3://b/p\"} 1\n"),
            "{out}"
        );
        assert!(
            out.contains("sigserver_target_lagging{target=\"file:///x\"} 0\n"),
            "{out}"
        );
        assert!(out.contains("sigserver_target_consecutive_failures{target=\"s3://b/p\"} 2\n"));
        assert!(
            out.contains(
                "sigserver_target_last_success_timestamp_seconds{target=\"file:///x\"} 7\n"
            )
        );
        assert!(
            !out.contains("sigserver_target_last_success_timestamp_seconds{target=\"s3://b/p\"}")
        );
    }
}
