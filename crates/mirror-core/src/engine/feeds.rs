//! Phase 2b, third-party feeds ([`SyncRun::sync_feeds`]): every configured `[[feed]]`
//! synced by [`feeds::sync_feed`] into `staging/feeds/<feed>/` (new files verified and
//! load-checked, unchanged and failing ones as their last good copy from the published
//! generation), and the generation's listing ([`crate::feed_listing`]). The result is
//! [`ExtraContent`] for phase 3: the feed directories and `feeds.json`, new when the
//! listing differs from the published one, else carried over (so an unchanged feed
//! never makes a new generation on its own).
//!
//! Feeds go through the transport's HTTP client ([`Transport::http_client`]): the same
//! client, `Retry-After` cool-downs and `cooldown.json` as the databases. A failing
//! file never blocks another file, feed or database; it is in the report
//! ([`SyncReport::feeds`](super::SyncReport::feeds)), `status.json` and the exit code.
//!
//! [`Transport::http_client`]: crate::transport::Transport::http_client

// Without `http` the phase only carries the published feeds over.
#![cfg_attr(not(feature = "http"), allow(unused_imports, dead_code))]

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tracing::warn;

use super::SyncRun;
use super::assemble::{ExtraContent, ExtraSource};
use crate::error::{Error, io_err};
use crate::feed_listing::{
    FEEDS_FILE, FEEDS_FORMAT, FeedListing, ListedFeed, ListedFile, read_clock, store_clock,
};

/// Where the feeds are staged, under `staging/`.
const FEEDS_STAGING: &str = "feeds";

/// Each feed's private download directory, under the mirror directory (kept between
/// syncs for resumed downloads, never served).
pub const FEEDS_WORK: &str = "feeds-work";

impl SyncRun<'_> {
    /// Phase 2b: syncs every configured feed; returns the feeds' content for phase 3
    /// and puts the feeds' reports into the sync's report.
    pub(super) fn sync_feeds(&mut self) -> Result<Vec<ExtraContent>, Error> {
        let configured = self.config.feeds.feeds();
        let published = match &self.published.dir {
            Some(d) => FeedListing::read(d).unwrap_or_else(|e| {
                warn!(
                    "{}: {e}; the feeds are fetched again",
                    d.join(FEEDS_FILE).display()
                );
                None
            }),
            None => None,
        };
        if configured.is_empty() && published.is_none() {
            return Ok(Vec::new());
        }
        #[cfg(not(feature = "http"))]
        {
            warn!(
                "built without the `http` feature: feeds not fetched, the published ones carried over"
            );
            Ok(carried(published.as_ref()))
        }
        #[cfg(feature = "http")]
        {
            self.fetch_feeds(configured, published)
        }
    }

    /// [`Self::sync_feeds`] with an HTTP client: each feed through [`feeds::sync_feed`].
    #[cfg(feature = "http")]
    fn fetch_feeds(
        &mut self,
        configured: &[feeds::Feed],
        published: Option<FeedListing>,
    ) -> Result<Vec<ExtraContent>, Error> {
        let config = self.config;
        let layout = &config.layout;
        let Some(client) = self.transport.inner.http_client() else {
            warn!(
                "the transport has no HTTP client: feeds not fetched, the published ones carried over"
            );
            return Ok(carried(published.as_ref()));
        };
        let mut clock = read_clock(layout.root());
        let now = SystemTime::now();
        let ctx = feeds::SyncContext {
            client,
            load_checker: &config.load_checker,
        };
        let staging_root = layout.staging().join(FEEDS_STAGING);
        let work_root = layout.root().join(FEEDS_WORK);
        let last_good_root = self
            .published
            .dir
            .clone()
            .unwrap_or_else(|| layout.current());
        let mut listing = FeedListing {
            format: FEEDS_FORMAT,
            feeds: BTreeMap::new(),
        };
        let mut reports = Vec::new();
        for feed in configured {
            let name = feed.name();
            let last_fetch = clock.get(name).copied();
            let mut state = published.as_ref().map_or_else(
                || feeds::FeedState {
                    last_fetch,
                    files: BTreeMap::new(),
                },
                |l| l.state_of(name, last_fetch),
            );
            let staging = staging_root.join(name);
            let dirs = feeds::FeedDirs {
                last_good: &last_good_root.join(name),
                staging: &staging,
                work: &work_root.join(name),
            };
            let report = feeds::sync_feed(&ctx, feed, &dirs, &mut state, now);
            if let Some(t) = state.last_fetch {
                clock.insert(name.to_owned(), t);
            }
            let mut files = BTreeMap::new();
            for f in report.files.iter().filter(|f| f.staged()) {
                let path = staging.join(&f.file);
                if f.outcome == feeds::FileOutcome::Updated
                    && let Some(t) = f.last_modified
                {
                    // Served as Last-Modified: the upstream's time, on the file too.
                    set_mtime(&path, t)?;
                }
                let Some(entry) = listed_file(f, state.files.get(&f.file)) else {
                    warn!(
                        feed = name,
                        file = f.file,
                        "staged without a digest: not listed"
                    );
                    continue;
                };
                files.insert(f.file.clone(), entry);
            }
            if !files.is_empty() {
                listing.feeds.insert(
                    name.to_owned(),
                    ListedFeed {
                        verify: feed.verify(),
                        unverified: feed.unverified(),
                        files,
                    },
                );
            }
            reports.push(report);
        }
        clock.retain(|k, _| configured.iter().any(|f| f.name() == k));
        if let Err(e) = store_clock(layout.root(), &clock) {
            warn!(
                "{}: {e}; feeds may be fetched before their min_interval_secs",
                layout
                    .root()
                    .join(crate::feed_listing::FEED_CLOCK_FILE)
                    .display()
            );
        }
        self.report.feeds = reports;
        let unchanged = match &published {
            Some(p) => *p == listing,
            None => listing.feeds.is_empty(),
        };
        if unchanged {
            return Ok(carried(published.as_ref()));
        }
        let mut extra: Vec<ExtraContent> = listing
            .feeds
            .keys()
            .map(|n| ExtraContent {
                name: n.clone(),
                source: ExtraSource::Verified(staging_root.join(n)),
            })
            .collect();
        if !listing.feeds.is_empty() {
            let path = staging_root.join(FEEDS_FILE);
            let bytes = listing.to_bytes().map_err(io_err(&path, "serialise"))?;
            std::fs::write(&path, bytes).map_err(io_err(&path, "write"))?;
            extra.push(ExtraContent {
                name: FEEDS_FILE.to_owned(),
                source: ExtraSource::Verified(path),
            });
        }
        Ok(extra)
    }
}

/// The published feeds and listing, carried over unchanged.
fn carried(published: Option<&FeedListing>) -> Vec<ExtraContent> {
    let Some(l) = published.filter(|l| !l.feeds.is_empty()) else {
        return Vec::new();
    };
    l.feeds
        .keys()
        .cloned()
        .chain(std::iter::once(FEEDS_FILE.to_owned()))
        .map(|name| ExtraContent {
            name,
            source: ExtraSource::Published,
        })
        .collect()
}

/// A staged file's listing entry: from the feed's state (what was proven), else from
/// the report.
fn listed_file(f: &feeds::FileReport, state: Option<&feeds::FileState>) -> Option<ListedFile> {
    let unix = |t: SystemTime| t.duration_since(UNIX_EPOCH).ok().map(|d| d.as_secs());
    match state {
        Some(s) => Some(ListedFile {
            size: s.size,
            sha256: s.sha256.clone(),
            last_modified: s.last_modified,
            etag: s.etag.clone(),
            verification: s.verification.clone(),
            companion: f.companion.clone(),
        }),
        None => Some(ListedFile {
            size: f.size?,
            sha256: f.sha256.clone()?,
            last_modified: f.last_modified.and_then(unix),
            etag: f.etag.clone(),
            verification: f.verification.clone()?,
            companion: f.companion.clone(),
        }),
    }
}

/// Sets a staged file's modification time (before the generation is switched: the
/// file is not served yet).
fn set_mtime(path: &Path, t: SystemTime) -> Result<(), Error> {
    let t = t.max(UNIX_EPOCH + Duration::from_secs(1));
    std::fs::File::options()
        .write(true)
        .open(path)
        .and_then(|f| f.set_modified(t))
        .map_err(io_err(path, "set the modification time of"))
}
