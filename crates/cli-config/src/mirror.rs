//! The mirror settings both binaries take ([`MirrorArgs`]) and their one resolution
//! ([`resolve_mirror`]) into `mirror_core::settings::MirrorSettings`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use mirror_core::settings::{CustomDb, MirrorSettings};
use serde::Deserialize;

use crate::{ConfigError, Layers, Source, parse_bool};

/// The variable family of custom databases: `<PREFIX>CUSTOM__<name>__UPSTREAM|KEYS|SIGN`
/// (put it in [`crate::Spec::env_families`]).
pub const MIRROR_ENV_FAMILIES: &[&str] = &["CUSTOM__"];
/// The file tables of custom databases, `[custom.<name>]`, and of third-party feeds,
/// `[[feed]]` (put them in
/// [`crate::Spec::file_tables`]).
pub const MIRROR_FILE_TABLES: &[&str] = &["custom", "feed"];

/// Mirror options shared by `sigupdate sync`/`watch`/`config` and `sigserver --sync`
/// (flatten it into the command). The mirror directory is the binary's own `--dir`.
///
/// To add a setting: add a field here (its flag, file key and variable follow from its
/// name), a field to `mirror_core::settings::MirrorSettings` with its default, and one
/// line in [`resolve_mirror`].
#[derive(Debug, Clone, Default, clap::Args)]
pub struct MirrorArgs {
    /// Upstream base URL; repeat for fail-over tiers, in order (default: the official
    /// CDN; environment: comma-separated).
    #[arg(long, value_name = "URL", value_delimiter = ',')]
    pub upstream: Vec<String>,
    /// Database to mirror; repeat (default: daily, main, bytecode; environment:
    /// comma-separated).
    #[arg(long, value_name = "NAME", value_delimiter = ',')]
    pub db: Vec<String>,
    /// Learn versions from the upstream's dns.txt manifest or the .cvd header, not DNS
    /// (--no-dns alone: true; --no-dns=false undoes a file or environment) [default:
    /// false].
    #[arg(long, value_name = "BOOL")]
    pub no_dns: Option<bool>,
    /// DNS name of the version TXT record (default: the official one, see `config` /
    /// `--print-config`).
    #[arg(long, value_name = "NAME")]
    pub dns_name: Option<String>,
    /// DNS server (IP:port) to ask for the version record; repeatable (default: the
    /// system resolver).
    #[arg(long, value_name = "IP:PORT", value_delimiter = ',')]
    pub dns_server: Vec<SocketAddr>,
    /// Cdiffs kept per database [default: 30].
    #[arg(long, value_name = "N")]
    pub keep_cdiffs: Option<u32>,
    /// Backfill the older cdiffs that no published base precedes (a fresh mirror, a
    /// restarted chain): published signature-verified but chain-unproven, so that
    /// clients a few versions behind are not stranded; `sigupdate status` lists them
    /// [default: true].
    #[arg(long, value_name = "BOOL")]
    pub bootstrap_cdiffs: Option<bool>,
    /// Publish chain-proven cdiffs only: --bootstrap-cdiffs=false.
    #[arg(long, value_name = "BOOL")]
    pub no_bootstrap_cdiffs: Option<bool>,
    /// Root certificate (PEM or DER) that .sign files must chain to; repeatable
    /// (default: the official ClamAV root).
    #[arg(long, value_name = "CERT", value_delimiter = ',')]
    pub sign_root: Vec<PathBuf>,
    /// Previous generations kept for readers [default: 2].
    #[arg(long, value_name = "N")]
    pub keep_generations: Option<usize>,
    /// Seconds a superseded generation is kept for readers [default: 900].
    #[arg(long, value_name = "SECS")]
    pub grace_secs: Option<u64>,
    /// Retries per download after a transient failure [default: 3, at most 20].
    #[arg(long, value_name = "N")]
    pub retries: Option<u32>,
    /// CA certificate file (PEM or DER) trusted for HTTPS besides the system's roots:
    /// upstreams, push downstreams, object storage; repeatable (environment:
    /// comma-separated; file: a string or a list).
    #[arg(long, value_name = "FILE", value_delimiter = ',')]
    pub ca_cert: Vec<PathBuf>,
    /// HTTP proxy for upstreams, push downstreams and object storage,
    /// `http://[user:password@]host:port` (default: HTTPS_PROXY / HTTP_PROXY /
    /// ALL_PROXY from the environment). The password is never printed.
    #[arg(long, value_name = "URL", hide_env_values = true)]
    pub proxy: Option<String>,
    /// Hosts reached without the proxy, comma-separated as in NO_PROXY
    /// (`mirror.lan,.internal,10.0.0.0/8`; default: the NO_PROXY variable).
    #[arg(long, value_name = "HOSTS")]
    pub no_proxy: Option<String>,
    /// Verify signatures and certificates as of this Unix time (tests).
    #[arg(
        long,
        value_name = "UNIX_SECS",
        hide = true,
        allow_negative_numbers = true
    )]
    pub verify_time: Option<i64>,
}

/// Drops the empty items a comma-separated variable leaves (`a,,b`, `a, b`).
fn words(v: Vec<String>) -> Vec<String> {
    v.into_iter()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Resolves the [`MirrorArgs`] settings of the mirror in `dir` through `layers`, in the
/// order they are printed, then the custom databases; checks the result.
pub fn resolve_mirror(
    layers: &mut Layers<'_>,
    dir: PathBuf,
) -> Result<MirrorSettings, ConfigError> {
    let d = MirrorSettings::new(dir);
    let s = MirrorSettings {
        upstreams: words(layers.list("upstream", d.upstreams.clone())?),
        databases: words(layers.list("db", d.databases.clone())?),
        dns: !layers.value("no_dns", !d.dns)?,
        dns_name: layers.value("dns_name", d.dns_name.clone())?,
        dns_servers: layers.list("dns_server", d.dns_servers.clone())?,
        keep_cdiffs: layers.value("keep_cdiffs", d.keep_cdiffs)?,
        bootstrap_cdiffs: layers.negatable("bootstrap_cdiffs", d.bootstrap_cdiffs)?,
        sign_roots: layers.list("sign_root", d.sign_roots.clone())?,
        keep_generations: layers.value("keep_generations", d.keep_generations)?,
        grace_secs: layers.value("grace_secs", d.grace_secs)?,
        retries: layers.value("retries", d.retries)?,
        http: http_settings(layers)?,
        verify_time: layers.optional("verify_time")?,
        custom: custom(layers)?,
        feeds: feeds(&*layers)?,
        dir: d.dir,
    };
    let s = s.validated()?;
    layers.normalised(&layers.spec().file_key("upstream"), &s.upstreams);
    layers.normalised(&layers.spec().file_key("db"), &s.databases);
    Ok(s)
}

/// The HTTP stack's settings (`ca_cert`, `proxy`, `no_proxy`); the proxy is recorded
/// without its password (what `config` / `--print-config` prints).
fn http_settings(layers: &mut Layers<'_>) -> Result<fetch::HttpSettings, ConfigError> {
    let ca_certs: Vec<PathBuf> = layers.list_or_one("ca_cert", Vec::new())?;
    let proxy: Option<String> = layers
        .optional::<String>("proxy")?
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty());
    let key = layers.spec().file_key("proxy");
    if let Some(p) = &proxy {
        layers.normalised(&key, &fetch::http::redact_url(p));
    }
    let no_proxy: Option<String> = layers
        .optional::<String>("no_proxy")?
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty());
    let http = fetch::HttpSettings {
        ca_certs: ca_certs
            .into_iter()
            .filter(|p| !p.as_os_str().is_empty())
            .collect(),
        proxy,
        no_proxy,
    };
    // A CA file that cannot be used is a configuration error now, naming the file,
    // not a failure of every sync later.
    if !http.ca_certs.is_empty() {
        http.tls_config()?;
    }
    Ok(http)
}

/// The third-party feeds: `[[feed]]` tables of the file only (no flag or variable: a
/// feed has too many keys for one), key and token paths relative to the file. Printed
/// as one `feed` entry per feed, by name.
fn feeds(layers: &Layers<'_>) -> Result<Vec<feeds::FeedConfig>, ConfigError> {
    let Some((path, v)) = layers.file_value("feed") else {
        return Ok(Vec::new());
    };
    let path = path.to_owned();
    let mut list = Vec::<feeds::FeedConfig>::deserialize(v.clone()).map_err(|source| {
        ConfigError::FileValue {
            path: path.clone(),
            key: "feed".into(),
            source: Box::new(source),
        }
    })?;
    let base = path.parent().unwrap_or(std::path::Path::new("."));
    for f in &mut list {
        f.resolve_relative_to(base);
    }
    Ok(list)
}

/// The custom databases: `[custom.NAME]` tables of the file, then the
/// `CUSTOM__NAME__FIELD` variables over them field by field (the name as written; it may
/// contain `_`, even `__`: the field is after the last `__`).
fn custom(layers: &mut Layers<'_>) -> Result<BTreeMap<String, CustomDb>, ConfigError> {
    let mut out: BTreeMap<String, CustomDb> = BTreeMap::new();
    if let Some((path, v)) = layers.file_value("custom") {
        let path = path.to_owned();
        out = BTreeMap::deserialize(v.clone()).map_err(|source| ConfigError::FileValue {
            path: path.clone(),
            key: "custom".into(),
            source: Box::new(source),
        })?;
        for (name, c) in &out {
            let table = format!("custom.{name}");
            if let Ok(toml::Value::Table(t)) = toml::Value::try_from(c) {
                for (k, v) in t {
                    layers.record(Some(&table), &k, Some(v), Source::File(path.clone()));
                }
            }
        }
    }
    for (var, rest, v) in layers.env_family("CUSTOM__") {
        let Some((name, field)) = rest.rsplit_once("__") else {
            return Err(ConfigError::EnvValue {
                var,
                reason: "expected <PREFIX>CUSTOM__<name>__<UPSTREAM|KEYS|SIGN>".into(),
            });
        };
        let db = out.entry(name.to_owned()).or_default();
        let value = match field {
            "UPSTREAM" => {
                let list = words(v.split(',').map(str::to_owned).collect());
                db.upstream = Some(list.clone());
                toml::Value::Array(list.into_iter().map(toml::Value::String).collect())
            }
            "KEYS" => {
                db.keys = Some(PathBuf::from(v.trim()));
                toml::Value::String(v.trim().to_owned())
            }
            "SIGN" => {
                let Some(b) = parse_bool(&v) else {
                    return Err(ConfigError::EnvValue {
                        var,
                        reason: format!("true/false expected, got {v:?}"),
                    });
                };
                db.sign = Some(b);
                toml::Value::Boolean(b)
            }
            _ => {
                return Err(ConfigError::UnknownEnv {
                    var: format!("{var} (a custom database takes UPSTREAM, KEYS, SIGN)"),
                });
            }
        };
        layers.record(
            Some(&format!("custom.{name}")),
            &field.to_ascii_lowercase(),
            Some(value),
            Source::Env(var),
        );
    }
    Ok(out)
}
