//! Whether a mirror is provably behind, per database: the one rule `sigserver`'s
//! `/ready`, its redirects and DNS record, `/metrics` and `sigupdate status` share.
//!
//! A database is **provably behind** when a newer version than the published one is
//! known — from upstream (its manifest, DNS record or header, recorded in
//! `status.json` with the time it was first seen) or from an accepted push notice
//! (`push.json`'s `announced`) — and it is still not published `lag` after it became
//! known. A notice a sync found to be false (`push.json`'s `unconfirmed`) does not
//! count.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use mirror_core::status::MirrorStatus;
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::state::PushState;

/// File name of the redirect state inside a mirror directory.
pub const REDIRECT_STATE_FILE: &str = "redirect.json";

/// `DIR/redirect.json`: what a `sigserver --behind-redirect` serving the directory
/// redirects, written (atomically) by it at start and on every change, read by
/// `sigupdate status`. Information only.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedirectState {
    /// The redirect target.
    pub target: String,
    /// Unix seconds of the last change.
    pub since: i64,
    /// The process that wrote it (to tell a stale file).
    pub pid: u32,
    /// The databases redirected now: name → (served version, newest known).
    #[serde(default)]
    pub redirected: BTreeMap<String, (Option<u32>, u32)>,
}

impl RedirectState {
    /// Reads `dir/redirect.json`; `Ok(None)` when there is none.
    pub fn read(dir: &Path) -> Result<Option<Self>, Error> {
        let path = dir.join(REDIRECT_STATE_FILE);
        mirror_core::json_file::read(&path).map_err(|e| Error::State {
            path,
            what: "read".into(),
            source: Box::new(e),
        })
    }

    /// Writes `dir/redirect.json` atomically.
    pub fn store(&self, dir: &Path) -> Result<(), Error> {
        let path = dir.join(REDIRECT_STATE_FILE);
        mirror_core::json_file::store(&path, self).map_err(|e| Error::State {
            path,
            what: "write".into(),
            source: Box::new(e),
        })
    }
}

/// Where the newest known version of a database was learnt.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Source {
    /// Upstream advertised it (manifest, DNS record or header).
    Upstream,
    /// A push notice from this sender announced it.
    Notice(String),
}

/// One database of a mirror: what it serves and the newest version it knows of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Database {
    /// The database name.
    pub db: String,
    /// The version served (published), if any.
    pub serving: Option<u32>,
    /// The newest version known to exist (at least [`serving`](Self::serving)).
    pub newest: Option<u32>,
    /// Where [`newest`](Self::newest) was learnt, when it is above what is served.
    pub source: Option<Source>,
    /// Unix seconds since which [`newest`](Self::newest) is known and not served
    /// (`None`: not behind).
    pub behind_since: Option<i64>,
    /// Provably behind: behind for longer than the lag.
    pub provably_behind: bool,
}

/// Every database the status or the push state names, in name order.
pub fn databases(
    st: &MirrorStatus,
    push: Option<&PushState>,
    lag: Duration,
    now: i64,
) -> Vec<Database> {
    let lag = i64::try_from(lag.as_secs()).unwrap_or(i64::MAX);
    let mut names: Vec<&String> = st.databases.keys().collect();
    if let Some(p) = push {
        names.extend(p.announced.keys());
    }
    names.sort();
    names.dedup();
    names
        .into_iter()
        .map(|db| {
            let d = st.databases.get(db);
            let serving = d.and_then(|d| d.published_version);
            let newer = |v: u32| serving.is_none_or(|s| s < v);
            // (version, since, source) candidates above what is served
            let mut known: Vec<(u32, i64, Source)> = Vec::new();
            if let Some(d) = d
                && let (Some(up), Some(seen)) = (d.upstream_version, d.upstream_seen_at)
                && newer(up)
            {
                known.push((up, seen, Source::Upstream));
            }
            if let Some(a) = push.and_then(|p| p.announced.get(db))
                && newer(a.version)
            {
                known.push((a.version, a.since, Source::Notice(a.sender.clone())));
            }
            // the highest version; behind since the earliest time anything newer was known
            let since = known.iter().map(|k| k.1).min();
            let top = known
                .into_iter()
                .max_by_key(|k| (k.0, std::cmp::Reverse(k.1)));
            Database {
                db: db.clone(),
                serving,
                newest: top.as_ref().map(|t| t.0).or(serving),
                provably_behind: since.is_some_and(|s| now.saturating_sub(s) > lag),
                behind_since: since,
                source: top.map(|t| t.2),
            }
        })
        .collect()
}

/// The databases that are provably behind (see the module documentation).
pub fn provably_behind(
    st: &MirrorStatus,
    push: Option<&PushState>,
    lag: Duration,
    now: i64,
) -> Vec<Database> {
    databases(st, push, lag, now)
        .into_iter()
        .filter(|d| d.provably_behind)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Announcement;
    use mirror_core::status::DatabaseStatus;

    const LAG: Duration = Duration::from_secs(600);

    fn status(published: Option<u32>, up: Option<(u32, i64)>) -> MirrorStatus {
        let mut st = MirrorStatus::default();
        st.databases.insert(
            "daily".into(),
            DatabaseStatus {
                published_version: published,
                upstream_version: up.map(|u| u.0),
                upstream_seen_at: up.map(|u| u.1),
                ..Default::default()
            },
        );
        st
    }

    #[test]
    fn behind_only_after_the_lag() {
        let st = status(Some(7), Some((8, 1000)));
        let d = &databases(&st, None, LAG, 1600)[0];
        assert_eq!(
            (d.serving, d.newest, d.behind_since),
            (Some(7), Some(8), Some(1000))
        );
        assert!(!d.provably_behind);
        assert!(provably_behind(&st, None, LAG, 1600).is_empty());
        let b = provably_behind(&st, None, LAG, 1601);
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].source, Some(Source::Upstream));
        // published: not behind, newest is what is served
        let st = status(Some(8), Some((8, 1000)));
        let d = &databases(&st, None, LAG, 9999)[0];
        assert_eq!(
            (d.newest, d.behind_since, d.provably_behind),
            (Some(8), None, false)
        );
    }

    #[test]
    fn notices_count_unconfirmed_ones_do_not() {
        let st = status(Some(8), Some((8, 1000)));
        let mut p = PushState::default();
        let a = |v| Announcement {
            version: v,
            sender: "tier1".into(),
            since: 4000,
        };
        p.unconfirmed.insert("daily".into(), a(20));
        assert!(provably_behind(&st, Some(&p), LAG, 9999).is_empty());
        p.announced.insert("daily".into(), a(9));
        p.announced.insert("main".into(), a(3));
        let b = provably_behind(&st, Some(&p), LAG, 4601);
        assert_eq!(b.len(), 2, "{b:?}");
        assert_eq!(b[0].newest, Some(9));
        assert_eq!(b[0].source, Some(Source::Notice("tier1".into())));
        assert_eq!((b[1].db.as_str(), b[1].serving), ("main", None));
        // the higher of upstream and notice is the newest; the earlier time counts
        let st = status(Some(7), Some((8, 3000)));
        let b = provably_behind(&st, Some(&p), LAG, 3601);
        assert_eq!((b[0].newest, b[0].behind_since), (Some(9), Some(3000)));
    }
}
