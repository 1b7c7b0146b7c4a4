//! The sync engine of the ClamAV mirror: plan, download, verify, chain-check, publish
//! atomically, prune, lock, status.
//!
//! ```no_run
//! # #[cfg(all(feature = "http", feature = "dns"))]
//! # fn main() -> Result<(), mirror_core::Error> {
//! use mirror_core::transport::HttpTransport;
//! use mirror_core::{DatabaseSpec, SyncConfig, SystemDns};
//!
//! let config = SyncConfig::builder("/srv/clamav-mirror")
//!     .upstream("https://database.clamav.net")
//!     .database(DatabaseSpec::new("daily")?)
//!     .database(DatabaseSpec::new("main")?)
//!     .database(DatabaseSpec::new("bytecode")?)
//!     .build()?;
//! let mut transport = HttpTransport::new(config.layout().root())?;
//! let report = mirror_core::sync(&config, &mut transport, Some(&mut SystemDns::default()))?;
//! for db in &report.databases {
//!     println!("{}: {:?} -> {:?} ({:?})", db.name, db.before, db.after, db.result);
//! }
//! # Ok(())
//! # }
//! # #[cfg(not(all(feature = "http", feature = "dns")))]
//! # fn main() {}
//! ```
//!
//! # The mirror directory
//!
//! See `ARCHITECTURE.md` at the workspace root:
//!
//! ```text
//! DIR/current -> generations/g-<n>   (switched atomically)
//! DIR/generations/g-<n>/             immutable verified snapshots (+ .trust.json)
//! DIR/staging/                       downloads, generations being built
//! DIR/status.json  DIR/sync.lock  DIR/cooldown.json
//! ```
//!
//! # One sync
//!
//! (In the source, `src/engine/` holds one file per phase of a sync; its `mod.rs`
//! lists them.)
//!
//! [`sync`] takes the [`lock`], cleans what a killed run left in `staging/`, reads
//! the published snapshot ([`model::Snapshot`]), then for each database:
//!
//! 1. learns the upstream version: DNS ([`DnsVersions`]) when it says something newer
//!    than what is held, else the upstream's `dns.txt` manifest, else the 512-byte
//!    header of `<db>.cvd` — a stale or lagging DNS record never means "nothing new";
//! 2. downloads the new `.cvd` into `staging/downloads/` and verifies it fully (header,
//!    MD5, legacy RSA signature, `.info`); a version below the advertised one or not
//!    above the held one is a rollback: that upstream is rejected for the run and the
//!    next one tried;
//! 3. plans ([`plan`]) from what the `.cvd` really is: the cdiffs from the published
//!    version up to the new one and every `.sign`; nothing held is downloaded again;
//! 4. verifies each cdiff (signature, version, script) and each `.sign` (CMS chain to
//!    the configured roots at the configured time): a failing file is never published;
//! 5. **chain check**: the previously published `.cvd` plus the new cdiffs must
//!    reproduce the new `.cvd`'s members (`cdiff::chain::check_verified`: base and
//!    patches in memory, every member compared by the SHA-256 that step 2's full
//!    verification computed over the new `.cvd`'s bytes, so it is not inflated twice). By
//!    induction every published cdiff leads to the published `.cvd`. An inconsistent
//!    upstream (the 2013 case) is refused for that database only: the last good files
//!    stay, the error is logged, recorded in `status.json` (`last_error_kind = "chain"`,
//!    `chain_failures`) and reported ([`SyncReport::worst`]).
//!
//! Then one new generation holding every database (updated files moved in, unchanged
//! ones hard-linked) is published ([`publish`]) by one atomic symlink switch, old
//! generations are pruned ([`prune`]), and `status.json` is written.
//!
//! 6. **bootstrap backfill** (on by default, [`SyncConfigBuilder::bootstrap_cdiffs`]):
//!    when no published base precedes them — an empty mirror, a restarted chain, an
//!    earlier run that kept fewer — the older cdiffs down to the keep count (or the
//!    oldest upstream still has: a 404 ends the walk, the sync goes on) are fetched
//!    with their `.sign` and verified fully (container signature with the CDIFF key,
//!    version, `.sign`, size), but cannot be chain-proven: they are published as
//!    *signature-verified, chain-unproven*, recorded as such inside the generation
//!    ([`trust`], `.trust.json`; copied to `status.json` `unproven_cdiffs`) and
//!    logged once as a warning. Without them a freshclam client
//!    a version behind a freshly deployed mirror gets a 404 for its cdiff and, depending
//!    on its version and configuration, stays stranded ("not synchronized") or
//!    downloads the whole `.cvd`. They age out through normal
//!    pruning; every cdiff published on top of a held base is still chain-proven.
//!    A held chain short of the keep window (kept by an older release) is backfilled
//!    the same way, even while up to date; the version upstream answered 404 for is
//!    remembered in `status.json` (`backfill_missing`) and not asked for again for a
//!    day ([`status::BACKFILL_RETRY_SECS`]), then once more.
//!
//! # Crash safety and readers
//!
//! Nothing under `generations/` changes after it is complete, and `current` changes
//! only by `rename(2)` of a fully written symlink, after every file and directory was
//! fsynced. A process killed at any point leaves `current` on the previous complete
//! snapshot; the next sync (the kernel released the lock with the process) removes the
//! leftovers. A reader that resolves `current` once and reads from that generation
//! sees one complete snapshot; superseded generations are kept for a grace period
//! ([`prune::PrunePolicy`]) for readers still using them.
//!
//! The building blocks are usable on their own: [`layout`] (paths), [`lock`] (the
//! sync lock), [`model`] (what a snapshot holds), [`plan`] (the pure planner),
//! [`publish`] (atomic generation switch), [`prune`] (old generations), [`manifest`]
//! (`dns.txt`), [`transport`] (the network, behind a trait), [`trust`] (each
//! generation's record of its chain-unproven cdiffs) and [`status`] (`status.json`).
//! [`settings`] is what an operator configures about a mirror
//! ([`settings::MirrorSettings`]) and the one function both binaries build the engine
//! with ([`settings::engine_config`]).
//!
//! Dependencies: only the workspace's own crates (`cvd-format`, `cdiff`,
//! `dns-versions` for the record format, `atomic-file`; `fetch` with the `http`
//! feature) plus `serde`/`serde_json` (status), `time` (the `.sign` verification
//! time), `tracing` and `thiserror`.
//!
//! # Features and dependency count
//!
//! | feature set | crates pulled in |
//! |---|---|
//! | minimal (`--no-default-features`): the whole engine, with the caller's own [`transport::Transport`] and [`DnsVersions`]; third-party feeds are configured, verified (rPGP: about 100 of these crates) and carried over, not fetched | 180 |
//! | default (`http`: `transport::HttpTransport` over `fetch`; `dns`: `SystemDns` through `dns-versions`' resolver; feeds fetched through `feeds`' `sync`) | 275 |
//!
//! No async runtime, DNS or HTTP client in the minimal set. Counted, and kept current,
//! by `cargo xtask light-check` (run by CI, which fails when a row is stale or when a
//! minimal build pulls tokio, hickory, reqwest, ureq or hyper): the distinct crates,
//! by name and version, of `cargo tree -p mirror-core -e normal --no-dedupe` (with
//! `--no-default-features` for the minimal row), the crate itself not counted; in
//! shell terms `... --prefix none --no-dedupe | sort -u | wc -l`, minus one. Build and
//! dev dependencies are not counted.
//!
//! # Worst cases
//!
//! | parser | worst input | limit that bounds it | worst | typical, same size | ratio |
//! |---|---|---|---|---|---|
//! | JSON state: `status.json` (`.trace.json`, `.trust.json` use the same reader with 4 and 16 MiB caps) | a 4 MiB string of `\u` escapes | `json_file::MAX_DOCUMENT_LEN` (64 MiB, checked before parsing), serde_json's nesting limit (128) | 45 ms | 69 ms (2 240 databases with 100 cdiffs each, 4.1 MiB) | 0.67 |
//! | `dns.txt` manifest | see `dns-versions` | `manifest::MAX_MANIFEST_LEN` | | | |
//! | file and generation names | one name, one pass | `model::MAX_DB_NAME` | not benchmarked | | |
//!
//! Measured with `cargo bench --profile dev -p mirror-benches --bench worst_case`
//! (`benches/worst_case.rs`; workspace crates unoptimised, the crypto and compression
//! crates at `opt-level = 3` as in `Cargo.toml`) on the shared 2-core development VM,
//! best of several runs, 2026-12-06. "Ratio" is worst / typical per input byte (the
//! plain ratio when the sizes are equal); absolute times vary with the machine's load,
//! the ratios are what the benchmark is for. A second run under heavier load moved
//! them by up to 2× (cdiff apply 12 → 24, `.sign` 0.93 → 1.7, the others by less).
//!
//! Threat tests: `tests/threat_worst_case.rs` (1 MiB of nesting, one byte over the
//! document limit, and linear time at 1× and 8× for long escaped strings and for many
//! databases).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

#[cfg(feature = "dns")]
mod dns;
mod engine;
mod error;
pub mod feed_listing;
pub mod json_file;
pub mod layout;
pub mod lock;
pub mod manifest;
pub mod model;
pub mod plan;
pub mod prune;
pub mod publish;
pub mod settings;
pub mod status;
pub mod targets;
pub mod trace;
pub mod transport;
pub mod trust;
mod verify;

#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;

#[cfg(feature = "dns")]
pub use dns::SystemDns;
pub use engine::{
    DEFAULT_MIRROR_NAME, DatabaseOutcome, DatabaseSpec, DnsVersions, FEEDS_WORK, Limits,
    SyncConfig, SyncConfigBuilder, SyncReport, VersionSource, feed_error_kind, sync, sync_with,
};
pub use error::{BoxError, Chain, CheckError, Error, ErrorKind, RecordError};
