//! `sigupdate sync`: bring the mirror directory up to date once.
//!
//! ```text
//! sigupdate sync --dir DIR --upstream URL [--upstream URL2 ...] --db NAME [--db NAME2 ...]
//!                [--no-dns] [--config FILE] [--sign-root CERT]...
//! ```

use std::path::PathBuf;

use anyhow::Result;
use mirror_core::settings::{MirrorSettings, engine_config};
use mirror_core::{ErrorKind, SyncReport};
use publish_target::PublishSettings;

use crate::config::Invocation;
use crate::exit;

/// Options of every subcommand that keeps a mirror (`sync`, `watch`, `config`). Every
/// option can also be set by a `SIGUPDATE_*` environment variable or in the config file
/// (see `config`).
#[derive(Debug, Clone, clap::Args)]
pub struct MirrorOpts {
    /// Mirror directory (`DIR/current` is the published snapshot).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Configuration file (TOML).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The mirror settings (shared with `sigserver --sync`).
    #[command(flatten)]
    pub mirror: cli_config::MirrorArgs,
    /// Publish each new generation to this target too, after the local directory:
    /// `s3://BUCKET[/PREFIX]` (endpoint, region, credentials from the AWS_* environment)
    /// or `file:///PATH`; repeatable (file: `[[publish]]` tables with `url = ...`).
    #[arg(long, value_name = "URL", value_delimiter = ',')]
    pub publish: Vec<publish_target::TargetSpec>,
    /// Seconds per target and sync for retries with backoff before the target is left
    /// lagging until the next sync [default: 120].
    #[arg(long, value_name = "SECS")]
    pub publish_retry_secs: Option<u64>,
    /// Seconds an object no longer published stays on a target before it is deleted
    /// [default: 3600].
    #[arg(long, value_name = "SECS")]
    pub publish_prune_grace_secs: Option<u64>,
}

/// Shown after `sigupdate sync --help` and `sigupdate watch --help`.
pub const MIRROR_HELP: &str = "\
Configuration: every option is also a key in the TOML file given by --config (e.g.
`keep-cdiffs = 30`) and an environment variable SIGUPDATE_<KEY> (e.g.
SIGUPDATE_KEEP_CDIFFS=30; lists comma-separated: SIGUPDATE_UPSTREAM=URL1,URL2).
Precedence: flag > environment > file > default; booleans take true/false in every
layer (--no-dns=false undoes `no-dns = true`). `sigupdate config` with the same
options prints the effective configuration and the source of each value.
Custom databases with their own upstreams and keys: a [custom.NAME] table in the file
(upstream, keys, sign), or SIGUPDATE_CUSTOM__NAME__UPSTREAM / __KEYS / __SIGN (NAME
as written), key by key.
Third-party feeds (SaneSecurity, URLhaus, ...): [[feed]] tables in the file only
(name, url, files, verify, keys, ...; see the README, \"Third-party feeds\"); served
as DIR/current/<feed>/<file> beside the databases, listed in feeds.json.

A mirror without a published base for a database (a fresh one) also publishes the
older cdiffs upstream still has, signature-verified but not chain-proven (no base to
prove them against), so that clients a few versions behind are not stranded; status
lists them as unproven_cdiffs and they age out with the keep count. Strict operators:
--no-bootstrap-cdiffs (or --bootstrap-cdiffs=false), `bootstrap-cdiffs = false`,
SIGUPDATE_BOOTSTRAP_CDIFFS=false.

The published snapshot is DIR/current (a symlink switched atomically); point nginx or
rsync there. `sigupdate status --dir DIR --json` shows it as published_dir.

Publish targets (--publish s3://BUCKET/PREFIX, --publish file:///PATH): after each
sync the generation DIR/current points at is brought to every target (immutable
objects first, then <db>.cvd, then dns.txt, with conditional writes; deletions after
--publish-prune-grace-secs). S3 settings come from the environment object_store reads:
AWS_ENDPOINT_URL, AWS_ALLOW_HTTP=true for plain http, AWS_REGION, AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY (or AWS_SKIP_SIGNATURE=true for an anonymous-write store). A
target that fails is retried with backoff for --publish-retry-secs, then left lagging
until the next sync; it never changes the exit code. `sigupdate status` and sigserver's
/metrics show each target's state (DIR/targets.json).

Exit codes: 0 up to date or updated; 1 a file, signature or chain did not verify (the
last good state stays published); 2 usage, configuration or local I/O error; 3 every
upstream unreachable; 4 rate-limited (Retry-After cool-down); 5 another sync holds
DIR/sync.lock.";

/// Arguments of `sigupdate sync`.
#[derive(Debug, clap::Args)]
#[command(after_help = MIRROR_HELP)]
pub struct SyncArgs {
    /// Mirror options.
    #[command(flatten)]
    pub opts: MirrorOpts,
}

/// Runs one sync; returns the exit code (see ARCHITECTURE.md).
pub fn run(args: &SyncArgs, inv: Invocation<'_>) -> Result<u8> {
    let resolved = inv.resolve(args.opts.config.as_deref())?;
    Ok(sync_once(&resolved.mirror, &resolved.publish))
}

/// One sync with resolved settings, then the publish to the targets (which never
/// changes the exit code: a lagging target is logged and recorded in
/// `DIR/targets.json`): logs the outcome and returns the exit code.
pub fn sync_once(settings: &MirrorSettings, publish: &PublishSettings) -> u8 {
    let (code, _) = sync_for(settings, None, &push::SyncRequest::default());
    publish_targets(settings, publish, code);
    code
}

/// Brings the publish targets to the published generation after a sync that ended
/// with `code` (not after a sync that could not run: lock held, local error).
pub fn publish_targets(settings: &MirrorSettings, publish: &PublishSettings, code: u8) {
    if code != exit::LOCKED && code != exit::USAGE_OR_IO {
        publish_target::publish_all(&settings.dir, publish);
    }
}

/// The local sync alone, for a push hub's request (`name`: this mirror's name in the
/// trace; the request's preferred upstream is tried first when it is configured):
/// logs the outcome and returns the exit code and the report, if the sync ran.
pub fn sync_for(
    settings: &MirrorSettings,
    name: Option<&str>,
    req: &push::SyncRequest,
) -> (u8, Option<SyncReport>) {
    let mut config = match engine_config(settings) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("{e:#}");
            return (exit::USAGE_OR_IO, None);
        }
    };
    if let Some(n) = name {
        config.set_mirror_name(n);
    }
    if let Some(u) = &req.prefer_upstream {
        match config.preferring_upstream(u) {
            Some(c) => config = c,
            None => tracing::info!(
                upstream = %u,
                "the notifying upstream is not a configured upstream; using the configured order"
            ),
        }
    }
    let mut transport = match crate::progress::transport(settings) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!("{e:#}");
            return (exit::USAGE_OR_IO, None);
        }
    };
    let mut dns = settings.dns();
    let dns = dns.as_mut().map(|d| d as &mut dyn mirror_core::DnsVersions);
    match mirror_core::sync_with(&config, &mut transport, dns, &req.hints) {
        Ok(report) => {
            log_report(&report);
            (exit_code(&report), Some(report))
        }
        Err(e) => {
            tracing::error!("{}", mirror_core::Chain(&e));
            (kind_code(e.kind()), None)
        }
    }
}

/// Maps a report to the documented exit code.
pub fn exit_code(report: &SyncReport) -> u8 {
    report.worst().map_or(exit::SUCCESS, kind_code)
}

fn kind_code(kind: ErrorKind) -> u8 {
    match kind {
        ErrorKind::Verification | ErrorKind::Chain | ErrorKind::Rollback => exit::VERIFY_FAILED,
        ErrorKind::Upstream => exit::UPSTREAM_UNREACHABLE,
        ErrorKind::RateLimited => exit::RATE_LIMITED,
        ErrorKind::Locked => exit::LOCKED,
        _ => exit::USAGE_OR_IO,
    }
}

fn log_report(report: &SyncReport) {
    for d in &report.databases {
        let v = |v: Option<u32>| v.map_or_else(|| "none".to_owned(), |v| v.to_string());
        match &d.result {
            Ok(true) if d.unproven_cdiffs.is_empty() => {
                tracing::info!(db = %d.name, "updated {} -> {}", v(d.before), v(d.after))
            }
            Ok(true) => tracing::info!(
                db = %d.name,
                unproven_cdiffs = ?d.unproven_cdiffs,
                "updated {} -> {} ({} of {} cdiffs signature-verified but chain-unproven)",
                v(d.before),
                v(d.after),
                d.unproven_cdiffs.len(),
                d.cdiffs.len()
            ),
            Ok(false) => tracing::info!(db = %d.name, "up to date at version {}", v(d.after)),
            Err(e) => {
                tracing::error!(db = %d.name, kind = e.kind().as_str(), "FAILED, still serving version {}", v(d.after))
            }
        }
    }
    for f in &report.feeds {
        for x in &f.files {
            if let Some(e) = &x.error {
                let kind = mirror_core::feed_error_kind(e.class()).as_str();
                let kept = if x.staged() {
                    "still serving the last good copy"
                } else {
                    "not served"
                };
                tracing::error!(feed = %f.feed, file = %x.file, kind, "FAILED ({kept}): {}", e.chain());
            }
        }
    }
    tracing::info!(
        bytes = report.bytes_downloaded,
        files = report.files_downloaded,
        published = ?report.published.map(|g| g.dir_name()),
        "sync finished"
    );
}
