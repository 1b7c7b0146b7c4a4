//! What one feed's sync works with and reports: its directories, per-file state and
//! outcomes, the feed's report. The sync itself, which needs the HTTP client, is in
//! `run.rs` (feature `sync`).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::SystemTime;

use serde::{Deserialize, Serialize, Serializer};

use crate::Error;
use crate::error::ErrorClass;
use crate::load_check::LoadCheck;
use crate::openpgp::SignatureInfo;
use crate::redact::RedactedUrl;
use crate::sidecar::SidecarAlgorithm;

/// The directories of one feed's sync.
#[derive(Debug, Clone, Copy)]
pub struct FeedDirs<'a> {
    /// The feed's directory in the published generation (`current/<feed>`): its last
    /// good files. May be missing (first sync).
    pub last_good: &'a Path,
    /// The feed's directory in the generation being built. Created if missing; receives
    /// every good file with its `.sig`/sidecar: new ones moved in, kept ones hard-linked
    /// (or copied) from `last_good`. After the sync it is the complete feed directory.
    pub staging: &'a Path,
    /// A private scratch directory of the feed, kept between syncs and never published:
    /// downloads land here (`.part` files for resume) until they are verified.
    pub work: &'a Path,
}

/// How a staged file was verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "by")]
pub enum Verification {
    /// A detached OpenPGP signature by a configured key.
    Openpgp {
        /// The key's fingerprint (upper-case hex).
        key: String,
        /// The key's type, e.g. `DSA-1024`.
        key_type: String,
        /// The signature's digest.
        digest: crate::Digest,
    },
    /// A digest sidecar matched.
    Sidecar {
        /// `sha256` or `md5`.
        algorithm: SidecarAlgorithm,
    },
    /// Not verified (`verify = "none"`).
    Unverified,
}

impl From<SignatureInfo> for Verification {
    fn from(s: SignatureInfo) -> Self {
        Verification::Openpgp {
            key: s.key,
            key_type: s.key_type,
            digest: s.digest,
        }
    }
}

impl<'de> Deserialize<'de> for SidecarAlgorithm {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match String::deserialize(d)?.as_str() {
            "sha256" => Ok(SidecarAlgorithm::Sha256),
            "md5" => Ok(SidecarAlgorithm::Md5),
            other => Err(serde::de::Error::custom(format!(
                "unknown sidecar algorithm {other:?}"
            ))),
        }
    }
}

/// What is remembered of a feed's last good file: the validators sent next time, and
/// what was proven.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileState {
    /// The upstream's `ETag` of the staged version.
    pub etag: Option<String>,
    /// The upstream's `Last-Modified` (Unix seconds).
    pub last_modified: Option<u64>,
    /// SHA-256 of the staged file (lower-case hex).
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// How it was verified.
    pub verification: Verification,
}

/// A feed's state between syncs (JSON through serde; the caller persists it, best
/// inside the generation the sync's staging becomes, so that it always describes the
/// published last good files).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedState {
    /// When the feed was last fetched (Unix seconds): the `min_interval_secs` clock.
    pub last_fetch: Option<u64>,
    /// Per file, its last good version.
    pub files: BTreeMap<String, FileState>,
}

impl FeedState {
    /// Parses a state file's bytes.
    ///
    /// # Errors
    /// [`Error::Syntax`] when they are not a state document.
    pub fn from_json(bytes: &[u8]) -> Result<FeedState, Error> {
        serde_json::from_slice(bytes).map_err(|e| Error::Syntax {
            reason: format!("feed state: {e}"),
        })
    }

    /// The state as JSON.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }
}

/// What happened to one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileOutcome {
    /// Upstream answered `304`, and the last good copy is staged; or it sent the same
    /// bytes again (a server ignoring the validators), verified anew and staged.
    Unchanged,
    /// A new version passed every check and is staged.
    Updated,
    /// The feed was not due (`min_interval_secs`): nothing was asked; the last good
    /// copy is staged.
    NotDue,
    /// The new version (or the fetch) failed; the last good copy is staged.
    KeptLastGood,
    /// Failed, and there is no last good copy: nothing is staged for this file.
    Failed,
}

/// One file's result.
#[derive(Debug, Serialize)]
pub struct FileReport {
    /// The file's name in the feed.
    pub file: String,
    /// What happened.
    pub outcome: FileOutcome,
    /// Why the new version was refused or could not be fetched.
    #[serde(serialize_with = "ser_error")]
    pub error: Option<Error>,
    /// The `.sig` / sidecar staged beside it, if any.
    pub companion: Option<String>,
    /// How the staged version was verified (`None`: nothing staged).
    pub verification: Option<Verification>,
    /// The load check of a new version (else [`LoadCheck::NotRequested`]).
    pub load_check: LoadCheck,
    /// The staged version's upstream `ETag` (to serve).
    pub etag: Option<String>,
    /// The staged version's upstream `Last-Modified` (to serve).
    pub last_modified: Option<SystemTime>,
    /// The staged version's size.
    pub size: Option<u64>,
    /// The staged version's SHA-256 (lower-case hex).
    pub sha256: Option<String>,
    /// Body bytes downloaded for this file and its companion in this sync.
    pub downloaded: u64,
}

impl FileReport {
    /// Whether a copy of the file is staged.
    pub fn staged(&self) -> bool {
        self.outcome != FileOutcome::Failed
    }
    /// Whether the staged copy is unverified.
    pub fn unverified(&self) -> bool {
        matches!(self.verification, Some(Verification::Unverified))
    }
}

fn ser_error<S: Serializer>(e: &Option<Error>, s: S) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct E {
        class: ErrorClass,
        message: String,
    }
    e.as_ref()
        .map(|e| E {
            class: e.class(),
            message: e.chain(),
        })
        .serialize(s)
}

/// One feed's sync result.
#[derive(Debug, Serialize)]
pub struct FeedReport {
    /// The feed's name.
    pub feed: String,
    /// Its base URLs, redacted.
    pub urls: Vec<RedactedUrl>,
    /// Whether it was fetched (false: `min_interval_secs` had not passed).
    pub due: bool,
    /// When it is due next.
    pub next_due: Option<SystemTime>,
    /// `verify = "none"`: everything staged is unverified.
    pub unverified: bool,
    /// Per configured file, in order.
    pub files: Vec<FileReport>,
}

impl FeedReport {
    /// The most important failure class among the files (verification first).
    pub fn worst(&self) -> Option<ErrorClass> {
        self.files
            .iter()
            .filter_map(|f| f.error.as_ref().map(Error::class))
            .min()
    }
    /// Whether any file was updated.
    pub fn changed(&self) -> bool {
        self.files.iter().any(|f| f.outcome == FileOutcome::Updated)
    }
    /// The names staged (files and companions), sorted.
    pub fn staged_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .files
            .iter()
            .filter(|f| f.staged())
            .flat_map(|f| std::iter::once(f.file.clone()).chain(f.companion.clone()))
            .collect();
        v.sort();
        v
    }
}
