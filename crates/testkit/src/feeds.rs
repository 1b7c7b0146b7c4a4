//! A third-party feed simulator (SaneSecurity-style): an HTTP server on loopback
//! ([`crate::http::TestServer`]) serving feed files under a base path, each with a
//! detached OpenPGP signature `<file>.sig` and `<file>.sha256` / `<file>.md5`
//! sidecars, `ETag` / `Last-Modified` and `304` on conditional requests, per-path
//! counters, and knobs for every way a feed goes wrong.
//!
//! # Keys (TEST ONLY)
//!
//! [`SimKey`] names four OpenPGP keys made once with GnuPG 2.2 and vendored, secret
//! parts unprotected, in `testdata/feeds/` (see its README): a DSA-1024 key that signs
//! with SHA-1 like SaneSecurity's, an RSA-2048 key that signs with SHA-256, an Ed25519
//! key, and an RSA-2048 "stranger" that no feed trusts. rPGP can generate DSA-1024
//! keys, and fast enough (0.7 s in a debug build, measured once), but they are vendored
//! instead: keys made by GnuPG are what providers really have (a parsing difference
//! would show), and fixed fingerprints let tests name them. The simulator signs new
//! content at test time with rPGP (the `pgp` crate) using the vendored secret keys.
//!
//! ```no_run
//! use testkit::feeds::{FeedSim, SimKey};
//!
//! let sim = FeedSim::start("/sanesecurity");
//! sim.publish("junk.ndb", b"Sig.1:0:*:6a756e6b\n", SimKey::Dsa1024);
//! let base = sim.base_url();            // http://127.0.0.1:PORT/sanesecurity
//! sim.tamper("junk.ndb", b"Sig.1:0:*:6576696c\n"); // .sig and sidecars unchanged
//! assert_eq!(sim.stats().not_modified("junk.ndb"), 0);
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pgp::composed::{ArmorOptions, Deserializable, DetachedSignature, SignedSecretKey};
use pgp::crypto::hash::HashAlgorithm;
use pgp::ser::Serialize as _;
use pgp::types::Password;
use sha2::{Digest as _, Sha256};

use crate::http::{Fault, RetryAfter, Scope, Stats, TestServer};

/// A TEST-ONLY signing key of `testdata/feeds/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SimKey {
    /// DSA-1024, signs with SHA-1 (like SaneSecurity's key).
    Dsa1024,
    /// RSA-2048, signs with SHA-256.
    Rsa2048,
    /// Ed25519, signs with SHA-256.
    Ed25519,
    /// RSA-2048 that no feed configures ("signed by another key").
    Stranger,
}

impl SimKey {
    fn stem(self) -> &'static str {
        match self {
            SimKey::Dsa1024 => "dsa",
            SimKey::Rsa2048 => "rsa",
            SimKey::Ed25519 => "ed",
            SimKey::Stranger => "stranger",
        }
    }

    /// The key's usual digest: SHA-1 for the DSA-1024 key, SHA-256 otherwise.
    pub fn default_digest(self) -> SimDigest {
        match self {
            SimKey::Dsa1024 => SimDigest::Sha1,
            _ => SimDigest::Sha256,
        }
    }

    /// The armored public key file (`testdata/feeds/<stem>.pub.asc`).
    pub fn public_key_path(self) -> PathBuf {
        testdata_feeds().join(format!("{}.pub.asc", self.stem()))
    }

    /// The primary key's fingerprint (upper-case hex), as GnuPG printed it.
    pub fn fingerprint(self) -> &'static str {
        match self {
            SimKey::Dsa1024 => "BB421327624B8B4F99D2FA8AA820ADFD8A19FCC1",
            SimKey::Rsa2048 => "5D4C77384D46A95D11C7E2F230C0B3DE3BDD3E32",
            SimKey::Ed25519 => "E337902321BDF947CBCEC8FBCD69B684B01A347F",
            SimKey::Stranger => "12C975C4BFE50196E29745A0FF8E5FEB214D0BB1",
        }
    }

    #[allow(clippy::expect_used)] // test support: vendored, fixed input
    fn secret(self) -> SignedSecretKey {
        let path = testdata_feeds().join(format!("{}.sec.asc", self.stem()));
        let f = std::fs::File::open(&path).expect("open a vendored test key");
        SignedSecretKey::from_armor_single(f)
            .expect("parse a vendored test key")
            .0
    }
}

/// A digest for the simulator's signatures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SimDigest {
    /// SHA-1.
    Sha1,
    /// SHA-256.
    Sha256,
    /// SHA-512.
    Sha512,
}

impl SimDigest {
    fn pgp(self) -> HashAlgorithm {
        match self {
            SimDigest::Sha1 => HashAlgorithm::Sha1,
            SimDigest::Sha256 => HashAlgorithm::Sha256,
            SimDigest::Sha512 => HashAlgorithm::Sha512,
        }
    }
}

/// `testdata/feeds` of the workspace.
pub fn testdata_feeds() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/feeds"))
}

/// A detached signature over `data` by `key` with `digest`, binary or armored.
///
/// # Panics
/// When signing fails (test support: a failure report).
#[allow(clippy::expect_used)]
pub fn sign(key: SimKey, digest: SimDigest, data: &[u8], armored: bool) -> Vec<u8> {
    let secret = key.secret();
    let sig = DetachedSignature::sign_binary_data(
        rand08::thread_rng(),
        &secret.primary_key,
        &Password::empty(),
        digest.pgp(),
        data,
    )
    .expect("sign with a test key");
    if armored {
        sig.to_armored_bytes(ArmorOptions::default())
            .expect("armor a signature")
    } else {
        sig.to_bytes().expect("serialize a signature")
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn sha256_hex(b: &[u8]) -> String {
    hex(&Sha256::digest(b))
}

fn md5_hex(b: &[u8]) -> String {
    use md5::Digest as _;
    hex(&md5::Md5::digest(b))
}

/// How a file's signature is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signing {
    /// The key.
    pub key: SimKey,
    /// The digest.
    pub digest: SimDigest,
    /// Armored (`-----BEGIN PGP SIGNATURE-----`) instead of binary.
    pub armored: bool,
}

impl From<SimKey> for Signing {
    fn from(key: SimKey) -> Signing {
        Signing {
            key,
            digest: key.default_digest(),
            armored: false,
        }
    }
}

#[derive(Debug, Clone)]
struct SimFile {
    content: Vec<u8>,
    signing: Signing,
}

/// The per-file counters of a [`FeedSim`].
#[derive(Debug, Clone)]
pub struct FeedStats {
    prefix: String,
    stats: Stats,
}

impl FeedStats {
    fn path(&self, name: &str) -> String {
        format!("{}/{name}", self.prefix)
    }
    /// Requests for `name` (a file, `x.sig`, `x.sha256`, ...).
    pub fn requests(&self, name: &str) -> u64 {
        self.stats.requests(&self.path(name))
    }
    /// `304 Not Modified` answers for `name`.
    pub fn not_modified(&self, name: &str) -> u64 {
        self.stats
            .log_for(&self.path(name))
            .iter()
            .filter(|r| r.status == 304)
            .count() as u64
    }
    /// Response-body bytes sent for `name`.
    pub fn body_bytes(&self, name: &str) -> u64 {
        self.stats.body_bytes(&self.path(name))
    }
    /// Requests for every path.
    pub fn total_requests(&self) -> u64 {
        self.stats.total_requests()
    }
    /// Body bytes for every path.
    pub fn total_body_bytes(&self) -> u64 {
        self.stats.total_body_bytes()
    }
    /// The whole request log (headers included).
    pub fn raw(&self) -> &Stats {
        &self.stats
    }
}

/// A feed on loopback; stops when dropped.
#[derive(Debug)]
pub struct FeedSim {
    server: TestServer,
    prefix: String,
    files: Mutex<BTreeMap<String, SimFile>>,
    /// The `Last-Modified` clock: each new version is one second later.
    clock: Mutex<u64>,
}

impl FeedSim {
    /// Starts a feed whose files are served under `prefix` (e.g. `/sanesecurity`, or
    /// `/get/SECRET` to play a provider with a token in the path).
    pub fn start(prefix: &str) -> FeedSim {
        let prefix = format!("/{}", prefix.trim_matches('/'));
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        FeedSim {
            server: TestServer::start(),
            prefix,
            files: Mutex::new(BTreeMap::new()),
            // Versions are dated in the past: a client's If-Modified-Since is never in
            // the future of the server's clock.
            clock: Mutex::new(now.saturating_sub(100_000)),
        }
    }

    fn files(&self) -> MutexGuard<'_, BTreeMap<String, SimFile>> {
        self.files.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn tick(&self) -> SystemTime {
        let mut c = self.clock.lock().unwrap_or_else(|e| e.into_inner());
        *c += 1;
        UNIX_EPOCH + Duration::from_secs(*c)
    }

    fn path(&self, name: &str) -> String {
        format!("{}/{name}", self.prefix)
    }

    fn put(&self, name: &str, body: Vec<u8>, t: SystemTime) {
        self.server.put_modified(&self.path(name), body, t);
    }

    /// The feed's base URL (`http://127.0.0.1:PORT<prefix>`, no trailing slash).
    pub fn base_url(&self) -> String {
        self.server.url(&self.prefix)
    }

    /// The underlying server (faults, raw stats).
    pub fn server(&self) -> &TestServer {
        &self.server
    }

    /// Publishes (or replaces) `name` with `content`, signed as `signing` says, with
    /// matching `.sha256` and `.md5` sidecars (`sha256sum` format), all with a new
    /// `Last-Modified`.
    pub fn publish(&self, name: &str, content: &[u8], signing: impl Into<Signing>) {
        let signing = signing.into();
        let t = self.tick();
        self.put(name, content.to_vec(), t);
        self.put(
            &format!("{name}.sig"),
            sign(signing.key, signing.digest, content, signing.armored),
            t,
        );
        self.put(
            &format!("{name}.sha256"),
            format!("{}  {name}\n", sha256_hex(content)).into_bytes(),
            t,
        );
        self.put(
            &format!("{name}.md5"),
            format!("{}  {name}\n", md5_hex(content)).into_bytes(),
            t,
        );
        self.files().insert(
            name.to_owned(),
            SimFile {
                content: content.to_vec(),
                signing,
            },
        );
    }

    /// A new version of `name`, re-signed the way it was signed before.
    ///
    /// # Panics
    /// When `name` was never published.
    #[allow(clippy::expect_used)]
    pub fn replace(&self, name: &str, content: &[u8]) {
        let signing = self
            .files()
            .get(name)
            .map(|f| f.signing)
            .expect("replace a published file");
        self.publish(name, content, signing);
    }

    /// Replaces the file's content only: its `.sig` and sidecars stay those of the
    /// old content (a tampered file).
    pub fn tamper(&self, name: &str, content: &[u8]) {
        let t = self.tick();
        self.put(name, content.to_vec(), t);
    }

    /// Re-signs the current content with `signing` (e.g. [`SimKey::Stranger`], or the
    /// DSA key with SHA-256), file and sidecars unchanged.
    pub fn resign(&self, name: &str, signing: impl Into<Signing>) {
        let signing = signing.into();
        let content = self.content(name);
        let t = self.tick();
        self.put(
            &format!("{name}.sig"),
            sign(signing.key, signing.digest, &content, signing.armored),
            t,
        );
        if let Some(f) = self.files().get_mut(name) {
            f.signing = signing;
        }
    }

    /// Publishes a new version of `name` signed by `signing` (file, `.sig` and
    /// sidecars all new): e.g. a new file signed by another key.
    pub fn publish_signed_by(&self, name: &str, content: &[u8], signing: impl Into<Signing>) {
        self.publish(name, content, signing);
    }

    /// Removes `name.sig` (later requests get `404`).
    pub fn drop_signature(&self, name: &str) {
        self.server.remove(&self.path(&format!("{name}.sig")));
    }

    /// Replaces both sidecars with the digests of other content.
    pub fn wrong_sidecars(&self, name: &str) {
        let other = b"not the content";
        let t = self.tick();
        self.put(
            &format!("{name}.sha256"),
            format!("{}  {name}\n", sha256_hex(other)).into_bytes(),
            t,
        );
        self.put(
            &format!("{name}.md5"),
            format!("{}  {name}\n", md5_hex(other)).into_bytes(),
            t,
        );
    }

    /// Serves arbitrary bytes as `name` (e.g. a raw `.sig` or sidecar), new
    /// `Last-Modified`.
    pub fn put_raw(&self, name: &str, body: &[u8]) {
        let t = self.tick();
        self.put(name, body.to_vec(), t);
    }

    /// Answers `429 Too Many Requests` with `Retry-After: secs` to the next `times`
    /// requests for `name` (`None`: every path).
    pub fn rate_limit(&self, name: Option<&str>, secs: u64, times: u64) {
        let scope = match name {
            Some(n) => Scope::path(&self.path(n)),
            None => Scope::All,
        };
        self.server.set_fault_times(
            scope,
            Fault::RateLimit(Some(RetryAfter::Seconds(secs))),
            times,
        );
    }

    /// The current content of `name` as published (not as tampered).
    ///
    /// # Panics
    /// When `name` was never published.
    #[allow(clippy::expect_used)]
    pub fn content(&self, name: &str) -> Vec<u8> {
        self.files()
            .get(name)
            .map(|f| f.content.clone())
            .expect("a published file")
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> FeedStats {
        FeedStats {
            prefix: self.prefix.clone(),
            stats: self.server.stats(),
        }
    }

    /// Zeroes the counters.
    pub fn reset_stats(&self) {
        self.server.reset_stats();
    }
}
