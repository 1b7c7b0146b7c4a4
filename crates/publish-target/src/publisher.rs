//! The engine: one pass brings a target to the local generation; [`Publisher::publish`]
//! retries passes with backoff within a budget; [`publish_all`] runs every configured
//! target and records their state in `DIR/targets.json`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use mirror_core::model::MirrorFile;
use mirror_core::targets::{ObjectRecord, RunCounters, TARGETS_FORMAT, TargetState, TargetsRecord};
use object_store::path::Path as ObjPath;
use object_store::{
    Attribute, Attributes, GetOptions, ObjectStore, ObjectStoreExt, PutMode, PutOptions,
    PutPayload, UpdateVersion,
};

use crate::error::PublishError;
use crate::local::{LocalFile, LocalGeneration, hex};
use crate::plan::{Action, Kind, cache_control, content_type, order};
use crate::target::PublishSettings;

/// Metadata key of the content's SHA-256 (`x-amz-meta-sha256` on S3).
const META_SHA256: &str = "sha256";
/// Metadata key of a `<db>.cvd`'s version (`x-amz-meta-cvd-version`).
const META_CVD_VERSION: &str = "cvd-version";
/// Metadata key of a `<db>.cvd`'s build time as an HTTP date
/// (`x-amz-meta-cvd-build-time`): S3 sets `Last-Modified` to the upload time itself, so
/// a CDN in front must serve this value as `Last-Modified` (README, "No downgrade").
const META_CVD_BUILD_TIME: &str = "cvd-build-time";
/// Passes restarted after a lost race, per publish, before giving up until the next
/// sync (each restart lists the target afresh).
const MAX_CONFLICT_RESTARTS: u32 = 5;
/// First and longest wait between passes after a store error.
const BACKOFF_FIRST: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(10);

/// What one publish to one target did.
#[derive(Debug, Default)]
pub struct RunReport {
    /// Requests and bytes.
    pub counters: RunCounters,
    /// Objects written, in the order written.
    pub uploaded: Vec<String>,
    /// Objects deleted (their grace period over).
    pub deleted: Vec<String>,
    /// Passes run (1 when the first one completed).
    pub attempts: u32,
    /// Passes restarted after losing a race to another publisher.
    pub conflicts: u32,
    /// Why the target was left lagging, when it was.
    pub error: Option<PublishError>,
}

/// What a listing shows of one object.
#[derive(Debug, Clone)]
struct Remote {
    etag: Option<String>,
    size: u64,
}

/// Publishes to one target.
#[derive(Debug)]
pub struct Publisher {
    store: Arc<dyn ObjectStore>,
    prefix: String,
    /// The store keeps metadata and honours `If-Match` (S3); a directory does neither
    /// (contents are compared by reading them, replaced objects are renamed over).
    s3: bool,
    counters: RunCounters,
}

impl Publisher {
    /// A publisher writing under `prefix` (no leading or trailing `/`) of `store`;
    /// `s3`: the store keeps object metadata and supports `If-Match` (see
    /// [`crate::TargetSpec::open`]).
    pub fn new(store: Arc<dyn ObjectStore>, prefix: String, s3: bool) -> Self {
        Publisher {
            store,
            prefix,
            s3,
            counters: RunCounters::default(),
        }
    }

    fn path(&self, name: &str) -> ObjPath {
        if self.prefix.is_empty() {
            ObjPath::from(name)
        } else {
            ObjPath::from(format!("{}/{name}", self.prefix))
        }
    }

    /// Brings the target to `local`: passes (list, compare, upload in order, read
    /// back, prune) until one completes, a conflict restarting at once from a fresh
    /// view, a store error after a backoff, within `settings.retry_budget`. `state` is
    /// the target's record (ETags written, deletions pending); `now_unix` decides the
    /// pruning grace.
    pub async fn publish(
        &mut self,
        local: &LocalGeneration,
        state: &mut TargetState,
        settings: &PublishSettings,
        now_unix: i64,
    ) -> RunReport {
        self.counters = RunCounters::default();
        let start = Instant::now();
        let schedule = fetch::Backoff::new(BACKOFF_FIRST, BACKOFF_MAX);
        let mut failures = 0u32;
        let mut report = RunReport::default();
        loop {
            report.attempts += 1;
            let result = self
                .pass(local, state, settings.prune_grace, now_unix, &mut report)
                .await;
            let e = match result {
                Ok(()) => break,
                Err(e) => e,
            };
            if matches!(e, PublishError::Conflict { .. })
                && report.conflicts < MAX_CONFLICT_RESTARTS
            {
                report.conflicts += 1;
                state.conflicts += 1;
                tracing::warn!(error = %Chain(&e), "lost a race to another publisher; starting again from a fresh listing");
                continue;
            }
            let backoff = schedule.delay(failures);
            if e.is_retryable() && start.elapsed() + backoff < settings.retry_budget {
                tracing::warn!(error = %Chain(&e), retry_in_ms = backoff.as_millis() as u64, "publish pass failed; backing off");
                tokio::time::sleep(backoff).await;
                failures = failures.saturating_add(1);
                continue;
            }
            report.error = Some(e);
            break;
        }
        report.counters = self.counters;
        report
    }

    /// The objects under the prefix whose names are mirror files.
    async fn list(&mut self) -> Result<BTreeMap<String, Remote>, PublishError> {
        let prefix = (!self.prefix.is_empty()).then(|| ObjPath::from(self.prefix.as_str()));
        let mut stream = self.store.list(prefix.as_ref());
        let mut out = BTreeMap::new();
        let mut n = 0u64;
        while let Some(item) = stream.next().await {
            let meta = item.map_err(|e| store_err("LIST", &self.prefix, e))?;
            n += 1;
            let full = meta.location.as_ref();
            let name = if self.prefix.is_empty() {
                full
            } else {
                match full
                    .strip_prefix(self.prefix.as_str())
                    .and_then(|r| r.strip_prefix('/'))
                {
                    Some(n) => n,
                    None => continue,
                }
            };
            if !ours(name) {
                continue;
            }
            out.insert(
                name.to_owned(),
                Remote {
                    etag: meta.e_tag,
                    size: meta.size,
                },
            );
        }
        // one request per page of 1000 keys
        self.counters.requests += 1 + n / 1000;
        Ok(out)
    }

    /// The SHA-256 and `.cvd` version of an object whose ETag the record does not
    /// know: its metadata on S3 (one HEAD), its content on a directory.
    async fn identify(
        &mut self,
        name: &str,
        cvd: bool,
    ) -> Result<(Option<String>, Option<u32>), PublishError> {
        let path = self.path(name);
        self.counters.requests += 1;
        if self.s3 {
            let r = self
                .store
                .get_opts(
                    &path,
                    GetOptions {
                        head: true,
                        ..Default::default()
                    },
                )
                .await
                .map_err(|e| store_err("HEAD", name, e))?;
            let meta = |k: &'static str| {
                r.attributes
                    .get(&Attribute::Metadata(k.into()))
                    .map(|v| v.as_ref().to_owned())
            };
            let version = meta(META_CVD_VERSION).and_then(|v| v.parse().ok());
            Ok((meta(META_SHA256), version))
        } else {
            let bytes = self
                .store
                .get(&path)
                .await
                .map_err(|e| store_err("GET", name, e))?
                .bytes()
                .await
                .map_err(|e| store_err("GET", name, e))?;
            let version = if cvd {
                bytes
                    .get(..512)
                    .and_then(|h| cvd_format::Header::parse(h).ok())
                    .map(|h| h.version)
            } else {
                None
            };
            use sha2::Digest;
            Ok((Some(hex(&sha2::Sha256::digest(&bytes))), version))
        }
    }

    async fn pass(
        &mut self,
        local: &LocalGeneration,
        state: &mut TargetState,
        grace: Duration,
        now_unix: i64,
        report: &mut RunReport,
    ) -> Result<(), PublishError> {
        let view = self.list().await?;
        // Plan: compare by content.
        let mut todo: Vec<(Kind, String, (&LocalFile, Action))> = Vec::new();
        for f in &local.files {
            let kind = f.kind;
            let action = match view.get(&f.name) {
                None => Action::Create,
                Some(r) => {
                    let known = state.objects.get(&f.name).is_some_and(|rec| {
                        rec.sha256 == f.sha256
                            && rec.etag.is_some()
                            && rec.etag == r.etag
                            && rec.size == r.size
                    });
                    if known {
                        Action::Keep
                    } else {
                        let (sha, version) = self.identify(&f.name, kind == Kind::Cvd).await?;
                        if let (Some(remote), Some(local_v), Some(MirrorFile::Cvd { db })) =
                            (version, f.cvd_version, &f.file)
                            && remote > local_v
                        {
                            return Err(PublishError::TargetAhead {
                                db: db.clone(),
                                remote,
                                local: local_v,
                            });
                        }
                        if sha.as_deref() == Some(f.sha256.as_str()) && r.size == f.size {
                            state.objects.insert(
                                f.name.clone(),
                                ObjectRecord {
                                    sha256: f.sha256.clone(),
                                    etag: r.etag.clone(),
                                    size: f.size,
                                },
                            );
                            Action::Keep
                        } else {
                            Action::Replace {
                                etag: r.etag.clone(),
                            }
                        }
                    }
                }
            };
            if action != Action::Keep {
                todo.push((kind, f.name.clone(), (f, action)));
            }
        }
        order(&mut todo);
        // Upload kind by kind; read each kind back before the next one moves.
        for phase in [
            Kind::Immutable,
            Kind::Cvd,
            Kind::FeedFile,
            Kind::Manifest,
            Kind::FeedListing,
        ] {
            let mut written = Vec::new();
            for (_, _, (f, action)) in todo.iter().filter(|t| t.0 == phase) {
                let etag = self.put(f, phase, action).await?;
                state.objects.insert(
                    f.name.clone(),
                    ObjectRecord {
                        sha256: f.sha256.clone(),
                        etag: etag.clone(),
                        size: f.size,
                    },
                );
                report.uploaded.push(f.name.clone());
                written.push((*f, etag));
            }
            for (f, etag) in written {
                self.read_back(f, etag.as_deref()).await?;
            }
        }
        // Versions the target now holds; pruning never touches a newer one.
        for f in &local.files {
            if let (Some(MirrorFile::Cvd { db }), Some(v)) = (&f.file, f.cvd_version) {
                state.versions.insert(db.clone(), v);
            }
        }
        self.prune(local, &view, state, grace, now_unix, report)
            .await
    }

    async fn put(
        &mut self,
        f: &LocalFile,
        kind: Kind,
        action: &Action,
    ) -> Result<Option<String>, PublishError> {
        let bytes = std::fs::read(&f.path).map_err(|source| PublishError::Local {
            path: f.path.clone(),
            source,
        })?;
        if bytes.len() as u64 != f.size {
            return Err(PublishError::Local {
                path: f.path.clone(),
                source: std::io::Error::other("the file changed size since it was hashed"),
            });
        }
        let mode = match (action, self.s3) {
            (Action::Replace { etag: Some(e) }, true) => PutMode::Update(UpdateVersion {
                e_tag: Some(e.clone()),
                version: None,
            }),
            // no ETag listed: the store cannot guard the replace
            (Action::Replace { .. }, _) => PutMode::Overwrite,
            _ => PutMode::Create,
        };
        let mut attributes = Attributes::new();
        if self.s3 {
            attributes.insert(Attribute::ContentType, content_type(kind).into());
            attributes.insert(Attribute::CacheControl, cache_control(kind).into());
            attributes.insert(
                Attribute::Metadata(META_SHA256.into()),
                f.sha256.clone().into(),
            );
            if let Some(v) = f.cvd_version {
                attributes.insert(
                    Attribute::Metadata(META_CVD_VERSION.into()),
                    v.to_string().into(),
                );
            }
            if let Some(t) = f
                .cvd_build_time
                .and_then(|t| u64::try_from(t).ok())
                .and_then(|t| std::time::UNIX_EPOCH.checked_add(Duration::from_secs(t)))
            {
                attributes.insert(
                    Attribute::Metadata(META_CVD_BUILD_TIME.into()),
                    httpdate::fmt_http_date(t).into(),
                );
            }
        }
        let opts = PutOptions {
            mode,
            attributes,
            ..Default::default()
        };
        self.counters.requests += 1;
        self.counters.puts += 1;
        self.counters.bytes_sent += f.size;
        self.counters.bytes_new += f.size;
        let payload = PutPayload::from(Bytes::from(bytes));
        match self
            .store
            .put_opts(&self.path(&f.name), payload, opts)
            .await
        {
            Ok(r) => {
                tracing::debug!(object = %f.name, "written");
                Ok(r.e_tag)
            }
            Err(
                object_store::Error::Precondition { .. }
                | object_store::Error::AlreadyExists { .. },
            ) => Err(PublishError::Conflict {
                name: f.name.clone(),
            }),
            Err(e) => Err(store_err("PUT", &f.name, e)),
        }
    }

    async fn read_back(&mut self, f: &LocalFile, etag: Option<&str>) -> Result<(), PublishError> {
        self.counters.requests += 1;
        let r = self
            .store
            .get_opts(
                &self.path(&f.name),
                GetOptions {
                    head: true,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| store_err("HEAD", &f.name, e))?;
        let bad = |what: String| PublishError::ReadBack {
            name: f.name.clone(),
            what,
        };
        if r.meta.size != f.size {
            return Err(bad(format!("size {} instead of {}", r.meta.size, f.size)));
        }
        if let (Some(want), Some(got)) = (etag, r.meta.e_tag.as_deref())
            && want != got
        {
            // Another publisher wrote after us: the next pass sorts it out.
            return Err(PublishError::Conflict {
                name: f.name.clone(),
            });
        }
        if self.s3 {
            let sha = r.attributes.get(&Attribute::Metadata(META_SHA256.into()));
            if sha.map(|v| v.as_ref()) != Some(f.sha256.as_str()) {
                return Err(bad("SHA-256 metadata".into()));
            }
        }
        Ok(())
    }

    async fn prune(
        &mut self,
        local: &LocalGeneration,
        view: &BTreeMap<String, Remote>,
        state: &mut TargetState,
        grace: Duration,
        now_unix: i64,
        report: &mut RunReport,
    ) -> Result<(), PublishError> {
        let wanted: BTreeSet<&str> = local.files.iter().map(|f| f.name.as_str()).collect();
        let newest: BTreeMap<String, u32> = local
            .files
            .iter()
            .filter_map(|f| match &f.file {
                Some(MirrorFile::Cvd { db }) => f.cvd_version.map(|v| (db.clone(), v)),
                _ => None,
            })
            .collect();
        state
            .pending_deletes
            .retain(|name, _| !wanted.contains(name.as_str()) && view.contains_key(name));
        let grace = i64::try_from(grace.as_secs()).unwrap_or(i64::MAX);
        for name in view.keys().filter(|n| !wanted.contains(n.as_str())) {
            let Some(file) = mirror_core::model::FileName::parse(name) else {
                continue;
            };
            // Never an object newer than what we publish (another publisher's), nor a
            // database we do not publish.
            let Some(db) = file.db() else { continue };
            let Some(&top) = newest.get(db) else { continue };
            if file.version().is_some_and(|v| v > top) {
                continue;
            }
            let since = *state
                .pending_deletes
                .entry(name.clone())
                .or_insert(now_unix);
            if now_unix.saturating_sub(since) < grace {
                continue;
            }
            self.counters.requests += 1;
            self.counters.deletes += 1;
            match self.store.delete(&self.path(name)).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(store_err("DELETE", name, e)),
            }
            state.pending_deletes.remove(name);
            state.objects.remove(name);
            report.deleted.push(name.clone());
        }
        Ok(())
    }
}

fn store_err(op: &'static str, name: &str, e: object_store::Error) -> PublishError {
    PublishError::Store {
        op,
        name: name.to_owned(),
        source: Box::new(e),
    }
}

/// Longest error message kept for a target (a proxy's or store's HTML error page can
/// be many kilobytes).
const MAX_ERROR_MESSAGE: usize = 600;

/// A target's error for `targets.json` and the log: a certificate, proxy or tunnel
/// problem in the HTTP stack's plain words (naming the request's URL, else `url`); else the chain on one line, each message
/// once (object_store repeats its causes), cut at [`MAX_ERROR_MESSAGE`] bytes.
fn plain_message(http: &fetch::HttpSettings, url: &str, e: &PublishError) -> String {
    let mut m = match http.plain_error(url, e) {
        Some(plain) => plain.to_string(),
        None => fetch::http::error_chain(e),
    };
    if m.len() > MAX_ERROR_MESSAGE {
        let mut cut = MAX_ERROR_MESSAGE;
        while !m.is_char_boundary(cut) {
            cut -= 1;
        }
        m.truncate(cut);
        m.push_str(" …");
    }
    m
}

/// An error and its sources on one line (`a: b: c`).
struct Chain<'a>(&'a (dyn std::error::Error + 'static));

impl std::fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut s = self.0.source();
        while let Some(e) = s {
            write!(f, ": {e}")?;
            s = e.source();
        }
        Ok(())
    }
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Publishes the generation `DIR/current` points at to every target of `settings`
/// (one after the other), then records each target's state in `DIR/targets.json`
/// (targets no longer configured are dropped from it). Blocking: it runs its own
/// single-threaded runtime. Never fails the caller: a target that could not be brought
/// up to date within its budget is logged, recorded as lagging and reported.
pub fn publish_all(dir: &Path, settings: &PublishSettings) -> Vec<(String, RunReport)> {
    if settings.targets.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    let local = match LocalGeneration::read(dir) {
        Ok(Some(l)) => l,
        Ok(None) => {
            tracing::warn!("nothing published locally yet: no publish to targets");
            return out;
        }
        Err(e) => {
            tracing::error!(error = %Chain(&e), "reading the published generation");
            return out;
        }
    };
    let mut record = match TargetsRecord::read(dir) {
        Ok(r) => r.unwrap_or_default(),
        Err(e) => {
            tracing::warn!(error = %e, "{} unreadable: starting afresh", mirror_core::targets::TARGETS_FILE);
            TargetsRecord::default()
        }
    };
    record.format = TARGETS_FORMAT;
    record
        .targets
        .retain(|url, _| settings.targets.iter().any(|t| &t.url == url));
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %Chain(&PublishError::Runtime(e)), "no publish to targets");
            return out;
        }
    };
    for spec in &settings.targets {
        let state = record.targets.entry(spec.url.clone()).or_default();
        let now = now_unix();
        state.wanted_generation = Some(local.name.clone());
        state.last_attempt_unix = Some(now);
        let report = match spec.open_with(&[], &settings.http) {
            Ok((store, prefix, s3)) => {
                let mut p = Publisher::new(store, prefix, s3);
                rt.block_on(p.publish(&local, state, settings, now))
            }
            Err(e) => RunReport {
                error: Some(e),
                attempts: 1,
                ..Default::default()
            },
        };
        state.last_run = report.counters;
        match &report.error {
            None => {
                state.published_generation = Some(local.name.clone());
                state.last_success_unix = Some(now_unix());
                state.last_error = None;
                state.consecutive_failures = 0;
                tracing::info!(
                    target = %spec.url,
                    generation = %local.name,
                    puts = report.counters.puts,
                    bytes_sent = report.counters.bytes_sent,
                    deleted = report.deleted.len(),
                    conflicts = report.conflicts,
                    "target up to date"
                );
            }
            Some(e) => {
                let plain = plain_message(&settings.http, &spec.url, e);
                state.last_error = Some(plain.clone());
                state.consecutive_failures = state.consecutive_failures.saturating_add(1);
                tracing::error!(
                    target = %spec.url,
                    attempts = report.attempts,
                    error = %plain,
                    "target left lagging (the local mirror is published; the next sync tries again)"
                );
            }
        }
        out.push((spec.url.clone(), report));
    }
    if let Err(e) = record.store(dir) {
        tracing::error!(error = %e, "writing {}", mirror_core::targets::TARGETS_FILE);
    }
    out
}

/// Whether an object name under the prefix is one this publisher manages: a name of
/// the database grammar, `feeds.json`, or a feed file `<feed>/<file>`.
fn ours(name: &str) -> bool {
    use mirror_core::feed_listing::{FEEDS_FILE, valid_component};
    if name == FEEDS_FILE {
        return true;
    }
    match name.split_once('/') {
        None => MirrorFile::parse(name).is_some(),
        Some((feed, file)) => valid_component(feed) && valid_component(file),
    }
}
