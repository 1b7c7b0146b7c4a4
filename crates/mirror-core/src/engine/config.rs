//! What a sync is configured with: [`SyncConfig`] (built with [`SyncConfigBuilder`]),
//! the databases ([`DatabaseSpec`]), how versions are learned ([`VersionSource`]) and
//! the download size [`Limits`].

use std::path::PathBuf;
use std::time::SystemTime;

use crate::error::Error;
use crate::layout::MirrorLayout;
use crate::model::valid_db_name;
use crate::plan::{DEFAULT_KEEP_CDIFFS, DEFAULT_MAX_CATCH_UP, PlanPolicy};
use crate::prune::PrunePolicy;

/// Size limits for downloads (a download above its limit is refused).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest `.cvd` accepted.
    pub cvd: u64,
    /// Largest `.cdiff` accepted.
    pub cdiff: u64,
    /// Largest `.sign` accepted.
    pub sign: u64,
    /// Largest `dns.txt` manifest accepted.
    pub manifest: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            cvd: 1 << 30,
            cdiff: 64 << 20,
            sign: 64 << 10,
            manifest: crate::manifest::MAX_MANIFEST_LEN,
        }
    }
}

/// How the engine learns what upstream holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionSource {
    /// Ask DNS first (`current.cvd.clamav.net`-style TXT record), then the upstream's
    /// `dns.txt` manifest, then the 512-byte header of `<db>.cvd`.
    Dns {
        /// The TXT record's name.
        name: String,
    },
    /// No DNS: the upstream's `dns.txt` manifest, then the header probe.
    NoDns,
}

/// One database to mirror.
#[derive(Debug, Clone)]
pub struct DatabaseSpec {
    pub(super) name: String,
    pub(super) keys: cvd_format::KeySet,
    pub(super) signs: bool,
    pub(super) upstreams: Option<Vec<String>>,
}

impl DatabaseSpec {
    /// An official database (`daily`, `main`, `bytecode`, ...): official keys, `.sign`
    /// files required, the global upstreams.
    pub fn new(name: &str) -> Result<Self, Error> {
        if !valid_db_name(name) {
            return Err(Error::Config(format!(
                "database name {name:?}: 1-64 ASCII letters, digits or '_' expected"
            )));
        }
        Ok(Self {
            name: name.to_owned(),
            keys: cvd_format::KeySet::official(),
            signs: true,
            upstreams: None,
        })
    }

    /// Uses these keys instead of the official ones (a custom database).
    pub fn keys(mut self, keys: cvd_format::KeySet) -> Self {
        self.keys = keys;
        self
    }

    /// Whether `.sign` files are fetched, verified and served (default: yes).
    pub fn signs(mut self, signs: bool) -> Self {
        self.signs = signs;
        self
    }

    /// Fetches this database from its own upstreams instead of the global ones.
    pub fn upstreams(mut self, upstreams: Vec<String>) -> Self {
        self.upstreams = Some(upstreams);
        self
    }

    /// The database name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Everything a sync needs; build with [`SyncConfig::builder`].
#[derive(Debug, Clone)]
pub struct SyncConfig {
    pub(super) layout: MirrorLayout,
    pub(super) upstreams: Vec<String>,
    pub(super) databases: Vec<DatabaseSpec>,
    pub(super) versions: VersionSource,
    pub(super) policy: PlanPolicy,
    pub(super) prune: PrunePolicy,
    pub(super) limits: Limits,
    pub(super) sign_roots: Option<cvd_format::sign::SignRoots>,
    pub(super) verify_time: Option<SystemTime>,
    pub(super) mirror_name: String,
    /// Third-party feeds (`[[feed]]`), synced by the feeds phase.
    pub(super) feeds: feeds::FeedSet,
    /// The load checker of the feeds with `load_check = true`.
    pub(super) load_checker: std::sync::Arc<feeds::LoadChecker>,
}

/// Builder for [`SyncConfig`], with the defaults of the official tool.
#[derive(Debug, Clone)]
pub struct SyncConfigBuilder {
    cfg: SyncConfig,
}

impl SyncConfig {
    /// Starts a configuration for the mirror directory `dir`. Defaults: no upstream
    /// (add at least one), no database (add at least one), DNS versions from
    /// [`dns_versions::DEFAULT_NAME`], 30 cdiffs kept, the official `.sign` root, the
    /// default [`PrunePolicy`] and [`Limits`].
    pub fn builder(dir: impl Into<PathBuf>) -> SyncConfigBuilder {
        SyncConfigBuilder {
            cfg: SyncConfig {
                layout: MirrorLayout::new(dir),
                upstreams: Vec::new(),
                databases: Vec::new(),
                versions: VersionSource::Dns {
                    name: dns_versions::DEFAULT_NAME.into(),
                },
                policy: PlanPolicy {
                    keep_cdiffs: DEFAULT_KEEP_CDIFFS,
                    max_catch_up: DEFAULT_MAX_CATCH_UP,
                    signs: true,
                    bootstrap_cdiffs: true,
                },
                prune: PrunePolicy::default(),
                limits: Limits::default(),
                sign_roots: None,
                verify_time: None,
                mirror_name: DEFAULT_MIRROR_NAME.to_owned(),
                feeds: feeds::FeedSet::default(),
                load_checker: std::sync::Arc::new(feeds::LoadChecker::with_tool(None)),
            },
        }
    }

    /// The mirror directory layout.
    pub fn layout(&self) -> &MirrorLayout {
        &self.layout
    }

    /// Sets this mirror's name in traces (a configuration built elsewhere, e.g. by
    /// [`crate::settings::engine_config`], named by the push settings).
    pub fn set_mirror_name(&mut self, name: &str) {
        self.mirror_name = name.to_owned();
    }

    /// The same configuration with `base` tried first, wherever it is one of the
    /// configured upstreams (the global list and per-database lists); `None` when it
    /// is none of them. A push notice names the upstream that just published; the sync
    /// it starts asks that one first and fails over to the others as usual. A URL that
    /// is not configured is never used.
    pub fn preferring_upstream(&self, base: &str) -> Option<SyncConfig> {
        let norm = |u: &str| u.trim_end_matches('/').to_owned();
        let want = norm(base);
        let mut found = false;
        let mut front = |list: &mut Vec<String>| {
            if let Some(i) = list.iter().position(|u| norm(u) == want) {
                let u = list.remove(i);
                list.insert(0, u);
                found = true;
            }
        };
        let mut c = self.clone();
        front(&mut c.upstreams);
        for d in &mut c.databases {
            if let Some(list) = d.upstreams.as_mut() {
                front(list);
            }
        }
        found.then_some(c)
    }
}

impl SyncConfigBuilder {
    /// Mirrors these third-party feeds beside the databases (see the engine's feeds
    /// phase); the default is none.
    pub fn feeds(mut self, feeds: feeds::FeedSet) -> Self {
        self.cfg.feeds = feeds;
        self
    }

    /// Load-checks new feed files of feeds with `load_check = true` with this checker
    /// (default: none, every check reported skipped; the binaries pass
    /// [`feeds::LoadChecker::discover`]).
    pub fn load_checker(mut self, checker: feeds::LoadChecker) -> Self {
        self.cfg.load_checker = std::sync::Arc::new(checker);
        self
    }

    /// Adds an upstream base URL (tried in the order added).
    pub fn upstream(mut self, url: &str) -> Self {
        self.cfg
            .upstreams
            .push(url.trim_end_matches('/').to_owned());
        self
    }

    /// Adds a database.
    pub fn database(mut self, db: DatabaseSpec) -> Self {
        self.cfg.databases.push(db);
        self
    }

    /// Sets how versions are learned.
    pub fn versions(mut self, v: VersionSource) -> Self {
        self.cfg.versions = v;
        self
    }

    /// Number of cdiffs kept per database.
    pub fn keep_cdiffs(mut self, n: u32) -> Self {
        self.cfg.policy.keep_cdiffs = n;
        self
    }

    /// Most cdiffs downloaded to catch up before the chain restarts.
    pub fn max_catch_up(mut self, n: u32) -> Self {
        self.cfg.policy.max_catch_up = n;
        self
    }

    /// Whether an update also backfills the older cdiffs (down to the keep count, or
    /// the oldest upstream still has) that cannot be chain-proven because no published
    /// base precedes them — from an empty mirror, after the chain restarts, or when an
    /// earlier run kept fewer. Default: yes, so that a freshly deployed mirror does not
    /// strand clients a few versions behind (a freshclam that gets a 404 for its cdiff
    /// may report the mirror as not synchronized instead of downloading the full
    /// `.cvd`, and at best downloads the whole `.cvd`). They are fully signature-verified (container
    /// signature, version, `.sign`, size) and recorded as unproven inside the
    /// generation ([`crate::trust`]); `false` publishes chain-proven cdiffs only.
    pub fn bootstrap_cdiffs(mut self, on: bool) -> Self {
        self.cfg.policy.bootstrap_cdiffs = on;
        self
    }

    /// Which old generations are kept.
    pub fn prune(mut self, p: PrunePolicy) -> Self {
        self.cfg.prune = p;
        self
    }

    /// Download size limits.
    pub fn limits(mut self, l: Limits) -> Self {
        self.cfg.limits = l;
        self
    }

    /// The root certificates `.sign` files must chain to (default: the official
    /// production root).
    pub fn sign_roots(mut self, roots: cvd_format::sign::SignRoots) -> Self {
        self.cfg.sign_roots = Some(roots);
        self
    }

    /// Verifies signatures and certificate validity as of `t` instead of now (tests,
    /// or re-checking an archive).
    pub fn verify_time(mut self, t: SystemTime) -> Self {
        self.cfg.verify_time = Some(t);
        self
    }

    /// This mirror's name in the trace of each generation (default
    /// [`DEFAULT_MIRROR_NAME`]).
    pub fn mirror_name(mut self, name: &str) -> Self {
        self.cfg.mirror_name = name.to_owned();
        self
    }

    /// Checks and returns the configuration.
    pub fn build(self) -> Result<SyncConfig, Error> {
        let c = self.cfg;
        if c.databases.is_empty() {
            return Err(Error::Config("no database to mirror".into()));
        }
        let mut seen = std::collections::BTreeSet::new();
        for d in &c.databases {
            if !seen.insert(d.name.clone()) {
                return Err(Error::Config(format!("database {} listed twice", d.name)));
            }
            let ups = d.upstreams.as_ref().unwrap_or(&c.upstreams);
            if ups.is_empty() {
                return Err(Error::Config(format!("database {}: no upstream", d.name)));
            }
            for u in ups {
                if !(u.starts_with("http://") || u.starts_with("https://")) {
                    return Err(Error::Config(format!("upstream {u:?}: not an http(s) URL")));
                }
            }
        }
        Ok(c)
    }
}

/// The mirror name in traces when none is configured.
pub const DEFAULT_MIRROR_NAME: &str = "mirror";
