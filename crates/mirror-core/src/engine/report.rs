//! What a sync did: [`SyncReport`], one [`DatabaseOutcome`] per database.

use crate::error::{Error, ErrorKind};
use crate::layout::GenerationId;

/// What happened to one database in a sync.
#[derive(Debug)]
#[non_exhaustive]
pub struct DatabaseOutcome {
    /// Database name.
    pub name: String,
    /// Published version before the sync.
    pub before: Option<u32>,
    /// Published version after the sync.
    pub after: Option<u32>,
    /// Version upstream advertised (or served), if learned.
    pub upstream: Option<u32>,
    /// Kept cdiff versions after the sync.
    pub cdiffs: Vec<u32>,
    /// The URL the new `.cvd` was fetched from, when this sync published one.
    pub fetched_from: Option<String>,
    /// Those of [`cdiffs`](Self::cdiffs) that are signature-verified but could not be
    /// chain-proven (bootstrap backfill, this sync or an earlier one), ascending.
    pub unproven_cdiffs: Vec<u32>,
    /// `Ok(true)` updated, `Ok(false)` already up to date, `Err` failed (the previous
    /// state stays published).
    pub result: Result<bool, Error>,
}

/// The result of one sync.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct SyncReport {
    /// One entry per configured database, in order.
    pub databases: Vec<DatabaseOutcome>,
    /// The generation published by this sync, if one was.
    pub published: Option<GenerationId>,
    /// Bytes transferred over the network.
    pub bytes_downloaded: u64,
    /// Database files downloaded (`.cvd`, `.cdiff`, `.sign`; not the version manifest).
    pub files_downloaded: usize,
    /// One report per configured third-party feed, in order (a failing file keeps its
    /// last good copy published).
    pub feeds: Vec<feeds::FeedReport>,
}

impl SyncReport {
    /// The most important failure class, `None` when every database is current.
    /// Importance is [`ErrorKind`]'s order: chain > verification > rollback > I/O >
    /// upstream unreachable > rate-limited > locked (`sigupdate` exits with the code
    /// of this one).
    ///
    /// A failing feed file counts like a failing database, by its class
    /// ([`feed_error_kind`]).
    pub fn worst(&self) -> Option<ErrorKind> {
        self.databases
            .iter()
            .filter_map(|d| d.result.as_ref().err().map(Error::kind))
            .chain(
                self.feeds
                    .iter()
                    .filter_map(feeds::FeedReport::worst)
                    .map(feed_error_kind),
            )
            .min()
    }
}

/// The [`ErrorKind`] a feed error class counts as (exit code, metrics): verification
/// (a signature, sidecar or load check refused the file) → [`ErrorKind::Verification`],
/// local → [`ErrorKind::Io`], upstream → [`ErrorKind::Upstream`], rate-limited →
/// [`ErrorKind::RateLimited`].
pub fn feed_error_kind(class: feeds::ErrorClass) -> ErrorKind {
    match class {
        feeds::ErrorClass::Verification => ErrorKind::Verification,
        feeds::ErrorClass::Local => ErrorKind::Io,
        feeds::ErrorClass::Upstream => ErrorKind::Upstream,
        feeds::ErrorClass::RateLimited => ErrorKind::RateLimited,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::error::CheckError;
    use proptest::prelude::*;

    /// The order `SyncReport::worst` documents, most important first.
    const DOCUMENTED: [ErrorKind; 7] = [
        ErrorKind::Chain,
        ErrorKind::Verification,
        ErrorKind::Rollback,
        ErrorKind::Io,
        ErrorKind::Upstream,
        ErrorKind::RateLimited,
        ErrorKind::Locked,
    ];

    fn error_of(kind: ErrorKind) -> Error {
        let (db, url) = ("test".to_owned(), "http://127.0.0.1:9/test.cvd".to_owned());
        match kind {
            ErrorKind::Chain => Error::Chain {
                db,
                detail: "test-6.cdiff".into(),
                source: CheckError::Differs("main.ndb".into()),
            },
            ErrorKind::Verification => Error::Verification {
                db,
                file: "test.cvd".into(),
                url,
                source: CheckError::ShortHeader { len: 3 },
            },
            ErrorKind::Rollback => Error::Rollback {
                db,
                url,
                offered: 4,
                expected: 5,
            },
            ErrorKind::Io => Error::Io {
                path: "/srv/m".into(),
                op: "fsync",
                source: std::io::Error::other("disk"),
            },
            ErrorKind::Upstream => Error::Upstream {
                what: "test.cvd".into(),
                source: "refused".into(),
            },
            ErrorKind::RateLimited => Error::RateLimited {
                what: "test.cvd".into(),
                source: "429".into(),
            },
            ErrorKind::Locked => Error::LockHeld {
                path: "/srv/m/sync.lock".into(),
                pid: None,
            },
        }
    }

    /// A report with one database per entry: `None` up to date, `Some(kind)` failed.
    fn report(outcomes: &[Option<ErrorKind>]) -> SyncReport {
        let databases = outcomes
            .iter()
            .enumerate()
            .map(|(i, k)| DatabaseOutcome {
                name: format!("db{i}"),
                before: Some(1),
                after: Some(1),
                upstream: Some(1),
                cdiffs: Vec::new(),
                unproven_cdiffs: Vec::new(),
                fetched_from: None,
                result: k.map_or(Ok(false), |k| Err(error_of(k))),
            })
            .collect();
        SyncReport {
            databases,
            ..SyncReport::default()
        }
    }

    #[test]
    fn every_kind_maps_to_itself_and_every_pair_ranks_as_documented() {
        assert_eq!(report(&[None, None]).worst(), None);
        for (i, &a) in DOCUMENTED.iter().enumerate() {
            assert_eq!(error_of(a).kind(), a);
            assert_eq!(report(&[None, Some(a), None]).worst(), Some(a));
            for (j, &b) in DOCUMENTED.iter().enumerate() {
                let want = DOCUMENTED[i.min(j)];
                assert_eq!(
                    report(&[Some(a), Some(b)]).worst(),
                    Some(want),
                    "{a:?} {b:?}"
                );
                assert_eq!(
                    report(&[Some(b), None, Some(a)]).worst(),
                    Some(want),
                    "{b:?} {a:?}"
                );
            }
        }
    }

    proptest! {
        #[test]
        fn worst_is_the_first_documented_kind_present_in_any_order(
            (picks, shuffled) in proptest::collection::vec(proptest::option::of(0usize..7), 0..12)
                .prop_flat_map(|v| (Just(v.clone()), Just(v).prop_shuffle())),
        ) {
            let kinds = |p: &[Option<usize>]| -> Vec<Option<ErrorKind>> {
                p.iter().map(|p| p.map(|i| DOCUMENTED[i])).collect()
            };
            let (kinds, shuffled) = (kinds(&picks), kinds(&shuffled));
            let want = DOCUMENTED.iter().copied().find(|k| kinds.contains(&Some(*k)));
            prop_assert_eq!(report(&kinds).worst(), want);
            // any permutation of the same outcomes gives the same answer
            prop_assert_eq!(report(&shuffled).worst(), want);
        }
    }
}
