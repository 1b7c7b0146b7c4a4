//! One feed's sync, independent of any engine (feature `sync`: it needs `fetch`):
//! conditional fetches, verification, load check, staging of good files, last good
//! copies kept.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fetch::{Conditional, Outcome, Upstreams};

use crate::Error;
use crate::config::{Feed, VerifyMode};
use crate::error::FetchFailure;
use crate::load_check::{LoadCheck, LoadChecker};
use crate::openpgp::MAX_SIGNATURE_SIZE;
use crate::redact::{RedactedUrl, with_redacted_logs};
use crate::sidecar::{self, MAX_SIDECAR_SIZE, SidecarAlgorithm};
use crate::sync::*;

/// What a sync needs besides the feed: the HTTP client (its cool-downs are per host)
/// and the load checker.
#[derive(Debug, Clone, Copy)]
pub struct SyncContext<'a> {
    /// The client every request goes through.
    pub client: &'a fetch::Client,
    /// Runs `clamscan` for feeds with `load_check = true`.
    pub load_checker: &'a LoadChecker,
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn from_unix(s: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(s)
}

/// Puts `src` at `dst`: a hard link, else a copy (replacing `dst`).
fn link_or_copy(src: &Path, dst: &Path) -> Result<(), Error> {
    match std::fs::remove_file(dst) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(dst, e)),
    }
    if std::fs::hard_link(src, dst).is_ok() {
        return Ok(());
    }
    std::fs::copy(src, dst).map_err(|e| Error::io(dst, e))?;
    // A copy keeps the upstream's Last-Modified as its mtime, as a link would.
    if let Ok(t) = std::fs::metadata(src).and_then(|m| m.modified()) {
        let set = std::fs::File::options()
            .write(true)
            .open(dst)
            .and_then(|f| f.set_modified(t));
        if let Err(e) = set {
            tracing::debug!(path = %dst.display(), error = %e, "cannot set mtime");
        }
    }
    Ok(())
}

/// Moves `src` to `dst` (a rename, else copy and remove).
fn move_file(src: &Path, dst: &Path) -> Result<(), Error> {
    if std::fs::rename(src, dst).is_ok() {
        return Ok(());
    }
    link_or_copy(src, dst)?;
    remove_quiet(src);
    Ok(())
}

fn remove_quiet(p: &Path) {
    if let Err(e) = std::fs::remove_file(p)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(path = %p.display(), error = %e, "cannot remove");
    }
}

fn read_small(path: &Path, limit: u64) -> Result<Vec<u8>, Error> {
    use std::io::Read as _;
    let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut buf = Vec::new();
    f.take(limit + 1)
        .read_to_end(&mut buf)
        .map_err(|e| Error::io(path, e))?;
    Ok(buf)
}

/// Syncs one feed: see the crate docs ("How a sync goes").
///
/// Never fails as a whole: each file's problem is in its [`FileReport`]; a local
/// problem that stops everything (the staging directory cannot be made) is reported
/// on every file. `state` is updated for the files that were staged anew and for the
/// fetch time.
pub fn sync_feed(
    ctx: &SyncContext<'_>,
    feed: &Feed,
    dirs: &FeedDirs<'_>,
    state: &mut FeedState,
    now: SystemTime,
) -> FeedReport {
    let interval = feed.min_interval_secs();
    let next = state
        .last_fetch
        .map(|t| from_unix(t.saturating_add(interval)));
    let due = interval == 0 || next.is_none_or(|n| n <= now);
    let mut report = FeedReport {
        feed: feed.name().to_owned(),
        urls: feed.urls(),
        due,
        next_due: None,
        unverified: feed.unverified(),
        files: Vec::new(),
    };
    let setup = std::fs::create_dir_all(dirs.staging)
        .map_err(|e| Error::io(dirs.staging, e))
        .and_then(|()| std::fs::create_dir_all(dirs.work).map_err(|e| Error::io(dirs.work, e)));
    let ups = Upstreams::new(feed.real_urls()).map_err(|e| fetch_error(feed, "", &e));
    let ups = match (setup, ups) {
        (Ok(()), Ok(u)) => u,
        (Err(e), _) | (_, Err(e)) => {
            let msg = e.chain();
            for f in feed.files() {
                report.files.push(failed_report(
                    f,
                    Error::Io {
                        path: dirs.staging.to_owned(),
                        source: std::io::Error::other(msg.clone()),
                    },
                ));
            }
            return report;
        }
    };
    if due {
        state.last_fetch = Some(unix(now));
    }
    report.next_due = Some(from_unix(unix(now).saturating_add(interval)));
    if !due {
        report.next_due = next;
    }
    for file in feed.files() {
        let mut fs = FileSync {
            ctx,
            feed,
            dirs,
            ups: &ups,
            file,
        };
        let r = if due {
            fs.fetch(state)
        } else {
            fs.keep(state, FileOutcome::NotDue, None)
        };
        match &r.error {
            Some(e) => {
                tracing::warn!(feed = feed.name(), file, outcome = ?r.outcome, error = %e.chain(), "feed file not updated")
            }
            None if r.outcome == FileOutcome::Updated => {
                tracing::info!(feed = feed.name(), file, size = r.size, "feed file updated")
            }
            None => {}
        }
        report.files.push(r);
    }
    // Files that left the configuration are forgotten.
    state
        .files
        .retain(|k, _| feed.files().iter().any(|f| f == k));
    report
}

fn failed_report(file: &str, error: Error) -> FileReport {
    FileReport {
        file: file.to_owned(),
        outcome: FileOutcome::Failed,
        error: Some(error),
        companion: None,
        verification: None,
        load_check: LoadCheck::NotRequested,
        etag: None,
        last_modified: None,
        size: None,
        sha256: None,
        downloaded: 0,
    }
}

/// A fetch error as this crate's, with the token redacted.
fn fetch_error(feed: &Feed, file: &str, e: &fetch::Error) -> Error {
    let mut msg = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        msg.push_str(": ");
        msg.push_str(&c.to_string());
        cause = c.source();
    }
    if let Some(t) = feed.token() {
        msg = t.redact(&msg);
    }
    let too_large = match e {
        fetch::Error::TooLarge { .. } => true,
        fetch::Error::AllUpstreamsFailed { attempts, .. } => {
            !attempts.is_empty()
                && attempts
                    .iter()
                    .all(|(_, a)| matches!(a, fetch::Error::TooLarge { .. }))
        }
        _ => false,
    };
    let until = e.rate_limited_until();
    let failure = if e.is_not_found() {
        FetchFailure::NotFound
    } else if until.is_some() {
        FetchFailure::RateLimited
    } else if too_large {
        FetchFailure::TooLarge
    } else {
        FetchFailure::Other
    };
    let base = feed
        .urls()
        .first()
        .map_or_else(String::new, |u| u.to_string());
    let url = if file.is_empty() {
        base
    } else {
        format!("{base}/{file}")
    };
    Error::Fetch {
        file: file.to_owned(),
        url: RedactedUrl::from_template(&url),
        failure,
        message: msg,
        until,
    }
}

struct FileSync<'a> {
    ctx: &'a SyncContext<'a>,
    feed: &'a Feed,
    dirs: &'a FeedDirs<'a>,
    ups: &'a Upstreams,
    file: &'a str,
}

/// A downloaded, checked new version in the work directory.
struct Checked {
    verification: Verification,
    load_check: LoadCheck,
    digests: sidecar::FileDigests,
    etag: Option<String>,
    last_modified: Option<SystemTime>,
    downloaded: u64,
}

impl FileSync<'_> {
    fn companion(&self) -> Option<String> {
        self.feed.verify().companion(self.file)
    }

    /// The last good copy, when it is there whole and is what `state` describes.
    fn last_good<'s>(&self, state: &'s FeedState) -> Option<&'s FileState> {
        let st = state.files.get(self.file)?;
        let path = self.dirs.last_good.join(self.file);
        if let Some(c) = self.companion()
            && !self.dirs.last_good.join(c).is_file()
        {
            return None;
        }
        let d = sidecar::digest_file(&path).ok()?;
        (d.sha256 == st.sha256 && d.size == st.size).then_some(st)
    }

    /// Stages the last good copy (if any) and reports `outcome` (or `Failed`).
    fn keep(&self, state: &FeedState, outcome: FileOutcome, error: Option<Error>) -> FileReport {
        let Some(st) = self.last_good(state) else {
            return failed_report(
                self.file,
                error.unwrap_or_else(|| Error::Io {
                    path: self.dirs.last_good.join(self.file),
                    source: std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        "no last good copy to keep",
                    ),
                }),
            );
        };
        let mut names = vec![self.file.to_owned()];
        names.extend(self.companion());
        for n in &names {
            if let Err(e) = link_or_copy(&self.dirs.last_good.join(n), &self.dirs.staging.join(n)) {
                return failed_report(self.file, e);
            }
        }
        FileReport {
            file: self.file.to_owned(),
            outcome: if error.is_some() {
                FileOutcome::KeptLastGood
            } else {
                outcome
            },
            error,
            companion: self.companion(),
            verification: Some(st.verification.clone()),
            load_check: LoadCheck::NotRequested,
            etag: st.etag.clone(),
            last_modified: st.last_modified.map(from_unix),
            size: Some(st.size),
            sha256: Some(st.sha256.clone()),
            downloaded: 0,
        }
    }

    fn fetch(&mut self, state: &mut FeedState) -> FileReport {
        let cond = match self.last_good(state) {
            Some(st) => Conditional {
                etag: st.etag.clone(),
                last_modified: st.last_modified.map(from_unix),
            },
            None => Conditional::none(),
        };
        match self.download_and_check(&cond) {
            Ok(None) => self.keep(state, FileOutcome::Unchanged, None),
            Ok(Some(c)) => match self.stage_new(&c) {
                Ok(companion) => {
                    // A server that ignores the validators sends the same bytes again:
                    // staged (verified anew), but not a change.
                    let same = state
                        .files
                        .get(self.file)
                        .is_some_and(|o| o.sha256 == c.digests.sha256);
                    let st = FileState {
                        etag: c.etag.clone(),
                        last_modified: c.last_modified.map(unix),
                        sha256: c.digests.sha256.clone(),
                        size: c.digests.size,
                        verification: c.verification.clone(),
                    };
                    state.files.insert(self.file.to_owned(), st);
                    FileReport {
                        file: self.file.to_owned(),
                        outcome: if same {
                            FileOutcome::Unchanged
                        } else {
                            FileOutcome::Updated
                        },
                        error: None,
                        companion,
                        verification: Some(c.verification),
                        load_check: c.load_check,
                        etag: c.etag,
                        last_modified: c.last_modified,
                        size: Some(c.digests.size),
                        sha256: Some(c.digests.sha256),
                        downloaded: c.downloaded,
                    }
                }
                Err(e) => self.keep(state, FileOutcome::KeptLastGood, Some(e)),
            },
            Err(e) => {
                self.clean_work();
                self.keep(state, FileOutcome::KeptLastGood, Some(e))
            }
        }
    }

    /// Removes this file's leftovers in the work directory. Always for the finished
    /// names; for a feed with a token also the `.part` files (their `.part.meta`
    /// sidecar records the URL, which holds the token).
    fn clean_work(&self) {
        let mut names = vec![self.file.to_owned()];
        names.extend(self.companion());
        for n in names {
            remove_quiet(&self.dirs.work.join(&n));
            if self.feed.has_token() {
                remove_quiet(&self.dirs.work.join(format!("{n}.part")));
                remove_quiet(&self.dirs.work.join(format!("{n}.part.meta")));
            }
        }
    }

    fn work_path(&self, name: &str) -> PathBuf {
        self.dirs.work.join(name)
    }

    /// `Ok(None)`: `304`. `Ok(Some)`: a new version in the work directory that passed
    /// every check.
    fn download_and_check(&self, cond: &Conditional) -> Result<Option<Checked>, Error> {
        let client = self.ctx.client;
        let max = self.feed.max_file_size();
        let got = with_redacted_logs(self.feed.token(), || {
            self.ups.download(
                client,
                self.file,
                self.dirs.work,
                cond,
                Some(max),
                &mut |_| {},
            )
        })
        .map_err(|e| fetch_error(self.feed, self.file, &e))?;
        let d = match got.value {
            Outcome::NotModified => return Ok(None),
            Outcome::Downloaded(d) => d,
        };
        let mut downloaded = d.transferred;
        let digests = sidecar::digest_file(&d.path)?;
        // The companion comes from the upstream that served the file: a pair from two
        // upstreams could be two versions.
        let verification = match self.feed.verify() {
            VerifyMode::None => Verification::Unverified,
            mode => {
                let companion = self.companion().unwrap_or_default();
                let limit = if mode == VerifyMode::Openpgp {
                    MAX_SIGNATURE_SIZE
                } else {
                    MAX_SIDECAR_SIZE
                };
                let url = format!("{}/{companion}", got.base);
                let what = match mode {
                    VerifyMode::Openpgp => "signature",
                    VerifyMode::Sha256 => "sha256 sidecar",
                    _ => "md5 sidecar",
                };
                let r = with_redacted_logs(self.feed.token(), || {
                    client.download_limited(
                        &url,
                        self.dirs.work,
                        &companion,
                        &Conditional::none(),
                        limit,
                        &mut |_| {},
                    )
                });
                let cd = match r {
                    Ok(Outcome::Downloaded(cd)) => cd,
                    Ok(Outcome::NotModified) => {
                        return Err(Error::MalformedSignature {
                            file: self.file.to_owned(),
                            reason: "304 to an unconditional request".into(),
                        });
                    }
                    Err(e) if e.is_not_found() => {
                        let base = match self.feed.token() {
                            Some(t) => t.redact(&url),
                            None => url.clone(),
                        };
                        return Err(Error::MissingSignature {
                            file: self.file.to_owned(),
                            what,
                            url: RedactedUrl::from_template(&base),
                        });
                    }
                    Err(e) => return Err(fetch_error(self.feed, &companion, &e)),
                };
                downloaded += cd.transferred;
                let bytes = read_small(&cd.path, limit)?;
                match mode {
                    VerifyMode::Openpgp => self
                        .feed
                        .keys()
                        .verify_file(self.file, &d.path, &bytes, self.feed.digests())?
                        .into(),
                    _ => {
                        let algorithm = mode.sidecar().unwrap_or(SidecarAlgorithm::Sha256);
                        sidecar::check(algorithm, self.file, &digests, &bytes)?;
                        Verification::Sidecar { algorithm }
                    }
                }
            }
        };
        let load_check = if self.feed.load_check() {
            self.ctx.load_checker.check(self.file, &d.path)?
        } else {
            LoadCheck::NotRequested
        };
        Ok(Some(Checked {
            verification,
            load_check,
            digests,
            etag: d.etag,
            last_modified: d.last_modified,
            downloaded,
        }))
    }

    /// Moves the checked file and its companion into staging.
    fn stage_new(&self, _c: &Checked) -> Result<Option<String>, Error> {
        let companion = self.companion();
        if let Some(cn) = &companion {
            move_file(&self.work_path(cn), &self.dirs.staging.join(cn))?;
        }
        move_file(
            &self.work_path(self.file),
            &self.dirs.staging.join(self.file),
        )?;
        Ok(companion)
    }
}
