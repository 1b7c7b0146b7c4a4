//! The sync engine of the ClamAV mirror: plan, download, verify, chain-check, publish
//! atomically, prune, lock, status.
//!
//! See `ARCHITECTURE.md` at the workspace root for the mirror directory layout:
//!
//! ```text
//! DIR/current -> generations/g-<n>   (switched atomically)
//! DIR/generations/g-<n>/             immutable verified snapshots
//! DIR/staging/                       downloads, generations being built
//! DIR/status.json  DIR/sync.lock  DIR/cooldown.json
//! ```
//!
//! The building blocks are usable on their own: [`layout`] (paths), [`lock`] (the
//! sync lock), [`model`] (what a snapshot holds), [`plan`] (the pure planner),
//! [`publish`] (atomic generation switch), [`prune`] (old generations) and
//! [`status`] (`status.json`).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod engine;
mod error;
pub mod layout;
pub mod lock;
pub mod manifest;
pub mod model;
pub mod plan;
pub mod prune;
pub mod publish;
pub mod status;
pub mod transport;
mod verify;

#[doc(hidden)]
pub mod fuzzing;

pub use engine::{
    DatabaseOutcome, DatabaseSpec, DnsVersions, Limits, SyncConfig, SyncConfigBuilder, SyncReport,
    VersionSource, sync,
};
pub use error::{Error, ErrorKind};
pub use manifest::SystemDns;
