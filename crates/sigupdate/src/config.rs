//! Configuration of `sync`, `watch`, `status` and `config`: a TOML file, every key
//! overridable by an environment variable and by a flag (flag > environment > file >
//! default), through the `cli-config` crate (the mechanism `sigserver` uses too).
//!
//! Key `some-key` in the file is `SIGUPDATE_SOME_KEY` in the environment and
//! `--some-key` on the command line. List values in the environment are separated by
//! commas. Booleans take `true`/`false` in every layer (`--no-dns=false` undoes
//! `no-dns = true` in the file). `sigupdate config` prints the effective configuration
//! and where each value came from. Example file:
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
//! publish-retry-secs = 120          # per target and sync, then the target lags
//! publish-prune-grace-secs = 3600   # before a target deletes what left the generation
//!
//! [[publish]]                   # publish each generation to a bucket too
//! url = "s3://my-bucket/clamav"  # AWS_ENDPOINT_URL etc. from the environment
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

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use cli_config::{KeyStyle, Layers, Spec};
use mirror_core::settings::MirrorSettings;

/// sigupdate's conventions: `SIGUPDATE_*` variables, kebab-case file keys.
pub const SPEC: Spec = Spec {
    env_prefix: "SIGUPDATE_",
    keys: KeyStyle::Kebab,
    flag_only: &["verbose", "max_syncs", "json"],
    not_in_file: &["config"],
    other_env: &["LOG", "LOG_FORMAT"],
    env_families: cli_config::MIRROR_ENV_FAMILIES,
    file_tables: cli_config::MIRROR_FILE_TABLES,
};

/// The subcommands that read the configuration (they share one file).
pub const CONFIG_COMMANDS: [&str; 4] = ["sync", "watch", "config", "status"];

/// The command line with the variables of [`CONFIG_COMMANDS`] attached.
pub fn command(cmd: clap::Command) -> clap::Command {
    CONFIG_COMMANDS
        .iter()
        .fold(cmd, |c, name| c.mut_subcommand(name, |s| SPEC.prepare(s)))
}

/// The effective configuration of a mirror subcommand.
#[derive(Debug)]
pub struct Resolved {
    /// The mirror.
    pub mirror: MirrorSettings,
    /// `watch`: seconds between syncs.
    pub interval_secs: u64,
    /// `watch`: random extra delay, up to this many seconds.
    pub jitter_secs: u64,
    /// `watch` and `config`: the push settings.
    pub push: Option<push::PushSettings>,
    /// The publish targets (`--publish`, `[[publish]]`).
    pub publish: publish_target::PublishSettings,
    /// The effective configuration with sources (`sigupdate config`).
    pub text: String,
}

/// The parsed command line of a subcommand: the whole command (as built by
/// [`command`]), its matches, and the subcommand's name.
#[derive(Debug, Clone, Copy)]
pub struct Invocation<'a> {
    /// The whole command.
    pub cmd: &'a clap::Command,
    /// The whole command's matches.
    pub matches: &'a clap::ArgMatches,
    /// The subcommand run.
    pub sub: &'static str,
}

impl<'a> Invocation<'a> {
    fn layers(&self, config: Option<&Path>) -> Result<Layers<'a>> {
        let sub = self
            .cmd
            .find_subcommand(self.sub)
            .with_context(|| format!("no subcommand {}", self.sub))?;
        let m = self
            .matches
            .subcommand_matches(self.sub)
            .with_context(|| format!("no matches for {}", self.sub))?;
        let known: Vec<&clap::Command> = CONFIG_COMMANDS
            .iter()
            .filter_map(|s| self.cmd.find_subcommand(s))
            .collect();
        Ok(Layers::new(
            &SPEC,
            sub,
            &known,
            m,
            config,
            std::env::vars(),
        )?)
    }

    /// The mirror directory alone (`status`).
    pub fn dir(&self, config: Option<&Path>) -> Result<PathBuf> {
        let mut layers = self.layers(config)?;
        required_dir(&mut layers)
    }

    /// Everything `sync`, `watch` and `config` use.
    pub fn resolve(&self, config: Option<&Path>) -> Result<Resolved> {
        let mut layers = self.layers(config)?;
        let dir = required_dir(&mut layers)?;
        let mirror = cli_config::resolve_mirror(&mut layers, dir)?;
        let interval_secs = layers.value("interval_secs", 3600u64)?.max(1);
        let jitter_secs = layers.value("jitter_secs", 300u64)?;
        let push = if matches!(self.sub, "watch" | "config") {
            Some(cli_config::resolve_push(&mut layers, &mirror.http)?)
        } else {
            None
        };
        let d = publish_target::PublishSettings::default();
        let publish = publish_target::PublishSettings {
            targets: layers.list("publish", d.targets)?,
            retry_budget: Duration::from_secs(
                layers.value("publish_retry_secs", d.retry_budget.as_secs())?,
            ),
            prune_grace: Duration::from_secs(
                layers.value("publish_prune_grace_secs", d.prune_grace.as_secs())?,
            ),
            http: mirror.http.clone(),
        };
        Ok(Resolved {
            mirror,
            publish,
            interval_secs,
            jitter_secs,
            push,
            text: layers.render(),
        })
    }
}

fn required_dir(layers: &mut Layers<'_>) -> Result<PathBuf> {
    layers.optional::<PathBuf>("dir")?.context(
        "no mirror directory: pass --dir DIR, set SIGUPDATE_DIR or `dir` in the config file",
    )
}
