//! Configuration for `sync`, `watch` and `status`: a TOML file, every key overridable
//! by an environment variable and by a flag (flag > environment > file > default).
//!
//! Key `some-key` in the file is `SIGUPDATE_SOME_KEY` in the environment and
//! `--some-key` on the command line. List values in the environment are separated by
//! commas. Example file:
//!
//! ```toml
//! dir = "/srv/clamav-mirror"
//! upstream = ["https://database.clamav.net"]
//! db = ["daily", "main", "bytecode"]
//! no-dns = false
//! # dns-server = ["127.0.0.1:53"]               # default: the system resolver
//! keep-cdiffs = 30
//! bootstrap-cdiffs = true   # backfill older cdiffs (chain-unproven) when no base precedes them
//! # sign-root = ["/etc/clamav/certs/clamav.crt"]   # default: the official root
//! keep-generations = 2
//! grace-secs = 900
//! interval-secs = 3600
//! jitter-secs = 300
//! retries = 3
//!
//! [custom.mydb]                 # a custom database with its own URL and keys
//! upstream = ["https://sigs.example.org"]
//! keys = "/etc/sigupdate/mydb-keys.toml"
//! sign = false                   # no .sign files for this one
//! ```
//!
//! A custom database's keys come from the environment as
//! `SIGUPDATE_CUSTOM__<name>__UPSTREAM`, `..._KEYS` and `..._SIGN`, with the database
//! name as it is written (`SIGUPDATE_CUSTOM__mydb__SIGN=false`); they override that
//! database's keys in the file one by one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

/// The official upstream.
pub const OFFICIAL_UPSTREAM: &str = "https://database.clamav.net";
/// The databases mirrored by default.
pub const DEFAULT_DATABASES: [&str; 3] = ["daily", "main", "bytecode"];
/// Prefix of the environment variables.
pub const ENV_PREFIX: &str = "SIGUPDATE_";

/// One configuration layer (file, environment or flags): every key optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Layer {
    /// Mirror directory.
    pub dir: Option<PathBuf>,
    /// Upstream base URLs, tried in order.
    pub upstream: Option<Vec<String>>,
    /// Databases to mirror.
    pub db: Option<Vec<String>>,
    /// Learn versions from the upstream's manifest or header probe instead of DNS.
    pub no_dns: Option<bool>,
    /// DNS name of the version TXT record.
    pub dns_name: Option<String>,
    /// DNS servers (`IP:port`) to ask for the version record (default: the system's).
    pub dns_server: Option<Vec<String>>,
    /// Cdiffs kept per database.
    pub keep_cdiffs: Option<u32>,
    /// Backfill older cdiffs that cannot be chain-proven (no published base precedes
    /// them: an empty mirror, a restarted chain).
    pub bootstrap_cdiffs: Option<bool>,
    /// Root certificates `.sign` files must chain to (PEM or DER files).
    pub sign_root: Option<Vec<PathBuf>>,
    /// Previous generations kept whatever their age.
    pub keep_generations: Option<usize>,
    /// Seconds a superseded generation is kept for readers still using it.
    pub grace_secs: Option<u64>,
    /// `watch`: seconds between syncs.
    pub interval_secs: Option<u64>,
    /// `watch`: random extra delay, up to this many seconds.
    pub jitter_secs: Option<u64>,
    /// Verify signatures and certificates as of this Unix time instead of now (tests).
    pub verify_time: Option<i64>,
    /// Retries per download after a transient failure (default 3).
    pub retries: Option<u32>,
    /// Custom databases (file only).
    pub custom: Option<BTreeMap<String, CustomDb>>,
}

/// A custom database's own source and keys.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct CustomDb {
    /// Upstreams for this database (default: the global ones).
    pub upstream: Option<Vec<String>>,
    /// Key file for this database (default: the official keys).
    pub keys: Option<PathBuf>,
    /// Whether `.sign` files are fetched and required (default: true).
    pub sign: Option<bool>,
}

impl Layer {
    /// Reads a TOML file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("parsing config file {}", path.display()))
    }

    /// Reads the `SIGUPDATE_*` variables from `vars` (pass `std::env::vars()`).
    /// Unknown `SIGUPDATE_*` variables are an error (a typo must not go unnoticed).
    pub fn from_env(vars: impl IntoIterator<Item = (String, String)>) -> Result<Self> {
        let mut l = Layer::default();
        for (k, v) in vars {
            let Some(key) = k.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            let list = || -> Vec<String> {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            };
            let num = |what: &str| -> Result<u64> {
                v.trim().parse().with_context(|| {
                    format!("environment variable {k}: {what} expected, got {v:?}")
                })
            };
            if let Some(rest) = key.strip_prefix("CUSTOM__") {
                // The name may contain `_` (even `__`): the field is after the last `__`.
                let Some((name, field)) = rest.rsplit_once("__") else {
                    bail!(
                        "environment variable {k}: expected SIGUPDATE_CUSTOM__<name>__<UPSTREAM|KEYS|SIGN>"
                    );
                };
                let db = l
                    .custom
                    .get_or_insert_with(BTreeMap::new)
                    .entry(name.to_owned())
                    .or_default();
                match field {
                    "UPSTREAM" => db.upstream = Some(list()),
                    "KEYS" => db.keys = Some(PathBuf::from(v.trim())),
                    "SIGN" => db.sign = Some(parse_bool(&k, &v)?),
                    _ => bail!(
                        "unknown environment variable {k} (a custom database takes UPSTREAM, KEYS, SIGN)"
                    ),
                }
                continue;
            }
            match key {
                "DIR" => l.dir = Some(PathBuf::from(&v)),
                "UPSTREAM" => l.upstream = Some(list()),
                "DB" => l.db = Some(list()),
                "NO_DNS" => l.no_dns = Some(parse_bool(&k, &v)?),
                "DNS_NAME" => l.dns_name = Some(v.trim().to_owned()),
                "DNS_SERVER" => l.dns_server = Some(list()),
                "KEEP_CDIFFS" => {
                    l.keep_cdiffs = Some(
                        u32::try_from(num("a number")?)
                            .with_context(|| format!("environment variable {k}: too large"))?,
                    )
                }
                "BOOTSTRAP_CDIFFS" => l.bootstrap_cdiffs = Some(parse_bool(&k, &v)?),
                "SIGN_ROOT" => l.sign_root = Some(list().into_iter().map(PathBuf::from).collect()),
                "KEEP_GENERATIONS" => {
                    l.keep_generations = Some(
                        usize::try_from(num("a number")?)
                            .with_context(|| format!("environment variable {k}: too large"))?,
                    )
                }
                "GRACE_SECS" => l.grace_secs = Some(num("seconds")?),
                "INTERVAL_SECS" => l.interval_secs = Some(num("seconds")?),
                "JITTER_SECS" => l.jitter_secs = Some(num("seconds")?),
                "VERIFY_TIME" => {
                    l.verify_time = Some(v.trim().parse().with_context(|| {
                        format!("environment variable {k}: Unix seconds expected, got {v:?}")
                    })?)
                }
                "RETRIES" => {
                    l.retries = Some(
                        u32::try_from(num("a number")?)
                            .with_context(|| format!("environment variable {k}: too large"))?,
                    )
                }
                "CONFIG" | "LOG" | "LOG_FORMAT" => {}
                _ => bail!("unknown environment variable {k}"),
            }
        }
        Ok(l)
    }

    /// This layer, with keys it lacks taken from `lower`.
    pub fn over(self, lower: Layer) -> Layer {
        Layer {
            dir: self.dir.or(lower.dir),
            upstream: self.upstream.or(lower.upstream),
            db: self.db.or(lower.db),
            no_dns: self.no_dns.or(lower.no_dns),
            dns_name: self.dns_name.or(lower.dns_name),
            dns_server: self.dns_server.or(lower.dns_server),
            keep_cdiffs: self.keep_cdiffs.or(lower.keep_cdiffs),
            bootstrap_cdiffs: self.bootstrap_cdiffs.or(lower.bootstrap_cdiffs),
            sign_root: self.sign_root.or(lower.sign_root),
            keep_generations: self.keep_generations.or(lower.keep_generations),
            grace_secs: self.grace_secs.or(lower.grace_secs),
            interval_secs: self.interval_secs.or(lower.interval_secs),
            jitter_secs: self.jitter_secs.or(lower.jitter_secs),
            verify_time: self.verify_time.or(lower.verify_time),
            retries: self.retries.or(lower.retries),
            custom: merge_custom(self.custom, lower.custom),
        }
    }
}

/// Custom databases of two layers: per database and per key, `hi` wins.
fn merge_custom(
    hi: Option<BTreeMap<String, CustomDb>>,
    lo: Option<BTreeMap<String, CustomDb>>,
) -> Option<BTreeMap<String, CustomDb>> {
    let (hi, mut merged) = match (hi, lo) {
        (None, x) | (x, None) => return x,
        (Some(h), Some(l)) => (h, l),
    };
    for (name, c) in hi {
        let base = merged.remove(&name).unwrap_or_default();
        merged.insert(
            name,
            CustomDb {
                upstream: c.upstream.or(base.upstream),
                keys: c.keys.or(base.keys),
                sign: c.sign.or(base.sign),
            },
        );
    }
    Some(merged)
}

fn parse_bool(k: &str, v: &str) -> Result<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" | "" => Ok(false),
        _ => bail!("environment variable {k}: true/false expected, got {v:?}"),
    }
}

/// The resolved settings, defaults applied and values checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Mirror directory.
    pub dir: PathBuf,
    /// Upstream base URLs (no trailing slash), tried in order.
    pub upstreams: Vec<String>,
    /// Databases to mirror, in order.
    pub databases: Vec<String>,
    /// Whether to ask DNS for versions first.
    pub dns: bool,
    /// DNS name of the version TXT record.
    pub dns_name: String,
    /// DNS servers to ask; empty: the system configuration.
    pub dns_servers: Vec<std::net::SocketAddr>,
    /// Cdiffs kept per database.
    pub keep_cdiffs: u32,
    /// Whether older cdiffs are backfilled (signature-verified, chain-unproven) when no
    /// published base precedes them.
    pub bootstrap_cdiffs: bool,
    /// Root certificates for `.sign` files; empty: the official root.
    pub sign_roots: Vec<PathBuf>,
    /// Previous generations kept.
    pub keep_generations: usize,
    /// Grace period for superseded generations, seconds.
    pub grace_secs: u64,
    /// `watch` interval, seconds.
    pub interval_secs: u64,
    /// `watch` jitter, seconds.
    pub jitter_secs: u64,
    /// Pinned verification time (Unix seconds), if any.
    pub verify_time: Option<i64>,
    /// Retries per download after a transient failure.
    pub retries: u32,
    /// Custom databases.
    pub custom: BTreeMap<String, CustomDb>,
}

/// Upper bound on `retries`.
pub const MAX_RETRIES: u32 = 20;

/// Upper bound on `keep-cdiffs` (a sanity limit).
pub const MAX_KEEP_CDIFFS: u32 = 10_000;

impl Settings {
    /// Merges flags over environment over file over defaults and checks the result.
    /// `config` is the `--config` path (or `SIGUPDATE_CONFIG`).
    pub fn resolve(flags: Layer, env: Layer, config: Option<&Path>) -> Result<Self> {
        let file = match config {
            Some(p) => Layer::from_file(p)?,
            None => Layer::default(),
        };
        let l = flags.over(env).over(file);
        let Some(dir) = l.dir else {
            bail!(
                "no mirror directory: pass --dir DIR, set SIGUPDATE_DIR or `dir` in the config file"
            );
        };
        let upstreams: Vec<String> = l
            .upstream
            .unwrap_or_else(|| vec![OFFICIAL_UPSTREAM.to_owned()])
            .into_iter()
            .map(|u| u.trim_end_matches('/').to_owned())
            .collect();
        if upstreams.is_empty() {
            bail!("upstream: at least one URL is needed");
        }
        for u in &upstreams {
            if !(u.starts_with("http://") || u.starts_with("https://"))
                || u.len() <= "https://".len()
            {
                bail!("upstream {u:?}: not an http:// or https:// URL");
            }
        }
        let databases =
            l.db.unwrap_or_else(|| DEFAULT_DATABASES.map(str::to_owned).to_vec());
        if databases.is_empty() {
            bail!("db: at least one database is needed");
        }
        for d in &databases {
            if !mirror_core::model::valid_db_name(d) {
                bail!("db {d:?}: a database name is 1-64 ASCII letters, digits or '_'");
            }
        }
        let custom = l.custom.unwrap_or_default();
        for name in custom.keys() {
            if !mirror_core::model::valid_db_name(name) {
                bail!("custom.{name}: not a valid database name");
            }
        }
        let mut dns_servers = Vec::new();
        for a in l.dns_server.unwrap_or_default() {
            dns_servers.push(
                a.parse()
                    .with_context(|| format!("dns-server {a:?}: IP:port expected"))?,
            );
        }
        let keep_cdiffs = l
            .keep_cdiffs
            .unwrap_or(mirror_core::plan::DEFAULT_KEEP_CDIFFS);
        if keep_cdiffs > MAX_KEEP_CDIFFS {
            bail!("keep-cdiffs {keep_cdiffs}: at most {MAX_KEEP_CDIFFS}");
        }
        Ok(Settings {
            dir,
            upstreams,
            databases,
            dns: !l.no_dns.unwrap_or(false),
            dns_name: l
                .dns_name
                .unwrap_or_else(|| "current.cvd.clamav.net".to_owned()),
            dns_servers,
            keep_cdiffs,
            bootstrap_cdiffs: l.bootstrap_cdiffs.unwrap_or(true),
            sign_roots: l.sign_root.unwrap_or_default(),
            keep_generations: l.keep_generations.unwrap_or(2),
            grace_secs: l.grace_secs.unwrap_or(900),
            interval_secs: l.interval_secs.unwrap_or(3600).max(1),
            jitter_secs: l.jitter_secs.unwrap_or(300),
            verify_time: l.verify_time,
            retries: l.retries.unwrap_or(3).min(MAX_RETRIES),
            custom,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Layer {
        Layer::from_env(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string()))).unwrap()
    }

    #[test]
    fn defaults() {
        let s = Settings::resolve(
            Layer {
                dir: Some("/m".into()),
                ..Default::default()
            },
            Layer::default(),
            None,
        )
        .unwrap();
        assert_eq!(s.upstreams, [OFFICIAL_UPSTREAM]);
        assert_eq!(s.databases, ["daily", "main", "bytecode"]);
        assert!(s.dns);
        assert_eq!(s.keep_cdiffs, 30);
        assert!(s.bootstrap_cdiffs);
        assert!(s.sign_roots.is_empty());
    }

    #[test]
    fn flag_beats_env_beats_file() {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = tmp.path().join("c.toml");
        std::fs::write(
            &cfg,
            "dir = \"/file\"\nupstream = [\"http://file\"]\nkeep-cdiffs = 5\nno-dns = true\ndb = [\"main\"]\n\
             [custom.mydb]\nupstream = [\"http://custom\"]\nsign = false\n",
        )
        .unwrap();
        let e = env(&[
            ("SIGUPDATE_UPSTREAM", "http://env1/, http://env2"),
            ("SIGUPDATE_KEEP_CDIFFS", "7"),
            ("PATH", "/bin"),
        ]);
        let flags = Layer {
            keep_cdiffs: Some(9),
            ..Default::default()
        };
        let s = Settings::resolve(flags, e, Some(&cfg)).unwrap();
        assert_eq!(s.dir, Path::new("/file"));
        assert_eq!(s.upstreams, ["http://env1", "http://env2"]);
        assert_eq!(s.keep_cdiffs, 9);
        assert!(!s.dns);
        assert_eq!(s.databases, ["main"]);
        assert_eq!(s.custom["mydb"].sign, Some(false));
    }

    #[test]
    fn custom_databases_from_the_environment_override_key_by_key() {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = tmp.path().join("c.toml");
        std::fs::write(
            &cfg,
            "dir = \"/m\"\n[custom.my_db]\nupstream = [\"http://file\"]\nkeys = \"/k.toml\"\n\
             [custom.other]\nsign = false\n",
        )
        .unwrap();
        let e = env(&[
            (
                "SIGUPDATE_CUSTOM__my_db__UPSTREAM",
                "http://env-a, http://env-b",
            ),
            ("SIGUPDATE_CUSTOM__my_db__SIGN", "no"),
            ("SIGUPDATE_CUSTOM__Fresh__KEYS", "/fresh.toml"),
        ]);
        let s = Settings::resolve(Layer::default(), e, Some(&cfg)).unwrap();
        let my = &s.custom["my_db"];
        assert_eq!(
            my.upstream.as_deref().unwrap(),
            ["http://env-a", "http://env-b"]
        );
        assert_eq!(
            my.keys.as_deref(),
            Some(Path::new("/k.toml")),
            "kept from the file"
        );
        assert_eq!(my.sign, Some(false));
        assert_eq!(
            s.custom["other"].sign,
            Some(false),
            "untouched by the environment"
        );
        assert_eq!(
            s.custom["Fresh"].keys.as_deref(),
            Some(Path::new("/fresh.toml"))
        );
        for bad in [
            "SIGUPDATE_CUSTOM__my_db__COLOR",
            "SIGUPDATE_CUSTOM__nodelimiter",
        ] {
            let err = Layer::from_env([(bad.to_owned(), "x".to_owned())]).unwrap_err();
            assert!(format!("{err:#}").contains(bad), "{err:#}");
        }
        let err = Layer::from_env([("SIGUPDATE_CUSTOM__x__SIGN".into(), "maybe".into())]);
        assert!(err.is_err());
        // An invalid name is refused where every custom name is checked.
        let e = env(&[("SIGUPDATE_CUSTOM__a-b__SIGN", "true")]);
        let err = Settings::resolve(Layer::default(), e, Some(&cfg)).unwrap_err();
        assert!(err.to_string().contains("custom.a-b"), "{err:#}");
    }

    #[test]
    fn bootstrap_cdiffs_layers() {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = tmp.path().join("c.toml");
        std::fs::write(&cfg, "dir = \"/m\"\nbootstrap-cdiffs = false\n").unwrap();
        let resolve = |flags: Layer, env: Layer, file: Option<&Path>| {
            Settings::resolve(flags, env, file)
                .unwrap()
                .bootstrap_cdiffs
        };
        let dir = || Layer {
            dir: Some("/m".into()),
            ..Default::default()
        };
        assert!(!resolve(Layer::default(), Layer::default(), Some(&cfg)));
        let on = env(&[("SIGUPDATE_BOOTSTRAP_CDIFFS", "yes")]);
        assert!(resolve(Layer::default(), on.clone(), Some(&cfg)));
        let off_flag = Layer {
            bootstrap_cdiffs: Some(false),
            ..dir()
        };
        assert!(!resolve(off_flag, on, Some(&cfg)));
        let off = env(&[("SIGUPDATE_BOOTSTRAP_CDIFFS", "0")]);
        assert!(!resolve(dir(), off, None));
        assert!(resolve(dir(), Layer::default(), None));
        assert!(Layer::from_env([("SIGUPDATE_BOOTSTRAP_CDIFFS".into(), "maybe".into())]).is_err());
    }

    #[test]
    fn bad_values_are_named() {
        let e = Layer::from_env([("SIGUPDATE_KEEP_CDIFFS".into(), "lots".into())]).unwrap_err();
        assert!(format!("{e:#}").contains("SIGUPDATE_KEEP_CDIFFS"), "{e:#}");
        let e = Layer::from_env([("SIGUPDATE_UPSTREAMZ".into(), "x".into())]).unwrap_err();
        assert!(e.to_string().contains("SIGUPDATE_UPSTREAMZ"));
        let tmp = tempfile::tempdir().unwrap();
        let cfg = tmp.path().join("c.toml");
        std::fs::write(&cfg, "dri = \"/x\"\n").unwrap();
        let e = Settings::resolve(Layer::default(), Layer::default(), Some(&cfg)).unwrap_err();
        assert!(format!("{e:#}").contains("c.toml"), "{e:#}");
        let e = Settings::resolve(
            Layer {
                dir: Some("/m".into()),
                db: Some(vec!["../x".into()]),
                ..Default::default()
            },
            Layer::default(),
            None,
        )
        .unwrap_err();
        assert!(e.to_string().contains("../x"));
        assert!(Settings::resolve(Layer::default(), Layer::default(), None).is_err());
        assert!(Layer::from_env([("SIGUPDATE_NO_DNS".into(), "maybe".into())]).is_err());
    }
}
