//! The push hub of a syncing process: receives notices, decides whether one is worth
//! a sync, coalesces sync requests, records the push state, and starts the cascade
//! after a publish.
//!
//! Coalescing: a request (notice, poll timer, DNS change, signal) sets "update
//! required" and wakes the sync loop ([`PushHub::wait`]); requests arriving while a
//! sync runs leave exactly one more pass behind, however many there are. A notice
//! whose versions are all published here costs nothing; one that only repeats a
//! version a sync already found missing upstream costs nothing either.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mirror_core::trace::{DatabaseTrace, Hop, SyncHints};
use tracing::{info, warn};

use crate::cascade::{Attempt, Cascade, CascadeConfig, Downstream};
use crate::notice::Notice;
use crate::receiver::{NoticeHeaders, Receiver};
use crate::state::PushState;

/// How long a version found missing upstream keeps notices announcing it (or more)
/// from starting syncs: an hour, the default poll interval.
pub const UNCONFIRMED_SECS: i64 = 3600;

/// The answer to a `POST /push`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// HTTP status: 202, 400, 401, 404, 413 or 429.
    pub status: u16,
    /// One line of text.
    pub body: String,
}

/// What one sync is for, taken by [`PushHub::begin`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncRequest {
    /// Why it runs: `start`, `poll`, `push`, `dns` or `signal` (several joined by `+`).
    pub reason: String,
    /// The announced versions and their hops, for the trace.
    pub hints: SyncHints,
    /// The notifying upstream's base URL, to try first when it is configured.
    pub prefer_upstream: Option<String>,
    /// Announced version and sender per database.
    pub announced: BTreeMap<String, (u32, String)>,
}

/// What a sync did, handed to [`PushHub::finish`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncResult {
    /// Published version per database after the sync.
    pub published: BTreeMap<String, u32>,
    /// Version upstream advertised per database at this sync.
    pub upstream: BTreeMap<String, u32>,
    /// The trace entries of the databases this sync published a new version of.
    pub new: BTreeMap<String, DatabaseTrace>,
    /// The trace entries of every database the published generation holds (what a
    /// restarted mirror announces again: a cascade cut short by a crash or restart is
    /// completed at the next start; a downstream that has the versions pays nothing).
    pub current: BTreeMap<String, DatabaseTrace>,
    /// Third-party feed → fingerprint of what the published generation holds of it.
    pub feeds: BTreeMap<String, String>,
    /// Those of [`feeds`](Self::feeds) this sync changed (named in the cascade's notice).
    pub new_feeds: BTreeMap<String, String>,
}

#[derive(Debug, Default)]
struct Pending {
    reasons: BTreeSet<&'static str>,
    announced: BTreeMap<String, (u32, Vec<Hop>, String)>,
    prefer: Option<String>,
}

struct Inner {
    state: PushState,
    pending: Pending,
    published: BTreeMap<String, u32>,
    dns_requested: BTreeMap<String, u32>,
    /// Published feed fingerprints (known after the first sync).
    feeds: BTreeMap<String, String>,
    /// Feed fingerprints a notice already started a sync for (a repeated or lying
    /// notice costs at most that one sync).
    feeds_requested: BTreeMap<String, String>,
    dirty: bool,
    last_store: Option<Instant>,
}

struct Shared {
    dir: PathBuf,
    inner: Mutex<Inner>,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stores the state now, or soon when it was stored less than a second ago.
    fn store(&self, g: &mut Inner, now: bool) {
        g.dirty = true;
        if !now
            && g.last_store
                .is_some_and(|t| t.elapsed() < Duration::from_secs(1))
        {
            return;
        }
        if let Err(e) = g.state.store(&self.dir) {
            warn!("{e}");
        }
        g.dirty = false;
        g.last_store = Some(Instant::now());
    }
}

/// This mirror's push identity and downstreams.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// Its name (the sender name downstreams know it by).
    pub name: String,
    /// Its public base URL (downstreams prefer it when it is one of their upstreams).
    pub url: Option<String>,
    /// Where to send, each downstream with the secret of its pair.
    pub cascade: Option<(Vec<Downstream>, CascadeConfig)>,
}

/// The push hub (share it through an `Arc`).
pub struct PushHub {
    shared: Arc<Shared>,
    receiver: Receiver,
    name: String,
    url: Option<String>,
    cascade: Option<Cascade>,
    wake: tokio::sync::Notify,
}

impl std::fmt::Debug for PushHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushHub")
            .field("dir", &self.shared.dir)
            .field("name", &self.name)
            .field("cascade", &self.cascade)
            .finish_non_exhaustive()
    }
}

fn now_secs() -> i64 {
    i64::try_from(now_ms() / 1000).unwrap_or(i64::MAX)
}

/// Unix milliseconds now.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl PushHub {
    /// A hub for the mirror in `dir`, which holds `published` now. The push state
    /// file is read to continue its counters (a damaged one is logged and replaced).
    pub fn new(
        dir: &Path,
        receiver: Receiver,
        outgoing: Outgoing,
        published: BTreeMap<String, u32>,
    ) -> Arc<Self> {
        let state = match PushState::read(dir) {
            Ok(s) => s.unwrap_or_default(),
            Err(e) => {
                warn!("{e}; starting a new one");
                PushState::default()
            }
        };
        let shared = Arc::new(Shared {
            dir: dir.to_owned(),
            inner: Mutex::new(Inner {
                state,
                pending: Pending::default(),
                published,
                dns_requested: BTreeMap::new(),
                feeds: BTreeMap::new(),
                feeds_requested: BTreeMap::new(),
                dirty: false,
                last_store: None,
            }),
        });
        let cascade = outgoing.cascade.map(|(downstreams, config)| {
            let s = shared.clone();
            Cascade::new(
                downstreams,
                &outgoing.name,
                config,
                Arc::new(move |url: &str, a: &Attempt| {
                    let mut g = s.lock();
                    let d = g.state.downstreams.entry(url.to_owned()).or_default();
                    match a {
                        Attempt::Delivered => {
                            d.delivered += 1;
                            d.consecutive_failures = 0;
                            d.last_success = Some(now_secs());
                            info!(downstream = url, "notice delivered");
                        }
                        Attempt::Failed(why) | Attempt::GaveUp(why) => {
                            d.failed_attempts += 1;
                            d.consecutive_failures += 1;
                            d.last_failure = Some(now_secs());
                            d.last_error = Some(why.clone());
                            if matches!(a, Attempt::GaveUp(_)) {
                                d.given_up += 1;
                                warn!(downstream = url, "giving up on this notice: {why}");
                            } else {
                                warn!(downstream = url, "notice not delivered, retrying: {why}");
                            }
                        }
                    }
                    let now = matches!(a, Attempt::GaveUp(_) | Attempt::Delivered);
                    s.store(&mut g, now);
                }),
            )
        });
        Arc::new(PushHub {
            shared,
            receiver,
            name: outgoing.name,
            url: outgoing.url,
            cascade,
            wake: tokio::sync::Notify::new(),
        })
    }

    /// Whether notices are received at all (any sender configured).
    pub fn receives(&self) -> bool {
        self.receiver.has_senders()
    }

    /// Handles one `POST /push`. Without configured senders the answer is 404.
    pub fn handle(&self, headers: &NoticeHeaders, body: &[u8]) -> Reply {
        if !self.receiver.has_senders() {
            return Reply {
                status: 404,
                body: "push notices are not configured here\n".into(),
            };
        }
        let checked = self.receiver.check(headers, body, now_ms());
        let mut g = self.shared.lock();
        let accepted = match checked {
            Ok(a) => a,
            Err(r) => {
                PushState::count(&mut g.state.notices, r.outcome());
                warn!(
                    sender = headers.sender.as_deref().unwrap_or("-"),
                    outcome = r.outcome(),
                    "push notice refused: {r}"
                );
                self.shared.store(&mut g, false);
                return Reply {
                    status: r.status(),
                    body: format!("{r}\n"),
                };
            }
        };
        PushState::count(&mut g.state.notices, "accepted");
        let n = &accepted.notice;
        let mut wanted = false;
        let mut repeats_unconfirmed = false;
        for (db, &v) in &n.databases {
            if g.published.get(db).is_some_and(|&p| p >= v) {
                continue;
            }
            // A version at or above one a sync already found missing upstream is the
            // same claim again (or a bigger one): not worth a sync until the record
            // expires or a poll publishes past it. Below it, a real update passes.
            let now = now_secs();
            if g.state
                .unconfirmed
                .get(db)
                .is_some_and(|u| v >= u.version && now.saturating_sub(u.since) < UNCONFIRMED_SECS)
            {
                repeats_unconfirmed = true;
                continue;
            }
            wanted = true;
            let since = now_secs();
            let a =
                g.state
                    .announced
                    .entry(db.clone())
                    .or_insert_with(|| crate::state::Announcement {
                        version: v,
                        sender: accepted.sender.clone(),
                        since,
                    });
            if a.version < v {
                // Lag is measured from the first announcement of an unpublished
                // version: a newer one does not restart the clock.
                a.version = v;
                a.sender = accepted.sender.clone();
            }
            let hops = n.hops.clone();
            let e = g.pending.announced.entry(db.clone()).or_insert((
                v,
                hops.clone(),
                accepted.sender.clone(),
            ));
            if e.0 < v {
                *e = (v, hops, accepted.sender.clone());
            }
        }
        for (feed, fp) in &n.feeds {
            let have = g.feeds.get(feed) == Some(fp);
            let asked = g.feeds_requested.get(feed) == Some(fp);
            if !have && !asked {
                g.feeds_requested.insert(feed.clone(), fp.clone());
                wanted = true;
            }
        }
        let action = if wanted {
            "sync"
        } else if repeats_unconfirmed {
            "unconfirmed"
        } else {
            "already_published"
        };
        PushState::count(&mut g.state.notice_actions, action);
        info!(
            sender = %accepted.sender,
            origin = %n.origin,
            id = %n.id,
            databases = ?n.databases,
            feeds = ?n.feeds.keys().collect::<Vec<_>>(),
            action,
            "push notice accepted"
        );
        if wanted {
            g.pending.reasons.insert("push");
            if let Some(u) = &n.upstream {
                g.pending.prefer = Some(u.clone());
            }
        }
        self.shared.store(&mut g, false);
        drop(g);
        if wanted {
            self.wake.notify_one();
        }
        Reply {
            status: 202,
            body: format!("accepted: {action}\n"),
        }
    }

    /// Asks for a sync for another reason (`poll`, `dns`, `signal`, `start`).
    pub fn request(&self, reason: &'static str) {
        self.shared.lock().pending.reasons.insert(reason);
        self.wake.notify_one();
    }

    /// Waits until a sync is requested (returns at once when one was requested since
    /// the last [`begin`](Self::begin)).
    pub async fn wait(&self) {
        // A wake-up can be stale (its request was taken by the last `begin`): only a
        // pending request ends the wait.
        while self.shared.lock().pending.reasons.is_empty() {
            self.wake.notified().await;
        }
    }

    /// Takes what the pending requests ask for; the sync starts now.
    pub fn begin(&self) -> SyncRequest {
        let mut g = self.shared.lock();
        let p = std::mem::take(&mut g.pending);
        let reason = if p.reasons.is_empty() {
            "poll".to_owned()
        } else {
            p.reasons.iter().copied().collect::<Vec<_>>().join("+")
        };
        for r in &p.reasons {
            PushState::count(&mut g.state.syncs, r);
        }
        let mut req = SyncRequest {
            reason,
            prefer_upstream: p.prefer,
            ..SyncRequest::default()
        };
        for (db, (v, hops, sender)) in p.announced {
            req.hints.announced.insert(db.clone(), (v, hops));
            req.announced.insert(db, (v, sender));
        }
        req
    }

    /// Records what a sync did: announced versions published or found missing
    /// upstream, the propagation times, and starts the cascade for new versions.
    /// Returns the cascade's thread when one started.
    pub fn finish(
        &self,
        req: &SyncRequest,
        result: &SyncResult,
    ) -> Option<std::thread::JoinHandle<()>> {
        let mut g = self.shared.lock();
        for (db, &v) in &result.published {
            g.published.insert(db.clone(), v);
        }
        let published = g.published.clone();
        g.feeds = result.feeds.clone();
        let feeds = g.feeds.clone();
        g.feeds_requested
            .retain(|f, fp| feeds.get(f).is_some_and(|have| have != fp));
        g.state
            .announced
            .retain(|db, a| published.get(db).is_none_or(|&p| p < a.version));
        g.state
            .unconfirmed
            .retain(|db, a| published.get(db).is_none_or(|&p| p < a.version));
        for (db, (v, sender)) in &req.announced {
            if published.get(db).is_some_and(|p| p >= v) {
                continue;
            }
            if result.upstream.get(db).is_some_and(|u| u >= v) {
                // Real, but not published yet (e.g. it failed verification): the lag
                // rule of /ready applies.
                continue;
            }
            warn!(
                db = %db,
                announced = v,
                sender = %sender,
                upstream = ?result.upstream.get(db),
                "announced version not found upstream: notice unconfirmed, not retried"
            );
            g.state.unconfirmed.insert(
                db.clone(),
                crate::state::Announcement {
                    version: *v,
                    sender: sender.clone(),
                    since: now_secs(),
                },
            );
            if g.state.announced.get(db).is_some_and(|a| a.version <= *v) {
                g.state.announced.remove(db);
            }
        }
        for t in result.new.values() {
            if t.hops.len() >= 2
                && let Some(ms) = t.propagation_ms()
            {
                g.state.propagation.observe(ms as f64 / 1000.0);
            }
        }
        self.shared.store(&mut g, true);
        drop(g);
        let cascade = self.cascade.as_ref()?;
        let announce = if result.new.is_empty() && req.reason.split('+').any(|r| r == "start") {
            &result.current
        } else {
            &result.new
        };
        let start = result.new.is_empty() && req.reason.split('+').any(|r| r == "start");
        let feeds_changed = if start && result.new_feeds.is_empty() {
            result.feeds.clone()
        } else {
            result.new_feeds.clone()
        };
        if announce.is_empty() && feeds_changed.is_empty() {
            return None;
        }
        if announce.is_empty() {
            // Only feeds changed: one notice naming them, this mirror their origin.
            let notice = Notice::new(
                &self.name,
                self.url.as_deref(),
                BTreeMap::new(),
                Vec::new(),
                now_ms(),
                now_ms(),
            )
            .with_feeds(feeds_changed);
            info!(id = %notice.id, feeds = ?notice.feeds.keys().collect::<Vec<_>>(), downstreams = cascade.downstreams().len(), "notifying downstreams");
            return Some(cascade.send(notice));
        }
        let mut feeds_changed = Some(feeds_changed).filter(|f| !f.is_empty());
        // One notice per distinct way the versions came (usually one).
        let mut groups: BTreeMap<Vec<Hop>, (BTreeMap<String, u32>, u64)> = BTreeMap::new();
        for (db, t) in announce {
            let mut before = t.hops.clone();
            before.pop();
            let e = groups.entry(before).or_default();
            e.0.insert(db.clone(), t.version);
            e.1 = e.1.max(t.published_ms);
        }
        let mut last = None;
        for (hops, (dbs, published_ms)) in groups {
            let notice = Notice::new(
                &self.name,
                self.url.as_deref(),
                dbs,
                hops,
                published_ms,
                now_ms(),
            )
            .with_feeds(feeds_changed.take().unwrap_or_default());
            info!(id = %notice.id, databases = ?notice.databases, feeds = ?notice.feeds.keys().collect::<Vec<_>>(), downstreams = cascade.downstreams().len(), "notifying downstreams");
            last = Some(cascade.send(notice));
        }
        last
    }

    /// The top tier's DNS check: `versions` is what the version TXT record says now.
    /// Requests a sync (reason `dns`) when one of `databases` is newer there than here
    /// and was not already requested at that version; returns whether it did. A
    /// version whose sync did not publish it is not requested again by DNS (the poll
    /// interval retries it), so a record ahead of the CDN costs no extra HTTP traffic.
    pub fn dns_seen(&self, versions: &BTreeMap<String, u32>, databases: &[String]) -> bool {
        let mut g = self.shared.lock();
        let mut wanted = false;
        for db in databases {
            let Some(&v) = versions.get(db) else { continue };
            let newer = g.published.get(db).is_none_or(|&p| p < v);
            let asked = g.dns_requested.get(db).is_some_and(|&a| a >= v);
            if newer && !asked {
                g.dns_requested.insert(db.clone(), v);
                wanted = true;
            }
        }
        if wanted {
            g.pending.reasons.insert("dns");
            drop(g);
            info!(?versions, "version record changed: syncing now");
            self.wake.notify_one();
        }
        wanted
    }

    /// Starts a task on the current tokio runtime that stores waiting changes every
    /// second (the state is written at most once a second while notices arrive); it
    /// ends when the hub is dropped.
    pub fn spawn_flusher(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                match weak.upgrade() {
                    Some(hub) => hub.flush(),
                    None => return,
                }
            }
        });
    }

    /// Stores the state if changes are waiting (call it now and then).
    pub fn flush(&self) {
        let mut g = self.shared.lock();
        if g.dirty {
            self.shared.store(&mut g, true);
        }
    }
}
