//! [`Layers`]: flags and environment (parsed by clap), the TOML file, defaults; and the
//! record of where each effective value came from.

use std::any::Any;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{ConfigError, Source, Spec};

/// Largest configuration file read.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// One effective setting, as [`Layers::render`] prints it.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The table it belongs to (`custom.mydb`), `None` at the top level.
    pub table: Option<String>,
    /// The file key.
    pub key: String,
    /// The value; `None`: not set (an optional setting without a default).
    pub value: Option<toml::Value>,
    /// Where it came from.
    pub source: Source,
}

/// The layers of one run: clap's matches (flags and environment), the file, and the
/// record of every value resolved through it.
///
/// ```
/// use clap::{CommandFactory, FromArgMatches, Parser};
/// use cli_config::{KeyStyle, Layers, Source, Spec};
///
/// #[derive(Parser)]
/// struct Cli {
///     #[arg(long)]
///     keep_cdiffs: Option<u32>,
///     #[arg(long)]
///     no_dns: Option<bool>,
/// }
/// const SPEC: Spec = Spec {
///     env_prefix: "DEMO_", keys: KeyStyle::Kebab, flag_only: &[], not_in_file: &[],
///     other_env: &[], env_families: &[], file_tables: &[],
/// };
/// let cmd = SPEC.prepare(Cli::command());
/// let m = cmd.clone().try_get_matches_from(["demo", "--no-dns", "no"]).unwrap();
/// let mut layers = Layers::new(&SPEC, &cmd, &[&cmd], &m, None, Vec::new()).unwrap();
/// assert_eq!(layers.value("keep_cdiffs", 30u32).unwrap(), 30);
/// assert!(!layers.value("no_dns", true).unwrap());
/// assert_eq!(layers.entries()[1].source, Source::Flag("--no-dns".into()));
/// assert_eq!(layers.render(), "keep-cdiffs = 30    # default\nno-dns = false    # flag --no-dns\n");
/// ```
#[derive(Debug)]
pub struct Layers<'a> {
    spec: &'a Spec,
    cmd: &'a clap::Command,
    matches: &'a clap::ArgMatches,
    file: Option<(PathBuf, toml::Table)>,
    env: Vec<(String, String)>,
    entries: Vec<Entry>,
}

fn ids(cmd: &clap::Command) -> Vec<String> {
    cmd.get_arguments()
        .map(|a| a.get_id().as_str().to_owned())
        .collect()
}

impl<'a> Layers<'a> {
    /// The layers for `matches` of `cmd` (as given to [`Spec::prepare`]), the file
    /// `config` (if any) and the environment `vars` (pass `std::env::vars()`).
    ///
    /// The keys and variables known are those of the layered arguments of `known`
    /// (every command sharing the file: `sigupdate sync` and `watch` read the same
    /// one). An unknown key in the file or an unknown variable with the prefix is an
    /// error.
    pub fn new(
        spec: &'a Spec,
        cmd: &'a clap::Command,
        known: &[&clap::Command],
        matches: &'a clap::ArgMatches,
        config: Option<&Path>,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut keys = BTreeSet::new();
        let mut vars_known = BTreeSet::new();
        for c in known {
            let bools = crate::bool_ids(c);
            for id in &ids(c) {
                if spec.has_env(id, &bools) {
                    vars_known.insert(spec.env_var(id));
                }
                if spec.has_file_key(id, &bools) {
                    keys.insert(spec.file_key(id));
                }
            }
        }
        keys.extend(spec.file_tables.iter().map(|t| (*t).to_owned()));
        vars_known.extend(
            spec.other_env
                .iter()
                .map(|v| format!("{}{v}", spec.env_prefix)),
        );
        let mut env = Vec::new();
        for (k, v) in vars {
            let Some(rest) = k.strip_prefix(spec.env_prefix) else {
                continue;
            };
            if !vars_known.contains(&k) && !spec.env_families.iter().any(|f| rest.starts_with(f)) {
                return Err(ConfigError::UnknownEnv { var: k });
            }
            env.push((k, v));
        }
        let file = match config {
            Some(path) => {
                let table = read_file(path)?;
                if let Some(key) = table.keys().find(|k| !keys.contains(*k)) {
                    return Err(ConfigError::UnknownKey {
                        path: path.to_owned(),
                        key: key.clone(),
                    });
                }
                Some((path.to_owned(), table))
            }
            None => None,
        };
        Ok(Layers {
            spec,
            cmd,
            matches,
            file,
            env,
            entries: Vec::new(),
        })
    }

    /// The binary's conventions.
    pub fn spec(&self) -> &'a Spec {
        self.spec
    }

    fn arg(&self, id: &str) -> Option<&clap::Arg> {
        self.cmd.get_arguments().find(|a| a.get_id() == id)
    }

    /// Where clap found `id`: the command line or the environment (`None`: neither,
    /// or `cmd` has no such argument).
    fn clap_source(&self, id: &str) -> Option<Source> {
        let arg = self.arg(id)?;
        match self.matches.value_source(id)? {
            ValueSource::CommandLine => {
                Some(Source::Flag(format!("--{}", arg.get_long().unwrap_or(id))))
            }
            ValueSource::EnvVariable => Some(Source::Env(self.spec.env_var(id))),
            _ => None,
        }
    }

    fn clap_one<T: Any + Clone + Send + Sync + 'static>(
        &self,
        id: &str,
    ) -> Result<Option<(T, Source)>, ConfigError> {
        let Some(source) = self.clap_source(id) else {
            return Ok(None);
        };
        let v = self
            .matches
            .try_get_one::<T>(id)
            .map_err(|e| ConfigError::Argument {
                id: id.to_owned(),
                reason: e.to_string(),
            })?;
        Ok(v.map(|v| (v.clone(), source)))
    }

    fn clap_many<T: Any + Clone + Send + Sync + 'static>(
        &self,
        id: &str,
    ) -> Result<Option<(Vec<T>, Source)>, ConfigError> {
        let Some(source) = self.clap_source(id) else {
            return Ok(None);
        };
        let v = self
            .matches
            .try_get_many::<T>(id)
            .map_err(|e| ConfigError::Argument {
                id: id.to_owned(),
                reason: e.to_string(),
            })?;
        Ok(v.map(|v| (v.cloned().collect(), source)))
    }

    fn file_layer<T: DeserializeOwned>(
        &self,
        id: &str,
    ) -> Result<Option<(T, Source)>, ConfigError> {
        let key = self.spec.file_key(id);
        match self.file_value(&key) {
            None => Ok(None),
            Some((path, v)) => T::deserialize(v.clone())
                .map(|t| Some((t, Source::File(path.to_owned()))))
                .map_err(|source| ConfigError::FileValue {
                    path: path.to_owned(),
                    key,
                    source: Box::new(source),
                }),
        }
    }

    /// The value of setting `id` (an argument id), if any layer sets it; recorded.
    pub fn optional<T>(&mut self, id: &str) -> Result<Option<T>, ConfigError>
    where
        T: Any + Clone + Send + Sync + DeserializeOwned + Serialize,
    {
        // The file's value is checked even when a flag or variable overrides it: a
        // malformed file is an error, not a surprise for the day the flag goes.
        let file = self.file_layer::<T>(id)?;
        let found = self.clap_one::<T>(id)?.or(file);
        let key = self.spec.file_key(id);
        match found {
            Some((v, source)) => {
                self.record(None, &key, toml::Value::try_from(&v).ok(), source);
                Ok(Some(v))
            }
            None => {
                self.record(None, &key, None, Source::Default);
                Ok(None)
            }
        }
    }

    /// The value of setting `id`, or `default`; recorded.
    pub fn value<T>(&mut self, id: &str, default: T) -> Result<T, ConfigError>
    where
        T: Any + Clone + Send + Sync + DeserializeOwned + Serialize,
    {
        // The file's value is checked even when a flag or variable overrides it: a
        // malformed file is an error, not a surprise for the day the flag goes.
        let file = self.file_layer::<T>(id)?;
        let found = self.clap_one::<T>(id)?.or(file);
        let (v, source) = found.unwrap_or((default, Source::Default));
        let key = self.spec.file_key(id);
        self.record(None, &key, toml::Value::try_from(&v).ok(), source);
        Ok(v)
    }

    /// The list setting `id` (a repeatable flag, a comma-separated variable, a TOML
    /// array), or `default`; recorded.
    pub fn list<T>(&mut self, id: &str, default: Vec<T>) -> Result<Vec<T>, ConfigError>
    where
        T: Any + Clone + Send + Sync + DeserializeOwned + Serialize,
    {
        let file = self.file_layer::<Vec<T>>(id)?;
        let found = self.clap_many::<T>(id)?.or(file);
        let (v, source) = found.unwrap_or((default, Source::Default));
        let key = self.spec.file_key(id);
        self.record(None, &key, toml::Value::try_from(&v).ok(), source);
        Ok(v)
    }

    /// [`Layers::list`] whose file value may also be a single item (`ca-cert =
    /// "/etc/ssl/corp.pem"` as well as `ca-cert = ["a.pem", "b.pem"]`).
    pub fn list_or_one<T>(&mut self, id: &str, default: Vec<T>) -> Result<Vec<T>, ConfigError>
    where
        T: Any + Clone + Send + Sync + DeserializeOwned + Serialize,
    {
        let file = match self.file_layer::<Vec<T>>(id) {
            Ok(v) => v,
            Err(list_err) => match self.file_layer::<T>(id) {
                Ok(one) => one.map(|(v, source)| (vec![v], source)),
                Err(_) => return Err(list_err),
            },
        };
        let found = self.clap_many::<T>(id)?.or(file);
        let (v, source) = found.unwrap_or((default, Source::Default));
        let key = self.spec.file_key(id);
        self.record(None, &key, toml::Value::try_from(&v).ok(), source);
        Ok(v)
    }

    /// The boolean setting `id` that also has a negation flag `no_<id>` (given alone:
    /// `id` is false; `--no-KEY=false`: `id` is true), or `default`; recorded. When
    /// both flags are given the later one wins; the negation flag beats the variable
    /// and the file like any flag.
    pub fn negatable(&mut self, id: &str, default: bool) -> Result<bool, ConfigError> {
        self.file_layer::<bool>(id)?; // checked even when overridden
        let neg = format!("no_{id}");
        let on_line = |this: &Self, id: &str| {
            matches!(this.clap_source(id), Some(Source::Flag(_)))
                .then(|| this.matches.index_of(id))
                .flatten()
        };
        let neg_later = match (on_line(self, &neg), on_line(self, id)) {
            (Some(n), Some(p)) => n > p,
            (Some(_), None) => true,
            _ => false,
        };
        if neg_later && let Some((no, source)) = self.clap_one::<bool>(&neg)? {
            let key = self.spec.file_key(id);
            self.record(None, &key, Some(toml::Value::Boolean(!no)), source);
            return Ok(!no);
        }
        self.value(id, default)
    }

    /// The value of file key `key` as written, and the file (for settings the binary
    /// reads itself, declared in [`Spec::file_tables`]).
    pub fn file_value(&self, key: &str) -> Option<(&Path, &toml::Value)> {
        let (path, table) = self.file.as_ref()?;
        table.get(key).map(|v| (path.as_path(), v))
    }

    /// The variables of a family declared in [`Spec::env_families`]: (variable, the
    /// rest of its name after prefix and family, value), in the environment's order.
    pub fn env_family(&self, family: &str) -> Vec<(String, String, String)> {
        let start = format!("{}{family}", self.spec.env_prefix);
        self.env
            .iter()
            .filter_map(|(k, v)| {
                k.strip_prefix(&start)
                    .map(|rest| (k.clone(), rest.to_owned(), v.clone()))
            })
            .collect()
    }

    /// Records an effective value (replacing an earlier record of the same key).
    pub fn record(
        &mut self,
        table: Option<&str>,
        key: &str,
        value: Option<toml::Value>,
        source: Source,
    ) {
        let e = Entry {
            table: table.map(str::to_owned),
            key: key.to_owned(),
            value,
            source,
        };
        match self
            .entries
            .iter_mut()
            .find(|x| x.table == e.table && x.key == e.key)
        {
            Some(x) => *x = e,
            None => self.entries.push(e),
        }
    }

    /// Replaces the recorded value of a top-level `key` (keeping its source): for
    /// values normalised after resolution (URLs without their trailing `/`).
    pub fn normalised<T: Serialize>(&mut self, key: &str, value: &T) {
        if let Some(e) = self
            .entries
            .iter_mut()
            .find(|e| e.table.is_none() && e.key == key)
        {
            e.value = toml::Value::try_from(value).ok();
        }
    }

    /// Every value resolved so far, in order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The effective configuration as TOML, each line followed by its source
    /// (`keep-cdiffs = 30    # default`); a setting that is not set is a comment line.
    /// With the comments stripped it is a valid configuration file.
    pub fn render(&self) -> String {
        render(&self.entries)
    }
}

/// See [`Layers::render`].
fn render(entries: &[Entry]) -> String {
    let mut out = String::new();
    let line = |out: &mut String, e: &Entry| {
        let text = match &e.value {
            Some(v) => format!("{} = {v}", e.key),
            None => format!("# {} is not set", e.key),
        };
        out.push_str(&format!("{text}    # {}\n", e.source));
    };
    for e in entries.iter().filter(|e| e.table.is_none()) {
        line(&mut out, e);
    }
    let mut tables: Vec<&str> = Vec::new();
    for e in entries {
        if let Some(t) = &e.table
            && !tables.contains(&t.as_str())
        {
            tables.push(t);
        }
    }
    for t in tables {
        out.push_str(&format!("\n[{t}]\n"));
        for e in entries.iter().filter(|e| e.table.as_deref() == Some(t)) {
            line(&mut out, e);
        }
    }
    out
}

fn read_file(path: &Path) -> Result<toml::Table, ConfigError> {
    let read = |source| ConfigError::Read {
        path: path.to_owned(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(read)?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(ConfigError::TooLarge {
            path: path.to_owned(),
        });
    }
    let text = std::fs::read_to_string(path).map_err(read)?;
    toml::from_str(&text).map_err(|source| ConfigError::Parse {
        path: path.to_owned(),
        source: Box::new(source),
    })
}
