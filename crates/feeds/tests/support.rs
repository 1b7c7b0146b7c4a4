//! Shared helpers: feeds from TOML, a client, a mirror whose generations are switched
//! after each sync.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use feeds::{Feed, FeedDirs, FeedReport, FeedState, LoadChecker, SyncContext};

/// A quoted TOML string.
pub fn q(s: &str) -> String {
    format!("{s:?}")
}

/// One validated feed from the body of a `[[feed]]` table.
pub fn feed(body: &str) -> Feed {
    let set = feeds::parse_feeds(&format!("[[feed]]\n{body}")).unwrap();
    set.feeds()[0].clone()
}

/// The error of a configuration text.
pub fn config_error(text: &str) -> String {
    feeds::parse_feeds(text).unwrap_err().chain()
}

/// A client for loopback tests: no proxy, no retries, short timeouts, no cool-down file.
pub fn client() -> fetch::Client {
    fetch::Client::builder()
        .no_proxy()
        .retries(0)
        .backoff(Duration::from_millis(1), Duration::from_millis(1))
        .connect_timeout(Duration::from_secs(5))
        .read_timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// A mirror directory: `gen-N/<feed>` generations, the newest one being "published";
/// each sync stages into a new one.
pub struct Mirror {
    pub tmp: tempfile::TempDir,
    pub generation: u32,
    pub state: FeedState,
    pub client: fetch::Client,
    pub checker: LoadChecker,
}

impl Mirror {
    pub fn new() -> Mirror {
        Mirror::with_checker(LoadChecker::with_tool(None))
    }

    pub fn with_checker(checker: LoadChecker) -> Mirror {
        Mirror {
            tmp: tempfile::tempdir().unwrap(),
            generation: 0,
            state: FeedState::default(),
            client: client(),
            checker,
        }
    }

    pub fn dir(&self, generation: u32, feed: &Feed) -> PathBuf {
        self.tmp
            .path()
            .join(format!("gen-{generation}"))
            .join(feed.name())
    }

    /// The published feed directory.
    pub fn published(&self, feed: &Feed) -> PathBuf {
        self.dir(self.generation, feed)
    }

    pub fn work(&self, feed: &Feed) -> PathBuf {
        self.tmp.path().join("work").join(feed.name())
    }

    /// Syncs into a new generation, publishes it, and round-trips the state through
    /// JSON (as the integrator persists it).
    pub fn sync_at(&mut self, feed: &Feed, now: SystemTime) -> FeedReport {
        let last_good = self.dir(self.generation, feed);
        let staging = self.dir(self.generation + 1, feed);
        let work = self.work(feed);
        let ctx = SyncContext {
            client: &self.client,
            load_checker: &self.checker,
        };
        let dirs = FeedDirs {
            last_good: &last_good,
            staging: &staging,
            work: &work,
        };
        let report = feeds::sync_feed(&ctx, feed, &dirs, &mut self.state, now);
        self.state = FeedState::from_json(&self.state.to_json()).unwrap();
        self.generation += 1;
        // What is staged is exactly what the report says.
        assert_eq!(list(&staging), report.staged_names(), "{report:#?}");
        report
    }

    pub fn sync(&mut self, feed: &Feed) -> FeedReport {
        self.sync_at(feed, SystemTime::now())
    }

    /// The bytes of a published file.
    pub fn read(&self, feed: &Feed, name: &str) -> Vec<u8> {
        std::fs::read(self.published(feed).join(name)).unwrap()
    }
}

/// The names in a directory, sorted (empty when it does not exist).
pub fn list(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    };
    v.sort();
    v
}

/// A valid one-line `.ndb` signature database.
pub fn ndb(name: &str, hex_body: &str) -> Vec<u8> {
    format!("Feeds.Test.{name}:0:*:{hex_body}\n").into_bytes()
}
