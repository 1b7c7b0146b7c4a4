//! What an operator configures about a mirror, and the one function that turns it into
//! the engine's [`SyncConfig`].
//!
//! `sigupdate sync`, `sigupdate watch` and `sigserver --sync` all describe the mirror
//! they keep with a [`MirrorSettings`] and build the engine with [`engine_config`]
//! (plus `MirrorSettings::dns` and `MirrorSettings::http_transport`, features `dns`
//! and `http`, for what the engine is handed at run time). Where those settings come
//! from (a TOML file, the environment, flags) is the binaries' business, through the
//! `cli-config` crate; this module only holds plain values, their defaults and their
//! checks, so that it is usable (and testable) without a command line.
//!
//! ```
//! use mirror_core::settings::{MirrorSettings, engine_config};
//!
//! let mut s = MirrorSettings::new("/srv/clamav-mirror");
//! s.databases = vec!["daily".into()];
//! s.dns = false;
//! let s = s.validated()?;
//! let config = engine_config(&s)?;
//! assert_eq!(config.layout().root(), std::path::Path::new("/srv/clamav-mirror"));
//! # #[cfg(feature = "dns")]
//! assert!(s.dns().is_none());
//! # Ok::<(), mirror_core::settings::SettingsError>(())
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::prune::PrunePolicy;
#[cfg(feature = "http")]
use crate::transport::HttpTransport;
use crate::{DatabaseSpec, SyncConfig, VersionSource};

/// The official upstream, the default `upstream`.
pub const OFFICIAL_UPSTREAM: &str = "https://database.clamav.net";
/// The databases mirrored by default.
pub const DEFAULT_DATABASES: [&str; 3] = ["daily", "main", "bytecode"];
/// The DNS name of the official version TXT record (one definition, in `dns-versions`).
pub const DEFAULT_DNS_NAME: &str = dns_versions::DEFAULT_NAME;
/// Default retries per download after a transient failure.
pub const DEFAULT_RETRIES: u32 = 3;
/// Upper bound on `retries` (larger values are lowered to it).
pub const MAX_RETRIES: u32 = 20;
/// Upper bound on `keep_cdiffs` (a sanity limit).
pub const MAX_KEEP_CDIFFS: u32 = 10_000;
/// Default previous generations kept for readers.
pub const DEFAULT_KEEP_GENERATIONS: usize = 2;
/// Default grace period of a superseded generation, seconds.
pub const DEFAULT_GRACE_SECS: u64 = 900;

/// Everything that describes one mirror and how it syncs. [`MirrorSettings::new`]
/// gives the defaults; [`MirrorSettings::validated`] checks and normalises.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorSettings {
    /// Mirror directory (`DIR/current` is the published snapshot).
    pub dir: PathBuf,
    /// Upstream base URLs (no trailing slash), tried in order.
    pub upstreams: Vec<String>,
    /// Databases to mirror, in order.
    pub databases: Vec<String>,
    /// Whether to ask DNS for versions first (`no-dns` is its negation).
    pub dns: bool,
    /// DNS name of the version TXT record.
    pub dns_name: String,
    /// DNS servers to ask; empty: the system configuration.
    pub dns_servers: Vec<SocketAddr>,
    /// Cdiffs kept per database.
    pub keep_cdiffs: u32,
    /// Whether older cdiffs are backfilled (signature-verified, chain-unproven) when no
    /// published base precedes them.
    pub bootstrap_cdiffs: bool,
    /// Root certificate files (PEM or DER) for `.sign` files; empty: the official root.
    pub sign_roots: Vec<PathBuf>,
    /// Previous generations kept whatever their age.
    pub keep_generations: usize,
    /// Seconds a superseded generation is kept for readers still using it.
    pub grace_secs: u64,
    /// Verify signatures and certificates as of this Unix time instead of now (tests).
    pub verify_time: Option<i64>,
    /// Retries per download after a transient failure.
    pub retries: u32,
    /// Trusted CAs and proxy of every HTTP request (upstreams; the binaries hand the
    /// same to push cascades and object storage). Feature `http`.
    #[cfg(feature = "http")]
    pub http: fetch::HttpSettings,
    /// Custom databases: their own upstreams, keys, `.sign` requirement.
    pub custom: BTreeMap<String, CustomDb>,
    /// Third-party feeds (`[[feed]]` tables of the configuration file only), paths
    /// already resolved relative to the file ([`feeds::FeedConfig::resolve_relative_to`]).
    pub feeds: Vec<feeds::FeedConfig>,
}

/// A custom database's own source and keys (`[custom.NAME]` in a configuration file).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct CustomDb {
    /// Upstreams for this database (default: the global ones).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream: Option<Vec<String>>,
    /// Key file for this database (default: the official keys): one PEM public key used
    /// for every signature kind, or three (CVD, INFO, CDIFF, in this order).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keys: Option<PathBuf>,
    /// Whether `.sign` files are fetched and required (default: true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sign: Option<bool>,
}

/// A setting that cannot be used; every message names the setting or file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SettingsError {
    /// A value is out of range or malformed.
    #[error("{key}: {reason}")]
    Invalid {
        /// The setting (its configuration-file key).
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A custom database's key file cannot be read or holds no usable key.
    #[error("key file {}: {reason}", path.display())]
    KeyFile {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A `sign-root` certificate file cannot be read or parsed.
    #[error("sign-root")]
    SignRoot(#[source] cvd_format::Error),
    /// The mirror directory cannot be created.
    #[error("creating the mirror directory {}", path.display())]
    Dir {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The HTTP client cannot be built.
    #[cfg(feature = "http")]
    #[error("building the HTTP client")]
    Http(#[source] fetch::Error),
    /// The engine refused the configuration.
    #[error("engine configuration")]
    Engine(#[source] crate::Error),
    /// A `[[feed]]` table is invalid (the error names the feed and key).
    #[error("[[feed]]")]
    Feed(#[source] feeds::Error),
}

fn invalid(key: &str, reason: impl Into<String>) -> SettingsError {
    SettingsError::Invalid {
        key: key.to_owned(),
        reason: reason.into(),
    }
}

impl MirrorSettings {
    /// The defaults for the mirror directory `dir`: the official upstream, `daily`,
    /// `main` and `bytecode`, DNS versions from [`DEFAULT_DNS_NAME`] through the system
    /// resolver, 30 cdiffs with bootstrap backfill, the official `.sign` root, two
    /// previous generations kept for 15 minutes, three retries.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        MirrorSettings {
            dir: dir.into(),
            upstreams: vec![OFFICIAL_UPSTREAM.to_owned()],
            databases: DEFAULT_DATABASES.map(str::to_owned).to_vec(),
            dns: true,
            dns_name: DEFAULT_DNS_NAME.to_owned(),
            dns_servers: Vec::new(),
            keep_cdiffs: crate::plan::DEFAULT_KEEP_CDIFFS,
            bootstrap_cdiffs: true,
            sign_roots: Vec::new(),
            keep_generations: DEFAULT_KEEP_GENERATIONS,
            grace_secs: DEFAULT_GRACE_SECS,
            verify_time: None,
            retries: DEFAULT_RETRIES,
            #[cfg(feature = "http")]
            http: fetch::HttpSettings::default(),
            custom: BTreeMap::new(),
            feeds: Vec::new(),
        }
    }

    /// Checks every value and normalises: surrounding spaces and trailing `/` off the
    /// upstream URLs, `retries` lowered to [`MAX_RETRIES`].
    pub fn validated(mut self) -> Result<Self, SettingsError> {
        let url = |u: &str| u.trim().trim_end_matches('/').to_owned();
        let check_urls = |key: &str, urls: &[String]| -> Result<(), SettingsError> {
            if urls.is_empty() {
                return Err(invalid(key, "at least one URL is needed"));
            }
            for u in urls {
                let ok = u.split_once("://").is_some_and(|(scheme, rest)| {
                    matches!(scheme, "http" | "https") && !rest.is_empty()
                });
                if !ok {
                    return Err(invalid(
                        key,
                        format!("{u:?}: not an http:// or https:// URL"),
                    ));
                }
            }
            Ok(())
        };
        self.upstreams = self.upstreams.iter().map(|u| url(u)).collect();
        check_urls("upstream", &self.upstreams)?;
        self.databases = self.databases.iter().map(|d| d.trim().to_owned()).collect();
        if self.databases.is_empty() {
            return Err(invalid("db", "at least one database is needed"));
        }
        for d in &self.databases {
            if !crate::model::valid_db_name(d) {
                return Err(invalid(
                    "db",
                    format!("{d:?}: a database name is 1-64 ASCII letters, digits or '_'"),
                ));
            }
        }
        for (name, c) in &mut self.custom {
            if !crate::model::valid_db_name(name) {
                return Err(invalid(
                    &format!("custom.{name}"),
                    "not a valid database name",
                ));
            }
            if let Some(ups) = &mut c.upstream {
                *ups = ups.iter().map(|u| url(u)).collect();
                check_urls(&format!("custom.{name}.upstream"), ups)?;
            }
        }
        if self.dns_name.trim().is_empty() {
            return Err(invalid("dns-name", "must not be empty"));
        }
        if self.keep_cdiffs > MAX_KEEP_CDIFFS {
            return Err(invalid(
                "keep-cdiffs",
                format!("{}: at most {MAX_KEEP_CDIFFS}", self.keep_cdiffs),
            ));
        }
        if self.verify_time.is_some_and(|t| t < 0) {
            return Err(invalid("verify-time", "must not be negative"));
        }
        self.retries = self.retries.min(MAX_RETRIES);
        // Keys read, names and URLs checked now: a bad feed is an error at start.
        feeds::FeedSet::validate(self.feeds.clone()).map_err(SettingsError::Feed)?;
        Ok(self)
    }

    /// The HTTP transport (feature `http`): cool-downs in `DIR/cooldown.json`, `retries` per download.
    /// Creates the mirror directory if needed.
    #[cfg(feature = "http")]
    pub fn http_transport(&self) -> Result<HttpTransport, SettingsError> {
        std::fs::create_dir_all(&self.dir).map_err(|source| SettingsError::Dir {
            path: self.dir.clone(),
            source,
        })?;
        let client = fetch::Client::builder()
            .cooldown_file(self.dir.join("cooldown.json"))
            .retries(self.retries)
            .http_settings(self.http.clone())
            .build()
            .map_err(SettingsError::Http)?;
        Ok(HttpTransport::from_client(client))
    }
}

/// Builds the engine configuration from settings (normally [validated]
/// ones): the one place where a [`SyncConfig`] is made from operator settings. Reads
/// the `sign-root` certificates and the custom databases' key files.
///
/// [validated]: MirrorSettings::validated
pub fn engine_config(s: &MirrorSettings) -> Result<SyncConfig, SettingsError> {
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
        let mut spec = DatabaseSpec::new(name).map_err(SettingsError::Engine)?;
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
        let roots = cvd_format::sign::SignRoots::from_files(&s.sign_roots)
            .map_err(SettingsError::SignRoot)?;
        b = b.sign_roots(roots);
    }
    if !s.feeds.is_empty() {
        let set = feeds::FeedSet::validate(s.feeds.clone()).map_err(SettingsError::Feed)?;
        b = b.feeds(set).load_checker(feeds::LoadChecker::discover());
    }
    if let Some(t) = s.verify_time {
        let secs = u64::try_from(t).map_err(|_| invalid("verify-time", "must not be negative"))?;
        b = b.verify_time(SystemTime::UNIX_EPOCH + Duration::from_secs(secs));
    }
    b.build().map_err(SettingsError::Engine)
}

/// Reads a custom database's key file: one PEM public key (used for every signature
/// kind) or three (CVD, INFO, CDIFF, in this order).
fn read_keys(path: &Path) -> Result<cvd_format::KeySet, SettingsError> {
    let err = |reason: String| SettingsError::KeyFile {
        path: path.to_path_buf(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    let blocks: Vec<String> = text
        .split("-----BEGIN ")
        .skip(1)
        .map(|b| format!("-----BEGIN {b}"))
        .collect();
    let key = |pem: &String| {
        cvd_format::PublicKey::from_public_key_pem(pem).map_err(|e| err(e.to_string()))
    };
    match blocks.as_slice() {
        [one] => Ok(cvd_format::KeySet::single(key(one)?)),
        [cvd, info, cdiff] => Ok(cvd_format::KeySet::new(key(cvd)?, key(info)?, key(cdiff)?)),
        _ => Err(err(format!(
            "one or three PEM public keys expected, found {}",
            blocks.len()
        ))),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_the_setting_and_normalises() {
        let mut s = MirrorSettings::new("/m");
        s.upstreams = vec![" http://up/ ".into()];
        s.retries = 99;
        let s = s.validated().unwrap();
        assert_eq!(s.upstreams, ["http://up"]);
        assert_eq!(s.retries, MAX_RETRIES);
        for (edit, key) in [
            (
                Box::new(|s: &mut MirrorSettings| s.databases = vec!["../x".into()])
                    as Box<dyn Fn(&mut MirrorSettings)>,
                "db",
            ),
            (
                Box::new(|s| s.upstreams = vec!["ftp://x".into()]),
                "upstream",
            ),
            (Box::new(|s| s.upstreams.clear()), "upstream"),
            (
                Box::new(|s| s.keep_cdiffs = MAX_KEEP_CDIFFS + 1),
                "keep-cdiffs",
            ),
            (Box::new(|s| s.verify_time = Some(-1)), "verify-time"),
            (
                Box::new(|s| {
                    s.custom.insert("a-b".into(), CustomDb::default());
                }),
                "custom.a-b",
            ),
        ] {
            let mut s = MirrorSettings::new("/m");
            edit(&mut s);
            let e = s.validated().unwrap_err();
            assert!(e.to_string().starts_with(key), "{key}: {e}");
        }
    }

    #[test]
    fn engine_config_follows_the_settings() {
        let mut s = MirrorSettings::new("/m");
        s.dns = false;
        let c = format!("{:?}", engine_config(&s).unwrap());
        assert!(c.contains("NoDns"), "{c}");
        s.dns = true;
        s.dns_name = "v.example".into();
        let c = format!("{:?}", engine_config(&s).unwrap());
        assert!(c.contains("Dns { name: \"v.example\" }"), "{c}");
        s.sign_roots = vec!["/nonexistent/root.crt".into()];
        let e = engine_config(&s).unwrap_err();
        assert!(matches!(e, SettingsError::SignRoot(_)), "{e}");
        let chain = format!("{:?}", std::error::Error::source(&e));
        assert!(chain.contains("root.crt"), "{chain}");
    }
}
