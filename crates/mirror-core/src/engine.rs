//! The sync engine: lock → learn versions → plan → download into staging → verify
//! everything → chain check → rollback protection → publish atomically → prune →
//! status.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use tracing::{error, info, warn};

use crate::error::{BoxError, Chain, CheckError, Error, ErrorKind, io_err};
use crate::layout::{GenerationId, MirrorLayout};
use crate::lock::SyncLock;
use crate::model::{HeldDatabase, MirrorFile, Snapshot, valid_db_name};
use crate::plan::{DEFAULT_KEEP_CDIFFS, DEFAULT_MAX_CATCH_UP, PlanPolicy, plan};
use crate::prune::{PrunePolicy, prune_generations};
use crate::publish::{NewGeneration, clean_staging};
use crate::status::MirrorStatus;
use crate::trace::{DatabaseTrace, Hop, SyncHints, TRACE_FORMAT, TraceRecord, bounded_hops};
use crate::transport::{Downloaded, Transport};
use crate::trust::{GenerationTrust, TrustRecord, TrustSource, generation_trust};
use crate::verify::{self, Verifier};

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
    name: String,
    keys: cvd_format::KeySet,
    signs: bool,
    upstreams: Option<Vec<String>>,
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
    layout: MirrorLayout,
    upstreams: Vec<String>,
    databases: Vec<DatabaseSpec>,
    versions: VersionSource,
    policy: PlanPolicy,
    prune: PrunePolicy,
    limits: Limits,
    sign_roots: Option<cvd_format::sign::SignRoots>,
    verify_time: Option<SystemTime>,
    mirror_name: String,
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
}

impl SyncReport {
    /// The most important failure class, `None` when every database is current.
    /// Importance is [`ErrorKind`]'s order: chain > verification > rollback > I/O >
    /// upstream unreachable > rate-limited > locked (`sigupdate` exits with the code
    /// of this one).
    pub fn worst(&self) -> Option<ErrorKind> {
        self.databases
            .iter()
            .filter_map(|d| d.result.as_ref().err().map(Error::kind))
            .min()
    }
}

/// Source of DNS version records, injectable for tests. Returns the versions of the
/// databases the record covers, or why it could not be used (missing, stale, bad), as
/// an error value whose chain is logged.
pub trait DnsVersions {
    /// Looks the record up.
    fn lookup(&mut self, name: &str) -> Result<BTreeMap<String, u32>, BoxError>;
}

/// Runs one sync of the mirror. Per-database failures are in the report (the last good
/// state of that database stays published); `Err` is returned only when nothing could
/// be attempted (lock held, mirror directory unusable).
pub fn sync(
    config: &SyncConfig,
    transport: &mut dyn Transport,
    dns: Option<&mut dyn DnsVersions>,
) -> Result<SyncReport, Error> {
    sync_with(config, transport, dns, &SyncHints::none())
}

/// [`sync`], with what a push notice said about the sync's reason: the hops of the
/// announced versions go into the generation's trace ([`crate::trace`]). Hints never
/// change what is fetched or published.
pub fn sync_with(
    config: &SyncConfig,
    transport: &mut dyn Transport,
    dns: Option<&mut dyn DnsVersions>,
    hints: &SyncHints,
) -> Result<SyncReport, Error> {
    let layout = &config.layout;
    layout.create()?;
    let _lock = SyncLock::acquire(&layout.lock_file())?;
    let started = now_secs();
    let status_path = layout.root().join(crate::status::STATUS_FILE);
    // status.json is a cache for readers: what decides trust comes from the
    // generations, so a lost or damaged one is rebuilt, never believed over them.
    let (mut status, readable) = match MirrorStatus::read(layout.root()) {
        Ok(Some(s)) => (s, true),
        Ok(None) => {
            if layout.current_generation()?.is_some() {
                error!(path = %status_path.display(), "status file missing; rebuilding it from the published generation");
            }
            (MirrorStatus::default(), false)
        }
        Err(e) => {
            error!(path = %status_path.display(), "status file unreadable ({}); rebuilding it from the published generation", Chain(&e));
            (MirrorStatus::default(), false)
        }
    };
    status.last_attempt = Some(started);
    let result = sync_locked(config, transport, dns, hints, &mut status, readable);
    match &result {
        Ok(report) => {
            let failed: Vec<String> = report
                .databases
                .iter()
                .filter_map(|d| d.result.as_ref().err().map(|e| Chain(e).to_string()))
                .collect();
            if failed.is_empty() {
                status.last_success = Some(started);
                status.last_error = None;
            } else {
                status.last_error = Some(failed.join("; "));
            }
        }
        Err(e) => status.last_error = Some(Chain(e).to_string()),
    }
    status
        .store(layout.root())
        .map_err(io_err(&status_path, "write"))?;
    result
}

struct DbWork<'a> {
    spec: &'a DatabaseSpec,
    bases: &'a [String],
    held: HeldDatabase,
    /// The cdiff version upstream no longer had at an earlier backfill (from
    /// `status.json`, while the record is in force): backfill stays above it.
    backfill_missing: Option<u32>,
}

/// What a backfill walk got.
struct Backfilled {
    /// Verified downloads to publish (cdiffs and their `.sign`).
    files: NewFiles,
    /// Their versions, ascending.
    versions: Vec<u32>,
    /// The version upstream answered "not found" for (cdiff or `.sign`), if the walk
    /// ended there.
    missing: Option<u32>,
}

/// Verified downloads to move into the new generation, with their names there.
type NewFiles = Vec<(MirrorFile, PathBuf)>;

/// A verified update of one database, ready to assemble.
struct Update {
    version: u32,
    /// Downloaded files to publish.
    new_files: NewFiles,
    /// Held files to carry over.
    carry: Vec<MirrorFile>,
    cdiffs: Vec<u32>,
    /// Backfilled (signature-verified, chain-unproven) cdiff versions among `cdiffs`.
    unproven: Vec<u32>,
    /// The URL of the new `.cvd` (`None`: the `.cvd` is carried over).
    source_url: Option<String>,
}

fn sync_locked(
    config: &SyncConfig,
    transport: &mut dyn Transport,
    dns: Option<&mut dyn DnsVersions>,
    hints: &SyncHints,
    status: &mut MirrorStatus,
    status_readable: bool,
) -> Result<SyncReport, Error> {
    let layout = &config.layout;
    clean_staging(layout)?;
    let current = layout.current_generation()?;
    let cur_dir = current.map(|g| layout.generation(g));
    let snapshot = match &cur_dir {
        Some(d) => Snapshot::read(d)?,
        None => Snapshot::default(),
    };
    // Which published cdiffs are unproven: from the published generation's own record.
    let trust = match &cur_dir {
        Some(d) => {
            let t = generation_trust(d, &snapshot, status_readable.then_some(&*status));
            log_trust_source(d, &t.source);
            t
        }
        None => GenerationTrust {
            unproven: BTreeMap::new(),
            source: TrustSource::Record,
        },
    };
    let now = SystemTime::now();
    let verifier = Verifier::new(
        config.sign_roots.as_ref(),
        config.verify_time.unwrap_or(now),
    )?;
    let dl_root = layout.staging().join(crate::publish::DOWNLOADS);
    std::fs::create_dir_all(&dl_root).map_err(io_err(&dl_root, "create directory"))?;

    // Versions from DNS, once per sync.
    let dns_versions = match (&config.versions, dns) {
        (VersionSource::Dns { name }, Some(d)) => match d.lookup(name) {
            Ok(v) => v,
            Err(e) => {
                warn!(record = %name, "DNS versions unusable, falling back to the manifest or header probe: {}", Chain(&*e));
                BTreeMap::new()
            }
        },
        _ => BTreeMap::new(),
    };
    let mut manifests: BTreeMap<Vec<String>, Option<BTreeMap<String, u32>>> = BTreeMap::new();
    let mut report = SyncReport::default();
    let mut updates: BTreeMap<String, Update> = BTreeMap::new();
    let mut backfill_missing: BTreeMap<String, u32> = BTreeMap::new();
    let mut counting = Counting {
        inner: transport,
        bytes: 0,
        files: 0,
    };

    for spec in &config.databases {
        let bases = spec.upstreams.as_deref().unwrap_or(&config.upstreams);
        let work = DbWork {
            spec,
            bases,
            held: snapshot
                .databases
                .get(&spec.name)
                .cloned()
                .unwrap_or_default(),
            backfill_missing: status
                .databases
                .get(&spec.name)
                .and_then(|s| s.backfill_missing_in_force(now_secs())),
        };
        let before = work.held.version;
        let old_unproven = trust.unproven_of(&spec.name);
        let unproven_in = |cdiffs: &[u32], new: &[u32]| -> Vec<u32> {
            cdiffs
                .iter()
                .copied()
                .filter(|v| old_unproven.contains(v) || new.contains(v))
                .collect()
        };
        let mut upstream = None;
        let mut missing = None;
        let dl_dir = dl_root.join(&spec.name);
        let result = (|| -> Result<Option<Update>, Error> {
            std::fs::create_dir_all(&dl_dir).map_err(io_err(&dl_dir, "create directory"))?;
            let advertised = learn_version(
                &work,
                &dns_versions,
                &mut manifests,
                &mut counting,
                &dl_root,
                cur_dir.as_deref(),
                config.limits.manifest,
            )?;
            upstream = Some(advertised);
            update_db(
                config,
                &work,
                advertised,
                cur_dir.as_deref(),
                &dl_dir,
                &verifier,
                &mut counting,
                &mut upstream,
                &mut missing,
            )
        })();
        if let Some(m) = missing {
            backfill_missing.insert(spec.name.clone(), m);
        }
        let held_cdiffs: Vec<u32> = work.held.cdiffs.keys().copied().collect();
        // The outcome when the database stays at its last good state.
        let kept = move |result| DatabaseOutcome {
            name: spec.name.clone(),
            before,
            after: before,
            upstream,
            unproven_cdiffs: unproven_in(&held_cdiffs, &[]),
            cdiffs: held_cdiffs,
            fetched_from: None,
            result,
        };
        let outcome = match result {
            Ok(Some(u)) => {
                info!(db = %spec.name, from = ?before, to = u.version, "verified update");
                let o = DatabaseOutcome {
                    name: spec.name.clone(),
                    before,
                    after: Some(u.version),
                    upstream,
                    cdiffs: u.cdiffs.clone(),
                    unproven_cdiffs: unproven_in(&u.cdiffs, &u.unproven),
                    fetched_from: u.source_url.clone(),
                    result: Ok(true),
                };
                updates.insert(spec.name.clone(), u);
                o
            }
            Ok(None) => kept(Ok(false)),
            Err(e) => {
                match e.kind() {
                    ErrorKind::Chain => {
                        error!(db = %spec.name, "CHAIN INCONSISTENT, keeping the last good state: {}", Chain(&e))
                    }
                    _ => error!(db = %spec.name, "keeping the last good state: {}", Chain(&e)),
                }
                kept(Err(e))
            }
        };
        report.databases.push(outcome);
    }
    report.bytes_downloaded = counting.bytes;
    report.files_downloaded = counting.files;

    // Publish one new snapshot holding every database, if anything changed.
    let need_manifest = cur_dir.is_some() && !snapshot.has_manifest;
    // A generation without a valid trust record is superseded by one that has it (the
    // conservative reading above), so that the state that decides trust is immutable.
    let need_record = cur_dir.is_some() && !trust.source.is_record();
    if !updates.is_empty() || need_manifest || need_record {
        let mut generation = NewGeneration::begin(layout)?;
        let mut names: Vec<&String> = snapshot.databases.keys().collect();
        for spec in &config.databases {
            if !snapshot.databases.contains_key(&spec.name) {
                names.push(&spec.name);
            }
        }
        let mut versions = BTreeMap::new();
        let mut unproven = BTreeMap::new();
        let previous_trace = match &cur_dir {
            Some(d) => TraceRecord::read(d).unwrap_or_else(|e| {
                warn!("previous trace unreadable, not carried over: {}", Chain(&e));
                None
            }),
            None => None,
        };
        let published_ms = now_ms();
        let mut trace = TraceRecord {
            format: TRACE_FORMAT,
            mirror: config.mirror_name.clone(),
            databases: BTreeMap::new(),
        };
        let carried_trace = |name: &str, version: Option<u32>| {
            previous_trace
                .as_ref()
                .and_then(|t| t.databases.get(name))
                .filter(|t| Some(t.version) == version)
                .cloned()
        };
        for name in names {
            if let Some(u) = updates.remove(name) {
                let entry = match &u.source_url {
                    Some(url) => {
                        let mut hops = hints.hops_for(name, u.version);
                        hops.push(Hop {
                            mirror: config.mirror_name.clone(),
                            published_ms,
                        });
                        Some(DatabaseTrace {
                            version: u.version,
                            fetched_from: Some(url.clone()),
                            published_ms,
                            hops: bounded_hops(hops),
                        })
                    }
                    None => carried_trace(name, Some(u.version)),
                };
                if let Some(e) = entry {
                    trace.databases.insert(name.clone(), e);
                }
                let o = report.databases.iter().find(|o| o.name == *name);
                unproven.insert(
                    name.clone(),
                    o.map(|o| o.unproven_cdiffs.clone()).unwrap_or_default(),
                );
                if let Some(cur) = &cur_dir {
                    for f in &u.carry {
                        generation.link_from(cur, f)?;
                    }
                }
                for (f, path) in &u.new_files {
                    generation.move_in(path, f)?;
                }
                versions.insert(name.clone(), u.version);
            } else if let Some(cur) = &cur_dir {
                for f in snapshot.files_of(name) {
                    generation.link_from(cur, &f)?;
                }
                if snapshot.databases.contains_key(name) {
                    unproven.insert(name.clone(), trust.unproven_of(name).to_vec());
                }
                if let Some(v) = snapshot.databases.get(name).and_then(|d| d.version) {
                    versions.insert(name.clone(), v);
                    if let Some(e) = carried_trace(name, Some(v)) {
                        trace.databases.insert(name.clone(), e);
                    }
                }
            }
        }
        generation.write(
            &MirrorFile::Manifest,
            crate::manifest::render(&versions, SystemTime::now()).as_bytes(),
        )?;
        // What this generation proves is recorded inside it, before it is made
        // durable and switched.
        generation.write_trust(&TrustRecord::new(unproven))?;
        generation.write_trace(&trace)?;
        let id = generation.publish()?;
        info!(generation = %id, "published");
        report.published = Some(id);
        status.last_publish = Some(now_secs());
    }
    let removed = prune_generations(layout, &config.prune, SystemTime::now())?;
    if !removed.is_empty() {
        info!(?removed, "pruned old generations");
    }
    clean_staging(layout)?;

    // Status.
    let current = layout.current_generation()?;
    status.generation = current.map(|g| g.dir_name());
    status.published_dir = current.map(|_| absolute(&layout.current()));
    // Databases held but no longer configured: carried over unchanged.
    for (name, held) in &snapshot.databases {
        if report.databases.iter().all(|o| o.name != *name) {
            let s = status.databases.entry(name.clone()).or_default();
            s.published_version = held.version;
            s.cdiffs = held.cdiffs.keys().copied().collect();
            s.unproven_cdiffs = trust.unproven_of(name).to_vec();
        }
    }
    for o in &report.databases {
        let s = status.databases.entry(o.name.clone()).or_default();
        s.published_version = o.after;
        if o.upstream
            .is_some_and(|u| s.upstream_version.is_none_or(|old| u > old))
        {
            // A version upstream announces for the first time: readiness measures
            // this mirror's lag behind it from now.
            s.upstream_seen_at = Some(now_secs());
        }
        s.upstream_version = o.upstream.or(s.upstream_version);
        s.cdiffs = o.cdiffs.clone();
        s.unproven_cdiffs = o.unproven_cdiffs.clone();
        if let Some(&m) = backfill_missing.get(&o.name) {
            s.backfill_missing = Some(m);
            s.backfill_missing_at = Some(now_secs());
        } else if s.backfill_missing_in_force(now_secs()).is_none() {
            // Expired (and not found missing again): forget it.
            s.backfill_missing = None;
            s.backfill_missing_at = None;
        }
        match &o.result {
            Ok(_) => {
                s.last_success = Some(now_secs());
                s.last_error = None;
                s.last_error_kind = None;
                s.consecutive_failures = 0;
            }
            Err(e) => {
                s.last_error = Some(Chain(e).to_string());
                s.last_error_kind = Some(e.kind().as_str().to_owned());
                s.consecutive_failures = s.consecutive_failures.saturating_add(1);
                if e.kind() == ErrorKind::Chain {
                    s.chain_failures = s.chain_failures.saturating_add(1);
                }
            }
        }
    }
    Ok(report)
}

/// Logs how the published generation's unproven cdiffs were determined, when it was
/// not from its own record.
fn log_trust_source(gen_dir: &Path, source: &TrustSource) {
    let generation = gen_dir.display();
    match source {
        TrustSource::Record => {}
        TrustSource::LegacyStatus => warn!(
            %generation,
            "no trust record in the published generation (published by an older release): its chain-unproven cdiffs are taken from the status file; publishing a generation that records them"
        ),
        TrustSource::Missing => error!(
            %generation,
            "no trust record in the published generation and no usable status file: counting every published cdiff as chain-unproven"
        ),
        TrustSource::Corrupt(e) => error!(
            %generation,
            "{}: counting every published cdiff as chain-unproven",
            crate::error::Chain(e)
        ),
    }
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Counts bytes and files through a transport.
struct Counting<'a> {
    inner: &'a mut dyn Transport,
    bytes: u64,
    files: usize,
}

impl Transport for Counting<'_> {
    fn download(
        &mut self,
        bases: &[String],
        file: &str,
        dest_dir: &Path,
        max_size: u64,
    ) -> Result<Downloaded, Error> {
        let d = self.inner.download(bases, file, dest_dir, max_size)?;
        self.bytes += d.bytes;
        if file != crate::model::MANIFEST_FILE {
            self.files += 1;
        }
        Ok(d)
    }

    fn read_head(
        &mut self,
        bases: &[String],
        file: &str,
        len: usize,
        if_modified_since: Option<SystemTime>,
    ) -> Result<Option<(Vec<u8>, String)>, Error> {
        let got = self.inner.read_head(bases, file, len, if_modified_since)?;
        self.bytes += got.as_ref().map_or(0, |(b, _)| b.len() as u64);
        Ok(got)
    }

    fn reject(&mut self, url: &str, reason: &str) {
        self.inner.reject(url, reason);
    }
}

/// The version upstream holds of one database: DNS if it says something newer than
/// what we hold, else the upstream's manifest, else the header probe. A stale or
/// lagging DNS record therefore never means "nothing new".
fn learn_version(
    work: &DbWork<'_>,
    dns: &BTreeMap<String, u32>,
    manifests: &mut BTreeMap<Vec<String>, Option<BTreeMap<String, u32>>>,
    t: &mut dyn Transport,
    dl_root: &Path,
    cur_dir: Option<&Path>,
    manifest_limit: u64,
) -> Result<u32, Error> {
    let name = &work.spec.name;
    let held = work.held.version;
    if let Some(&v) = dns.get(name).filter(|&&v| held.is_none_or(|h| v > h)) {
        return Ok(v);
    }
    let manifest = manifests.entry(work.bases.to_vec()).or_insert_with(|| {
        let dir = dl_root.join(".manifest");
        let _ = std::fs::create_dir_all(&dir);
        match t.download(
            work.bases,
            crate::model::MANIFEST_FILE,
            &dir,
            manifest_limit,
        ) {
            Ok(d) => match std::fs::read_to_string(&d.path)
                .map_err(BoxError::from)
                .and_then(|s| Ok(crate::manifest::parse(&s, SystemTime::now())?))
            {
                Ok(m) => Some(m),
                Err(e) => {
                    warn!(url = %d.url, "manifest unusable, probing headers instead: {}", Chain(&*e));
                    None
                }
            },
            Err(_) => None,
        }
    });
    if let Some(v) = manifest.as_ref().and_then(|m| m.get(name)) {
        return Ok(*v);
    }
    let file = MirrorFile::Cvd { db: name.clone() }.to_string();
    // Conditional on the build time of the `.cvd` we publish: `304` when upstream has
    // nothing newer (what an upstream ignoring `Range` answers instead of a whole file).
    let held_built = match (held, cur_dir) {
        (Some(h), Some(dir)) => verify::cvd_file_build_time(&dir.join(&file))
            .inspect_err(|e| warn!(db = %name, "probing without If-Modified-Since: {e}"))
            .ok()
            .map(|t| (h, t)),
        _ => None,
    };
    let head = t.read_head(
        work.bases,
        &file,
        cvd_format::header::HEADER_SIZE,
        held_built.map(|(_, t)| t),
    )?;
    let Some((head, url)) = head else {
        // Only asked conditionally when a version is held.
        return held_built.map(|(h, _)| h).ok_or_else(|| Error::Upstream {
            what: file,
            source: "304 Not Modified to an unconditional header probe".into(),
        });
    };
    verify::header_version(&head).map_err(|check| Error::Verification {
        db: name.clone(),
        file,
        url,
        source: CheckError::HeaderProbe(Box::new(check)),
    })
}

/// Downloads `file`, running `check` on it; a file failing the check is rejected and
/// the next upstream tried. Returns the download and the check's result, or the last
/// check failure when every upstream served a bad file.
fn fetch_checked<T>(
    t: &mut dyn Transport,
    bases: &[String],
    file: &MirrorFile,
    dest: &Path,
    max: u64,
    mut check: impl FnMut(&Downloaded) -> Result<T, Error>,
) -> Result<(Downloaded, T), Error> {
    let name = file.to_string();
    let mut last_bad: Option<Error> = None;
    for _ in 0..bases.len().max(1) {
        let d = match t.download(bases, &name, dest, max) {
            Ok(d) => d,
            Err(e) => return Err(last_bad.unwrap_or(e)),
        };
        match check(&d) {
            Ok(v) => return Ok((d, v)),
            Err(e) => {
                let why = Chain(&e).to_string();
                warn!(url = %d.url, "rejected, trying the next upstream: {why}");
                t.reject(&d.url, &why);
                let _ = std::fs::remove_file(&d.path);
                last_bad = Some(e);
            }
        }
    }
    Err(last_bad.unwrap_or_else(|| Error::Upstream {
        what: name,
        source: "no upstream left".into(),
    }))
}

#[allow(clippy::too_many_arguments)]
fn update_db(
    config: &SyncConfig,
    work: &DbWork<'_>,
    advertised: u32,
    cur_dir: Option<&Path>,
    dl: &Path,
    verifier: &Verifier,
    t: &mut dyn Transport,
    upstream: &mut Option<u32>,
    missing: &mut Option<u32>,
) -> Result<Option<Update>, Error> {
    let spec = work.spec;
    let db = &spec.name;
    let held = &work.held;
    let policy = PlanPolicy {
        signs: spec.signs,
        ..config.policy
    };
    if let Some(h) = held.version.filter(|&h| h >= advertised) {
        if h > advertised {
            warn!(db = %db, held = h, advertised, "upstream is behind us; keeping ours");
        }
        // Nothing new; a held chain short of the keep window (an older release kept
        // fewer cdiffs) is backfilled once.
        let p = plan(db, held, advertised, &policy);
        let b = backfill(t, work, &p.backfill, None, dl, config, verifier)?;
        *missing = b.missing;
        if b.versions.is_empty() {
            return Ok(None);
        }
        let mut cdiffs: Vec<u32> = p.publish_cdiffs.into_iter().collect();
        cdiffs.extend(&b.versions);
        cdiffs.sort_unstable();
        return Ok(Some(Update {
            version: h,
            new_files: b.files,
            carry: p.carry,
            cdiffs,
            unproven: b.versions,
            source_url: None,
        }));
    }
    let minimum = held.version.map_or(advertised, |h| advertised.max(h + 1));
    // 1. The new .cvd, fully verified; older than advertised → next upstream.
    let cvd_file = MirrorFile::Cvd { db: db.clone() };
    let (cvd, version) = fetch_checked(t, work.bases, &cvd_file, dl, config.limits.cvd, |d| {
        let v = verifier
            .cvd(&d.path, db, &spec.keys)
            .map_err(|source| Error::Verification {
                db: db.clone(),
                file: cvd_file.to_string(),
                url: d.url.clone(),
                source,
            })?;
        if v < minimum {
            return Err(Error::Rollback {
                db: db.clone(),
                url: d.url.clone(),
                offered: v,
                expected: minimum,
            });
        }
        Ok(v)
    })?;
    *upstream = Some(version);
    // 2. Plan against what it really is.
    let p = plan(db, held, version, &policy);
    let mut new_files = vec![(cvd_file.clone(), cvd.path.clone())];
    let mut cdiff_paths: BTreeMap<u32, PathBuf> = BTreeMap::new();
    let mut chain_broken = false;
    for f in p.fetch.iter().filter(|f| **f != cvd_file) {
        match f {
            MirrorFile::CvdSign { .. } => {
                let (d, ()) = fetch_sign(t, work, f, &cvd.path, dl, config, verifier)?;
                new_files.push((f.clone(), d.path));
            }
            MirrorFile::Cdiff { version: v, .. } => {
                if chain_broken {
                    continue;
                }
                match fetch_cdiff(t, work, *v, dl, config, verifier) {
                    Ok((d, ())) => {
                        cdiff_paths.insert(*v, d.path);
                    }
                    Err(Error::NotFound { .. }) => {
                        warn!(db = %db, file = %f, "cdiff missing upstream: the chain restarts at version {version}");
                        chain_broken = true;
                    }
                    Err(e) => return Err(e),
                }
            }
            MirrorFile::CdiffSign { version: v, .. } => {
                if chain_broken {
                    continue;
                }
                let Some(content) = cdiff_paths.get(v).cloned() else {
                    continue;
                };
                let (d, ()) = fetch_sign(t, work, f, &content, dl, config, verifier)?;
                new_files.push((f.clone(), d.path));
            }
            MirrorFile::Cvd { .. } | MirrorFile::Manifest => {}
        }
    }
    if chain_broken {
        new_files.retain(|(f, _)| !matches!(f, MirrorFile::CdiffSign { .. }));
        // The chain restarts at the new `.cvd`: what is older can only be backfilled.
        let restart = plan(db, &HeldDatabase::default(), version, &policy);
        let b = backfill(
            t,
            work,
            &restart.backfill,
            Some(version),
            dl,
            config,
            verifier,
        )?;
        *missing = b.missing;
        new_files.extend(b.files);
        return Ok(Some(Update {
            version,
            new_files,
            carry: Vec::new(),
            cdiffs: b.versions.clone(),
            unproven: b.versions,
            source_url: Some(cvd.url.clone()),
        }));
    }
    // 3. Chain check: previous published base + every new cdiff == the new .cvd.
    if let (Some(base), Some(cur)) = (p.chain_base, cur_dir) {
        let cdiffs: Vec<PathBuf> = (base + 1..=version)
            .filter_map(|v| cdiff_paths.get(&v).cloned())
            .collect();
        verifier
            .chain(&cur.join(cvd_file.to_string()), &cdiffs, &cvd.path, &spec.keys)
            .map_err(|source| Error::Chain {
                db: db.clone(),
                detail: format!(
                    "{db}.cvd version {base} (published) + {db}-{}..{db}-{version}.cdiff do not reproduce {db}.cvd version {version} from {}",
                    base + 1,
                    cvd.url
                ),
                source,
            })?;
    }
    for v in &p.publish_cdiffs {
        if let Some(path) = cdiff_paths.remove(v) {
            new_files.push((
                MirrorFile::Cdiff {
                    db: db.clone(),
                    version: *v,
                },
                path,
            ));
        }
    }
    // 4. Backfill below the proven chain (signature-verified, chain-unproven).
    let b = backfill(t, work, &p.backfill, Some(version), dl, config, verifier)?;
    *missing = b.missing;
    new_files.extend(b.files);
    let mut cdiffs: Vec<u32> = p.publish_cdiffs.into_iter().collect();
    cdiffs.extend(&b.versions);
    cdiffs.sort_unstable();
    Ok(Some(Update {
        version,
        new_files,
        carry: p.carry,
        cdiffs,
        unproven: b.versions,
        source_url: Some(cvd.url.clone()),
    }))
}

/// Downloads and fully verifies `<db>-<v>.cdiff` (size limit, container signature with
/// the database's CDIFF key, script, version equal to the name's).
fn fetch_cdiff(
    t: &mut dyn Transport,
    work: &DbWork<'_>,
    v: u32,
    dl: &Path,
    config: &SyncConfig,
    verifier: &Verifier,
) -> Result<(Downloaded, ()), Error> {
    let db = &work.spec.name;
    let f = MirrorFile::Cdiff {
        db: db.clone(),
        version: v,
    };
    fetch_checked(t, work.bases, &f, dl, config.limits.cdiff, |d| {
        let bad = |source: CheckError| Error::Verification {
            db: db.clone(),
            file: f.to_string(),
            url: d.url.clone(),
            source,
        };
        let got = verifier.cdiff(&d.path, &work.spec.keys).map_err(bad)?;
        if got != v {
            return Err(bad(CheckError::CdiffVersion {
                header: got,
                name: v,
            }));
        }
        Ok(())
    })
}

/// Bootstrap backfill: walks `versions` (newest first, contiguous, continuing the
/// published chain downwards), downloading and fully verifying each cdiff and, when
/// the database wants them, its `.sign`. The walk ends at the first cdiff (or `.sign`)
/// upstream no longer has, or at an unreachable or rate-limited upstream (what was
/// fetched so far is kept; a later sync resumes below it); a file that fails
/// verification fails the database. Versions at or below the one upstream already
/// lacked at an earlier walk are not asked for again; a 404 for the version this sync
/// publishes (`fresh`: its `.sign` may lag behind upstream) is not remembered.
#[allow(clippy::too_many_arguments)]
fn backfill(
    t: &mut dyn Transport,
    work: &DbWork<'_>,
    versions: &[u32],
    fresh: Option<u32>,
    dl: &Path,
    config: &SyncConfig,
    verifier: &Verifier,
) -> Result<Backfilled, Error> {
    let db = &work.spec.name;
    let mut files = Vec::new();
    let mut got = Vec::new();
    let mut missing = None;
    let wanted = versions
        .iter()
        .copied()
        .filter(|&v| work.backfill_missing.is_none_or(|m| v > m));
    for v in wanted {
        let stop = |e: &Error| {
            matches!(e.kind(), ErrorKind::Upstream | ErrorKind::RateLimited)
                || matches!(e, Error::NotFound { .. })
        };
        let cdiff = match fetch_cdiff(t, work, v, dl, config, verifier) {
            Ok((d, ())) => d,
            Err(e) if stop(&e) => {
                info!(db = %db, "backfill of older cdiffs ends below version {}: {}", v + 1, Chain(&e));
                missing = (matches!(e, Error::NotFound { .. }) && fresh != Some(v)).then_some(v);
                break;
            }
            Err(e) => return Err(e),
        };
        let cdiff_file = MirrorFile::Cdiff {
            db: db.clone(),
            version: v,
        };
        if work.spec.signs {
            let sign_file = MirrorFile::CdiffSign {
                db: db.clone(),
                version: v,
            };
            let r = fetch_checked(t, work.bases, &sign_file, dl, config.limits.sign, |d| {
                verifier
                    .sign(&d.path, &cdiff.path)
                    .map_err(|source| Error::Verification {
                        db: db.clone(),
                        file: sign_file.to_string(),
                        url: d.url.clone(),
                        source,
                    })
            });
            match r {
                Ok((d, ())) => files.push((sign_file, d.path)),
                Err(e) if stop(&e) => {
                    info!(db = %db, "backfill of older cdiffs ends below version {}: {}", v + 1, Chain(&e));
                    missing =
                        (matches!(e, Error::NotFound { .. }) && fresh != Some(v)).then_some(v);
                    let _ = std::fs::remove_file(&cdiff.path);
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        files.push((cdiff_file, cdiff.path));
        got.push(v);
    }
    got.reverse();
    if let (Some(lo), Some(hi)) = (got.first(), got.last()) {
        warn!(
            db = %db,
            "publishing {db}-{lo}..{db}-{hi}.cdiff signature-verified but CHAIN-UNPROVEN: no published base precedes them (bootstrap backfill; bootstrap_cdiffs = false turns this off)"
        );
    }
    Ok(Backfilled {
        files,
        versions: got,
        missing,
    })
}

fn fetch_sign(
    t: &mut dyn Transport,
    work: &DbWork<'_>,
    f: &MirrorFile,
    content: &Path,
    dl: &Path,
    config: &SyncConfig,
    verifier: &Verifier,
) -> Result<(Downloaded, ()), Error> {
    let db = &work.spec.name;
    fetch_checked(t, work.bases, f, dl, config.limits.sign, |d| {
        verifier
            .sign(&d.path, content)
            .map_err(|source| Error::Verification {
                db: db.clone(),
                file: f.to_string(),
                url: d.url.clone(),
                source,
            })
    })
    .map_err(|e| match e {
        Error::NotFound { file, source } => Error::Verification {
            db: db.clone(),
            file,
            url: work.bases.join(", "),
            source: CheckError::SignMissing(source),
        },
        e => e,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
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
