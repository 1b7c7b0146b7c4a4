//! An upstream simulator: a local HTTP server (on `127.0.0.1`, built on
//! [`crate::http::TestServer`]) that publishes a history of ClamAV databases over time,
//! the way `database.clamav.net` does, and misbehaves on command.
//!
//! # Histories
//!
//! A [`History`] is the consecutive versions of one database, each with its signed
//! `.cvd`, the `.cdiff` leading to it from the previous version and, where they exist,
//! the ClamAV 1.5 `.sign` files:
//!
//! * [`History::official`] reads the official `test-1..6` vectors (tests only; the
//!   vectors are vendored in `testdata/clamav-official/`, see [`crate::official_vectors`]). Their
//!   `.sign` files are served under the names of spec §3: `test-N.cvd.sign` and
//!   `test-N.cdiff.sign`.
//! * [`History::synthetic`] builds any number of versions of a synthetic database with
//!   caller keys (a test or demo key): every `.cvd` with `cvd_format`'s builder, every
//!   `.cdiff` with `cdiff`'s generator from the previous version. These have no `.sign`
//!   files (the CMS root is ClamAV's), so a mirror must treat them as a custom database
//!   with its own keys and without `.sign` files.
//!
//! # Serving
//!
//! An [`Upstream`] serves one or more histories from one server. For every database at
//! its published version `v` it serves `/<db>.cvd` (version `v`), `/<db>-<k>.cdiff` for
//! every `k` from the history's second version up to `v`, their `.sign` files, and a
//! `/dns.txt` manifest (written with `dns_versions`' manifest writer) that advertises
//! every database's published version. [`Upstream::advance`] publishes the next version
//! of every database; [`Upstream::publish`] moves one database forward to a given version.
//! Every change gets a `Last-Modified` time strictly later than the previous one, so
//! conditional requests never mistake a new file for an old one.
//!
//! # Misbehaving
//!
//! [`Upstream::misbehave`] switches on a [`Misbehaviour`] (rate limiting, an outage, a
//! truncated or tampered file, an inconsistent `.cvd`/`.cdiff` set, a `.cvd` older than
//! advertised); it stays on across [`advance`](Upstream::advance) until
//! [`Upstream::behave`]. For anything finer (a dropped connection, a slow body, a fault
//! for the next `n` requests) use the underlying server: [`Upstream::server`].
//! [`Upstream::stats`] counts requests and body bytes per path, so a test can prove that
//! a mirror downloaded nothing twice.
//!
//! ```
//! use testkit::upstream::{History, Misbehaviour, PublisherKeys, Upstream};
//!
//! let keys = PublisherKeys::test();
//! let history = History::synthetic("demo", 3, &keys)?;
//! let mut upstream = Upstream::builder().database(history, 1).start()?;
//! assert_eq!(upstream.published("demo"), Some(1));
//! upstream.advance()?;
//! assert_eq!(upstream.published("demo"), Some(2));
//! upstream.misbehave(Misbehaviour::RateLimit { retry_after_secs: 1 })?;
//! upstream.behave()?;
//! assert!(upstream.url("demo.cvd").starts_with("http://127.0.0.1:"));
//! # Ok::<(), testkit::upstream::UpstreamError>(())
//! ```

use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cvd_format::{CvdBuilder, KeySet, SigningKey, SigningKeys};

use crate::http::{Fault, RetryAfter, Scope, Stats, TestServer};

/// Most versions a synthetic history may have (a sanity limit: each version is a signed
/// build).
pub const MAX_SYNTHETIC_VERSIONS: u32 = 1000;

/// Largest official vector file read (the real ones are a few KiB).
pub const MAX_VECTOR_FILE: u64 = 16 << 20;

/// Why the simulator could not do what it was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UpstreamError {
    /// A vector file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A vector file is larger than [`MAX_VECTOR_FILE`].
    #[error("{path}: {size} bytes, more than the limit of {MAX_VECTOR_FILE}")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        size: u64,
    },
    /// Building a `.cvd` failed.
    #[error("building {file}: {reason}")]
    Build {
        /// The file being built, e.g. `demo-3.cvd`.
        file: String,
        /// What went wrong.
        reason: String,
    },
    /// Generating a `.cdiff` failed.
    #[error("generating {file}: {reason}")]
    Generate {
        /// The patch being generated, e.g. `demo-3.cdiff`.
        file: String,
        /// What went wrong.
        reason: String,
    },
    /// A request that makes no sense for the history (unknown database, a version
    /// outside the history, going backwards, a second history with the same name, a
    /// misbehaviour that needs keys the history was not built with, ...).
    #[error("{what}: {reason}")]
    Invalid {
        /// What was asked for.
        what: String,
        /// Why it cannot be done.
        reason: String,
    },
}

fn invalid(what: impl Into<String>, reason: impl Into<String>) -> UpstreamError {
    UpstreamError::Invalid {
        what: what.into(),
        reason: reason.into(),
    }
}

/// The private keys of a publisher of synthetic databases.
#[derive(Debug, Clone)]
pub struct PublisherKeys {
    /// Signs `.cvd` files (legacy header signature and `.info` `DSIG`).
    pub cvd: SigningKeys,
    /// Signs `.cdiff` patches.
    pub cdiff: SigningKey,
}

impl PublisherKeys {
    /// The TEST-ONLY keys of [`crate::keys`] (also the demo's keys: they protect
    /// nothing).
    pub fn test() -> PublisherKeys {
        PublisherKeys {
            cvd: crate::keys::test_signing_keys(),
            cdiff: crate::keys::test_cdiff_key(),
        }
    }

    /// The trust set that verifies what these keys sign (CVD, INFO, CDIFF).
    pub fn key_set(&self) -> KeySet {
        KeySet::new(
            self.cvd.cvd.public_key(),
            self.cvd.info.public_key(),
            self.cdiff.public_key(),
        )
    }

    /// The public keys as three SPKI PEM blocks in the order CVD, INFO, CDIFF: the key
    /// file format `sigupdate` reads for a custom database (`[custom.<db>] keys = FILE`).
    pub fn public_pem(&self) -> Result<String, UpstreamError> {
        let mut out = String::new();
        for (what, key) in [
            ("CVD", &self.cvd.cvd),
            ("INFO", &self.cvd.info),
            ("CDIFF", &self.cdiff),
        ] {
            out.push_str(
                &public_key_pem(key)
                    .map_err(|reason| invalid(format!("the {what} key"), reason))?,
            );
        }
        Ok(out)
    }
}

/// The SPKI PEM (`-----BEGIN PUBLIC KEY-----`) of a signing key.
fn public_key_pem(key: &SigningKey) -> Result<String, String> {
    use rsa::pkcs8::{DecodePrivateKey, EncodePublicKey, LineEnding};
    let pem = key.to_pkcs8_pem().map_err(|e| e.to_string())?;
    let private = rsa::RsaPrivateKey::from_pkcs8_pem(&pem).map_err(|e| e.to_string())?;
    private
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .map_err(|e| e.to_string())
}

/// One version of a database, as upstream publishes it.
#[derive(Clone, PartialEq, Eq)]
pub struct Release {
    version: u32,
    cvd: Vec<u8>,
    cvd_sign: Option<Vec<u8>>,
    cdiff: Option<Vec<u8>>,
    cdiff_sign: Option<Vec<u8>>,
    /// A "hand-built" `.cvd` of the same version, correctly signed, whose members are
    /// not what the previous version plus `cdiff` produce (the 2013 incident).
    rogue_cvd: Option<Vec<u8>>,
}

impl std::fmt::Debug for Release {
    // Sizes, not bytes: a failing assertion should not print kilobytes of binary.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let len = |b: &Option<Vec<u8>>| b.as_ref().map(Vec::len);
        f.debug_struct("Release")
            .field("version", &self.version)
            .field("cvd_len", &self.cvd.len())
            .field("cvd_sign_len", &len(&self.cvd_sign))
            .field("cdiff_len", &len(&self.cdiff))
            .field("cdiff_sign_len", &len(&self.cdiff_sign))
            .field("rogue_cvd_len", &len(&self.rogue_cvd))
            .finish()
    }
}

impl Release {
    /// The version.
    pub fn version(&self) -> u32 {
        self.version
    }
    /// The signed `.cvd` of this version.
    pub fn cvd(&self) -> &[u8] {
        &self.cvd
    }
    /// `<db>-<version>.cvd.sign`, when the history has `.sign` files.
    pub fn cvd_sign(&self) -> Option<&[u8]> {
        self.cvd_sign.as_deref()
    }
    /// The `.cdiff` that turns the previous version into this one (none for the first
    /// version of a history).
    pub fn cdiff(&self) -> Option<&[u8]> {
        self.cdiff.as_deref()
    }
    /// `<db>-<version>.cdiff.sign`, when the history has `.sign` files.
    pub fn cdiff_sign(&self) -> Option<&[u8]> {
        self.cdiff_sign.as_deref()
    }
}

/// The consecutive versions of one database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct History {
    name: String,
    releases: Vec<Release>,
}

impl History {
    /// Reads the official vectors `test-1.cvd` .. `test-6.cvd`, `test-2.cdiff` ..
    /// `test-6.cdiff` and their `.sign` files from `dir` (the
    /// [`crate::official_vectors`] directory). Database name: `test`.
    pub fn official(dir: &Path) -> Result<History, UpstreamError> {
        let read = |name: String| -> Result<Vec<u8>, UpstreamError> {
            let path = dir.join(name);
            let size = std::fs::metadata(&path)
                .map_err(|source| UpstreamError::Read {
                    path: path.clone(),
                    source,
                })?
                .len();
            if size > MAX_VECTOR_FILE {
                return Err(UpstreamError::TooLarge { path, size });
            }
            std::fs::read(&path).map_err(|source| UpstreamError::Read { path, source })
        };
        let mut releases = Vec::new();
        for v in 1..=6u32 {
            let (cdiff, cdiff_sign) = if v > 1 {
                (
                    Some(read(format!("test-{v}.cdiff"))?),
                    Some(read(format!("test-{v}.cdiff.sign"))?),
                )
            } else {
                (None, None)
            };
            releases.push(Release {
                version: v,
                cvd: read(format!("test-{v}.cvd"))?,
                cvd_sign: Some(read(format!("test-{v}.cvd.sign"))?),
                cdiff,
                cdiff_sign,
                rogue_cvd: None,
            });
        }
        Ok(History {
            name: "test".to_owned(),
            releases,
        })
    }

    /// Builds `versions` consecutive versions (1 ..= `versions`) of a synthetic database
    /// `name`, signed with `keys`; each `.cdiff` is generated from the previous version
    /// with `cdiff`'s generator and signed with `keys.cdiff`. Each version also gets a correctly signed "hand-built" twin for
    /// [`Misbehaviour::InconsistentSet`].
    ///
    /// The database holds `<name>.hdb` (MD5 signatures) and `<name>.ndb` (body
    /// signatures); each version adds lines, replaces one and deletes one, so the patches
    /// use `ADD`, `XCHG` and `DEL`.
    pub fn synthetic(
        name: &str,
        versions: u32,
        keys: &PublisherKeys,
    ) -> Result<History, UpstreamError> {
        Self::build_synthetic(name, versions, keys, 0)
    }

    /// Like [`History::synthetic`], with a `daily`-like bulk: every version also holds
    /// `<name>.hsb`, about `bulk_bytes` of hash signatures (incompressible like real
    /// ones: about half their size after compression) of which each version adds 64
    /// lines, so each `.cdiff` stays small while each `.cvd` is large. No rogue
    /// `.cvd`s are built (they would double the work): [`Misbehaviour`]s that serve
    /// one are not available for such a history.
    pub fn synthetic_sized(
        name: &str,
        versions: u32,
        keys: &PublisherKeys,
        bulk_bytes: usize,
    ) -> Result<History, UpstreamError> {
        Self::build_synthetic(name, versions, keys, bulk_bytes)
    }

    fn build_synthetic(
        name: &str,
        versions: u32,
        keys: &PublisherKeys,
        bulk_bytes: usize,
    ) -> Result<History, UpstreamError> {
        if versions == 0 || versions > MAX_SYNTHETIC_VERSIONS {
            return Err(invalid(
                format!("synthetic history of {name}"),
                format!("1..={MAX_SYNTHETIC_VERSIONS} versions, not {versions}"),
            ));
        }
        if name.is_empty()
            || name.len() > 64
            || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(invalid(
                format!("database name {name:?}"),
                "1-64 ASCII letters, digits or '_'",
            ));
        }
        // A fixed time base keeps builds reproducible; one hour per version.
        let t0: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z
        let mut releases: Vec<Release> = Vec::new();
        let mut previous: Option<cdiff::Database> = None;
        for v in 1..=versions {
            let mut members = synthetic_members(name, v);
            if bulk_bytes > 0 {
                members.push((format!("{name}.hsb"), bulk_member(bulk_bytes, v)));
            }
            let at = t0 + i64::from(v) * 3600;
            let cvd = build_cvd(name, v, &members, at, &keys.cvd)?;
            let mut rogue = if bulk_bytes > 0 {
                Vec::new()
            } else {
                members.clone()
            };
            if let Some((_, hdb)) = rogue.iter_mut().find(|(n, _)| n.ends_with(".hdb")) {
                hdb.extend_from_slice(
                    format!("{}:68:Rogue.Handbuilt-{v}\n", fake_md5(v, 0xdead)).as_bytes(),
                );
            }
            let rogue_cvd = if bulk_bytes > 0 {
                None
            } else {
                Some(build_cvd(name, v, &rogue, at, &keys.cvd)?)
            };
            let database = read_database(name, v, &cvd, keys)?;
            let cdiff = match &previous {
                Some(prev) => Some(generate_cdiff(name, v, prev, &database, &keys.cdiff)?),
                None => None,
            };
            releases.push(Release {
                version: v,
                cvd,
                cvd_sign: None,
                cdiff,
                cdiff_sign: None,
                rogue_cvd,
            });
            previous = Some(database);
        }
        Ok(History {
            name: name.to_owned(),
            releases,
        })
    }

    /// The database name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The first version of the history.
    pub fn first_version(&self) -> u32 {
        self.releases.first().map_or(0, |r| r.version)
    }

    /// The last (newest) version of the history.
    pub fn last_version(&self) -> u32 {
        self.releases.last().map_or(0, |r| r.version)
    }

    /// One version, if the history has it.
    pub fn release(&self, version: u32) -> Option<&Release> {
        self.releases.iter().find(|r| r.version == version)
    }

    /// Every version, oldest first.
    pub fn releases(&self) -> &[Release] {
        &self.releases
    }
}

/// Database members: (name, content), in order.
type Members = Vec<(String, Vec<u8>)>;

/// A deterministic 32-hex-digit pseudo MD5 for synthetic signatures.
/// About `bytes` of `.hsb` lines (`sha256:size:name`), the same for every version,
/// plus 64 lines per version up to `v`.
fn bulk_member(bytes: usize, v: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes + 64 * 128 * v as usize);
    let mut i = 0u32;
    while out.len() < bytes {
        i += 1;
        out.extend_from_slice(
            format!(
                "{}{}:{}:Bulk.Sig-{i}\n",
                fake_md5(i, 3),
                fake_md5(i, 4),
                1024 + i % 4096
            )
            .as_bytes(),
        );
    }
    for k in 1..=v {
        for j in 0..64 {
            out.extend_from_slice(
                format!(
                    "{}{}:{}:Bulk.New-{k}-{j}\n",
                    fake_md5(k, 5 + j),
                    fake_md5(k, 99),
                    2048 + j
                )
                .as_bytes(),
            );
        }
    }
    out
}

fn fake_md5(a: u32, b: u32) -> String {
    let mut x: u64 = (u64::from(a) << 32 | u64::from(b)) ^ 0x9e37_79b9_7f4a_7c15;
    let mut out = String::with_capacity(32);
    for _ in 0..2 {
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^= x >> 33;
        x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        x ^= x >> 33;
        out.push_str(&format!("{x:016x}"));
    }
    out
}

/// The members of version `v` of a synthetic database: version `v` holds `.hdb`
/// signatures 1..=3v except number `v - 1` (deleted in version `v`), with signature `v`
/// renamed (replaced in version `v`), and one `.ndb` line per version.
fn synthetic_members(name: &str, v: u32) -> Members {
    let mut hdb = String::new();
    for i in 1..=3 * v {
        if v > 1 && i == v - 1 {
            continue;
        }
        let label = if i == v && v > 1 {
            format!("Demo.Hash-{i}.Renamed-{v}")
        } else {
            format!("Demo.Hash-{i}")
        };
        hdb.push_str(&format!("{}:{}:{label}\n", fake_md5(i, 1), 64 + i));
    }
    let mut ndb = String::new();
    for i in 1..=v {
        ndb.push_str(&format!(
            "Demo.Body-{i}:0:*:{}\n",
            &fake_md5(i, 2)[..16 + (i as usize % 8) * 2]
        ));
    }
    vec![
        (
            "COPYING".to_owned(),
            b"Synthetic demo database of the clamav-mirror project (public domain).\n".to_vec(),
        ),
        (format!("{name}.hdb"), hdb.into_bytes()),
        (format!("{name}.ndb"), ndb.into_bytes()),
    ]
}

fn build_cvd(
    name: &str,
    version: u32,
    members: &Members,
    at: i64,
    keys: &SigningKeys,
) -> Result<Vec<u8>, UpstreamError> {
    let file = format!("{name}-{version}.cvd");
    let time = time::OffsetDateTime::from_unix_timestamp(at).map_err(|e| UpstreamError::Build {
        file: file.clone(),
        reason: e.to_string(),
    })?;
    let mut b = CvdBuilder::new(name, version)
        .flevel(90)
        .builder("testkit")
        .build_time(time)
        .sign_time(Some(at));
    for (n, data) in members {
        b = b.member(n, data.clone());
    }
    let mut out = Cursor::new(Vec::new());
    b.write_cvd(&mut out, keys)
        .map_err(|e| UpstreamError::Build {
            file,
            reason: e.to_string(),
        })?;
    Ok(out.into_inner())
}

/// Reads a built `.cvd` back into the database `cdiff` works on (every member,
/// including the generated `<name>.info`, which the patches must also turn into the
/// next version's).
fn read_database(
    name: &str,
    version: u32,
    cvd: &[u8],
    keys: &PublisherKeys,
) -> Result<cdiff::Database, UpstreamError> {
    let opts = cdiff::chain::ChainOptions::new().keys(keys.key_set());
    cdiff::chain::read_base(cvd, &opts)
        .map(|(_, _, db)| db)
        .map_err(|e| UpstreamError::Build {
            file: format!("{name}-{version}.cvd"),
            reason: format!("reading it back: {e}"),
        })
}

fn generate_cdiff(
    name: &str,
    version: u32,
    old: &cdiff::Database,
    new: &cdiff::Database,
    key: &SigningKey,
) -> Result<Vec<u8>, UpstreamError> {
    cdiff::generate::cdiff(old, new, version, key).map_err(|e| UpstreamError::Generate {
        file: format!("{name}-{version}.cdiff"),
        reason: e.to_string(),
    })
}

/// A misbehaviour of the simulated upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Misbehaviour {
    /// Every request gets `429 Too Many Requests` with `Retry-After: <secs>`.
    RateLimit {
        /// The `Retry-After` value in seconds.
        retry_after_secs: u64,
    },
    /// Every request gets `503 Service Unavailable` without `Retry-After` (the
    /// upstream is down).
    Outage,
    /// `file` (e.g. `demo.cvd`, `test-6.cdiff`) is served cut to half its length, with a
    /// consistent `Content-Length` (a broken copy on a CDN node).
    Truncate {
        /// The file name (no leading `/`).
        file: String,
    },
    /// `file` is served with one byte flipped in the middle of its body (for a `.cvd`:
    /// in the compressed body, so the MD5 no longer matches).
    Tamper {
        /// The file name (no leading `/`).
        file: String,
    },
    /// `/<db>.cvd` is a correctly signed, "hand-built" `.cvd` of the published version
    /// whose members are not what the previous version plus the published `.cdiff`
    /// produce (the 2013 incident). Needs a [`History::synthetic`] database.
    InconsistentSet {
        /// The database.
        db: String,
    },
    /// `/<db>.cvd` is the previous version while `dns.txt` advertises the published
    /// one (a stale CDN node).
    OlderThanAdvertised {
        /// The database.
        db: String,
    },
}

/// Builder for an [`Upstream`].
#[derive(Debug, Default)]
pub struct UpstreamBuilder {
    databases: Vec<(History, u32)>,
}

impl UpstreamBuilder {
    /// Adds a database, published at `version` (and every cdiff up to it).
    pub fn database(mut self, history: History, version: u32) -> Self {
        self.databases.push((history, version));
        self
    }

    /// Starts the server on `127.0.0.1` with every database published.
    ///
    /// # Panics
    /// When no loopback port can be bound (as [`TestServer::start`]).
    pub fn start(self) -> Result<Upstream, UpstreamError> {
        let mut dbs: BTreeMap<String, Db> = BTreeMap::new();
        for (history, version) in self.databases {
            let name = history.name.clone();
            if history.release(version).is_none() {
                return Err(invalid(
                    format!("{name} version {version}"),
                    format!(
                        "the history has versions {}..={}",
                        history.first_version(),
                        history.last_version()
                    ),
                ));
            }
            if dbs.contains_key(&name) {
                return Err(invalid(format!("database {name}"), "added twice"));
            }
            dbs.insert(
                name,
                Db {
                    history,
                    published: version,
                },
            );
        }
        let server = TestServer::start();
        let mut up = Upstream {
            server,
            dbs,
            misbehaviours: Vec::new(),
            clock: SystemTime::now()
                .checked_sub(Duration::from_secs(86_400))
                .unwrap_or(UNIX_EPOCH),
            record_time: SystemTime::now(),
        };
        let names: Vec<String> = up.dbs.keys().cloned().collect();
        for name in names {
            up.put_db(&name, None);
        }
        up.put_manifest()?;
        Ok(up)
    }
}

#[derive(Debug)]
struct Db {
    history: History,
    published: u32,
}

/// A running upstream simulator; the server stops when it is dropped.
#[derive(Debug)]
pub struct Upstream {
    server: TestServer,
    dbs: BTreeMap<String, Db>,
    misbehaviours: Vec<Misbehaviour>,
    /// `Last-Modified` of the latest change; strictly increasing.
    clock: SystemTime,
    /// Time of the version record (real time of the last publish).
    record_time: SystemTime,
}

impl Upstream {
    /// Starts configuring an upstream.
    pub fn builder() -> UpstreamBuilder {
        UpstreamBuilder::default()
    }

    /// The base URL, `http://127.0.0.1:<port>` (no trailing slash): what a mirror's
    /// `--upstream` takes.
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    /// The URL of `file` (e.g. `test.cvd`).
    pub fn url(&self, file: &str) -> String {
        self.server.url(file)
    }

    /// The underlying HTTP server, for faults beyond [`Misbehaviour`].
    pub fn server(&self) -> &TestServer {
        &self.server
    }

    /// Requests and body bytes per path since the start or the last
    /// [`reset_stats`](Self::reset_stats).
    pub fn stats(&self) -> Stats {
        self.server.stats()
    }

    /// Zeroes the request counters.
    pub fn reset_stats(&self) {
        self.server.reset_stats();
    }

    /// The published version of `db`.
    pub fn published(&self, db: &str) -> Option<u32> {
        self.dbs.get(db).map(|d| d.published)
    }

    /// The history of `db`.
    pub fn history(&self, db: &str) -> Option<&History> {
        self.dbs.get(db).map(|d| &d.history)
    }

    /// The names of the served databases.
    pub fn databases(&self) -> Vec<String> {
        self.dbs.keys().cloned().collect()
    }

    /// Publishes the next version of every database that has one; returns the
    /// databases that moved, with their new versions.
    pub fn advance(&mut self) -> Result<Vec<(String, u32)>, UpstreamError> {
        let mut moved = Vec::new();
        let names: Vec<String> = self.dbs.keys().cloned().collect();
        for name in names {
            let Some(db) = self.dbs.get(&name) else {
                continue;
            };
            let next = db.published + 1;
            if db.history.release(next).is_some() {
                self.publish(&name, next)?;
                moved.push((name, next));
            }
        }
        Ok(moved)
    }

    /// Publishes `db` at `version` (and every cdiff up to it). Versions only move
    /// forward, like a real upstream's.
    pub fn publish(&mut self, db: &str, version: u32) -> Result<(), UpstreamError> {
        let what = format!("publishing {db} version {version}");
        let d = self
            .dbs
            .get_mut(db)
            .ok_or_else(|| invalid(&what, "no such database"))?;
        if d.history.release(version).is_none() {
            return Err(invalid(
                &what,
                format!(
                    "the history has versions {}..={}",
                    d.history.first_version(),
                    d.history.last_version()
                ),
            ));
        }
        if version < d.published {
            return Err(invalid(
                &what,
                format!("version {} is already published", d.published),
            ));
        }
        let from = d.published;
        d.published = version;
        self.record_time = SystemTime::now();
        self.put_db(db, Some(from));
        self.put_manifest()?;
        self.apply_misbehaviours()
    }

    /// Switches a misbehaviour on (in addition to those already on).
    pub fn misbehave(&mut self, m: Misbehaviour) -> Result<(), UpstreamError> {
        // Check it applies before keeping it.
        self.fault_for(&m)?;
        self.misbehaviours.push(m);
        self.apply_misbehaviours()
    }

    /// Switches every misbehaviour off (and clears any fault set directly on
    /// [`server`](Self::server)).
    pub fn behave(&mut self) -> Result<(), UpstreamError> {
        self.misbehaviours.clear();
        self.apply_misbehaviours()
    }

    /// The misbehaviours currently on.
    pub fn misbehaviours(&self) -> &[Misbehaviour] {
        &self.misbehaviours
    }

    /// The files served for `db` at its published version, by name (e.g. `test.cvd`,
    /// `test-6.cvd.sign`, `test-2.cdiff`), with their genuine content.
    pub fn files(&self, db: &str) -> BTreeMap<String, Vec<u8>> {
        let mut out = BTreeMap::new();
        let Some(d) = self.dbs.get(db) else {
            return out;
        };
        for r in d
            .history
            .releases
            .iter()
            .filter(|r| r.version <= d.published)
        {
            let v = r.version;
            if v == d.published {
                out.insert(format!("{db}.cvd"), r.cvd.clone());
                if let Some(s) = &r.cvd_sign {
                    out.insert(format!("{db}-{v}.cvd.sign"), s.clone());
                }
            }
            if let Some(c) = &r.cdiff {
                out.insert(format!("{db}-{v}.cdiff"), c.clone());
            }
            if let Some(s) = &r.cdiff_sign {
                out.insert(format!("{db}-{v}.cdiff.sign"), s.clone());
            }
        }
        out
    }

    /// The `dns.txt` manifest currently served: one version record line, as
    /// `dns_versions` writes it, made when the last version was published.
    pub fn manifest(&self) -> Result<String, UpstreamError> {
        manifest_text(&self.versions(), self.record_time)
    }

    /// The TXT record a DNS server would publish for this upstream (the `dns.txt` line
    /// without its newline): what a `current.cvd.clamav.net`-style lookup returns.
    pub fn txt_record(&self) -> Result<String, UpstreamError> {
        version_record(&self.versions(), self.record_time).map(|r| r.to_string())
    }

    /// Every database's published version.
    pub fn versions(&self) -> BTreeMap<String, u32> {
        self.dbs
            .iter()
            .map(|(k, d)| (k.clone(), d.published))
            .collect()
    }

    fn tick(&mut self) -> SystemTime {
        self.clock += Duration::from_secs(60);
        self.clock
    }

    /// Puts the files of `db` that changed since version `from` (all when `None`).
    fn put_db(&mut self, db: &str, from: Option<u32>) {
        let t = self.tick();
        let Some(d) = self.dbs.get(db) else {
            return;
        };
        let published = d.published;
        for r in d.history.releases.iter().filter(|r| r.version <= published) {
            let v = r.version;
            if from.is_some_and(|f| v <= f) {
                continue;
            }
            if let Some(c) = &r.cdiff {
                self.server
                    .put_modified(&format!("/{db}-{v}.cdiff"), c.clone(), t);
            }
            if let Some(s) = &r.cdiff_sign {
                self.server
                    .put_modified(&format!("/{db}-{v}.cdiff.sign"), s.clone(), t);
            }
            if v == published {
                if let Some(s) = &r.cvd_sign {
                    self.server
                        .put_modified(&format!("/{db}-{v}.cvd.sign"), s.clone(), t);
                }
                self.server
                    .put_modified(&format!("/{db}.cvd"), r.cvd.clone(), t);
            }
        }
    }

    fn put_manifest(&mut self) -> Result<(), UpstreamError> {
        let text = self.manifest()?;
        let t = self.tick();
        let path = format!("/{}", dns_versions::MANIFEST_NAME);
        self.server.put_modified(&path, text.into_bytes(), t);
        Ok(())
    }

    fn apply_misbehaviours(&mut self) -> Result<(), UpstreamError> {
        self.server.clear_faults();
        for m in &self.misbehaviours {
            let (scope, fault) = self.fault_for(m)?;
            self.server.set_fault(scope, fault);
        }
        Ok(())
    }

    fn fault_for(&self, m: &Misbehaviour) -> Result<(Scope, Fault), UpstreamError> {
        Ok(match m {
            Misbehaviour::RateLimit { retry_after_secs } => (
                Scope::All,
                Fault::RateLimit(Some(RetryAfter::Seconds(*retry_after_secs))),
            ),
            Misbehaviour::Outage => (Scope::All, Fault::Status(503)),
            Misbehaviour::Truncate { file } => {
                let body = self.served(file)?;
                let cut = body.len() / 2;
                (Scope::path(file), Fault::Content(body[..cut].to_vec()))
            }
            Misbehaviour::Tamper { file } => {
                let mut body = self.served(file)?;
                // Past a .cvd's 512-byte header when there is one.
                let at = if body.len() > 1024 {
                    512 + (body.len() - 512) / 2
                } else {
                    body.len() / 2
                };
                if let Some(b) = body.get_mut(at) {
                    *b ^= 0x55;
                }
                (Scope::path(file), Fault::Content(body))
            }
            Misbehaviour::InconsistentSet { db } => {
                let what = format!("inconsistent set of {db}");
                let d = self
                    .dbs
                    .get(db)
                    .ok_or_else(|| invalid(&what, "no such database"))?;
                let rogue = d
                    .history
                    .release(d.published)
                    .and_then(|r| r.rogue_cvd.clone())
                    .ok_or_else(|| {
                        invalid(
                            &what,
                            "needs a synthetic history (the simulator holds its keys)",
                        )
                    })?;
                (Scope::path(&format!("{db}.cvd")), Fault::Content(rogue))
            }
            Misbehaviour::OlderThanAdvertised { db } => {
                let what = format!("older-than-advertised {db}.cvd");
                let d = self
                    .dbs
                    .get(db)
                    .ok_or_else(|| invalid(&what, "no such database"))?;
                let older = d
                    .published
                    .checked_sub(1)
                    .and_then(|v| d.history.release(v))
                    .ok_or_else(|| invalid(&what, format!("no version before {}", d.published)))?;
                (
                    Scope::path(&format!("{db}.cvd")),
                    Fault::Content(older.cvd.clone()),
                )
            }
        })
    }

    /// The genuine content currently served as `file`.
    fn served(&self, file: &str) -> Result<Vec<u8>, UpstreamError> {
        let file = file.trim_start_matches('/');
        if file == dns_versions::MANIFEST_NAME {
            return Ok(self.manifest()?.into_bytes());
        }
        for db in self.dbs.keys() {
            if let Some(body) = self.files(db).remove(file) {
                return Ok(body);
            }
        }
        Err(invalid(
            format!("file {file}"),
            "not served by this upstream",
        ))
    }
}

/// The `dns.txt` text for `versions`: one [`dns_versions::VersionRecord`] line made
/// at `at` (written by `dns_versions::render_manifest`), with the custom databases in
/// the record's extension.
fn manifest_text(
    versions: &BTreeMap<String, u32>,
    at: SystemTime,
) -> Result<String, UpstreamError> {
    Ok(dns_versions::render_manifest(&version_record(
        versions, at,
    )?))
}

fn version_record(
    versions: &BTreeMap<String, u32>,
    at: SystemTime,
) -> Result<dns_versions::VersionRecord, UpstreamError> {
    let mut record = dns_versions::VersionRecord::new(at, 0, 0, 0);
    for (db, v) in versions {
        record
            .set_version(db, *v)
            .map_err(|e| invalid(format!("version record for {db}"), e.to_string()))?;
    }
    Ok(record)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use cdiff::chain::{ChainOptions, Consistency, PatchInput};
    use std::io::{Read as _, Write as _};

    fn get(up: &Upstream, path: &str) -> (u16, Vec<u8>) {
        let mut s = crate::net::connect(up.server().addr()).unwrap();
        write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).unwrap();
        let end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let status = std::str::from_utf8(&raw[9..12]).unwrap().parse().unwrap();
        (status, raw[end + 4..].to_vec())
    }

    fn official_dir() -> PathBuf {
        crate::official_vectors()
    }

    fn chain(keys: &KeySet, base: &[u8], patches: &[(u32, &[u8])], target: &[u8]) -> Consistency {
        let patches: Vec<PatchInput> = patches
            .iter()
            .map(|(v, b)| PatchInput::new(format!("x-{v}.cdiff"), b.to_vec()))
            .collect();
        let opts = ChainOptions::new().keys(keys.clone());
        cdiff::chain::check(target, base, &patches, &opts).unwrap()
    }

    #[test]
    fn synthetic_history_verifies_and_chains_and_its_rogue_twin_does_not() {
        let keys = PublisherKeys::test();
        let h = History::synthetic("demo", 4, &keys).unwrap();
        assert_eq!((h.first_version(), h.last_version()), (1, 4));
        let set = keys.key_set();
        let opts = cvd_format::VerifyOptions::new().keys(set.clone());
        for r in h.releases() {
            let report = cvd_format::verify_reader(r.cvd(), &opts).unwrap();
            assert_eq!(report.header.version, r.version());
            assert_eq!(r.cdiff().is_some(), r.version() > 1);
            assert!(r.cvd_sign().is_none());
        }
        // 1 + cdiffs 2..4 == 4, and every single step too.
        let base = h.release(1).unwrap().cvd();
        let patches: Vec<(u32, &[u8])> = (2..=4)
            .map(|v| (v, h.release(v).unwrap().cdiff().unwrap()))
            .collect();
        let target = h.release(4).unwrap().cvd();
        assert_eq!(
            chain(&set, base, &patches, target),
            Consistency::Consistent { version: 4 }
        );
        // The rogue v4 verifies on its own but is not what the cdiffs give.
        let rogue = h.release(4).unwrap().rogue_cvd.clone().unwrap();
        assert_eq!(
            cvd_format::verify_reader(rogue.as_slice(), &opts)
                .unwrap()
                .header
                .version,
            4
        );
        assert!(matches!(
            chain(&set, base, &patches, &rogue),
            Consistency::Differs(_)
        ));
        // The official keys reject the synthetic database.
        let official = cvd_format::VerifyOptions::new();
        assert!(cvd_format::verify_reader(target, &official).is_err());
    }

    #[test]
    fn synthetic_rejects_bad_arguments() {
        let keys = PublisherKeys::test();
        assert!(History::synthetic("demo", 0, &keys).is_err());
        assert!(History::synthetic("../x", 2, &keys).is_err());
        assert!(History::synthetic("demo", MAX_SYNTHETIC_VERSIONS + 1, &keys).is_err());
    }

    #[test]
    fn public_pem_has_the_three_keys_in_order() {
        let keys = PublisherKeys::test();
        let pem = keys.public_pem().unwrap();
        let blocks: Vec<&str> = pem.split("-----BEGIN PUBLIC KEY-----").skip(1).collect();
        assert_eq!(blocks.len(), 3);
        let parsed: Vec<cvd_format::PublicKey> = pem
            .split_inclusive("-----END PUBLIC KEY-----\n")
            .map(|b| cvd_format::PublicKey::from_public_key_pem(b).unwrap())
            .collect();
        let set = keys.key_set();
        assert_eq!(parsed, vec![set.cvd, set.info, set.cdiff]);
    }

    #[test]
    fn official_history_is_served_and_advances() {
        let h = History::official(&official_dir()).unwrap();
        assert_eq!(
            (h.name(), h.first_version(), h.last_version()),
            ("test", 1, 6)
        );
        let mut up = Upstream::builder().database(h.clone(), 2).start().unwrap();
        let (s, body) = get(&up, "/test.cvd");
        assert_eq!((s, body.as_slice()), (200, h.release(2).unwrap().cvd()));
        assert_eq!(
            get(&up, "/test-2.cdiff").1,
            h.release(2).unwrap().cdiff().unwrap()
        );
        assert_eq!(
            get(&up, "/test-2.cdiff.sign").1,
            h.release(2).unwrap().cdiff_sign().unwrap()
        );
        assert_eq!(
            get(&up, "/test-2.cvd.sign").1,
            h.release(2).unwrap().cvd_sign().unwrap()
        );
        assert_eq!(get(&up, "/test-3.cdiff").0, 404, "not published yet");
        let manifest = String::from_utf8(get(&up, "/dns.txt").1).unwrap();
        let rec = dns_versions::parse_manifest(manifest.as_bytes()).unwrap();
        assert_eq!(rec.version_of("test"), Some(2));
        assert_eq!(up.txt_record().unwrap(), manifest.trim_end());

        assert_eq!(up.advance().unwrap(), vec![("test".to_owned(), 3)]);
        assert_eq!(get(&up, "/test.cvd").1, h.release(3).unwrap().cvd());
        assert_eq!(get(&up, "/test-3.cdiff").0, 200);
        let rec = dns_versions::parse_manifest(&get(&up, "/dns.txt").1).unwrap();
        assert_eq!(rec.version_of("test"), Some(3));
        up.publish("test", 6).unwrap();
        assert!(up.advance().unwrap().is_empty(), "nothing after 6");
        assert!(up.publish("test", 5).is_err(), "versions only move forward");
        assert!(up.publish("nope", 1).is_err());
        assert_eq!(up.files("test").len(), 2 + 2 * 5);
        assert!(
            up.misbehave(Misbehaviour::InconsistentSet { db: "test".into() })
                .is_err(),
            "official vectors cannot be re-signed"
        );
    }

    #[test]
    fn misbehaviours_apply_persist_across_advance_and_clear() {
        let keys = PublisherKeys::test();
        let h = History::synthetic("demo", 3, &keys).unwrap();
        let mut up = Upstream::builder().database(h.clone(), 2).start().unwrap();
        let genuine2 = h.release(2).unwrap().cvd().to_vec();

        up.misbehave(Misbehaviour::RateLimit {
            retry_after_secs: 9,
        })
        .unwrap();
        assert_eq!(get(&up, "/demo.cvd").0, 429);
        up.behave().unwrap();
        up.misbehave(Misbehaviour::Outage).unwrap();
        assert_eq!(get(&up, "/dns.txt").0, 503);
        up.behave().unwrap();
        assert_eq!(get(&up, "/demo.cvd").1, genuine2);

        up.misbehave(Misbehaviour::Truncate {
            file: "demo.cvd".into(),
        })
        .unwrap();
        assert_eq!(get(&up, "/demo.cvd").1, genuine2[..genuine2.len() / 2]);
        up.behave().unwrap();
        up.misbehave(Misbehaviour::Tamper {
            file: "demo-2.cdiff".into(),
        })
        .unwrap();
        let tampered = get(&up, "/demo-2.cdiff").1;
        let real = h.release(2).unwrap().cdiff().unwrap();
        assert_eq!(tampered.len(), real.len());
        assert_eq!(tampered.iter().zip(real).filter(|(a, b)| a != b).count(), 1);
        up.behave().unwrap();
        assert!(
            up.misbehave(Misbehaviour::Tamper {
                file: "nope.cvd".into()
            })
            .is_err()
        );

        up.misbehave(Misbehaviour::OlderThanAdvertised { db: "demo".into() })
            .unwrap();
        assert_eq!(get(&up, "/demo.cvd").1, h.release(1).unwrap().cvd());
        let rec = dns_versions::parse_manifest(&get(&up, "/dns.txt").1).unwrap();
        assert_eq!(
            rec.version_of("demo"),
            Some(2),
            "the manifest still advertises 2"
        );
        up.behave().unwrap();

        up.misbehave(Misbehaviour::InconsistentSet { db: "demo".into() })
            .unwrap();
        up.advance().unwrap();
        // Still on after advance: the rogue twin of version 3.
        let served = get(&up, "/demo.cvd").1;
        assert_eq!(served, h.release(3).unwrap().rogue_cvd.clone().unwrap());
        assert_ne!(served, h.release(3).unwrap().cvd());
        assert_eq!(up.misbehaviours().len(), 1);
        up.behave().unwrap();
        assert_eq!(get(&up, "/demo.cvd").1, h.release(3).unwrap().cvd());
    }

    #[test]
    fn last_modified_moves_forward_on_every_change() {
        let keys = PublisherKeys::test();
        let h = History::synthetic("demo", 3, &keys).unwrap();
        let mut up = Upstream::builder().database(h, 1).start().unwrap();
        let lm = |up: &Upstream| {
            let mut s = crate::net::connect(up.server().addr()).unwrap();
            write!(s, "HEAD /demo.cvd HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
            let mut raw = String::new();
            s.read_to_string(&mut raw).unwrap();
            let v = raw
                .lines()
                .find_map(|l| l.strip_prefix("Last-Modified: "))
                .unwrap()
                .to_owned();
            httpdate::parse_http_date(&v).unwrap()
        };
        let t1 = lm(&up);
        up.advance().unwrap();
        let t2 = lm(&up);
        up.advance().unwrap();
        assert!(t1 < t2 && t2 < lm(&up));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(8))]

        /// Any window of a synthetic history is chain-consistent: version `from` plus
        /// the cdiffs `from+1..=to` reproduce version `to`; the rogue twin of `to` never.
        #[test]
        fn every_window_of_a_synthetic_history_chains(n in 2u32..7, a in 1u32..7, b in 1u32..7) {
            let keys = PublisherKeys::test();
            let h = History::synthetic("prop", n, &keys).unwrap();
            let (from, to) = (a.min(b).min(n - 1), a.max(b).clamp(2, n));
            let from = from.min(to - 1);
            let set = keys.key_set();
            let patches: Vec<(u32, &[u8])> = (from + 1..=to)
                .map(|v| (v, h.release(v).unwrap().cdiff().unwrap()))
                .collect();
            let base = h.release(from).unwrap().cvd();
            proptest::prop_assert_eq!(
                chain(&set, base, &patches, h.release(to).unwrap().cvd()),
                Consistency::Consistent { version: to }
            );
            let rogue = h.release(to).unwrap().rogue_cvd.clone().unwrap();
            let differs = matches!(chain(&set, base, &patches, &rogue), Consistency::Differs(_));
            proptest::prop_assert!(differs);
        }
    }
}
