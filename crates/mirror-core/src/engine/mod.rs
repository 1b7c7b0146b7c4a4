//! The sync engine. One sync is a [`SyncRun`] going through named phases, each in its
//! own file; they share the run's context (configuration, transport, verifier, the
//! published generation, `status.json`, the report being built):
//!
//! | phase | where | what |
//! |---|---|---|
//! | 0. start | here, [`SyncRun::start`] | lock, `status.json` read, `staging/` cleaned, the published generation read (snapshot, trust record), the signature verifier |
//! | 1. learn versions | [`learn`] | DNS once per sync; per database DNS, else the upstream's `dns.txt`, else the `.cvd` header probe |
//! | 2. fetch and verify | [`database`] (per database: plan, chain check), [`backfill`] (older chain-unproven cdiffs), [`download`] (one verified download, failing over) | per database a verified [`database::Update`] or the reason it keeps its last good state |
//! | 2b. feeds | [`feeds`] | every `[[feed]]` synced into `staging/feeds/` (verified, load-checked, last good copies kept) and the generation's `feeds.json` listing ([`crate::feed_listing`]); extra content for phase 3 |
//! | 3. assemble | [`assemble`] | the new generation in `staging/`: updated files moved in, unchanged ones linked, `dns.txt`, `.trust.json`, `.trace.json`, extra content |
//! | 4. publish | here, [`SyncRun::publish`] (the mechanics are [`crate::publish`]) | fsync, atomic switch of `current`, prune ([`crate::prune`]), `staging/` cleaned |
//! | 5. record | [`record`] | `status.json` |
//!
//! What a sync is configured with is in [`config`], what it returns in [`report`].

mod assemble;
mod backfill;
mod config;
mod database;
mod download;
mod feeds;
mod learn;
mod record;
mod report;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use tracing::{error, info, warn};

pub use config::{
    DEFAULT_MIRROR_NAME, DatabaseSpec, Limits, SyncConfig, SyncConfigBuilder, VersionSource,
};
pub use feeds::FEEDS_WORK;
pub use learn::DnsVersions;
pub use report::{DatabaseOutcome, SyncReport, feed_error_kind};

use crate::error::{Error, io_err};
use crate::lock::SyncLock;
use crate::model::Snapshot;
use crate::prune::prune_generations;
use crate::publish::{NewGeneration, clean_staging};
use crate::status::MirrorStatus;
use crate::trace::SyncHints;
use crate::transport::{Downloaded, Transport};
use crate::trust::{GenerationTrust, TrustSource, generation_trust};
use crate::verify::Verifier;

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
    sync_including(config, transport, dns, hints, Vec::new())
}

/// [`sync_with`], with content of another kind to include in the generation besides
/// the feeds ([`assemble::ExtraContent`]; tests).
fn sync_including(
    config: &SyncConfig,
    transport: &mut dyn Transport,
    dns: Option<&mut dyn DnsVersions>,
    hints: &SyncHints,
    extra: Vec<assemble::ExtraContent>,
) -> Result<SyncReport, Error> {
    let layout = &config.layout;
    layout.create()?;
    let _lock = SyncLock::acquire(&layout.lock_file())?;
    let started = now_secs();
    let mut status = record::read_status(layout)?;
    status.status.last_attempt = Some(started);
    let run = SyncRun::start(config, transport, hints, &mut status);
    let result = run.and_then(|run| run.phases(dns, extra));
    record::store_status(layout, status.status, &result, started)?;
    result
}

/// What the published generation (`DIR/current`) holds when the sync starts.
struct Published {
    /// Its directory (`None`: nothing published yet).
    dir: Option<PathBuf>,
    /// Its databases and files.
    snapshot: Snapshot,
    /// Which of its cdiffs are chain-unproven, and how that was determined.
    trust: GenerationTrust,
}

/// One sync: the context its phases share.
struct SyncRun<'a> {
    config: &'a SyncConfig,
    hints: &'a SyncHints,
    /// The network, counting what goes through it.
    transport: Counting<'a>,
    verifier: Verifier,
    /// `staging/downloads/`.
    downloads: PathBuf,
    published: Published,
    /// `status.json` as read at the start; phase 5 brings it up to date.
    status: &'a mut MirrorStatus,
    /// Built by the phases.
    report: SyncReport,
    /// Phase 2's verified updates by database, consumed by phase 3.
    updates: BTreeMap<String, database::Update>,
    /// Per database, the cdiff version upstream answered "not found" for in this sync's
    /// backfill walk (recorded in phase 5).
    backfill_missing: BTreeMap<String, u32>,
}

impl<'a> SyncRun<'a> {
    /// Phase 0: cleans what a killed run left in `staging/`, reads the published
    /// generation and makes the verifier and the download area.
    fn start(
        config: &'a SyncConfig,
        transport: &'a mut dyn Transport,
        hints: &'a SyncHints,
        status: &'a mut record::ReadStatus,
    ) -> Result<Self, Error> {
        let layout = &config.layout;
        clean_staging(layout)?;
        let current = layout.current_generation()?;
        let dir = current.map(|g| layout.generation(g));
        let snapshot = match &dir {
            Some(d) => Snapshot::read(d)?,
            None => Snapshot::default(),
        };
        // Which published cdiffs are unproven: from the published generation's own
        // record.
        let trust = match &dir {
            Some(d) => {
                let t = generation_trust(d, &snapshot, status.readable.then_some(&status.status));
                log_trust_source(d, &t.source);
                t
            }
            None => GenerationTrust {
                unproven: BTreeMap::new(),
                source: TrustSource::Record,
            },
        };
        let verifier = Verifier::new(
            config.sign_roots.as_ref(),
            config.verify_time.unwrap_or_else(SystemTime::now),
        )?;
        let downloads = layout.staging().join(crate::publish::DOWNLOADS);
        std::fs::create_dir_all(&downloads).map_err(io_err(&downloads, "create directory"))?;
        Ok(Self {
            config,
            hints,
            transport: Counting {
                inner: transport,
                bytes: 0,
                files: 0,
            },
            verifier,
            downloads,
            published: Published {
                dir,
                snapshot,
                trust,
            },
            status: &mut status.status,
            report: SyncReport::default(),
            updates: BTreeMap::new(),
            backfill_missing: BTreeMap::new(),
        })
    }

    /// The phases after phase 0, in order, under the lock; `extra`: content of
    /// another kind for phase 3.
    fn phases(
        mut self,
        dns: Option<&mut dyn DnsVersions>,
        extra: Vec<assemble::ExtraContent>,
    ) -> Result<SyncReport, Error> {
        let config = self.config;
        // 1. Versions from DNS, once per sync (per database in phase 2).
        let mut versions = learn::UpstreamVersions::ask_dns(config, dns, &self.downloads);
        // 1 and 2, per database.
        for spec in &config.databases {
            self.sync_database(spec, &mut versions);
        }
        self.report.bytes_downloaded = self.transport.bytes;
        self.report.files_downloaded = self.transport.files;
        // 2b. Third-party feeds, as content of another kind.
        let mut extra = extra;
        extra.extend(self.sync_feeds()?);
        // 3 and 4: one new snapshot holding every database, if anything changed.
        if let Some(generation) = self.assemble(extra)? {
            self.publish(generation)?;
        }
        self.prune()?;
        // 5.
        self.record()?;
        Ok(self.report)
    }

    /// Phase 4: makes the assembled generation durable and switches `current` to it.
    fn publish(&mut self, generation: NewGeneration) -> Result<(), Error> {
        let id = generation.publish()?;
        info!(generation = %id, "published");
        self.report.published = Some(id);
        self.status.last_publish = Some(now_secs());
        Ok(())
    }

    /// The end of phase 4, published or not: old generations pruned, `staging/` cleaned.
    fn prune(&mut self) -> Result<(), Error> {
        let layout = &self.config.layout;
        let removed = prune_generations(layout, &self.config.prune, SystemTime::now())?;
        if !removed.is_empty() {
            info!(?removed, "pruned old generations");
        }
        clean_staging(layout)
    }
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

    #[cfg(feature = "http")]
    fn http_client(&self) -> Option<&fetch::Client> {
        self.inner.http_client()
    }
}
