//! Third-party signature feeds (SaneSecurity, URLhaus, SecuriteInfo, ...) mirrored
//! beside the official databases, with the same guarantees: verified before they are
//! staged, load-checked by ClamAV's engine on request, last good copy kept, fetched
//! politely and incrementally.
//!
//! This crate knows nothing of generations, sigserver or the sync engine: it turns a
//! feed's configuration, its last good directory and an HTTP client into a complete,
//! checked feed directory in staging plus a report. The engine decides where those
//! directories are and when they are published.
//!
//! # Configuration
//!
//! `[[feed]]` tables ([`FeedConfig`], serde) validated into a [`FeedSet`] of [`Feed`]s
//! by [`FeedSet::validate`] or [`parse_feeds`]:
//!
//! ```toml
//! [[feed]]
//! name = "sanesecurity"                     # served as /sanesecurity/<file>
//! url = ["https://ss.example.org/sigs", "https://ss2.example.org/sigs"]  # failover, in order
//! files = ["junk.ndb", "phish.ndb", "scam.ndb"]
//! verify = "openpgp"                        # openpgp | sha256 | md5 | none
//! keys = ["builtin:sanesecurity"]           # or key files, armored or binary
//! openpgp_digests = ["sha1", "sha256"]      # default: sha256, sha384, sha512
//! min_interval_secs = 3600
//! load_check = true
//! max_file_size = 268435456                 # the default, 256 MiB
//!
//! [[feed]]
//! name = "securiteinfo"
//! url = "https://www.securiteinfo.com/get/signatures/{token}"
//! token_file = "/etc/sigupdate/securiteinfo.token"
//! files = ["securiteinfo.hdb"]
//! verify = "none"                           # published, but reported unverified everywhere
//! ```
//!
//! `url` is one base URL or a list tried in order; each file is fetched as
//! `<url>/<file>`, its `.sig` or sidecar from the same base. Keys are also accepted in
//! kebab-case (`token-file`, `load-check`, ...).
//!
//! # Verification
//!
//! - `openpgp`: `<file>.sig`, a detached signature, binary or armored, by one of the
//!   configured keys (primary key or a signing subkey with a valid binding), with a
//!   digest the feed's [`DigestPolicy`] allows. SaneSecurity signs with SHA-1 under a
//!   DSA-1024 key, so its feed must say `openpgp_digests = ["sha1", ...]`; every other
//!   feed refuses SHA-1 by default. Typed refusals: [`Error::UnknownKey`] (names the
//!   issuer), [`Error::DigestNotAllowed`], [`Error::BadSignature`],
//!   [`Error::MalformedSignature`], [`Error::MissingSignature`].
//! - `sha256` / `md5`: `<file>.sha256` / `<file>.md5` in `sha256sum` format
//!   ([`parse_sidecar`]); [`Error::SidecarMismatch`].
//! - `none`: staged, marked [`Verification::Unverified`], `FeedReport::unverified`.
//!
//! The vendored SaneSecurity key is [`keys::SANESECURITY`] (`builtin:sanesecurity`).
//!
//! ## Why rPGP (the `pgp` crate)
//!
//! rPGP is pure Rust on the RustCrypto crates this workspace already uses (version
//! 0.21 is on the same generation: `rsa` 0.9, `sha2` 0.10, `dsa` 0.6, `signature` 2),
//! so there is one crypto stack and no C. It verifies DSA, RSA and EdDSA signatures
//! and uses a collision-detecting SHA-1 (SHAttered-style inputs are refused).
//! sequoia-openpgp, the other complete implementation, defaults to the C library
//! Nettle (its pure-Rust backend is marked experimental) and brings a much larger
//! tree. The price of rPGP is its size (it brings every OpenPGP cipher, about 80
//! crates); we use its parsing and verification only.
//!
//! # Token
//!
//! A `{token}` placeholder in `url` is replaced by the content of `token_file` only in
//! the URL handed to `fetch`. Everything this crate reports holds a [`RedactedUrl`]
//! (`<token>`); `fetch`'s messages are redacted before they are stored, and its log
//! events that carry the token are re-emitted redacted (target `feeds::redacted`).
//! For a feed with a token, interrupted downloads are not resumed: their `.part.meta`
//! file would hold the URL.
//!
//! # Load check
//!
//! With `load_check = true`, each new file is loaded alone by `clamscan`
//! ([`LoadChecker`]) before it is staged; a refusal is [`Error::LoadCheck`] with the
//! engine's message. Without `clamscan`, one warning is logged and files are reported
//! [`LoadCheck::Skipped`].
//!
//! # How a sync goes ([`sync_feed`])
//!
//! 1. Not due (`min_interval_secs` since [`FeedState::last_fetch`]): nothing is asked;
//!    every last good file is staged ([`FileOutcome::NotDue`]).
//! 2. Per file: a conditional request (`If-None-Match` / `If-Modified-Since` from the
//!    state) when a whole last good copy is there (file and companion, SHA-256 as the
//!    state says), else a plain one. `304`: the last good copy is hard-linked into
//!    staging ([`FileOutcome::Unchanged`]; one request, no body).
//! 3. A new version is downloaded into the work directory (size limit per file;
//!    `429`/`Retry-After` cool-downs and failover are `fetch`'s), then its `.sig` or
//!    sidecar from the same upstream; verified; load-checked; moved into staging with
//!    its companion ([`FileOutcome::Updated`]; [`FeedState`] updated).
//! 4. Any failure keeps the last good copy ([`FileOutcome::KeptLastGood`]), or stages
//!    nothing for that file when there is none ([`FileOutcome::Failed`]); other files
//!    go on.
//!
//! # How to integrate
//!
//! - Read `[[feed]]` with [`FeedConfig`] (serde, e.g. from the config file's `feed`
//!   array; call [`FeedConfig::resolve_relative_to`] with the file's directory) and
//!   [`FeedSet::validate`] at start: errors name the feed and key.
//! - Per sync and feed: [`sync_feed`] with the shared `fetch::Client`, one
//!   [`LoadChecker`] for the process ([`LoadChecker::discover`]), and [`FeedDirs`]:
//!   `last_good = current/<feed>`, `staging = <new generation>/<feed>`, `work = a
//!   private directory per feed` (e.g. `DIR/feeds-work/<feed>`, never served).
//!   After it, `staging` holds exactly [`FeedReport::staged_names`].
//! - Persist [`FeedState`] (JSON: [`FeedState::to_json`]) with the generation, e.g. as
//!   `<generation>/<feed>/.feed-state.json`, and read it back from `current` next time:
//!   then the state always describes the published last good files.
//! - Report: [`FeedReport`] is `Serialize` (status, trace): outcome, ETag and
//!   Last-Modified (serve these), size, SHA-256, verification, load check, error class
//!   ([`FeedReport::worst`] → exit code, the order of `mirror-core`'s), `unverified`.
//!   Log with [`Error::chain`]. Nothing in a report holds a token.
#![forbid(unsafe_code)]
// Without `sync`, the token's URL filling and log redaction have no caller yet.
#![cfg_attr(not(feature = "sync"), allow(dead_code))]
#![deny(missing_docs)]

mod config;
mod error;
pub mod keys;
mod load_check;
mod openpgp;
mod redact;
#[cfg(feature = "sync")]
mod run;
mod sidecar;
mod sync;

#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;

pub use config::{
    BUILTIN_KEY_PREFIX, DEFAULT_MAX_FILE_SIZE, Feed, FeedConfig, FeedSet, MAX_FILES,
    RESERVED_NAMES, Urls, VerifyMode, parse_feeds,
};
pub use error::{Error, ErrorClass, FetchFailure};
pub use load_check::{DEFAULT_LOAD_TIMEOUT, LoadCheck, LoadChecker};
pub use openpgp::{
    CertInfo, Digest, DigestPolicy, KeyRing, MAX_KEY_FILE_SIZE, MAX_SIGNATURE_SIZE, SignatureInfo,
};
pub use redact::{RedactedUrl, TOKEN_MARK, TOKEN_PLACEHOLDER};
#[cfg(feature = "sync")]
pub use run::{SyncContext, sync_feed};
pub use sidecar::{MAX_SIDECAR_SIZE, SidecarAlgorithm, parse_sidecar};
pub use sync::{FeedDirs, FeedReport, FeedState, FileOutcome, FileReport, FileState, Verification};
