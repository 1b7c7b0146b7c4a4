//! `sigupdate sync`: bring the mirror directory up to date once.
//!
//! ```text
//! sigupdate sync --dir DIR --upstream URL [--upstream URL2 ...] --db NAME [--db NAME2 ...]
//!                [--no-dns] [--config FILE] [--sign-root CERT]...
//! ```

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, bail};
use mirror_core::prune::PrunePolicy;
use mirror_core::{DatabaseSpec, ErrorKind, SyncConfig, SyncReport, VersionSource};

use crate::config::{Layer, Settings};
use crate::exit;

/// Mirror options shared by `sync` and `watch`. Every option can also be set by a
/// `SIGUPDATE_*` environment variable or in the config file (see `config`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct MirrorArgs {
    /// Mirror directory (`DIR/current` is the published snapshot).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Upstream base URL; repeat for fail-over tiers (default: the official CDN).
    #[arg(long, value_name = "URL")]
    pub upstream: Vec<String>,
    /// Database to mirror; repeat (default: daily, main, bytecode).
    #[arg(long, value_name = "NAME")]
    pub db: Vec<String>,
    /// Learn versions from the upstream's dns.txt manifest or the .cvd header, not DNS.
    #[arg(long)]
    pub no_dns: bool,
    /// Configuration file (TOML).
    #[arg(long, value_name = "FILE", env = "SIGUPDATE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Root certificate (PEM or DER) that .sign files must chain to; repeatable
    /// (default: the official ClamAV root).
    #[arg(long = "sign-root", value_name = "CERT")]
    pub sign_root: Vec<PathBuf>,
    /// DNS server (IP:port) to ask for the version record; repeatable (default: the
    /// system resolver).
    #[arg(long = "dns-server", value_name = "IP:PORT")]
    pub dns_server: Vec<String>,
    /// Cdiffs kept per database (default 30).
    #[arg(long, value_name = "N")]
    pub keep_cdiffs: Option<u32>,
    /// Publish chain-proven cdiffs only: do not backfill the older cdiffs that no
    /// published base precedes (a fresh mirror, a restarted chain). By default they are
    /// published signature-verified but chain-unproven, so that clients a few versions
    /// behind are not stranded; `sigupdate status` lists them.
    #[arg(long)]
    pub no_bootstrap_cdiffs: bool,
    /// Previous generations kept for readers (default 2).
    #[arg(long, value_name = "N")]
    pub keep_generations: Option<usize>,
    /// Seconds a superseded generation is kept for readers (default 900).
    #[arg(long, value_name = "SECS")]
    pub grace_secs: Option<u64>,
    /// DNS name of the version TXT record (default current.cvd.clamav.net).
    #[arg(long, value_name = "NAME")]
    pub dns_name: Option<String>,
    /// Retries per download after a transient failure (default 3).
    #[arg(long, value_name = "N")]
    pub retries: Option<u32>,
    /// Verify signatures and certificates as of this Unix time (tests).
    #[arg(
        long,
        value_name = "UNIX_SECS",
        hide = true,
        allow_negative_numbers = true
    )]
    pub verify_time: Option<i64>,
}

impl MirrorArgs {
    /// The flags as a configuration layer (absent flags are `None`).
    pub fn layer(&self) -> Layer {
        let list = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
        Layer {
            dir: self.dir.clone(),
            upstream: list(&self.upstream),
            db: list(&self.db),
            no_dns: self.no_dns.then_some(true),
            dns_name: self.dns_name.clone(),
            dns_server: list(&self.dns_server),
            keep_cdiffs: self.keep_cdiffs,
            bootstrap_cdiffs: self.no_bootstrap_cdiffs.then_some(false),
            sign_root: (!self.sign_root.is_empty()).then(|| self.sign_root.clone()),
            keep_generations: self.keep_generations,
            grace_secs: self.grace_secs,
            verify_time: self.verify_time,
            retries: self.retries,
            ..Layer::default()
        }
    }

    /// Resolves flags > environment > config file > defaults.
    pub fn settings(&self) -> Result<Settings> {
        Settings::resolve(
            self.layer(),
            Layer::from_env(std::env::vars())?,
            self.config.as_deref(),
        )
    }
}

/// Shown after `sigupdate sync --help` and `sigupdate watch --help`.
pub const MIRROR_HELP: &str = "\
Configuration: every option is also a key in the TOML file given by --config (e.g.
`keep-cdiffs = 30`) and an environment variable SIGUPDATE_<KEY> (e.g.
SIGUPDATE_KEEP_CDIFFS=30; lists comma-separated: SIGUPDATE_UPSTREAM=URL1,URL2).
Precedence: flag > environment > file > default. Custom databases with their own
upstreams and keys: a [custom.NAME] table in the file (upstream, keys, sign), or
SIGUPDATE_CUSTOM__NAME__UPSTREAM / __KEYS / __SIGN (NAME as written), key by key.

A mirror without a published base for a database (a fresh one) also publishes the
older cdiffs upstream still has, signature-verified but not chain-proven (no base to
prove them against), so that clients a few versions behind are not stranded; status
lists them as unproven_cdiffs and they age out with the keep count. Strict operators:
--no-bootstrap-cdiffs, `bootstrap-cdiffs = false`, SIGUPDATE_BOOTSTRAP_CDIFFS=false.

The published snapshot is DIR/current (a symlink switched atomically); point nginx or
rsync there. `sigupdate status --dir DIR --json` shows it as published_dir.

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
    pub mirror: MirrorArgs,
}

/// Runs one sync; returns the exit code (see ARCHITECTURE.md).
pub fn run(args: &SyncArgs) -> Result<u8> {
    let settings = args.mirror.settings()?;
    Ok(sync_once(&settings))
}

/// One sync with resolved settings: logs the outcome and returns the exit code.
pub fn sync_once(settings: &Settings) -> u8 {
    let config = match engine_config(settings) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("{e:#}");
            return exit::USAGE_OR_IO;
        }
    };
    let mut transport = match crate::progress::transport(settings) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!("{e:#}");
            return exit::USAGE_OR_IO;
        }
    };
    let mut dns = mirror_core::SystemDns {
        nameservers: settings.dns_servers.clone(),
    };
    let dns: Option<&mut dyn mirror_core::DnsVersions> =
        if settings.dns { Some(&mut dns) } else { None };
    match mirror_core::sync(&config, &mut transport, dns) {
        Ok(report) => {
            log_report(&report);
            exit_code(&report)
        }
        Err(e) => {
            tracing::error!("{}", mirror_core::Chain(&e));
            kind_code(e.kind())
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
    tracing::info!(
        bytes = report.bytes_downloaded,
        files = report.files_downloaded,
        published = ?report.published.map(|g| g.dir_name()),
        "sync finished"
    );
}

/// Builds the engine configuration from resolved settings.
pub fn engine_config(s: &Settings) -> Result<SyncConfig> {
    let mut b = SyncConfig::builder(&s.dir)
        .keep_cdiffs(s.keep_cdiffs)
        .bootstrap_cdiffs(s.bootstrap_cdiffs)
        .versions(if s.dns {
            VersionSource::Dns {
                name: s.dns_name.clone(),
            }
        } else {
            VersionSource::NoDns
        })
        .prune(PrunePolicy {
            keep_previous: s.keep_generations,
            grace: Duration::from_secs(s.grace_secs),
        });
    for u in &s.upstreams {
        b = b.upstream(u);
    }
    for name in &s.databases {
        let mut spec = DatabaseSpec::new(name)?;
        if let Some(c) = s.custom.get(name) {
            if let Some(ups) = &c.upstream {
                spec = spec.upstreams(ups.clone());
            }
            if let Some(keys) = &c.keys {
                spec = spec.keys(read_keys(keys)?);
            }
            if let Some(sign) = c.sign {
                spec = spec.signs(sign);
            }
        }
        b = b.database(spec);
    }
    if !s.sign_roots.is_empty() {
        let mut roots = cvd_format::sign::SignRoots::empty();
        for p in &s.sign_roots {
            let bytes =
                std::fs::read(p).with_context(|| format!("reading --sign-root {}", p.display()))?;
            let r = if bytes.starts_with(b"-----BEGIN") {
                roots.add_pem(&bytes)
            } else {
                roots.add_der(&bytes)
            };
            r.with_context(|| format!("--sign-root {}", p.display()))?;
        }
        b = b.sign_roots(roots);
    }
    if let Some(t) = s.verify_time {
        let Ok(secs) = u64::try_from(t) else {
            bail!("verify-time {t}: must not be negative");
        };
        b = b.verify_time(SystemTime::UNIX_EPOCH + Duration::from_secs(secs));
    }
    Ok(b.build()?)
}

/// Reads a custom database's key file: one PEM public key (used for every signature
/// kind) or three (CVD, INFO, CDIFF, in this order).
fn read_keys(path: &Path) -> Result<cvd_format::KeySet> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading key file {}", path.display()))?;
    let blocks: Vec<String> = text
        .split("-----BEGIN ")
        .skip(1)
        .map(|b| format!("-----BEGIN {b}"))
        .collect();
    let key = |pem: &String| {
        cvd_format::PublicKey::from_public_key_pem(pem)
            .with_context(|| format!("key file {}", path.display()))
    };
    match blocks.as_slice() {
        [one] => Ok(cvd_format::KeySet::single(key(one)?)),
        [cvd, info, cdiff] => Ok(cvd_format::KeySet::new(key(cvd)?, key(info)?, key(cdiff)?)),
        _ => bail!(
            "key file {}: one or three PEM public keys expected, found {}",
            path.display(),
            blocks.len()
        ),
    }
}
