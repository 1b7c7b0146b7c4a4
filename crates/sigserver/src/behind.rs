//! Redirecting what a mirror lacks while it is provably behind (`--behind-redirect`).
//!
//! `freshclam` never moves to another mirror over a missing cdiff (a `404` or `5xx`
//! on a cdiff is retried, then it "settles" for what it has), so a mirror that is
//! stuck keeps its clients stuck. While a database is provably behind (the rule of
//! [`push::behind`], the one `/ready` answers `503` by), requests for what this
//! mirror lacks of it — its `.cvd`/`.cld`, cdiffs above the served version, and their
//! `.sign` files — get `302` to the configured URL + the same path (freshclam follows
//! up to 3 redirects, for every file kind). Everything else, and everything once it
//! has caught up, it serves itself. With DNS on, the record announces the newest
//! known version of a behind database, so DNS clients come for it and are redirected
//! ([`announced`]).
//!
//! The state is re-read from `status.json` and `push.json` when either file changes
//! and at least every [`REFRESH`] (the lag is a matter of time passing), and logged
//! once per change.

use crate::serve::unix_now;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use mirror_core::model::{FileName, FileNameKind};

/// Longest time a computed state is reused while the files are unchanged.
pub(crate) const REFRESH: Duration = Duration::from_secs(1);

/// One provably behind database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Lag {
    /// The version served, if any.
    pub(crate) serving: Option<u32>,
    /// The newest version known.
    pub(crate) newest: u32,
}

/// Provably behind databases, by name.
pub(crate) type Behind = BTreeMap<String, Lag>;

#[derive(Debug)]
struct Cached {
    at: Instant,
    stamps: (Option<SystemTime>, Option<SystemTime>),
    behind: Arc<Behind>,
}

/// The redirect target and the cached state.
#[derive(Debug)]
pub(crate) struct Redirect {
    base: String,
    status_file: PathBuf,
    push_file: PathBuf,
    cache: Mutex<Option<Cached>>,
    /// Redirects sent (for `/metrics`).
    pub(crate) sent: AtomicU64,
}

impl Redirect {
    pub(crate) fn new(dir: &Path, base: &str) -> Redirect {
        Redirect {
            base: base.to_owned(),
            status_file: dir.join(mirror_core::status::STATUS_FILE),
            push_file: dir.join(push::state::PUSH_STATE_FILE),
            cache: Mutex::new(None),
            sent: AtomicU64::new(0),
        }
    }

    /// The redirect target URL.
    pub(crate) fn base(&self) -> &str {
        &self.base
    }

    /// The databases this mirror is provably behind on now.
    pub(crate) fn behind(&self, dir: &Path, lag: Duration) -> Arc<Behind> {
        let mtime = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        let stamps = (mtime(&self.status_file), mtime(&self.push_file));
        let mut cache = match self.cache.lock() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(c) = cache.as_ref()
            && c.stamps == stamps
            && c.at.elapsed() < REFRESH
        {
            return c.behind.clone();
        }
        let behind = Arc::new(compute(dir, lag, unix_now()));
        let before = cache.as_ref().map(|c| c.behind.clone());
        if before.as_deref().unwrap_or(&Behind::new()) != &*behind {
            log_change(&self.base, &behind);
        }
        if before.as_deref() != Some(&*behind) {
            self.record(dir, &behind);
        }
        *cache = Some(Cached {
            at: Instant::now(),
            stamps,
            behind: behind.clone(),
        });
        behind
    }

    /// Writes `DIR/redirect.json` for `sigupdate status` (a read-only directory only
    /// costs a warning per change).
    fn record(&self, dir: &Path, behind: &Behind) {
        let state = push::behind::RedirectState {
            target: self.base.clone(),
            since: unix_now(),
            pid: std::process::id(),
            redirected: behind
                .iter()
                .map(|(db, l)| (db.clone(), (l.serving, l.newest)))
                .collect(),
        };
        if let Err(e) = state.store(dir) {
            tracing::warn!(error = %e, "behind-redirect: cannot record the redirect state");
        }
    }

    /// Where a request for the served file `name` is sent instead, if anywhere.
    pub(crate) fn target(&self, dir: &Path, lag: Duration, name: &str) -> Option<String> {
        let n = FileName::parse(name)?;
        let db = n.db()?;
        let behind = self.behind(dir, lag);
        let l = behind.get(db)?;
        let above = |v: Option<u32>| match (v, l.serving) {
            (Some(v), Some(m)) => v > m,
            (Some(_), None) => true,
            (None, _) => false,
        };
        let lacks = match n.kind() {
            FileNameKind::Cvd | FileNameKind::Cld => true,
            FileNameKind::Cdiff | FileNameKind::CdiffSign | FileNameKind::CvdSign => {
                above(n.version())
            }
            FileNameKind::Manifest => false,
        };
        if !lacks {
            return None;
        }
        self.sent.fetch_add(1, Ordering::Relaxed);
        Some(format!("{}/{name}", self.base))
    }
}

/// What the DNS record announces for each database: the newest known version of a
/// database that is provably behind, what is served otherwise.
pub(crate) fn announced(served: &BTreeMap<String, u32>, behind: &Behind) -> BTreeMap<String, u32> {
    let mut out = served.clone();
    for (db, l) in behind {
        let v = out.entry(db.clone()).or_insert(l.newest);
        *v = (*v).max(l.newest);
    }
    out
}

/// The versions the DNS record announces: the published snapshot's, with the newest
/// known version of each provably behind database while redirects are on (without a
/// redirect target the record stays what is served, consistent with the files).
pub(crate) fn dns_published(
    state: &crate::serve::State,
    published: Option<Arc<crate::dns::answer::Published>>,
) -> Option<Arc<crate::dns::answer::Published>> {
    let Some(r) = &state.redirect else {
        return published;
    };
    let behind = r.behind(&state.dir, state.ready_lag);
    if behind.is_empty() {
        return published;
    }
    let p = published?;
    Some(Arc::new(crate::dns::answer::Published::new(
        &announced(p.versions(), &behind),
        p.serial(),
    )))
}

fn compute(dir: &Path, lag: Duration, now: i64) -> Behind {
    let Ok(st) = mirror_core::status::MirrorStatus::load(dir) else {
        return Behind::new();
    };
    let p = push::state::PushState::read(dir).ok().flatten();
    push::behind::provably_behind(&st, p.as_ref(), lag, now)
        .into_iter()
        .filter_map(|d| {
            Some((
                d.db,
                Lag {
                    serving: d.serving,
                    newest: d.newest?,
                },
            ))
        })
        .collect()
}

fn log_change(base: &str, behind: &Behind) {
    if behind.is_empty() {
        tracing::info!(target = %base, "behind-redirect: caught up; serving everything here, redirecting nothing");
        return;
    }
    for (db, l) in behind {
        tracing::warn!(
            db = %db,
            serving = ?l.serving,
            newest = l.newest,
            target = %base,
            "behind-redirect: provably behind; redirecting {db}'s .cvd/.cld and cdiffs above the served version"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mirror_core::status::{DatabaseStatus, MirrorStatus};

    fn mirror(published: u32, upstream: u32, seen: i64) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let mut st = MirrorStatus::default();
        st.databases.insert(
            "test".into(),
            DatabaseStatus {
                published_version: Some(published),
                upstream_version: Some(upstream),
                upstream_seen_at: Some(seen),
                ..Default::default()
            },
        );
        st.store(d.path()).unwrap();
        d
    }

    #[test]
    fn redirects_only_what_it_lacks_while_provably_behind() {
        let d = mirror(3, 6, unix_now() - 100);
        let r = Redirect::new(d.path(), "http://up:8080");
        let lag = Duration::from_secs(10);
        let t = |n: &str| r.target(d.path(), lag, n);
        assert_eq!(t("test.cvd").as_deref(), Some("http://up:8080/test.cvd"));
        assert_eq!(t("test.cld").as_deref(), Some("http://up:8080/test.cld"));
        assert_eq!(
            t("test-4.cdiff").as_deref(),
            Some("http://up:8080/test-4.cdiff")
        );
        assert!(t("test-6.cdiff.sign").is_some());
        assert!(t("test-6.cvd.sign").is_some());
        for held in [
            "test-3.cdiff",
            "test-2.cdiff.sign",
            "test-3.cvd.sign",
            "dns.txt",
            "daily.cvd",
        ] {
            assert_eq!(t(held), None, "{held}");
        }
        assert_eq!(r.sent.load(Ordering::Relaxed), 5);
        // within the lag: nothing is redirected
        let d2 = mirror(3, 6, unix_now());
        let r2 = Redirect::new(d2.path(), "http://up:8080");
        assert_eq!(r2.target(d2.path(), lag, "test.cvd"), None);
        // caught up: the new status.json is seen at once
        let mut st = MirrorStatus::load(d.path()).unwrap();
        st.databases.get_mut("test").unwrap().published_version = Some(6);
        st.store(d.path()).unwrap();
        // (a file system with coarse timestamps may show the same mtime: wait REFRESH)
        let deadline = Instant::now() + REFRESH * 3;
        while t("test.cvd").is_some() {
            assert!(
                Instant::now() < deadline,
                "still redirecting after catching up"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(t("test-6.cdiff"), None);
    }

    #[test]
    fn dns_announces_the_newest_known_while_behind() {
        let served = BTreeMap::from([("test".to_owned(), 3), ("daily".to_owned(), 9)]);
        let behind = Behind::from([(
            "test".to_owned(),
            Lag {
                serving: Some(3),
                newest: 6,
            },
        )]);
        let a = announced(&served, &behind);
        assert_eq!((a["test"], a["daily"]), (6, 9));
        assert_eq!(announced(&served, &Behind::new()), served);
    }
}
