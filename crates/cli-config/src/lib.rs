//! Layered configuration for the command-line tools (`sigupdate`, `sigserver`): a TOML
//! file < environment variables < flags, one mechanism for both binaries, and the
//! source of every effective value (`sigupdate config`, `sigserver --print-config`).
//!
//! # How it works
//!
//! Each binary declares its settings once, as clap arguments (derive). A [`Spec`] names
//! the binary's conventions: the environment prefix and the key style of its file.
//! [`Spec::prepare`] then gives every argument its environment variable
//! (`--keep-cdiffs` → `SIGUPDATE_KEEP_CDIFFS`), so clap parses flags and environment
//! with the same value parser, and [`clap::ArgMatches::value_source`] says which of the
//! two set a value. [`Layers`] fills in what neither set from the TOML file (same
//! key as the flag, in the file's style: `keep-cdiffs` or `keep_cdiffs`), then from the
//! binary's default, and records where each value came from ([`Source`]);
//! [`Layers::render`] prints that record as TOML with a comment per line.
//!
//! Conventions every setting follows, so that adding one is adding a field:
//!
//! - the flag is `--KEY`, the file key is `KEY`, the variable is `PREFIX_KEY`;
//! - booleans (`Option<bool>` fields) take a value in every layer (`--no-dns=false`,
//!   `SIGUPDATE_NO_DNS=false`, `no-dns = false`), and a flag given alone means `true`
//!   ([`Spec::prepare`] makes it so); so any layer can undo any lower one, in both
//!   directions;
//! - an argument `no_KEY` beside an argument `KEY` is `KEY`'s negation, a flag only
//!   (`--no-bootstrap-cdiffs` is `bootstrap-cdiffs = false`);
//! - lists are repeated flags, TOML arrays, or comma-separated variables;
//! - an unknown key in the file and an unknown variable with the prefix are errors
//!   that name the file or the variable (a typo must not go unnoticed).
//!
//! The settings of a mirror (what `sigupdate sync`/`watch` and `sigserver --sync` share)
//! are declared once, in [`MirrorArgs`], and resolved once, by [`resolve_mirror`], into
//! `mirror_core::settings::MirrorSettings`; the push settings likewise in [`PushArgs`]
//! and [`resolve_push`]. They are the `engine` feature (on by default); without it the
//! crate is the layering alone, for any clap program.
//!
//! # Why clap's `env` and serde, not figment
//!
//! figment (the well-kept layering crate) was considered. It would add `pear` and its
//! proc-macro, `uncased`, `yansi` and `atomic` to the tree, and it still could not
//! express this interface: it lower-cases variable names (custom database names are
//! case-sensitive: `SIGUPDATE_CUSTOM__MyDb__SIGN`), reads lists from the environment
//! only in its own `[a, b]` syntax (ours are comma-separated), knows nothing of flags
//! (they would be a third provider written by hand), and ignores unknown variables.
//! clap, already a dependency of both binaries, parses flags and environment with the
//! same parsers and reports which one set a value; the file is plain serde through
//! `toml`, also already in the tree. What is written here is the short glue: the
//! variable names, the file fill-in, the sources.
//!
//! # Features and dependency count
//!
//! | feature set | crates pulled in |
//! |---|---|
//! | minimal (`--no-default-features`): [`Spec`], [`Layers`], [`Source`], rendering; clap, serde, toml | 28 |
//! | default (`engine`: `MirrorArgs`/`resolve_mirror`, `PushArgs`/`resolve_push` over `mirror-core` and `push`; the `[[feed]]` tables) | 290 |
//!
//! No async runtime, DNS or HTTP client in the minimal set. Counted, and kept current,
//! by `cargo xtask light-check` (run by CI, which fails when a row is stale or when a
//! minimal build pulls tokio, hickory, reqwest, ureq or hyper): the distinct crates,
//! by name and version, of `cargo tree -p cli-config -e normal --no-dedupe` (with
//! `--no-default-features` for the minimal row), the crate itself not counted; in
//! shell terms `... --prefix none --no-dedupe | sort -u | wc -l`, minus one. Build and
//! dev dependencies are not counted.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod layers;
#[cfg(feature = "engine")]
mod mirror;
#[cfg(feature = "engine")]
mod push_args;

use std::path::PathBuf;

pub use layers::{Entry, Layers, MAX_FILE_BYTES};
#[cfg(feature = "engine")]
pub use mirror::{MIRROR_ENV_FAMILIES, MIRROR_FILE_TABLES, MirrorArgs, resolve_mirror};
#[cfg(feature = "engine")]
pub use push_args::{PushArgs, resolve_push};

/// How the keys of a binary's configuration file are spelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyStyle {
    /// `keep-cdiffs` (sigupdate).
    Kebab,
    /// `keep_cdiffs` (sigserver).
    Snake,
}

/// A binary's configuration conventions.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    /// Prefix of its environment variables, e.g. `SIGUPDATE_`.
    pub env_prefix: &'static str,
    /// Spelling of the file's keys.
    pub keys: KeyStyle,
    /// Argument ids that are flags only: no variable, no file key (`verbose`).
    pub flag_only: &'static [&'static str],
    /// Argument ids with a flag and a variable but no file key (`config`).
    pub not_in_file: &'static [&'static str],
    /// Further variables (after the prefix) the binary reads itself (`LOG`).
    pub other_env: &'static [&'static str],
    /// Families of variables (after the prefix) the binary reads itself through
    /// [`Layers::env_family`] (`CUSTOM__`).
    pub env_families: &'static [&'static str],
    /// File keys (tables) the binary reads itself through [`Layers::file_value`]
    /// (`custom`).
    pub file_tables: &'static [&'static str],
}

impl Spec {
    /// The variable of argument `id`: `keep_cdiffs` → `SIGUPDATE_KEEP_CDIFFS`.
    pub fn env_var(&self, id: &str) -> String {
        format!(
            "{}{}",
            self.env_prefix,
            id.to_ascii_uppercase().replace('-', "_")
        )
    }

    /// The file key of argument `id`: `keep_cdiffs` → `keep-cdiffs` or `keep_cdiffs`.
    pub fn file_key(&self, id: &str) -> String {
        match self.keys {
            KeyStyle::Kebab => id.replace('_', "-"),
            KeyStyle::Snake => id.replace('-', "_"),
        }
    }

    /// Prepares `cmd` (not its subcommands) before parsing: gives every layered
    /// argument its environment variable, and makes every boolean that takes a value
    /// take it optionally (`--no-dns` alone is `true`; `--no-dns=false`,
    /// `--no-dns false`, `yes`/`no`, `on`/`off`, `1`/`0` are accepted, as in the
    /// variables).
    pub fn prepare(self, cmd: clap::Command) -> clap::Command {
        let ids = bool_ids(&cmd);
        cmd.mut_args(move |mut a| {
            let id = a.get_id().as_str().to_owned();
            if a.get_action().takes_values()
                && a.get_value_parser().type_id() == std::any::TypeId::of::<bool>()
            {
                a = a
                    .num_args(0..=1)
                    .default_missing_value("true")
                    .value_parser(clap::builder::BoolishValueParser::new());
                if a.get_value_names().is_none() {
                    a = a.value_name("BOOL");
                }
            }
            if self.has_env(&id, &ids) {
                a.env(self.env_var(&id))
            } else {
                a
            }
        })
    }

    /// Whether `id` is the negation flag of a boolean (`no_bootstrap_cdiffs`); `bools`
    /// are the ids of the boolean arguments ([`bool_ids`]). `no_proxy` (a list of
    /// hosts beside `proxy`, a URL) is a setting of its own.
    fn is_negation(id: &str, bools: &[String]) -> bool {
        bools.iter().any(|b| b == id)
            && id
                .strip_prefix("no_")
                .is_some_and(|base| bools.iter().any(|i| i == base))
    }

    fn has_env(&self, id: &str, ids: &[String]) -> bool {
        !matches!(id, "help" | "version")
            && !self.flag_only.contains(&id)
            && !Self::is_negation(id, ids)
    }

    fn has_file_key(&self, id: &str, ids: &[String]) -> bool {
        self.has_env(id, ids) && !self.not_in_file.contains(&id)
    }
}

/// The ids of `cmd`'s boolean arguments (the only ones a `no_KEY` can negate).
pub(crate) fn bool_ids(cmd: &clap::Command) -> Vec<String> {
    cmd.get_arguments()
        .filter(|a| a.get_value_parser().type_id() == std::any::TypeId::of::<bool>())
        .map(|a| a.get_id().as_str().to_owned())
        .collect()
}

/// Where an effective value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The binary's default.
    Default,
    /// The configuration file.
    File(PathBuf),
    /// An environment variable (its name).
    Env(String),
    /// A command-line flag (its spelling, `--keep-cdiffs`).
    Flag(String),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::File(p) => write!(f, "file {}", p.display()),
            Source::Env(v) => write!(f, "env {v}"),
            Source::Flag(l) => write!(f, "flag {l}"),
        }
    }
}

/// A configuration that cannot be used; every message names the file, key, variable
/// or setting.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The configuration file cannot be read.
    #[error("reading config file {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The configuration file is larger than [`MAX_FILE_BYTES`].
    #[error("config file {}: larger than {MAX_FILE_BYTES} bytes", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// The configuration file is not TOML.
    #[error("parsing config file {}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        #[source]
        source: Box<toml::de::Error>,
    },
    /// The configuration file has a key no setting has.
    #[error("config file {}: unknown key `{key}`", path.display())]
    UnknownKey {
        /// The file.
        path: PathBuf,
        /// The key.
        key: String,
    },
    /// A value in the configuration file has the wrong type or form.
    #[error("config file {}: `{key}`", path.display())]
    FileValue {
        /// The file.
        path: PathBuf,
        /// The key (`custom` for a custom database's table).
        key: String,
        /// Why it was refused.
        #[source]
        source: Box<toml::de::Error>,
    },
    /// A variable with the binary's prefix that no setting has.
    #[error("unknown environment variable {var}")]
    UnknownEnv {
        /// The variable.
        var: String,
    },
    /// A variable's value cannot be used.
    #[error("environment variable {var}: {reason}")]
    EnvValue {
        /// The variable.
        var: String,
        /// Why.
        reason: String,
    },
    /// A required setting is missing.
    #[error("{0}")]
    Missing(String),
    /// The settings do not make a valid mirror.
    #[cfg(feature = "engine")]
    #[error(transparent)]
    Settings(#[from] mirror_core::settings::SettingsError),
    /// The push settings cannot work.
    #[cfg(feature = "engine")]
    #[error(transparent)]
    Push(#[from] push::Error),
    /// The HTTP settings cannot work (a CA certificate file that cannot be used).
    #[cfg(feature = "engine")]
    #[error(transparent)]
    Http(#[from] fetch::Error),
    /// The binary asked for an argument in a way its declaration does not allow (a
    /// bug in the binary, not in the input).
    #[error("argument `{id}`: {reason}")]
    Argument {
        /// The argument id.
        id: String,
        /// What went wrong.
        reason: String,
    },
}

/// Parses a boolean the way the flags and variables do (`true`/`false`, `yes`/`no`,
/// `on`/`off`, `1`/`0`, `t`/`f`, `y`/`n`, any case).
pub fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" | "t" | "y" => Some(true),
        "0" | "false" | "no" | "off" | "f" | "n" => Some(false),
        _ => None,
    }
}

/// Adds to a clap error the variable a bad value came from, when it came from one:
/// clap names the flag only (`invalid value 'lots' for '--keep-cdiffs <N>'`).
/// `args` is the command line and `vars` the environment (`std::env::args()`,
/// `std::env::vars()`).
pub fn name_env_in_error(
    spec: &Spec,
    err: clap::Error,
    args: impl IntoIterator<Item = String>,
    vars: impl IntoIterator<Item = (String, String)>,
) -> clap::Error {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if !matches!(
        err.kind(),
        ErrorKind::ValueValidation | ErrorKind::InvalidValue
    ) {
        return err;
    }
    let (Some(ContextValue::String(arg)), Some(ContextValue::String(value))) = (
        err.get(ContextKind::InvalidArg),
        err.get(ContextKind::InvalidValue),
    ) else {
        return err;
    };
    // `--keep-cdiffs <N>` → `keep-cdiffs`.
    let long = arg
        .trim_start_matches('-')
        .split([' ', '=', '['])
        .next()
        .unwrap_or_default()
        .to_owned();
    let flag = format!("--{long}");
    if args
        .into_iter()
        .any(|a| a == flag || a.starts_with(&format!("{flag}=")))
    {
        return err;
    }
    let var = spec.env_var(&long);
    let from_env = vars
        .into_iter()
        .any(|(k, v)| k == var && (v == *value || v.split(',').any(|p| p == value)));
    if !from_env {
        return err;
    }
    clap::Error::raw(
        ErrorKind::ValueValidation,
        format!("environment variable {var}: invalid value {value:?} (for {arg})\n"),
    )
}
