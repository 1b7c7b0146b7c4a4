//! `sigupdate notify`: send one push notice now, e.g. from a publisher of custom
//! databases after it has built a new version, or to re-announce what a mirror
//! publishes.
//!
//! ```text
//! sigupdate notify --to http://tier1:8080/push [--to URL ...] --name NAME --key FILE
//!                  (--db NAME=VERSION ... | --dir DIR) [--url BASE_URL]
//! ```
//!
//! The notice is signed with the secret in `--key` as sender `--name`, sent to every
//! `--to` in parallel and retried for `--give-up-secs`. Exit code 0 when every
//! downstream accepted it, 3 otherwise.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use push::cascade::{Attempt, Cascade, CascadeConfig, Downstream};
use push::notice::Notice;

use crate::exit;

/// Arguments of `sigupdate notify`.
#[derive(Debug, clap::Args)]
pub struct NotifyArgs {
    /// A downstream's push URL (`http://HOST:PORT/push`); repeatable.
    #[arg(long, value_name = "URL", required = true)]
    pub to: Vec<String>,
    /// The sender name the downstreams know this publisher by.
    #[arg(long, value_name = "NAME")]
    pub name: String,
    /// File with the shared secret (at least 16 bytes).
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    /// A database and the version just published (`daily=27001`); repeatable.
    #[arg(long, value_name = "NAME=VERSION")]
    pub db: Vec<String>,
    /// Announce what this mirror directory publishes instead of `--db`.
    #[arg(long, value_name = "DIR", conflicts_with = "db")]
    pub dir: Option<PathBuf>,
    /// The public base URL the databases are served from (downstreams that have it
    /// as an upstream fetch from it first).
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// Seconds an attempt may take [default: 3].
    #[arg(long, value_name = "SECS", default_value_t = 3)]
    pub timeout_secs: u64,
    /// Seconds of retries before giving up on a downstream [default: 30].
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub give_up_secs: u64,
    /// CA certificate file (PEM or DER) trusted besides the system's roots; repeatable.
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Vec<PathBuf>,
    /// HTTP proxy, `http://[user:password@]host:port` (default: HTTPS_PROXY /
    /// HTTP_PROXY from the environment).
    #[arg(long, value_name = "URL")]
    pub proxy: Option<String>,
    /// Hosts reached without the proxy, as in NO_PROXY.
    #[arg(long, value_name = "HOSTS")]
    pub no_proxy: Option<String>,
}

/// Sends the notice; returns the exit code.
pub fn run(args: &NotifyArgs) -> Result<u8> {
    let mut databases = BTreeMap::new();
    if let Some(dir) = &args.dir {
        databases = push::settings::published_versions(dir);
        if databases.is_empty() {
            bail!("{}: nothing published to announce", dir.display());
        }
    }
    for d in &args.db {
        let (name, v) = d
            .split_once('=')
            .with_context(|| format!("--db {d:?}: NAME=VERSION expected"))?;
        let v: u32 = v
            .trim()
            .parse()
            .with_context(|| format!("--db {d:?}: the version is not a number"))?;
        databases.insert(name.trim().to_owned(), v);
    }
    if databases.is_empty() {
        bail!("nothing to announce: give --db NAME=VERSION or --dir DIR");
    }
    let secret = push::auth::Secret::from_file(&args.key)?;
    let now = push::hub::now_ms();
    let notice = Notice::new(
        &args.name,
        args.url.as_deref(),
        databases,
        Vec::new(),
        now,
        now,
    );
    // Checked as a receiver would, so that a bad name or URL fails here.
    Notice::parse(&notice.to_bytes()).context("the notice would be refused")?;
    let failed: Arc<Mutex<BTreeMap<String, String>>> = Arc::default();
    let f = failed.clone();
    let to = args
        .to
        .iter()
        .map(|url| Downstream {
            url: url.clone(),
            secret: secret.clone(),
        })
        .collect();
    let cascade = Cascade::new(
        to,
        &args.name,
        CascadeConfig {
            timeout: Duration::from_secs(args.timeout_secs.max(1)),
            give_up_after: Duration::from_secs(args.give_up_secs),
            http: fetch::HttpSettings {
                ca_certs: args.ca_cert.clone(),
                proxy: args.proxy.clone(),
                no_proxy: args.no_proxy.clone(),
            },
            ..CascadeConfig::default()
        },
        Arc::new(move |url: &str, a: &Attempt| {
            let mut f = f.lock().unwrap_or_else(|p| p.into_inner());
            match a {
                Attempt::Delivered => {
                    f.remove(url);
                    tracing::info!(downstream = url, "delivered");
                }
                Attempt::Failed(why) => tracing::warn!(downstream = url, "retrying: {why}"),
                Attempt::GaveUp(why) => {
                    tracing::error!(downstream = url, "not delivered: {why}");
                    f.insert(url.to_owned(), why.clone());
                }
            }
        }),
    );
    tracing::info!(id = %notice.id, databases = ?notice.databases, "sending notice");
    cascade
        .send(notice)
        .join()
        .map_err(|_| anyhow::anyhow!("the sending thread panicked"))?;
    let failed = failed.lock().unwrap_or_else(|p| p.into_inner());
    if failed.is_empty() {
        Ok(exit::SUCCESS)
    } else {
        for (url, why) in failed.iter() {
            eprintln!("sigupdate notify: {url}: {why}");
        }
        Ok(exit::UPSTREAM_UNREACHABLE)
    }
}
