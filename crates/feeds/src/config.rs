//! `[[feed]]` configuration: the raw serde form ([`FeedConfig`]) and the validated one
//! ([`Feed`], in a [`FeedSet`]).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Most base URLs a feed may list (failover order), as many as `fetch::Upstreams` takes.
pub const MAX_URLS: usize = 64;

use serde::Deserialize;

use crate::Error;
use crate::openpgp::{Digest, DigestPolicy, KeyRing, MAX_KEY_FILE_SIZE};
use crate::redact::{RedactedUrl, TOKEN_PLACEHOLDER, Token};
use crate::sidecar::SidecarAlgorithm;

/// The default per-file size limit (`max_file_size`): 256 MiB.
pub const DEFAULT_MAX_FILE_SIZE: u64 = 256 * 1024 * 1024;

/// Names a feed may not have: sigserver's own paths and the mirror directory's entries.
pub const RESERVED_NAMES: &[&str] = &[
    "status",
    "status.json",
    "metrics",
    "ready",
    "health",
    "trace",
    "generations",
    "current",
    "staging",
    "push",
    "dns.txt",
    "robots.txt",
    "favicon.ico",
];

/// Name endings a feed may not have (they belong to the official databases' grammar).
const RESERVED_NAME_SUFFIXES: &[&str] = &[".cvd", ".cld", ".cdiff", ".sign", ".txt", ".json"];

/// Endings a feed's file may not have: they name the files that travel beside it.
const RESERVED_FILE_SUFFIXES: &[&str] = &[".sig", ".sha256", ".md5", ".part", ".meta"];

/// The vendored keys usable as `keys = ["builtin:NAME"]`.
pub const BUILTIN_KEY_PREFIX: &str = "builtin:";

/// Files per feed, at most.
pub const MAX_FILES: usize = 1024;

/// How a feed's files are verified (`verify = "..."`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VerifyMode {
    /// A detached OpenPGP signature `<file>.sig` by one of the feed's `keys`.
    Openpgp,
    /// A sidecar `<file>.sha256`.
    Sha256,
    /// A sidecar `<file>.md5` (damage, not forgery: the sidecar comes from the same
    /// server).
    Md5,
    /// Nothing: the files are published unverified and reported as such everywhere.
    None,
}

impl VerifyMode {
    /// The sidecar algorithm of the digest modes.
    pub fn sidecar(self) -> Option<SidecarAlgorithm> {
        match self {
            VerifyMode::Sha256 => Some(SidecarAlgorithm::Sha256),
            VerifyMode::Md5 => Some(SidecarAlgorithm::Md5),
            _ => None,
        }
    }

    /// The name of the file published beside `file` (`file.sig`, `file.sha256`, ...).
    pub fn companion(self, file: &str) -> Option<String> {
        match self {
            VerifyMode::Openpgp => Some(format!("{file}.sig")),
            VerifyMode::Sha256 => Some(format!("{file}.sha256")),
            VerifyMode::Md5 => Some(format!("{file}.md5")),
            VerifyMode::None => None,
        }
    }
}

/// One URL or a list of failover URLs.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Urls {
    /// `url = "https://..."`.
    One(String),
    /// `url = ["https://primary/...", "https://fallback/..."]`, tried in order.
    Many(Vec<String>),
}

impl Urls {
    fn list(&self) -> Vec<String> {
        match self {
            Urls::One(u) => vec![u.clone()],
            Urls::Many(v) => v.clone(),
        }
    }
}

/// A `[[feed]]` table as written (serde). Keys are snake_case; the kebab-case spelling
/// (`token-file`, `min-interval-secs`, ...) is accepted too, so the table fits both
/// binaries' files. Check it with [`FeedSet::validate`].
///
/// ```toml
/// [[feed]]
/// name = "sanesecurity"
/// url = ["https://mirror.example.org/sanesecurity", "https://fallback.example.org/ss"]
/// files = ["junk.ndb", "phish.ndb", "scam.ndb"]
/// verify = "openpgp"
/// keys = ["builtin:sanesecurity"]       # or paths of armored/binary public keys
/// openpgp_digests = ["sha1", "sha256"]  # SaneSecurity signs with SHA-1
/// min_interval_secs = 3600
/// load_check = true
///
/// [[feed]]
/// name = "securiteinfo"
/// url = "https://www.securiteinfo.com/get/signatures/{token}"
/// token_file = "/etc/sigupdate/securiteinfo.token"
/// files = ["securiteinfo.hdb"]
/// verify = "none"
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedConfig {
    /// The feed's name: its directory in a generation and its URL path on sigserver
    /// (`/<name>/<file>`). `[a-z0-9][a-z0-9._-]{0,63}`, not a reserved name.
    pub name: String,
    /// Base URL(s): each file is fetched as `<url>/<file>`; a list is tried in order
    /// (failover). May hold `{token}` (then `token_file` is required).
    pub url: Urls,
    /// The files of the feed (plain names: `[A-Za-z0-9][A-Za-z0-9._-]*`).
    pub files: Vec<String>,
    /// How files are verified.
    pub verify: VerifyMode,
    /// OpenPGP public key files (armored or binary), or `builtin:sanesecurity`;
    /// required for `verify = "openpgp"`.
    #[serde(default)]
    pub keys: Vec<PathBuf>,
    /// A file holding the secret substituted for `{token}` in the URL.
    #[serde(default, alias = "token-file")]
    pub token_file: Option<PathBuf>,
    /// At most one fetch of the feed per this many seconds (0: every sync).
    #[serde(default, alias = "min-interval-secs")]
    pub min_interval_secs: u64,
    /// Whether each new file is loaded by ClamAV's engine before it is published.
    #[serde(default, alias = "load-check")]
    pub load_check: bool,
    /// Per-file size limit in bytes (default [`DEFAULT_MAX_FILE_SIZE`]).
    #[serde(default, alias = "max-file-size")]
    pub max_file_size: Option<u64>,
    /// Digests OpenPGP signatures may use (default `["sha256", "sha384", "sha512"]`).
    #[serde(default, alias = "openpgp-digests")]
    pub openpgp_digests: Option<Vec<Digest>>,
}

impl FeedConfig {
    /// Resolves relative `keys` and `token_file` paths against `base` (the directory of
    /// the configuration file); `builtin:` keys and absolute paths are kept.
    pub fn resolve_relative_to(&mut self, base: &Path) {
        for k in &mut self.keys {
            if k.is_relative() && !k.to_string_lossy().starts_with(BUILTIN_KEY_PREFIX) {
                *k = base.join(&*k);
            }
        }
        if let Some(t) = &mut self.token_file
            && t.is_relative()
        {
            *t = base.join(&*t);
        }
    }
}

/// A validated feed: keys loaded, token read, URLs and file names checked.
#[derive(Debug, Clone)]
pub struct Feed {
    name: String,
    urls: Vec<String>,
    files: Vec<String>,
    verify: VerifyMode,
    keys: KeyRing,
    token: Option<Token>,
    min_interval_secs: u64,
    load_check: bool,
    max_file_size: u64,
    digests: DigestPolicy,
}

impl Feed {
    /// The feed's name (its directory and URL path).
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The base URLs, redacted (for status pages, traces, logs).
    pub fn urls(&self) -> Vec<RedactedUrl> {
        self.urls
            .iter()
            .map(|u| RedactedUrl::from_template(u))
            .collect()
    }
    /// The configured files, in order.
    pub fn files(&self) -> &[String] {
        &self.files
    }
    /// The verification mode.
    pub fn verify(&self) -> VerifyMode {
        self.verify
    }
    /// Whether the feed's files are published unverified (`verify = "none"`).
    pub fn unverified(&self) -> bool {
        self.verify == VerifyMode::None
    }
    /// The trusted keys (`verify = "openpgp"`).
    pub fn keys(&self) -> &KeyRing {
        &self.keys
    }
    /// Whether the URL carries a token.
    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }
    /// Minimum seconds between two fetches.
    pub fn min_interval_secs(&self) -> u64 {
        self.min_interval_secs
    }
    /// Whether files are load-checked by ClamAV before publishing.
    pub fn load_check(&self) -> bool {
        self.load_check
    }
    /// The per-file size limit in bytes.
    pub fn max_file_size(&self) -> u64 {
        self.max_file_size
    }
    /// The OpenPGP digest policy.
    pub fn digests(&self) -> &DigestPolicy {
        &self.digests
    }
    pub(crate) fn token(&self) -> Option<&Token> {
        self.token.as_ref()
    }
    /// The real base URLs (token substituted): only for `fetch`.
    pub(crate) fn real_urls(&self) -> Vec<String> {
        self.urls
            .iter()
            .map(|u| match &self.token {
                Some(t) => t.fill(u),
                None => u.clone(),
            })
            .collect()
    }
}

/// The validated feeds of a configuration, in order, names unique.
#[derive(Debug, Clone, Default)]
pub struct FeedSet {
    feeds: Vec<Feed>,
}

/// Parses the `[[feed]]` tables of a whole TOML configuration text (other keys are
/// ignored: the binary's own configuration reads them) and validates them.
///
/// ```
/// let set = feeds::parse_feeds(r#"
///     dir = "/srv/mirror"
///     [[feed]]
///     name = "urlhaus"
///     url = "https://urlhaus.example.org/downloads"
///     files = ["urlhaus.ndb"]
///     verify = "sha256"
/// "#)?;
/// assert_eq!(set.feeds()[0].name(), "urlhaus");
/// # Ok::<(), feeds::Error>(())
/// ```
///
/// # Errors
/// [`Error::Syntax`] for text that is not TOML or `feed` entries of the wrong shape;
/// otherwise as [`FeedSet::validate`].
pub fn parse_feeds(toml_text: &str) -> Result<FeedSet, Error> {
    #[derive(Deserialize)]
    struct Doc {
        #[serde(default)]
        feed: Vec<FeedConfig>,
    }
    let doc: Doc = toml::from_str(toml_text).map_err(|e| Error::Syntax {
        reason: e.to_string(),
    })?;
    FeedSet::validate(doc.feed)
}

fn valid_feed_name(n: &str) -> Result<(), String> {
    let b = n.as_bytes();
    let ok_first = b
        .first()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let ok_rest = b
        .iter()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'.' | b'_' | b'-'));
    if !(ok_first && ok_rest && b.len() <= 64) {
        return Err(
            "must be 1-64 characters from a-z 0-9 . _ -, starting with a letter or digit".into(),
        );
    }
    if n.contains("..") || n.ends_with('.') {
        return Err("must not contain \"..\" or end with \".\"".into());
    }
    if RESERVED_NAMES.contains(&n) {
        return Err(format!(
            "{n:?} is reserved (a path of sigserver or of the mirror directory)"
        ));
    }
    if let Some(s) = RESERVED_NAME_SUFFIXES.iter().find(|s| n.ends_with(*s)) {
        return Err(format!(
            "must not end with {s:?} (an official database file name)"
        ));
    }
    Ok(())
}

/// Whether `f` is a plain file name a feed may list.
pub(crate) fn valid_file_name(f: &str) -> Result<(), String> {
    let b = f.as_bytes();
    let ok = b.first().is_some_and(u8::is_ascii_alphanumeric)
        && b.len() <= 128
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'));
    if !ok {
        return Err(format!(
            "{f:?} is not a plain file name (1-128 characters from A-Z a-z 0-9 . _ -, starting with a letter or digit)"
        ));
    }
    if f.contains("..") {
        return Err(format!("{f:?} contains \"..\""));
    }
    if let Some(s) = RESERVED_FILE_SUFFIXES.iter().find(|s| f.ends_with(*s)) {
        return Err(format!(
            "{f:?} ends with {s:?}, reserved for the files beside a feed file"
        ));
    }
    Ok(())
}

fn check_url(u: &str, has_token: bool) -> Result<(), String> {
    let rest = u
        .strip_prefix("https://")
        .or_else(|| u.strip_prefix("http://"))
        .ok_or_else(|| format!("{} is not an http(s) URL", RedactedUrl::from_template(u)))?;
    let host = rest.split('/').next().unwrap_or("");
    if host.is_empty() || host.contains(TOKEN_PLACEHOLDER) || host.contains('@') {
        return Err(format!(
            "{} has no plain host (no user info, no token in the host)",
            RedactedUrl::from_template(u)
        ));
    }
    if u.contains(['?', '#', ' ']) {
        return Err(format!(
            "{} has a query, fragment or space (a base URL is a path; files are appended)",
            RedactedUrl::from_template(u)
        ));
    }
    let placeholders = u.matches(TOKEN_PLACEHOLDER).count();
    let stray = u.replace(TOKEN_PLACEHOLDER, "").contains(['{', '}']);
    if stray {
        return Err(format!(
            "{} has braces other than the {TOKEN_PLACEHOLDER} placeholder",
            RedactedUrl::from_template(u)
        ));
    }
    match (placeholders > 0, has_token) {
        (true, false) => Err(format!(
            "{} has {TOKEN_PLACEHOLDER} but the feed has no token_file",
            RedactedUrl::from_template(u)
        )),
        _ => Ok(()),
    }
}

fn read_limited(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read as _;
    let f = std::fs::File::open(path)?;
    let mut buf = Vec::new();
    f.take(limit + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > limit {
        return Err(std::io::Error::other(format!("larger than {limit} bytes")));
    }
    Ok(buf)
}

impl FeedSet {
    /// Checks every feed and loads its keys and token: a valid, unique name; at least
    /// one http(s) URL (with `{token}` exactly when a `token_file` is given, never in
    /// the host); 1–[`MAX_FILES`] unique plain file names; keys present, readable and
    /// parsing for `verify = "openpgp"` (and only then); a readable, well-formed token;
    /// a non-zero size limit; a non-empty digest list.
    ///
    /// # Errors
    /// The first problem found, naming the feed and the key: [`Error::Config`],
    /// [`Error::ReadConfigFile`], [`Error::BadKey`].
    pub fn validate(configs: Vec<FeedConfig>) -> Result<FeedSet, Error> {
        let mut names = BTreeSet::new();
        let mut feeds = Vec::new();
        for (i, c) in configs.into_iter().enumerate() {
            if let Err(reason) = valid_feed_name(&c.name) {
                return Err(Error::Config {
                    feed: format!("#{} ({:?})", i + 1, c.name),
                    key: "name",
                    reason,
                });
            }
            if !names.insert(c.name.clone()) {
                return Err(Error::Config {
                    feed: c.name.clone(),
                    key: "name",
                    reason: "another feed has the same name".into(),
                });
            }
            feeds.push(Feed::validate(c)?);
        }
        Ok(FeedSet { feeds })
    }

    /// The feeds, in configuration order.
    pub fn feeds(&self) -> &[Feed] {
        &self.feeds
    }

    /// The feed named `name`.
    pub fn get(&self, name: &str) -> Option<&Feed> {
        self.feeds.iter().find(|f| f.name == name)
    }
}

impl Feed {
    /// Validates one feed (its name's uniqueness is [`FeedSet::validate`]'s job).
    ///
    /// # Errors
    /// As [`FeedSet::validate`].
    pub fn validate(c: FeedConfig) -> Result<Feed, Error> {
        let name = c.name.clone();
        let cfg = |key: &'static str, reason: String| Error::Config {
            feed: name.clone(),
            key,
            reason,
        };
        if let Err(reason) = valid_feed_name(&c.name) {
            return Err(cfg("name", reason));
        }
        let urls = c.url.list();
        if urls.is_empty() {
            return Err(cfg("url", "no URL".into()));
        }
        if urls.len() > MAX_URLS {
            return Err(cfg("url", format!("more than {} URLs", MAX_URLS)));
        }
        let token = match &c.token_file {
            Some(path) => {
                let bytes = read_limited(path, 4096).map_err(|source| Error::ReadConfigFile {
                    feed: name.clone(),
                    key: "token_file",
                    path: path.clone(),
                    source,
                })?;
                let text = String::from_utf8(bytes).map_err(|_| {
                    cfg(
                        "token_file",
                        format!("{} is not UTF-8 text", path.display()),
                    )
                })?;
                Some(
                    Token::new(&text)
                        .map_err(|r| cfg("token_file", format!("{}: {r}", path.display())))?,
                )
            }
            None => None,
        };
        for u in &urls {
            check_url(u, token.is_some()).map_err(|r| cfg("url", r))?;
        }
        if token.is_some() && !urls.iter().any(|u| u.contains(TOKEN_PLACEHOLDER)) {
            return Err(cfg(
                "token_file",
                format!("given, but no URL has the {TOKEN_PLACEHOLDER} placeholder"),
            ));
        }
        if c.files.is_empty() {
            return Err(cfg("files", "no files listed".into()));
        }
        if c.files.len() > MAX_FILES {
            return Err(cfg("files", format!("more than {MAX_FILES} files")));
        }
        let mut seen = BTreeSet::new();
        for f in &c.files {
            valid_file_name(f).map_err(|r| cfg("files", r))?;
            if !seen.insert(f.as_str()) {
                return Err(cfg("files", format!("{f:?} is listed twice")));
            }
        }
        let mut keys = KeyRing::default();
        match (c.verify, c.keys.is_empty()) {
            (VerifyMode::Openpgp, true) => {
                return Err(cfg(
                    "keys",
                    "verify = \"openpgp\" needs at least one key".into(),
                ));
            }
            (VerifyMode::Openpgp, false) => {
                for path in &c.keys {
                    keys.extend(load_key(&name, path)?);
                }
            }
            (_, false) => {
                return Err(cfg(
                    "keys",
                    "keys are only used with verify = \"openpgp\"".into(),
                ));
            }
            (_, true) => {}
        }
        if c.openpgp_digests.is_some() && c.verify != VerifyMode::Openpgp {
            return Err(cfg(
                "openpgp_digests",
                "only used with verify = \"openpgp\"".into(),
            ));
        }
        let digests = match c.openpgp_digests {
            Some(list) if list.is_empty() => {
                return Err(cfg(
                    "openpgp_digests",
                    "empty: no signature could verify".into(),
                ));
            }
            Some(list) => DigestPolicy::new(list),
            None => DigestPolicy::default(),
        };
        let max_file_size = c.max_file_size.unwrap_or(DEFAULT_MAX_FILE_SIZE);
        if max_file_size == 0 {
            return Err(cfg("max_file_size", "must be more than 0".into()));
        }
        Ok(Feed {
            name: c.name,
            urls: urls
                .into_iter()
                .map(|u| u.trim_end_matches('/').to_owned())
                .collect(),
            files: c.files,
            verify: c.verify,
            keys,
            token,
            min_interval_secs: c.min_interval_secs,
            load_check: c.load_check,
            max_file_size,
            digests,
        })
    }
}

fn load_key(feed: &str, path: &Path) -> Result<KeyRing, Error> {
    let text = path.to_string_lossy();
    let bytes = if let Some(builtin) = text.strip_prefix(BUILTIN_KEY_PREFIX) {
        match crate::keys::builtin(builtin) {
            Some(b) => b.to_vec(),
            None => {
                return Err(Error::Config {
                    feed: feed.to_owned(),
                    key: "keys",
                    reason: format!(
                        "unknown built-in key {builtin:?} (known: {})",
                        crate::keys::BUILTIN
                            .iter()
                            .map(|(n, _)| *n)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                });
            }
        }
    } else {
        read_limited(path, MAX_KEY_FILE_SIZE).map_err(|source| Error::ReadConfigFile {
            feed: feed.to_owned(),
            key: "keys",
            path: path.to_owned(),
            source,
        })?
    };
    KeyRing::from_bytes(&bytes).map_err(|reason| Error::BadKey {
        feed: feed.to_owned(),
        path: path.to_owned(),
        reason,
    })
}
