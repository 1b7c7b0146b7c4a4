//! Phase 5, recording: `status.json` ([`crate::status`]), read before phase 0
//! ([`read_status`]), brought up to date from the report ([`SyncRun::record`]) and
//! written whatever the sync's result ([`store_status`]). It is a cache for readers:
//! what decides trust comes from the generations, so a lost or damaged one is rebuilt,
//! never believed over them.

use std::path::{Path, PathBuf};

use tracing::error;

use super::report::SyncReport;
use super::{SyncRun, now_secs};
use crate::error::{Chain, Error, ErrorKind, io_err};
use crate::layout::MirrorLayout;
use crate::status::MirrorStatus;

/// `status.json` as read at the start of a sync.
pub(super) struct ReadStatus {
    /// Its content (the default when missing or unreadable).
    pub(super) status: MirrorStatus,
    /// Whether it was read (and may stand in for a generation without trust record).
    pub(super) readable: bool,
}

/// Reads `status.json`; a missing (with a published generation) or unreadable one is
/// logged and rebuilt.
pub(super) fn read_status(layout: &MirrorLayout) -> Result<ReadStatus, Error> {
    let status_path = layout.root().join(crate::status::STATUS_FILE);
    Ok(match MirrorStatus::read(layout.root()) {
        Ok(Some(status)) => ReadStatus {
            status,
            readable: true,
        },
        Ok(None) => {
            if layout.current_generation()?.is_some() {
                error!(path = %status_path.display(), "status file missing; rebuilding it from the published generation");
            }
            ReadStatus {
                status: MirrorStatus::default(),
                readable: false,
            }
        }
        Err(e) => {
            error!(path = %status_path.display(), "status file unreadable ({}); rebuilding it from the published generation", Chain(&e));
            ReadStatus {
                status: MirrorStatus::default(),
                readable: false,
            }
        }
    })
}

/// Writes `status` with the sync's overall result (`started`: when it started).
pub(super) fn store_status(
    layout: &MirrorLayout,
    mut status: MirrorStatus,
    result: &Result<SyncReport, Error>,
    started: i64,
) -> Result<(), Error> {
    match result {
        Ok(report) => {
            let failed: Vec<String> = report
                .databases
                .iter()
                .filter_map(|d| d.result.as_ref().err().map(|e| Chain(e).to_string()))
                .chain(report.feeds.iter().flat_map(|f| {
                    f.files.iter().filter_map(move |x| {
                        x.error
                            .as_ref()
                            .map(|e| format!("feed {} file {}: {}", f.feed, x.file, e.chain()))
                    })
                }))
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
    let status_path = layout.root().join(crate::status::STATUS_FILE);
    status
        .store(layout.root())
        .map_err(io_err(&status_path, "write"))
}

impl SyncRun<'_> {
    /// Phase 5: brings the status up to date with what is published now and with each
    /// database's outcome.
    pub(super) fn record(&mut self) -> Result<(), Error> {
        let layout = &self.config.layout;
        let status = &mut *self.status;
        let current = layout.current_generation()?;
        status.generation = current.map(|g| g.dir_name());
        status.published_dir = current.map(|_| absolute(&layout.current()));
        // Databases held but no longer configured: carried over unchanged.
        for (name, held) in &self.published.snapshot.databases {
            if self.report.databases.iter().all(|o| o.name != *name) {
                let s = status.databases.entry(name.clone()).or_default();
                s.published_version = held.version;
                s.cdiffs = held.cdiffs.keys().copied().collect();
                s.unproven_cdiffs = self.published.trust.unproven_of(name).to_vec();
            }
        }
        for o in &self.report.databases {
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
            if let Some(&m) = self.backfill_missing.get(&o.name) {
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
        self.record_feeds();
        Ok(())
    }

    /// Phase 5 for the feeds: each configured feed's files; feeds no longer configured
    /// are forgotten.
    fn record_feeds(&mut self) {
        let status = &mut *self.status;
        let now = now_secs();
        let unix = |t: std::time::SystemTime| {
            t.duration_since(std::time::UNIX_EPOCH)
                .ok()
                .and_then(|d| i64::try_from(d.as_secs()).ok())
        };
        let feeds = &self.report.feeds;
        status
            .feeds
            .retain(|k, _| feeds.iter().any(|f| f.feed == *k));
        for f in feeds {
            let fs = status.feeds.entry(f.feed.clone()).or_default();
            fs.unverified = f.unverified;
            if f.due {
                fs.last_fetch = Some(now);
            }
            fs.next_due = f.next_due.and_then(unix);
            fs.files.retain(|k, _| f.files.iter().any(|x| x.file == *k));
            for x in &f.files {
                let s = fs.files.entry(x.file.clone()).or_default();
                s.published = x.staged();
                s.outcome = outcome_name(&x.outcome).to_owned();
                if x.staged() {
                    s.size = x.size.or(s.size);
                    s.sha256 = x.sha256.clone().or(s.sha256.take());
                    if let Some(v) = &x.verification {
                        s.verification = Some(describe(v));
                    }
                } else {
                    s.size = None;
                    s.sha256 = None;
                    s.verification = None;
                }
                match &x.error {
                    None => {
                        s.last_success = Some(now);
                        s.last_error = None;
                        s.last_error_kind = None;
                        s.consecutive_failures = 0;
                    }
                    Some(e) => {
                        s.last_error = Some(e.chain());
                        s.last_error_kind =
                            Some(super::feed_error_kind(e.class()).as_str().to_owned());
                        s.consecutive_failures = s.consecutive_failures.saturating_add(1);
                        s.failures = s.failures.saturating_add(1);
                    }
                }
            }
        }
    }
}

/// A feed file outcome's name in `status.json`.
fn outcome_name(o: &feeds::FileOutcome) -> &'static str {
    match o {
        feeds::FileOutcome::Unchanged => "unchanged",
        feeds::FileOutcome::Updated => "updated",
        feeds::FileOutcome::NotDue => "not_due",
        feeds::FileOutcome::KeptLastGood => "kept_last_good",
        feeds::FileOutcome::Failed => "failed",
    }
}

/// How a feed file was verified, in words.
pub(crate) fn describe(v: &feeds::Verification) -> String {
    match v {
        feeds::Verification::Openpgp {
            key,
            key_type,
            digest,
        } => format!("openpgp {key_type} {digest:?} {key}").to_lowercase(),
        feeds::Verification::Sidecar { algorithm } => {
            format!("{algorithm:?} sidecar").to_lowercase()
        }
        feeds::Verification::Unverified => "unverified".to_owned(),
    }
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}
